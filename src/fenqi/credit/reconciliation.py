"""Deep reconciliation: every record that mirrors money agrees with the ledger.

`fenqi.ledger.queries.reconcile` proves that each balance equals the sum of its postings and
the trial balance that the postings balance; neither can see a sub-ledger that disagrees with
the ledger (a plan billing principal already paid, a shop paid twice). This module checks the
sub-ledgers against the ledger, set-based, and lists each difference:

- `receivables`: per credit account and kind, what its plan lines and accrued charges say is
  unpaid equals the net posted debit of its receivable in the ledger (for a charged-off account,
  the totals, written-off receivables included);
- `plan`: a plan's principal, fee and interest equal the sums of its lines, it has not been
  refunded more than its principal, and a closed plan (paid off, converted, refunded,
  restructured) has nothing unpaid;
- `order`: an order's captured amount equals the principal of its plans, its refunded amount the
  principal refunded on them, and neither passes what was authorized or captured;
- `payable`: a shop's payable has been credited with what its orders captured and debited with
  what they refunded, and no payout ever took it below zero (the balance just after each payout,
  in posting order, is not negative);
- `credit_balance`: no shopper's credit balance is negative, no receivable is paid below
  zero, and what repayments (not reversed) paid beyond what was owed is what the ledger
  credited to the credit balance as overpayments;
- `funding`: every funded plan's funders hold exactly its principal outstanding (the sum of
  its tranches' outstanding = its lines' unpaid principal; once its account is charged off,
  nothing outstanding and the tranches' principal charged off and not yet recovered = its
  unpaid principal); per funder, its tranches' outstanding = its state row = its exposure rows
  (per borrower, per region) = the net credit of its `funder_principal` ledger account. A plan
  with principal outstanding and no tranche (booked before funding was wired, or with funding
  off) is counted in `checked["unfunded_plans"]`, not a difference.

`deep_reconcile` runs them all; `fenqi ledger reconcile --deep` prints the differences and exits
non-zero when there are any. The scenario tests run it after every scenario.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select, union_all

from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.queries import balances
from fenqi.store.schema.batch import accruals
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.credit import repayments
from fenqi.store.schema.funding import funder_exposure, funder_region_exposure, funder_state
from fenqi.store.schema.funding import funding_tranches as tranches
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_postings as pst
from fenqi.store.schema.parties import orders

KINDS = ("principal", "fee", "interest", "penalty")
RECEIVABLE_OF = {
    "principal": AccountCode.PRINCIPAL_RECEIVABLE,
    "fee": AccountCode.FEE_RECEIVABLE,
    "interest": AccountCode.INTEREST_RECEIVABLE,
    "penalty": AccountCode.PENALTY_RECEIVABLE,
}
CLOSED = ("paid_off", "converted", "refunded", "restructured")


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement: which check, about what, what the sub-ledger and the ledger say."""

    check: str
    subject: str
    expected: int
    actual: int
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.check} {self.subject}: expected {self.expected}, found {self.actual}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "expected": self.expected,
            "actual": self.actual,
            "detail": self.detail,
        }


@dataclass
class DeepReport:
    differences: list[Difference] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # check -> how many subjects

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "differences": [d.to_dict() for d in self.differences],
        }


def deep_reconcile(conn: Connection, credit_account_ids: Sequence[int] | None = None) -> DeepReport:
    """Check every sub-ledger against the ledger (or only those of some credit accounts, and
    then the shops' payables are not checked)."""
    report = DeepReport()
    ids = None if credit_account_ids is None else list(credit_account_ids)
    _receivables(conn, ids, report)
    _plans(conn, ids, report)
    _orders(conn, ids, report)
    if ids is None:
        _payables(conn, report)
    _customer_balances(conn, ids, report)
    _overpayments(conn, ids, report)
    _funding(conn, ids, report)
    return report


def _unpaid(kind: str) -> Any:
    return lines.c[f"{kind}_fen"] - lines.c[f"paid_{kind}_fen"] - lines.c[f"waived_{kind}_fen"]


