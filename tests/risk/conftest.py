"""Risk fixtures: a synthetic credit table generated in-test, and models trained on it once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fenqi.clock import FixedClock
from fenqi.risk.registry import LoadedModel
from fenqi.risk.train import train_model
from support.frames import row_record

TRUE_WEIGHTS = {"utilization": 1.6, "income_k": -0.05, "delinquencies": 0.7}


def synthetic_credit(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """A credit-like table with a known data-generating process.

    Risk rises with utilization and past delinquencies, falls with income; the region matters;
    `months_on_book` uses -1 as a special "no history" code; income has missing values.
    """
    rng = np.random.default_rng(seed)
    utilization = rng.beta(2, 3, n)
    income_k = rng.gamma(4.0, 5.0, n)
    delinquencies = rng.poisson(0.6, n)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    region_effect = (
        pd.Series(region).map({"north": -0.3, "south": 0.0, "east": 0.4, "west": 0.9}).to_numpy()
    )
    months = rng.integers(1, 120, n).astype(float)
    months[rng.random(n) < 0.08] = -1
    logit = (
        -1.6
        + TRUE_WEIGHTS["utilization"] * utilization
        + TRUE_WEIGHTS["income_k"] * income_k
        + TRUE_WEIGHTS["delinquencies"] * delinquencies
        + region_effect
        + 0.4 * (months == -1)
        + rng.normal(0, 0.3, n)
    )
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    income = income_k * 1000
    income[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "row_id": np.arange(1, n + 1),
            "utilization": utilization,
            "income": income,
            "delinquencies": delinquencies,
            "region": region,
            "months_on_book": months,
            "noise": rng.normal(size=n),
            "outcome": np.where(bad, "bad", "good"),
        }
    )


@pytest.fixture(scope="session")
def credit_frame() -> pd.DataFrame:
    return synthetic_credit()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry")


def _train(frame: pd.DataFrame, kind: str, registry: Path, **params: Any) -> LoadedModel:
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    return train_model(frame, "outcome", kind, registry, clock, seed=1, params=params or None)


@pytest.fixture(scope="session")
def scorecard(credit_frame: pd.DataFrame, registry_dir: Path) -> LoadedModel:
    return _train(credit_frame, "scorecard", registry_dir, special_codes=[-1])


@pytest.fixture(scope="session")
def gbm(credit_frame: pd.DataFrame, registry_dir: Path) -> LoadedModel:
    return _train(credit_frame, "gbm", registry_dir)


def application(features: dict[str, Any], **policy: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "applicant_id": "app-1",
        "age": 30,
        "identity_verified": True,
        "blacklisted": False,
        "other_lenders_count": 0,
        "bureau_worst_dpd": 0,
        "customer_tier": "new",
        "monthly_income_fen": 1_500_000,
    }
    base.update(policy)
    base["features"] = features
    return base


def features_of(frame: pd.DataFrame, index: int) -> dict[str, Any]:
    row = frame.drop(columns=["outcome"]).iloc[index]
    return {
        k: (None if isinstance(v, float) and np.isnan(v) else v.item() if hasattr(v, "item") else v)
        for k, v in row_record(row).items()
    }


def _find_datasets() -> Path | None:
    """../shared/datasets from the repository, also from a worktree nested deeper
    (FENQI_DATASETS overrides)."""
    import os

    if os.environ.get("FENQI_DATASETS"):
        return Path(os.environ["FENQI_DATASETS"])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "datasets"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def datasets_dir() -> Path:
    found = _find_datasets()
    if found is None or not found.is_dir():
        pytest.skip("../shared/datasets is absent")
    return found
