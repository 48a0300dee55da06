"""Posting to the ledger: accounts, entries, two-phase holds, reversals. Runs in the caller's
transaction; every balance rule is checked by the UPDATE that moves the balance, so concurrent
writers can never break it (row locks on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from fenqi.clock import Clock
from fenqi.ledger.chart import (
    CREDITS_MUST_NOT_EXCEED_DEBITS,
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    AccountCode,
    OwnerKind,
)
from fenqi.ledger.entry import (
    EntryKind,
    EntryRequest,
    EntryResult,
    EntryStatus,
    IdempotencyConflict,
    LedgerError,
    PostingSpec,
    RejectCode,
    content_hash,
    request_payload,
)
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst
from fenqi.store.upsert import insert_ignore


class _Rejected(Exception):
    def __init__(self, code: RejectCode) -> None:
        self.code = code


# ---------------------------------------------------------------- accounts


def open_account(
    conn: Connection,
    clock: Clock,
    code: AccountCode,
    owner_kind: OwnerKind,
    owner_id: str,
    currency: str,
    debit_cap_fen: int | None = None,
) -> int:
    """The id of the account with this key, creating it if absent (safe under concurrency)."""
    key = {
        "code": code.value,
        "owner_kind": owner_kind.value,
        "owner_id": owner_id,
        "currency": currency,
    }
    found = conn.execute(select(acc.c.id).filter_by(**key)).scalar()
    if found is not None:
        return int(found)
    insert_ignore(
        conn,
        acc,
        {
            **key,
            "debit_cap_fen": debit_cap_fen,
            "credits_must_not_exceed_debits": code in CREDITS_MUST_NOT_EXCEED_DEBITS,
            "debits_must_not_exceed_credits": code in DEBITS_MUST_NOT_EXCEED_CREDITS,
            "debits_pending": 0,
            "debits_posted": 0,
            "credits_pending": 0,
            "credits_posted": 0,
            "created_at": clock.now(),
        },
        ["code", "owner_kind", "owner_id", "currency"],
    )
    return int(conn.execute(select(acc.c.id).filter_by(**key)).scalar_one())


def set_debit_cap(conn: Connection, account_id: int, debit_cap_fen: int | None) -> None:
    """Change an account's cap (a credit limit). Lowering it below use blocks new debits only."""
    if debit_cap_fen is not None and debit_cap_fen < 0:
        raise LedgerError("debit_cap_fen must not be negative", code="invalid_cap")
    conn.execute(update(acc).where(acc.c.id == account_id).values(debit_cap_fen=debit_cap_fen))


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account_id: int
    code: str
    owner_kind: str
    owner_id: str
    currency: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    debit_cap_fen: int | None

    @property
    def net_debit_posted(self) -> int:
        return self.debits_posted - self.credits_posted

    @property
    def exposure_fen(self) -> int:
        """Posted and pending debits less posted credits: what a debit cap is measured on."""
        return self.debits_posted + self.debits_pending - self.credits_posted

    @property
    def available_fen(self) -> int | None:
        if self.debit_cap_fen is None:
            return None
        return max(0, self.debit_cap_fen - self.exposure_fen)


def get_balance(conn: Connection, account_id: int) -> AccountBalance:
    row = conn.execute(select(acc).where(acc.c.id == account_id)).mappings().first()
    if row is None:
        raise LedgerError(f"account {account_id} not found", code="account_not_found")
    return AccountBalance(
        account_id=row["id"],
        code=row["code"],
        owner_kind=row["owner_kind"],
        owner_id=row["owner_id"],
        currency=row["currency"],
        debits_pending=row["debits_pending"],
        debits_posted=row["debits_posted"],
        credits_pending=row["credits_pending"],
        credits_posted=row["credits_posted"],
        debit_cap_fen=row["debit_cap_fen"],
    )


# ---------------------------------------------------------------- balance movement

_Delta = dict[str, int]  # column -> amount


