"""Ledger accounts: opening one (idempotent, safe under concurrency), caps, balances."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, bindparam, event, func, insert, select, update

from fenqi.clock import Clock
from fenqi.ledger.chart import (
    CREDITS_MUST_NOT_EXCEED_DEBITS,
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    AccountCode,
    OwnerKind,
)
from fenqi.ledger.entry import LedgerError
from fenqi.store.prepared import Prepared
from fenqi.store.schema.ledger import ledger_account_slots as slot_t
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_balances as bal
from fenqi.store.upsert import conflict_insert, insert_ignore

# Account ids never change and accounts are never deleted, so an id once read is cached, per
# engine (one database), saving a query on every posting. What a transaction reads or inserts
# is kept aside for that transaction (it may still be undone) and joins the engine's cache when
# it commits; a rollback, or a rollback to any savepoint, forgets all of it (an id inserted
# under a savepoint that is rolled back can be handed out again, on SQLite, to another account).
_IDS: WeakKeyDictionary[Engine, dict[tuple[str, str, str, str], int]] = WeakKeyDictionary()
_IDS_MAX = 100_000
_PENDING = "fenqi.ledger.account_ids"


@event.listens_for(Engine, "commit")
def _keep_read(conn: Connection) -> None:
    """What this transaction read or inserted joins the engine's caches."""
    for key, caches in ((_PENDING, _IDS), (_PENDING_META, _META)):
        pending = conn.info.pop(key, None)
        if pending:
            cache: dict[Any, Any] = caches.setdefault(conn.engine, {})
            if len(cache) + len(pending) <= _IDS_MAX:
                cache.update(pending)


@event.listens_for(Engine, "rollback")
def _drop_read(conn: Connection) -> None:
    conn.info.pop(_PENDING, None)
    conn.info.pop(_PENDING_META, None)


@event.listens_for(Engine, "rollback_savepoint")
def _drop_read_savepoint(conn: Connection, _name: str | None, _context: Any) -> None:
    _drop_read(conn)


def _pending_ids(conn: Connection) -> dict[tuple[str, str, str, str], int]:
    found: dict[tuple[str, str, str, str], int] = conn.info.setdefault(_PENDING, {})
    return found


def _pending_meta(conn: Connection) -> dict[int, tuple[str, str]]:
    found: dict[int, tuple[str, str]] = conn.info.setdefault(_PENDING_META, {})
    return found


def _known_id(conn: Connection, key: tuple[str, str, str, str]) -> int | None:
    """An id this engine has committed, or this transaction has read or inserted."""
    cache = _IDS.get(conn.engine)
    if cache is not None and key in cache:
        return cache[key]
    pending = conn.info.get(_PENDING)
    return None if pending is None else pending.get(key)


def _remember(conn: Connection, key: tuple[str, str, str, str], account_id: int) -> None:
    _pending_ids(conn)[key] = account_id
    _pending_meta(conn)[account_id] = (key[0], key[3])


# built once: the statement object (and its cache key) is reused, only the parameters change
_ID_BY_KEY = Prepared(
    select(acc.c.id).where(
        acc.c.code == bindparam("k_code"),
        acc.c.owner_kind == bindparam("k_owner_kind"),
        acc.c.owner_id == bindparam("k_owner_id"),
        acc.c.currency == bindparam("k_currency"),
    )
)


_IDS_OF_OWNER = select(acc.c.code, acc.c.id).where(
    acc.c.owner_kind == bindparam("k_owner_kind"),
    acc.c.owner_id == bindparam("k_owner_id"),
    acc.c.currency == bindparam("k_currency"),
    acc.c.code.in_(bindparam("k_codes", expanding=True)),
)


