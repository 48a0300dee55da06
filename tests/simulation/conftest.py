"""Simulation fixtures: a context on a fresh database with the session's trained model."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

import fenqi.risk
from fenqi.clock import FixedClock
from fenqi.context import Context, build_context
from fenqi.settings import Settings
from fenqi.simulation.market import SimConfig
from fenqi.simulation.runner import SimResult, run
from fenqi.store.engine import create_all, make_engine

START = date(2026, 1, 1)


@pytest.fixture
def make_ctx(tmp_path: Path, models_dir: Path) -> Callable[[Engine], Context]:
    def make(engine: Engine) -> Context:
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            models_dir=models_dir,
            keys_file=tmp_path / "keys.json",
        )
        return build_context(settings, FixedClock.on(START, 8), engine)

    return make


@pytest.fixture
def run_on_sqlite(
    make_ctx: Callable[[Engine], Context], tmp_path: Path
) -> Callable[[SimConfig, str], SimResult]:
    """Run a simulation start to end in one process on a SQLite file of its own: the
    reference another run (parallel, stopped and resumed) must equal."""

    def run_it(config: SimConfig, name: str) -> SimResult:
        engine = make_engine(f"sqlite:///{tmp_path / name}")
        create_all(engine)
        try:
            return run(make_ctx(engine), config)
        finally:
            engine.dispose()

    return run_it


@pytest.fixture
def strict_flow(tmp_path: Path) -> Path:
    """The default flow with every score cut-off 60 points higher."""
    flow = json.loads((Path(fenqi.risk.__file__).parent / "flows" / "default.json").read_text())
    cutoff = next(n for n in flow["nodes"] if n["id"] == "cutoff")
    raise_by = {
        ">= 520": ">= 580",
        "[500..520)": "[560..580)",
        ">= 540": ">= 600",
        "[520..540)": "[580..600)",
    }
    for rule in cutoff["content"]["rules"]:
        rule["cutoff_i2"] = raise_by.get(rule["cutoff_i2"], rule["cutoff_i2"])
    flow["fenqi"]["version"] = "strict-1"
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(flow))
    return path
