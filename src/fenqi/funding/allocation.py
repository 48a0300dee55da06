"""Pure funding rules: who may fund a loan, how its principal is split, how later cash is split.

No I/O, no clock, no database. Every split returns parts that add up exactly to the whole:
shares are applied with the largest-remainder method (`fenqi.money.allocate`), ties broken by
the order given, so the same inputs always give the same fen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from fenqi.funding.model import Eligibility, Funder, FunderKind, IncomeRule, LossRule, Program
from fenqi.money import BP_PER_UNIT, allocate

DAYS_PER_YEAR = 365


@dataclass(frozen=True, slots=True)
class Borrower:
    """What eligibility rules look at. The caller derives region and age from the protected
    identity; the ID number itself never reaches this module."""

    product: str
    terms: int
    tier: str | None = None
    score_band: str | None = None
    id_prefix: str | None = None  # the first six digits of the resident ID number
    age: int | None = None


def age_on(birth_date: date, day: date) -> int:
    """Whole years of age on `day` (a birthday on 29 February counts from 1 March in other
    years), for `Borrower.age` from the birth date of a validated resident ID."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def ineligible_reasons(rules: Eligibility, b: Borrower) -> list[str]:
    """Why a funder's rules refuse this loan (empty: eligible). Missing facts refuse a rule that
    needs them."""
    out = []
    if rules.products and b.product not in rules.products:
        out.append(f"product {b.product!r} not funded")
    if rules.terms and b.terms not in rules.terms:
        out.append(f"term {b.terms} not funded")
    if rules.tiers and b.tier not in rules.tiers:
        out.append(f"tier {b.tier!r} not funded")
    if rules.score_bands and b.score_band not in rules.score_bands:
        out.append(f"score band {b.score_band!r} not funded")
    if rules.region_prefixes and not (
        b.id_prefix and any(b.id_prefix.startswith(p) for p in rules.region_prefixes)
    ):
        out.append("region not funded")
    if rules.min_age is not None and (b.age is None or b.age < rules.min_age):
        out.append(f"age under {rules.min_age} or unknown")
    if rules.max_age is not None and (b.age is None or b.age > rules.max_age):
        out.append(f"age over {rules.max_age} or unknown")
    return out


