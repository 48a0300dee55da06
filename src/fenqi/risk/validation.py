"""What a model validation team asks for beyond AUC/KS: confidence intervals, DeLong's test,
Hosmer-Lemeshow, a master scale with cut-off trade-offs, IV per characteristic, per-feature PSI.

Pure functions over arrays (y = 1 for bad, pd_ = predicted probability of bad; a higher score is
safer), like `metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fenqi.risk import metrics
from fenqi.risk.data import FeatureKind, FeatureSpec
from fenqi.risk.scaling import ScoreScale

Z95 = 1.959963984540054
BOOTSTRAP_ROUNDS = 200
# The master scale: a band per PD range (upper bounds), the same for every model, so bands read
# alike across scorecard and GBM. On the default score scale (600 at 50:1, PDO 20) band C's
# upper bound (2% PD) is 600 points.
MASTER_SCALE: tuple[tuple[str, float], ...] = (
    ("A", 0.005),
    ("B", 0.01),
    ("C", 0.02),
    ("D", 0.05),
    ("E", 0.10),
    ("F", 0.20),
    ("G", 1.0),
)


def band_of(pd_: np.ndarray) -> np.ndarray:
    """The master-scale band of each PD."""
    edges = np.asarray([upper for _, upper in MASTER_SCALE[:-1]])
    names = np.asarray([name for name, _ in MASTER_SCALE], dtype=object)
    return names[np.searchsorted(edges, np.asarray(pd_, dtype=np.float64), side="left")]


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _midranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    n = len(x)
    ranks = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j < n and sorted_x[j] == sorted_x[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n, dtype=np.float64)
    out[order] = ranks
    return out


def _delong_components(y: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their covariance for k predictors (rows of `preds`), by DeLong et al. (1988)
    with the midrank algorithm of Sun & Xu (2014)."""
    y = np.asarray(y).astype(bool)
    pos, neg = preds[:, y], preds[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    k = preds.shape[0]
    tx = np.vstack([_midranks(pos[r]) for r in range(k)])
    ty = np.vstack([_midranks(neg[r]) for r in range(k)])
    tz = np.vstack([_midranks(np.concatenate([pos[r], neg[r]])) for r in range(k)])
    aucs = tz[:, :m].sum(axis=1) / m / n - (m + 1.0) / 2.0 / n
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return aucs, cov


def auc_ci(y: np.ndarray, pd_: np.ndarray) -> tuple[float, float]:
    """95% confidence interval of the AUC (DeLong's variance, normal approximation)."""
    aucs, cov = _delong_components(y, np.asarray(pd_, dtype=np.float64)[None, :])
    half = Z95 * math.sqrt(max(float(cov[0, 0]), 0.0))
    return max(float(aucs[0]) - half, 0.0), min(float(aucs[0]) + half, 1.0)


def delong_test(y: np.ndarray, pd_a: np.ndarray, pd_b: np.ndarray) -> dict[str, float]:
    """DeLong's test of two models' AUCs on the same rows (paired). `p_value` is two-sided;
    `p_value_b_better` one-sided for the hypothesis that B's AUC is higher."""
    preds = np.vstack([np.asarray(pd_a, dtype=np.float64), np.asarray(pd_b, dtype=np.float64)])
    aucs, cov = _delong_components(y, preds)
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[1] - aucs[0])
    z = (
        diff / math.sqrt(var)
        if var > 0
        else (math.inf if diff > 0 else -math.inf if diff < 0 else 0.0)
    )
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": diff,
        "z": z,
        "p_value": min(2 * _normal_sf(abs(z)), 1.0),
        "p_value_b_better": _normal_sf(z),
    }


def intervals(
    y: np.ndarray, pd_: np.ndarray, *, seed: int = 42, rounds: int = BOOTSTRAP_ROUNDS
) -> dict[str, list[float]]:
    """95% intervals: AUC from DeLong's variance; KS from a stratified bootstrap (seeded)."""
    y = np.asarray(y)
    pd_ = np.asarray(pd_, dtype=np.float64)
    rng = np.random.default_rng(seed)
    bad, good = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    values = []
    for _ in range(rounds):
        rows = np.concatenate([rng.choice(bad, len(bad)), rng.choice(good, len(good))])
        values.append(metrics.ks(y[rows], pd_[rows]))
    lo, hi = auc_ci(y, pd_)
    return {
        "auc_ci95": [lo, hi],
        "ks_ci95": [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))],
    }


def hosmer_lemeshow(y: np.ndarray, pd_: np.ndarray, groups: int = 10) -> dict[str, Any]:
    """Hosmer-Lemeshow test over PD deciles. On data the model did not train on the statistic
    is compared with chi-squared on `groups` degrees of freedom (on training data it would be
    groups - 2). p < 0.05: predicted PDs and observed bad rates differ (recalibrate)."""
    from scipy.stats import chi2

    rows = metrics.calibration_table(y, pd_, groups)
    y = np.asarray(y, dtype=np.float64)
    pd_ = np.asarray(pd_, dtype=np.float64)
    statistic = 0.0
    for row in rows:
        n, expected = row["n"], row["pd_mean"] * row["n"]
        observed = row["bad_rate"] * n
        variance = n * row["pd_mean"] * (1 - row["pd_mean"])
        if variance > 0:
            statistic += (observed - expected) ** 2 / variance
    df = len(rows)
    p_value = float(chi2.sf(statistic, df))
    return {
        "statistic": statistic,
        "df": df,
        "p_value": p_value,
        "passed": p_value >= 0.05,
        "worst_group": max(
            ({"bin": r["bin"], "pd_mean": r["pd_mean"], "bad_rate": r["bad_rate"]} for r in rows),
            key=lambda r: abs(r["pd_mean"] - r["bad_rate"]),
        ),
    }


