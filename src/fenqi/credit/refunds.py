"""Refunds: a shop takes back (part of) a purchase, and the shopper owes less.

Rules (per product, `[refund]`): the refunded principal comes off the plan's unpaid principal,
last period first, so the remaining periods shrink from the end; fees and scheduled interest
follow the product's rule — `pro_rata` (the share of the plan refunded, computed cumulatively so
partial refunds add up to the full-refund figure), `full` (all of the plan's fee on any refund)
or `none`. What the shopper already paid beyond what is now owed goes to their credit balance,
or is paid back at once when the product says `pay_back`. The merchant gives back the refunded
principal from its payable; the merchant discount is kept (stated assumption, docs/credit.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Connection, bindparam, func, select, update

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError
from fenqi.credit.lines import KINDS, Line, column, line_from_row, waive_from_tail
from fenqi.credit.posting import leg, post
from fenqi.credit.service import customer_account, platform_account
from fenqi.funding import wiring as funding
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.entry import PostingSpec
from fenqi.ledger.service import open_account
from fenqi.products.model import ChargeKind, Product
from fenqi.store.prepared import Prepared
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_income
from fenqi.store.schema.credit import plan_lines as lines_t


@dataclass(frozen=True, slots=True)
class RefundSplit:
    """How one plan's refund lands: waived per line and kind, and what is paid back."""

    principal_fen: int
    charge_removed_fen: dict[ChargeKind, int]  # fee / interest taken off the plan
    waivers: list[tuple[Line, ChargeKind, int]] = field(default_factory=list)
    paid_back_fen: dict[ChargeKind, int] = field(default_factory=dict)

    @property
    def cash_back_fen(self) -> int:
        return sum(self.paid_back_fen.values())


def charge_share(
    total_fen: int,
    principal_fen: int,
    refunded_before_fen: int,
    refund_fen: int,
    rule: str,
    removed_before_fen: int,
) -> int:
    """Fee (or interest) removed by this refund under the product's rule."""
    if rule == "none" or total_fen == 0:
        return 0
    if rule == "full":
        return total_fen - removed_before_fen
    after = total_fen * (refunded_before_fen + refund_fen) // principal_fen
    before = total_fen * refunded_before_fen // principal_fen
    return min(after - before, total_fen - removed_before_fen)


def split_refund(
    lines: list[Line], plan: dict[str, int], refund_fen: int, rule: str
) -> RefundSplit:
    removable = plan["principal_fen"] - plan["refunded_fen"]
    if not 0 < refund_fen <= removable:
        raise CreditError(
            f"amount_fen: {refund_fen} is more than the {removable} left to refund on this plan",
            code="refund_exceeds_purchase",
        )
    removed = {
        ChargeKind.FEE: charge_share(
            plan["fee_fen"],
            plan["principal_fen"],
            plan["refunded_fen"],
            refund_fen,
            rule,
            plan["fee_removed_fen"],
        ),
        ChargeKind.INTEREST: charge_share(
            plan["interest_fen"],
            plan["principal_fen"],
            plan["refunded_fen"],
            refund_fen,
            rule,
            plan["interest_removed_fen"],
        ),
    }
    split = RefundSplit(refund_fen, removed)
    for kind, amount in ((ChargeKind.PRINCIPAL, refund_fen), *removed.items()):
        waivers, paid_back = waive_from_tail(lines, kind, amount)
        split.waivers.extend((line, kind, take) for line, take in waivers)
        split.paid_back_fen[kind] = paid_back
    return split


# built once and reused with new parameters (building a statement costs more than running it)
_PLAN = Prepared(
    select(
        plans,
        *[
            func.coalesce(plan_income.c[name], 0).label(name)
            for name in ("fee_earned_fen", "interest_earned_fen")
        ],
    )
    .select_from(plans.outerjoin(plan_income))
    .where(plans.c.id == bindparam("k_plan"))
    .with_for_update(of=plans)
)
_LINES = Prepared(select(lines_t).where(lines_t.c.plan_id == bindparam("k_plan")))
_WAIVE = {
    kind: Prepared(
        update(lines_t)
        .where(lines_t.c.plan_id == bindparam("k_plan"), lines_t.c.period == bindparam("k_period"))
        .values(
            {
                lines_t.c[column("waived", kind)]: lines_t.c[column("waived", kind)]
                + bindparam("amount", type_=BigInteger())
            }
        )
    )
    for kind in KINDS
}
_UPDATE_PLAN = Prepared(
    update(plans)
    .where(plans.c.id == bindparam("k_plan"))
    .values(
        refunded_fen=bindparam("refunded_fen"),
        fee_removed_fen=plans.c.fee_removed_fen + bindparam("fee", type_=BigInteger()),
        interest_removed_fen=plans.c.interest_removed_fen
        + bindparam("interest", type_=BigInteger()),
        status=bindparam("status"),
    )
)


