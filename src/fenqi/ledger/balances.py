"""Moving account balances in one statement, with every balance rule checked by that statement.

All accounts an entry touches are updated by a single UPDATE (a CASE per column) whose WHERE
clause holds each account's rules: the debit cap (a credit limit), and the flags that forbid
credits above debits (a receivable below zero) or debits above credits (spending a credit
balance one does not have). Concurrent writers queue on the row locks (PostgreSQL) or the write
lock (SQLite), and each sees the other's result before its rule is checked, so no interleaving
can break a rule. If any account refuses, the rows that did move are moved back in the same
transaction and the refusal is reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    event,
    or_,
    select,
    update,
)

from fenqi.ledger.accounts import account_meta
from fenqi.ledger.chart import HOT_CODES
from fenqi.ledger.entry import PostingSpec, RejectCode
from fenqi.store.prepared import Prepared
from fenqi.store.schema.ledger import ledger_account_slots as slot_t
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_balances as bal
from fenqi.store.upsert import conflict_insert

COLUMNS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
Delta = dict[str, int]  # column -> signed amount
_SHORT = dict(zip(COLUMNS, ("dpe", "dpo", "cpe", "cpo"), strict=True))  # bind-parameter names


def deltas_for(postings: Sequence[PostingSpec], phase: str) -> dict[int, Delta]:
    out: dict[int, Delta] = defaultdict(dict)
    for p in postings:
        d, c = out[p.debit_account_id], out[p.credit_account_id]
        d[f"debits_{phase}"] = d.get(f"debits_{phase}", 0) + p.amount_fen
        c[f"credits_{phase}"] = c.get(f"credits_{phase}", 0) + p.amount_fen
    return out


def _p(name: str) -> BindParameter[int]:
    return bindparam(name, type_=BigInteger())


@lru_cache(maxsize=64)
def _statement(accounts: int) -> Prepared:
    """The checked UPDATE for an entry touching `accounts` accounts, built once per shape.

    Built from bind parameters only, so SQLAlchemy compiles it once and every entry reuses it.
    Per account i: id{i}, the four deltas, and whether its debits or credits grow (rules apply
    only then) and whether the debit cap is enforced.
    """
    values = {}
    for column in COLUMNS:
        values[column] = bal.c[column] + case(
            *[
                (bal.c.account_id == _p(f"id{i}"), _p(f"{_SHORT[column]}{i}"))
                for i in range(accounts)
            ],
            else_=0,
        )
    rules = []
    for i in range(accounts):
        dp, dd, cp, cd = (_p(f"{_SHORT[c]}{i}") for c in COLUMNS)
        debits_after = bal.c.debits_pending + bal.c.debits_posted + dp + dd
        credits_after = bal.c.credits_pending + bal.c.credits_posted + cp + cd
        rules.append(
            and_(
                bal.c.account_id == _p(f"id{i}"),
                or_(
                    _p(f"dgrow{i}") == 0,
                    and_(
                        or_(
                            _p(f"cap{i}") == 0,
                            bal.c.debit_cap_fen.is_(None),
                            debits_after - (bal.c.credits_posted + cd) <= bal.c.debit_cap_fen,
                        ),
                        or_(
                            bal.c.debits_must_not_exceed_credits.is_(False),
                            debits_after <= bal.c.credits_posted + cd,
                        ),
                    ),
                ),
                or_(
                    _p(f"cgrow{i}") == 0,
                    bal.c.credits_must_not_exceed_debits.is_(False),
                    credits_after <= bal.c.debits_posted + dd,
                ),
            )
        )
    return Prepared(
        update(bal)
        .where(bal.c.account_id.in_([_p(f"id{i}") for i in range(accounts)]), or_(*rules))
        .values(values)
        .returning(bal.c.account_id, *[bal.c[c] for c in COLUMNS], bal.c.debit_cap_fen)
    )


# what the checked UPDATE hands back per account moved: its balance columns and its debit cap
AfterBalance = tuple[int, int, int, int, int | None]


def _params(deltas: dict[int, Delta], enforce: bool) -> dict[str, object]:
    params: dict[str, object] = {}
    for i, (account_id, d) in enumerate(sorted(deltas.items())):
        dp, dd = d.get("debits_pending", 0), d.get("debits_posted", 0)
        cp, cd = d.get("credits_pending", 0), d.get("credits_posted", 0)
        params.update(
            {
                f"id{i}": account_id,
                f"dpe{i}": dp,
                f"dpo{i}": dd,
                f"cpe{i}": cp,
                f"cpo{i}": cd,
                f"dgrow{i}": int(enforce and dp + dd > 0),
                f"cgrow{i}": int(enforce and cp + cd > 0),
                f"cap{i}": int(enforce and dp + dd > 0),
            }
        )
    return params


def _move(
    conn: Connection,
    deltas: dict[int, Delta],
    enforce: bool,
    enforce_cap: bool = True,
) -> dict[int, AfterBalance]:
    """Move the balances of the accounts whose rules allow it (all of them unless `enforce`);
    their currency was checked by the caller (an account's currency never changes)."""
    params = _params(deltas, enforce)
    if not enforce_cap:
        params.update({f"cap{i}": 0 for i in range(len(deltas))})
    return {
        int(row[0]): (int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5])
        for row in _statement(len(deltas)).run(conn, params).rows
    }


