"""Staff actions with their audit entry: one home for the API (`/v1/ops`), the console and the
CLI (issue 22), so all apply the same rules and write the same audit row. Each runs inside the
caller's transaction; the caller owns idempotency (the `client_id` it passes) and rendering.

Accounts: freeze/unfreeze/close, limit, hardship plan. Money: repayment reversal, ledger entry
reversal (refused for an entry a business operation owns), shop payout. Shops: onboarding.
Webhooks: replay. Every action is audited as `actor` (a staff user, or the CLI as `system`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from fenqi.clock import Clock
from fenqi.credit import admin, checkout, customers, hardship, merchants, repayments
from fenqi.credit.accounts import get_account
from fenqi.credit.errors import CreditError
from fenqi.credit.posting import ledger_refusal
from fenqi.ledger.entry import EntryResult
from fenqi.ledger.service import reverse_entry
from fenqi.privacy.audit import ActorKind, record
from fenqi.privacy.crypto import KeyRing
from fenqi.products.model import Product
from fenqi.store.schema.ledger import ledger_entries
from fenqi.webhooks import outbox

ProductOf = Callable[[str], Product]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does a staff action, as the audit log names them."""

    kind: ActorKind
    id: str | int

    @classmethod
    def staff(cls, staff_id: int) -> Actor:
        return cls(ActorKind.STAFF, staff_id)


CLI = Actor(ActorKind.SYSTEM, "cli")  # the command line: an operator on the server itself


def _actor(who: int | Actor) -> Actor:
    return who if isinstance(who, Actor) else Actor.staff(who)


def audit_staff(
    conn: Connection,
    clock: Clock,
    staff_id: int | Actor,
    action: str,
    target_kind: str,
    target_id: str | int,
    reason: str = "",
    **detail: Any,
) -> None:
    """The audit row of a staff action (same transaction as the action)."""
    actor = _actor(staff_id)
    record(
        conn,
        clock,
        actor_kind=actor.kind,
        actor_id=actor.id,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        reason=reason,
        detail=detail or None,
    )


def change_account_status(
    conn: Connection, clock: Clock, staff_id: int, account_id: int, action: str, reason: str
) -> str:
    """Freeze, unfreeze or close an account for a reason, audited; returns the new status."""
    status = admin.change_status(conn, account_id, action, reason)
    audit_staff(conn, clock, staff_id, f"account.{action}", "credit_account", account_id, reason)
    return status


def change_account_limit(
    conn: Connection,
    clock: Clock,
    product_of: ProductOf,
    staff_id: int,
    account_id: int,
    limit_fen: int,
    reason: str,
) -> int:
    """Set an account's limit for a reason, audited with the old and new limit; returns the
    old limit."""
    product = product_of(get_account(conn, account_id)["product"])
    old = admin.change_limit(
        conn, clock, product, account_id, limit_fen, reason, f"staff:{staff_id}"
    )
    audit_staff(
        conn,
        clock,
        staff_id,
        "account.change_limit",
        "credit_account",
        account_id,
        reason,
        old_limit_fen=old,
        new_limit_fen=limit_fen,
    )
    return old


def reverse_ledger_entry(
    conn: Connection, clock: Clock, staff_id: int, entry_id: int, reason: str, client_id: str
) -> EntryResult:
    """Post the mirror image of a posted entry, audited; refused for entries a business
    operation owns."""
    refuse_business_entries(conn, entry_id)
    result = reverse_entry(conn, clock, client_id, entry_id, reason)
    if not result.ok:
        raise ledger_refusal(result, f"reversal of entry {entry_id}", reversal=True)
    audit_staff(
        conn,
        clock,
        staff_id,
        "ledger.reverse",
        "ledger_entry",
        entry_id,
        reason,
        reversal_entry_id=result.entry_id,
    )
    return result


def refuse_business_entries(conn: Connection, entry_id: int) -> None:
    """Entries that a purchase, a plan or a repayment rests on are corrected by their own
    operation (which keeps plans and ledger in step), never by a bare ledger reversal."""
    repayment = repayments.repayment_of_entry(conn, entry_id)
    if repayment is not None:
        repayment_id, account_id = repayment
        raise CreditError(
            f"entry {entry_id} is repayment {repayment_id}: reverse it with POST /v1/ops/"
            f"accounts/{account_id}/repayments/{repayment_id}/reverse",
            code="use_business_operation",
            http_status=409,
        )
    ref = conn.execute(
        select(ledger_entries.c.ref_kind, ledger_entries.c.kind).where(
            ledger_entries.c.id == entry_id
        )
    ).first()
    if ref is not None and (ref.ref_kind == "plan" or ref.kind in ("pending", "post")):
        raise CreditError(
            f"entry {entry_id} belongs to a purchase or plan: use a refund, void or payoff",
            code="use_business_operation",
            http_status=409,
        )