def refund_plan(
    conn: Connection,
    clock: Clock,
    product: Product,
    plan_id: int,
    merchant_id: str,
    refund_fen: int,
    client_id: str,
) -> RefundSplit:
    """Apply a refund to one plan: plan rows and one balanced ledger entry."""
    found = _PLAN.run(conn, {"k_plan": plan_id})
    plan = dict(zip(found.keys, found.one(), strict=True))
    rows = _LINES.run(conn, {"k_plan": plan_id}).mappings()
    split = split_refund(
        [line_from_row(r) for r in rows], dict(plan), refund_fen, product.refund.fee_refund
    )
    for kind in KINDS:
        _WAIVE[kind].many(
            conn,
            [
                {"k_plan": plan_id, "k_period": line.period, "amount": amount}
                for line, waived_kind, amount in split.waivers
                if waived_kind is kind
            ],
        )
    fee, interest = (
        split.charge_removed_fen[ChargeKind.FEE],
        split.charge_removed_fen[ChargeKind.INTEREST],
    )
    principal_refunded = plan["refunded_fen"] + refund_fen
    _UPDATE_PLAN.run(
        conn,
        {
            "k_plan": plan_id,
            "refunded_fen": principal_refunded,
            "fee": fee,
            "interest": interest,
            "status": "refunded" if principal_refunded == plan["principal_fen"] else plan["status"],
        },
    )
    _post_refund(conn, clock, product, dict(plan), merchant_id, split, client_id)
    funding.plan_refunded(  # after the posting: the principal off unpaid lines, from funders
        conn, clock, plan_id,
        sum(a for _, k, a in split.waivers if k is ChargeKind.PRINCIPAL), client_id,
    )  # fmt: skip
    return split


def _post_refund(
    conn: Connection,
    clock: Clock,
    product: Product,
    plan: dict[str, int],
    merchant_id: str,
    split: RefundSplit,
    client_id: str,
) -> None:
    account_id, currency = plan["credit_account_id"], product.currency

    def cust(code: AccountCode) -> int:
        return customer_account(conn, clock, account_id, code, currency)

    def plat(code: AccountCode) -> int:
        return platform_account(conn, clock, code, currency)

    merchant = open_account(
        conn, clock, AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, merchant_id, currency
    )
    balance = cust(AccountCode.CUSTOMER_CREDIT_BALANCE)
    waived = {k: sum(a for _, kind, a in split.waivers if kind is k) for k in KINDS}
    postings = [
        *leg(
            merchant,
            cust(AccountCode.PRINCIPAL_RECEIVABLE),
            waived[ChargeKind.PRINCIPAL],
            "refund_principal",
        ),
        *leg(merchant, balance, split.paid_back_fen[ChargeKind.PRINCIPAL], "refund_principal"),
    ]
    income = {
        ChargeKind.FEE: (
            AccountCode.UNEARNED_FEE_INCOME,
            AccountCode.FEE_INCOME,
            AccountCode.FEE_RECEIVABLE,
            "fee_earned_fen",
            "fee_fen",
            "fee_removed_fen",
        ),
        ChargeKind.INTEREST: (
            AccountCode.UNEARNED_INTEREST_INCOME,
            AccountCode.INTEREST_INCOME,
            AccountCode.INTEREST_RECEIVABLE,
            "interest_earned_fen",
            "interest_fen",
            "interest_removed_fen",
        ),
    }
    for kind, (unearned, earned, receivable, earned_col, total_col, removed_col) in income.items():
        removed = split.charge_removed_fen[kind]
        # reverse what is still unearned first, then income already recognized
        unearned_left = plan[total_col] - plan[earned_col] - plan[removed_col]
        from_unearned = min(removed, max(0, unearned_left))
        sources = [(plat(unearned), from_unearned), (plat(earned), removed - from_unearned)]
        targets = [(cust(receivable), waived[kind]), (balance, split.paid_back_fen[kind])]
        postings.extend(_pair(sources, targets, f"refund_{kind.value}"))
    if product.refund.overpayment == "pay_back" and split.cash_back_fen:
        postings.extend(
            leg(balance, plat(AccountCode.CASH_CLEARING), split.cash_back_fen, "refund_paid_out")
        )
    post(
        conn,
        clock,
        client_id,
        currency,
        postings,
        f"refund on plan {plan['id']}",
        "plan",
        str(plan["id"]),
    )


def _pair(
    sources: list[tuple[int, int]], targets: list[tuple[int, int]], code: str
) -> list[PostingSpec]:
    """Match debit amounts to credit amounts in order (both lists sum to the same total)."""
    assert sum(a for _, a in sources) == sum(a for _, a in targets)
    out: list[PostingSpec] = []
    src = [[acct, amount] for acct, amount in sources if amount]
    for acct, amount in targets:
        while amount:
            take = min(amount, src[0][1])
            out.extend(leg(src[0][0], acct, take, code))
            amount -= take
            src[0][1] -= take
            if src[0][1] == 0:
                src.pop(0)
    return out
