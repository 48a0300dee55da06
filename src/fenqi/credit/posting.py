"""Posting a business event to the ledger from the credit area: one balanced entry, asserted."""

from __future__ import annotations

from sqlalchemy import Connection

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError
from fenqi.ledger import service as ledger
from fenqi.ledger.entry import EntryRequest, PostingSpec


def post(
    conn: Connection,
    clock: Clock,
    client_id: str,
    currency: str,
    postings: list[PostingSpec],
    description: str,
    ref_kind: str,
    ref_id: str,
) -> int | None:
    """Post the non-empty entry; None when there is nothing to post. Refusals are errors."""
    if not postings:
        return None
    result = ledger.post_entry(
        conn,
        clock,
        EntryRequest(
            client_id=client_id,
            currency=currency,
            postings=tuple(postings),
            description=description,
            ref_kind=ref_kind,
            ref_id=ref_id,
        ),
    )
    if not result.ok:
        raise CreditError(
            f"{description}: refused by the ledger ({result.reject_code})", code="ledger_rejected"
        )
    return result.entry_id


def leg(
    debit_account_id: int, credit_account_id: int, amount_fen: int, code: str
) -> list[PostingSpec]:
    """One posting, or none when the amount is zero (so callers can list legs unconditionally)."""
    return (
        [PostingSpec(debit_account_id, credit_account_id, amount_fen, code)] if amount_fen else []
    )