@lru_cache(maxsize=32)
def _insert_if_absent_returning(dialect_name: str, rows: int) -> Prepared:
    """INSERT of `rows` accounts in one VALUES list, those that exist skipped, RETURNING the
    new ones' (code, id); built once per dialect and row count."""
    columns = ("code", "owner_kind", "owner_id", "currency", "created_at")
    return Prepared(
        conflict_insert(dialect_name, acc)
        .values(
            [{c: bindparam(f"{c}_{i}", type_=acc.c[c].type) for c in columns} for i in range(rows)]
        )
        .on_conflict_do_nothing(index_elements=["code", "owner_kind", "owner_id", "currency"])
        .returning(acc.c.code, acc.c.id)
    )


def _key_params(code: str, owner_kind: str, owner_id: str, currency: str) -> dict[str, str]:
    return {
        "k_code": code,
        "k_owner_kind": owner_kind,
        "k_owner_id": owner_id,
        "k_currency": currency,
    }


def _balance_row(account_id: int, code: AccountCode, debit_cap_fen: int | None) -> dict[str, Any]:
    """A new account's balance row: zero, with the rules of its code and its cap."""
    return {
        "account_id": account_id,
        "debit_cap_fen": debit_cap_fen,
        "credits_must_not_exceed_debits": code in CREDITS_MUST_NOT_EXCEED_DEBITS,
        "debits_must_not_exceed_credits": code in DEBITS_MUST_NOT_EXCEED_CREDITS,
        "debits_pending": 0,
        "debits_posted": 0,
        "credits_pending": 0,
        "credits_posted": 0,
    }


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
    cache_key = (code.value, owner_kind.value, owner_id, currency)
    known = _known_id(conn, cache_key)
    if known is not None:
        return known
    params = _key_params(*cache_key)
    found = _ID_BY_KEY.run(conn, params).scalar()
    if found is not None:
        _remember(conn, cache_key, int(found))
        return int(found)
    insert_ignore(conn, acc, {**key, "created_at": clock.now()}, list(key))
    account_id = int(_ID_BY_KEY.run(conn, params).scalar_one())
    # a concurrent opener that inserted the account first wrote its balance row in the same
    # transaction, which the insert above waited for: then there is nothing to write here
    insert_ignore(conn, bal, _balance_row(account_id, code, debit_cap_fen), ["account_id"])
    _remember(conn, cache_key, account_id)
    return account_id


def open_accounts(
    conn: Connection,
    clock: Clock,
    codes: Iterable[AccountCode],
    owner_kind: OwnerKind,
    owner_id: str,
    currency: str,
    debit_caps: dict[AccountCode, int | None] | None = None,
) -> dict[AccountCode, int]:
    """One owner's accounts (say a new credit account's receivables) in two statements: the
    missing ones inserted together (if absent, so safe under concurrency), then all read back."""
    wanted = list(dict.fromkeys(codes))
    caps = debit_caps or {}
    out = {
        code: known
        for code in wanted
        if (known := _known_id(conn, (code.value, owner_kind.value, owner_id, currency)))
        is not None
    }
    missing = [code for code in wanted if code not in out]
    if not missing:
        return out
    now = clock.now()
    rows = [
        {
            "code": code.value,
            "owner_kind": owner_kind.value,
            "owner_id": owner_id,
            "currency": currency,
            "created_at": now,
        }
        for code in missing
    ]
    # the rows inserted come back with their ids, and get their balance rows; only rows that
    # already existed (a concurrent opener's, with its balance rows) are read back
    inserted = (
        _insert_if_absent_returning(conn.dialect.name, len(rows))
        .run(conn, {f"{c}_{i}": v for i, row in enumerate(rows) for c, v in row.items()})
        .rows
    )
    by_code = {str(code): int(id_) for code, id_ in inserted}
    if by_code:
        _INSERT_BALANCES.many(
            conn,
            [
                _balance_row(by_code[code.value], code, caps.get(code))
                for code in missing
                if code.value in by_code
            ],
        )
    if len(by_code) < len(missing):
        found = conn.execute(
            _IDS_OF_OWNER,
            {
                "k_owner_kind": owner_kind.value,
                "k_owner_id": owner_id,
                "k_currency": currency,
                "k_codes": [code.value for code in missing if code.value not in by_code],
            },
        ).all()
        by_code.update({str(code): int(id_) for code, id_ in found})
    for code in missing:
        out[code] = by_code[code.value]
        _remember(conn, (code.value, owner_kind.value, owner_id, currency), out[code])
    return {code: out[code] for code in wanted}


