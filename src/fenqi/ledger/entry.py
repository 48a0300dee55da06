"""What a journal entry asks for, as plain values, and its fingerprint for idempotency.

A posting moves one amount from one account's credit side to another's debit side, so an entry
of postings always balances. The content hash lets a replay with the same id be told apart
from a different request that reuses the id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fenqi.errors import FenqiError

MAX_POSTINGS_PER_ENTRY = 64  # a bound: no business event here moves money among more accounts


class LedgerError(FenqiError):
    code = "ledger_error"


class IdempotencyConflict(LedgerError):
    code = "idempotency_conflict"
    http_status = 409


class EntryKind(StrEnum):
    SINGLE = "single"
    PENDING = "pending"
    POST = "post"
    VOID = "void"
    EXPIRE = "expire"
    REVERSAL = "reversal"


class EntryStatus(StrEnum):
    POSTED = "posted"
    PENDING = "pending"  # an open hold
    RESOLVED = "resolved"  # a hold fully posted, voided or expired
    REJECTED = "rejected"


class RejectCode(StrEnum):
    INSUFFICIENT_CREDIT = "insufficient_credit"  # debit cap (credit limit) would be exceeded
    EXCEEDS_DEBITS = "credits_exceed_debits"  # e.g. paying down a receivable below zero
    EXCEEDS_CREDITS = "debits_exceed_credits"  # e.g. using more credit balance than held
    ACCOUNT_NOT_FOUND = "account_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"


@dataclass(frozen=True, slots=True)
class PostingSpec:
    debit_account_id: int
    credit_account_id: int
    amount_fen: int
    code: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.amount_fen, int) or self.amount_fen <= 0:
            raise LedgerError(
                f"amount_fen: must be a positive integer, got {self.amount_fen!r}",
                code="invalid_amount",
            )
        if self.debit_account_id == self.credit_account_id:
            raise LedgerError("a posting needs two different accounts", code="same_account")


@dataclass(frozen=True, slots=True)
class EntryRequest:
    client_id: str
    currency: str
    postings: tuple[PostingSpec, ...]
    pending: bool = False
    timeout_at: datetime | None = None
    description: str = ""
    ref_kind: str | None = None
    ref_id: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id or len(self.client_id) > 128:
            raise LedgerError("client_id: 1 to 128 characters", code="invalid_client_id")
        if not 1 <= len(self.postings) <= MAX_POSTINGS_PER_ENTRY:
            raise LedgerError(
                f"postings: 1 to {MAX_POSTINGS_PER_ENTRY} per entry, got {len(self.postings)}",
                code="invalid_postings",
            )


@dataclass(frozen=True, slots=True)
class EntryResult:
    entry_id: int
    client_id: str
    kind: EntryKind
    status: EntryStatus
    reject_code: RejectCode | None = None
    replayed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not EntryStatus.REJECTED


def content_hash(kind: EntryKind, payload: dict[str, Any]) -> str:
    canonical = json.dumps({"kind": kind.value, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_payload(req: EntryRequest) -> dict[str, Any]:
    return {
        "currency": req.currency,
        "postings": [
            [p.debit_account_id, p.credit_account_id, p.amount_fen, p.code] for p in req.postings
        ],
        "pending": req.pending,
        "timeout_at": req.timeout_at.isoformat() if req.timeout_at else None,
        "description": req.description,
        "ref": [req.ref_kind, req.ref_id],
    }
