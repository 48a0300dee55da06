"""Scorecard and GBM on the synthetic table, and the registry round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fenqi.risk import metrics
from fenqi.risk.data import encode_frame
from fenqi.risk.errors import ArtifactError, FeatureMismatchError
from fenqi.risk.gbm import GbmParams, fit_gbm
from fenqi.risk.registry import LoadedModel, load_model
from fenqi.risk.scorecard import ScorecardModel
from fenqi.risk.train import prepare
from risk.conftest import features_of


def _y(frame: pd.DataFrame) -> np.ndarray:
    return (frame["outcome"] == "bad").to_numpy(dtype=int)


@pytest.mark.parametrize(("name", "auc_min"), [("scorecard", 0.70), ("gbm", 0.69)])
def test_models_rank_risk_and_record_holdout_metrics(
    name: str, auc_min: float, request: pytest.FixtureRequest, credit_frame: pd.DataFrame
) -> None:
    loaded: LoadedModel = request.getfixturevalue(name)
    manifest = loaded.manifest
    assert manifest["metrics"]["sample"] == "holdout"
    assert manifest["metrics"]["n"] == 600
    # The synthetic data is linear in log-odds, so the scorecard is expected to do best.
    assert manifest["metrics"]["auc"] > auc_min
    assert "row_id" not in [f["name"] for f in manifest["features"]]  # a row number, dropped
    assert manifest["created_at"] == "2026-01-01T00:00:00+00:00"
    assert len(manifest["training_data"]["fingerprint_sha256"]) == 64
    pd_ = loaded.predict_pd(credit_frame)
    assert metrics.auc(_y(credit_frame), pd_) > auc_min
    # Calibrated: the mean PD is close to the observed bad rate.
    assert abs(pd_.mean() - _y(credit_frame).mean()) < 0.03


@pytest.mark.parametrize("name", ["scorecard", "gbm"])
def test_single_row_explanation_agrees_with_batch(
    name: str, request: pytest.FixtureRequest, credit_frame: pd.DataFrame
) -> None:
    loaded: LoadedModel = request.getfixturevalue(name)
    batch_pd = loaded.predict_pd(credit_frame.iloc[:20])
    for i in range(20):
        explained = loaded.explain(features_of(credit_frame, i))
        assert explained.pd == pytest.approx(batch_pd[i], rel=1e-6)
        assert explained.score == loaded.score(np.array([explained.pd]))[0]
        assert len(explained.reasons) <= 4
        losses = [r.points_lost for r in explained.reasons]
        assert losses == sorted(losses, reverse=True) and all(x > 0 for x in losses)


def test_scorecard_points_add_up_and_reasons_are_the_costliest(
    scorecard: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    model = scorecard.model
    assert isinstance(model, ScorecardModel)
    matrix = scorecard.matrix(credit_frame)
    points = model.points_matrix(matrix)
    np.testing.assert_allclose(
        points.sum(axis=1), model.scale.score_from_pd(model.predict_pd(matrix)), rtol=1e-9
    )
    risky = int(np.argmax(credit_frame["utilization"] + credit_frame["delinquencies"]))
    reasons = [r.feature for r in scorecard.explain(features_of(credit_frame, risky)).reasons]
    assert reasons and set(reasons) <= {
        "utilization",
        "delinquencies",
        "income",
        "region",
        "months_on_book",
    }
    # The noise column carries no information: it must not be a top reason for anyone here.
    assert all(c.name != "noise" or c.iv < 0.05 for c in model.characteristics)


def test_scorecard_table_has_special_and_missing_bins_and_exports(
    scorecard: LoadedModel,
) -> None:
    table = pd.read_csv(scorecard.path / "scorecard_table.csv")
    months = table[table["characteristic"] == "months_on_book"]
    assert {"Special -1", "Missing"} <= set(months["bin"])
    special = months[months["bin"] == "Special -1"]["points"].iloc[0]
    assert special < months["points"].max()  # "no history" (-1) costs points
    utilization = table[table["characteristic"] == "utilization"]
    regular = utilization[
        ~utilization["bin"].str.startswith("Special") & (utilization["bin"] != "Missing")
    ]["points"].tolist()
    assert regular == sorted(regular, reverse=True)  # monotonic: more utilization, fewer points
    html = (scorecard.path / "scorecard_table.html").read_text()
    assert "<table" in html and "months_on_book" in html


def test_gbm_monotone_constraint_is_respected(credit_frame: pd.DataFrame) -> None:
    prepared = prepare(credit_frame, "outcome")
    params = GbmParams(monotone_constraints={"utilization": 1}, max_rounds=200, seed=3)
    model = fit_gbm(prepared.matrix, prepared.y, prepared.specs, params)
    column = [s.name for s in prepared.specs].index("utilization")
    grid = np.repeat(prepared.matrix[:50], 21, axis=0)
    grid[:, column] = np.tile(np.linspace(0, 1, 21), 50)
    pd_ = model.predict_pd(grid).reshape(50, 21)
    assert np.all(np.diff(pd_, axis=1) >= -1e-12)


def test_isotonic_calibration_gives_probabilities(credit_frame: pd.DataFrame) -> None:
    prepared = prepare(credit_frame, "outcome")
    model = fit_gbm(
        prepared.matrix,
        prepared.y,
        prepared.specs,
        GbmParams(calibration="isotonic", max_rounds=200, refit_full=False),
    )
    pd_ = model.predict_pd(prepared.matrix)
    assert pd_.min() > 0.0 and pd_.max() < 1.0
    assert abs(pd_.mean() - prepared.y.mean()) < 0.03


def test_registry_versions_and_loading(scorecard: LoadedModel, gbm: LoadedModel) -> None:
    registry = scorecard.path.parent
    assert scorecard.path.name == "scorecard-v0001" and gbm.path.name == "gbm-v0001"
    assert load_model(scorecard.path).model_id == "scorecard-v0001"
    assert load_model(registry).model_id in {"scorecard-v0001", "gbm-v0001"}
    assert json.loads((gbm.path / "manifest.json").read_text())["kind"] == "gbm"


def test_loading_refuses_input_without_model_features(
    gbm: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    with pytest.raises(FeatureMismatchError, match="lacks model features: utilization"):
        load_model(gbm.path).predict_pd(credit_frame.drop(columns=["utilization"]))
    bad = credit_frame.assign(income="high")
    with pytest.raises(FeatureMismatchError, match="non-numeric values: income"):
        encode_frame(bad, gbm.specs)


def test_broken_artifacts_are_refused(tmp_path: Path, gbm: LoadedModel) -> None:
    with pytest.raises(ArtifactError, match="neither a model version nor a registry"):
        load_model(tmp_path)
    copy = tmp_path / "gbm-v0001"
    copy.mkdir()
    (copy / "manifest.json").write_text((gbm.path / "manifest.json").read_text())
    with pytest.raises(ArtifactError, match="cannot load GBM"):
        load_model(copy)
    (copy / "manifest.json").write_text("{")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        load_model(copy)


def test_each_save_is_a_new_version_and_the_newest_loads(
    scorecard: LoadedModel, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from fenqi.clock import FixedClock
    from fenqi.risk.registry import save_model

    clock = FixedClock(datetime(2026, 2, 1, tzinfo=UTC))
    paths = []
    for _ in range(3):
        saved = save_model(
            scorecard.model,
            tmp_path,
            clock,
            target={"column": "outcome"},
            data_fingerprint="f" * 64,
            n_rows=1,
            metrics={},
            params={},
        )
        paths.append(saved.path.name)
        clock.advance(timedelta(hours=1))
    assert paths == ["scorecard-v0001", "scorecard-v0002", "scorecard-v0003"]
    assert load_model(tmp_path).model_id == "scorecard-v0003"


def test_scorecard_report_includes_the_table(
    scorecard: LoadedModel, credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from fenqi.risk.report import evaluate_frame, write_report

    json_path = write_report(
        evaluate_frame(scorecard, credit_frame, "outcome"), tmp_path / "r.html"
    )
    html = (tmp_path / "r.html").read_text()
    assert "<h2>Scorecard</h2>" in html and "months_on_book" in html
    assert json.loads(json_path.read_text())["model_id"] == "scorecard-v0001"


def test_gbm_single_row_path_matches_booster_predict(
    gbm: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    """One application is explained through LightGBM's C library directly; the contributions
    must be exactly what `Booster.predict(pred_contrib=True)` gives, for the model as trained
    (in memory) and as loaded from its files, missing values and categories included."""
    from fenqi.risk.gbm import GbmModel, _native_lib

    if _native_lib() is None:
        pytest.skip("LightGBM's shared library is not where the package keeps it")
    matrix = gbm.matrix(credit_frame.iloc[:300])
    loaded = load_model(gbm.path).model
    for model in (gbm.model, loaded):
        assert isinstance(model, GbmModel)
        expected = np.asarray(model.booster.predict(matrix, pred_contrib=True, num_threads=1))
        got = np.array([model._row_contributions(row) for row in matrix])
        assert model._row_predictor is not None
        np.testing.assert_array_equal(got, expected)
    assert np.isnan(matrix).any()  # the sample covers missing values
    a, b = (
        gbm.explain(features_of(credit_frame, 5)),
        load_model(gbm.path).explain(features_of(credit_frame, 5)),
    )
    assert a == b


def test_gbm_without_the_native_library_uses_the_package(
    gbm: LoadedModel, credit_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fenqi.risk import gbm as gbm_module

    expected = load_model(gbm.path).explain(features_of(credit_frame, 7))
    monkeypatch.setattr(gbm_module, "_native_lib", lambda: None)
    fallback = load_model(gbm.path)
    assert fallback.explain(features_of(credit_frame, 7)) == expected
    assert fallback.model._row_predictor is None  # type: ignore[attr-defined]
