"""The engine on real public credit data (../shared/datasets), subsampled to stay fast."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fenqi.cli import app
from fenqi.clock import FixedClock
from fenqi.risk.data import read_table
from fenqi.risk.decision import Decider
from fenqi.risk.flow import load_flow
from fenqi.risk.train import train_model
from risk.conftest import _find_datasets, application
from support.frames import frame_records

pytestmark = pytest.mark.dataset
CLOCK = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def uci_sample() -> pd.DataFrame:
    found = _find_datasets()
    if found is None or not (found / "uci_credit_card_default.csv").is_file():
        pytest.skip("../shared/datasets is absent")
    return read_table(found / "uci_credit_card_default.csv").sample(n=8_000, random_state=5)


@pytest.mark.parametrize(("kind", "auc_min"), [("scorecard", 0.74), ("gbm", 0.75)])
def test_uci_models_reach_published_quality(
    uci_sample: pd.DataFrame, tmp_path: Path, kind: str, auc_min: float, datasets_dir: Path
) -> None:
    loaded = train_model(uci_sample, "default_payment_next_month", kind, tmp_path, CLOCK)
    measured = loaded.manifest["metrics"]
    assert measured["auc"] > auc_min and measured["ks"] > 0.35
    assert measured["psi_holdout_vs_train"] < 0.1
    names = [f["name"] for f in loaded.manifest["features"]]
    assert "ID" not in names and "PAY_0" in names  # the row number is not a feature


def test_german_credit_through_the_cli(datasets_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    data = datasets_dir / "german_credit.csv"
    result = runner.invoke(
        app,
        [
            "risk",
            "train",
            "--data",
            str(data),
            "--target",
            "creditability",
            "--model",
            "scorecard",
            "--out",
            str(tmp_path / "reg"),
        ],
    )
    assert result.exit_code == 0, result.output
    model_dir = Path(result.stdout.strip().splitlines()[-1])
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["target"]["bad_label"] == "bad"  # inferred from good/bad
    assert manifest["metrics"]["auc"] > 0.72
    result = runner.invoke(
        app,
        [
            "risk",
            "evaluate",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--target",
            "creditability",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == 1000


def test_german_credit_gbm_decisions(datasets_dir: Path, tmp_path: Path) -> None:
    frame = read_table(datasets_dir / "german_credit.csv")
    loaded = train_model(frame, "creditability", "gbm", tmp_path, CLOCK)
    assert loaded.manifest["metrics"]["auc"] > 0.7
    decider = Decider(loaded, load_flow())
    features = frame_records(frame.drop(columns=["creditability"]))
    outcomes = {
        decider.decide(application(f, applicant_id=str(i))).outcome
        for i, f in enumerate(features[:200])
    }
    assert outcomes >= {"approve", "decline"}