def _apply_deltas(
    conn: Connection, currency: str, deltas: dict[int, _Delta], enforce_cap: bool = True
) -> None:
    """Move balances of every touched account, in id order (no deadlocks), checking its rules."""
    for account_id in sorted(deltas):
        d = deltas[account_id]
        dp, dd = d.get("debits_pending", 0), d.get("debits_posted", 0)
        cp, cd = d.get("credits_pending", 0), d.get("credits_posted", 0)
        stmt = (
            update(acc)
            .where(acc.c.id == account_id, acc.c.currency == currency)
            .values(
                debits_pending=acc.c.debits_pending + dp,
                debits_posted=acc.c.debits_posted + dd,
                credits_pending=acc.c.credits_pending + cp,
                credits_posted=acc.c.credits_posted + cd,
            )
        )
        if dp + dd > 0:
            after_debits = acc.c.debits_pending + acc.c.debits_posted + dp + dd
            if enforce_cap:
                stmt = stmt.where(
                    or_(
                        acc.c.debit_cap_fen.is_(None),
                        after_debits - (acc.c.credits_posted + cd) <= acc.c.debit_cap_fen,
                    )
                )
            stmt = stmt.where(
                or_(
                    acc.c.debits_must_not_exceed_credits.is_(False),
                    after_debits <= acc.c.credits_posted + cd,
                )
            )
        if cp + cd > 0:
            stmt = stmt.where(
                or_(
                    acc.c.credits_must_not_exceed_debits.is_(False),
                    acc.c.credits_pending + acc.c.credits_posted + cp + cd
                    <= acc.c.debits_posted + dd,
                )
            )
        if conn.execute(stmt).rowcount != 1:
            raise _Rejected(_diagnose(conn, account_id, currency, dp + dd, cp + cd))


def _diagnose(
    conn: Connection, account_id: int, currency: str, debit: int, credit: int
) -> RejectCode:
    row = conn.execute(select(acc).where(acc.c.id == account_id)).mappings().first()
    if row is None:
        return RejectCode.ACCOUNT_NOT_FOUND
    if row["currency"] != currency:
        return RejectCode.CURRENCY_MISMATCH
    debits_after = row["debits_pending"] + row["debits_posted"] + debit
    if debit > 0 and row["debits_must_not_exceed_credits"] and debits_after > row["credits_posted"]:
        return RejectCode.EXCEEDS_CREDITS
    credits_after = row["credits_pending"] + row["credits_posted"] + credit
    over_debits = credits_after > row["debits_posted"]
    if credit > 0 and row["credits_must_not_exceed_debits"] and over_debits:
        return RejectCode.EXCEEDS_DEBITS
    return RejectCode.INSUFFICIENT_CREDIT


def _deltas(postings: Sequence[PostingSpec], phase: str) -> dict[int, _Delta]:
    out: dict[int, _Delta] = defaultdict(dict)
    for p in postings:
        d, c = out[p.debit_account_id], out[p.credit_account_id]
        d[f"debits_{phase}"] = d.get(f"debits_{phase}", 0) + p.amount_fen
        c[f"credits_{phase}"] = c.get(f"credits_{phase}", 0) + p.amount_fen
    return out


# ---------------------------------------------------------------- entries


def _existing(conn: Connection, client_id: str, digest: str) -> EntryResult | None:
    row = conn.execute(
        select(ent.c.id, ent.c.kind, ent.c.status, ent.c.reject_code, ent.c.content_hash).where(
            ent.c.client_id == client_id
        )
    ).first()
    if row is None:
        return None
    if row.content_hash != digest:
        raise IdempotencyConflict(
            f"client_id {client_id!r} was already used for a different entry",
            client_id=client_id,
        )
    return EntryResult(
        entry_id=row.id,
        client_id=client_id,
        kind=EntryKind(row.kind),
        status=EntryStatus(row.status),
        reject_code=RejectCode(row.reject_code) if row.reject_code else None,
        replayed=True,
    )


