"""Account administration: freeze, unfreeze, close, change the limit — each with a reason.

The limit lives in two places that move together in one transaction: the credit account row
(what was granted) and the ledger's debit cap on the principal receivable (what is enforced).
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, update

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError
from fenqi.credit.service import get_account
from fenqi.ledger.service import set_debit_cap
from fenqi.products.model import Product
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.parties import limit_changes

TRANSITIONS = {
    "freeze": ({"active"}, "frozen"),
    "unfreeze": ({"frozen"}, "active"),
    "close": ({"active", "frozen"}, "closed"),
}


def change_status(conn: Connection, credit_account_id: int, action: str, reason: str) -> str:
    if action not in TRANSITIONS:
        raise CreditError(
            f"action: {action!r} is not one of {sorted(TRANSITIONS)}", code="invalid_action"
        )
    if not reason.strip():
        raise CreditError("reason: say why", code="reason_required")
    allowed, target = TRANSITIONS[action]
    account = get_account(conn, credit_account_id, for_update=True)
    if account["status"] not in allowed:
        raise CreditError(
            f"account {credit_account_id} is {account['status']}; cannot {action}",
            code="invalid_transition",
        )
    conn.execute(update(ca).where(ca.c.id == credit_account_id).values(status=target))
    return target


def change_limit(
    conn: Connection,
    clock: Clock,
    product: Product,
    credit_account_id: int,
    new_limit_fen: int,
    reason: str,
    decided_by: str,
) -> int:
    """Set a new limit; lowering it below what is used blocks new purchases, nothing else."""
    if not reason.strip():
        raise CreditError("reason: say why", code="reason_required")
    if not 0 <= new_limit_fen <= product.limits.max_fen:
        raise CreditError(
            f"limit_fen: {new_limit_fen} is outside 0..{product.limits.max_fen}",
            code="limit_out_of_range",
        )
    account = get_account(conn, credit_account_id, for_update=True)
    conn.execute(update(ca).where(ca.c.id == credit_account_id).values(limit_fen=new_limit_fen))
    set_debit_cap(conn, account["principal_account_id"], new_limit_fen)
    conn.execute(
        insert(limit_changes).values(
            credit_account_id=credit_account_id,
            old_limit_fen=account["limit_fen"],
            new_limit_fen=new_limit_fen,
            reason=reason,
            decided_by=decided_by,
            at=clock.now(),
        )
    )
    return int(account["limit_fen"])
