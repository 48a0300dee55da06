"""Model evaluation: AUC, KS, Gini, Brier, calibration and gains tables, PSI.

Pure functions over arrays: `y` is 1 for bad, `pd_` is the predicted probability of bad, and a
score is higher for safer applicants. The same numbers feed the CLI, the report and monitoring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PSI_EPSILON = 1e-4  # share used for an empty bin so PSI stays finite (common practice)
BINS_MAX = 100


@dataclass(frozen=True, slots=True)
class Summary:
    auc: float
    ks: float
    gini: float
    brier: float
    n: int
    bad_rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(y: np.ndarray, pd_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    pd_ = np.asarray(pd_, dtype=np.float64)
    if y.shape != pd_.shape or y.ndim != 1:
        raise ValueError(f"y and pd must be 1-d of the same length, got {y.shape} and {pd_.shape}")
    if len(y) == 0 or y.min() == y.max():
        raise ValueError("evaluation needs both good and bad outcomes")
    return y, pd_


def roc_points(y: np.ndarray, pd_: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    y, pd_ = _check(y, pd_)
    fpr, tpr, thresholds = roc_curve(y, pd_)
    return fpr, tpr, thresholds


def auc(y: np.ndarray, pd_: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y, pd_ = _check(y, pd_)
    return float(roc_auc_score(y, pd_))


def ks(y: np.ndarray, pd_: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the widest gap between the bad and good cumulative distributions."""
    fpr, tpr, _ = roc_points(y, pd_)
    return float(np.max(tpr - fpr))


def brier(y: np.ndarray, pd_: np.ndarray) -> float:
    y, pd_ = _check(y, pd_)
    return float(np.mean((pd_ - y) ** 2))


def summary(y: np.ndarray, pd_: np.ndarray) -> Summary:
    area = auc(y, pd_)
    return Summary(
        auc=area,
        ks=ks(y, pd_),
        gini=2.0 * area - 1.0,
        brier=brier(y, pd_),
        n=len(y),
        bad_rate=float(np.mean(y)),
    )


def _quantile_groups(values: np.ndarray, bins: int) -> np.ndarray:
    """Group index 0..bins-1 by rank, ties kept together."""
    if not 1 <= bins <= BINS_MAX:
        raise ValueError(f"bins must be in 1..{BINS_MAX}")
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.arange(len(values))
    return np.minimum(ranks * bins // max(len(values), 1), bins - 1)


def calibration_table(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Predicted vs observed bad rate by PD decile (lowest PD first)."""
    y, pd_ = _check(y, pd_)
    groups = _quantile_groups(pd_, bins)
    rows = []
    for g in range(bins):
        mask = groups == g
        if mask.any():
            rows.append(
                {
                    "bin": g + 1,
                    "n": int(mask.sum()),
                    "pd_mean": float(pd_[mask].mean()),
                    "bad_rate": float(y[mask].mean()),
                    "pd_min": float(pd_[mask].min()),
                    "pd_max": float(pd_[mask].max()),
                }
            )
    return rows


def gains_table(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Gains and lift by decile, riskiest decile first: how many bads each cut-off catches."""
    y, pd_ = _check(y, pd_)
    groups = bins - 1 - _quantile_groups(pd_, bins)  # 0 = riskiest
    total_bad = y.sum()
    base_rate = y.mean()
    rows = []
    cum_bad = 0.0
    cum_n = 0
    for g in range(bins):
        mask = groups == g
        if not mask.any():
            continue
        n = int(mask.sum())
        bad = float(y[mask].sum())
        cum_bad += bad
        cum_n += n
        rate = bad / n
        rows.append(
            {
                "decile": g + 1,
                "n": n,
                "bads": int(bad),
                "bad_rate": rate,
                "pd_min": float(pd_[mask].min()),
                "pd_max": float(pd_[mask].max()),
                "cum_bad_share": float(cum_bad / total_bad),
                "lift": float(rate / base_rate),
                "cum_lift": float((cum_bad / cum_n) / base_rate),
            }
        )
    return rows


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` (e.g. test vs train scores).

    Bins are the expected sample's quantiles; by convention < 0.1 is stable, 0.1-0.25 a shift
    worth watching, > 0.25 a shift that calls for a model review.
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    expected = expected[~np.isnan(expected)]
    actual = actual[~np.isnan(actual)]
    if len(expected) == 0 or len(actual) == 0:
        raise ValueError("PSI needs two non-empty samples")
    if not 1 <= bins <= BINS_MAX:
        raise ValueError(f"bins must be in 1..{BINS_MAX}")
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    e_share = np.bincount(
        np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1
    ) / len(expected)
    a_share = np.bincount(
        np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1
    ) / len(actual)
    e_share = np.maximum(e_share, PSI_EPSILON)
    a_share = np.maximum(a_share, PSI_EPSILON)
    value = float(np.sum((a_share - e_share) * np.log(a_share / e_share)))
    return max(value, 0.0)  # each term is >= 0; clamp float noise


def psi_against_deciles(deciles: np.ndarray, actual: np.ndarray) -> float:
    """PSI of `actual` against a reference stored as its nine decile edges (10% per bin)."""
    edges = np.asarray(deciles, dtype=np.float64)
    if edges.shape != (9,):
        raise ValueError("a decile reference has nine edges")
    actual = np.asarray(actual, dtype=np.float64)
    actual = actual[~np.isnan(actual)]
    if len(actual) == 0:
        raise ValueError("PSI needs a non-empty sample")
    a_share = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=10) / len(actual)
    a_share = np.maximum(a_share, PSI_EPSILON)
    return max(float(np.sum((a_share - 0.1) * np.log(a_share / 0.1))), 0.0)