def _record(
    conn: Connection,
    clock: Clock,
    client_id: str,
    digest: str,
    kind: EntryKind,
    status: EntryStatus,
    **values: object,
) -> int:
    now = clock.now()
    return int(
        conn.execute(
            insert(ent)
            .values(
                client_id=client_id,
                content_hash=digest,
                kind=kind.value,
                status=status.value,
                business_date=clock.today(),
                created_at=now,
                **values,
            )
            .returning(ent.c.id)
        ).scalar_one()
    )


def _insert_postings(
    conn: Connection, entry_id: int, postings: Sequence[PostingSpec], phase: str
) -> None:
    conn.execute(
        insert(pst),
        [
            {
                "entry_id": entry_id,
                "seq": i,
                "debit_account_id": p.debit_account_id,
                "credit_account_id": p.credit_account_id,
                "amount_fen": p.amount_fen,
                "phase": phase,
                "code": p.code,
                "pending_remaining_fen": p.amount_fen if phase == "pending" else 0,
            }
            for i, p in enumerate(postings)
        ],
    )


def _run_once(
    conn: Connection,
    clock: Clock,
    client_id: str,
    digest: str,
    kind: EntryKind,
    apply: Callable[[Connection], EntryResult],
) -> EntryResult:
    """Idempotent shell: replay returns the original; a rejection is recorded and sticks."""
    existing = _existing(conn, client_id, digest)
    if existing is not None:
        return existing
    savepoint = conn.begin_nested()
    try:
        result = apply(conn)
        savepoint.commit()
        return result
    except _Rejected as rejected:
        savepoint.rollback()
        entry_id = _record(
            conn,
            clock,
            client_id,
            digest,
            kind,
            EntryStatus.REJECTED,
            reject_code=rejected.code.value,
        )
        return EntryResult(entry_id, client_id, kind, EntryStatus.REJECTED, rejected.code)
    except IntegrityError:
        # another transaction recorded the same client_id first: its outcome is the answer
        savepoint.rollback()
        existing = _existing(conn, client_id, digest)
        if existing is None:
            raise
        return existing


def post_entry(conn: Connection, clock: Clock, req: EntryRequest) -> EntryResult:
    """Post a balanced entry at once, or (pending=True) place a hold to post or void later."""
    kind = EntryKind.PENDING if req.pending else EntryKind.SINGLE
    digest = content_hash(kind, request_payload(req))
    phase = "pending" if req.pending else "posted"

    def apply(c: Connection) -> EntryResult:
        _apply_deltas(c, req.currency, _deltas(req.postings, phase))
        status = EntryStatus.PENDING if req.pending else EntryStatus.POSTED
        entry_id = _record(
            c,
            clock,
            req.client_id,
            digest,
            kind,
            status,
            timeout_at=req.timeout_at,
            description=req.description,
            ref_kind=req.ref_kind,
            ref_id=req.ref_id,
        )
        _insert_postings(c, entry_id, req.postings, phase)
        return EntryResult(entry_id, req.client_id, kind, status)

    return _run_once(conn, clock, req.client_id, digest, kind, apply)


def _load_open_pending(conn: Connection, pending_entry_id: int) -> tuple[str, list[dict[str, Any]]]:
    row = conn.execute(
        select(ent.c.status, ent.c.kind).where(ent.c.id == pending_entry_id).with_for_update()
    ).first()
    if row is None or row.kind != EntryKind.PENDING.value:
        raise LedgerError(f"pending entry {pending_entry_id} not found", code="pending_not_found")
    if row.status != EntryStatus.PENDING.value:
        raise LedgerError(
            f"pending entry {pending_entry_id} is already {row.status}",
            code="pending_already_resolved",
        )
    postings = (
        conn.execute(
            select(
                pst.c.id,
                pst.c.debit_account_id,
                pst.c.credit_account_id,
                pst.c.pending_remaining_fen,
                pst.c.code,
            )
            .where(pst.c.entry_id == pending_entry_id)
            .order_by(pst.c.seq)
        )
        .mappings()
        .all()
    )
    currency = conn.execute(
        select(acc.c.currency).where(acc.c.id == postings[0]["debit_account_id"])
    ).scalar_one()
    return currency, [dict(p) for p in postings]


