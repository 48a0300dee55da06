"""Every distribution of the simulated marketplace, in one place (documented in docs/simulation.md).

A shopper has a hidden creditworthiness z ~ N(0, 1). What a shop and a bureau can see (income,
shopping history, returns, device and address changes, other lenders, reported delinquency) are
noisy functions of z, so a model learns z back only partly, as with real data. How the shopper
repays is driven by z and by the economy's stress:

- default: P(stop paying within 12 months) = sigmoid(BASE_LOGIT + stress - RISK_SLOPE * z),
  about 8% at stress 0 (thin-file online borrowers); they stop 20 + Exponential(100) days after
  opening an account (capped at a year), and in the 60 days before it borrow twice as often;
- lateness: a shopper who pays pays late on a due date with P = sigmoid(LATE_LOGIT +
  LATE_STRESS * stress - LATE_SLOPE * z), by 1 + Geometric(LATE_DAYS_P) days (capped), then cures.

Everything here is pure numpy over a seeded Generator: the same seed gives the same marketplace.
Amounts are integer fen; floats are only used for draws before rounding to fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from fenqi.privacy.identity import check_char

# --------------------------------------------------------------------------- applicants
INCOME_BANDS = ("none", "lt3k", "3k_6k", "6k_10k", "10k_20k", "gt20k")  # monthly, CNY
AGE_RANGE = (18, 66)  # uniform in [18, 66); the default flow declines over 60 by policy
BASE_LOGIT = -2.9  # ~8% bad at stress 0
RISK_SLOPE = 1.25  # how strongly z separates good from bad
LATE_LOGIT = -2.4  # ~10% of due dates paid late at stress 0 for an average shopper
LATE_SLOPE = 0.8
LATE_STRESS = 0.5  # stress makes lateness more common too, half as strongly as default
LATE_DAYS_P = 0.12  # days late = 1 + Geometric(p): mean ~8 days, a few past 30 (M2)
LATE_DAYS_MAX = 60
# the day a defaulter stops paying, counted from account opening: most defaults come early
# (first-payment and early-payment default), so 20 + Exponential(DEFAULT_DELAY_MEAN_DAYS), capped
# at a year (P(default) is a 12-month probability)
DEFAULT_DELAY_MIN_DAYS = 20
DEFAULT_DELAY_MEAN_DAYS = 100
DEFAULT_DELAY_MAX_DAYS = 365
BUST_OUT_DAYS = 60  # a shopper about to default borrows more in the days before
BUST_OUT_FACTOR = 2.0
SHOPPERS_MAX = 20_000_000  # bounded: identifiers are unique up to 10^7 per province cycle

# --------------------------------------------------------------------------- shops
# category: (share of shops and orders, basket multiplier, return-rate multiplier).
# Categories the transaction-risk policy calls high risk step up above ¥1,000.
CATEGORIES: dict[str, tuple[float, float, float]] = {
    "electronics": (0.18, 2.5, 0.8),
    "fashion": (0.25, 0.6, 2.0),
    "home": (0.15, 1.2, 0.8),
    "beauty": (0.12, 0.5, 0.7),
    "grocery": (0.10, 0.3, 0.3),
    "mother_baby": (0.08, 0.7, 0.6),
    "travel": (0.05, 3.0, 0.5),
    "digital_goods": (0.04, 0.4, 0.2),
    "jewelry": (0.03, 4.0, 0.6),
}
# short codes for shop ids: a consent's channel ("merchant:<id>") holds 24 characters
CATEGORY_CODES = {
    "electronics": "elec", "fashion": "fash", "home": "home", "beauty": "beau",
    "grocery": "groc", "mother_baby": "baby", "travel": "trvl", "digital_goods": "digi",
    "jewelry": "jwlr",
}  # fmt: skip
SHOPS_PER_SHOPPERS = 200  # one shop per 200 shoppers, at least one per category, at most 500
SHOPS_MAX = 500

# --------------------------------------------------------------------------- purchases
BASKET_LOG_MEAN = 10.4  # exp(10.4) fen ≈ ¥330 median basket for an average shopper
ORDER_AMOUNT_FEN_MIN = 100  # ¥1
ORDER_AMOUNT_FEN_MAX = 5_000_000  # ¥50,000: the largest limit a product gives
INSTALLMENT_PIVOT_FEN = 80_000  # at ¥800 half the shoppers split the payment
TERM_WEIGHTS = {3: 0.35, 6: 0.30, 9: 0.08, 12: 0.22, 24: 0.05}  # among the product's terms
STEP_UP_PASS = 0.97  # share of shoppers who pass the extra check (SMS code, password)
REFUND_DAYS = (3, 15)  # a return is refunded 3..14 days after the purchase

# --------------------------------------------------------------------------- economics
# Cost of the money lent, for profit: an annual rate on the principal outstanding each day.
FUNDING_COST_BP = 450


def season_multiplier(day: date) -> float:
    """How much busier a day is than an ordinary one: the 618 and Double 11 festivals, their
    run-ups, Double 12, and a little more on weekends."""
    m = 1.0
    if day.month == 6 and day.day == 18:
        m = 3.5  # 618 (JD's anniversary sale)
    elif day.month == 6 and 1 <= day.day < 18:
        m = 1.3
    elif day.month == 11 and day.day == 11:
        m = 6.0  # Double 11 (Singles' Day)
    elif day.month == 11 and day.day < 11:
        m = 1.5  # pre-sales
    elif day.month == 12 and day.day == 12:
        m = 2.0  # Double 12
    if day.weekday() >= 5:
        m *= 1.1
    return m


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


@dataclass(frozen=True)
class Shoppers:
    """The population, one array per attribute (index = shopper number)."""

    z: np.ndarray  # hidden creditworthiness
    age: np.ndarray
    income_idx: np.ndarray
    account_age_days: np.ndarray
    orders_month: np.ndarray  # rate of orders a month (all payment methods)
    orders_12m: np.ndarray
    basket_log_mean: np.ndarray
    spend_12m_fen: np.ndarray
    category_idx: np.ndarray  # favourite category
    return_rate_bp: np.ndarray
    device_changes_12m: np.ndarray
    address_changes_12m: np.ndarray
    other_lenders: np.ndarray
    bureau_delinquent: np.ndarray
    credit_share: np.ndarray  # share of orders paid with fenqi once approved
    p_default: np.ndarray  # hidden, depends on stress
    p_late: np.ndarray  # hidden, depends on stress

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    def income_band(self, i: int) -> str:
        return INCOME_BANDS[int(self.income_idx[i])]


def shoppers(n: int, seed: int, stress: float = 0.0) -> Shoppers:
    if not 0 < n <= SHOPPERS_MAX:
        raise ValueError(f"n must be in 1..{SHOPPERS_MAX:,}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    age = rng.integers(*AGE_RANGE, size=n)
    income_idx = np.clip(
        np.round(2.4 + 1.1 * z + 0.02 * (age - 30) + rng.normal(0, 1.0, n)),
        0,
        len(INCOME_BANDS) - 1,
    ).astype(int)
    account_age_days = np.clip(rng.gamma(2.0, 300.0, n) * np.exp(0.25 * z), 0, 7000).astype(int)
    orders_month = np.exp(0.8 + 0.35 * z + rng.normal(0, 0.5, n))
    orders_12m = rng.poisson(12 * orders_month)
    basket_log_mean = BASKET_LOG_MEAN + 0.3 * z + rng.normal(0, 0.6, n)
    spend_12m_fen = (orders_12m * np.exp(basket_log_mean)).astype(np.int64)
    shares = np.array([c[0] for c in CATEGORIES.values()])
    category_idx = rng.choice(len(CATEGORIES), size=n, p=shares / shares.sum())
    return_mult = np.array([c[2] for c in CATEGORIES.values()])[category_idx]
    return_rate_bp = np.clip(
        rng.beta(1.5, 12.0, n) * 10_000 * np.exp(-0.3 * z) * return_mult, 0, 10_000
    ).astype(int)
    device_changes_12m = rng.poisson(np.exp(-0.2 - 0.5 * z))
    address_changes_12m = rng.poisson(np.exp(-0.9 - 0.4 * z))
    other_lenders = rng.poisson(np.exp(0.2 - 0.6 * z))
    bureau_delinquent = rng.random(n) < sigmoid(-(3.2 + 1.0 * z))
    credit_share = rng.beta(2.0, 3.0, n)
    p_default = sigmoid(BASE_LOGIT + stress - RISK_SLOPE * z)
    p_late = sigmoid(LATE_LOGIT + LATE_STRESS * stress - LATE_SLOPE * z)
    return Shoppers(
        z=z,
        age=age,
        income_idx=income_idx,
        account_age_days=account_age_days,
        orders_month=orders_month,
        orders_12m=orders_12m,
        basket_log_mean=basket_log_mean,
        spend_12m_fen=spend_12m_fen,
        category_idx=category_idx,
        return_rate_bp=return_rate_bp,
        device_changes_12m=device_changes_12m,
        address_changes_12m=address_changes_12m,
        other_lenders=other_lenders,
        bureau_delinquent=bureau_delinquent,
        credit_share=credit_share,
        p_default=p_default,
        p_late=p_late,
    )


# --------------------------------------------------------------------------- identities
_PROVINCES = ("11", "31", "32", "33", "44", "51", "42", "37", "41", "35")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华"


def identity(i: int, age: int, start: date) -> tuple[str, str, str]:
    """(name, resident ID number, mobile) for shopper i: valid (GB 11643 check character), and
    unique by construction (the index is spelled into the region and sequence digits)."""
    province = _PROVINCES[(i // 10_000_000) % len(_PROVINCES)]
    birth = start - timedelta(days=365 * int(age) + 30 + (i * 37) % 300)
    body = f"{province}{i % 10_000:04d}{birth:%Y%m%d}{(i // 10_000) % 1_000:03d}"
    name = _SURNAMES[i % len(_SURNAMES)] + _GIVEN[(i // 20) % len(_GIVEN)]
    phone = f"13{i % 1_000_000_000:09d}"
    return name, body + check_char(body), phone
