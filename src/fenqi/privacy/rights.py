"""Data-subject requests (PIPL arts. 44-47): access, correction, deletion, consent withdrawal.

Every request is a row of `privacy_requests` (what was asked, by whom, through which channel,
the answer date `FENQI_PRIVACY_REQUEST_DAYS` after it was made, and what was done, kept and
why), and is audited as `privacy.<kind>` (`privacy.<kind>_refused` for a refusal). Values are
never stored in the request: a correction names the field, not the old or new value.

- access: `export_subject` — everything fenqi holds about the person, decrypted, as JSON (and
  `render_html` for a readable page);
- correction: phone and income band at once (the shopper knows them); name and ID number
  only by staff, after checking documents;
- deletion: refused while an account is open or owes anything; otherwise the consents are
  withdrawn, sessions ended, stored bureau reports dropped at once, and the identity and
  transaction records kept until `FENQI_RECORD_RETENTION_YEARS` after the last account
  closed (the answer says so, with the date); the retention job (`run_retention`) then
  anonymizes the customer;
- withdrawal of consent: revokes it as of now; a bureau inquiry or monitoring without a
  standing consent is refused (`bureau.inquiry`), marketing stops.
"""

from __future__ import annotations

import html
import json
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Table, delete, select, update

from fenqi.clock import Clock
from fenqi.errors import FenqiError
from fenqi.privacy import audit
from fenqi.privacy.consent import ConsentKind, revoke_consent
from fenqi.privacy.crypto import KeyRing
from fenqi.privacy.identity import validate_mobile
from fenqi.privacy.masking import mask_id_number, mask_name, mask_phone
from fenqi.store.schema import load_all
from fenqi.store.schema.compliance import privacy_requests
from fenqi.store.schema.credit import credit_accounts
from fenqi.store.schema.ledger import ledger_accounts, ledger_balances
from fenqi.store.schema.parties import customers, sessions
from fenqi.store.schema.privacy import audit_log

ERASED = "erased:"  # blind-index prefix of an anonymized customer (bureau.reporting skips it)
SECRET_COLUMNS = {"token_hash", "key_hash", "key_id", "id_number_bidx", "phone_bidx"}
PERSONAL = {"name_enc": "name", "id_number_enc": "id_number", "phone_enc": "phone"}
SHOPPER_FIELDS = ("phone", "income_band")
STAFF_FIELDS = ("phone", "income_band", "name")


class RequestKind(StrEnum):
    ACCESS = "access"
    CORRECTION = "correction"
    DELETION = "deletion"
    WITHDRAWAL = "withdrawal"


class RightsError(FenqiError):
    code = "privacy_request_invalid"
    http_status = 422


class Refused(RightsError):
    """A request fenqi must refuse (the refusal is recorded and audited, then raised)."""

    code = "privacy_request_refused"
    http_status = 409


def _customer(conn: Connection, customer_id: int) -> Any:
    row = conn.execute(select(customers).where(customers.c.id == customer_id)).first()
    if row is None:
        raise RightsError(f"customer {customer_id} not found", code="not_found", http_status=404)
    return row


def _record(
    conn: Connection,
    clock: Clock,
    actor: tuple[str, str, str],
    customer_id: int,
    kind: RequestKind,
    status: str,
    due_days: int,
    detail: dict[str, Any],
    outcome: dict[str, Any],
    erase_on: date | None = None,
) -> dict[str, Any]:
    """Write the request and its audit entry. actor = (kind, id, channel)."""
    actor_kind, actor_id, channel = actor
    now = clock.now()
    values = {
        "customer_id": customer_id,
        "kind": kind.value,
        "status": status,
        "opened_at": now,
        "opened_by": f"{actor_kind}:{actor_id}",
        "channel": channel,
        "due_on": clock.today() + timedelta(days=due_days),
        "closed_at": None if status in ("open", "scheduled") else now,
        "erase_on": erase_on,
        "detail": json.dumps(detail),
        "outcome": json.dumps(outcome, default=str),
    }
    inserted = conn.execute(privacy_requests.insert().values(**values)).inserted_primary_key
    assert inserted is not None
    new_id = inserted[0]
    audit.record(
        conn,
        clock,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action=f"privacy.{kind.value}" + ("_refused" if status == "refused" else ""),
        target_kind="customer",
        target_id=customer_id,
        detail={"request_id": int(new_id), "status": status, **detail},
    )
    return get_request(conn, int(new_id))


