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
