"""The shape of a credit product, as an operator writes it in TOML.

Every figure that varies by product lives here as data (allocation order, refund rule, late-fee
caps), so code never branches on a product's name. A template states the source of each
published figure in a comment, and states an assumption where a figure is not published.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fenqi.money import MINOR_UNITS, Remainder, Rounding

MAX_TERMS = 60  # a bound on schedule length: no consumer product here offers more
Fen = Annotated[int, Field(ge=0, le=10**13)]
Bp = Annotated[int, Field(ge=0, le=100_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductKind(StrEnum):
    REVOLVING = "revolving"  # a credit line with statements (Huabei, Baitiao ...)
    PAY_IN_N = "pay_in_n"  # N payments days apart from the purchase (Afterpay / Klarna)
    INSTALLMENT_LOAN = "installment_loan"  # a closed-end loan per purchase (Affirm)


class FeeMethod(StrEnum):
    EQUAL_PRINCIPAL_EQUAL_FEE = "equal_principal_equal_fee"  # 等本等费
    EQUAL_INSTALLMENT = "equal_installment"  # 等额本息 (annuity)
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金 (interest on declining balance)
    PAY_IN_N = "pay_in_n"  # equal parts, no fee
    SIMPLE_INTEREST = "simple_interest"  # fixed payment, daily simple interest on actual days


class PeriodUnit(StrEnum):
    MONTH = "month"
    DAYS = "days"


class ChargeKind(StrEnum):
    PENALTY = "penalty"
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


class Term(Strict):
    """One installment option: N periods and its price."""

    count: int = Field(ge=1, le=MAX_TERMS)
    total_fee_bp: Bp = 0  # 等本等费: total fee over the plan as bp of principal
    annual_rate_bp: Bp = 0  # interest methods: nominal annual rate


class Billing(Strict):
    statement_day: int | None = Field(default=None, ge=1, le=28)
    due_day: int | None = Field(default=None, ge=1, le=28)
    # pay-in-N: days between payments, first payment this many days after purchase
    interval_days: int | None = Field(default=None, ge=1, le=92)
    first_payment_days_after_purchase: int | None = Field(default=None, ge=0, le=92)
    max_interest_free_days: int = Field(default=0, ge=0, le=120)
    holiday_roll: bool = False
    calendar: str = "CN"
    grace_days: int = Field(default=0, ge=0, le=30)


class Installments(Strict):
    method: FeeMethod
    period: PeriodUnit = PeriodUnit.MONTH
    terms: tuple[Term, ...] = Field(min_length=1)
    # 等本等费 fees: charged equally each period (Huabei, Baitiao) or all in the first period
    fee_timing: str = Field(default="per_period", pattern="^(per_period|upfront)$")
    rounding: Rounding = Rounding.HALF_UP
    remainder: Remainder = Remainder.LAST
    min_amount_fen: Fen = 0

    @model_validator(mode="after")
    def _unique_terms(self) -> Installments:
        counts = [t.count for t in self.terms]
        if len(set(counts)) != len(counts):
            raise ValueError(f"terms: each count must appear once, got {counts}")
        return self

    def term(self, count: int) -> Term | None:
        return next((t for t in self.terms if t.count == count), None)


class Revolving(Strict):
    allowed: bool = False
    daily_rate_bp: Decimal = Field(default=Decimal(0), ge=0, le=100)


class LateFee(Strict):
    daily_rate_bp: Decimal = Field(default=Decimal(0), ge=0, le=100)  # on the overdue amount
    fixed_fen: Fen = 0  # charged once per missed payment
    cap_fen: Fen | None = None  # cap per missed payment
    cap_bp_of_purchase: Bp | None = None  # cap as a share of the original purchase


class MinimumPayment(Strict):
    principal_bp: Bp = 10_000  # share of the statement principal; 10,000 = pay in full
    include_charges: bool = True  # fees, interest and penalties billed are due in full
    floor_fen: Fen = 0


class EarlyPayoff(Strict):
    allowed: bool = True
    refund_unbilled_fee: bool = False  # whether fees of periods not yet billed are waived
    penalty_bp: Bp = 0  # on the principal paid early


class RefundRule(Strict):
    fee_refund: str = Field(default="pro_rata", pattern="^(pro_rata|full|none)$")
    overpayment: str = Field(default="credit_balance", pattern="^(credit_balance|pay_back)$")


class RepaymentRule(Strict):
    # how far a repayment may exceed everything the account owes (due or not); the excess
    # becomes a credit balance. 0: a payment beyond what is owed is refused.
    overpayment_max_fen: Fen = 0


class Tier(Strict):
    name: str = Field(min_length=1, max_length=32)
    limit_max_fen: Fen
    fee_discount_bp: Bp = 0  # share off the product's installment fees for this tier


class Limits(Strict):
    min_fen: Fen
    max_fen: Fen

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.min_fen > self.max_fen:
            raise ValueError(f"min_fen {self.min_fen} is above max_fen {self.max_fen}")
        return self


DEFAULT_ALLOCATION = (ChargeKind.PENALTY, ChargeKind.FEE, ChargeKind.INTEREST, ChargeKind.PRINCIPAL)


class Product(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    display_name: str
    kind: ProductKind
    currency: str = "CNY"
    sources: tuple[str, ...] = ()
    limits: Limits
    billing: Billing
    installments: Installments
    revolving: Revolving = Revolving()
    late_fee: LateFee = LateFee()
    minimum_payment: MinimumPayment = MinimumPayment()
    early_payoff: EarlyPayoff = EarlyPayoff()
    refund: RefundRule = RefundRule()
    repayment: RepaymentRule = RepaymentRule()
    allocation_order: tuple[ChargeKind, ...] = DEFAULT_ALLOCATION
    merchant_discount_bp: Bp = 0
    tiers: tuple[Tier, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Product:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"currency: {self.currency!r} is not a supported ISO 4217 code")
        if sorted(self.allocation_order) != sorted(ChargeKind):
            raise ValueError(
                "allocation_order: must name penalty, fee, interest, principal once each"
            )
        b = self.billing
        if self.kind is ProductKind.REVOLVING and (b.statement_day is None or b.due_day is None):
            raise ValueError("billing: a revolving product needs statement_day and due_day")
        if self.kind is ProductKind.PAY_IN_N and (
            b.interval_days is None or b.first_payment_days_after_purchase is None
        ):
            raise ValueError(
                "billing: a pay_in_n product needs interval_days and "
                "first_payment_days_after_purchase"
            )
        if self.kind is ProductKind.PAY_IN_N and self.installments.method is not FeeMethod.PAY_IN_N:
            raise ValueError("installments.method: a pay_in_n product uses method 'pay_in_n'")
        if self.installments.period is PeriodUnit.DAYS and b.interval_days is None:
            raise ValueError("billing.interval_days: needed when installments.period is 'days'")
        for tier in self.tiers:
            if not self.limits.min_fen <= tier.limit_max_fen <= self.limits.max_fen:
                raise ValueError(
                    f"tiers.{tier.name}.limit_max_fen: {tier.limit_max_fen} is outside the "
                    f"product's limit range {self.limits.min_fen}..{self.limits.max_fen}"
                )
        return self

    def tier(self, name: str) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)
