"""The shape of funders and co-lending programs, as an operator writes them in TOML.

A funder is whoever owns a share of a plan's principal: the platform's own capital, a bank, a
trust (later an ABS trust). A program says which funders lend together and each one's share of
a loan, how losses are shared, and what happens when a partner cannot take its share. Pure:
nothing here reads a file, a clock or a database.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fenqi.money import BP_PER_UNIT, MINOR_UNITS

Fen = Annotated[int, Field(ge=0, le=10**15)]
PositiveFen = Annotated[int, Field(gt=0, le=10**15)]
Bp = Annotated[int, Field(ge=0, le=100_000)]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,31}$")]

# The draft 2020 rules on online micro-loans ask the platform to fund at least 30% of each
# co-lent loan (thestar.com.my 2020-11-03, "China issues draft rules for online micro-lending
# business"; chinabankingnews.com 2020-11-03; see docs/funding.md). A setting
# (FENQI_FUNDING_PLATFORM_FLOOR_BP, `Settings.funding_platform_floor_bp`, 3,000 bp by default)
# given to the loader.


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FunderKind(StrEnum):
    OWN = "own"  # the platform's own balance sheet
    BANK = "bank"
    TRUST = "trust"
    ABS = "abs"  # a securitization trust (later)


class IncomeRule(StrEnum):
    """How one kind of income collected on a loan is shared with a partner."""

    PRO_RATA = "pro_rata"  # the partner takes its share of the principal's share of the income
    # the partner takes its promised yield on its principal for the period, at most its
    # pro-rata share; the platform keeps the excess spread as its service fee
    PROMISED_YIELD = "promised_yield"
    NONE = "none"  # the platform keeps it all (say penalties)


class LossRule(StrEnum):
    PRO_RATA = "pro_rata"  # every funder bears its share of a charge-off or waiver
    # the platform makes partners whole (they are paid as if the principal had been repaid)
    PLATFORM_GUARANTEE = "platform_guarantee"


class Fallback(StrEnum):
    """What to do when a partner of the program declines a loan or is full."""

    PLATFORM_ALONE = "platform_alone"  # own capital takes the whole loan
    NEXT_PROGRAM = "next_program"  # try the next program (by priority) serving the product
    DECLINE = "decline"  # the purchase is declined with the program's code


class Cost(Strict):
    """What the funder's money costs (what a partner is promised), bp a year."""

    yield_bp: Bp = 0


class IncomeShare(Strict):
    interest: IncomeRule = IncomeRule.PRO_RATA
    fee: IncomeRule = IncomeRule.PRO_RATA
    penalty: IncomeRule = IncomeRule.NONE


class FunderLimits(Strict):
    """Caps on a funder's exposure; absent means no cap."""

    total_outstanding_fen: PositiveFen | None = None
    per_borrower_fen: PositiveFen | None = None
    new_per_day_fen: PositiveFen | None = None
    # concentration: its principal outstanding with borrowers of one province (the first two
    # digits of the resident ID number; borrowers whose region is unknown count as one more)
    per_region_fen: PositiveFen | None = None


class Eligibility(Strict):
    """Which loans a funder takes; an empty list or absent figure means no restriction."""

    products: tuple[str, ...] = ()
    terms: tuple[Annotated[int, Field(ge=1, le=60)], ...] = ()
    tiers: tuple[str, ...] = ()
    score_bands: tuple[str, ...] = ()
    # region by the first digits of the resident ID number (2: province, 4: city, 6: county)
    region_prefixes: tuple[Annotated[str, Field(pattern=r"^[0-9]{2,6}$")], ...] = ()
    min_age: int | None = Field(default=None, ge=18, le=100)
    max_age: int | None = Field(default=None, ge=18, le=100)

    @model_validator(mode="after")
    def _ages(self) -> Eligibility:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError(f"min_age {self.min_age} is above max_age {self.max_age}")
        return self


class ApprovalMode(StrEnum):
    """How a partner decides on a loan a program offers it (when the program asks)."""

    NONE = "none"  # the partner's eligibility rules are its whole decision
    RULES = "rules"  # a rule set in the funder's file (`[approval.rules]`)
    HTTP = "http"  # a call to the partner's endpoint, with a timeout and a fallback


