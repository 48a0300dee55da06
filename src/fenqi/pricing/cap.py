"""The annualized-rate cap: products and quotes above it are refused, with the figure.

Licensed consumer lenders are guided to keep the comprehensive annualized financing cost within
24%; fenqi makes the cap a setting (FENQI_APR_CAP_BP, default 2,400 bp).
"""

from __future__ import annotations

from fenqi.errors import FenqiError
from fenqi.pricing.annualized import AnnualizedRate


class RateCapExceeded(FenqiError):
    code = "rate_cap_exceeded"
    http_status = 422


def check_rate_cap(rate: AnnualizedRate, cap_bp: int, what: str = "quote") -> None:
    if rate.nominal_bp > cap_bp:
        raise RateCapExceeded(
            f"{what}: annualized rate {rate.nominal_bp / 100:.2f}% (IRR method) is over the cap "
            f"of {cap_bp / 100:.2f}%",
            annualized_rate_bp=rate.nominal_bp,
            cap_bp=cap_bp,
        )
