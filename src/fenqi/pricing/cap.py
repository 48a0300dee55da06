"""The annualized-rate cap: products and quotes above it are refused, with the figure.

Licensed consumer lenders are guided to keep the comprehensive annualized financing cost within
24%; fenqi makes the cap a setting (FENQI_APR_CAP_BP, default 2,400 bp), and the rate regime in
force on the date decides which cap and which rate apply (fenqi.compliance.regimes).
"""

from __future__ import annotations

from typing import Any

from fenqi.errors import FenqiError
from fenqi.pricing.annualized import AnnualizedRate


class RateCapExceeded(FenqiError):
    code = "rate_cap_exceeded"
    http_status = 422


def check_rate_cap(
    rate: AnnualizedRate, cap_bp: int, what: str = "quote", held: Any = None
) -> None:
    """Refuse a rate over the cap. `held`: the regime's verdict (fenqi.compliance.regimes.
    CapInForce), which names the regime and measures the rate its way (IRR or Reg Z APR)."""
    if held is not None:
        if held.rate_bp > held.cap_bp:
            how = "APR, Regulation Z actuarial method" if held.method == "reg_z" else "IRR method"
            name = f"regime {held.regime}" if held.regime else "fenqi's cap"
            raise RateCapExceeded(
                f"{what}: annualized rate {held.rate_bp / 100:.2f}% ({how}) is over the cap of "
                f"{held.cap_bp / 100:.2f}% ({name})",
                annualized_rate_bp=held.rate_bp,
                cap_bp=held.cap_bp,
                regime=held.regime or "",
            )
        return
    if rate.nominal_bp > cap_bp:
        raise RateCapExceeded(
            f"{what}: annualized rate {rate.nominal_bp / 100:.2f}% (IRR method) is over the cap "
            f"of {cap_bp / 100:.2f}%",
            annualized_rate_bp=rate.nominal_bp,
            cap_bp=cap_bp,
        )
