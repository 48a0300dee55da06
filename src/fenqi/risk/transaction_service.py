"""Checkout transaction risk: the service that keeps the state in the database.

`assess_transaction(conn, clock, txn)` runs inside the caller's transaction (e.g. the one that
places the authorization hold). Concurrency is made safe by the database, not by Python locks:

1. claim the `transaction_ref` (insert, on conflict do nothing): a retry returns the first answer;
2. add this attempt to every counter with one upsert (`ON CONFLICT DO UPDATE ... RETURNING`):
   the row lock taken by the upsert serializes two checkouts on the same account or device until
   commit, and each sees the other's increment: two concurrent attempts cannot both slip under
   a limit;
3. evaluate the pure rules on what the upserts returned;
4. if declined, take the amount back out (the attempt still counts: card testing shows up as a
   run of declined attempts), and record the outcome on the claimed row.

Back of the envelope: 4 upserts (one of them multi-row) and 2-3 reads per checkout, all by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from fenqi.clock import Clock
from fenqi.risk.transaction import (
    Subject,
    TransactionRiskDecision,
    TransactionRiskInput,
    TransactionRiskPolicy,
    TransactionRiskState,
    TxnOutcome,
    evaluate_transaction,
)
from fenqi.store.prepared import Prepared
from fenqi.store.schema.risk import (
    risk_account_exposure,
    risk_identity_links,
    risk_transaction_assessments,
    risk_velocity_counters,
)
from fenqi.store.upsert import conflict_insert

DEFAULT_POLICY = TransactionRiskPolicy()
PENDING = "pending"


# Statements are built once per dialect and shape from bind parameters, then reused: building a
# statement object costs more than the database running it, and a checkout runs a dozen.
@lru_cache(maxsize=32)
def _upsert_add_statement(
    dialect: str, table: Table, keys: tuple[str, ...], adds: tuple[str, ...]
) -> Any:
    columns = (*keys, *adds)
    stmt = conflict_insert(dialect, table).values({name: bindparam(name) for name in columns})
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: table.c[name] + stmt.excluded[name] for name in adds},
        ).returning(*[table.c[name] for name in adds])
    )


def _upsert_add(
    conn: Connection, table: Table, keys: Mapping[str, Any], adds: Mapping[str, int]
) -> tuple[int, ...]:
    """Insert the row or add to it; return the columns' values after the addition."""
    stmt = _upsert_add_statement(conn.dialect.name, table, tuple(keys), tuple(adds))
    row = stmt.run(conn, {**keys, **adds}).one()
    return tuple(int(v) for v in row)


@lru_cache(maxsize=4)
def _link_statements(dialect: str) -> tuple[Any, Any]:
    links = risk_identity_links.c
    upsert = conflict_insert(dialect, risk_identity_links).values(
        {
            name: bindparam(name)
            for name in ("link_kind", "link_key", "account_id", "first_seen_s", "last_seen_s")
        }
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["link_kind", "link_key", "account_id"],
        set_={"last_seen_s": upsert.excluded.last_seen_s},
    )
    count = (
        select(func.count())
        .select_from(risk_identity_links)
        .where(
            links.link_kind == bindparam("link_kind"),
            links.link_key == bindparam("link_key"),
            links.last_seen_s >= bindparam("since_s"),
        )
    )
    return Prepared(upsert), Prepared(count)


def _link_count(
    conn: Connection, kind: str, key: str, account_id: str, now_s: int, window_seconds: int
) -> int:
    """Note this account on the device/phone; count the accounts seen on it within the window."""
    upsert, count = _link_statements(conn.dialect.name)
    upsert.run(
        conn,
        {
            "link_kind": kind,
            "link_key": key,
            "account_id": account_id,
            "first_seen_s": now_s,
            "last_seen_s": now_s,
        },
    )
    found = count.run(
        conn, {"link_kind": kind, "link_key": key, "since_s": now_s - window_seconds}
    ).scalar_one()
    return int(found)


