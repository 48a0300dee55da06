"""Staff actions on accounts and the ledger, with their audit entry: one home for the API
(`/v1/ops`) and the console (issue 22), so both apply the same rules and write the same audit
row. Each runs inside the caller's transaction; the caller owns idempotency and rendering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select

from fenqi.clock import Clock
from fenqi.credit import admin
from fenqi.credit.accounts import get_account
from fenqi.credit.errors import CreditError
from fenqi.ledger.entry import EntryResult
from fenqi.ledger.service import reverse_entry
from fenqi.privacy.audit import record
from fenqi.products.model import Product
from fenqi.store.schema.credit import repayments
from fenqi.store.schema.ledger import ledger_entries

ProductOf = Callable[[str], Product]


def audit_staff(
    conn: Connection,
    clock: Clock,
    staff_id: int,
    action: str,
    target_kind: str,
    target_id: str | int,
    reason: str = "",
    **detail: Any,
) -> None:
    """The audit row of a staff action (same transaction as the action)."""
    record(
        conn,
        clock,
        actor_kind="staff",
        actor_id=staff_id,
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
        raise CreditError(
            f"the ledger refused the reversal: {result.reject_code}",
            code="reversal_refused",
            http_status=409,
        )
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
    repayment = conn.execute(
        select(repayments.c.id, repayments.c.credit_account_id).where(
            repayments.c.ledger_entry_id == entry_id
        )
    ).first()
    if repayment is not None:
        raise CreditError(
            f"entry {entry_id} is repayment {repayment.id}: reverse it with POST /v1/ops/"
            f"accounts/{repayment.credit_account_id}/repayments/{repayment.id}/reverse",
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
