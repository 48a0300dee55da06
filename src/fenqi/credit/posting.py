"""Posting a business event to the ledger from the credit area: one balanced entry, asserted;
and the one mapping of a ledger refusal to the credit area's error (`ledger_refusal`)."""

from __future__ import annotations

from sqlalchemy import Connection

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError
from fenqi.ledger import service as ledger
from fenqi.ledger.entry import EntryRequest, EntryResult, PostingSpec


def ledger_refusal(result: EntryResult, what: str, *, reversal: bool = False) -> CreditError:
    """The error for an entry the ledger refused (a limit, a balance rule, an account): the
    ledger's reason in the message and as `reject_code`; `ledger_rejected` (422) for a
    posting, `reversal_refused` (409) for a reversal. Every credit operation maps a refusal
    here (issue 22); a purchase's refusal is a decline instead (`credit/purchases.py`)."""
    reason = str(result.reject_code)
    return CreditError(
        f"{what}: refused by the ledger ({reason})",
        code="reversal_refused" if reversal else "ledger_rejected",
        http_status=409 if reversal else 422,
        reject_code=reason,
    )


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
        raise ledger_refusal(result, description)
    return result.entry_id


def leg(
    debit_account_id: int, credit_account_id: int, amount_fen: int, code: str
) -> list[PostingSpec]:
    """One posting, or none when the amount is zero (so callers can list legs unconditionally)."""
    return (
        [PostingSpec(debit_account_id, credit_account_id, amount_fen, code)] if amount_fen else []
    )
