"""Synthetic shoppers: a hidden creditworthiness drives what a shop sees and whether they pay.

Every distribution is stated here, in one place. A shopper has a latent score z ~ N(0, 1);
income, shopping history, returns and other debts are noisy functions of z, so a model can learn
z back from them only partly, as in real data. Whether the shopper goes 90+ days past due within
12 months is Bernoulli(sigmoid(BASE_LOGIT + stress − RISK_SLOPE·z)), about 8% bad at stress 0,
close to published consumer-credit default rates for thin-file online borrowers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

INCOME_BANDS = ("none", "lt3k", "3k_6k", "6k_10k", "10k_20k", "gt20k")
BASE_LOGIT = -2.9
RISK_SLOPE = 1.25
AGE_RANGE = (18, 66)  # ages drawn uniformly in [18, 66)


def applicants(n: int, seed: int, stress: float = 0.0) -> pd.DataFrame:
    """A table of n applicants: what is known at application, the hidden z, and `bad`."""
    if not 0 < n <= 20_000_000:
        raise ValueError("n must be in 1..20,000,000")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    age = rng.integers(*AGE_RANGE, size=n)
    income_idx = np.clip(
        np.round(2.4 + 1.1 * z + 0.02 * (age - 30) + rng.normal(0, 1.0, n)),
        0,
        len(INCOME_BANDS) - 1,
    ).astype(int)
    account_age_days = np.clip(rng.gamma(2.0, 300.0, n) * np.exp(0.25 * z), 0, 7000).astype(int)
    orders_12m = rng.poisson(np.exp(2.3 + 0.35 * z + rng.normal(0, 0.5, n)))
    spend_12m_fen = (orders_12m * np.exp(10.4 + 0.3 * z + rng.normal(0, 0.6, n))).astype(np.int64)
    return_rate_bp = np.clip(rng.beta(1.5, 12.0, n) * 10_000 * np.exp(-0.3 * z), 0, 10_000).astype(
        int
    )
    other_lenders = rng.poisson(np.exp(0.2 - 0.6 * z))
    bureau_delinquent = rng.random(n) < 1 / (1 + np.exp(3.2 + 1.0 * z))
    p_bad = 1 / (1 + np.exp(-(BASE_LOGIT + stress - RISK_SLOPE * z)))
    bad = (rng.random(n) < p_bad).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "income_band": np.array(INCOME_BANDS, dtype=object)[income_idx],
            "account_age_days": account_age_days,
            "orders_12m": orders_12m,
            "spend_12m_fen": spend_12m_fen,
            "return_rate_bp": return_rate_bp,
            "other_lenders": other_lenders,
            "bureau_delinquent": bureau_delinquent,
            "z": z,
            "bad": bad,
        }
    )