def _customer_ledger(conn: Connection, ids: list[int] | None) -> dict[int, dict[str, Any]]:
    """Per credit account: net posted debit of each customer ledger account by code, and the
    pending debits and credits."""
    b = balances()
    owners = (
        select(acc.c.owner_id, b.c.code, b.c.debits_posted, b.c.credits_posted)
        .select_from(acc.join(b, b.c.id == acc.c.id))
        .where(acc.c.owner_kind == OwnerKind.CUSTOMER.value)
    )
    if ids is not None:
        owners = owners.where(acc.c.owner_id.in_([str(i) for i in ids]))
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    for owner, code, debits, credits in conn.execute(owners):
        try:
            key = int(owner)
        except ValueError:  # a customer account not named by a credit account (ledger tests)
            continue
        out[key][str(code)] = int(debits) - int(credits)
    return out


def _receivables(conn: Connection, ids: list[int] | None, report: DeepReport) -> None:
    owed: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    q = select(
        lines.c.credit_account_id,
        *[func.coalesce(func.sum(_unpaid(k)), 0) for k in ("principal", "fee", "interest")],
    ).group_by(lines.c.credit_account_id)
    if ids is not None:
        q = q.where(lines.c.credit_account_id.in_(ids))
    for account, principal, fee, interest in conn.execute(q):
        owed[int(account)].update(principal=int(principal), fee=int(fee), interest=int(interest))
    q2 = select(
        accruals.c.credit_account_id,
        accruals.c.kind,
        accruals.c.accrued_fen - accruals.c.paid_fen - accruals.c.waived_fen,
    )
    if ids is not None:
        q2 = q2.where(accruals.c.credit_account_id.in_(ids))
    for account, kind, unpaid in conn.execute(q2):
        owed[int(account)][str(kind)] += int(unpaid)
    q3 = select(ca.c.id, ca.c.charged_off_on)
    if ids is not None:
        q3 = q3.where(ca.c.id.in_(ids))
    charged_off = {int(i): off is not None for i, off in conn.execute(q3)}
    ledger = _customer_ledger(conn, ids)
    for account in sorted(set(charged_off) | set(owed)):
        mine = owed[account]
        books = ledger.get(account, {})
        if charged_off.get(account):
            codes = [*RECEIVABLE_OF.values(), AccountCode.WRITTEN_OFF_RECEIVABLE]
            expected = sum(mine.values())
            actual = sum(books.get(c.value, 0) for c in codes)
            if expected != actual:
                report.differences.append(
                    Difference(
                        "receivables",
                        f"credit account {account} (charged off)",
                        expected,
                        actual,
                        "unpaid on plans and charges vs receivables, written-off included",
                    )
                )
            continue
        for kind, code in RECEIVABLE_OF.items():
            actual = books.get(code.value, 0)
            if mine[kind] != actual:
                report.differences.append(
                    Difference(
                        "receivables",
                        f"credit account {account} {kind}",
                        mine[kind],
                        actual,
                        f"unpaid on plans and charges vs ledger {code.value}",
                    )
                )
        written_off = books.get(AccountCode.WRITTEN_OFF_RECEIVABLE.value, 0)
        if written_off:
            report.differences.append(
                Difference(
                    "receivables",
                    f"credit account {account} written off",
                    0,
                    written_off,
                    "written-off receivables on an account not charged off",
                )
            )
    report.checked["receivables"] = len(set(charged_off) | set(owed))


def _plans(conn: Connection, ids: list[int] | None, report: DeepReport) -> None:
    sums = (
        select(
            lines.c.plan_id,
            func.sum(lines.c.principal_fen).label("principal"),
            func.sum(lines.c.fee_fen).label("fee"),
            func.sum(lines.c.interest_fen).label("interest"),
            func.sum(_unpaid("principal") + _unpaid("fee") + _unpaid("interest")).label("unpaid"),
        )
        .group_by(lines.c.plan_id)
        .subquery()
    )
    q = select(
        plans.c.id,
        plans.c.status,
        plans.c.principal_fen,
        plans.c.fee_fen,
        plans.c.interest_fen,
        plans.c.refunded_fen,
        func.coalesce(sums.c.principal, 0),
        func.coalesce(sums.c.fee, 0),
        func.coalesce(sums.c.interest, 0),
        func.coalesce(sums.c.unpaid, 0),
    ).select_from(plans.outerjoin(sums, sums.c.plan_id == plans.c.id))
    if ids is not None:
        q = q.where(plans.c.credit_account_id.in_(ids))
    n = 0
    for row in conn.execute(q):
        n += 1
        plan_id, status, principal, fee, interest, refunded = row[:6]
        l_principal, l_fee, l_interest, unpaid = (int(x) for x in row[6:])
        subject = f"plan {plan_id}"
        for what, plan_value, line_value in (
            ("principal", principal, l_principal),
            ("fee", fee, l_fee),
            ("interest", interest, l_interest),
        ):
            if plan_value != line_value:
                report.differences.append(
                    Difference("plan", subject, plan_value, line_value, f"{what}: plan vs lines")
                )
        if not 0 <= refunded <= principal:
            report.differences.append(
                Difference("plan", subject, principal, refunded, "refunded beyond principal")
            )
        if status in CLOSED and unpaid:
            report.differences.append(
                Difference("plan", subject, 0, unpaid, f"{status} plan still has unpaid lines")
            )
    report.checked["plans"] = n


