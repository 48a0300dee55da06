"""Posting to the ledger: entries, two-phase holds, reversals, expiry.

Runs in the caller's transaction. An entry's client id is claimed first with an
insert-if-absent, so a replay (even a concurrent one) finds the original and returns it; then
all balances move in one checked UPDATE (see balances.py). A refused entry stays recorded as
rejected, so retrying the same id keeps giving the same answer (TigerBeetle's rule).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from fenqi.clock import Clock
from fenqi.ledger.accounts import AccountBalance, get_balance, open_account, set_debit_cap
from fenqi.ledger.balances import AfterBalance, Delta, apply_deltas, deltas_for
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
from fenqi.store.prepared import Prepared
from fenqi.store.schema.ledger import OPEN_PENDING
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst
from fenqi.store.upsert import conflict_insert

__all__ = [
    "AccountBalance",
    "TrialBalance",
    "entry_postings",
    "expire_hold",
    "expire_pending",
    "expired_holds",
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
def _claim_statement(dialect_name: str) -> Prepared:
    """INSERT ... ON CONFLICT (client_id) DO NOTHING RETURNING id, built once per dialect."""
    return Prepared(
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
    found = _claim_statement(conn.dialect.name).run(conn, params).scalar()
    return None if found is None else int(found)


_BY_CLIENT_ID = Prepared(
    select(ent.c.id, ent.c.kind, ent.c.status, ent.c.reject_code, ent.c.content_hash).where(
        ent.c.client_id == bindparam("k_client_id")
    )
)


def _replay(conn: Connection, client_id: str, digest: str) -> EntryResult:
    entry_id, kind, status, reject_code, content_hash = _BY_CLIENT_ID.run(
        conn, {"k_client_id": client_id}
    ).one()
    if content_hash != digest:
        raise IdempotencyConflict(
            f"client_id {client_id!r} was already used for a different entry", client_id=client_id
        )
    return EntryResult(
        entry_id=entry_id,
        client_id=client_id,
        kind=EntryKind(kind),
        status=EntryStatus(status),
        reject_code=RejectCode(reject_code) if reject_code else None,
        replayed=True,
    )


def _reject(
    conn: Connection, entry_id: int, client_id: str, kind: EntryKind, code: RejectCode
) -> EntryResult:
    _UPDATE_ENTRY.run(
        conn, {"k_id": entry_id, "status": EntryStatus.REJECTED.value, "reject_code": code.value}
    )
    return EntryResult(entry_id, client_id, kind, EntryStatus.REJECTED, code)


# built once and reused with new parameters (building a statement costs more than running it)
_UPDATE_ENTRY = Prepared(update(ent).where(ent.c.id == bindparam("k_id")))
_INSERT_POSTINGS = Prepared(insert(pst))
_RELEASE_POSTING = Prepared(
    update(pst).where(pst.c.id == bindparam("pid")).values(pending_remaining_fen=bindparam("left"))
)


def _posting_rows(
    entry_id: int, postings: Sequence[PostingSpec], phase: str
) -> list[dict[str, Any]]:
    return [
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
    ]


def _insert_postings(
    conn: Connection, entry_id: int, postings: Sequence[PostingSpec], phase: str
) -> None:
    _INSERT_POSTINGS.many(conn, _posting_rows(entry_id, postings, phase))


def post_entry(
    conn: Connection,
    clock: Clock,
    req: EntryRequest,
    *,
    after: dict[int, AfterBalance] | None = None,
    then: Callable[[int], EntryRequest | None] | None = None,
) -> EntryResult:
    """Post a balanced entry at once, or (pending=True) place a hold to post or void later.

    `after`, when given, gets the balances of the accounts with rules the entry moved (see
    `apply_deltas`), so a caller need not read them back.

    `then`, when given, is called with the new entry's id and returns a second entry to post
    with it (say, the fees of the plan a sale books) or None. That entry is its own entry, with
    its own client id, replayed and refused as `post_entry` would, but the balances of both
    move in the same statements. If the first entry is refused, so is the second, for the same
    reason (whatever `then` itself wrote is the caller's to undo, as with any refusal). Its
    result is in `extra["then"]`. Not called when the first entry is a replay.
    """
    claimed, entry_id = _claim_entry(conn, clock, req)
    if entry_id is None:
        return claimed  # a replay
    phase = "pending" if req.pending else "posted"
    follow = then(entry_id) if then is not None else None
    refused, followed = _post_together(
        conn,
        clock,
        req.currency,
        deltas_for(req.postings, phase),
        _posting_rows(entry_id, req.postings, phase),
        entry_id,
        follow,
        after,
    )
    result = (
        claimed
        if refused is None
        else _reject(conn, entry_id, req.client_id, claimed.kind, refused)
    )
    if then is not None:
        result.extra["then"] = followed
    return result


def _post_together(
    conn: Connection,
    clock: Clock,
    currency: str,
    deltas: dict[int, Delta],
    rows: list[dict[str, Any]],
    slot: int,
    follow: EntryRequest | None,
    after: dict[int, AfterBalance] | None = None,
) -> tuple[RejectCode | None, EntryResult | None]:
    """Move an entry's balances (`deltas`, its posting `rows`) and, with `follow`, a second
    posted entry's in the same statements, and insert the postings of both: (why the first
    was refused, or None; the second's result, or None without one)."""
    if follow is None:
        refused = apply_deltas(conn, currency, deltas, slot=slot, after=after)
        if refused is None:
            _INSERT_POSTINGS.many(conn, rows)
        return refused, None
    if follow.currency != currency or follow.pending:  # another currency, or a hold
        refused, _ = _post_together(conn, clock, currency, deltas, rows, slot, None, after)
        return refused, None if refused is not None else post_entry(conn, clock, follow)
    followed, follow_id = _claim_entry(conn, clock, follow)
    if follow_id is None:  # the second is a replay: the first goes on its own
        return _post_together(conn, clock, currency, deltas, rows, slot, None, after)[0], followed
    second = deltas_for(follow.postings, "posted")
    second_rows = _posting_rows(follow_id, follow.postings, "posted")
    merged: dict[int, Delta] = defaultdict(dict, {i: dict(d) for i, d in deltas.items()})
    for account_id, d in second.items():
        m = merged[account_id]
        for column, amount in d.items():
            m[column] = m.get(column, 0) + amount
    if apply_deltas(conn, currency, merged, slot=slot, after=after) is None:
        _INSERT_POSTINGS.many(conn, rows + second_rows)
        return None, followed
    # one of them refuses: as if posted one after the other
    refused, _ = _post_together(conn, clock, currency, deltas, rows, slot, None, after)
    second_refused = refused or apply_deltas(conn, currency, second, slot=follow_id)
    if second_refused is None:  # together they refused, one after the other they do not
        _INSERT_POSTINGS.many(conn, second_rows)
        return refused, followed
    return refused, _reject(conn, follow_id, follow.client_id, EntryKind.SINGLE, second_refused)


# a hold's status and its postings (with their currency) in one statement; the entry's row is
# locked, so two resolutions of one hold queue (PostgreSQL) or are serialized (SQLite)
_PENDING_POSTINGS = Prepared(
    select(
        ent.c.status,
        ent.c.kind,
        pst.c.id,
        pst.c.debit_account_id,
        pst.c.credit_account_id,
        pst.c.pending_remaining_fen,
        pst.c.code,
        acc.c.currency,
    )
    .select_from(ent)
    .join(pst, pst.c.entry_id == ent.c.id)
    .join(acc, acc.c.id == pst.c.debit_account_id)
    .where(ent.c.id == bindparam("k_id"))
    .order_by(pst.c.seq)
    .with_for_update(of=ent)
)
_ENTRY_STATUS = Prepared(select(ent.c.status, ent.c.kind).where(ent.c.id == bindparam("k_id")))


def _open_pending(conn: Connection, pending_entry_id: int) -> tuple[str, list[dict[str, Any]]]:
    rows = _PENDING_POSTINGS.run(conn, {"k_id": pending_entry_id}).mappings()
    if rows:
        kind, status = rows[0]["kind"], rows[0]["status"]
    else:  # no postings (no such entry, or a rejected hold): told apart by the entry's own row
        head = _ENTRY_STATUS.run(conn, {"k_id": pending_entry_id}).first()
        status, kind = (None, None) if head is None else head
    if kind != EntryKind.PENDING.value:
        raise LedgerError(
            f"pending entry {pending_entry_id} not found",
            code="not_found",
            legacy_code="pending_not_found",
        )
    if status != EntryStatus.PENDING.value or not rows:
        raise LedgerError(
            f"pending entry {pending_entry_id} is already {status}",
            code="pending_already_resolved",
        )
    keys = ("id", "debit_account_id", "credit_account_id", "pending_remaining_fen", "code")
    return str(rows[0]["currency"]), [{k: r[k] for k in keys} for r in rows]


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
    then: Callable[[int], EntryRequest | None] | None = None,
) -> EntryResult:
    """Post part or all of a hold (kind POST), or release it (VOID / EXPIRE).

    `amounts_fen` gives, per pending posting, how much to post (default: all that remains).
    With final=True whatever is not posted is released and the hold is resolved; with
    final=False the rest stays held for a later capture.

    `then`, when given, is called with the new entry's id once the hold is checked and returns
    a second entry to post with it (say, the fees of the plan a capture books) or None. That
    entry is its own entry, with its own client id, replayed and refused exactly as
    `post_entry` would, but its balances move in the same statements as the capture's. Its
    result is in `extra["then"]`. Not called when the capture itself is a replay.
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
    follow = then(entry_id) if then is not None else None
    # posting a hold never adds exposure, so the capture itself cannot be refused
    refused, followed = _post_together(
        conn, clock, currency, deltas, _posting_rows(entry_id, posted, "posted"), entry_id, follow
    )
    assert refused is None, refused
    _RELEASE_POSTING.many(conn, releases)
    if all(r["left"] == 0 for r in releases):
        _UPDATE_ENTRY.run(conn, {"k_id": pending_entry_id, "status": EntryStatus.RESOLVED.value})
    extra: dict[str, Any] = {"posted_fen": sum(amounts)}
    if then is not None:
        extra["then"] = followed
    return EntryResult(entry_id, client_id, kind, EntryStatus.POSTED, extra=extra)


def _claim_entry(
    conn: Connection, clock: Clock, req: EntryRequest
) -> tuple[EntryResult, int | None]:
    """Claim an entry's client id: (its result if nothing refuses it, new id), or (the
    replayed result, None) when the id was used before."""
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
        return _replay(conn, req.client_id, digest), None
    return EntryResult(entry_id, req.client_id, kind, status), entry_id


def void_pending(
    conn: Connection, clock: Clock, client_id: str, pending_entry_id: int, description: str = ""
) -> EntryResult:
    return resolve_pending(
        conn, clock, client_id, pending_entry_id, kind=EntryKind.VOID, description=description
    )


def expired_holds(conn: Connection, clock: Clock, limit: int = 10_000) -> list[int]:
    """Ids of the holds still open whose timeout has passed, oldest first (not locked)."""
    return list(
        conn.execute(
            select(ent.c.id)
            .where(
                OPEN_PENDING,  # verbatim, so that SQLite uses the partial index
                ent.c.timeout_at.is_not(None),
                ent.c.timeout_at <= clock.now(),
            )
            .order_by(ent.c.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


_LOCK_ENTRY = Prepared(select(ent.c.status).where(ent.c.id == bindparam("k_id")).with_for_update())


def expire_hold(conn: Connection, clock: Clock, pending_entry_id: int) -> bool:
    """Release one hold whose time ran out; False (and nothing changes) when it is no longer
    pending. The hold's row is locked before its status is read, so a hold that a capture or a
    void resolves at the same moment resolves one way: whoever locks it second finds it
    resolved, and expiry then steps aside instead of raising `pending_already_resolved`."""
    status = _LOCK_ENTRY.run(conn, {"k_id": pending_entry_id}).scalar()
    if status != EntryStatus.PENDING.value:
        return False
    resolve_pending(
        conn,
        clock,
        f"expire:{pending_entry_id}",
        pending_entry_id,
        kind=EntryKind.EXPIRE,
        description="hold expired",
    )
    return True


def expire_pending(conn: Connection, clock: Clock, limit: int = 10_000) -> int:
    """Release holds whose timeout has passed; returns how many. Idempotent."""
    return sum(expire_hold(conn, clock, i) for i in expired_holds(conn, clock, limit))


def reverse_entry(
    conn: Connection, clock: Clock, client_id: str, entry_id: int, reason: str
) -> EntryResult:
    """Post the mirror image of a posted entry. An entry is reversed at most once."""
    if not reason.strip():
        raise LedgerError("reason: a reversal needs a reason", code="reason_required")
    digest = content_hash(EntryKind.REVERSAL, {"entry": entry_id, "reason": reason})
    row = conn.execute(select(ent.c.status).where(ent.c.id == entry_id)).first()
    if row is None:
        raise LedgerError(
            f"entry {entry_id} not found", code="not_found", legacy_code="entry_not_found"
        )
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