def resolve_pending(
    conn: Connection,
    clock: Clock,
    client_id: str,
    pending_entry_id: int,
    amounts_fen: Sequence[int] | None = None,
    *,
    final: bool = True,
    kind: EntryKind = EntryKind.POST,
    description: str = "",
) -> EntryResult:
    """Post part or all of a hold (kind POST), or release it (VOID / EXPIRE).

    `amounts_fen` gives, per pending posting, how much to post (default: all that remains).
    With final=True whatever is not posted is released and the hold is resolved; with
    final=False the rest stays held for a later capture.
    """
    if kind is not EntryKind.POST:
        amounts_fen = None
    payload = {
        "pending": pending_entry_id,
        "amounts": list(amounts_fen or []),
        "final": final,
        "description": description,
    }
    digest = content_hash(kind, payload)

    def apply(c: Connection) -> EntryResult:
        currency, pending = _load_open_pending(c, pending_entry_id)
        if kind is EntryKind.POST:
            amounts = (
                list(amounts_fen)
                if amounts_fen is not None
                else [p["pending_remaining_fen"] for p in pending]
            )
        else:
            amounts = [0] * len(pending)
        if len(amounts) != len(pending):
            raise LedgerError(
                f"amounts_fen: expected {len(pending)} amounts", code="invalid_amounts"
            )
        deltas: dict[int, _Delta] = defaultdict(dict)
        posted: list[PostingSpec] = []
        for p, amount in zip(pending, amounts, strict=True):
            remaining = p["pending_remaining_fen"]
            if not 0 <= amount <= remaining:
                raise LedgerError(
                    f"amount {amount} is more than the {remaining} still held",
                    code="amount_exceeds_pending",
                    held_fen=remaining,
                )
            release = remaining if final or kind is not EntryKind.POST else amount
            d, cr = deltas[p["debit_account_id"]], deltas[p["credit_account_id"]]
            d["debits_pending"] = d.get("debits_pending", 0) - release
            cr["credits_pending"] = cr.get("credits_pending", 0) - release
            if amount:
                d["debits_posted"] = d.get("debits_posted", 0) + amount
                cr["credits_posted"] = cr.get("credits_posted", 0) + amount
                posted.append(
                    PostingSpec(p["debit_account_id"], p["credit_account_id"], amount, p["code"])
                )
            c.execute(
                update(pst)
                .where(pst.c.id == p["id"])
                .values(pending_remaining_fen=pst.c.pending_remaining_fen - release)
            )
        if kind is EntryKind.POST and not posted:
            raise LedgerError("nothing to post: every amount is zero", code="invalid_amounts")
        _apply_deltas(c, currency, deltas)
        still_open = c.execute(
            select(func.count()).where(
                pst.c.entry_id == pending_entry_id, pst.c.pending_remaining_fen > 0
            )
        ).scalar_one()
        if not still_open:
            c.execute(
                update(ent)
                .where(ent.c.id == pending_entry_id)
                .values(status=EntryStatus.RESOLVED.value)
            )
        entry_id = _record(
            c,
            clock,
            client_id,
            digest,
            kind,
            EntryStatus.POSTED,
            pending_entry_id=pending_entry_id,
            description=description,
        )
        if posted:
            _insert_postings(c, entry_id, posted, "posted")
        return EntryResult(
            entry_id, client_id, kind, EntryStatus.POSTED, extra={"posted_fen": sum(amounts)}
        )

    return _run_once(conn, clock, client_id, digest, kind, apply)


def void_pending(
    conn: Connection, clock: Clock, client_id: str, pending_entry_id: int, description: str = ""
) -> EntryResult:
    return resolve_pending(
        conn, clock, client_id, pending_entry_id, kind=EntryKind.VOID, description=description
    )


