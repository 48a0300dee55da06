"""Credit services: open an account, authorize and capture a purchase, repay, summarize.

Each function runs inside the caller's transaction: it loads rows, calls the pure rules
(plans, allocation), and writes the ledger entry and the credit rows together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, bindparam, func, insert, select, update

from fenqi.clock import Clock
from fenqi.credit.allocation import Owed, allocate_payment
from fenqi.credit.errors import CreditError, Declined, NotFound
from fenqi.credit.plans import PlanOffer
from fenqi.ledger import service as ledger
from fenqi.ledger.accounts import find_account, open_accounts
from fenqi.ledger.balances import AfterBalance
from fenqi.ledger.chart import CUSTOMER_CODES, AccountCode, OwnerKind
from fenqi.ledger.entry import EntryRequest, EntryResult, PostingSpec, RejectCode
from fenqi.money import apply_bp
from fenqi.pricing.quote import Quote
from fenqi.pricing.schedule import Schedule
from fenqi.products.model import ChargeKind, Product
from fenqi.store.prepared import Prepared
from fenqi.store.schema.batch import accruals
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.credit import plan_lines as lines
from fenqi.store.schema.credit import repayment_parts, repayments

PLATFORM = "platform"
HOLD_SECONDS_DEFAULT = 7 * 24 * 3600


# ---------------------------------------------------------------- accounts


def _acct(
    conn: Connection,
    clock: Clock,
    code: AccountCode,
    owner_kind: OwnerKind,
    owner: str,
    currency: str,
    cap: int | None = None,
) -> int:
    return ledger.open_account(conn, clock, code, owner_kind, owner, currency, cap)


def platform_account(conn: Connection, clock: Clock, code: AccountCode, currency: str) -> int:
    return _acct(conn, clock, code, OwnerKind.PLATFORM, PLATFORM, currency)


def customer_account(
    conn: Connection, clock: Clock, credit_account_id: int, code: AccountCode, currency: str
) -> int:
    return _acct(conn, clock, code, OwnerKind.CUSTOMER, str(credit_account_id), currency)


_ACCOUNT_OF = Prepared(
    select(ca.c.id).where(
        ca.c.customer_ref == bindparam("k_customer"), ca.c.product == bindparam("k_product")
    )
)


def account_of(conn: Connection, customer_ref: str, product: str) -> int | None:
    """The customer's account on the product, if any."""
    found = _ACCOUNT_OF.run(conn, {"k_customer": customer_ref, "k_product": product}).scalar()
    return None if found is None else int(found)


def open_credit_account(
    conn: Connection,
    clock: Clock,
    product: Product,
    customer_ref: str,
    limit_fen: int,
    tier: str | None = None,
) -> int:
    if not product.limits.min_fen <= limit_fen <= product.limits.max_fen:
        raise CreditError(
            f"limit_fen: {limit_fen} is outside {product.name}'s range "
            f"{product.limits.min_fen}..{product.limits.max_fen}",
            code="limit_out_of_range",
        )
    if tier is not None:
        found = product.tier(tier)
        if found is None:
            raise CreditError(f"tier: {product.name} has no tier {tier!r}", code="unknown_tier")
        if limit_fen > found.limit_max_fen:
            raise CreditError(
                f"limit_fen: {limit_fen} is above tier {tier}'s maximum {found.limit_max_fen}",
                code="limit_out_of_range",
            )
    existing = account_of(conn, customer_ref, product.name)
    if existing is not None:
        raise CreditError(
            f"customer {customer_ref} already has a {product.name} account ({existing})",
            code="account_exists",
            credit_account_id=existing,
        )
    # the ledger accounts are keyed by the new id, so they are opened right after the row
    account_id = int(
        _INSERT_ACCOUNT.run(
            conn,
            {
                "customer_ref": customer_ref,
                "product": product.name,
                "tier": tier,
                "currency": product.currency,
                "limit_fen": limit_fen,
                "status": "active",
                "opened_at": clock.now(),
            },
        ).scalar_one()
    )
    ids = open_accounts(
        conn,
        clock,
        CUSTOMER_CODES,
        OwnerKind.CUSTOMER,
        str(account_id),
        product.currency,
        {AccountCode.PRINCIPAL_RECEIVABLE: limit_fen},  # the limit lives in the ledger
    )
    principal = ids[AccountCode.PRINCIPAL_RECEIVABLE]
    _SET_PRINCIPAL.run(conn, {"k_id": account_id, "principal_account_id": principal})
    return account_id


# the hot statements are built once and reused with new parameters (see ledger.balances)
_INSERT_ACCOUNT = Prepared(insert(ca).returning(ca.c.id))
_SET_PRINCIPAL = Prepared(update(ca).where(ca.c.id == bindparam("k_id")))
_ACCOUNT = Prepared(select(ca).where(ca.c.id == bindparam("k_id")))
_ACCOUNT_LOCKED = Prepared(select(ca).where(ca.c.id == bindparam("k_id")).with_for_update())