_c = risk_velocity_counters.c
_COUNTER_KEY = and_(
    _c.subject_kind == bindparam("k_kind"),
    _c.subject_key == bindparam("k_key"),
    _c.window_seconds == bindparam("k_width"),
    _c.window_start == bindparam("k_start"),
)
_TAKE_BACK = Prepared(
    update(risk_velocity_counters)
    .where(_COUNTER_KEY)
    .values(amount_fen=_c.amount_fen - bindparam("k_amount", type_=BigInteger()))
)
_e = risk_account_exposure.c
_GIVE_BACK_EXPOSURE = Prepared(
    update(risk_account_exposure)
    .where(_e.account_id == bindparam("k_account"))
    .values(
        accepted_count=_e.accepted_count - 1,
        accepted_amount_fen=_e.accepted_amount_fen - bindparam("k_amount", type_=BigInteger()),
    )
)
_KEY_COLUMNS = ("subject_kind", "subject_key", "window_seconds", "window_start")


@lru_cache(maxsize=16)
def _velocity_statements(dialect: str, windows: int) -> tuple[Any, Any]:
    """Add to every window's counter in one upsert; read the previous windows in one select."""
    columns = (*_KEY_COLUMNS, "txn_count", "amount_fen")
    upsert = conflict_insert(dialect, risk_velocity_counters).values(
        [{name: bindparam(f"{name}_{i}") for name in columns} for i in range(windows)]
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS),
        set_={name: _c[name] + upsert.excluded[name] for name in ("txn_count", "amount_fen")},
    ).returning(*(_c[name] for name in columns))
    previous = select(*(_c[name] for name in columns)).where(
        or_(
            *(
                and_(*(_c[name] == bindparam(f"p_{name}_{i}") for name in _KEY_COLUMNS))
                for i in range(windows)
            )
        )
    )
    return Prepared(upsert), Prepared(previous)


def _windows(
    txn: TransactionRiskInput, policy: TransactionRiskPolicy, now_s: int
) -> list[tuple[Subject, str, int, int]]:
    """The counters this attempt adds to: (subject, key, width, window start), each once."""
    out: dict[tuple[Subject, int], tuple[Subject, str, int, int]] = {}
    for limit in policy.velocity:
        key = txn.account_id if limit.subject is Subject.ACCOUNT else txn.device_id
        width = limit.window_seconds
        if key is not None:
            start = now_s - now_s % width
            out.setdefault((limit.subject, width), (limit.subject, key, width, start))
    return list(out.values())


def _velocity(
    conn: Connection, txn: TransactionRiskInput, policy: TransactionRiskPolicy, now_s: int
) -> dict[tuple[Subject, int], tuple[float, float]]:
    """Sliding-window estimate: this window's counter plus the previous one weighted by overlap."""
    windows = _windows(txn, policy, now_s)
    if not windows:
        return {}
    upsert, previous = _velocity_statements(conn.dialect.name, len(windows))
    add: dict[str, Any] = {}
    before: dict[str, Any] = {}
    for i, (subject, key, width, start) in enumerate(windows):
        add.update(
            {
                f"subject_kind_{i}": subject.value,
                f"subject_key_{i}": key,
                f"window_seconds_{i}": width,
                f"window_start_{i}": start,
                f"txn_count_{i}": 1,
                f"amount_fen_{i}": txn.amount_fen,
            }
        )
        before.update(
            {
                f"p_subject_kind_{i}": subject.value,
                f"p_subject_key_{i}": key,
                f"p_window_seconds_{i}": width,
                f"p_window_start_{i}": start - width,
            }
        )
    now = {tuple(r[:4]): (int(r[4]), int(r[5])) for r in upsert.run(conn, add).rows}
    then = {tuple(r[:4]): (int(r[4]), int(r[5])) for r in previous.run(conn, before).rows}
    out: dict[tuple[Subject, int], tuple[float, float]] = {}
    for subject, key, width, start in windows:
        count, amount = now[(subject.value, key, width, start)]
        weight = 1.0 - (now_s - start) / width
        prior = then.get((subject.value, key, width, start - width))
        if prior is not None:
            out[(subject, width)] = (count + weight * prior[0], amount + weight * prior[1])
        else:
            out[(subject, width)] = (float(count), float(amount))
    return out


def _stored(conn: Connection, transaction_ref: str) -> TransactionRiskDecision:
    row = conn.execute(
        select(
            risk_transaction_assessments.c.outcome,
            risk_transaction_assessments.c.reason_code,
            risk_transaction_assessments.c.reason_codes,
        ).where(risk_transaction_assessments.c.transaction_ref == transaction_ref)
    ).one()
    assert row.outcome != PENDING, "a claimed assessment is completed in the same transaction"
    return TransactionRiskDecision(
        TxnOutcome(row.outcome), row.reason_code, tuple(row.reason_codes)
    )


