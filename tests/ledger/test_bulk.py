"""Set-based posting: one entry per row, or one journal entry whose postings are the rows; both
move the same balances, which reconciliation recomputes from the postings (both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, literal, select, union_all
from sqlalchemy.exc import IntegrityError

from fenqi.clock import FixedClock
from fenqi.ledger.accounts import open_account
from fenqi.ledger.bulk import post_journal, post_rows
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.queries import reconcile
from fenqi.store.schema.ledger import ledger_balances as acc
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst

CLOCK = FixedClock(datetime(2026, 6, 1, 15, 0, tzinfo=UTC))
DAY = date(2026, 6, 1)
AMOUNTS = (120, 35, 7)


def _accounts(conn: Connection) -> tuple[list[int], int]:
    customers = [
        open_account(
            conn, CLOCK, AccountCode.INTEREST_RECEIVABLE, OwnerKind.CUSTOMER, str(n), "CNY"
        )
        for n in range(len(AMOUNTS))
    ]
    income = open_account(
        conn, CLOCK, AccountCode.INTEREST_INCOME, OwnerKind.PLATFORM, "platform", "CNY"
    )
    return customers, income


def _debits(conn: Connection, ids: list[int]) -> list[int]:
    query = select(acc.c.account_id, acc.c.debits_posted).where(acc.c.account_id.in_(ids))
    by_id = {row.account_id: row.debits_posted for row in conn.execute(query)}
    return [int(by_id[i]) for i in ids]


def _journal(conn: Connection, rows: Any, client_id: str = "eod:2026-06-01:interest:CNY:0") -> Any:
    return post_journal(
        conn,
        rows,
        client_id=client_id,
        business_date=DAY,
        now=CLOCK.now(),
        description="daily interest",
        ref_kind="partition",
        ref_id="0",
    )


def test_journal_is_one_entry_whose_postings_are_the_rows(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        customers, income = _accounts(conn)
        rows = union_all(
            *[
                select(literal(c), literal(income), literal(a), literal("interest"))
                for c, a in zip(customers, AMOUNTS, strict=True)
            ]
        )
        assert _journal(conn, rows) == (3, sum(AMOUNTS))
        entries = conn.execute(select(ent.c.id, ent.c.client_id, ent.c.ref_id)).all()
        assert [(e.client_id, e.ref_id) for e in entries] == [
            ("eod:2026-06-01:interest:CNY:0", "0")
        ]
        postings = conn.execute(
            select(pst.c.entry_id, pst.c.seq, pst.c.debit_account_id, pst.c.amount_fen).order_by(
                pst.c.seq
            )
        ).all()
        assert {p.entry_id for p in postings} == {entries[0].id}
        assert sorted(p.seq for p in postings) == [0, 1, 2]
        assert sorted((p.debit_account_id, p.amount_fen) for p in postings) == sorted(
            zip(customers, AMOUNTS, strict=True)
        )
        assert _debits(conn, customers) == list(AMOUNTS)
        income_credits = conn.execute(
            select(acc.c.credits_posted).where(acc.c.account_id == income)
        ).scalar_one()
        assert income_credits == sum(AMOUNTS)
        assert reconcile(conn) == []
        # no rows: no entry at all
        nothing = select(literal(customers[0]), literal(income), literal(1), literal("x")).where(
            literal(1) == 0
        )
        assert _journal(conn, nothing, client_id="empty") == (0, 0)
        assert conn.execute(select(func.count()).select_from(ent)).scalar_one() == 1
        # the next entry, from either shape, gets a fresh id
        post_rows(
            conn,
            select(
                literal("single"),
                literal(customers[0]),
                literal(income),
                literal(5),
                literal("interest"),
                literal("0"),
            ),
            business_date=DAY,
            now=CLOCK.now(),
            description="one",
            ref_kind="credit_account",
        )
        ids = conn.execute(select(ent.c.id).order_by(ent.c.id)).scalars().all()
        assert len(ids) == 2 and ids[1] > ids[0]
        assert reconcile(conn) == []


def test_a_journal_is_posted_once(db_engine: Engine) -> None:
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        customers, income = _accounts(conn)
        row = select(literal(customers[0]), literal(income), literal(9), literal("interest"))
        for _ in range(2):
            _journal(conn, row)
