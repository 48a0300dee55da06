"""Risk engine benchmark on the UCI credit-card default data (30,000 clients).

Quality: one 5-fold stratified split (seed 42) shared by every model; mean AUC and KS of
  fenqi scorecard  vs optbinning Scorecard with defaults (BinningProcess + LogisticRegression),
  fenqi GBM        vs LightGBM and XGBoost with defaults.
Every model sees the same feature columns (the row-number column ID is not a feature).

Holdout quality on every shared data set (70/30 stratified split, seed 42): fenqi scorecard vs
optbinning's default Scorecard, fenqi GBM vs LightGBM's defaults, on the same columns.

Speed, measured in the same run: one full decision (encode + model + reason codes + default
flow) p50/p99 against one raw LightGBM single-row predict; batch scoring rows/s against raw
batch predict of the same booster and of a default LightGBM, on numeric data (UCI) and on text
columns (german_credit, 13 categorical columns, tiled to 30,000 rows); `fenqi risk score`
(CSV in, CSV out, with and without reasons). Ratios printed; JSON written to
bench/results/risk.json.

Run: .venv/bin/python bench/risk.py [--data PATH] [--folds 5] [--decisions 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np


def _datasets() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


DATASETS = _datasets()
DATA = DATASETS / "uci_credit_card_default.csv"
# Every shared data set with its target, for the holdout comparison.
HOLDOUT_SETS = {
    "uci_credit_card_default": ("uci_credit_card_default.csv", "default_payment_next_month"),
    "german_credit": ("german_credit.csv", "creditability"),
}
TARGET = "default_payment_next_month"
RESULTS = Path(__file__).resolve().parent / "results" / "risk.json"


def quality(frame: Any, folds: int) -> dict[str, dict[str, float]]:
    import lightgbm as lgb
    import xgboost as xgb
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from fenqi.risk import metrics
    from fenqi.risk.gbm import fit_gbm
    from fenqi.risk.scorecard import fit_scorecard
    from fenqi.risk.train import prepare

    prepared = prepare(frame, TARGET)
    names = [s.name for s in prepared.specs]
    features = frame[names]
    y = prepared.y
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=42)
    scores: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, truth: np.ndarray, pd_: np.ndarray) -> None:
        scores.setdefault(name, []).append((metrics.auc(truth, pd_), metrics.ks(truth, pd_)))

    for fold, (train, test) in enumerate(split.split(features, y), start=1):
        print(f"  fold {fold}/{folds}", flush=True)
        m_train, m_test = prepared.matrix[train], prepared.matrix[test]
        add(
            "fenqi scorecard",
            y[test],
            fit_scorecard(m_train, y[train], prepared.specs).predict_pd(m_test),
        )
        optb = Scorecard(binning_process=BinningProcess(names), estimator=LogisticRegression())
        optb.fit(features.iloc[train], y[train])
        add(
            "optbinning Scorecard (default)", y[test], optb.predict_proba(features.iloc[test])[:, 1]
        )
        add("fenqi GBM", y[test], fit_gbm(m_train, y[train], prepared.specs).predict_pd(m_test))
        light = lgb.LGBMClassifier(verbosity=-1).fit(features.iloc[train], y[train])
        add("LightGBM (default)", y[test], light.predict_proba(features.iloc[test])[:, 1])
        boost = xgb.XGBClassifier().fit(features.iloc[train], y[train])
        add("XGBoost (default)", y[test], boost.predict_proba(features.iloc[test])[:, 1])
    return {
        name: {"auc": float(np.mean([a for a, _ in v])), "ks": float(np.mean([k for _, k in v]))}
        for name, v in scores.items()
    }


def holdout_quality() -> dict[str, dict[str, float]]:
    """70/30 stratified split (seed 42) of each shared data set: AUC of fenqi's models and of
    the default optbinning Scorecard / LightGBM on the same columns and rows."""
    import lightgbm as lgb
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from fenqi.risk import metrics
    from fenqi.risk.data import FeatureKind, read_table
    from fenqi.risk.gbm import fit_gbm
    from fenqi.risk.scorecard import fit_scorecard
    from fenqi.risk.train import prepare

    out: dict[str, dict[str, float]] = {}
    for name, (file, target) in HOLDOUT_SETS.items():
        if not (DATASETS / file).is_file():
            continue
        print(f"  holdout: {name}", flush=True)
        frame = read_table(DATASETS / file)
        prepared = prepare(frame, target)
        names = [s.name for s in prepared.specs]
        text = [s.name for s in prepared.specs if s.kind is FeatureKind.CATEGORICAL]
        features = frame[names].copy()
        for column in text:
            features[column] = features[column].astype("category")
        y = prepared.y
        train, test = train_test_split(
            np.arange(len(y)), test_size=0.3, stratify=y, random_state=42
        )
        m_train, m_test = prepared.matrix[train], prepared.matrix[test]
        row: dict[str, float] = {}
        row["fenqi scorecard"] = metrics.auc(
            y[test], fit_scorecard(m_train, y[train], prepared.specs).predict_pd(m_test)
        )
        optb = Scorecard(
            binning_process=BinningProcess(names, categorical_variables=text),
            estimator=LogisticRegression(),
        )
        optb.fit(frame[names].iloc[train], y[train])
        row["optbinning Scorecard (default)"] = metrics.auc(
            y[test], optb.predict_proba(frame[names].iloc[test])[:, 1]
        )
        row["fenqi GBM"] = metrics.auc(
            y[test], fit_gbm(m_train, y[train], prepared.specs).predict_pd(m_test)
        )
        light = lgb.LGBMClassifier(verbosity=-1).fit(features.iloc[train], y[train])
        row["LightGBM (default)"] = metrics.auc(
            y[test], light.predict_proba(features.iloc[test])[:, 1]
        )
        row["rows"] = float(len(y))
        out[name] = row
    return out


def text_speed() -> dict[str, float]:
    """Batch scoring with text columns: german_credit tiled to 30,000 rows."""
    from fenqi.risk.data import read_table

    path = DATASETS / "german_credit.csv"
    if not path.is_file():
        return {}
    frame = read_table(path)
    from fenqi.clock import FixedClock
    from fenqi.risk.train import train_model

    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as registry:
        loaded = train_model(frame, "creditability", "gbm", Path(registry), clock, holdout=0.0)
    big = frame.sample(n=30_000, replace=True, random_state=1).reset_index(drop=True)
    matrix = loaded.matrix(big)
    booster = loaded.model.booster  # type: ignore[attr-defined]
    fenqi_rate = len(big) / min(_once(lambda: loaded.predict_pd(big)) for _ in range(5))
    raw_rate = len(big) / min(_once(lambda: booster.predict(matrix)) for _ in range(5))
    return {
        "text_columns": float(sum(1 for s in loaded.specs if s.categories)),
        "batch_rows_per_s": fenqi_rate,
        "raw_batch_same_booster_rows_per_s": raw_rate,
        "batch_ratio_vs_raw_same": fenqi_rate / raw_rate,
    }


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    values = np.asarray(samples_ns) / 1e3
    return {"p50_us": float(np.percentile(values, 50)), "p99_us": float(np.percentile(values, 99))}


def speed(frame: Any, decisions: int) -> dict[str, Any]:
    import lightgbm as lgb

    from fenqi.clock import FixedClock
    from fenqi.risk.decision import Decider
    from fenqi.risk.flow import load_flow
    from fenqi.risk.registry import load_model
    from fenqi.risk.train import train_model

    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as registry:
        trained = train_model(frame, TARGET, "gbm", Path(registry), clock, holdout=0.0)
        loaded = load_model(trained.path)
    names = [s.name for s in loaded.specs]
    features = frame[names]
    matrix = features.to_numpy(dtype=np.float64)
    y = (frame[TARGET] == 1).to_numpy(dtype=int)
    booster = loaded.model.booster  # type: ignore[attr-defined]
    default = lgb.train(
        {"objective": "binary", "verbosity": -1},
        lgb.Dataset(matrix, y, feature_name=names),
        num_boost_round=100,
    )
    decider = Decider(loaded, load_flow())
    records = features.head(decisions).to_dict("records")
    applications = [
        {
            "applicant_id": str(i),
            "age": 35,
            "identity_verified": True,
            "blacklisted": False,
            "other_lenders_count": 1,
            "bureau_worst_dpd": 0,
            "customer_tier": "new",
            "monthly_income_fen": 1_200_000,
            "features": r,
        }
        for i, r in enumerate(records)
    ]
    rows = [matrix[i : i + 1] for i in range(decisions)]
    for i in range(50):  # warm up caches and thread pools
        decider.decide(applications[i])
        booster.predict(rows[i])
        default.predict(rows[i])

    def timed(call: Any, items: list[Any]) -> list[int]:
        out = []
        for item in items:
            start = time.perf_counter_ns()
            call(item)
            out.append(time.perf_counter_ns() - start)
        return out

    # Raw single-row predicts on one thread: LightGBM's OpenMP start-up dominates a one-row
    # predict otherwise, and the decision path also predicts single rows on one thread.
    decision_ns = timed(decider.decide, applications)
    raw_same_ns = timed(lambda row: booster.predict(row, num_threads=1), rows)
    raw_default_ns = timed(lambda row: default.predict(row, num_threads=1), rows)

    def rate(call: Any, repeats: int = 5) -> float:
        best = min(_once(call) for _ in range(repeats))
        return len(frame) / best

    fenqi_batch = rate(lambda: loaded.predict_pd(frame))
    from fenqi.risk.scoring import score_file

    with tempfile.TemporaryDirectory() as scratch:
        csv_in = Path(scratch) / "in.csv"
        features.to_csv(csv_in, index=False)
        score_plain = rate(
            lambda: score_file(loaded, csv_in, Path(scratch) / "a.csv", reasons=0), repeats=2
        )
        score_reasons = rate(lambda: score_file(loaded, csv_in, Path(scratch) / "b.csv"), repeats=2)
    raw_same_batch = rate(lambda: booster.predict(matrix))
    raw_default_batch = rate(lambda: default.predict(matrix))
    single = _percentiles(decision_ns)
    raw_same = _percentiles(raw_same_ns)
    raw_default = _percentiles(raw_default_ns)
    return {
        "model_rounds": int(loaded.model.best_rounds),  # type: ignore[attr-defined]
        "decision": single,
        "raw_single_same_booster": raw_same,
        "raw_single_default_lightgbm": raw_default,
        "decision_p50_ratio_vs_raw_same": single["p50_us"] / raw_same["p50_us"],
        "decision_p50_ratio_vs_raw_default": single["p50_us"] / raw_default["p50_us"],
        "batch_rows_per_s": fenqi_batch,
        "raw_batch_same_booster_rows_per_s": raw_same_batch,
        "raw_batch_default_lightgbm_rows_per_s": raw_default_batch,
        "batch_ratio_vs_raw_same": fenqi_batch / raw_same_batch,
        "score_command_csv_rows_per_s": score_plain,
        "score_command_csv_with_reasons_rows_per_s": score_reasons,
        "batch_ratio_vs_raw_default": fenqi_batch / raw_default_batch,
    }


def _once(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from fenqi.risk.data import read_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=2000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame = read_table(args.data)
    console = Console()
    console.print(f"quality: {args.folds}-fold stratified CV (seed 42) on {len(frame)} rows")
    measured = quality(frame, args.folds)
    console.print("holdout: 70/30 split of every shared data set")
    held = holdout_quality()
    console.print("speed: single decisions and batch scoring")
    timing = speed(frame, args.decisions)
    timing["text"] = text_speed()

    table = Table(title="Model quality (mean over folds)")
    for column in ("model", "AUC", "KS"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in measured.items():
        table.add_row(name, f"{row['auc']:.4f}", f"{row['ks']:.4f}")
    console.print(table)
    checks: dict[str, bool] = {}
    for metric in ("auc", "ks"):
        checks[f"scorecard >= optbinning default ({metric.upper()})"] = (
            measured["fenqi scorecard"][metric]
            >= measured["optbinning Scorecard (default)"][metric]
        )
        checks[f"GBM >= best of LightGBM/XGBoost defaults ({metric.upper()})"] = measured[
            "fenqi GBM"
        ][metric] >= max(
            measured["LightGBM (default)"][metric], measured["XGBoost (default)"][metric]
        )
    checks["batch >= 0.9 of raw speed (same booster)"] = timing["batch_ratio_vs_raw_same"] >= 0.9
    if timing["text"]:
        checks["batch with text columns >= 0.9 of raw speed"] = (
            timing["text"]["batch_ratio_vs_raw_same"] >= 0.9
        )
    holdout_table = Table(title="Holdout AUC (70/30 stratified split, seed 42)")
    for column in (
        "data set",
        "fenqi scorecard",
        "optbinning default",
        "fenqi GBM",
        "LightGBM default",
    ):
        holdout_table.add_column(column, justify="left" if column == "data set" else "right")
    for name, row in held.items():
        holdout_table.add_row(
            name,
            f"{row['fenqi scorecard']:.4f}",
            f"{row['optbinning Scorecard (default)']:.4f}",
            f"{row['fenqi GBM']:.4f}",
            f"{row['LightGBM (default)']:.4f}",
        )
        checks[f"{name}: scorecard >= optbinning default (holdout AUC)"] = (
            row["fenqi scorecard"] >= row["optbinning Scorecard (default)"]
        )
        checks[f"{name}: GBM >= LightGBM default (holdout AUC)"] = (
            row["fenqi GBM"] >= row["LightGBM (default)"]
        )
    console.print(holdout_table)
    speed_table = Table(title="Speed")
    for column in ("measure", "fenqi", "raw same booster", "raw default LightGBM"):
        speed_table.add_column(column, justify="left" if column == "measure" else "right")
    for key in ("p50_us", "p99_us"):
        speed_table.add_row(
            f"single decision {key[:3]} (µs)",
            f"{timing['decision'][key]:.0f}",
            f"{timing['raw_single_same_booster'][key]:.0f}",
            f"{timing['raw_single_default_lightgbm'][key]:.0f}",
        )
    speed_table.add_row(
        "batch rows/s",
        f"{timing['batch_rows_per_s']:,.0f}",
        f"{timing['raw_batch_same_booster_rows_per_s']:,.0f}",
        f"{timing['raw_batch_default_lightgbm_rows_per_s']:,.0f}",
    )
    console.print(speed_table)
    console.print(
        f"decision p50 / raw single predict p50: {timing['decision_p50_ratio_vs_raw_same']:.1f}x"
        f" (same booster), {timing['decision_p50_ratio_vs_raw_default']:.1f}x (default)\n"
        f"batch / raw batch: {timing['batch_ratio_vs_raw_same']:.2f} (same booster, "
        f"{timing['model_rounds']} trees), {timing['batch_ratio_vs_raw_default']:.2f} "
        "(default LightGBM, 100 trees)"
    )
    if timing["text"]:
        console.print(
            f"batch / raw batch with {timing['text']['text_columns']:.0f} text "
            f"columns: {timing['text']['batch_ratio_vs_raw_same']:.2f}"
        )
    console.print(
        f"fenqi risk score, CSV to CSV: {timing['score_command_csv_rows_per_s']:,.0f} rows/s "
        f"without reasons, {timing['score_command_csv_with_reasons_rows_per_s']:,.0f} with 4 "
        "reasons"
    )
    for name, ok in checks.items():
        console.print(f"{'PASS' if ok else 'FAIL'}  {name}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "data": str(args.data),
                "rows": len(frame),
                "folds": args.folds,
                "seed": 42,
                "machine": {
                    "python": platform.python_version(),
                    "processor": platform.machine(),
                    "cpus": os.cpu_count(),
                    "load_average_1m": os.getloadavg()[0],
                },
                "quality": measured,
                "holdout": held,
                "speed": timing,
                "checks": checks,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
