"""Repayments: apply a payment by the product's allocation order, and take back one that bounced.

A repayment takes the credit account's row first (`FOR UPDATE`), the lock every change to an
account's plans or receivables takes, so repayments, reversals, payoffs, conversions and refunds
on one account take turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from fenqi.clock import Clock
from fenqi.credit.accounts import customer_account, get_account, platform_account
from fenqi.credit.allocation import allocate_payment
from fenqi.credit.errors import CreditError, NotFound
from fenqi.credit.owed import (
    RECEIVABLE,
    allocation_parts,
    close_paid_plans,
    outstanding_lines,
    pay_allocation,
)
from fenqi.credit.posting import ledger_refusal
from fenqi.credit.recoveries import recovery_postings
from fenqi.ledger import service as ledger
from fenqi.ledger.chart import AccountCode
from fenqi.ledger.entry import EntryRequest, PostingSpec
from fenqi.products.model import ChargeKind, Product
from fenqi.store.prepared import Prepared
from fenqi.store.schema.batch import accruals
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.credit import repayment_parts, repayments


@dataclass(frozen=True, slots=True)
class RepaymentResult:
    repayment_id: int
    amount_fen: int
    by_kind_fen: dict[str, int]
    to_credit_balance_fen: int
    replayed: bool = False


def repay(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    amount_fen: int,
    client_id: str,
) -> RepaymentResult:
    """Apply a payment by the product's allocation order; an excess over everything owed, up to
    the product's `repayment.overpayment_max_fen`, becomes a credit balance (more is refused:
    `fenqi.credit.credit_balance`)."""
    from fenqi.credit.credit_balance import check_overpayment

    if amount_fen <= 0:
        raise CreditError(f"amount_fen: must be positive, got {amount_fen}", code="invalid_amount")
    done = REPAYMENT_BY_CLIENT_ID.run(conn, {"k_client_id": client_id}).mapping()
    if done is not None:
        if done["amount_fen"] != amount_fen or done["credit_account_id"] != credit_account_id:
            raise CreditError(
                f"client_id {client_id!r} was used for another repayment",
                code="idempotency_conflict",
            )
        return repayment_result(done, replayed=True)
    account = get_account(conn, credit_account_id, for_update=True)
    currency = account["currency"]
    allocation = allocate_payment(
        amount_fen,
        outstanding_lines(conn, credit_account_id),
        product.allocation_order,
        clock.today(),
    )
    check_overpayment(product, amount_fen, allocation.overpayment_fen)  # refused whole
    pay_allocation(conn, credit_account_id, allocation)
    cash = platform_account(conn, clock, AccountCode.CASH_CLEARING, currency)
    if account["charged_off_on"] is None:
        postings = [
            PostingSpec(
                cash,
                customer_account(conn, clock, credit_account_id, RECEIVABLE[kind], currency),
                amount,
                kind.value,
            )
            for kind, amount in allocation.by_kind_fen.items()
            if amount
        ]
    else:
        postings = recovery_postings(
            conn, clock, credit_account_id, currency, cash, allocation.allocated_fen
        )
    if allocation.overpayment_fen:
        postings.append(
            PostingSpec(
                cash,
                customer_account(
                    conn, clock, credit_account_id, AccountCode.CUSTOMER_CREDIT_BALANCE, currency
                ),
                allocation.overpayment_fen,
                "overpayment",
            )
        )
    result = ledger.post_entry(
        conn,
        clock,
        EntryRequest(
            client_id=f"repay:{client_id}",
            currency=currency,
            postings=tuple(postings),
            description="repayment",
            ref_kind="credit_account",
            ref_id=str(credit_account_id),
        ),
    )
    if not result.ok:
        raise ledger_refusal(result, "repayment")
    close_paid_plans(conn, credit_account_id)
    by_kind = allocation.by_kind_fen
    stored = INSERT_REPAYMENT.run(
        conn,
        {
            "credit_account_id": credit_account_id,
            "client_id": client_id,
            "amount_fen": amount_fen,
            "to_principal_fen": by_kind[ChargeKind.PRINCIPAL],
            "to_fee_fen": by_kind[ChargeKind.FEE],
            "to_interest_fen": by_kind[ChargeKind.INTEREST],
            "to_penalty_fen": by_kind[ChargeKind.PENALTY],
            "to_credit_balance_fen": allocation.overpayment_fen,
            "ledger_entry_id": result.entry_id,
            "business_date": clock.today(),
            "created_at": clock.now(),
        },
    ).mapping()
    assert stored is not None
    parts = allocation_parts(stored["id"], allocation)
    if parts:
        INSERT_PARTS.many(conn, parts)
    return repayment_result(stored)


REPAYMENT_BY_CLIENT_ID = Prepared(
    select(repayments).where(repayments.c.client_id == bindparam("k_client_id"))
)
INSERT_REPAYMENT = Prepared(insert(repayments).returning(*repayments.c))
INSERT_PARTS = Prepared(insert(repayment_parts))


def reverse_repayment(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    repayment_id: int,
    reason: str,
    client_id: str,
) -> int:
    """Take back a repayment that bounced: what it paid is owed again, exactly where it was
    paid, and its ledger entry is reversed. Returns the reversal entry id."""
    get_account(conn, credit_account_id, for_update=True)  # the lock every plan change takes
    row = (
        conn.execute(select(repayments).where(repayments.c.id == repayment_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None or row["credit_account_id"] != credit_account_id:
        raise NotFound(f"repayment {repayment_id} not found")
    if row["reversed_at"] is not None:
        raise CreditError(
            f"repayment {repayment_id} was already reversed",
            code="already_reversed",
            http_status=409,
        )
    column = {
        "principal": "paid_principal_fen",
        "fee": "paid_fee_fen",
        "interest": "paid_interest_fen",
    }
    for part in conn.execute(
        select(repayment_parts).where(repayment_parts.c.repayment_id == repayment_id)
    ).mappings():
        if part["accrual_kind"] is not None:
            conn.execute(
                update(accruals)
                .where(
                    accruals.c.credit_account_id == credit_account_id,
                    accruals.c.kind == part["accrual_kind"],
                )
                .values(paid_fen=accruals.c.paid_fen - part["amount_fen"])
            )
            continue
        col = lines.c[column[part["kind"]]]
        conn.execute(
            update(lines)
            .where(lines.c.plan_id == part["plan_id"], lines.c.period == part["period"])
            .values({col: col - part["amount_fen"]})
        )
        conn.execute(
            update(plans)
            .where(plans.c.id == part["plan_id"], plans.c.status == "paid_off")
            .values(status="open")
        )
    result = ledger.reverse_entry(
        conn, clock, f"reverse-repayment:{client_id}", row["ledger_entry_id"], reason
    )
    if not result.ok:  # e.g. the credit balance it paid is already spent
        raise ledger_refusal(result, f"reversal of repayment {repayment_id}", reversal=True)
    conn.execute(
        update(repayments).where(repayments.c.id == repayment_id).values(reversed_at=clock.now())
    )
    return result.entry_id


def repayment_result(row: Any, replayed: bool = False) -> RepaymentResult:
    return RepaymentResult(
        repayment_id=row["id"],
        amount_fen=row["amount_fen"],
        by_kind_fen={
            "penalty": row["to_penalty_fen"],
            "fee": row["to_fee_fen"],
            "interest": row["to_interest_fen"],
            "principal": row["to_principal_fen"],
        },
        to_credit_balance_fen=row["to_credit_balance_fen"],
        replayed=replayed,
    )


def repayment_of_entry(conn: Connection, entry_id: int) -> tuple[int, int] | None:
    """(repayment id, credit account id) of the repayment whose ledger entry this is."""
    row = conn.execute(
        select(repayments.c.id, repayments.c.credit_account_id).where(
            repayments.c.ledger_entry_id == entry_id
        )
    ).first()
    return None if row is None else (int(row.id), int(row.credit_account_id))


REPAYMENT_LIST_MAX = 500
_DATE_COLUMNS = ("business_date", "created_at", "reversed_at")


def account_repayments(conn: Connection, credit_account_id: int) -> list[dict[str, Any]]:
    """An account's repayments, oldest first (at most REPAYMENT_LIST_MAX), dates as text."""
    rows = (
        conn.execute(
            select(repayments)
            .where(repayments.c.credit_account_id == credit_account_id)
            .order_by(repayments.c.id)
            .limit(REPAYMENT_LIST_MAX)
        )
        .mappings()
        .all()
    )
    return [
        {k: str(v) if k in _DATE_COLUMNS and v is not None else v for k, v in r.items()}
        for r in rows
    ]
