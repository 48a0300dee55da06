"""Checkout orders: authorize (hold), capture (once or several times), void, expire, refund,
and what each shop is owed. Every change writes its webhook event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from fenqi.clock import Clock
from fenqi.credit import service as credit
from fenqi.credit.accounts import lock_accounts
from fenqi.credit.errors import CreditError, Declined, NotFound
from fenqi.credit.plans import PlanOffer, offer
from fenqi.credit.refunds import refund_plan
from fenqi.errors import FenqiError
from fenqi.ledger import service as ledger
from fenqi.ledger.accounts import find_account
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.queries import net_credit_by_code
from fenqi.products.model import Product
from fenqi.store.prepared import Prepared
from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.ledger import ledger_balances as balance_rows
from fenqi.store.schema.ledger import ledger_entries
from fenqi.store.schema.parties import order_captures, order_refunds, orders
from fenqi.store.times import iso
from fenqi.webhooks.outbox import EventType, enqueue

OPEN = ("authorized", "partially_captured")


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """What checkout risk said: approve, decline or step_up, with a reason code."""

    decision: str
    reason: str = ""


RiskCheck = Callable[[Connection, dict[str, Any]], RiskVerdict]


def approve_all(_conn: Connection, _facts: dict[str, Any]) -> RiskVerdict:
    return RiskVerdict("approve")


def order_view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "merchant_order_ref": row["merchant_order_ref"],
        "credit_account_id": row["credit_account_id"],
        "currency": row["currency"],
        "amount_fen": row["amount_fen"],
        "terms": row["terms"],
        "status": row["status"],
        "captured_fen": row["captured_fen"],
        "refunded_fen": row["refunded_fen"],
        "created_at": iso(row["created_at"]),
        "expires_at": iso(row["expires_at"]),
    }


# the hot statements are built once and reused with new parameters (see ledger.balances)
_ORDER = Prepared(select(orders).where(orders.c.id == bindparam("k_id")))
_ORDER_LOCKED = Prepared(select(orders).where(orders.c.id == bindparam("k_id")).with_for_update())
_ORDER_BY_REF = Prepared(
    select(orders.c.id).where(
        orders.c.merchant_id == bindparam("k_merchant"),
        orders.c.merchant_order_ref == bindparam("k_ref"),
    )
)
_INSERT_ORDER = Prepared(insert(orders).returning(*orders.c))
_UPDATE_ORDER = Prepared(update(orders).where(orders.c.id == bindparam("k_id")))
_PLANS_OF_ORDER = Prepared(
    select(plans.c.id, plans.c.principal_fen, plans.c.refunded_fen)
    .where(
        plans.c.credit_account_id == bindparam("k_account"),
        plans.c.order_ref.like(bindparam("k_like")),
    )
    .order_by(plans.c.id)
)


_INSERT_CAPTURE = Prepared(insert(order_captures).returning(*order_captures.c))
_INSERT_REFUND = Prepared(insert(order_refunds).returning(*order_refunds.c))


def capture_view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "number": row["number"],
        "amount_fen": row["amount_fen"],
        "plan_id": row["plan_id"],
        "created_at": iso(row["created_at"]),
    }


def refund_view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "amount_fen": row["amount_fen"],
        "paid_back_to_shopper_fen": row["paid_back_to_shopper_fen"],
        "created_at": iso(row["created_at"]),
    }


def _record_capture(
    conn: Connection, clock: Clock, order_id: int, number: int, amount_fen: int, plan_id: int
) -> dict[str, Any]:
    row = _INSERT_CAPTURE.run(
        conn,
        {
            "order_id": order_id,
            "number": number,
            "amount_fen": amount_fen,
            "plan_id": plan_id,
            "created_at": clock.now(),
        },
    ).mapping()
    return capture_view(row)


def _plans_by_order(conn: Connection, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each order's plans, one per capture, in capture order."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in order_ids}
    if not order_ids:
        return out
    c, p = order_captures.c, plans.c
    rows = conn.execute(
        select(c.order_id, c.id, c.number, c.amount_fen, p.id, p.kind, p.terms, p.status)
        .join(plans, p.id == c.plan_id)
        .where(c.order_id.in_(order_ids))
        .order_by(c.order_id, c.number)
    ).all()
    for order_id, capture_id, number, amount, plan_id, kind, terms, status in rows:
        out[int(order_id)].append(
            {
                "plan_id": plan_id,
                "capture_id": capture_id,
                "capture_number": number,
                "principal_fen": amount,
                "kind": kind,
                "terms": terms,
                "status": status,
            }
        )
    return out


def _with_plans(view: dict[str, Any], order_plans: list[dict[str, Any]]) -> dict[str, Any]:
    """An order as every call shows it: all its plans, and `plan_id` the latest capture's."""
    return {
        **view,
        "plans": order_plans,
        "plan_id": order_plans[-1]["plan_id"] if order_plans else None,
    }


