"""What an account owes, line by line, and paying an allocation onto those lines.

Shared by a repayment and by the credit balance paying what is due (`credit_balance.py`): both
read `outstanding_lines`, allocate with the pure waterfall (`allocation.py`), then
`pay_allocation` and `close_paid_plans`, and record the parts with `allocation_parts`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, bindparam, func, select, update

from fenqi.credit.allocation import AccrualKey, Allocation, LineKey, Owed
from fenqi.ledger.chart import AccountCode
from fenqi.products.model import ChargeKind
from fenqi.store.prepared import Prepared
from fenqi.store.schema.batch import accruals
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines

RECEIVABLE = {
    ChargeKind.PRINCIPAL: AccountCode.PRINCIPAL_RECEIVABLE,
    ChargeKind.FEE: AccountCode.FEE_RECEIVABLE,
    ChargeKind.INTEREST: AccountCode.INTEREST_RECEIVABLE,
    ChargeKind.PENALTY: AccountCode.PENALTY_RECEIVABLE,
}

_LINES_OF_ACCOUNT = Prepared(
    select(lines)
    .where(lines.c.credit_account_id == bindparam("k_account"))
    .order_by(lines.c.due_date, lines.c.plan_id, lines.c.period)
)
_ACCRUED_OF_ACCOUNT = Prepared(
    select(accruals.c.kind, accruals.c.accrued_fen - accruals.c.paid_fen - accruals.c.waived_fen)
    .where(accruals.c.credit_account_id == bindparam("k_account"))
    .order_by(accruals.c.kind)
)


def outstanding_lines(conn: Connection, credit_account_id: int) -> list[Owed]:
    rows = _LINES_OF_ACCOUNT.run(conn, {"k_account": credit_account_id}).mappings()
    out = []
    for r in rows:
        owed = {
            ChargeKind.PRINCIPAL: r["principal_fen"]
            - r["paid_principal_fen"]
            - r["waived_principal_fen"],
            ChargeKind.FEE: r["fee_fen"] - r["paid_fee_fen"] - r["waived_fee_fen"],
            ChargeKind.INTEREST: r["interest_fen"]
            - r["paid_interest_fen"]
            - r["waived_interest_fen"],
        }
        if any(owed.values()):
            out.append(Owed(LineKey(r["plan_id"], r["period"]), r["due_date"], owed))
    # charges accrued by the end-of-day run are due at once, so they come first
    for kind, unpaid in _ACCRUED_OF_ACCOUNT.run(conn, {"k_account": credit_account_id}).rows:
        if unpaid > 0:
            charge = ChargeKind(kind)
            out.append(Owed(AccrualKey(charge), date.min, {charge: int(unpaid)}))
    return out


_PAID_PARAM = {
    ChargeKind.PRINCIPAL: "a_principal",
    ChargeKind.FEE: "a_fee",
    ChargeKind.INTEREST: "a_interest",
}
_PAID_PARAMS = tuple(_PAID_PARAM.values())


def _add(column: Any, param: str) -> Any:
    return column + bindparam(param, type_=BigInteger())


_PAY_LINE = Prepared(
    update(lines)
    .where(lines.c.plan_id == bindparam("k_plan"), lines.c.period == bindparam("k_period"))
    .values(
        paid_principal_fen=_add(lines.c.paid_principal_fen, "a_principal"),
        paid_fee_fen=_add(lines.c.paid_fee_fen, "a_fee"),
        paid_interest_fen=_add(lines.c.paid_interest_fen, "a_interest"),
    )
)
_PAY_ACCRUAL = Prepared(
    update(accruals)
    .where(
        accruals.c.credit_account_id == bindparam("k_account"),
        accruals.c.kind == bindparam("k_kind"),
    )
    .values(paid_fen=_add(accruals.c.paid_fen, "a_paid"))
)


def pay_allocation(conn: Connection, credit_account_id: int, allocation: Allocation) -> None:
    """Mark what each line (and accrued charge) is paid, summed by kind: one UPDATE per line,
    all lines in one executemany."""
    paid_lines: dict[LineKey, dict[str, Any]] = {}
    paid_accruals: dict[ChargeKind, dict[str, Any]] = {}
    for key, kind, amount in allocation.parts:
        if isinstance(key, AccrualKey):
            row = paid_accruals.setdefault(
                key.kind,
                {"k_account": credit_account_id, "k_kind": key.kind.value, "a_paid": 0},
            )
            row["a_paid"] += amount
            continue
        row = paid_lines.setdefault(
            key,
            {"k_plan": key.plan_id, "k_period": key.period, **dict.fromkeys(_PAID_PARAMS, 0)},
        )
        row[_PAID_PARAM[kind]] += amount
    if paid_accruals:
        _PAY_ACCRUAL.many(conn, list(paid_accruals.values()))
    if paid_lines:
        _PAY_LINE.many(conn, list(paid_lines.values()))


def allocation_parts(repayment_id: int, allocation: Allocation) -> list[dict[str, Any]]:
    """The `repayment_parts` rows of a repayment: where each part went, so a reversal can put it
    back exactly there."""
    parts = []
    for seq, (key, kind, amount) in enumerate(allocation.parts):
        parts.append(
            {
                "repayment_id": repayment_id,
                "seq": seq,
                "plan_id": key.plan_id if isinstance(key, LineKey) else None,
                "period": key.period if isinstance(key, LineKey) else None,
                "accrual_kind": key.kind.value if isinstance(key, AccrualKey) else None,
                "kind": kind.value,
                "amount_fen": amount,
            }
        )
    return parts


def close_paid_plans(conn: Connection, credit_account_id: int) -> None:
    """Mark `paid_off` the account's open plans with nothing left unpaid."""
    _CLOSE_PAID_PLANS.run(conn, {"k_account": credit_account_id})


def _close_paid_plans_statement() -> Any:
    unpaid = (
        select(func.count())
        .select_from(lines)
        .where(
            lines.c.plan_id == plans.c.id,
            lines.c.principal_fen
            - lines.c.paid_principal_fen
            - lines.c.waived_principal_fen
            + lines.c.fee_fen
            - lines.c.paid_fee_fen
            - lines.c.waived_fee_fen
            + lines.c.interest_fen
            - lines.c.paid_interest_fen
            - lines.c.waived_interest_fen
            > 0,
        )
        .scalar_subquery()
    )
    return (
        update(plans)
        .where(
            and_(
                plans.c.credit_account_id == bindparam("k_account"),
                plans.c.status == "open",
                unpaid == 0,
            )
        )
        .values(status="paid_off")
    )


_CLOSE_PAID_PLANS = Prepared(_close_paid_plans_statement())