def score_bands(y: np.ndarray, pd_: np.ndarray, scale: ScoreScale) -> list[dict[str, Any]]:
    """The master-scale table, safest band first, with the trade-off of a cut-off at each band's
    lower edge: approving this band and every safer one gives this approval rate, this bad
    rate among the approved, and declines this share of all bads."""
    y = np.asarray(y, dtype=np.float64)
    bands = band_of(pd_)
    total, total_bad = len(y), float(y.sum())
    rows: list[dict[str, Any]] = []
    cum_n, cum_bad = 0, 0.0
    lower = 0.0
    for name, upper in MASTER_SCALE:
        mask = bands == name
        n, bad = int(mask.sum()), float(y[mask].sum())
        cum_n += n
        cum_bad += bad
        score_min = float(scale.score_from_pd(np.array([upper]))[0]) if upper < 1 else None
        rows.append(
            {
                "band": name,
                "pd_from": lower,
                "pd_to": upper,
                "score_from": None if score_min is None else math.ceil(score_min),
                "n": n,
                "bads": int(bad),
                "bad_rate": bad / n if n else None,
                "pd_mean": float(np.mean(pd_[mask])) if n else None,
                "approval_rate_at_cutoff": cum_n / total,
                "bad_rate_approved_at_cutoff": cum_bad / cum_n if cum_n else None,
                "bads_declined_share_at_cutoff": (total_bad - cum_bad) / total_bad
                if total_bad
                else None,
            }
        )
        lower = upper
    return rows


def _feature_bins(
    column: np.ndarray, spec: FeatureSpec, edges: Sequence[float] | None
) -> tuple[np.ndarray, int]:
    """Bin index per row (the last index is "missing") and the number of bins."""
    missing = np.isnan(column)
    if spec.kind is FeatureKind.CATEGORICAL:
        n = len(spec.categories) + 1
        out = np.where(missing, n - 1, np.nan_to_num(column, nan=0.0)).astype(np.int64)
        return out, n
    assert edges is not None
    cut = np.asarray(edges, dtype=np.float64)
    n = len(cut) + 2
    out = np.searchsorted(cut, np.nan_to_num(column, nan=0.0), side="right")
    return np.where(missing, n - 1, out), n


def _decile_edges(column: np.ndarray) -> list[float]:
    present = column[~np.isnan(column)]
    if len(present) == 0:
        return []
    edges: list[float] = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9))).tolist()
    return edges


def feature_reference(matrix: np.ndarray, specs: Sequence[FeatureSpec]) -> dict[str, Any]:
    """Each feature's distribution on the training rows: bin edges (numeric deciles) and the
    share of rows per bin (missing last). The baseline of per-feature PSI."""
    out: dict[str, Any] = {}
    for j, spec in enumerate(specs):
        edges = _decile_edges(matrix[:, j]) if spec.kind is FeatureKind.NUMERIC else None
        bins, n = _feature_bins(matrix[:, j], spec, edges)
        shares = np.bincount(bins, minlength=n) / max(len(bins), 1)
        out[spec.name] = {"edges": edges, "shares": shares.tolist()}
    return out


def feature_psi(
    reference: dict[str, Any], matrix: np.ndarray, specs: Sequence[FeatureSpec]
) -> dict[str, float]:
    """PSI of each feature of `matrix` against the training reference, largest first."""
    out: dict[str, float] = {}
    for j, spec in enumerate(specs):
        ref = reference.get(spec.name)
        if ref is None:
            continue
        bins, n = _feature_bins(matrix[:, j], spec, ref["edges"])
        expected = np.maximum(np.asarray(ref["shares"], dtype=np.float64), metrics.PSI_EPSILON)
        if len(expected) != n:
            continue
        actual = np.maximum(np.bincount(bins, minlength=n) / max(len(bins), 1), metrics.PSI_EPSILON)
        out[spec.name] = max(float(np.sum((actual - expected) * np.log(actual / expected))), 0.0)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def information_values(
    matrix: np.ndarray, y: np.ndarray, specs: Sequence[FeatureSpec]
) -> dict[str, float]:
    """Information value of each feature on this sample (numeric: deciles; categories: labels;
    missing its own bin; 0.5 added to empty cells), largest first. < 0.02 not predictive,
    0.02-0.1 weak, 0.1-0.3 medium, > 0.3 strong, > 0.5 suspect (a leak?)."""
    y = np.asarray(y)
    total_bad, total_good = float(y.sum()), float(len(y) - y.sum())
    out: dict[str, float] = {}
    for j, spec in enumerate(specs):
        edges = _decile_edges(matrix[:, j]) if spec.kind is FeatureKind.NUMERIC else None
        bins, n = _feature_bins(matrix[:, j], spec, edges)
        bad = np.bincount(bins, weights=y.astype(float), minlength=n)
        count = np.bincount(bins, minlength=n).astype(float)
        good = count - bad
        used = count > 0
        b = (bad[used] + 0.5) / (total_bad + 0.5)
        g = (good[used] + 0.5) / (total_good + 0.5)
        out[spec.name] = float(np.sum((g - b) * np.log(g / b)))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
