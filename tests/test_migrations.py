"""`fenqi db upgrade` builds exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fenqi.store.engine import make_engine
from fenqi.store.migrate import current, upgrade
from fenqi.store.schema import load_all


def test_migrations_match_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    assert current(engine) is not None
    upgrade(engine)  # a second run is a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), load_all())
    engine.dispose()
    assert diff == [], diff


def test_migrations_step_back_and_forth_keeping_the_books(db_url: str) -> None:
    """Down to 0003 and up again (plan income, past-due date and the ledger's balance table each
    undone and redone, tables rebuilt on SQLite): every balance survives and reconciles."""
    from datetime import UTC, datetime

    from fenqi.clock import FixedClock
    from fenqi.ledger.entry import EntryRequest, PostingSpec
    from fenqi.ledger.service import post_entry, reconcile, trial_balance
    from fenqi.store.migrate import downgrade
    from support.ledger_world import make_world

    clock = FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        w = make_world(conn, clock)
        post_entry(
            conn, clock, EntryRequest("buy", "CNY", (PostingSpec(w.principal, w.merchant, 700),))
        )
        post_entry(conn, clock, EntryRequest("fee", "CNY", (PostingSpec(w.fee, w.fee_income, 30),)))
        before = trial_balance(conn).rows
    downgrade(engine, "0003")
    assert current(engine) == "0003"
    upgrade(engine)
    with engine.connect() as conn:
        assert trial_balance(conn).rows == before
        assert reconcile(conn) == []
        diff = compare_metadata(MigrationContext.configure(conn), load_all())
    engine.dispose()
    assert diff == [], diff
    assert any(row["debits_posted"] == 700 for row in before)


def test_0011_fills_each_orders_captures_from_its_plans(db_url: str) -> None:
    """Orders captured before migration 0011 get their captures back from the plans each
    capture booked; shops get CNY."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from fenqi.clock import FixedClock
    from fenqi.credit import checkout
    from fenqi.credit import service as credit
    from fenqi.credit.merchants import create_merchant
    from fenqi.products import load_catalog
    from fenqi.store.migrate import downgrade
    from fenqi.store.schema.parties import merchants, order_captures

    clock = FixedClock(datetime(2026, 1, 2, 4, 0, tzinfo=UTC))
    huabei = load_catalog(2400)["huabei"]
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        create_merchant(conn, clock, "m_old", "old shop", "general")
        account = credit.open_credit_account(conn, clock, huabei, "1", 1_000_000)
        order = checkout.authorize_order(
            conn,
            clock,
            huabei,
            merchant_id="m_old",
            credit_account_id=account,
            amount_fen=90_000,
            terms=3,
            merchant_order_ref="old-1",
            client_id="a",
            cap_bp=2400,
            hold_seconds=3600,
        )
        for n, amount in enumerate((60_000, None)):
            checkout.capture_order(
                conn,
                clock,
                huabei,
                merchant_id="m_old",
                order_id=order["id"],
                amount_fen=amount,
                final=None,
                client_id=f"c{n}",
                cap_bp=2400,
            )
        before = conn.execute(
            select(
                order_captures.c.order_id,
                order_captures.c.number,
                order_captures.c.amount_fen,
                order_captures.c.plan_id,
            ).order_by(order_captures.c.number)
        ).all()
    assert [tuple(r)[1:3] for r in before] == [(1, 60_000), (2, 30_000)]
    downgrade(engine, "0010")
    upgrade(engine)
    with engine.connect() as conn:
        after = conn.execute(
            select(
                order_captures.c.order_id,
                order_captures.c.number,
                order_captures.c.amount_fen,
                order_captures.c.plan_id,
            ).order_by(order_captures.c.number)
        ).all()
        assert conn.execute(select(merchants.c.currency)).scalar_one() == "CNY"
    engine.dispose()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
