"""Request and response bodies of the REST API (pydantic). Amounts are integer fen.

Request bodies are strict (`fenqi.api.text`): integers must be JSON integers (not `true`,
`"100"`, `100.0` or `1e3`), text may not hold control characters, unknown fields are refused.
Text limits match the columns that store them, so nothing valid here fails in the database."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fenqi.api.text import IdNumberText, Line, NameText, Paragraph, PhoneText
from fenqi.credit.applications import Application
from fenqi.credit.underwriting import Behaviour as ApplicantBehaviour
from fenqi.privacy.consent import ConsentGiven
from fenqi.risk.transaction import TRANSACTION_AMOUNT_FEN_MAX

Fen = Field(ge=1, le=10**11, description="Amount in fen (integer minor units).")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(BaseModel):
    type: str
    title: str
    status: int
    code: str
    detail: str


class ConsentIn(Body):
    # the separate consents of issue 18 too: sensitive data, sharing with a named funder or
    # bureau (scope), post-loan monitoring (docs/privacy.md)
    kind: Literal[
        "bureau_inquiry",
        "shopping_data",
        "marketing",
        "bureau_monitoring",
        "sensitive_data",
        "sharing",
    ]
    text_version: Line = Field(min_length=1, max_length=32)
    scope: Line = Field(min_length=1, max_length=200)


class Behaviour(Body):
    """What the shop knows about the shopper (used by the decision flow)."""

    account_age_days: int = Field(ge=0, le=36_500)
    orders_12m: int = Field(ge=0, le=100_000)
    spend_12m_fen: int = Field(ge=0, le=10**12)
    return_rate_bp: int = Field(ge=0, le=10_000)
    other_lenders: int = Field(default=0, ge=0, le=100)
    bureau_delinquent: bool = False
    identity_verified: bool = True


class ApplicationIn(Body):
    product: Line = Field(min_length=1, max_length=64)
    name: NameText = Field(min_length=1, max_length=64)
    id_number: IdNumberText = Field(min_length=15, max_length=18)
    phone: PhoneText = Field(min_length=11, max_length=20)
    income_band: Literal["none", "lt3k", "3k_6k", "6k_10k", "10k_20k", "gt20k"]
    consents: list[ConsentIn] = Field(min_length=1, max_length=5)
    behaviour: Behaviour

    def to_application(self) -> Application:
        """The validated body as the credit service's own type (services take no HTTP
        schemas)."""
        b = self.behaviour
        return Application(
            product=self.product,
            name=self.name,
            id_number=self.id_number,
            phone=self.phone,
            income_band=self.income_band,
            consents=tuple(ConsentGiven(c.kind, c.text_version, c.scope) for c in self.consents),
            behaviour=ApplicantBehaviour(
                account_age_days=b.account_age_days,
                orders_12m=b.orders_12m,
                spend_12m_fen=b.spend_12m_fen,
                return_rate_bp=b.return_rate_bp,
                other_lenders=b.other_lenders,
                bureau_delinquent=b.bureau_delinquent,
                identity_verified=b.identity_verified,
            ),
        )


class ApplicationOut(BaseModel):
    application_id: int
    created_at: str | None = None
    customer_id: int
    outcome: Literal["approved", "declined", "review"]
    credit_account_id: int | None
    product: str
    tier: str | None
    limit_fen: int | None
    reasons: list[str]
    decision_id: str | None
    account: Literal["opened", "existing"] | None = Field(
        None,
        description="approved: 'opened' (a new account) or 'existing' (the shopper's account "
        "on this product is kept as it is; limit_fen is its real limit)",
    )
    decision_limit_fen: int | None = Field(
        None,
        description="the limit this decision alone would grant (not applied to an "
        "existing account)",
    )


class ProductTermOut(BaseModel):
    count: int
    total_fee_bp: int
    annual_rate_bp: int


class ProductTierOut(BaseModel):
    name: str
    limit_max_fen: int
    fee_discount_bp: int


class ProductOut(BaseModel):
    name: str
    display_name: str
    kind: str
    currency: str
    limit_min_fen: int
    limit_max_fen: int
    interest_free_cycle: bool
    max_interest_free_days: int
    installment_terms: list[ProductTermOut]
    tiers: list[ProductTierOut]


class ProductList(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = None


class ShopperSessionIn(Body):
    customer_id: int = Field(ge=1, le=2**53 - 1)


class SessionOut(BaseModel):
    token: str
    expires_at: str


class QuoteIn(Body):
    credit_account_id: int = Field(ge=1, le=2**53 - 1)
    amount_fen: int = Fen


class ScheduleLineOut(BaseModel):
    period: int
    due_date: str
    principal_fen: int
    fee_fen: int
    interest_fen: int
    total_fen: int


class RateRegimeOut(BaseModel):
    name: str | None  # None: no regime covers the product; fenqi's own cap applied
    cap_bp: int
    method: Literal["irr", "reg_z"]
    rate_bp: int
    source: str


class PlanQuoteOut(BaseModel):
    plan: Literal["cycle", "installments"]
    terms: int
    per_period_fen: int
    first_due_date: str
    total_fee_fen: int
    total_interest_fen: int
    total_fen: int
    annualized_rate_bp: int
    effective_annual_rate_bp: int
    schedule: list[ScheduleLineOut]
    rate_regime: RateRegimeOut | None = None


class QuoteOut(BaseModel):
    credit_account_id: int
    currency: str
    amount_fen: int
    available_fen: int
    plans: list[PlanQuoteOut]


class OrderIn(Body):
    credit_account_id: int = Field(ge=1, le=2**53 - 1)
    amount_fen: int = Field(
        ge=1,
        le=TRANSACTION_AMOUNT_FEN_MAX,
        description="Amount in fen (integer minor units); one checkout is at most "
        "1,000,000 yuan (the transaction-risk maximum).",
    )
    currency: str = Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of `amount_fen` (required): it must be the shop's currency "
        "and the credit account's, or the order is refused with `currency_mismatch`.",
    )
    terms: int = Field(ge=0, le=60, description="0 = pay in the interest-free cycle")
    merchant_order_ref: Line = Field(min_length=1, max_length=64)
    device_id: Line | None = Field(default=None, min_length=1, max_length=128)
    step_up_verified: bool = Field(
        default=False,
        description="The shopper passed the extra check that a `risk_step_up` "
        "decline asked for (e.g. payment password or SMS code), verified by the shop.",
    )
    capture: bool = Field(
        default=False,
        description="Capture at once (a sale, for goods handed over at checkout): the order "
        "comes back `captured` with its `plan_id`, nothing is held, and its only webhook is "
        "`order.captured`. By default the order is only authorized and the shop captures at "
        "shipment.",
    )


class CaptureIn(Body):
    amount_fen: int | None = Field(default=None, ge=1, le=10**11)
    final: bool | None = None


class RefundIn(Body):
    amount_fen: int = Fen


class OrderPlanOut(BaseModel):
    """One plan of an order: each capture books its own (a partial capture is a purchase of its
    own, with its own schedule from the day it is captured)."""

    plan_id: int
    capture_id: int
    capture_number: int
    principal_fen: int
    kind: str
    terms: int
    status: str


class CaptureOut(BaseModel):
    id: int
    order_id: int
    number: int
    amount_fen: int
    plan_id: int
    created_at: str


class CaptureList(BaseModel):
    items: list[CaptureOut]
    next_cursor: str | None = None


class RefundOut(BaseModel):
    id: int
    order_id: int
    amount_fen: int
    paid_back_to_shopper_fen: int
    created_at: str


class RefundList(BaseModel):
    items: list[RefundOut]
    next_cursor: str | None = None


class OrderOut(BaseModel):
    id: int
    merchant_order_ref: str
    credit_account_id: int
    currency: str
    amount_fen: int
    terms: int
    status: str
    captured_fen: int
    refunded_fen: int
    created_at: str
    expires_at: str
    plan_id: int | None = Field(
        default=None, description="The plan of the order's latest capture (null before one)."
    )
    plans: list[OrderPlanOut] = Field(
        default_factory=list, description="Every plan of the order, one per capture, in order."
    )
    capture: CaptureOut | None = Field(
        default=None, description="The capture this request made (capture and sale responses)."
    )
    refund: RefundOut | None = Field(
        default=None, description="The refund this request made (refund responses)."
    )
    paid_back_to_shopper_fen: int | None = None


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class SettlementOut(BaseModel):
    merchant_id: str
    currency: str
    owed_fen: int
    held_fen: int
    captured_fen: int
    refunded_fen: int
    orders: int
    by_kind_fen: dict[str, int]


class RepaymentIn(Body):
    amount_fen: int = Fen


class RepaymentOut(BaseModel):
    repayment_id: int
    amount_fen: int
    by_kind_fen: dict[str, int]
    to_credit_balance_fen: int


class CreditPayoutIn(Body):
    amount_fen: int | None = Field(
        default=None,
        ge=1,
        le=10**11,
        description="Part of the credit balance; all of it if absent.",
    )


class CreditPayoutOut(BaseModel):
    credit_account_id: int
    currency: str
    amount_fen: int
    credit_balance_fen: int


class PayoffIn(Body):
    amount_fen: int = Fen


class PayoffOut(BaseModel):
    plan_id: int
    as_of: str
    principal_fen: int
    fee_fen: int
    interest_fen: int
    penalty_fen: int
    fee_waived_fen: int
    interest_waived_fen: int
    total_fen: int


class ConversionIn(Body):
    plan_ids: list[Annotated[int, Field(ge=1, le=2**53 - 1)]] = Field(min_length=1, max_length=100)
    terms: int = Field(ge=1, le=60)


class ConversionOut(BaseModel):
    plan_id: int | None
    quote: PlanQuoteOut


class AccountOut(BaseModel):
    credit_account_id: int
    product: str
    status: str
    currency: str
    limit_fen: int
    available_fen: int | None
    held_fen: int
    principal_owed_fen: int
    owed_fen: int
    overdue_fen: int
    credit_balance_fen: int
    next_due_date: str | None
    next_due_fen: int


class AccountPage(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None


class PlanOut(BaseModel):
    id: int
    kind: str
    terms: int
    status: str
    purchase_date: str
    principal_fen: int
    fee_fen: int
    interest_fen: int
    annualized_rate_bp: int
    owed_fen: int
    lines: list[dict[str, Any]]


class StatementOut(BaseModel):
    due_date: str
    due_fen: int
    paid_fen: int
    owed_fen: int
    lines: list[dict[str, Any]]


class StaffLoginIn(Body):
    username: Line = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)  # hashed, never stored as sent


class ReasonIn(Body):
    reason: Paragraph = Field(min_length=1, max_length=500)


class LimitIn(Body):
    limit_fen: int = Field(ge=0, le=10**11)
    reason: Paragraph = Field(min_length=1, max_length=500)


class HardshipIn(Body):
    terms: int = Field(ge=1, le=36)
    reason: Paragraph = Field(min_length=1, max_length=500)
    waive_charges: bool = False


class MerchantIn(Body):
    id: str = Field(pattern=r"^m_[a-z0-9_]{1,29}$")
    name: Line = Field(min_length=1, max_length=200)
    category: Line = Field(min_length=1, max_length=40)
    webhook_url: Line | None = Field(default=None, max_length=500, pattern=r"^https?://")
    currency: str = Field(
        default="CNY",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code the shop sells in; its orders and the products its "
        "shoppers apply for must be in it.",
    )


class MerchantOut(BaseModel):
    id: str
    name: str
    category: str
    currency: str = "CNY"
    api_key: str | None = None
    webhook_secret: str | None = None
