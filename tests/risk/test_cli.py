"""`fenqi risk ...` end to end through Typer, including the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from fenqi.cli import app
from fenqi.risk.records import decisions_for
from risk.conftest import application, features_of, synthetic_credit

runner = CliRunner()


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "credit.csv"
    synthetic_credit(n=1500, seed=11).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(csv_path: Path) -> Path:
    out = csv_path.parent / "registry"
    result = runner.invoke(
        app,
        [
            "risk",
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "gbm",
            "--out",
            str(out),
            "--seed",
            "3",
            "--monotone",
            "utilization=+1",
            "--monotone",
            "income=-1",
        ],
    )
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def test_train_writes_a_versioned_artifact(trained: Path) -> None:
    assert trained.name == "gbm-v0001"
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["params"]["seed"] == 3 and manifest["target"]["bad_label"] == "bad"
    assert manifest["params"]["monotone_constraints"] == {"utilization": 1, "income": -1}


def test_train_scorecard_with_special_codes(csv_path: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "risk",
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "scorecard",
            "--special-codes",
            "-1",
            "--min-iv",
            "0.05",
            "--pdo",
            "40",
            "--base-score",
            "500",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "scorecard-v0001" / "manifest.json").read_text())
    assert manifest["params"]["special_codes"] == [-1.0]
    assert manifest["params"]["min_iv"] == 0.05
    assert manifest["score_scale"] == {"base_score": 500.0, "base_odds": 50.0, "pdo": 40.0}
    table = pd.read_csv(tmp_path / "scorecard-v0001" / "scorecard_table.csv")
    kept = set(table["characteristic"])
    assert "noise" not in kept and {"utilization", "delinquencies"} <= kept


def test_evaluate_prints_the_metrics_as_json(trained: Path, csv_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "risk",
            "evaluate",
            "--model",
            str(trained.parent),
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"auc", "ks", "gini", "brier", "n"} <= set(metrics)
    assert metrics["n"] == 1500 and 0.65 < metrics["auc"] < 1
    assert metrics["gini"] == pytest.approx(2 * metrics["auc"] - 1)


def test_report_writes_html_and_json(trained: Path, csv_path: Path, tmp_path: Path) -> None:
    html = tmp_path / "out" / "report.html"
    result = runner.invoke(
        app,
        [
            "risk",
            "report",
            "--model",
            str(trained),
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--html",
            str(html),
        ],
    )
    assert result.exit_code == 0, result.output
    text = html.read_text()
    assert '<script src="http' not in text  # plotly.js is inline: no internet needed
    assert "Plotly.newPlot" in text and "KS" in text
    payload = json.loads(html.with_suffix(".json").read_text())
    assert set(payload["figures"]) == {"roc", "ks", "score_distribution", "calibration"}
    assert len(payload["gains"]) == 10
    assert "<h2>Scorecard</h2>" not in text  # a GBM has no scorecard table


def test_decide_prints_the_decision(trained: Path, csv_path: Path, tmp_path: Path) -> None:
    app_path = tmp_path / "application.json"
    frame = pd.read_csv(csv_path)
    app_path.write_text(json.dumps(application(features_of(frame, 0))))
    result = runner.invoke(
        app, ["risk", "decide", "--model", str(trained), "--application", str(app_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["model_id"] == "gbm-v0001" and decision["outcome"] in {
        "approve",
        "refer",
        "decline",
    }


def _refused(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["risk", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(
        result.exception, SystemExit
    )


def test_bad_data_is_refused_without_traceback(csv_path: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(csv_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _refused(
        ["train", "--data", str(empty), "--target", "outcome", "--out", str(tmp_path)],
        "data file is empty",
    )
    _refused(
        ["train", "--data", str(csv_path), "--target", "missing", "--out", str(tmp_path)],
        "target column 'missing' not found",
    )
    three = tmp_path / "three.csv"
    frame.assign(outcome=["a", "b", "c"] * 500).to_csv(three, index=False)
    _refused(
        ["train", "--data", str(three), "--target", "outcome", "--out", str(tmp_path)],
        "must have exactly two values",
    )
    mistyped = tmp_path / "mistyped.csv"
    broken = frame.astype({"income": object})
    broken.loc[5, "income"] = "unknown"
    broken.to_csv(mistyped, index=False)
    _refused(
        ["train", "--data", str(mistyped), "--target", "outcome", "--out", str(tmp_path)],
        "column 'income' is numeric but has",
    )
    _refused(
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "svm",
            "--out",
            str(tmp_path),
        ],
        "--model must be scorecard or gbm",
    )
    _refused(
        [
            "train",
            "--data",
            str(tmp_path / "nope.csv"),
            "--target",
            "outcome",
            "--out",
            str(tmp_path),
        ],
        "data file not found",
    )
    _refused(
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "gbm",
            "--min-iv",
            "0.02",
            "--out",
            str(tmp_path),
        ],
        "--min-iv applies to",
    )
    _refused(
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "gbm",
            "--calibration",
            "magic",
            "--out",
            str(tmp_path),
        ],
        "--calibration is platt",
    )
    _refused(
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "gbm",
            "--monotone",
            "utilization",
            "--out",
            str(tmp_path),
        ],
        "--monotone takes",
    )
    _refused(
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "gbm",
            "--monotone",
            "nope=+1",
            "--out",
            str(tmp_path),
        ],
        "monotone constraints name unknown features: ['nope']",
    )
    _refused(
        [
            "train",
            "--data",
            str(csv_path),
            "--target",
            "outcome",
            "--model",
            "scorecard",
            "--special-codes",
            "x",
            "--out",
            str(tmp_path),
        ],
        "--special-codes must be",
    )


def test_evaluate_refuses_mismatched_data(trained: Path, csv_path: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(csv_path).drop(columns=["utilization"])
    path = tmp_path / "fewer.csv"
    frame.to_csv(path, index=False)
    _refused(
        ["evaluate", "--model", str(trained), "--data", str(path), "--target", "outcome"],
        "lacks model features: utilization",
    )


def test_decide_refuses_a_broken_flow(trained: Path, tmp_path: Path) -> None:
    flow = tmp_path / "flow.json"
    flow.write_text("{")
    app_path = tmp_path / "application.json"
    app_path.write_text("{}")
    _refused(
        ["decide", "--model", str(trained), "--application", str(app_path)],
        "error [risk.bad_data]: application needs an 'applicant_id'",
    )
    app_path.write_text(json.dumps(application({})))
    _refused(
        ["decide", "--flow", str(flow), "--model", str(trained), "--application", str(app_path)],
        "error [risk.bad_flow]",
    )


def test_psi_flags_a_shifted_sample(trained: Path, csv_path: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(csv_path)
    shifted = tmp_path / "shifted.csv"
    frame.assign(utilization=(frame["utilization"] + 0.3).clip(upper=1.0)).to_csv(
        shifted, index=False
    )
    result = runner.invoke(
        app,
        [
            "risk",
            "psi",
            "--model",
            str(trained),
            "--expected",
            str(csv_path),
            "--actual",
            str(csv_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    same = json.loads(result.stdout)
    assert same["score_psi"] == 0.0 and max(same["feature_psi"].values()) == 0.0
    result = runner.invoke(
        app,
        [
            "risk",
            "psi",
            "--model",
            str(trained),
            "--expected",
            str(csv_path),
            "--actual",
            str(shifted),
            "--json",
        ],
    )
    moved = json.loads(result.stdout)
    assert next(iter(moved["feature_psi"])) == "utilization"
    assert moved["feature_psi"]["utilization"] > 0.25 and moved["score_psi"] > 0.05


def test_decide_can_record_the_decision(
    trained: Path,
    csv_path: Path,
    tmp_path: Path,
    db_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fenqi.settings import get_settings

    monkeypatch.setenv("FENQI_DATABASE_URL", db_engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    app_path = tmp_path / "application.json"
    app_path.write_text(
        json.dumps(application(features_of(pd.read_csv(csv_path), 1), applicant_id="cli-7"))
    )
    try:
        result = runner.invoke(
            app,
            [
                "risk",
                "decide",
                "--model",
                str(trained),
                "--application",
                str(app_path),
                "--json",
                "--record",
                "--application-ref",
                "A-77",
            ],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    with db_engine.connect() as conn:
        rows = decisions_for(conn, "cli-7")
    assert [(r["id"], r["application_ref"], r["model_id"]) for r in rows] == [
        (decision["record_id"], "A-77", "gbm-v0001")
    ]