SLOTS = 16


@lru_cache(maxsize=4)
def _slot_upsert(dialect_name: str) -> Prepared:
    stmt = conflict_insert(dialect_name, slot_t).values(
        {c: bindparam(f"v_{c}") for c in ("account_id", "slot", *COLUMNS)}
    )
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=["account_id", "slot"],
            set_={c: slot_t.c[c] + stmt.excluded[c] for c in COLUMNS},
        )
    )


def _transaction_slot(conn: Connection, seed: int) -> int:
    """One slot for every hot-account change of a transaction: entries of one transaction
    then lock one row per hot account, in one order, as without slots, so they cannot
    deadlock with each other; different transactions spread over the slots."""
    return int(conn.info.setdefault(_SLOT_KEY, seed % SLOTS))


_SLOT_KEY = "fenqi.ledger.slot"


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _forget_slot(conn: Connection) -> None:
    conn.info.pop(_SLOT_KEY, None)


def apply_deltas(
    conn: Connection,
    currency: str,
    deltas: dict[int, Delta],
    enforce_cap: bool = True,
    slot: int = 0,
    after: dict[int, AfterBalance] | None = None,
) -> RejectCode | None:
    """Move every balance or none; returns why not (None when all moved).

    Accounts with rules move in the checked UPDATE; hot accounts (no rules) move in slot
    `slot % SLOTS` of their own, after the checked ones succeeded. `after`, when given, gets
    the balance columns and debit cap of each account the checked UPDATE moved (hot accounts'
    balances are spread over their slot rows, so they are not reported).
    """
    deltas = {i: d for i, d in deltas.items() if any(d.values())}
    if not deltas:
        return None
    meta = account_meta(conn, deltas)
    if len(meta) != len(deltas):
        return RejectCode.ACCOUNT_NOT_FOUND
    if any(cur != currency for _code, cur in meta.values()):
        return RejectCode.CURRENCY_MISMATCH
    hot = {i: d for i, d in deltas.items() if meta[i][0] in HOT_CODES}
    deltas = {i: d for i, d in deltas.items() if i not in hot}
    refused = _move_checked(conn, currency, deltas, enforce_cap, after) if deltas else None
    if refused is None and hot:
        _slot_upsert(conn.dialect.name).many(
            conn,
            [
                {
                    "v_account_id": i,
                    "v_slot": _transaction_slot(conn, slot),
                    **{f"v_{c}": hot[i].get(c, 0) for c in COLUMNS},
                }
                for i in sorted(hot)
            ],
        )
    return refused


def _move_checked(
    conn: Connection,
    currency: str,
    deltas: dict[int, Delta],
    enforce_cap: bool,
    after: dict[int, AfterBalance] | None = None,
) -> RejectCode | None:
    moved = _move(conn, deltas, True, enforce_cap)
    if len(moved) == len(deltas):
        if after is not None:
            after.update(moved)
        return None
    if moved:  # undo what moved; these rows are locked by this transaction
        _move(conn, {i: {k: -v for k, v in deltas[i].items()} for i in moved}, False)
    refused = min(set(deltas) - set(moved))
    d = deltas[refused]
    return _diagnose(
        conn,
        refused,
        currency,
        d.get("debits_pending", 0) + d.get("debits_posted", 0),
        d.get("credits_pending", 0) + d.get("credits_posted", 0),
    )


def _diagnose(
    conn: Connection, account_id: int, currency: str, debit: int, credit: int
) -> RejectCode:
    row = (
        conn.execute(
            select(acc.c.currency, bal)
            .join_from(acc, bal, bal.c.account_id == acc.c.id)
            .where(acc.c.id == account_id)
        )
        .mappings()
        .first()
    )
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