def expire_pending(conn: Connection, clock: Clock, limit: int = 10_000) -> int:
    """Release holds whose timeout has passed; returns how many. Idempotent."""
    now = clock.now()
    ids = (
        conn.execute(
            select(ent.c.id)
            .where(
                ent.c.status == EntryStatus.PENDING.value,
                ent.c.timeout_at.is_not(None),
                ent.c.timeout_at <= now,
            )
            .order_by(ent.c.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    for pending_id in ids:
        resolve_pending(
            conn,
            clock,
            f"expire:{pending_id}",
            pending_id,
            kind=EntryKind.EXPIRE,
            description="hold expired",
        )
    return len(ids)


def reverse_entry(
    conn: Connection, clock: Clock, client_id: str, entry_id: int, reason: str
) -> EntryResult:
    """Post the mirror image of a posted entry. An entry is reversed at most once."""
    if not reason.strip():
        raise LedgerError("reason: a reversal needs a reason", code="reason_required")
    digest = content_hash(EntryKind.REVERSAL, {"entry": entry_id, "reason": reason})

    def apply(c: Connection) -> EntryResult:
        row = c.execute(select(ent.c.status, ent.c.kind).where(ent.c.id == entry_id)).first()
        if row is None:
            raise LedgerError(f"entry {entry_id} not found", code="entry_not_found")
        if row.status not in (EntryStatus.POSTED.value,):
            raise LedgerError(
                f"entry {entry_id} is {row.status}: only posted entries reverse",
                code="not_reversible",
            )
        already = c.execute(select(ent.c.id).where(ent.c.reverses_entry_id == entry_id)).first()
        if already is not None:
            raise LedgerError(
                f"entry {entry_id} was already reversed by entry {already.id}",
                code="already_reversed",
            )
        rows = (
            c.execute(
                select(pst)
                .where(pst.c.entry_id == entry_id, pst.c.phase == "posted")
                .order_by(pst.c.seq)
            )
            .mappings()
            .all()
        )
        if not rows:
            raise LedgerError(f"entry {entry_id} moved no money", code="not_reversible")
        mirror = [
            PostingSpec(r["credit_account_id"], r["debit_account_id"], r["amount_fen"], r["code"])
            for r in rows
        ]
        currency = c.execute(
            select(acc.c.currency).where(acc.c.id == rows[0]["debit_account_id"])
        ).scalar_one()
        # a correction is not new credit: the credit limit does not block it
        _apply_deltas(c, currency, _deltas(mirror, "posted"), enforce_cap=False)
        new_id = _record(
            c,
            clock,
            client_id,
            digest,
            EntryKind.REVERSAL,
            EntryStatus.POSTED,
            reverses_entry_id=entry_id,
            description=reason,
        )
        _insert_postings(c, new_id, mirror, "posted")
        return EntryResult(new_id, client_id, EntryKind.REVERSAL, EntryStatus.POSTED)

    return _run_once(conn, clock, client_id, digest, EntryKind.REVERSAL, apply)


# ---------------------------------------------------------------- queries


def history(
    conn: Connection, account_id: int, *, limit: int = 100, after_posting_id: int = 0
) -> list[dict[str, object]]:
    """An account's postings in order, with the entry each belongs to (cursor: posting id)."""
    limit = max(1, min(limit, 1000))
    rows = (
        conn.execute(
            select(
                pst.c.id.label("posting_id"),
                pst.c.entry_id,
                pst.c.amount_fen,
                pst.c.phase,
                pst.c.code,
                pst.c.debit_account_id,
                pst.c.credit_account_id,
                ent.c.kind,
                ent.c.client_id,
                ent.c.business_date,
                ent.c.created_at,
                ent.c.description,
            )
            .join(ent, ent.c.id == pst.c.entry_id)
            .where(
                or_(pst.c.debit_account_id == account_id, pst.c.credit_account_id == account_id),
                pst.c.id > after_posting_id,
            )
            .order_by(pst.c.id)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    out = []
    for r in rows:
        item = dict(r)
        item["side"] = "debit" if r["debit_account_id"] == account_id else "credit"
        out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class TrialBalance:
    rows: list[dict[str, Any]]  # per currency and account code
    totals: dict[str, dict[str, int]]  # per currency

    @property
    def balanced(self) -> bool:
        return all(
            t["debits_posted"] == t["credits_posted"]
            and t["debits_pending"] == t["credits_pending"]
            for t in self.totals.values()
        )


def trial_balance(conn: Connection) -> TrialBalance:
    cols = [
        func.coalesce(func.sum(getattr(acc.c, name)), 0).label(name)
        for name in ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
    ]
    rows = (
        conn.execute(
            select(acc.c.currency, acc.c.code, func.count().label("accounts"), *cols)
            .group_by(acc.c.currency, acc.c.code)
            .order_by(acc.c.currency, acc.c.code)
        )
        .mappings()
        .all()
    )
    totals: dict[str, dict[str, int]] = {}
    out = []
    for r in rows:
        item = {k: (int(v) if k not in ("currency", "code") else v) for k, v in r.items()}
        item["net_debit_posted"] = item["debits_posted"] - item["credits_posted"]
        out.append(item)
        t = totals.setdefault(
            str(r["currency"]),
            dict.fromkeys(
                ("debits_pending", "debits_posted", "credits_pending", "credits_posted"), 0
            ),
        )
        for k in t:
            t[k] += int(r[k])
    return TrialBalance(out, totals)


def reconcile(conn: Connection, limit: int = 100) -> list[dict[str, int]]:
    """Recompute every account's balances from its postings; returns the accounts that differ."""
    sides = []
    for side, col in (("debits", pst.c.debit_account_id), ("credits", pst.c.credit_account_id)):
        sides.append(
            select(
                col.label("account_id"),
                func.sum(pst.c.amount_fen).filter(pst.c.phase == "posted").label("posted"),
                func.sum(pst.c.pending_remaining_fen).label("pending"),
            )
            .group_by(col)
            .subquery(f"{side}_sum")
        )
    d, c = sides
    stmt = (
        select(
            acc.c.id,
            acc.c.debits_posted,
            acc.c.debits_pending,
            acc.c.credits_posted,
            acc.c.credits_pending,
            func.coalesce(d.c.posted, 0).label("calc_debits_posted"),
            func.coalesce(d.c.pending, 0).label("calc_debits_pending"),
            func.coalesce(c.c.posted, 0).label("calc_credits_posted"),
            func.coalesce(c.c.pending, 0).label("calc_credits_pending"),
        )
        .select_from(
            acc.outerjoin(d, d.c.account_id == acc.c.id).outerjoin(c, c.c.account_id == acc.c.id)
        )
        .where(
            or_(
                acc.c.debits_posted != func.coalesce(d.c.posted, 0),
                acc.c.debits_pending != func.coalesce(d.c.pending, 0),
                acc.c.credits_posted != func.coalesce(c.c.posted, 0),
                acc.c.credits_pending != func.coalesce(c.c.pending, 0),
            )
        )
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(stmt).mappings().all()]


def open_holds_fen(conn: Connection, account_id: int) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.sum(pst.c.pending_remaining_fen), 0))
            .join(ent, ent.c.id == pst.c.entry_id)
            .where(and_(pst.c.debit_account_id == account_id, ent.c.status == "pending"))
        ).scalar_one()
    )


def entry_postings(conn: Connection, entry_id: int) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in conn.execute(select(pst).where(pst.c.entry_id == entry_id).order_by(pst.c.seq))
        .mappings()
        .all()
    ]


def timeout_after(clock: Clock, seconds: int) -> datetime:
    from datetime import timedelta

    return clock.now() + timedelta(seconds=seconds)