def _orders(conn: Connection, ids: list[int] | None, report: DeepReport) -> None:
    q = select(
        plans.c.credit_account_id, plans.c.order_ref, plans.c.principal_fen, plans.c.refunded_fen
    ).where(plans.c.order_ref.like("order:%"))
    if ids is not None:
        q = q.where(plans.c.credit_account_id.in_(ids))
    by_order: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for account, ref, principal, refunded in conn.execute(q):
        parts = str(ref).split(":")
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        totals = by_order[(int(account), int(parts[1]))]
        totals[0] += int(principal)
        totals[1] += int(refunded)
    q2 = select(
        orders.c.id,
        orders.c.credit_account_id,
        orders.c.amount_fen,
        orders.c.captured_fen,
        orders.c.refunded_fen,
    )
    if ids is not None:
        q2 = q2.where(orders.c.credit_account_id.in_(ids))
    n = 0
    for order_id, account, amount, captured, refunded in conn.execute(q2):
        n += 1
        subject = f"order {order_id}"
        principal, plan_refunded = by_order.get((int(account), int(order_id)), (0, 0))
        if captured != principal:
            report.differences.append(
                Difference("order", subject, captured, principal, "captured vs its plans")
            )
        if refunded != plan_refunded:
            report.differences.append(
                Difference("order", subject, refunded, plan_refunded, "refunded vs its plans")
            )
        if not 0 <= refunded <= captured <= amount:
            report.differences.append(
                Difference(
                    "order", subject, amount, captured, f"refunded {refunded}, beyond captured"
                )
            )
    report.checked["orders"] = n


def _payables(conn: Connection, report: DeepReport) -> None:
    payables = {
        int(i): (str(owner), str(currency))
        for i, owner, currency in conn.execute(
            select(acc.c.id, acc.c.owner_id, acc.c.currency).where(
                acc.c.code == AccountCode.MERCHANT_PAYABLE.value,
                acc.c.owner_kind == OwnerKind.MERCHANT.value,
            )
        )
    }
    report.checked["payables"] = len(payables)
    if not payables:
        return
    # what the orders say each shop was credited and debited, against the payable's postings
    totals = {
        (str(m), str(cur)): (int(cap), int(ref))
        for m, cur, cap, ref in conn.execute(
            select(
                orders.c.merchant_id,
                orders.c.currency,
                func.coalesce(func.sum(orders.c.captured_fen), 0),
                func.coalesce(func.sum(orders.c.refunded_fen), 0),
            ).group_by(orders.c.merchant_id, orders.c.currency)
        )
    }
    for account_id, (merchant, currency) in sorted(payables.items()):
        if (merchant, currency) not in totals:
            continue  # a shop without orders (purchases booked by the services directly)
        captured, refunded = totals[(merchant, currency)]
        by_code = _posted_by_code(conn, account_id)
        credited = by_code.get(("credit", "principal"), 0)
        debited = by_code.get(("debit", "refund_principal"), 0)
        subject = f"merchant {merchant} {currency}"
        if credited != captured:
            report.differences.append(
                Difference("payable", subject, captured, credited, "captured vs payable credits")
            )
        if debited != refunded:
            report.differences.append(
                Difference("payable", subject, refunded, debited, "refunded vs payable debits")
            )
    # no payout took a payable below zero: the running balance just after each payout, in
    # posting order (one pass over the payables' postings, a window sum per payable)
    ids = list(payables)
    moves = union_all(
        select(
            pst.c.credit_account_id.label("account_id"),
            pst.c.id.label("posting_id"),
            pst.c.amount_fen.label("signed"),
            pst.c.code,
        ).where(pst.c.credit_account_id.in_(ids), pst.c.phase == "posted"),
        select(
            pst.c.debit_account_id.label("account_id"),
            pst.c.id.label("posting_id"),
            (-pst.c.amount_fen).label("signed"),
            pst.c.code,
        ).where(pst.c.debit_account_id.in_(ids), pst.c.phase == "posted"),
    ).subquery("moves")
    running = select(
        moves.c.account_id,
        moves.c.posting_id,
        moves.c.signed,
        moves.c.code,
        func.sum(moves.c.signed)
        .over(partition_by=moves.c.account_id, order_by=moves.c.posting_id)
        .label("after"),
    ).subquery("running")
    overdrawn = conn.execute(
        select(running.c.posting_id, running.c.account_id, -running.c.signed, running.c.after)
        .where(running.c.code == "payout", running.c.signed < 0, running.c.after < 0)
        .order_by(running.c.posting_id)
    ).all()
    for posting_id, account_id, amount, after in overdrawn:
        merchant, currency = payables[int(account_id)]
        report.differences.append(
            Difference(
                "payable",
                f"merchant {merchant} {currency}",
                0,
                int(after),
                f"payout posting {posting_id} of {amount} left the payable below zero",
            )
        )