def get_request(conn: Connection, request_id: int) -> dict[str, Any]:
    row = (
        conn.execute(select(privacy_requests).where(privacy_requests.c.id == request_id))
        .mappings()
        .first()
    )
    if row is None:
        raise RightsError(f"request {request_id} not found", code="not_found", http_status=404)
    return _view(row)


def _view(row: Any) -> dict[str, Any]:
    out = dict(row)
    for k in ("opened_at", "closed_at"):
        out[k] = out[k].isoformat() if out[k] else None
    for k in ("due_on", "erase_on"):
        out[k] = out[k].isoformat() if out[k] else None
    out["detail"] = json.loads(out["detail"])
    out["outcome"] = json.loads(out["outcome"])
    return out


def list_requests(
    conn: Connection,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    overdue_on: date | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Requests, oldest first; `overdue_on`: only open ones whose answer date is before it."""
    r = privacy_requests.c
    stmt = select(privacy_requests).order_by(r.id).limit(limit)
    if customer_id is not None:
        stmt = stmt.where(r.customer_id == customer_id)
    if status:
        stmt = stmt.where(r.status == status)
    if overdue_on is not None:
        stmt = stmt.where(r.status == "open", r.due_on < overdue_on)
    return [_view(x) for x in conn.execute(stmt).mappings()]


# -- access -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


def _rows(conn: Connection, table: Table, condition: Any) -> list[dict[str, Any]]:
    keep = [c for c in table.c if c.name not in SECRET_COLUMNS and not c.name.endswith("_enc")]
    return [
        {k: _plain(v) for k, v in r.items()}
        for r in conn.execute(select(*keep).where(condition)).mappings()
    ]


def export_subject(conn: Connection, keys: KeyRing, customer_id: int) -> dict[str, Any]:
    """Everything held about the customer, decrypted: identity, every row of every table
    keyed by the customer or their credit accounts, ledger balances, stored bureau reports,
    and the audit entries about them. Secrets (token and key hashes, blind indexes, key ids)
    are left out: they are not data about the person."""
    row = _customer(conn, customer_id)
    identity: dict[str, Any] = {
        field: keys.decrypt(row.key_id, getattr(row, col), context=f"customers.{field}")
        for col, field in PERSONAL.items()
    }
    identity.update(
        customer_id=customer_id,
        income_band=row.income_band,
        created_at=row.created_at.isoformat(),
        erased=row.id_number_bidx.startswith(ERASED),
    )
    accounts = [
        int(i)
        for i in conn.execute(
            select(credit_accounts.c.id).where(credit_accounts.c.customer_ref == str(customer_id))
        ).scalars()
    ]
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in load_all().sorted_tables:
        if table.name.startswith("ledger_") or table.name in ("customers", "audit_log"):
            continue
        cols = table.c
        if "customer_id" in cols:
            cond = cols.customer_id == customer_id
        elif "customer_ref" in cols:
            cond = cols.customer_ref == str(customer_id)
        elif "credit_account_id" in cols and accounts:
            cond = cols.credit_account_id.in_(accounts)
        elif table is sessions:
            cond = (sessions.c.subject_kind == "customer") & (
                sessions.c.subject_id == str(customer_id)
            )
        else:
            continue
        found = _rows(conn, table, cond)
        if found:
            tables[table.name] = found
    return {
        "customer": identity,
        "tables": tables,
        "ledger": _ledger(conn, accounts),
        "bureau_reports": _reports(conn, keys, customer_id),
        "audit": _audit_about(conn, customer_id, accounts),
    }


def _ledger(conn: Connection, accounts: list[int]) -> list[dict[str, Any]]:
    la, lb = ledger_accounts.c, ledger_balances.c
    rows = conn.execute(
        select(la.owner_id, la.code, la.currency, lb.debits_posted, lb.credits_posted)
        .select_from(ledger_accounts.join(ledger_balances, lb.account_id == la.id))
        .where(la.owner_kind == "customer", la.owner_id.in_([str(a) for a in accounts]))
        .order_by(la.owner_id, la.code)
    ).all()
    return [
        {
            "credit_account_id": int(r.owner_id),
            "code": r.code,
            "currency": r.currency,
            "debits_posted_fen": int(r.debits_posted),
            "credits_posted_fen": int(r.credits_posted),
        }
        for r in rows
    ]


def _reports(conn: Connection, keys: KeyRing, customer_id: int) -> list[dict[str, Any]]:
    from fenqi.bureau.inquiry import stored_report
    from fenqi.store.schema.bureau import bureau_reports

    out = []
    for row_id in conn.execute(
        select(bureau_reports.c.id).where(bureau_reports.c.customer_id == customer_id)
    ).scalars():
        report = stored_report(conn, keys, int(row_id))
        out.append({"id": int(row_id), "report": None if report is None else report.to_json()})
    return out


def _audit_about(conn: Connection, customer_id: int, accounts: list[int]) -> list[dict[str, Any]]:
    a = audit_log.c
    cond = ((a.target_kind == "customer") & (a.target_id == str(customer_id))) | (
        (a.target_kind == "credit_account") & a.target_id.in_([str(x) for x in accounts])
    )
    return [
        {
            "at": r.at.isoformat(),
            "actor": f"{r.actor_kind}:{r.actor_id}",
            "action": r.action,
            "target": f"{r.target_kind}:{r.target_id}",
            "reason": r.reason,
        }
        for r in conn.execute(select(audit_log).where(cond).order_by(a.id))
    ]


def request_access(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    actor: tuple[str, str, str],
    customer_id: int,
    *,
    due_days: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Answer an access request at once: (the request, the export)."""
    export = export_subject(conn, keys, customer_id)
    counts = {name: len(rows) for name, rows in export["tables"].items()}
    req = _record(
        conn,
        clock,
        actor,
        customer_id,
        RequestKind.ACCESS,
        "completed",
        due_days,
        {},
        {"exported_rows": counts, "bureau_reports": len(export["bureau_reports"])},
    )
    return req, export


def render_html(export: dict[str, Any]) -> str:
    """The export as a readable page (every value escaped)."""
    e = html.escape
    parts = ["<h2>Your personal data held by fenqi</h2>", "<table>"]
    for k, v in export["customer"].items():
        parts.append(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>")
    parts.append("</table>")
    sections = dict(export["tables"])
    sections["ledger"] = export["ledger"]
    sections["audit"] = export["audit"]
    for name, rows in sections.items():
        parts.append(f"<h3>{e(name)} ({len(rows)})</h3>")
        if not rows:
            continue
        head = "".join(f"<th>{e(str(c))}</th>" for c in rows[0])
        parts.append(f"<table><tr>{head}</tr>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in r.values()) + "</tr>")
        parts.append("</table>")
    parts.append(f"<h3>bureau_reports ({len(export['bureau_reports'])})</h3>")
    for rep in export["bureau_reports"]:
        text = json.dumps(rep["report"], ensure_ascii=False, indent=1)
        parts.append(f"<pre>{e(text)}</pre>")
    return "\n".join(parts)


# -- correction ---------------------------------------------------------------------------


def correct(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    actor: tuple[str, str, str],
    customer_id: int,
    field: str,
    value: str,
    *,
    due_days: int,
) -> dict[str, Any]:
    """Correct one field. A shopper may correct phone and income band; staff also the name
    (after checking documents). Every encrypted column is re-sealed under the active key."""
    allowed = STAFF_FIELDS if actor[0] in ("staff", "system") else SHOPPER_FIELDS
    if field not in allowed:
        raise RightsError(
            f"field: {field!r} cannot be corrected here; allowed: {', '.join(allowed)} "
            "(an ID number is corrected by staff after checking the document, as a new "
            "identity)",
            field="field",
        )
    row = _customer(conn, customer_id)
    if row.id_number_bidx.startswith(ERASED):
        raise RightsError("this customer's data was erased", code="not_found", http_status=404)
    plain = {
        f: keys.decrypt(row.key_id, getattr(row, col), context=f"customers.{f}")
        for col, f in PERSONAL.items()
    }
    values: dict[str, Any] = {}
    if field == "income_band":
        from fenqi.credit.customers import INCOME_BANDS

        if value not in INCOME_BANDS:
            raise RightsError(f"value: one of {', '.join(INCOME_BANDS)}", field="value")
        values["income_band"] = value
    else:
        new = validate_mobile(value) if field == "phone" else value.strip()
        if field == "name" and not 1 <= len(new) <= 64:
            raise RightsError("value: a name of 1..64 characters", field="value")
        plain[field] = new
        values.update(_sealed(keys, plain))
    conn.execute(update(customers).where(customers.c.id == customer_id).values(**values))
    return _record(
        conn,
        clock,
        actor,
        customer_id,
        RequestKind.CORRECTION,
        "completed",
        due_days,
        {"field": field},
        {"corrected": field},
    )


def _sealed(keys: KeyRing, plain: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col, f in PERSONAL.items():
        sealed = keys.encrypt(plain[f], context=f"customers.{f}")
        out[col] = sealed.ciphertext
        out["key_id"] = sealed.key_id
    out["phone_bidx"] = keys.blind_index(plain["phone"], purpose="customers.phone")
    return out


# -- deletion -----------------------------------------------------------------------------


def request_deletion(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    actor: tuple[str, str, str],
    customer_id: int,
    *,
    due_days: int,
    owed_fen: dict[int, int],
    retention_years: int,
) -> dict[str, Any]:
    """Delete what may be deleted now, schedule the rest (see the module's docstring).
    `owed_fen`: what each of the customer's credit accounts owes by the ledger.
    Raises `Refused` after recording the refusal when an account is open or owes money:
    the caller commits the refusal, nothing else is changed."""
    _customer(conn, customer_id)
    ca = credit_accounts.c
    accounts = conn.execute(
        select(ca.id, ca.status).where(ca.customer_ref == str(customer_id))
    ).all()
    blocking = [
        int(a.id) for a in accounts if a.status != "closed" or owed_fen.get(int(a.id), 0) > 0
    ]
    if blocking:
        reason = (
            f"credit account(s) {', '.join(map(str, blocking))} still open or owing: the "
            "contract and its records are needed to perform it (PIPL art. 13(2)); close the "
            "account and pay what is owed first"
        )
        req = _record(
            conn,
            clock,
            actor,
            customer_id,
            RequestKind.DELETION,
            "refused",
            due_days,
            {},
            {"reason": reason, "open_accounts": blocking},
        )
        raise Refused(reason, request_id=req["id"])
    # fenqi keeps no closing date: the period runs from the request (the later, safe side)
    today = clock.today()
    erase_on = today.replace(year=today.year + retention_years, day=min(today.day, 28))
    withdrawn = {k.value: revoke_consent(conn, clock, customer_id, k) for k in ConsentKind}
    ended = conn.execute(
        delete(sessions).where(
            sessions.c.subject_kind == "customer", sessions.c.subject_id == str(customer_id)
        )
    ).rowcount
    reports = _drop_reports(conn, customer_id)
    outcome = {
        "deleted_now": {
            "consents_withdrawn": sum(withdrawn.values()),
            "sessions_ended": int(ended),
            "bureau_reports_dropped": reports,
        },
        "kept_until": erase_on.isoformat(),
        "kept": "identity (name, ID number, phone) and the account, plan, repayment and ledger "
        "records: kept for the retention period counted from this request, every account "
        "being closed (anti-money-laundering record keeping, PBOC Order 2022 No. 1; PIPL art. "
        "47 para. 2), then anonymized by the retention job. Credit records already reported "
        "stay at the bureau under its own rules.",
    }
    return _record(
        conn,
        clock,
        actor,
        customer_id,
        RequestKind.DELETION,
        "scheduled",
        due_days,
        {},
        outcome,
        erase_on=erase_on,
    )


def _drop_reports(conn: Connection, customer_id: int) -> int:
    from fenqi.store.schema.bureau import bureau_reports

    return int(
        conn.execute(
            bureau_reports.update()
            .where(
                bureau_reports.c.customer_id == customer_id,
                bureau_reports.c.report_enc.is_not(None),
            )
            .values(report_enc=None, key_id=None)
        ).rowcount
    )


def anonymize(conn: Connection, keys: KeyRing, customer_id: int) -> None:
    """Replace the customer's identity by placeholders (the rows stay, their ids link the
    kept aggregate records to nobody)."""
    plain = {"name": "(erased)", "id_number": "(erased)", "phone": "(erased)"}
    values = _sealed(keys, plain)
    values["phone_bidx"] = values["id_number_bidx"] = f"{ERASED}{customer_id}"
    values["income_band"] = "erased"
    conn.execute(update(customers).where(customers.c.id == customer_id).values(**values))


def run_retention(conn: Connection, clock: Clock, keys: KeyRing) -> dict[str, int]:
    """The retention job: anonymize customers whose scheduled deletion is due, and drop
    stored bureau report bodies past their retention date."""
    from fenqi.bureau.inquiry import purge_expired

    today = clock.today()
    r = privacy_requests.c
    due = conn.execute(
        select(r.id, r.customer_id).where(r.status == "scheduled", r.erase_on <= today)
    ).all()
    for req in due:
        anonymize(conn, keys, int(req.customer_id))
        conn.execute(
            update(privacy_requests)
            .where(r.id == req.id)
            .values(status="completed", closed_at=clock.now())
        )
        audit.record(
            conn,
            clock,
            actor_kind="system",
            actor_id="retention",
            action="privacy.anonymized",
            target_kind="customer",
            target_id=int(req.customer_id),
            detail={"request_id": int(req.id)},
        )
    return {"anonymized": len(due), "bureau_reports_purged": purge_expired(conn, today)}


# -- withdrawal ---------------------------------------------------------------------------

EFFECTS = {
    ConsentKind.BUREAU_INQUIRY: "no further credit-bureau inquiry about you (applications "
    "need it: a new application without it is refused)",
    ConsentKind.BUREAU_MONITORING: "no post-loan monitoring inquiries at the bureau",
    ConsentKind.SHOPPING_DATA: "your shop's data no longer used in credit decisions",
    ConsentKind.MARKETING: "no marketing contact",
    ConsentKind.SENSITIVE_DATA: "sensitive personal data no longer processed beyond what the "
    "contract and the law require",
    ConsentKind.SHARING: "no further sharing with the named funder or bureau",
}


def withdraw(
    conn: Connection,
    clock: Clock,
    actor: tuple[str, str, str],
    customer_id: int,
    kind: str,
    *,
    due_days: int,
) -> dict[str, Any]:
    _customer(conn, customer_id)
    try:
        consent = ConsentKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ConsentKind)
        raise RightsError(f"kind: one of {known}", field="kind") from None
    revoked = revoke_consent(conn, clock, customer_id, consent)
    return _record(
        conn,
        clock,
        actor,
        customer_id,
        RequestKind.WITHDRAWAL,
        "completed",
        due_days,
        {"consent": consent.value},
        {"revoked": revoked, "effect": EFFECTS[consent]},
    )


# -- breach report ------------------------------------------------------------------------


def breach_report(
    conn: Connection, keys: KeyRing, *, key_id: str | None = None, table: str | None = None
) -> list[dict[str, Any]]:
    """The subjects whose data a given data key sealed, or a given table held: customer id
    and masked identity, for the notification a breach needs (PIPL art. 57)."""
    if (key_id is None) == (table is None):
        raise RightsError("give exactly one of key_id or table", field="key_id")
    if key_id is not None:
        ids = set(
            conn.execute(select(customers.c.id).where(customers.c.key_id == key_id)).scalars()
        )
    else:
        ids = _ids_in_table(conn, str(table))
    out = []
    for row in conn.execute(select(customers).where(customers.c.id.in_(ids)).order_by("id")):
        name = keys.decrypt(row.key_id, row.name_enc, context="customers.name")
        phone = keys.decrypt(row.key_id, row.phone_enc, context="customers.phone")
        number = keys.decrypt(row.key_id, row.id_number_enc, context="customers.id_number")
        out.append(
            {
                "customer_id": int(row.id),
                "name": mask_name(name),
                "phone": mask_phone(phone),
                "id_number": mask_id_number(number),
            }
        )
    return out


def _ids_in_table(conn: Connection, name: str) -> set[int]:
    tables = load_all().tables
    if name not in tables:
        raise RightsError(f"table: no table {name!r}", field="table")
    t = tables[name]
    if name == "customers":
        return set(conn.execute(select(t.c.id)).scalars())
    if "customer_id" in t.c:
        return {int(i) for i in conn.execute(select(t.c.customer_id).distinct()).scalars()}
    ca = credit_accounts.c
    if "customer_ref" in t.c:
        refs = conn.execute(select(t.c.customer_ref).distinct()).scalars()
    elif "credit_account_id" in t.c and not name.startswith("ledger_"):
        refs = conn.execute(
            select(ca.customer_ref).distinct().where(ca.id.in_(select(t.c.credit_account_id)))
        ).scalars()
    else:
        raise RightsError(f"table: {name} holds no customer's data", field="table")
    return {int(r) for r in refs if str(r).isdigit()}
