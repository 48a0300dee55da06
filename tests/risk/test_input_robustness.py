"""Input that used to break or fool training: each is now a clear error or a documented
conversion (issue 23)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fenqi.cli import app
from fenqi.clock import FixedClock
from fenqi.risk.data import FeatureKind, RecordEncoder, encode_frame, infer_features, read_table
from fenqi.risk.errors import BadDataError, FeatureMismatchError
from fenqi.risk.registry import load_model
from fenqi.risk.train import train_model
from risk.conftest import synthetic_credit
from support.frames import row_record

CLOCK = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
runner = CliRunner()


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return synthetic_credit(n=1500, seed=11)


@pytest.mark.parametrize("kind", ["scorecard", "gbm"])
def test_infinite_feature_values_are_refused_naming_column_and_row(
    small: pd.DataFrame, tmp_path: Path, kind: str
) -> None:
    frame = small.copy()
    frame.loc[7, "utilization"] = np.inf
    with pytest.raises(BadDataError, match=r"'utilization' has 1 infinite values \(first at row 9"):
        train_model(frame, "outcome", kind, tmp_path, CLOCK)


def test_infinite_values_at_scoring_are_refused(small: pd.DataFrame) -> None:
    specs = infer_features(small.drop(columns=["outcome"]))
    frame = small.drop(columns=["outcome"]).head(3).copy()
    frame.loc[1, "income"] = -np.inf
    with pytest.raises(FeatureMismatchError, match="infinite values: income"):
        encode_frame(frame, specs)
    record = row_record(frame.iloc[1])
    with pytest.raises(FeatureMismatchError, match="income"):
        RecordEncoder(specs).encode(record)


def test_gbm_takes_any_column_name_and_its_saved_model_loads(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    renamed = small.rename(
        columns={
            "utilization": "util [%]",
            "income": "income: monthly",
            "region": "home region",
            "noise": '{"x",}',
        }
    )
    loaded = train_model(renamed, "outcome", "gbm", tmp_path, CLOCK)
    again = load_model(loaded.path)
    assert [s.name for s in again.specs][:2] == ["util [%]", "income: monthly"]
    np.testing.assert_allclose(again.predict_pd(renamed), loaded.predict_pd(renamed))
    record = row_record(renamed.drop(columns=["outcome"]).iloc[0])
    assert again.explain(record).score == loaded.explain(record).score


def test_a_loaded_gbm_still_scores_after_its_folder_moved(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    trained = train_model(small, "outcome", "gbm", tmp_path / "reg", CLOCK)
    loaded = load_model(trained.path)
    expected = trained.predict_pd(small)
    shutil.move(str(trained.path), str(tmp_path / "elsewhere"))
    np.testing.assert_allclose(loaded.predict_pd(small), expected)
    assert loaded.model.booster.num_trees() > 0  # type: ignore[attr-defined]


def test_percent_text_is_a_numeric_fraction() -> None:
    frame = pd.DataFrame({"rate": ["83.70%", "12.5%", None, "100%"] * 20, "y": [0, 1] * 40})
    notes: list[str] = []
    specs = infer_features(frame.drop(columns=["y"]), notes=notes)
    assert specs[0].kind is FeatureKind.NUMERIC and specs[0].unit == "percent"
    assert any("percentages" in n for n in notes)
    matrix = encode_frame(frame, specs)
    np.testing.assert_allclose(matrix[:4, 0], [0.837, 0.125, np.nan, 1.0])
    assert RecordEncoder(specs).encode({"rate": "83.70%"})[0] == pytest.approx(0.837)
    assert RecordEncoder(specs).encode({"rate": 0.5})[0] == 0.5


def test_mostly_numeric_column_with_text_is_refused_not_made_a_category() -> None:
    values = [str(i * 37 % 1000) for i in range(80)] + ["n/a"] * 20
    with pytest.raises(
        BadDataError,
        match=r"'amount' is numeric but has 20 non-numeric values, "
        r"e.g. 'n/a'.*--na-values",
    ):
        infer_features(pd.DataFrame({"amount": values}))


def test_na_values_turn_markers_into_missing(tmp_path: Path) -> None:
    path = tmp_path / "na.csv"
    pd.DataFrame({"amount": [1, 2, "n/a", 4] * 20}).to_csv(path, index=False)
    frame = read_table(path, na_values=["n/a"])
    assert frame["amount"].isna().sum() == 20
    assert infer_features(frame)[0].kind is FeatureKind.NUMERIC


def test_a_few_codes_with_a_letter_stay_a_category() -> None:
    specs = infer_features(pd.DataFrame({"grade": ["1", "2", "3", "X"] * 25}))
    assert specs[0].kind is FeatureKind.CATEGORICAL


def test_gbk_csv_needs_and_accepts_an_encoding(small: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    frame = small.assign(
        region=small["region"].map(
            {"north": "北方", "south": "南方", "east": "东部", "west": "西部"}
        )
    )
    frame.to_csv(path, index=False, encoding="gbk")
    with pytest.raises(BadDataError, match=r"is not utf-8 text .*--encoding"):
        read_table(path)
    assert set(read_table(path, encoding="gbk")["region"]) == {"北方", "南方", "东部", "西部"}
    result = runner.invoke(
        app,
        [
            "risk",
            "train",
            "--data",
            str(path),
            "--target",
            "outcome",
            "--out",
            str(tmp_path / "reg"),
            "--encoding",
            "gbk",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = load_model(tmp_path / "reg").manifest
    region = next(f for f in manifest["features"] if f["name"] == "region")
    assert "北方" in region["categories"]


def test_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,y\n1,2,3,0\n4,5,6,1\n")
    with pytest.raises(BadDataError, match="duplicate column names: 'a'"):
        read_table(path)


def test_evaluate_does_not_blame_a_bad_value_flag_the_user_never_passed(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    trained = train_model(small, "outcome", "scorecard", tmp_path / "reg", CLOCK)
    other = tmp_path / "other.csv"
    small.assign(outcome=np.where(small["outcome"] == "bad", "yes", "no")).to_csv(
        other, index=False
    )
    result = runner.invoke(
        app,
        [
            "risk",
            "evaluate",
            "--model",
            str(trained.path),
            "--data",
            str(other),
            "--target",
            "outcome",
        ],
    )
    assert result.exit_code == 2
    assert "--bad-value 'bad'" not in result.stderr
    assert f"the bad label of model {trained.model_id}" in result.stderr


def test_high_cardinality_labels_are_capped_with_a_warning(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 4000
    common = rng.choice(["p1", "p2", "p3"], n)
    rare = np.array([f"r{i}" for i in rng.integers(0, 400, n)])
    postcode = np.where(rng.random(n) < 0.5, common, rare)
    frame = pd.DataFrame(
        {"postcode": postcode, "x": rng.normal(size=n), "y": (rng.random(n) < 0.2).astype(int)}
    )
    loaded = train_model(frame, "y", "scorecard", tmp_path, CLOCK)
    spec = next(s for s in loaded.specs if s.name == "postcode")
    assert set(spec.categories) == {"p1", "p2", "p3"}
    assert any(
        "'postcode' has" in w and "treated as unseen" in w for w in loaded.manifest["warnings"]
    )


def test_protected_attributes_are_excluded_unless_opted_in(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    frame = small.assign(
        SEX=np.where(np.arange(len(small)) % 2, 1, 2),
        personal_status_and_sex="x" + (np.arange(len(small)) % 3).astype(str),
    )
    loaded = train_model(frame, "outcome", "scorecard", tmp_path, CLOCK)
    names = {s.name for s in loaded.specs}
    assert not names & {"SEX", "personal_status_and_sex"}
    assert any("protected attributes excluded" in w for w in loaded.manifest["warnings"])
    opted = train_model(frame, "outcome", "scorecard", tmp_path, CLOCK, allow_protected=["SEX"])
    assert "SEX" in {s.name for s in opted.specs}
    assert opted.manifest["params"]["allow_protected"] == ["SEX"]
    assert any(
        "'SEX' used as a feature by explicit opt-in" in w for w in opted.manifest["warnings"]
    )