def split_principal(
    principal_fen: int, shares: Sequence[tuple[str, int]], round_up: str | None = None
) -> dict[str, int]:
    """A plan's principal split among funders by share (bp), parts adding up exactly.

    `round_up`, when given (own capital), gets its exact share rounded up, so that no loan,
    however small, leaves the platform under its share (the regulatory floor holds per loan);
    the rest is split among the others by largest remainder. Funders whose part is zero are
    left out (a tranche of 0 fen is no tranche)."""
    if principal_fen < 0:
        raise ValueError("principal_fen: must not be negative")
    first = {f: bp for f, bp in shares if f == round_up}
    rest = [(f, bp) for f, bp in shares if f != round_up]
    out: dict[str, int] = {}
    left = principal_fen
    for funder, bp in first.items():
        out[funder] = -(-principal_fen * bp // BP_PER_UNIT)  # ceiling
        left -= out[funder]
    if rest:
        out.update(zip([f for f, _ in rest], allocate(left, [bp for _, bp in rest]), strict=True))
    elif left:
        raise ValueError("shares: must cover the whole principal")
    return {f: out[f] for f, _ in shares if out.get(f, 0) > 0}


def split_pro_rata(amount_fen: int, outstanding: Mapping[str, int]) -> dict[str, int]:
    """An amount split in proportion to each funder's outstanding (or charged-off) principal,
    parts adding up exactly, no part above its funder's weight when the amount is within the
    total (largest remainder never rounds a part past its exact share by a whole fen).

    Funders are taken in sorted order so the split does not depend on a mapping's order."""
    if amount_fen < 0:
        raise ValueError("amount_fen must not be negative")
    funders = sorted(f for f, w in outstanding.items() if w > 0)
    if amount_fen == 0:
        return {}
    if not funders:
        raise ValueError("nothing outstanding to split the amount over")
    total = sum(outstanding[f] for f in funders)
    if amount_fen > total:
        raise ValueError(f"amount {amount_fen} is above the {total} outstanding")
    parts = allocate(amount_fen, [outstanding[f] for f in funders])
    return {f: p for f, p in zip(funders, parts, strict=True) if p > 0}


class CashKind(StrEnum):
    """What moves a plan's principal after it is funded."""

    REPAYMENT = "repayment"
    REFUND = "refund"
    PAYOFF = "payoff"
    WAIVER = "waiver"
    CHARGE_OFF = "charge_off"
    RECOVERY = "recovery"

    @property
    def is_loss(self) -> bool:
        return self in (CashKind.WAIVER, CashKind.CHARGE_OFF)


@dataclass(frozen=True, slots=True)
class Tranche:
    funder_id: str
    outstanding_fen: int
    charged_off_fen: int = 0  # principal charged off or waived, what a recovery is shared by
    recovered_fen: int = 0


def split_event(kind: CashKind, principal_fen: int, tranches: Sequence[Tranche]) -> dict[str, int]:
    """The principal part of an event split among a plan's tranches: by outstanding principal,
    or for a recovery by principal charged off and not yet recovered."""
    if kind is CashKind.RECOVERY:
        return split_pro_rata(
            principal_fen,
            {t.funder_id: t.charged_off_fen - t.recovered_fen for t in tranches},
        )
    return split_pro_rata(principal_fen, {t.funder_id: t.outstanding_fen for t in tranches})


@dataclass(frozen=True, slots=True)
class IncomeSplit:
    """Income collected, split: what each partner takes by kind, and what the platform keeps
    (its own share and the excess spread, its service fee)."""

    to_funders: dict[str, dict[str, int]] = field(default_factory=dict)
    platform_fen: int = 0

    def funder_total(self, funder_id: str) -> int:
        return sum(self.to_funders.get(funder_id, {}).values())


INCOME_KINDS = ("interest", "fee", "penalty")


def split_income(
    income_fen: Mapping[str, int],
    outstanding: Mapping[str, int],
    funders: Mapping[str, Funder],
    period_days: int,
) -> IncomeSplit:
    """Income collected on a plan (by kind: interest, fee, penalty) split by each funder's rules.

    A partner's pro-rata share of a kind is that kind × its share of the principal outstanding
    (the weights `outstanding`, taken before the collection's principal moves). Under
    `promised_yield` it takes instead its yield on its principal for `period_days`
    (yield_bp × principal × days / 365, rounded down), at most its pro-rata share of the kinds
    under that rule, taken from them in the order interest, fee, penalty; the platform keeps the
    rest as its service fee. Under `none` it takes nothing. Own capital takes nothing here: its
    income is the platform's. The platform's part absorbs every remainder, so the parts add up.
    """
    if period_days < 0:
        raise ValueError("period_days must not be negative")
    for kind, amount in income_fen.items():
        if kind not in INCOME_KINDS:
            raise ValueError(f"unknown income kind {kind!r}")
        if amount < 0:
            raise ValueError(f"income {kind} must not be negative")
    weights = {f: w for f, w in outstanding.items() if w > 0}
    if not weights:
        return IncomeSplit({}, sum(income_fen.values()))
    pro_rata = {
        kind: split_pro_rata_any(amount, weights) for kind, amount in income_fen.items() if amount
    }
    to_funders: dict[str, dict[str, int]] = {}
    for funder_id in sorted(weights):
        funder = funders[funder_id]
        if funder.kind is FunderKind.OWN:
            continue
        rules = {
            "interest": funder.income.interest,
            "fee": funder.income.fee,
            "penalty": funder.income.penalty,
        }
        taken: dict[str, int] = {}
        for kind in INCOME_KINDS:
            if rules[kind] is IncomeRule.PRO_RATA and kind in pro_rata:
                taken[kind] = pro_rata[kind].get(funder_id, 0)
        promised = int(
            Decimal(weights[funder_id])
            * funder.cost.yield_bp
            * period_days
            // (BP_PER_UNIT * DAYS_PER_YEAR)
        )
        for kind in INCOME_KINDS:
            if rules[kind] is IncomeRule.PROMISED_YIELD and kind in pro_rata and promised > 0:
                part = min(promised, pro_rata[kind].get(funder_id, 0))
                taken[kind] = part
                promised -= part
        taken = {k: v for k, v in taken.items() if v > 0}
        if taken:
            to_funders[funder_id] = taken
    given = sum(sum(t.values()) for t in to_funders.values())
    return IncomeSplit(to_funders, sum(income_fen.values()) - given)


def split_pro_rata_any(amount_fen: int, weights: Mapping[str, int]) -> dict[str, int]:
    """`amount` split by positive weights whatever their total (income is not capped by the
    principal it is earned on); parts add up exactly, funders in sorted order."""
    funders = sorted(f for f, w in weights.items() if w > 0)
    if amount_fen == 0 or not funders:
        return {}
    parts = allocate(amount_fen, [weights[f] for f in funders])
    return dict(zip(funders, parts, strict=True))


def loss_borne_by_platform(program_losses: LossRule, funder: Funder) -> bool:
    """Whether the platform makes this funder whole on a charge-off or waiver of its share."""
    return funder.kind is not FunderKind.OWN and program_losses is LossRule.PLATFORM_GUARANTEE


def program_shares(program: Program) -> list[tuple[str, int]]:
    return [(s.funder, s.share_bp) for s in program.shares]
