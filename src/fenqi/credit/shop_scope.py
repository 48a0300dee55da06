"""What a shopper session minted by one shop may show: that shop's purchases, not the others'.

A shop obtains a shopper token (`POST /v1/shopper-sessions`) for its own wallet pages. The
shopper's credit account is shared by every shop they buy from, so a token minted by shop B
must not list the plans, statement lines or ledger postings of purchases made at shop A: that
would tell shop B where else the shopper shops and for how much. Account-wide figures (limit,
available credit, what is owed and when) stay visible: the shopper needs them at any checkout,
and they name no other shop.

- plans: only those made from this shop's orders (a plan from `order:<id>:<n>` whose order
  belongs to the shop); plans that combine purchases (a bill conversion) or restructure them
  (hardship) are the account's, not one shop's, and are listed only when every purchase on
  the account was made at this shop;
- statements: the totals of each due date are the account's (what must be paid), the lines
  only those of this shop's plans;
- ledger: every posting of the account except those of entries that touch another shop's
  ledger accounts (its holds, captures, refunds and discounts) or book another shop's plan;
- payoffs and conversions act only on this shop's plans.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, exists, false, or_, select

from fenqi.store.schema.credit import installment_plans as plans
from fenqi.store.schema.ledger import ledger_accounts, ledger_entries, ledger_postings
from fenqi.store.schema.parties import orders

ORDER_PREFIX = "order:"


def shop_plan_ids(conn: Connection, credit_account_id: int, merchant_id: str) -> set[int]:
    """The account's plans made from orders of this shop; and the account's other plans
    (conversions, hardship) too when every purchase on the account was made at this shop."""
    by_order: dict[int, list[int]] = {}
    combined: set[int] = set()
    for plan_id, order_ref in conn.execute(
        select(plans.c.id, plans.c.order_ref).where(plans.c.credit_account_id == credit_account_id)
    ):
        try:
            if not order_ref.startswith(ORDER_PREFIX):
                raise ValueError
            order_id = int(order_ref.split(":")[1])
        except (IndexError, ValueError):
            combined.add(int(plan_id))
            continue
        by_order.setdefault(order_id, []).append(int(plan_id))
    ours = (
        set(
            conn.execute(
                select(orders.c.id).where(
                    orders.c.id.in_(list(by_order)),
                    orders.c.merchant_id == merchant_id,
                    orders.c.credit_account_id == credit_account_id,
                )
            ).scalars()
        )
        if by_order
        else set()
    )
    allowed = {p for order_id in ours for p in by_order[int(order_id)]}
    if len(ours) == len(by_order):  # no purchase elsewhere: nothing to hide
        allowed |= combined
    return allowed


def plans_for_shop(items: list[dict[str, Any]], allowed: set[int]) -> list[dict[str, Any]]:
    return [p for p in items if p["id"] in allowed]


def statements_for_shop(items: list[dict[str, Any]], allowed: set[int]) -> list[dict[str, Any]]:
    return [s | {"lines": [x for x in s["lines"] if x["plan_id"] in allowed]} for s in items]


def ledger_lines_for_shop(
    conn: Connection, credit_account_id: int, merchant_id: str, limit: int, after_id: int
) -> list[dict[str, Any]]:
    """The account's postings, oldest first, without those of entries that touch another
    shop's ledger accounts or book another shop's plan (same shape as `views.ledger_lines`)."""
    allowed = [str(p) for p in shop_plan_ids(conn, credit_account_id, merchant_id)]
    accounts = dict(
        conn.execute(
            select(ledger_accounts.c.id, ledger_accounts.c.code).where(
                ledger_accounts.c.owner_kind == "customer",
                ledger_accounts.c.owner_id == str(credit_account_id),
            )
        ).all()
    )
    if not accounts:
        return []
    pst, ent = ledger_postings, ledger_entries
    other = ledger_postings.alias("other")
    shop = ledger_accounts.alias("shop")
    touches_other_shop = exists(
        select(other.c.id)
        .join(
            shop,
            or_(shop.c.id == other.c.debit_account_id, shop.c.id == other.c.credit_account_id),
        )
        .where(
            other.c.entry_id == pst.c.entry_id,
            shop.c.owner_kind == "merchant",
            shop.c.owner_id != merchant_id,
        )
    )
    ids = list(accounts)
    rows = conn.execute(
        select(
            pst.c.id.label("posting_id"),
            pst.c.entry_id,
            pst.c.amount_fen,
            pst.c.code,
            pst.c.debit_account_id,
            pst.c.credit_account_id,
            ent.c.kind,
            ent.c.business_date,
            ent.c.description,
        )
        .join(ent, ent.c.id == pst.c.entry_id)
        .where(
            or_(pst.c.debit_account_id.in_(ids), pst.c.credit_account_id.in_(ids)),
            pst.c.id > after_id,
            ~touches_other_shop,
            or_(
                ent.c.ref_kind.is_(None),
                ent.c.ref_kind != "plan",
                ent.c.ref_id.in_(allowed) if allowed else false(),
            ),
        )
        .order_by(pst.c.id)
        .limit(limit)
    ).mappings()
    out = []
    for x in rows:
        mine = (
            x["debit_account_id"] if x["debit_account_id"] in accounts else x["credit_account_id"]
        )
        out.append(
            {
                "posting_id": x["posting_id"],
                "entry_id": x["entry_id"],
                "account": accounts[mine],
                "side": "debit" if mine == x["debit_account_id"] else "credit",
                "amount_fen": x["amount_fen"],
                "code": x["code"],
                "kind": x["kind"],
                "business_date": str(x["business_date"]),
                "description": x["description"],
            }
        )
    return out