def order_captures_of(conn: Connection, merchant_id: str, order_id: int) -> list[dict[str, Any]]:
    _order(conn, merchant_id, order_id, lock=False)
    rows = conn.execute(
        select(order_captures)
        .where(order_captures.c.order_id == order_id)
        .order_by(order_captures.c.number)
    ).mappings()
    return [capture_view(r) for r in rows]


def order_refunds_of(conn: Connection, merchant_id: str, order_id: int) -> list[dict[str, Any]]:
    _order(conn, merchant_id, order_id, lock=False)
    rows = conn.execute(
        select(order_refunds)
        .where(order_refunds.c.order_id == order_id)
        .order_by(order_refunds.c.id)
    ).mappings()
    return [refund_view(r) for r in rows]


def _order(conn: Connection, merchant_id: str, order_id: int, lock: bool = True) -> Any:
    stmt = _ORDER_LOCKED if lock else _ORDER
    row = stmt.run(conn, {"k_id": order_id}).mapping()
    # another shop's order does not exist, as far as this shop can tell
    if row is None or row["merchant_id"] != merchant_id:
        raise NotFound(f"order {order_id} not found")
    return row


def get_order(conn: Connection, merchant_id: str, order_id: int) -> dict[str, Any]:
    view = order_view(_order(conn, merchant_id, order_id, lock=False))
    return _with_plans(view, _plans_by_order(conn, [order_id])[order_id])


