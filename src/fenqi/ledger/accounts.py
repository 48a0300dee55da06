"""Ledger accounts: opening one (idempotent, safe under concurrency), caps, balances."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, bindparam, event, func, select, update

from fenqi.clock import Clock
from fenqi.ledger.chart import (
    CREDITS_MUST_NOT_EXCEED_DEBITS,
    DEBITS_MUST_NOT_EXCEED_CREDITS,
    AccountCode,
    OwnerKind,
)
from fenqi.ledger.entry import LedgerError
from fenqi.store.schema.ledger import ledger_account_slots as slot_t
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.upsert import conflict_insert, insert_ignore

# Account ids never change and accounts are never deleted, so an id once read is cached, per
# engine (one database), saving a query on every posting. Ids are cached only when read from a
# committed row, never from this transaction's own insert (which could still roll back).
_IDS: WeakKeyDictionary[Engine, dict[tuple[str, str, str, str], int]] = WeakKeyDictionary()
_IDS_MAX = 100_000
_PENDING = "fenqi.ledger.account_ids"


@event.listens_for(Engine, "commit")
def _keep_read(conn: Connection) -> None:
    """What this transaction read from committed rows joins the engine's caches."""
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


# built once: the statement object (and its cache key) is reused, only the parameters change
_ID_BY_KEY = select(acc.c.id).where(
    acc.c.code == bindparam("k_code"),
    acc.c.owner_kind == bindparam("k_owner_kind"),
    acc.c.owner_id == bindparam("k_owner_id"),
    acc.c.currency == bindparam("k_currency"),
)


_IDS_OF_OWNER = select(acc.c.code, acc.c.id).where(
    acc.c.owner_kind == bindparam("k_owner_kind"),
    acc.c.owner_id == bindparam("k_owner_id"),
    acc.c.currency == bindparam("k_currency"),
    acc.c.code.in_(bindparam("k_codes", expanding=True)),
)


@lru_cache(maxsize=4)
def _insert_if_absent(dialect_name: str) -> Any:
    return conflict_insert(dialect_name, acc).on_conflict_do_nothing(
        index_elements=["code", "owner_kind", "owner_id", "currency"]
    )


def _key_params(code: str, owner_kind: str, owner_id: str, currency: str) -> dict[str, str]:
    return {"k_code": code, "k_owner_kind": owner_kind, "k_owner_id": owner_id,
            "k_currency": currency}


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
    cache = _IDS.setdefault(conn.engine, {})
    cache_key = (code.value, owner_kind.value, owner_id, currency)
    if cache_key in cache:
        return cache[cache_key]
    params = _key_params(*cache_key)
    found = conn.execute(_ID_BY_KEY, params).scalar()
    if found is not None:
        conn.info.setdefault(_PENDING, {})[cache_key] = int(found)
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
    return int(conn.execute(_ID_BY_KEY, params).scalar_one())


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
    cache = _IDS.setdefault(conn.engine, {})
    out = {
        code: cache[k]
        for code in wanted
        if (k := (code.value, owner_kind.value, owner_id, currency)) in cache
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
            "debit_cap_fen": caps.get(code),
            "credits_must_not_exceed_debits": code in CREDITS_MUST_NOT_EXCEED_DEBITS,
            "debits_must_not_exceed_credits": code in DEBITS_MUST_NOT_EXCEED_CREDITS,
            "debits_pending": 0,
            "debits_posted": 0,
            "credits_pending": 0,
            "credits_posted": 0,
            "created_at": now,
        }
        for code in missing
    ]
    conn.execute(_insert_if_absent(conn.dialect.name), rows)
    found = conn.execute(
        _IDS_OF_OWNER,
        {"k_owner_kind": owner_kind.value, "k_owner_id": owner_id, "k_currency": currency,
         "k_codes": [code.value for code in missing]},
    ).all()
    # not cached: rows this transaction inserted could still be undone by a savepoint
    by_code = {str(code): int(id_) for code, id_ in found}
    out.update({code: by_code[code.value] for code in missing})
    return {code: out[code] for code in wanted}


def find_account(
    conn: Connection, code: AccountCode, owner_kind: OwnerKind, owner_id: str, currency: str
) -> int | None:
    """The id of an existing account, or None (never creates one)."""
    found = conn.execute(
        _ID_BY_KEY, _key_params(code.value, owner_kind.value, owner_id, currency)
    ).scalar()
    return None if found is None else int(found)


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
    return select(acc, *added).where(acc.c.id == bindparam("k_id"))


def get_balance(conn: Connection, account_id: int) -> AccountBalance:
    row = conn.execute(_BALANCE, {"k_id": account_id}).mappings().first()
    if row is None:
        raise LedgerError(f"account {account_id} not found", code="account_not_found")
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
_BALANCE = _balance_statement()


def account_meta(conn: Connection, account_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """(code, currency) of each existing account among `account_ids`."""
    cache = _META.setdefault(conn.engine, {})
    wanted = set(account_ids)
    out = {i: cache[i] for i in wanted if i in cache}
    missing = wanted - set(out)
    if missing:
        rows = conn.execute(
            select(acc.c.id, acc.c.code, acc.c.currency).where(acc.c.id.in_(sorted(missing)))
        ).all()
        found = {int(r.id): (str(r.code), str(r.currency)) for r in rows}
        conn.info.setdefault(_PENDING_META, {}).update(found)
        out.update(found)
    return out
