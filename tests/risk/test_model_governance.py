"""Scorecard signs and reasons, special codes, refit, batch scoring, validation statistics,
report additions and the promotion gate (issue 23)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fenqi.cli import app
from fenqi.clock import FixedClock
from fenqi.risk import metrics, validation
from fenqi.risk.errors import BadDataError
from fenqi.risk.promotion import GatePolicy, champion_of, promote_if_better
from fenqi.risk.registry import LoadedModel, load_model
from fenqi.risk.scorecard import ScorecardParams, fit_scorecard
from fenqi.risk.scoring import pandas_to_polars, polars_to_pandas, score_file
from fenqi.risk.train import prepare, train_model
from risk.conftest import synthetic_credit
from support.frames import row_record

CLOCK = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
runner = CliRunner()


def collinear(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    """`b` is riskier on its own (it follows `a`) but safer given `a`: a wrong-sign trap."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = a + rng.normal(scale=0.3, size=n)
    c = rng.normal(size=n)
    logit = -1 + 2.0 * a - 1.2 * b + 0.5 * c
    return pd.DataFrame(
        {"a": a, "b": b, "c": c, "y": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)}
    )


def _points_follow_bad_rates(model: object) -> bool:
    for row in _by_characteristic(model).values():
        ordered = sorted(row, key=lambda r: r["event_rate"])
        points = [r["points"] for r in ordered]
        if points != sorted(points, reverse=True):
            return False
    return True


def _by_characteristic(model: object) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    for row in model.table():  # type: ignore[attr-defined]
        if row["count"] and row["event_rate"] is not None:
            out.setdefault(row["characteristic"], []).append(row)
    return out


def test_no_scorecard_ships_with_a_wrong_sign_by_default() -> None:
    prepared = prepare(collinear(), "y")
    # Without the L2 penalty (which by itself keeps b's coefficient just below 0 here).
    kept = fit_scorecard(
        prepared.matrix,
        prepared.y,
        prepared.specs,
        ScorecardParams(drop_wrong_sign=False, l2=0.0),
    )
    assert (kept.coefficients > 0).any()  # the trap springs when allowed
    assert not _points_follow_bad_rates(kept)
    assert any("wrong sign" in n for n in kept.notes)
    default = fit_scorecard(prepared.matrix, prepared.y, prepared.specs)
    assert (default.coefficients < 0).all() and _points_follow_bad_rates(default)
    model = fit_scorecard(prepared.matrix, prepared.y, prepared.specs, ScorecardParams(l2=0.0))
    assert (model.coefficients < 0).all()
    assert _points_follow_bad_rates(model)
    assert [c.name for c in model.characteristics] == ["a", "c"]
    assert any("dropped for a wrong-sign coefficient" in n and "b" in n for n in model.notes)


def test_reason_codes_are_only_characteristics_that_cost_points() -> None:
    prepared = prepare(collinear(), "y")
    model = fit_scorecard(prepared.matrix, prepared.y, prepared.specs)
    names, lost, pd_ = model.batch_reasons(prepared.matrix)
    assert (lost >= -1e-9).all()  # nobody gains against the best bin
    np.testing.assert_allclose(pd_, model.predict_pd(prepared.matrix))
    best = np.isclose(lost, 0.0)
    for i in range(50):
        explained = model.explain_row(prepared.matrix[i])
        reasons = {r.feature for r in explained.reasons}
        assert not reasons & {names[j] for j in np.flatnonzero(best[i])}


def test_each_special_code_gets_its_own_bin() -> None:
    rng = np.random.default_rng(9)
    n = 6000
    x = rng.normal(size=n)
    code = rng.random(n)
    x[code < 0.08] = -7  # e.g. "no bureau record": risky
    x[(code >= 0.08) & (code < 0.16)] = -8  # e.g. "no usable trade": safe
    p = np.where(x == -7, 0.6, np.where(x == -8, 0.03, 1 / (1 + np.exp(1.5 - 0.8 * x))))
    frame = pd.DataFrame({"x": x, "y": (rng.random(n) < p).astype(int)})
    prepared = prepare(frame, "y")
    model = fit_scorecard(
        prepared.matrix,
        prepared.y,
        prepared.specs,
        ScorecardParams(special_codes=(-7.0, -8.0, -9.0)),
    )
    char = model.characteristics[0]
    assert char.special_values == [-7.0, -8.0, -9.0]
    assert char.special_counts[2] == 0
    assert char.woe_specials[0] < 0 < char.woe_specials[1]  # opposite risk, apart
    rows = {r["bin"]: r for r in model.table()}
    assert rows["Special -7"]["points"] < rows["Special -8"]["points"]