def _posted_by_code(conn: Connection, account_id: int) -> dict[tuple[str, str], int]:
    side = case((pst.c.credit_account_id == account_id, "credit"), else_="debit")
    return {
        (str(s), str(code)): int(total)
        for s, code, total in conn.execute(
            select(side, pst.c.code, func.sum(pst.c.amount_fen))
            .where(
                or_(pst.c.debit_account_id == account_id, pst.c.credit_account_id == account_id),
                pst.c.phase == "posted",
            )
            .group_by(side, pst.c.code)
        )
    }


def _customer_balances(conn: Connection, ids: list[int] | None, report: DeepReport) -> None:
    b = balances()
    q = (
        select(acc.c.owner_id, b.c.code, b.c.debits_posted - b.c.credits_posted)
        .select_from(acc.join(b, b.c.id == acc.c.id))
        .where(
            acc.c.owner_kind == OwnerKind.CUSTOMER.value,
            or_(
                and_(
                    b.c.code == AccountCode.CUSTOMER_CREDIT_BALANCE.value,
                    b.c.debits_posted - b.c.credits_posted > 0,
                ),
                and_(
                    b.c.code.in_([c.value for c in _receivable_codes()]),
                    b.c.debits_posted - b.c.credits_posted < 0,
                ),
            ),
        )
    )
    if ids is not None:
        q = q.where(acc.c.owner_id.in_([str(i) for i in ids]))
    for owner, code, net_debit in conn.execute(q):
        report.differences.append(
            Difference(
                "credit_balance",
                f"credit account {owner} {code}",
                0,
                int(net_debit),
                "a credit balance below zero"
                if code == AccountCode.CUSTOMER_CREDIT_BALANCE.value
                else "a receivable paid below zero",
            )
        )


def _overpayments(conn: Connection, ids: list[int] | None, report: DeepReport) -> None:
    """What repayments (not reversed) left on credit balances = the ledger's `overpayment`
    credits on them, net of the reversals' debits."""
    q = (
        select(repayments.c.credit_account_id, func.sum(repayments.c.to_credit_balance_fen))
        .where(repayments.c.reversed_at.is_(None))
        .group_by(repayments.c.credit_account_id)
    )
    if ids is not None:
        q = q.where(repayments.c.credit_account_id.in_(ids))
    expected = {int(a): int(total) for a, total in conn.execute(q)}
    balance = acc.alias("balance")
    signed = case(
        (pst.c.credit_account_id == balance.c.id, pst.c.amount_fen), else_=-pst.c.amount_fen
    )
    q2 = (
        select(balance.c.owner_id, func.sum(signed))
        .select_from(
            balance.join(
                pst,
                or_(
                    pst.c.credit_account_id == balance.c.id, pst.c.debit_account_id == balance.c.id
                ),
            )
        )
        .where(
            balance.c.code == AccountCode.CUSTOMER_CREDIT_BALANCE.value,
            balance.c.owner_kind == OwnerKind.CUSTOMER.value,
            pst.c.code == "overpayment",
            pst.c.phase == "posted",
        )
        .group_by(balance.c.owner_id)
    )
    if ids is not None:
        q2 = q2.where(balance.c.owner_id.in_([str(i) for i in ids]))
    actual = {int(o): int(total) for o, total in conn.execute(q2) if str(o).isdigit()}
    for account in sorted(set(expected) | set(actual)):
        if expected.get(account, 0) != actual.get(account, 0):
            report.differences.append(
                Difference(
                    "credit_balance",
                    f"credit account {account} overpayments",
                    expected.get(account, 0),
                    actual.get(account, 0),
                    "repayments' excess vs overpayment credits on the credit balance",
                )
            )


