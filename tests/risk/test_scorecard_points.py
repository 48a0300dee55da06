"""Scorecard points are integers (the score is their sum, the PD is read from that score, the
reasons are differences of them), and a scorecard can be recalibrated without refitting its
bins, audited, going live only through the promotion gate (issue 23)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fenqi.cli import app
from fenqi.clock import FixedClock
from fenqi.risk.errors import BadDataError
from fenqi.risk.promotion import GatePolicy, champion_of, promote_if_better
from fenqi.risk.recalibration import fit_shift_slope, recalibrate
from fenqi.risk.registry import LoadedModel, load_model
from fenqi.risk.scorecard import ScorecardModel
from fenqi.risk.train import train_model
from risk.conftest import features_of, synthetic_credit

CLOCK = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
LENIENT = GatePolicy(bads_min=50, psi_max=1.0)
runner = CliRunner()


def test_points_are_integers_and_the_score_is_their_sum(
    scorecard: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    model = scorecard.model
    assert isinstance(model, ScorecardModel)
    table = model.table()
    assert all(isinstance(row["points"], int) for row in table)
    exported = pd.read_csv(scorecard.path / "scorecard_table.csv")
    assert exported["points"].dtype.kind == "i"
    matrix = scorecard.matrix(credit_frame.head(300))
    points = model.points_matrix(matrix)
    np.testing.assert_array_equal(points, np.rint(points))
    scores = points.sum(axis=1)
    np.testing.assert_array_equal(scorecard.score(model.predict_pd(matrix)), scores)
    best: dict[str, Any] = {}
    for row in table:
        if row["count"]:  # a bin seen in training can be the yardstick of reasons
            name = row["characteristic"]
            best[name] = max(best.get(name, row["points"]), row["points"])
    names = [c.name for c in model.characteristics]
    for i in range(40):
        explained = scorecard.explain(features_of(credit_frame, i))
        assert explained.score == scores[i]
        for reason in explained.reasons:
            j = names.index(reason.feature)
            assert reason.points_lost == best[reason.feature] - points[i, j]
            assert float(reason.points_lost).is_integer() and reason.points_lost >= 1


def test_fit_shift_slope_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(4)
    log_odds = rng.normal(-1.5, 1.0, 20_000)
    y = (rng.random(len(log_odds)) < 1 / (1 + np.exp(-(0.7 + 0.8 * log_odds)))).astype(float)
    shift, slope = fit_shift_slope(log_odds, y, fit_slope=True)
    assert shift == pytest.approx(0.7, abs=0.08) and slope == pytest.approx(0.8, abs=0.05)
    only_shift, one = fit_shift_slope(log_odds, y, fit_slope=False)
    assert one == 1.0
    # The fitted intercept makes the mean PD equal the observed bad rate.
    pd_ = 1 / (1 + np.exp(-(only_shift + log_odds)))
    assert pd_.mean() == pytest.approx(y.mean(), abs=1e-6)


def _riskier(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same population with half the goods gone: a higher bad rate, same ranking."""
    good = frame.index[frame["outcome"] == "good"]
    gone = np.random.default_rng(seed).choice(good, len(good) // 2, replace=False)
    return frame.loc[~frame.index.isin(gone)].reset_index(drop=True)


@pytest.fixture
def trained(credit_frame: pd.DataFrame, tmp_path: Path) -> LoadedModel:
    return train_model(
        credit_frame, "outcome", "scorecard", tmp_path / "reg", CLOCK, seed=1, holdout=0.0
    )


def test_recalibrate_to_a_bad_rate_keeps_bins_and_stays_a_challenger(
    trained: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    registry = trained.path.parent
    before: ScorecardModel = trained.model  # type: ignore[assignment]
    rate = float((credit_frame["outcome"] == "bad").mean())
    saved, record = recalibrate(registry, CLOCK, by="ana", bad_rate=2 * rate)
    after: ScorecardModel = saved.model  # type: ignore[assignment]
    assert champion_of(registry) == trained.path  # the old version still decides
    assert load_model(registry).model_id == trained.model_id
    assert [c.name for c in after.characteristics] == [c.name for c in before.characteristics]
    np.testing.assert_array_equal(after.coefficients, before.coefficients)
    matrix = trained.matrix(credit_frame)
    assert after.predict_pd(matrix).mean() > 1.6 * before.predict_pd(matrix).mean()
    # The ranking is the same up to whole points: each row loses the same points.
    moved = after.score(matrix) - before.score(matrix)
    assert np.ptp(moved) <= len(after.characteristics)
    assert all(isinstance(r["points"], int) for r in after.table())
    manifest = json.loads((saved.path / "manifest.json").read_text())
    assert manifest["recalibration"]["from"] == trained.model_id
    assert manifest["recalibration"]["method"] == "bad_rate"
    assert manifest["recalibration"]["by"] == "ana"
    assert "hosmer_lemeshow" not in manifest["metrics"]  # the old calibration's figures go
    assert manifest["metrics"]["auc"] == trained.manifest["metrics"]["auc"]
    log = [json.loads(x) for x in (registry / "recalibrations.jsonl").read_text().splitlines()]
    assert log == [record] and record["to"] == saved.model_id


def test_recalibrate_to_odds_at_a_score(trained: LoadedModel) -> None:
    # The scale puts 50:1 at 600; now 25:1 is observed there: people score one PDO lower.
    saved, record = recalibrate(trained.path, CLOCK, by="ana", odds_at=(600.0, 25.0))
    assert load_model(trained.path.parent).model_id == trained.model_id  # not live by being new
    before = np.asarray(trained.manifest["score_reference"]["deciles"])
    after = np.asarray(saved.manifest["score_reference"]["deciles"])
    np.testing.assert_allclose(after, np.rint(before - 20.0), atol=1.0)
    assert record["inputs"]["odds_before"] == pytest.approx(50.0)


def test_recalibration_on_a_sample_passes_the_gate_and_a_wrong_one_does_not(
    trained: LoadedModel, tmp_path: Path
) -> None:
    registry = trained.path.parent
    sample = _riskier(synthetic_credit(n=3000, seed=21), seed=2)
    fresh = _riskier(synthetic_credit(n=3000, seed=22), seed=3)
    saved, record = recalibrate(registry, CLOCK, by="ana", frame=sample, target_column="outcome")
    assert record["method"] == "sample" and record["shift"] > 0.3
    result = promote_if_better(registry, saved.path, fresh, "outcome", CLOCK, policy=LENIENT)
    assert result["promoted"], result["reasons"]
    assert result["figures"]["challenger_log_loss"] < result["figures"]["champion_log_loss"]
    assert champion_of(registry) == saved.path
    # A recalibration to the wrong rate fits worse than the champion: it stays a challenger.
    wrong, _ = recalibrate(registry, CLOCK, by="ana", bad_rate=0.05)
    refused = promote_if_better(registry, wrong.path, fresh, "outcome", CLOCK, policy=LENIENT)
    assert not refused["promoted"]
    assert any("does not fit the sample better" in r for r in refused["reasons"])
    assert any("Hosmer-Lemeshow" in r for r in refused["reasons"])
    assert champion_of(registry) == saved.path


def test_recalibrate_refuses_what_it_cannot_do(
    trained: LoadedModel, credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(BadDataError, match="exactly one"):
        recalibrate(trained.path, CLOCK, by="ana")
    with pytest.raises(BadDataError, match="exactly one"):
        recalibrate(trained.path, CLOCK, by="ana", bad_rate=0.1, odds_at=(600, 20))
    with pytest.raises(BadDataError, match="between 0 and 1"):
        recalibrate(trained.path, CLOCK, by="ana", bad_rate=1.5)
    gbm = train_model(credit_frame.head(1500), "outcome", "gbm", tmp_path / "g", CLOCK, holdout=0.0)
    with pytest.raises(BadDataError, match="applies to scorecards"):
        recalibrate(gbm.path, CLOCK, by="ana", bad_rate=0.1)


def test_recalibrate_command(trained: LoadedModel, tmp_path: Path) -> None:
    registry = trained.path.parent
    result = runner.invoke(
        app, ["risk", "recalibrate", "--model", str(registry), "--odds-at", "600:25", "--by", "ana"]
    )
    assert result.exit_code == 0, result.output
    assert "a challenger" in result.stdout and "fenqi risk promote" in result.stdout
    new = Path(result.stdout.strip().splitlines()[-1])
    assert json.loads((new / "manifest.json").read_text())["recalibration"]["by"] == "ana"
    bad = runner.invoke(app, ["risk", "recalibrate", "--model", str(registry), "--odds-at", "x"])
    assert bad.exit_code == 2 and "SCORE:ODDS" in bad.output
    slope_alone = runner.invoke(
        app, ["risk", "recalibrate", "--model", str(registry), "--slope", "--bad-rate", "0.1"]
    )
    assert slope_alone.exit_code == 2 and "--slope needs --data" in slope_alone.output


def test_training_calibrates_the_scorecard_on_the_holdout(
    credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from fenqi.risk import validation

    calibrated = train_model(credit_frame, "outcome", "scorecard", tmp_path, CLOCK, holdout=0.3)
    plain = train_model(
        credit_frame, "outcome", "scorecard", tmp_path, CLOCK, holdout=0.3, calibrate=False
    )
    measured = calibrated.manifest["metrics"]
    assert measured["calibration"]["method"] == "platt" and measured["calibration"]["rows"] == 900
    assert measured["hosmer_lemeshow"] == measured["calibration"]["hosmer_lemeshow"]
    assert "calibration" not in plain.manifest["metrics"]
    assert plain.manifest["params"]["calibrate"] is False
    fresh = synthetic_credit(n=3000, seed=21)  # neither model saw these applicants
    y = (fresh["outcome"] == "bad").to_numpy(dtype=float)
    better = validation.hosmer_lemeshow(y, calibrated.predict_pd(fresh))
    worse = validation.hosmer_lemeshow(y, plain.predict_pd(fresh))
    assert better["statistic"] < worse["statistic"] and better["passed"]

    # Calibration moves points, not the order of a characteristic's bins.
    def order(loaded: LoadedModel) -> dict[str, list[int]]:
        out: dict[str, list[tuple[int, int]]] = {}
        for i, row in enumerate(loaded.model.table()):  # type: ignore[attr-defined]
            out.setdefault(row["characteristic"], []).append((row["points"], i))
        return {
            k: [i for _, i in sorted(v)] for k, v in out.items() if len({p for p, _ in v}) == len(v)
        }

    common = order(plain).keys() & order(calibrated).keys()
    assert common and all(order(plain)[k] == order(calibrated)[k] for k in common)


def test_train_command_never_replaces_the_model_in_use(tmp_path: Path) -> None:
    data = tmp_path / "credit.csv"
    synthetic_credit(n=800, seed=5).to_csv(data, index=False)
    registry = tmp_path / "reg"
    args = ["risk", "train", "--data", str(data), "--target", "outcome", "--out", str(registry)]
    first = runner.invoke(app, [*args, "--holdout", "0"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, [*args, "--holdout", "0", "--pdo", "40"])
    assert second.exit_code == 0, second.output
    assert "is a challenger; scorecard-v0001 still decides" in second.output
    assert load_model(registry).model_id == "scorecard-v0001"
    assert champion_of(registry) == registry / "scorecard-v0001"


def test_an_artifact_saved_before_integer_points_scores_as_it_was_validated(
    scorecard: LoadedModel, credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(scorecard.path, old)
    payload = json.loads((old / "scorecard.json").read_text())
    del payload["params"]["integer_points"]  # as written before this change
    (old / "scorecard.json").write_text(json.dumps(payload))
    model: ScorecardModel = load_model(old).model  # type: ignore[assignment]
    matrix = scorecard.matrix(credit_frame.head(200))
    woe = model.woe_matrix(matrix)
    exact = 1 / (1 + np.exp(-(woe @ model.coefficients + model.intercept)))
    np.testing.assert_allclose(model.predict_pd(matrix), exact, rtol=1e-9)
    points = model.points_matrix(matrix)
    assert not np.array_equal(points, np.rint(points))


def test_recalibrate_does_not_blame_a_flag_the_user_never_passed(
    trained: LoadedModel, credit_frame: pd.DataFrame
) -> None:
    coded = credit_frame.assign(
        outcome=(credit_frame["outcome"] == "bad").map({True: "B", False: "G"})
    )
    with pytest.raises(BadDataError) as refused:
        recalibrate(trained.path, CLOCK, by="ana", frame=coded, target_column="outcome")
    assert "--bad-value" not in str(refused.value) and "the model's bad label" in str(refused.value)
