"""Purchases: authorize (a hold), capture (post the hold and book the plan), sell (both at once).

A purchase posts the shopper's principal owed against the shop's payable; the plan's fees,
interest and merchant discount post as a second entry whose balances move in the same UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select

from fenqi.clock import Clock
from fenqi.credit.accounts import customer_account, get_account, ledger_account, platform_account
from fenqi.credit.errors import Declined
from fenqi.credit.plan_records import store_plan
from fenqi.credit.plans import PlanOffer
from fenqi.funding import wiring as funding
from fenqi.ledger import service as ledger
from fenqi.ledger.accounts import note_account
from fenqi.ledger.balances import AfterBalance
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.entry import EntryRequest, EntryResult, PostingSpec, RejectCode
from fenqi.money import apply_bp
from fenqi.pricing.schedule import Schedule
from fenqi.products.model import ChargeKind, Product
from fenqi.store.prepared import Prepared
from fenqi.store.schema.credit import installment_plans as plans

HOLD_SECONDS_DEFAULT = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Authorization:
    hold_entry_id: int
    amount_fen: int
    available_after_fen: int


@dataclass(frozen=True, slots=True)
class Sale:
    """A purchase authorized and captured at once: its entry, its plan, the credit left."""

    entry_id: int
    plan_id: int
    available_after_fen: int


def _post_purchase(
    conn: Connection,
    clock: Clock,
    account: dict[str, Any],
    merchant_id: str,
    amount_fen: int,
    client_id: str,
    description: str,
    *,
    timeout_at: datetime | None = None,
    then: Callable[[int], EntryRequest | None] | None = None,
) -> tuple[EntryResult, int]:
    """Post what a purchase posts, the shopper's principal owed and the shop's money payable
    (a hold when `timeout_at` is given), on an active account; refuse it if the credit left
    does not cover it. Returns the entry and the credit left, as the checked UPDATE left it."""
    if account["status"] != "active":
        raise Declined(f"account {account['id']} is {account['status']}", code="account_not_active")
    merchant = ledger_account(
        conn,
        clock,
        AccountCode.MERCHANT_PAYABLE,
        OwnerKind.MERCHANT,
        merchant_id,
        account["currency"],
    )
    # the account's row names its principal receivable: its code and currency need no read
    note_account(
        conn, account["principal_account_id"], AccountCode.PRINCIPAL_RECEIVABLE, account["currency"]
    )
    after: dict[int, AfterBalance] = {}
    result = ledger.post_entry(
        conn,
        clock,
        EntryRequest(
            client_id=client_id,
            currency=account["currency"],
            postings=(
                PostingSpec(
                    account["principal_account_id"],
                    merchant,
                    amount_fen,
                    ChargeKind.PRINCIPAL.value,
                ),
            ),
            pending=timeout_at is not None,
            timeout_at=timeout_at,
            description=description,
            ref_kind="credit_account",
            ref_id=str(account["id"]),
        ),
        after=after,
        then=then,
    )
    if not result.ok:
        code = (
            "insufficient_credit"
            if result.reject_code is RejectCode.INSUFFICIENT_CREDIT
            else str(result.reject_code)
        )
        raise Declined(
            "not enough available credit for this purchase", code=code, amount_fen=amount_fen
        )
    moved = after.get(account["principal_account_id"])
    if moved is None:  # a replayed purchase moved nothing: read the balance
        available = ledger.get_balance(conn, account["principal_account_id"]).available_fen or 0
        return result, available
    # a receivable has no slot rows: its row, as the UPDATE left it, is its balance
    debits_pending, debits_posted, _credits_pending, credits_posted, cap = moved
    exposure = debits_posted + debits_pending - credits_posted
    return result, 0 if cap is None else max(0, cap - exposure)


def authorize(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    merchant_id: str,
    amount_fen: int,
    client_id: str,
    hold_seconds: int = HOLD_SECONDS_DEFAULT,
    account: dict[str, Any] | None = None,
) -> Authorization:
    """Hold `amount_fen` of the account's available credit for a merchant (two-phase);
    `account` is the account's row when the caller has just locked it (`for_update`: every
    change to an account's balances takes its row first; docs/architecture.md, lock order)."""
    result, available = _post_purchase(
        conn,
        clock,
        account or get_account(conn, credit_account_id, for_update=True),
        merchant_id,
        amount_fen,
        client_id,
        f"authorization for merchant {merchant_id}",
        timeout_at=clock.now() + timedelta(seconds=hold_seconds),
    )
    return Authorization(result.entry_id, amount_fen, available)


def sell(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    merchant_id: str,
    order_ref: str,
    plan: PlanOffer,
    client_id: str,
    account: dict[str, Any] | None = None,
) -> Sale:
    """Authorize and capture at once (a sale, for goods handed over at checkout): the
    purchase and its plan's fees, interest and discount post together, checked against the
    available credit, with no hold between them."""
    account = account or get_account(conn, credit_account_id, for_update=True)
    booked: list[int] = []
    result, available = _post_purchase(
        conn,
        clock,
        account,
        merchant_id,
        plan.quote.schedule.principal_fen,
        client_id,
        f"sale of order {order_ref}",
        then=_plan_booking(
            conn, clock, product, account, merchant_id, order_ref, plan, client_id, booked
        ),
    )
    if result.replayed:
        return Sale(result.entry_id, _plan_of_order(conn, credit_account_id, order_ref), available)
    followed = result.extra["then"]
    assert followed is None or followed.ok, followed
    _fund(conn, clock, account, booked[0], plan)  # after the posting: docs/funding.md lock order
    return Sale(result.entry_id, booked[0], available)


