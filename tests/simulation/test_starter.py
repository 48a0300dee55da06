"""The starter risk model lives outside the credit service (issue 22): the service loads the
registry's model and never trains one on synthetic shoppers; the interfaces that start a
fresh installation put the starter model there first."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.credit.underwriting import load_decider
from fenqi.risk.errors import ArtifactError
from fenqi.settings import Settings
from fenqi.simulation.starter import ensure_starter_model, has_model

CLOCK = FixedClock.on(date(2026, 1, 1))


def test_the_service_never_trains_on_synthetic_shoppers(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    with pytest.raises(ArtifactError) as err:
        load_decider(empty)
    assert "fenqi serve" in err.value.message and "fenqi risk train" in err.value.message
    assert not empty.exists() or not any(empty.iterdir())  # nothing was trained
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite'}", models_dir=empty)
    ctx = build_context(settings, CLOCK)
    try:
        with pytest.raises(ArtifactError):
            _ = ctx.underwriter
    finally:
        ctx.engine.dispose()


def test_the_starter_model_is_trained_once_then_loaded(tmp_path: Path, models_dir: Path) -> None:
    assert ensure_starter_model(models_dir, CLOCK) is False  # a registry with a model is kept
    fresh = tmp_path / "models"
    assert not has_model(fresh)
    assert ensure_starter_model(fresh, CLOCK, rows=1_500) is True
    assert has_model(fresh) and ensure_starter_model(fresh, CLOCK, rows=1_500) is False
    assert load_decider(fresh).decide is not None
