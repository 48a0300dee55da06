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
        post_entry(
            conn, clock, EntryRequest("fee", "CNY", (PostingSpec(w.fee, w.fee_income, 30),))
        )
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