def _plan_booking(
    conn: Connection,
    clock: Clock,
    product: Product,
    account: dict[str, Any],
    merchant_id: str,
    order_ref: str,
    plan: PlanOffer,
    client_id: str,
    booked: list[int],
) -> Callable[[int], EntryRequest | None]:
    """Given the purchase's entry id: store the plan (it names that entry), append its id to
    `booked`, and say what the plan's own entry posts (None if nothing)."""
    credit_account_id = int(account["id"])
    currency = account["currency"]

    def book_plan(entry_id: int) -> EntryRequest | None:
        plan_id = store_plan(
            conn,
            clock,
            credit_account_id,
            order_ref,
            plan.kind,
            plan.quote,
            ledger_entry_id=entry_id,
        )
        booked.append(plan_id)
        postings = _plan_postings(
            conn, clock, product, credit_account_id, merchant_id, currency, plan.quote.schedule
        )
        if not postings:
            return None
        return EntryRequest(
            client_id=f"{client_id}:plan",
            currency=currency,
            postings=tuple(postings),
            description=f"plan {plan_id} for order {order_ref}",
            ref_kind="plan",
            ref_id=str(plan_id),
        )

    return book_plan


def capture(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    merchant_id: str,
    hold_entry_id: int,
    order_ref: str,
    plan: PlanOffer,
    client_id: str,
    final: bool = True,
    account: dict[str, Any] | None = None,
) -> int:
    """Post (part of) a hold and book the purchase's plan: principal, fee and interest."""
    account = account or get_account(conn, credit_account_id, for_update=True)
    booked: list[int] = []
    # the capture and the plan's entry are two entries whose balances move together
    posted = ledger.resolve_pending(
        conn,
        clock,
        client_id,
        hold_entry_id,
        [plan.quote.schedule.principal_fen],
        final=final,
        description=f"capture of order {order_ref}",
        then=_plan_booking(
            conn, clock, product, account, merchant_id, order_ref, plan, client_id, booked
        ),
    )
    if posted.replayed:
        return _plan_of_order(conn, credit_account_id, order_ref)
    result = posted.extra["then"]
    assert result is None or result.ok, result
    _fund(conn, clock, account, booked[0], plan)  # after the posting: docs/funding.md lock order
    return booked[0]


def _fund(
    conn: Connection, clock: Clock, account: dict[str, Any], plan_id: int, plan: PlanOffer
) -> None:
    """The new plan funded (co-lending): a decline raises and rolls the purchase back."""
    s = plan.quote.schedule
    funding.plan_booked(conn, clock, account, plan_id, s.principal_fen, len(s.lines))


def _plan_of_order(conn: Connection, credit_account_id: int, order_ref: str) -> int:
    return int(
        _PLAN_OF_ORDER.run(
            conn, {"k_account": credit_account_id, "k_order": order_ref}
        ).scalar_one()
    )


_PLAN_OF_ORDER = Prepared(
    select(plans.c.id).where(
        plans.c.credit_account_id == bindparam("k_account"),
        plans.c.order_ref == bindparam("k_order"),
    )
)


def _plan_postings(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    merchant_id: str,
    currency: str,
    schedule: Schedule,
) -> list[PostingSpec]:
    """A new plan's entry: fees and scheduled interest are owed from today but earned period
    by period; the merchant discount is earned at once."""
    postings = []
    if schedule.fee_fen:
        postings.append(
            PostingSpec(
                customer_account(
                    conn, clock, credit_account_id, AccountCode.FEE_RECEIVABLE, currency
                ),
                platform_account(conn, clock, AccountCode.UNEARNED_FEE_INCOME, currency),
                schedule.fee_fen,
                ChargeKind.FEE.value,
            )
        )
    if schedule.interest_fen:
        postings.append(
            PostingSpec(
                customer_account(
                    conn, clock, credit_account_id, AccountCode.INTEREST_RECEIVABLE, currency
                ),
                platform_account(conn, clock, AccountCode.UNEARNED_INTEREST_INCOME, currency),
                schedule.interest_fen,
                ChargeKind.INTEREST.value,
            )
        )
    discount = apply_bp(schedule.principal_fen, product.merchant_discount_bp)
    if discount:
        postings.append(
            PostingSpec(
                ledger_account(
                    conn,
                    clock,
                    AccountCode.MERCHANT_PAYABLE,
                    OwnerKind.MERCHANT,
                    merchant_id,
                    currency,
                ),
                platform_account(conn, clock, AccountCode.MERCHANT_DISCOUNT_INCOME, currency),
                discount,
                "merchant_discount",
            )
        )
    return postings