def test_scorecard_monotone_trend_by_feature(credit_frame: pd.DataFrame) -> None:
    prepared = prepare(credit_frame, "outcome")
    model = fit_scorecard(
        prepared.matrix, prepared.y, prepared.specs, ScorecardParams(monotone={"noise": 1})
    )
    rates = next(c for c in model.characteristics if c.name == "noise").event_rates
    assert rates == sorted(rates)


def test_training_refits_on_all_rows_after_the_holdout(
    credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    loaded = train_model(credit_frame, "outcome", "scorecard", tmp_path, CLOCK)
    manifest = loaded.manifest
    assert manifest["refit_on_all_rows"] is True
    assert manifest["training_rows"] == len(credit_frame)
    assert manifest["metrics"]["sample"] == "holdout" and manifest["metrics"]["n"] == 600
    lo, hi = manifest["metrics"]["auc_ci95"]
    assert lo < manifest["metrics"]["auc"] < hi
    assert manifest["metrics"]["hosmer_lemeshow"]["df"] == 10
    kept = train_model(credit_frame, "outcome", "scorecard", tmp_path, CLOCK, refit=False)
    assert kept.manifest["refit_on_all_rows"] is False
    assert kept.manifest["training_rows"] == 2400


def test_train_help_explains_the_holdout_and_refit() -> None:
    result = runner.invoke(app, ["risk", "train", "--help"], env={"COLUMNS": "200"})
    assert "refit" in result.stdout and "--no-refit" in result.stdout


@pytest.mark.parametrize("kind", ["scorecard", "gbm"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batch_scoring_matches_single_decisions(
    request: pytest.FixtureRequest,
    credit_frame: pd.DataFrame,
    tmp_path: Path,
    kind: str,
    suffix: str,
) -> None:
    loaded: LoadedModel = request.getfixturevalue(kind)
    data = tmp_path / f"in{suffix}"
    frame = credit_frame.head(500)
    if suffix == ".csv":
        frame.to_csv(data, index=False)
    else:
        pandas_to_polars(frame).write_parquet(data)
    out = tmp_path / f"out{suffix}"
    seen: list[int] = []
    rows = score_file(loaded, data, out, keep=["row_id"], chunk_rows=128, progress=seen.append)
    assert rows == 500 and seen == [128, 256, 384, 500]
    if suffix == ".csv":
        scored = pd.read_csv(out)
    else:
        import polars as pl

        scored = polars_to_pandas(pl.read_parquet(out))
    assert list(scored.columns[:4]) == ["row_id", "pd", "score", "band"]
    np.testing.assert_allclose(scored["pd"], loaded.predict_pd(frame), rtol=1e-9)
    assert set(scored["band"]) <= set("ABCDEFG")
    for i in (0, 7, 499):
        record = row_record(frame.drop(columns=["outcome"]).iloc[i])
        explained = loaded.explain(record)
        assert scored["score"][i] == pytest.approx(explained.score, abs=1)
        got = [scored[f"reason_{k}"][i] for k in range(1, 5)]
        want = [r.feature for r in explained.reasons]
        assert [g for g in got if isinstance(g, str) and g] == want


def test_score_command(gbm: LoadedModel, credit_frame: pd.DataFrame, tmp_path: Path) -> None:
    data = tmp_path / "apps.csv"
    credit_frame.drop(columns=["outcome"]).head(300).to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    result = runner.invoke(
        app,
        [
            "risk",
            "score",
            "--model",
            str(gbm.path),
            "--data",
            str(data),
            "--out",
            str(out),
            "--keep",
            "row_id",
            "--reasons",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert len(scored) == 300 and "reason_2" in scored and "reason_3" not in scored
    broken = tmp_path / "broken.csv"
    credit_frame.drop(columns=["income"]).to_csv(broken, index=False)
    result = runner.invoke(
        app,
        [
            "risk",
            "score",
            "--model",
            str(gbm.path),
            "--data",
            str(broken),
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert result.exit_code == 2 and "lacks model features: income" in result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_delong_intervals_and_hosmer_lemeshow() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    p = rng.beta(2, 8, n)
    y = (rng.random(n) < p).astype(int)
    weak = p + rng.normal(0, 0.15, n)
    test = validation.delong_test(y, weak, p)
    assert test["auc_a"] == pytest.approx(metrics.auc(y, weak))
    assert test["auc_b"] == pytest.approx(metrics.auc(y, p))
    assert test["difference"] > 0 and test["p_value_b_better"] < 0.01
    same = validation.delong_test(y, p, p)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    lo, hi = validation.auc_ci(y, p)
    assert lo < metrics.auc(y, p) < hi and hi - lo < 0.05
    assert validation.hosmer_lemeshow(y, p)["passed"]
    doubled = validation.hosmer_lemeshow(y, np.minimum(p * 2, 0.99))
    assert not doubled["passed"] and doubled["p_value"] < 1e-6


def test_master_scale_and_feature_psi(scorecard: LoadedModel, credit_frame: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    pd_ = rng.beta(1, 20, 2000)
    y = (rng.random(2000) < pd_).astype(int)
    rows = validation.score_bands(y, pd_, scorecard.model.scale)
    assert [r["band"] for r in rows] == list("ABCDEFG")
    assert sum(r["n"] for r in rows) == 2000
    rates = [r["approval_rate_at_cutoff"] for r in rows]
    assert rates == sorted(rates) and rates[-1] == 1.0
    assert rows[2]["score_from"] == 600  # 2% PD is 600 points on the default scale
    matrix = scorecard.matrix(credit_frame)
    reference = scorecard.manifest["feature_reference"]
    stable = validation.feature_psi(reference, matrix, scorecard.specs)
    assert max(stable.values()) < 0.01
    shifted = credit_frame.assign(utilization=credit_frame["utilization"] * 1.5)
    moved = validation.feature_psi(reference, scorecard.matrix(shifted), scorecard.specs)
    assert next(iter(moved)) == "utilization" and moved["utilization"] > 0.25


def test_report_has_the_validation_tables(
    scorecard: LoadedModel, gbm: LoadedModel, credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = tmp_path / "sample.csv"
    credit_frame.assign(gender=np.where(np.arange(len(credit_frame)) % 3, "f", "m")).to_csv(
        data, index=False
    )
    html = tmp_path / "r.html"
    cutoff = float(np.median(gbm.score(gbm.predict_pd(credit_frame))))
    result = runner.invoke(
        app,
        [
            "risk",
            "report",
            "--model",
            str(gbm.path),
            "--data",
            str(data),
            "--target",
            "outcome",
            "--html",
            str(html),
            "--group",
            "gender",
            "--challenger",
            str(scorecard.path),
            "--cutoff",
            str(cutoff),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(html.with_suffix(".json").read_text())
    for key in (
        "auc_ci95",
        "ks_ci95",
        "hosmer_lemeshow",
        "score_bands",
        "information_value",
        "feature_psi_vs_training",
        "feature_importance_gain",
        "sample",
        "comparison",
        "groups",
    ):
        assert key in report, key
    assert report["sample"]["rows"] == len(credit_frame)
    assert set(report["feature_importance_gain"]) == {s.name for s in gbm.specs}
    assert report["comparison"]["challenger"] == scorecard.model_id
    table = report["groups"]["tables"]["gender"]
    assert {r["group"] for r in table} == {"f", "m"}
    assert max(r["adverse_impact_ratio"] for r in table) == 1.0
    text = html.read_text()
    assert "Master scale" in text and "Hosmer-Lemeshow" in text and "DeLong" in text


def test_promotion_gate(credit_frame: pd.DataFrame, tmp_path: Path) -> None:
    registry = tmp_path / "reg"
    sample = synthetic_credit(n=3000, seed=99)  # neither model trained on it
    strong = train_model(credit_frame, "outcome", "gbm", registry, CLOCK)
    weak = train_model(
        credit_frame[["noise", "months_on_book", "outcome"]],
        "outcome",
        "scorecard",
        registry,
        CLOCK,
    )
    # Before any promotion the newest version is used; the first promotion has no champion.
    assert load_model(registry).model_id == weak.model_id
    first = promote_if_better(registry, strong.path, sample, "outcome", CLOCK)
    assert first["promoted"] and champion_of(registry) == strong.path
    refused = promote_if_better(registry, weak.path, sample, "outcome", CLOCK)
    assert not refused["promoted"]
    assert any("is not above the champion's" in r for r in refused["reasons"])
    assert load_model(registry).model_id == strong.model_id  # a newer model is not live
    few = promote_if_better(
        registry, weak.path, sample.head(200), "outcome", CLOCK, policy=GatePolicy(bads_min=100)
    )
    assert any("bads, fewer than 100" in r for r in few["reasons"])
    log = [json.loads(line) for line in (registry / "promotions.jsonl").read_text().splitlines()]
    assert [e["promoted"] for e in log] == [True, False, False]
    sample_path = tmp_path / "sample.csv"
    sample.to_csv(sample_path, index=False)
    result = runner.invoke(
        app,
        [
            "risk",
            "promote",
            "--registry",
            str(registry),
            "--challenger",
            str(weak.path),
            "--data",
            str(sample_path),
            "--target",
            "outcome",
        ],
    )
    assert result.exit_code == 1 and "stays challenger" in result.stdout


def test_a_newly_trained_model_does_not_replace_a_crowned_one(
    credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from fenqi.risk.promotion import crown_current

    registry = tmp_path / "reg"
    assert crown_current(registry) is None  # nothing to crown yet
    first = train_model(credit_frame, "outcome", "scorecard", registry, CLOCK, holdout=0.0)
    assert crown_current(registry) == first.path
    few = credit_frame.head(300)  # e.g. a platform's first accounts: few bads
    train_model(few, "outcome", "scorecard", registry, CLOCK, holdout=0.0)
    assert load_model(registry).model_id == first.model_id


@pytest.mark.parametrize(("kind", "method"), [("scorecard", "fuzzy"), ("gbm", "parceling")])
def test_reject_inference_trains_on_accepted_and_inferred_rejects(
    credit_frame: pd.DataFrame, tmp_path: Path, kind: str, method: str
) -> None:
    approved = credit_frame["utilization"] < 0.55  # a past policy declined the rest
    accepted = credit_frame[approved]
    rejects = credit_frame[~approved].drop(columns=["outcome"])
    loaded = train_model(
        accepted, "outcome", kind, tmp_path, CLOCK, rejects=rejects, reject_method=method
    )
    info = loaded.manifest["reject_inference"]
    assert info["method"] == method and info["rejects"] == len(rejects)
    assert 0 < info["mean_inferred_pd"] < 1 and info["accepted_bad_rate"] == pytest.approx(
        (accepted["outcome"] == "bad").mean()
    )
    assert np.isfinite(loaded.predict_pd(rejects)).all()
    with pytest.raises(BadDataError, match="fuzzy or parceling"):
        train_model(
            accepted, "outcome", kind, tmp_path, CLOCK, rejects=rejects, reject_method="magic"
        )


def test_out_of_time_validation_holds_out_the_latest_rows(
    credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    days = pd.date_range("2025-01-01", periods=300, freq="D")
    frame = credit_frame.assign(
        applied_on=[str(days[i % 300].date()) for i in range(len(credit_frame))]
    )
    loaded = train_model(
        frame, "outcome", "scorecard", tmp_path, CLOCK, refit=False, time_column="applied_on"
    )
    measured = loaded.manifest["metrics"]
    assert measured["sample"] == "out_of_time"
    assert measured["out_of_time"]["test_from"].startswith("2025-08-29")  # day 240 of 300
    assert measured["n"] == measured["out_of_time"]["test_rows"] == 600
    assert "applied_on" not in {s.name for s in loaded.specs}
    broken = frame.assign(applied_on=frame["applied_on"].where(frame.index != 4, "soon"))
    with pytest.raises(BadDataError, match="'applied_on' has 1 missing or unreadable"):
        train_model(broken, "outcome", "scorecard", tmp_path, CLOCK, time_column="applied_on")
