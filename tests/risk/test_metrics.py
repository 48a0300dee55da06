from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fenqi.risk import metrics
from fenqi.risk.scaling import ScoreScale

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_perfect_and_inverted_ranking() -> None:
    y = np.array([0, 0, 1, 1])
    assert metrics.auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.ks(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    s = metrics.summary(y, np.array([0.1, 0.6, 0.4, 0.9]))
    assert s.auc == 0.75 and s.gini == 0.5 and s.n == 4
    assert s.brier == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)


def test_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="both good and bad"):
        metrics.auc(np.zeros(3), np.array([0.1, 0.2, 0.3]))


def test_gains_capture_all_bads_and_riskiest_decile_lifts() -> None:
    rng = np.random.default_rng(0)
    pd_ = rng.random(5000)
    y = (rng.random(5000) < pd_).astype(int)
    gains = metrics.gains_table(y, pd_)
    assert len(gains) == 10
    assert gains[-1]["cum_bad_share"] == pytest.approx(1.0)
    assert gains[0]["lift"] > 1.5 > gains[-1]["lift"]
    cal = metrics.calibration_table(y, pd_)
    assert sum(r["n"] for r in cal) == 5000
    assert all(abs(r["pd_mean"] - r["bad_rate"]) < 0.06 for r in cal)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 300), elements=finite),
    arrays(np.float64, st.integers(1, 300), elements=finite),
)
def test_psi_is_never_negative(expected: np.ndarray, actual: np.ndarray) -> None:
    assert metrics.psi(expected, actual) >= 0.0


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 300), elements=finite))
def test_psi_of_a_sample_with_itself_is_zero(sample: np.ndarray) -> None:
    assert metrics.psi(sample, sample) == 0.0


def test_psi_sees_a_shift() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=5000)
    assert metrics.psi(base, rng.normal(size=5000)) < 0.02
    assert metrics.psi(base, rng.normal(loc=1.0, size=5000)) > 0.25
    deciles = np.quantile(base, np.linspace(0.1, 0.9, 9))
    assert metrics.psi_against_deciles(deciles, base) < 1e-3
    assert metrics.psi_against_deciles(deciles, base + 1.0) > 0.25


def test_default_scale_is_600_at_50_to_1_with_pdo_20() -> None:
    scale = ScoreScale()
    assert scale.score_from_pd(np.array([1 / 51]))[0] == pytest.approx(600.0)
    assert scale.score_from_pd(np.array([1 / 101]))[0] == pytest.approx(620.0)
    assert ScoreScale(pdo=40).score_from_pd(np.array([1 / 101]))[0] == pytest.approx(640.0)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(1e-6, 1 - 1e-6),
    st.floats(1e-6, 1 - 1e-6),
    st.floats(1, 100),
    st.floats(1, 200),
    st.floats(300, 900),
)
def test_scaling_is_monotone_and_invertible(
    a: float, b: float, pdo: float, odds: float, base: float
) -> None:
    scale = ScoreScale(base, odds, pdo)
    sa, sb = scale.score_from_pd(np.array([a, b]))
    if a < b:
        assert sa >= sb
    assert scale.pd_from_score(np.array([sa]))[0] == pytest.approx(a, rel=1e-6)