def hardship_plan(
    conn: Connection,
    clock: Clock,
    product_of: ProductOf,
    staff_id: int | Actor,
    account_id: int,
    terms: int,
    *,
    waive_charges: bool,
    reason: str,
    client_id: str,
) -> int:
    """Restructure a delinquent balance into a new plan (re-aged), audited; returns the plan."""
    product = product_of(get_account(conn, account_id)["product"])
    plan_id = hardship.restructure(
        conn,
        clock,
        product,
        account_id,
        terms,
        waive_charges=waive_charges,
        client_id=client_id,
    )
    audit_staff(
        conn,
        clock,
        staff_id,
        "account.hardship_plan",
        "credit_account",
        account_id,
        reason,
        plan_id=plan_id,
        terms=terms,
        waive_charges=waive_charges,
    )
    return plan_id


def reverse_repayment(
    conn: Connection,
    clock: Clock,
    staff_id: int | Actor,
    account_id: int,
    repayment_id: int,
    reason: str,
    client_id: str,
) -> int:
    """A repayment that bounced: what it paid is owed again where it was paid, audited; returns
    the reversal entry."""
    entry = repayments.reverse_repayment(conn, clock, account_id, repayment_id, reason, client_id)
    audit_staff(
        conn,
        clock,
        staff_id,
        "repayment.reverse",
        "repayment",
        repayment_id,
        reason,
        reversal_entry_id=entry,
    )
    return entry


def create_merchant(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    staff_id: int | Actor,
    merchant_id: str,
    name: str,
    category: str,
    webhook_url: str | None,
    *,
    allow_private: bool,
    currency: str,
) -> dict[str, Any]:
    """Onboard a shop, audited; returns its API key and webhook secret (shown once)."""
    out = merchants.create_merchant(
        conn,
        clock,
        merchant_id,
        name,
        category,
        webhook_url,
        keys,
        allow_private=allow_private,
        currency=currency,
    )
    audit_staff(conn, clock, staff_id, "merchant.create", "merchant", merchant_id)
    return out


def pay_out_merchant(
    conn: Connection,
    clock: Clock,
    staff_id: int | Actor,
    merchant_id: str,
    currency: str,
    client_id: str,
) -> int:
    """Pay a shop what it is owed (its merchant payable), audited; returns the amount."""
    paid = checkout.pay_out(conn, clock, merchant_id, currency, client_id)
    audit_staff(conn, clock, staff_id, "merchant.payout", "merchant", merchant_id, amount_fen=paid)
    return paid


def replay_webhook_event(conn: Connection, clock: Clock, who: int | Actor, event_id: str) -> int:
    """Queue a delivered or dead-lettered event again, audited; returns the new delivery."""
    delivery_id = outbox.replay(conn, clock, event_id)
    audit_staff(
        conn, clock, who, "webhooks.replay", "webhook_event", event_id, delivery_id=delivery_id
    )
    return delivery_id


def find_customers(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    staff_id: int | Actor,
    *,
    phone: str | None,
    id_number: str | None,
) -> list[dict[str, Any]]:
    """Shoppers by phone or ID number (matched by keyed hash), masked; the search is audited
    with the ids it found."""
    ids = customers.find(conn, keys, phone=phone, id_number=id_number)
    audit_staff(
        conn, clock, staff_id, "customer.search", "customer", ",".join(map(str, ids)) or "-"
    )
    return [customers.masked(conn, keys, i) for i in ids]


def reveal_customer(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    staff_id: int | Actor,
    customer_id: int,
    reason: str,
) -> dict[str, Any]:
    """A shopper's unmasked identity, for a reason written to the audit log with the reveal."""
    plain = customers.reveal(conn, keys, customer_id)
    audit_staff(conn, clock, staff_id, "customer.reveal_pii", "customer", customer_id, reason)
    return plain