def assess_transaction(
    conn: Connection,
    clock: Clock,
    txn: TransactionRiskInput,
    policy: TransactionRiskPolicy = DEFAULT_POLICY,
) -> TransactionRiskDecision:
    """Decide approve / step_up / decline for one checkout and update the risk state."""
    now = clock.now()
    claimed = (
        _claim_statement(conn.dialect.name)
        .run(
            conn,
            {
                "transaction_ref": txn.transaction_ref,
                "account_id": txn.account_id,
                "device_id": txn.device_id,
                "amount_fen": txn.amount_fen,
                "merchant_category": txn.merchant_category,
                "outcome": PENDING,
                "reason_code": "",
                "reason_codes": [],
                "assessed_at": now,
            },
        )
        .scalar()
    )
    if claimed is None:
        return _stored(conn, txn.transaction_ref)
    now_s = int(now.timestamp())
    velocity = _velocity(conn, txn, policy, now_s)
    accepted_count, accepted_amount = _upsert_add(
        conn,
        risk_account_exposure,
        {"account_id": txn.account_id},
        {"accepted_count": 1, "accepted_amount_fen": txn.amount_fen},
    )
    window = policy.identity_link_window_seconds
    state = TransactionRiskState(
        velocity=velocity,
        accounts_on_device=_link_count(conn, "device", txn.device_id, txn.account_id, now_s, window)
        if txn.device_id
        else 0,
        accounts_on_phone=_link_count(conn, "phone", txn.phone_key, txn.account_id, now_s, window)
        if txn.phone_key
        else 0,
        prior_accepted_count=accepted_count - 1,
        prior_accepted_amount_fen=accepted_amount - txn.amount_fen,
        account_age_seconds=(now - txn.account_opened_at).total_seconds(),
    )
    decision = evaluate_transaction(txn, state, policy)
    # a step-up is not a purchase yet: like a decline it adds no exposure until it is retried
    # after the shopper passed the check (that retry is assessed, and counted, on its own)
    if decision.outcome is not TxnOutcome.APPROVE:
        _take_back(conn, txn, policy, now_s)
    _RECORD.run(
        conn,
        {
            "k_id": claimed,
            "outcome": decision.outcome.value,
            "reason_code": decision.reason_code,
            "reason_codes": list(decision.reason_codes),
        },
    )
    return decision


_CLAIM_COLUMNS = (
    "transaction_ref",
    "account_id",
    "device_id",
    "amount_fen",
    "merchant_category",
    "outcome",
    "reason_code",
    "reason_codes",
    "assessed_at",
)
_RECORD = Prepared(
    update(risk_transaction_assessments).where(
        risk_transaction_assessments.c.id == bindparam("k_id")
    )
)


@lru_cache(maxsize=4)
def _claim_statement(dialect: str) -> Prepared:
    return Prepared(
        conflict_insert(dialect, risk_transaction_assessments)
        .values({name: bindparam(name) for name in _CLAIM_COLUMNS})
        .on_conflict_do_nothing(index_elements=["transaction_ref"])
        .returning(risk_transaction_assessments.c.id)
    )


def _take_back(
    conn: Connection, txn: TransactionRiskInput, policy: TransactionRiskPolicy, now_s: int
) -> None:
    """A declined attempt does not use up amount limits or first-purchase exposure."""
    _TAKE_BACK.many(
        conn,
        [
            {
                "k_kind": subject.value,
                "k_key": key,
                "k_width": width,
                "k_start": start,
                "k_amount": txn.amount_fen,
            }
            for subject, key, width, start in _windows(txn, policy, now_s)
        ],
    )
    _GIVE_BACK_EXPOSURE.run(conn, {"k_account": txn.account_id, "k_amount": txn.amount_fen})


def purge_velocity_counters(conn: Connection, clock: Clock) -> int:
    """Delete counters older than two windows (the sliding estimate reads one back); for EOD."""
    now_s = int(clock.now().timestamp())
    c = risk_velocity_counters.c
    result = conn.execute(
        risk_velocity_counters.delete().where(c.window_start < now_s - 2 * c.window_seconds)
    )
    return int(result.rowcount or 0)