def _receivable_codes() -> Iterable[AccountCode]:
    return (*RECEIVABLE_OF.values(), AccountCode.WRITTEN_OFF_RECEIVABLE)


def _funding(conn: Connection, ids: list[int] | None, report: DeepReport) -> None:
    held = (
        select(
            tranches.c.plan_id,
            func.sum(tranches.c.outstanding_fen).label("outstanding"),
            func.sum(tranches.c.charged_off_fen - tranches.c.recovered_fen).label("lost"),
        )
        .group_by(tranches.c.plan_id)
        .subquery()
    )
    unpaid = (
        select(lines.c.plan_id, func.sum(_unpaid("principal")).label("unpaid"))
        .group_by(lines.c.plan_id)
        .subquery()
    )
    q = select(
        plans.c.id,
        ca.c.charged_off_on.is_not(None),
        held.c.outstanding,
        held.c.lost,
        func.coalesce(unpaid.c.unpaid, 0),
    ).select_from(
        plans.join(ca, ca.c.id == plans.c.credit_account_id)
        .outerjoin(held, held.c.plan_id == plans.c.id)
        .outerjoin(unpaid, unpaid.c.plan_id == plans.c.id)
    )
    if ids is not None:
        q = q.where(plans.c.credit_account_id.in_(ids))
    funded = unfunded = 0
    for plan_id, charged_off, outstanding, lost, owed in conn.execute(q):
        if outstanding is None:
            unfunded += int(owed) > 0
            continue
        funded += 1
        expected = (0, int(owed)) if charged_off else (int(owed), int(lost))
        if (int(outstanding), int(lost)) != expected:
            report.differences.append(
                Difference(
                    "funding",
                    f"plan {plan_id}",
                    int(owed),
                    int(lost) if charged_off else int(outstanding),
                    "funders' principal vs the plan's unpaid principal"
                    + (" (charged off: outstanding, lost)" if charged_off else ""),
                )
            )
    report.checked["funded_plans"] = funded
    report.checked["unfunded_plans"] = unfunded
    if ids is None:
        _funders(conn, report)


def _funders(conn: Connection, report: DeepReport) -> None:
    """Per funder: tranches = state = exposure per borrower = per region = the ledger."""

    def per_funder(col: Any, key: Any) -> dict[str, int]:
        return {str(f): int(v) for f, v in conn.execute(select(key, func.sum(col)).group_by(key))}

    b = balances()
    figures = {
        "tranches": per_funder(tranches.c.outstanding_fen, tranches.c.funder_id),
        "state": per_funder(funder_state.c.outstanding_fen, funder_state.c.funder_id),
        "borrowers": per_funder(funder_exposure.c.outstanding_fen, funder_exposure.c.funder_id),
        "regions": per_funder(
            funder_region_exposure.c.outstanding_fen, funder_region_exposure.c.funder_id
        ),
        "ledger": {
            str(owner): int(credits) - int(debits)
            for owner, credits, debits in conn.execute(
                select(acc.c.owner_id, b.c.credits_posted, b.c.debits_posted)
                .select_from(acc.join(b, b.c.id == acc.c.id))
                .where(
                    acc.c.owner_kind == OwnerKind.FUNDER.value,
                    acc.c.code == AccountCode.FUNDER_PRINCIPAL.value,
                )
            )
        },
    }
    funders = sorted(set().union(*figures.values()))
    for funder in funders:
        want = figures["tranches"].get(funder, 0)
        for what in ("state", "borrowers", "regions", "ledger"):
            got = figures[what].get(funder, 0)
            if got != want:
                report.differences.append(
                    Difference("funding", f"funder {funder}", want, got, f"tranches vs {what}")
                )
    report.checked["funders"] = len(funders)
