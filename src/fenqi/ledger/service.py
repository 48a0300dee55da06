"""Posting to the ledger: entries, two-phase holds, reversals, expiry.

Runs in the caller's transaction. An entry's client id is claimed first with an
insert-if-absent, so a replay (even a concurrent one) finds the original and returns it; then
all balances move in one checked UPDATE (see balances.py). A refused entry stays recorded as
rejected, so retrying the same id keeps giving the same answer (TigerBeetle's rule).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from fenqi.clock import Clock
from fenqi.ledger.accounts import AccountBalance, get_balance, open_account, set_debit_cap
from fenqi.ledger.balances import Delta, apply_deltas, deltas_for
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
from fenqi.ledger.queries import (
    TrialBalance,
    entry_postings,
    history,
    open_holds_fen,
    reconcile,
    timeout_after,
    trial_balance,
)
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst
from fenqi.store.upsert import conflict_insert

__all__ = [
    "AccountBalance",
    "TrialBalance",
    "entry_postings",
    "expire_pending",
    "get_balance",
    "history",
    "open_account",
    "open_holds_fen",
    "post_entry",
    "reconcile",
    "resolve_pending",
    "reverse_entry",
    "set_debit_cap",
    "timeout_after",
    "trial_balance",
    "void_pending",
]


_CLAIM_COLUMNS = (
    "client_id",
    "content_hash",
    "kind",
    "status",
    "business_date",
    "created_at",
    "timeout_at",
    "description",
    "ref_kind",
    "ref_id",
    "pending_entry_id",
    "reverses_entry_id",
)


@lru_cache(maxsize=4)
def _claim_statement(dialect_name: str) -> Any:
    """INSERT ... ON CONFLICT (client_id) DO NOTHING RETURNING id, built once per dialect."""
    return (
        conflict_insert(dialect_name, ent)
        .values({c: bindparam(f"v_{c}") for c in _CLAIM_COLUMNS})
        .on_conflict_do_nothing(index_elements=["client_id"])
        .returning(ent.c.id)
    )


def _claim(
    conn: Connection,
    clock: Clock,
    client_id: str,
    digest: str,
    kind: EntryKind,
    status: EntryStatus,
    **values: Any,
) -> int | None:
    """Record the entry under its client id; None if the id is already taken."""
    params = dict.fromkeys((f"v_{c}" for c in _CLAIM_COLUMNS), None)
    params.update(
        {
            "v_client_id": client_id,
            "v_content_hash": digest,
            "v_kind": kind.value,
            "v_status": status.value,
            "v_business_date": clock.today(),
            "v_created_at": clock.now(),
            "v_description": "",
        }
    )
    params.update({f"v_{k}": v for k, v in values.items()})
    found = conn.execute(_claim_statement(conn.dialect.name), params).scalar()
    return None if found is None else int(found)


def _replay(conn: Connection, client_id: str, digest: str) -> EntryResult:
    row = conn.execute(
        select(ent.c.id, ent.c.kind, ent.c.status, ent.c.reject_code, ent.c.content_hash).where(
            ent.c.client_id == client_id
        )
    ).one()
    if row.content_hash != digest:
        raise IdempotencyConflict(
            f"client_id {client_id!r} was already used for a different entry", client_id=client_id
        )
    return EntryResult(
        entry_id=row.id,
        client_id=client_id,
        kind=EntryKind(row.kind),
        status=EntryStatus(row.status),
        reject_code=RejectCode(row.reject_code) if row.reject_code else None,
        replayed=True,
    )


def _reject(
    conn: Connection, entry_id: int, client_id: str, kind: EntryKind, code: RejectCode
) -> EntryResult:
    conn.execute(
        update(ent)
        .where(ent.c.id == entry_id)
        .values(status=EntryStatus.REJECTED.value, reject_code=code.value)
    )
    return EntryResult(entry_id, client_id, kind, EntryStatus.REJECTED, code)


_INSERT_POSTINGS = insert(pst)


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


def post_entry(conn: Connection, clock: Clock, req: EntryRequest) -> EntryResult:
    """Post a balanced entry at once, or (pending=True) place a hold to post or void later."""
    kind = EntryKind.PENDING if req.pending else EntryKind.SINGLE
    status = EntryStatus.PENDING if req.pending else EntryStatus.POSTED
    digest = content_hash(kind, request_payload(req))
    entry_id = _claim(
        conn,
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
    if entry_id is None:
        return _replay(conn, req.client_id, digest)
    phase = "pending" if req.pending else "posted"
    refused = apply_deltas(conn, req.currency, deltas_for(req.postings, phase), slot=entry_id)
    if refused is not None:
        return _reject(conn, entry_id, req.client_id, kind, refused)
    _insert_postings(conn, entry_id, req.postings, phase)
    return EntryResult(entry_id, req.client_id, kind, status)


def _open_pending(conn: Connection, pending_entry_id: int) -> tuple[str, list[dict[str, Any]]]:
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
                acc.c.currency,
            )
            .join(acc, acc.c.id == pst.c.debit_account_id)
            .where(pst.c.entry_id == pending_entry_id)
            .order_by(pst.c.seq)
        )
        .mappings()
        .all()
    )
    return postings[0]["currency"], [dict(p) for p in postings]


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
    entry_id = _claim(
        conn,
        clock,
        client_id,
        digest,
        kind,
        EntryStatus.POSTED,
        pending_entry_id=pending_entry_id,
        description=description,
    )
    if entry_id is None:
        return _replay(conn, client_id, digest)
    currency, pending = _open_pending(conn, pending_entry_id)
    amounts = (
        [p["pending_remaining_fen"] for p in pending] if amounts_fen is None else list(amounts_fen)
    )
    if kind is not EntryKind.POST:
        amounts = [0] * len(pending)
    if len(amounts) != len(pending):
        raise LedgerError(f"amounts_fen: expected {len(pending)} amounts", code="invalid_amounts")
    deltas: dict[int, Delta] = defaultdict(dict)
    posted: list[PostingSpec] = []
    releases: list[dict[str, int]] = []
    for p, amount in zip(pending, amounts, strict=True):
        remaining = p["pending_remaining_fen"]
        if not 0 <= amount <= remaining:
            raise LedgerError(
                f"amount {amount} is more than the {remaining} still held",
                code="amount_exceeds_pending",
                held_fen=remaining,
            )
        release = remaining if final or kind is not EntryKind.POST else amount
        d, c = deltas[p["debit_account_id"]], deltas[p["credit_account_id"]]
        d["debits_pending"] = d.get("debits_pending", 0) - release
        c["credits_pending"] = c.get("credits_pending", 0) - release
        if amount:
            d["debits_posted"] = d.get("debits_posted", 0) + amount
            c["credits_posted"] = c.get("credits_posted", 0) + amount
            posted.append(
                PostingSpec(p["debit_account_id"], p["credit_account_id"], amount, p["code"])
            )
        releases.append({"pid": p["id"], "left": remaining - release})
    if kind is EntryKind.POST and not posted:
        raise LedgerError("nothing to post: every amount is zero", code="invalid_amounts")
    # posting a hold never adds exposure
    refused = apply_deltas(conn, currency, deltas, slot=entry_id)
    assert refused is None, refused
    conn.execute(
        update(pst)
        .where(pst.c.id == bindparam("pid"))
        .values(pending_remaining_fen=bindparam("left")),
        releases,
    )
    if all(r["left"] == 0 for r in releases):
        conn.execute(
            update(ent)
            .where(ent.c.id == pending_entry_id)
            .values(status=EntryStatus.RESOLVED.value)
        )
    if posted:
        _insert_postings(conn, entry_id, posted, "posted")
    return EntryResult(
        entry_id, client_id, kind, EntryStatus.POSTED, extra={"posted_fen": sum(amounts)}
    )


def void_pending(
    conn: Connection, clock: Clock, client_id: str, pending_entry_id: int, description: str = ""
) -> EntryResult:
    return resolve_pending(
        conn, clock, client_id, pending_entry_id, kind=EntryKind.VOID, description=description
    )


def expire_pending(conn: Connection, clock: Clock, limit: int = 10_000) -> int:
    """Release holds whose timeout has passed; returns how many. Idempotent."""
    ids = (
        conn.execute(
            select(ent.c.id)
            .where(
                ent.c.status == EntryStatus.PENDING.value,
                ent.c.timeout_at.is_not(None),
                ent.c.timeout_at <= clock.now(),
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
    row = conn.execute(select(ent.c.status).where(ent.c.id == entry_id)).first()
    if row is None:
        raise LedgerError(f"entry {entry_id} not found", code="entry_not_found")
    already = conn.execute(
        select(ent.c.id, ent.c.client_id).where(ent.c.reverses_entry_id == entry_id)
    ).first()
    if already is not None and already.client_id == client_id:
        return _replay(conn, client_id, digest)
    if already is not None:
        raise LedgerError(
            f"entry {entry_id} was already reversed by entry {already.id}", code="already_reversed"
        )
    if row.status != EntryStatus.POSTED.value:
        raise LedgerError(
            f"entry {entry_id} is {row.status}: only posted entries reverse", code="not_reversible"
        )
    rows = (
        conn.execute(
            select(pst, acc.c.currency)
            .join(acc, acc.c.id == pst.c.debit_account_id)
            .where(pst.c.entry_id == entry_id, pst.c.phase == "posted")
            .order_by(pst.c.seq)
        )
        .mappings()
        .all()
    )
    if not rows:
        raise LedgerError(f"entry {entry_id} moved no money", code="not_reversible")
    new_id = _claim(
        conn,
        clock,
        client_id,
        digest,
        EntryKind.REVERSAL,
        EntryStatus.POSTED,
        reverses_entry_id=entry_id,
        description=reason,
    )
    if new_id is None:
        return _replay(conn, client_id, digest)
    mirror = [
        PostingSpec(r["credit_account_id"], r["debit_account_id"], r["amount_fen"], r["code"])
        for r in rows
    ]
    # a correction is not new credit: the credit limit does not block it
    refused = apply_deltas(
        conn, rows[0]["currency"], deltas_for(mirror, "posted"), enforce_cap=False, slot=new_id
    )
    if refused is not None:
        conn.execute(update(ent).where(ent.c.id == new_id).values(reverses_entry_id=None))
        return _reject(conn, new_id, client_id, EntryKind.REVERSAL, refused)
    _insert_postings(conn, new_id, mirror, "posted")
    return EntryResult(new_id, client_id, EntryKind.REVERSAL, EntryStatus.POSTED)