def authorize_order(
    conn: Connection,
    clock: Clock,
    product: Product,
    *,
    merchant_id: str,
    credit_account_id: int,
    amount_fen: int,
    terms: int,
    merchant_order_ref: str,
    client_id: str,
    cap_bp: int,
    hold_seconds: int,
    risk: RiskCheck = approve_all,
    risk_facts: dict[str, Any] | None = None,
    step_up_verified: bool = False,
    capture: bool = False,
    currency: str | None = None,
    account: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Checkout risk, then a hold on the account's available credit for the chosen plan; the
    shop captures later (at shipment). With `capture`, a sale: the order is authorized and
    captured at once and its plan booked, with no hold (Klarna's auto-capture, Stripe's
    automatic capture; for what is handed over at checkout). A sale's only event is
    `order.captured`. `currency`, when given, must be the account's (`currency_mismatch`);
    `account` is the account's row when the caller has just read it, locked (`for_update`).

    Checkout risk runs in the caller's transaction, after the checks that refuse an order
    before anything is counted. A shopper who passed a step-up check (`step_up_verified`)
    is approved on a step-up. A refusal after `risk` ran, by risk or by what follows it (not
    enough credit), keeps risk's record of the attempt (`keeps_work`): the order's own work
    is undone to a savepoint, the caller commits the rest, so probing attempts count."""
    plan, account = _checked_order(
        conn, clock, product, merchant_id, credit_account_id, amount_fen, terms,
        merchant_order_ref, cap_bp, currency, account,
    )  # fmt: skip
    facts = {
        **(risk_facts or {}),
        "merchant_id": merchant_id,
        "credit_account_id": credit_account_id,
        "amount_fen": amount_fen,
        "account_opened_at": account["opened_at"],
    }
    verdict = risk(conn, facts)
    if verdict.decision == "step_up" and step_up_verified:
        verdict = RiskVerdict("approve", verdict.reason)
    if verdict.decision != "approve":
        refused = Declined(
            f"checkout risk: {verdict.decision} ({verdict.reason})",
            code=f"risk_{verdict.decision}",
            reason=verdict.reason,
        )
        refused.keeps_work = risk is not approve_all
        raise refused
    order = {
        "merchant_id": merchant_id,
        "merchant_order_ref": merchant_order_ref,
        "credit_account_id": credit_account_id,
        "currency": product.currency,
        "amount_fen": amount_fen,
        "terms": terms,
        "refunded_fen": 0,
        "risk_decision": verdict.decision,
        "created_at": clock.now(),
    }
    place = _sell if capture else _hold
    if risk is approve_all:
        return place(conn, clock, product, order, plan, account, client_id, hold_seconds)
    try:
        with conn.begin_nested():
            return place(conn, clock, product, order, plan, account, client_id, hold_seconds)
    except FenqiError as exc:
        exc.keeps_work = True  # the order is undone; risk's count of the attempt stays
        raise


def _checked_order(
    conn: Connection,
    clock: Clock,
    product: Product,
    merchant_id: str,
    credit_account_id: int,
    amount_fen: int,
    terms: int,
    merchant_order_ref: str,
    cap_bp: int,
    currency: str | None,
    account: dict[str, Any] | None,
) -> tuple[PlanOffer, dict[str, Any]]:
    """The refusals that come before checkout risk counts anything; the plan on offer and the
    account's row."""
    taken = _ORDER_BY_REF.run(
        conn, {"k_merchant": merchant_id, "k_ref": merchant_order_ref}
    ).scalar()
    if taken is not None:
        raise CreditError(
            f"merchant_order_ref: {merchant_order_ref!r} is already order {taken}",
            code="duplicate_order_ref",
            http_status=409,
            order_id=taken,
        )
    # the account's row locked first, as every change to its balances and plans takes it (a
    # caller that passes `account` has read it with for_update=True in this transaction)
    account = account or credit.get_account(conn, credit_account_id, for_update=True)
    if account["product"] != product.name:
        raise CreditError("product mismatch", code="product_mismatch")
    if currency is not None and currency != account["currency"]:
        raise CreditError(
            f"currency: the order is in {currency} but the credit account lends in "
            f"{account['currency']}",
            code="currency_mismatch",
            field="currency",
        )
    plan = offer(product, amount_fen, terms, clock.today(), cap_bp=cap_bp, tier=account["tier"])
    return plan, account


def _sell(
    conn: Connection,
    clock: Clock,
    product: Product,
    order: dict[str, Any],
    plan: PlanOffer,
    account: dict[str, Any],
    client_id: str,
    _hold_seconds: int,
) -> dict[str, Any]:
    """The order captured at once: its row first, since its plan is named after it (a
    refused sale raises, and the caller's transaction undoes the order with it)."""
    amount_fen, merchant_id = order["amount_fen"], order["merchant_id"]
    row = _INSERT_ORDER.run(
        conn,
        {
            **order,
            "status": "captured",
            "hold_entry_id": None,
            "captured_fen": amount_fen,
            "captures": 1,
            "expires_at": order["created_at"],  # nothing is held
        },
    ).mappings()[0]
    sale = credit.sell(
        conn,
        clock,
        product,
        order["credit_account_id"],
        merchant_id,
        f"order:{row['id']}:1",
        plan,
        f"sale:{client_id}",
        account=account,
    )
    taken = _record_capture(conn, clock, row["id"], 1, amount_fen, sale.plan_id)
    view = _with_plans(order_view(row), [_first_plan(taken, plan)])
    enqueue(
        conn,
        clock,
        merchant_id,
        EventType.ORDER_CAPTURED,
        {"order": view, "plan_id": sale.plan_id, "amount_fen": amount_fen, "capture": taken},
    )
    return {**view, "capture": taken}


def _hold(
    conn: Connection,
    clock: Clock,
    _product: Product,
    order: dict[str, Any],
    _plan: PlanOffer,
    account: dict[str, Any],
    client_id: str,
    hold_seconds: int,
) -> dict[str, Any]:
    """The order authorized: a hold on the account's available credit, then the order."""
    merchant_id = order["merchant_id"]
    hold = credit.authorize(
        conn,
        clock,
        order["credit_account_id"],
        merchant_id,
        order["amount_fen"],
        f"auth:{client_id}",
        hold_seconds,
        account=account,
    )
    held = _INSERT_ORDER.run(
        conn,
        {
            **order,
            "status": "authorized",
            "hold_entry_id": hold.hold_entry_id,
            "captured_fen": 0,
            "captures": 0,
            "expires_at": order["created_at"] + timedelta(seconds=hold_seconds),
        },
    ).mapping()
    view = _with_plans(order_view(held), [])
    enqueue(conn, clock, merchant_id, EventType.ORDER_AUTHORIZED, {"order": view})
    return view


def _first_plan(capture: dict[str, Any], plan: PlanOffer) -> dict[str, Any]:
    """An order's plan as `_plans_by_order` reads it back, for the order's first capture,
    just booked (`store_plan`: open, one line per term): no read needed."""
    return {
        "plan_id": capture["plan_id"],
        "capture_id": capture["id"],
        "capture_number": capture["number"],
        "principal_fen": capture["amount_fen"],
        "kind": plan.kind,
        "terms": len(plan.quote.schedule.lines),
        "status": "open",
    }


def capture_order(
    conn: Connection,
    clock: Clock,
    product: Product | Callable[[str], Product],
    *,
    merchant_id: str,
    order_id: int,
    amount_fen: int | None,
    final: bool | None,
    client_id: str,
    cap_bp: int,
) -> dict[str, Any]:
    """Capture all or part of what an order holds: the hold posted, the plan booked. `product`
    is the account's product, or how to find it by name (read from the account here)."""
    row = _order(conn, merchant_id, order_id)
    if row["status"] not in OPEN:
        raise CreditError(
            f"order {order_id} is {row['status']}; nothing to capture", code="order_not_capturable"
        )
    remaining = row["amount_fen"] - row["captured_fen"]
    amount = remaining if amount_fen is None else amount_fen
    if not 0 < amount <= remaining:
        raise CreditError(
            f"amount_fen: {amount} is more than the {remaining} still authorized",
            code="capture_exceeds_authorization",
            authorized_left_fen=remaining,
        )
    # the order, then the shopper's account: the lock order of every change to an account
    account = credit.get_account(conn, row["credit_account_id"], for_update=True)
    if not isinstance(product, Product):
        product = product(account["product"])
    plan = offer(product, amount, row["terms"], clock.today(), cap_bp=cap_bp, tier=account["tier"])
    is_final = (amount == remaining) if final is None else final or amount == remaining
    number = row["captures"] + 1
    plan_id = credit.capture(
        conn,
        clock,
        product,
        row["credit_account_id"],
        merchant_id,
        row["hold_entry_id"],
        f"order:{order_id}:{number}",
        plan,
        f"capture:{client_id}",
        final=is_final,
        account=account,
    )
    captured = row["captured_fen"] + amount
    status = "captured" if is_final else "partially_captured"
    _UPDATE_ORDER.run(
        conn, {"k_id": order_id, "captured_fen": captured, "captures": number, "status": status}
    )
    taken = _record_capture(conn, clock, order_id, number, amount, plan_id)
    order_plans = (
        [_first_plan(taken, plan)] if number == 1 else _plans_by_order(conn, [order_id])[order_id]
    )
    view = _with_plans({**order_view(row), "captured_fen": captured, "status": status}, order_plans)
    _captured(conn, clock, merchant_id, view, plan_id, amount, taken)
    return {**view, "capture": taken}


def _captured(
    conn: Connection,
    clock: Clock,
    merchant_id: str,
    view: dict[str, Any],
    plan_id: int,
    amount_fen: int,
    taken: dict[str, Any],
) -> None:
    """What follows a capture in its transaction: the shop's webhook event."""
    enqueue(
        conn,
        clock,
        merchant_id,
        EventType.ORDER_CAPTURED,
        {"order": view, "plan_id": plan_id, "amount_fen": amount_fen, "capture": taken},
    )


def void_order(
    conn: Connection, clock: Clock, *, merchant_id: str, order_id: int, client_id: str
) -> dict[str, Any]:
    row = _order(conn, merchant_id, order_id)
    if row["status"] not in OPEN:
        raise CreditError(
            f"order {order_id} is {row['status']}; nothing to void", code="order_not_voidable"
        )
    credit.get_account(conn, row["credit_account_id"], for_update=True)  # order, then account
    ledger.void_pending(conn, clock, f"void:{client_id}", row["hold_entry_id"], "void by shop")
    status = "voided" if row["captured_fen"] == 0 else "captured"
    conn.execute(update(orders).where(orders.c.id == order_id).values(status=status))
    view = _with_plans(
        {**order_view(row), "status": status}, _plans_by_order(conn, [order_id])[order_id]
    )
    enqueue(conn, clock, merchant_id, EventType.ORDER_VOIDED, {"order": view})
    return view


def expire_orders(conn: Connection, clock: Clock) -> int:
    """Release holds past their expiry and mark their orders; returns how many orders.

    Locks as the shop's calls do: the order, then the shopper's credit account, then the hold,
    so expiry never deadlocks with a capture, a void or a refund, and the two resolve a hold
    one way. An order another transaction holds (a capture or void under way) is skipped, not
    waited for (`SKIP LOCKED`): that call settles it, or the next end of day expires it. Holds
    of no order (a bare `authorize`) expire too. Every account is locked, in id order, before
    anything is written."""
    o = orders.c
    due = conn.execute(
        select(o.id, o.credit_account_id, o.hold_entry_id, o.captured_fen)
        .where(o.status.in_(OPEN), o.expires_at <= clock.now())
        .order_by(o.id)
        .with_for_update(skip_locked=True)
    ).all()
    bare, bare_accounts = _bare_holds(conn, clock)
    lock_accounts(conn, [int(r.credit_account_id) for r in due] + bare_accounts)
    for order_id, _account, hold_entry_id, captured in due:
        if hold_entry_id is not None:
            ledger.expire_hold(conn, clock, int(hold_entry_id))
        conn.execute(
            update(orders)
            .where(o.id == order_id)
            .values(status="expired" if captured == 0 else "captured")
        )
    for hold_id in bare:
        ledger.expire_hold(conn, clock, hold_id)
    return len(due)


def _bare_holds(conn: Connection, clock: Clock) -> tuple[list[int], list[int]]:
    """Holds past their timeout that no order names (an `authorize` called directly), and
    the credit accounts they hold credit on."""
    held = ledger.expired_holds(conn, clock)
    if not held:
        return [], []
    of_orders = set(
        conn.execute(select(orders.c.hold_entry_id).where(orders.c.hold_entry_id.in_(held)))
        .scalars()
        .all()
    )
    bare = [i for i in held if i not in of_orders]
    if not bare:
        return [], []
    e = ledger_entries.c
    refs = conn.execute(
        select(e.ref_id).where(e.id.in_(bare), e.ref_kind == "credit_account")
    ).scalars()
    return bare, [int(r) for r in refs if r is not None and r.isdigit()]


def refund_order(
    conn: Connection,
    clock: Clock,
    product: Product,
    *,
    merchant_id: str,
    order_id: int,
    amount_fen: int,
    client_id: str,
) -> dict[str, Any]:
    row = _order(conn, merchant_id, order_id)
    # the order, then the shopper's account (as repayments, payoffs and conversions take it),
    # then the shop's payable (as payouts take it): whoever comes second reads fresh figures
    credit.get_account(conn, row["credit_account_id"], for_update=True)
    lock_payable(conn, clock, merchant_id, row["currency"])
    refundable = row["captured_fen"] - row["refunded_fen"]
    if not 0 < amount_fen <= refundable:
        raise CreditError(
            f"amount_fen: {amount_fen} is more than the {refundable} refundable",
            code="refund_exceeds_purchase",
            refundable_fen=refundable,
        )
    order_plans = _PLANS_OF_ORDER.run(
        conn, {"k_account": row["credit_account_id"], "k_like": f"order:{order_id}:%"}
    ).rows
    left = amount_fen
    cash_back = 0
    for number, (plan_id, principal, refunded) in enumerate(order_plans):
        take = min(left, principal - refunded)
        if take <= 0:
            continue
        split = refund_plan(
            conn, clock, product, plan_id, merchant_id, take, f"refund:{client_id}:{number}"
        )
        cash_back += split.cash_back_fen
        left -= take
    assert left == 0, "captured amount and plans disagree"
    refunded = row["refunded_fen"] + amount_fen
    status = (
        "refunded"
        if refunded == row["captured_fen"] and row["status"] not in OPEN
        else (row["status"])
    )
    _UPDATE_ORDER.run(conn, {"k_id": order_id, "refunded_fen": refunded, "status": status})
    made = refund_view(
        _INSERT_REFUND.run(
            conn,
            {
                "order_id": order_id,
                "amount_fen": amount_fen,
                "paid_back_to_shopper_fen": cash_back,
                "created_at": clock.now(),
            },
        ).mapping()
    )
    view = _with_plans(
        {**order_view(row), "refunded_fen": refunded, "status": status},
        _plans_by_order(conn, [order_id])[order_id],
    )
    enqueue(
        conn,
        clock,
        merchant_id,
        EventType.ORDER_REFUNDED,
        {
            "order": view,
            "amount_fen": amount_fen,
            "paid_back_to_shopper_fen": cash_back,
            "refund": made,
        },
    )
    return {**view, "paid_back_to_shopper_fen": cash_back, "refund": made}


def list_orders(
    conn: Connection,
    merchant_id: str,
    *,
    limit: int = 50,
    after_id: int = 0,
    newest_first: bool = False,
    status: str | None = None,
    merchant_order_ref: str | None = None,
    credit_account_id: int | None = None,
) -> list[dict[str, Any]]:
    """The shop's orders, oldest or newest first, after the cursor's id (0: from the start),
    narrowed by status, the shop's own reference or the credit account; each with its plans."""
    o = orders.c
    where = [o.merchant_id == merchant_id]
    if after_id:
        where.append(o.id < after_id if newest_first else o.id > after_id)
    if status is not None:
        where.append(o.status == status)
    if merchant_order_ref is not None:
        where.append(o.merchant_order_ref == merchant_order_ref)
    if credit_account_id is not None:
        where.append(o.credit_account_id == credit_account_id)
    rows = (
        conn.execute(
            select(orders)
            .where(*where)
            .order_by(o.id.desc() if newest_first else o.id)
            .limit(max(1, min(limit, 200)))
        )
        .mappings()
        .all()
    )
    by_order = _plans_by_order(conn, [int(r["id"]) for r in rows])
    return [_with_plans(order_view(r), by_order[int(r["id"])]) for r in rows]


def order_by_reference(
    conn: Connection, merchant_id: str, merchant_order_ref: str
) -> dict[str, Any]:
    """The shop's order with its own reference (`merchant_order_ref`), or 404."""
    found = _ORDER_BY_REF.run(
        conn, {"k_merchant": merchant_id, "k_ref": merchant_order_ref}
    ).scalar()
    if found is None:
        raise NotFound(f"no order with merchant_order_ref {merchant_order_ref!r}")
    return get_order(conn, merchant_id, int(found))


def settlement(conn: Connection, clock: Clock, merchant_id: str, currency: str) -> dict[str, Any]:
    """What fenqi owes the shop: its payable balance in the ledger, with how it came about.
    A read: it never opens a ledger account (a shop with no payable yet is owed nothing)."""
    payable_id = find_account(
        conn, AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, merchant_id, currency
    )
    if payable_id is None:
        owed = held = 0
        by_code: dict[str, int] = {}
    else:
        bal = ledger.get_balance(conn, payable_id)
        owed, held = bal.credits_posted - bal.debits_posted, bal.credits_pending
        by_code = net_credit_by_code(conn, payable_id)
    totals = conn.execute(
        select(
            func.coalesce(func.sum(orders.c.captured_fen), 0),
            func.coalesce(func.sum(orders.c.refunded_fen), 0),
            func.count(),
        ).where(orders.c.merchant_id == merchant_id, orders.c.currency == currency)
    ).one()
    return {
        "merchant_id": merchant_id,
        "currency": currency,
        "owed_fen": owed,
        "held_fen": held,
        "captured_fen": int(totals[0]),
        "refunded_fen": int(totals[1]),
        "orders": int(totals[2]),
        "by_kind_fen": by_code,
    }


# A shop's payable is a hot account: its changes land in slot rows, and its own balance row is
# never updated. Payouts and refunds lock that row first, so they take turns per shop and
# currency while checkouts keep crediting the slots. On SQLite every transaction holds the
# write lock from its start (BEGIN IMMEDIATE), which serializes them just as well.
_LOCK_BALANCE = Prepared(
    select(balance_rows.c.account_id)
    .where(balance_rows.c.account_id == bindparam("k_id"))
    .with_for_update()
)


def lock_payable(conn: Connection, clock: Clock, merchant_id: str, currency: str) -> int:
    """Lock the shop's payable for this transaction (payouts and refunds); returns its id."""
    payable_id = ledger.open_account(
        conn, clock, AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, merchant_id, currency
    )
    _LOCK_BALANCE.run(conn, {"k_id": payable_id})
    return payable_id


def pay_out(conn: Connection, clock: Clock, merchant_id: str, currency: str, client_id: str) -> int:
    """Pay the shop what it is owed (Dr merchant payable / Cr cash); returns the amount.

    The payable is locked before it is read, so concurrent payouts (and refunds) for the shop
    take turns: the first pays what is owed, the next reads what is left (nothing) and is
    refused with `nothing_to_pay`. A payout never takes the payable below zero."""
    payable_id = lock_payable(conn, clock, merchant_id, currency)
    bal = ledger.get_balance(conn, payable_id)
    owed = bal.credits_posted - bal.debits_posted
    if owed <= 0:
        raise CreditError(f"nothing owed to {merchant_id}", code="nothing_to_pay")
    from fenqi.credit.posting import leg, post

    post(
        conn,
        clock,
        f"payout:{client_id}",
        currency,
        leg(
            payable_id,
            credit.platform_account(conn, clock, AccountCode.CASH_CLEARING, currency),
            owed,
            "payout",
        ),
        f"settlement payout to {merchant_id}",
        "merchant",
        merchant_id,
    )
    return owed