def get_account(
    conn: Connection, credit_account_id: int, *, for_update: bool = False
) -> dict[str, Any]:
    stmt = _ACCOUNT_LOCKED if for_update else _ACCOUNT
    row = stmt.run(conn, {"k_id": credit_account_id}).mapping()
    if row is None:
        raise NotFound(f"credit account {credit_account_id} not found")
    return row


# ---------------------------------------------------------------- purchases


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
    merchant = _acct(
        conn,
        clock,
        AccountCode.MERCHANT_PAYABLE,
        OwnerKind.MERCHANT,
        merchant_id,
        account["currency"],
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
    `account` is the account's row when the caller has just read it."""
    result, available = _post_purchase(
        conn,
        clock,
        account or get_account(conn, credit_account_id),
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
    account = account or get_account(conn, credit_account_id)
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
            conn, clock, credit_account_id, order_ref, plan.kind, plan.quote,
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
    account = account or get_account(conn, credit_account_id)
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
    return booked[0]


def _plan_of_order(conn: Connection, credit_account_id: int, order_ref: str) -> int:
    return int(
        _PLAN_OF_ORDER.run(conn, {"k_account": credit_account_id, "k_order": order_ref})
        .scalar_one()
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
                _acct(
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


def store_plan(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    order_ref: str,
    kind: str,
    quote: Quote,
    *,
    ledger_entry_id: int | None = None,
    schedule: Schedule | None = None,
) -> int:
    """Write a plan and its lines (from the quote's schedule, or another schedule)."""
    s = schedule or quote.schedule
    plan_id = int(
        _INSERT_PLAN.run(
            conn,
            {
                "credit_account_id": credit_account_id,
                "order_ref": order_ref,
                "kind": kind,
                "terms": len(s.lines),
                "method": quote.pricing.method.value,
                "purchase_date": s.start_date,
                "principal_fen": s.principal_fen,
                "fee_fen": s.fee_fen,
                "interest_fen": s.interest_fen,
                "nominal_rate_bp": quote.rate.nominal_bp,
                "effective_rate_bp": quote.rate.effective_bp,
                "status": "open",
                "ledger_entry_id": ledger_entry_id,
                "created_at": clock.now(),
            },
        ).scalar_one()
    )
    zero = dict.fromkeys(
        (
            "paid_principal_fen",
            "paid_fee_fen",
            "paid_interest_fen",
            "waived_principal_fen",
            "waived_fee_fen",
            "waived_interest_fen",
        ),
        0,
    )
    _INSERT_LINES.many(
        conn,
        [
            {
                "plan_id": plan_id,
                "period": x.period,
                "credit_account_id": credit_account_id,
                "due_date": x.due_date,
                "principal_fen": x.principal_fen,
                "fee_fen": x.fee_fen,
                "interest_fen": x.interest_fen,
                **zero,
            }
            for x in s.lines
        ],
    )
    return plan_id


_INSERT_PLAN = Prepared(insert(plans).returning(plans.c.id))
_INSERT_LINES = Prepared(insert(lines))


# ---------------------------------------------------------------- repayments

_RECEIVABLE = {
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
            out.append(Owed((r["plan_id"], r["period"]), r["due_date"], owed))
    # charges accrued by the end-of-day run are due at once, so they come first
    for kind, unpaid in _ACCRUED_OF_ACCOUNT.run(conn, {"k_account": credit_account_id}).rows:
        if unpaid > 0:
            out.append(Owed(("accrual", kind), date.min, {ChargeKind(kind): int(unpaid)}))
    return out


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
    done = _REPAYMENT_BY_CLIENT_ID.run(conn, {"k_client_id": client_id}).mapping()
    if done is not None:
        if done["amount_fen"] != amount_fen or done["credit_account_id"] != credit_account_id:
            raise CreditError(
                f"client_id {client_id!r} was used for another repayment",
                code="idempotency_conflict",
            )
        return _repayment_result(done, replayed=True)
    account = get_account(conn, credit_account_id, for_update=True)
    currency = account["currency"]
    allocation = allocate_payment(
        amount_fen,
        outstanding_lines(conn, credit_account_id),
        product.allocation_order,
        clock.today(),
    )
    check_overpayment(product, amount_fen, allocation.overpayment_fen)  # refused whole
    # what each line (and accrued charge) is paid, summed by kind: one UPDATE per line, all
    # lines in one executemany
    paid_lines: dict[tuple[Any, Any], dict[str, Any]] = {}
    paid_accruals: dict[Any, dict[str, Any]] = {}
    for key, kind, amount in allocation.parts:
        line_key: tuple[Any, Any] = key  # type: ignore[assignment]
        if line_key[0] == "accrual":
            row = paid_accruals.setdefault(
                line_key[1],
                {"k_account": credit_account_id, "k_kind": line_key[1], "a_paid": 0},
            )
            row["a_paid"] += amount
            continue
        row = paid_lines.setdefault(
            line_key,
            {"k_plan": line_key[0], "k_period": line_key[1], **dict.fromkeys(_PAID_PARAMS, 0)},
        )
        row[_PAID_PARAM[kind]] += amount
    if paid_accruals:
        _PAY_ACCRUAL.many(conn, list(paid_accruals.values()))
    if paid_lines:
        _PAY_LINE.many(conn, list(paid_lines.values()))
    cash = platform_account(conn, clock, AccountCode.CASH_CLEARING, currency)
    if account["charged_off_on"] is None:
        postings = [
            PostingSpec(
                cash,
                customer_account(conn, clock, credit_account_id, _RECEIVABLE[kind], currency),
                amount,
                kind.value,
            )
            for kind, amount in allocation.by_kind_fen.items()
            if amount
        ]
    else:
        postings = _recovery(
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
        raise CreditError(
            f"repayment refused by the ledger: {result.reject_code}", code="ledger_rejected"
        )
    _close_paid_plans(conn, credit_account_id)
    by_kind = allocation.by_kind_fen
    stored = (
        _INSERT_REPAYMENT.run(
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
    )
    assert stored is not None
    parts = []
    for seq, (key, kind, amount) in enumerate(allocation.parts):
        pair: tuple[Any, Any] = key  # type: ignore[assignment]
        first, second = pair
        accrual = first == "accrual"
        parts.append(
            {
                "repayment_id": stored["id"],
                "seq": seq,
                "plan_id": None if accrual else first,
                "period": None if accrual else second,
                "accrual_kind": second if accrual else None,
                "kind": kind.value,
                "amount_fen": amount,
            }
        )
    if parts:
        _INSERT_PARTS.many(conn, parts)
    return _repayment_result(stored)


_REPAYMENT_BY_CLIENT_ID = Prepared(
    select(repayments).where(repayments.c.client_id == bindparam("k_client_id"))
)
_INSERT_REPAYMENT = Prepared(insert(repayments).returning(*repayments.c))
_INSERT_PARTS = Prepared(insert(repayment_parts))
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
    if not result.ok:
        raise CreditError(
            f"the ledger refused the reversal ({result.reject_code}); the credit "
            "balance it paid may already be spent",
            code="reversal_refused",
            http_status=409,
        )
    conn.execute(
        update(repayments).where(repayments.c.id == repayment_id).values(reversed_at=clock.now())
    )
    return result.entry_id


def _recovery(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    currency: str,
    cash: int,
    amount_fen: int,
) -> list[PostingSpec]:
    """A payment on a charged-off account recovers written-off receivables: the loss
    recognized at charge-off is taken back as recovery income."""
    if amount_fen == 0:
        return []
    written_off = customer_account(
        conn, clock, credit_account_id, AccountCode.WRITTEN_OFF_RECEIVABLE, currency
    )
    return [
        PostingSpec(cash, written_off, amount_fen, "recovery"),
        PostingSpec(
            platform_account(conn, clock, AccountCode.LOSS_ALLOWANCE, currency),
            platform_account(conn, clock, AccountCode.RECOVERY_INCOME, currency),
            amount_fen,
            "recovery",
        ),
    ]


def _repayment_result(row: Any, replayed: bool = False) -> RepaymentResult:
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


def _close_paid_plans(conn: Connection, credit_account_id: int) -> None:
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


# ---------------------------------------------------------------- queries


def account_summary(conn: Connection, credit_account_id: int, as_of: date) -> dict[str, Any]:
    account = get_account(conn, credit_account_id)
    principal = ledger.get_balance(conn, account["principal_account_id"])
    owed = outstanding_lines(conn, credit_account_id)
    owed_total = sum(sum(o.outstanding_fen.values()) for o in owed)
    upcoming = [o for o in owed if o.due_date >= as_of]
    next_due = min((o.due_date for o in upcoming), default=None)
    balance_id = find_account(
        conn,
        AccountCode.CUSTOMER_CREDIT_BALANCE,
        OwnerKind.CUSTOMER,
        str(credit_account_id),
        account["currency"],
    )
    credit_balance_fen = (
        0 if balance_id is None else -ledger.get_balance(conn, balance_id).net_debit_posted
    )
    return {
        "credit_account_id": credit_account_id,
        "product": account["product"],
        "status": account["status"],
        "currency": account["currency"],
        "limit_fen": account["limit_fen"],
        "available_fen": principal.available_fen,
        "held_fen": principal.debits_pending,
        "principal_owed_fen": principal.net_debit_posted,
        "owed_fen": owed_total,
        "overdue_fen": sum(sum(o.outstanding_fen.values()) for o in owed if o.due_date < as_of),
        "credit_balance_fen": credit_balance_fen,
        "next_due_date": next_due.isoformat() if next_due else None,
        "next_due_fen": sum(
            sum(o.outstanding_fen.values()) for o in upcoming if o.due_date == next_due
        ),
    }