class ApprovalRules(Strict):
    """A partner's own credit rules, applied to each loan it is offered."""

    max_amount_fen: PositiveFen | None = None  # the funder's part of the loan, at most
    max_terms: int | None = Field(default=None, ge=1, le=60)
    min_age: int | None = Field(default=None, ge=18, le=100)
    decline_tiers: tuple[str, ...] = ()
    decline_region_prefixes: tuple[Annotated[str, Field(pattern=r"^[0-9]{2,6}$")], ...] = ()


class Approval(Strict):
    mode: ApprovalMode = ApprovalMode.NONE
    rules: ApprovalRules = ApprovalRules()
    url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_ms: int = Field(default=800, ge=10, le=30_000)
    # what an unanswered or failed call counts as: the partner declines (the program's
    # fallback runs) or approves (a partner that pre-approved the loans it cannot answer for)
    on_timeout: Literal["decline", "approve"] = "decline"

    @model_validator(mode="after")
    def _url(self) -> Approval:
        if self.mode is ApprovalMode.HTTP and not self.url:
            raise ValueError("url: an http approval needs the partner's endpoint")
        return self


class Funder(Strict):
    id: Id
    kind: FunderKind
    legal_name: str = Field(min_length=1, max_length=200)
    currency: str = "CNY"
    example: bool = False  # every figure in the file is an example, not a real partner's
    sources: tuple[str, ...] = ()
    cost: Cost = Cost()
    income: IncomeShare = IncomeShare()
    limits: FunderLimits = FunderLimits()
    eligibility: Eligibility = Eligibility()
    approval: Approval = Approval()

    @model_validator(mode="after")
    def _consistent(self) -> Funder:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"currency: {self.currency!r} is not a supported ISO 4217 code")
        uses_yield = IncomeRule.PROMISED_YIELD in (
            self.income.interest,
            self.income.fee,
            self.income.penalty,
        )
        if uses_yield and self.cost.yield_bp == 0:
            raise ValueError("cost.yield_bp: a promised_yield income rule needs a yield above 0")
        return self


class Share(Strict):
    funder: Id
    share_bp: Annotated[int, Field(gt=0, le=BP_PER_UNIT)]


class Program(Strict):
    id: Id
    display_name: str = ""
    currency: str = "CNY"
    example: bool = False
    sources: tuple[str, ...] = ()
    products: tuple[str, ...] = Field(min_length=1)
    priority: int = Field(default=100, ge=0, le=10_000)  # lower runs first
    shares: tuple[Share, ...] = Field(min_length=1)
    losses: LossRule = LossRule.PRO_RATA
    fallback: Fallback = Fallback.PLATFORM_ALONE
    decline_code: str = Field(default="funding_unavailable", pattern=r"^[a-z][a-z0-9_]{0,63}$")
    # each partner's own decision is asked for (its `[approval]`) before the loan is split
    partner_approval: bool = False

    @model_validator(mode="after")
    def _shares(self) -> Program:
        funders = [s.funder for s in self.shares]
        if len(set(funders)) != len(funders):
            raise ValueError(f"shares: each funder must appear once, got {funders}")
        total = sum(s.share_bp for s in self.shares)
        if total != BP_PER_UNIT:
            raise ValueError(
                f"shares: must sum to {BP_PER_UNIT} bp (100%), got {total} bp ({total / 100}%)"
            )
        return self

    def share_of(self, funder_id: str) -> int:
        return next((s.share_bp for s in self.shares if s.funder == funder_id), 0)


class FundingCatalog(BaseModel):
    """Funders and programs, checked together (see loader.py)."""

    model_config = ConfigDict(frozen=True)

    funders: dict[str, Funder]
    programs: dict[str, Program]
    platform_floor_bp: int

    @property
    def own(self) -> Funder:
        """The platform's own capital in CNY (or, without one, its first own funder): the
        simulated marketplace's currency. Use `own_for` where a currency is known."""
        owns = [f for f in self.funders.values() if f.kind is FunderKind.OWN]
        return next((f for f in owns if f.currency == "CNY"), owns[0])

    def own_for(self, currency: str) -> Funder:
        """The platform's own capital in `currency` (the loader makes sure there is exactly one
        for every currency a product lends in)."""
        return next(
            f for f in self.funders.values() if f.kind is FunderKind.OWN and f.currency == currency
        )

    def programs_for(self, product: str, currency: str) -> list[Program]:
        """The programs serving a product in a currency, in the order they are tried."""
        found = [
            p for p in self.programs.values() if product in p.products and p.currency == currency
        ]
        return sorted(found, key=lambda p: (p.priority, p.id))
