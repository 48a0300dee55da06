"""Shared fixtures. `db_engine` runs a test on SQLite and on PostgreSQL.

PostgreSQL is never skipped silently: if it cannot be reached the PostgreSQL half fails, unless
FENQI_TEST_SKIP_POSTGRES=1 is set by hand (never in CI). Each test gets its own schema, so tests
run in parallel and leave nothing behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from fenqi.store.engine import create_all, make_engine

PG_URL = os.environ.get(
    "FENQI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _pg_engine(schema: str) -> Engine:
    return make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database of each kind (tables not created)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fenqi.sqlite'}"
        return
    if os.environ.get("FENQI_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("FENQI_TEST_SKIP_POSTGRES=1 set by hand")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - only when PostgreSQL is down
        raise RuntimeError(f"PostgreSQL unreachable at {PG_URL}: {exc}") from exc
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with every table created."""
    engine = make_engine(db_url)
    create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip("../shared/datasets is absent")
    return DATASETS


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A risk model registry with one model, trained once per test session (and worker)."""
    from datetime import date

    from fenqi.clock import FixedClock
    from fenqi.simulation.starter import ensure_starter_model

    path = tmp_path_factory.mktemp("models") / "registry"
    ensure_starter_model(path, FixedClock.on(date(2026, 1, 1)), rows=4000)
    return path
