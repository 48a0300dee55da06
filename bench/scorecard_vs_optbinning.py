"""fenqi's scorecard against optbinning's default Scorecard, 5-fold stratified CV on every shared
data set (issue 23: the scorecard must match or beat optbinning's defaults).

Per data set and fold (StratifiedKFold, shuffle, seed 42), on the same feature columns (those
fenqi's `prepare` keeps; text columns are categorical for both):

- fenqi scorecard: `fit_scorecard` with its defaults; AUC of the PD read from the published
  score, i.e. the sum of integer points;
- the same model's unrounded log-odds (what the rounding to whole points costs);
- `fenqi risk train`'s pipeline on the fold's training rows (`train_model`: 20% holdout, Platt
  calibration on it, refit on all the fold's rows): the model a user would ship;
- fenqi with the settings before issue 23's last fix (4% pre-bins, scikit-learn's C = 1): the
  gap being fixed;
- optbinning `Scorecard(BinningProcess(names, categorical_variables=text),
  LogisticRegression())`, all defaults.

Prints a table of mean AUC and KS over the folds and writes
bench/results/scorecard_vs_optbinning.json. Not a test: run it by hand,
`PYTHONPATH=src .venv/bin/python bench/scorecard_vs_optbinning.py [--folds 5] [--only NAME]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scorecard_vs_optbinning.json"
SETS = {
    "uci_credit_card_default": ("uci_credit_card_default.csv", "default_payment_next_month"),
    "german_credit": ("german_credit.csv", "creditability"),
}
FENQI = "fenqi scorecard (integer points)"
UNROUNDED = "fenqi, unrounded log-odds"
BEFORE = "fenqi before (4% pre-bins, C=1)"
PIPELINE = "fenqi risk train (calibrated, refit)"
OPTB = "optbinning Scorecard (default)"


def _datasets() -> Path:
    for parent in HERE.parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    return HERE.parents[1] / "shared" / "datasets"


def cross_validate(file: Path, target: str, folds: int) -> dict[str, Any]:
    import tempfile
    from datetime import UTC, datetime

    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from fenqi.clock import FixedClock
    from fenqi.risk import metrics
    from fenqi.risk.data import FeatureKind, read_table
    from fenqi.risk.scorecard import ScorecardParams, fit_scorecard
    from fenqi.risk.train import prepare, train_model

    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    frame = read_table(file)
    prepared = prepare(frame, target)
    names = [s.name for s in prepared.specs]
    text = [s.name for s in prepared.specs if s.kind is FeatureKind.CATEGORICAL]
    y = prepared.y
    scores: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, truth: np.ndarray, pd_: np.ndarray) -> None:
        scores.setdefault(name, []).append((metrics.auc(truth, pd_), metrics.ks(truth, pd_)))

    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=42)
    for fold, (train, test) in enumerate(split.split(prepared.matrix, y), start=1):
        started = time.perf_counter()
        m_train, m_test = prepared.matrix[train], prepared.matrix[test]
        model = fit_scorecard(m_train, y[train], prepared.specs)
        add(FENQI, y[test], model.predict_pd(m_test))
        add(UNROUNDED, y[test], model.woe_matrix(m_test) @ model.coefficients)
        before = fit_scorecard(
            m_train,
            y[train],
            prepared.specs,
            ScorecardParams(min_prebin_size=0.04, regularization_c=1.0),
        )
        add(BEFORE, y[test], before.woe_matrix(m_test) @ before.coefficients)
        with tempfile.TemporaryDirectory() as registry:
            shipped = train_model(frame.iloc[train], target, "scorecard", Path(registry), clock)
            add(PIPELINE, y[test], shipped.predict_pd(frame.iloc[test]))
        optb = Scorecard(
            binning_process=BinningProcess(names, categorical_variables=text),
            estimator=LogisticRegression(),
        )
        optb.fit(frame[names].iloc[train], y[train])
        add(OPTB, y[test], optb.predict_proba(frame[names].iloc[test])[:, 1])
        print(
            f"  fold {fold}/{folds}: "
            + ", ".join(f"{k.split(' (')[0]} {v[-1][0]:.4f}" for k, v in scores.items())
            + f" ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return {
        "rows": len(y),
        "features": len(names),
        "bad_rate": float(y.mean()),
        "models": {
            name: {
                "auc": float(np.mean([a for a, _ in v])),
                "ks": float(np.mean([k for _, k in v])),
                "auc_by_fold": [a for a, _ in v],
            }
            for name, v in scores.items()
        },
    }


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", choices=sorted(SETS), default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    console = Console(width=150)
    datasets = _datasets()
    results: dict[str, Any] = {}
    for name, (file, target) in SETS.items():
        if (args.only and name != args.only) or not (datasets / file).is_file():
            continue
        console.print(f"{name}: {args.folds}-fold stratified CV (seed 42)")
        results[name] = cross_validate(datasets / file, target, args.folds)
    table = Table(title=f"Mean AUC (KS) over {args.folds} folds")
    columns = (FENQI, OPTB, "difference", PIPELINE, UNROUNDED, BEFORE)
    table.add_column("data set")
    for column in columns:
        table.add_column(column, justify="right")
    for name, result in results.items():
        m = result["models"]
        table.add_row(
            name,
            f"{m[FENQI]['auc']:.4f} ({m[FENQI]['ks']:.3f})",
            f"{m[OPTB]['auc']:.4f} ({m[OPTB]['ks']:.3f})",
            f"{m[FENQI]['auc'] - m[OPTB]['auc']:+.4f}",
            f"{m[PIPELINE]['auc']:.4f} ({m[PIPELINE]['ks']:.3f})",
            f"{m[UNROUNDED]['auc']:.4f}",
            f"{m[BEFORE]['auc']:.4f}",
        )
        result["scorecard_at_least_optbinning"] = m[FENQI]["auc"] >= m[OPTB]["auc"]
    console.print(table)
    for name, result in results.items():
        verdict = "PASS" if result["scorecard_at_least_optbinning"] else "FAIL"
        console.print(f"{verdict}  {name}: fenqi scorecard >= optbinning default (mean AUC)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "folds": args.folds,
                "seed": 42,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_1m": os.getloadavg()[0],
                },
                "data_sets": results,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