def find_account(
    conn: Connection, code: AccountCode, owner_kind: OwnerKind, owner_id: str, currency: str
) -> int | None:
    """The id of an existing account, or None (never creates one)."""
    found = _ID_BY_KEY.run(
        conn, _key_params(code.value, owner_kind.value, owner_id, currency)
    ).scalar()
    return None if found is None else int(found)


def set_debit_cap(conn: Connection, account_id: int, debit_cap_fen: int | None) -> None:
    """Change an account's cap (a credit limit). Lowering it below use blocks new debits only."""
    if debit_cap_fen is not None and debit_cap_fen < 0:
        raise LedgerError("debit_cap_fen must not be negative", code="invalid_cap")
    conn.execute(
        update(bal).where(bal.c.account_id == account_id).values(debit_cap_fen=debit_cap_fen)
    )


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


def _balance_statement() -> Any:
    """The account's row and, beside each balance column, what its slot rows add (hot accounts
    spread their changes over slots): one statement, built once."""
    added = [
        select(func.coalesce(func.sum(slot_t.c[c]), 0))
        .where(slot_t.c.account_id == acc.c.id)
        .scalar_subquery()
        .label(f"slots_{c}")
        for c in BALANCE_COLUMNS
    ]
    return (
        select(
            acc.c.id,
            acc.c.code,
            acc.c.owner_kind,
            acc.c.owner_id,
            acc.c.currency,
            bal.c.debit_cap_fen,
            *[bal.c[c] for c in BALANCE_COLUMNS],
            *added,
        )
        .join_from(acc, bal, bal.c.account_id == acc.c.id)
        .where(acc.c.id == bindparam("k_id"))
    )


def get_balance(conn: Connection, account_id: int) -> AccountBalance:
    row = _BALANCE.run(conn, {"k_id": account_id}).mapping()
    if row is None:
        raise LedgerError(
            f"account {account_id} not found", code="not_found", legacy_code="account_not_found"
        )
    total = {c: int(row[c]) + int(row[f"slots_{c}"]) for c in BALANCE_COLUMNS}
    return AccountBalance(
        account_id=row["id"],
        code=row["code"],
        owner_kind=row["owner_kind"],
        owner_id=row["owner_id"],
        currency=row["currency"],
        debit_cap_fen=row["debit_cap_fen"],
        **total,
    )


# id -> (code, currency): immutable once an account exists; cached like ids (after commit).
_META: WeakKeyDictionary[Engine, dict[int, tuple[str, str]]] = WeakKeyDictionary()
_PENDING_META = "fenqi.ledger.account_meta"
BALANCE_COLUMNS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
_BALANCE = Prepared(_balance_statement())
_INSERT_BALANCES = Prepared(insert(bal))


def account_meta(conn: Connection, account_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """(code, currency) of each existing account among `account_ids`."""
    cache = _META.get(conn.engine) or {}
    pending = conn.info.get(_PENDING_META) or {}
    out: dict[int, tuple[str, str]] = {}
    missing = []
    for i in account_ids:
        found = cache.get(i) or pending.get(i)
        if found is None:
            missing.append(i)
        else:
            out[i] = found
    if missing:
        rows = conn.execute(_META_OF, {"k_ids": sorted(missing)}).all()
        read = {int(r.id): (str(r.code), str(r.currency)) for r in rows}
        _pending_meta(conn).update(read)
        out.update(read)
    return out


_META_OF = select(acc.c.id, acc.c.code, acc.c.currency).where(
    acc.c.id.in_(bindparam("k_ids", expanding=True))
)
