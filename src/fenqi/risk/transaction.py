"""Checkout transaction risk: pure rules. approve / step_up / decline with a reason code.

The service (`transaction_service.assess_transaction`) loads the state from the database and
calls `evaluate_transaction`; this module does no I/O, reads no clock and can be tested alone.

Rules (thresholds in `TransactionRiskPolicy`, amounts in fen):
- velocity: attempts and amount per account and per device in sliding windows;
- identity sharing: one device or phone used by many accounts (fraud rings, account farms);
- new accounts: a large first purchase, or too much exposure in the first days;
- merchant category: high-risk categories step up, blocked categories decline.
The most severe hit decides (decline > step_up > approve); every hit is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

TRANSACTION_AMOUNT_FEN_MAX = 100_000_000  # 1,000,000 yuan: one checkout above this is a bug
KEY_LENGTH_MAX = 128


class TxnOutcome(StrEnum):
    APPROVE = "approve"
    STEP_UP = "step_up"  # ask for a second factor (SMS code, face check) before authorizing
    DECLINE = "decline"


SEVERITY = {TxnOutcome.APPROVE: 0, TxnOutcome.STEP_UP: 1, TxnOutcome.DECLINE: 2}


class TxnReason(StrEnum):
    OK = "T00_OK"
    ACCOUNT_VELOCITY_COUNT = "T01_ACCOUNT_VELOCITY_COUNT"
    ACCOUNT_VELOCITY_AMOUNT = "T02_ACCOUNT_VELOCITY_AMOUNT"
    DEVICE_VELOCITY_COUNT = "T03_DEVICE_VELOCITY_COUNT"
    DEVICE_VELOCITY_AMOUNT = "T04_DEVICE_VELOCITY_AMOUNT"
    DEVICE_SHARED = "T05_DEVICE_SHARED"
    PHONE_SHARED = "T06_PHONE_SHARED"
    NEW_ACCOUNT_FIRST_PURCHASE = "T07_NEW_ACCOUNT_FIRST_PURCHASE"
    NEW_ACCOUNT_EXPOSURE = "T08_NEW_ACCOUNT_EXPOSURE"
    MERCHANT_CATEGORY_HIGH_RISK = "T09_MERCHANT_CATEGORY_HIGH_RISK"
    MERCHANT_CATEGORY_BLOCKED = "T10_MERCHANT_CATEGORY_BLOCKED"


class Subject(StrEnum):
    ACCOUNT = "account"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class VelocityLimit:
    subject: Subject
    window_seconds: int
    count_max: int | None  # attempts allowed in the window, this one included
    amount_fen_max: int | None  # amount allowed in the window, this one included
    action: TxnOutcome


@dataclass(frozen=True, slots=True)
class TransactionRiskPolicy:
    velocity: tuple[VelocityLimit, ...] = (
        VelocityLimit(Subject.ACCOUNT, 3_600, 5, 500_000, TxnOutcome.STEP_UP),
        VelocityLimit(Subject.ACCOUNT, 86_400, 20, 2_000_000, TxnOutcome.DECLINE),
        VelocityLimit(Subject.DEVICE, 3_600, 10, 1_000_000, TxnOutcome.DECLINE),
    )
    device_accounts_step_up: int = 3  # a family may share a tablet; more is suspicious
    device_accounts_decline: int = 5
    phone_accounts_decline: int = 2  # a phone number is real-name registered to one person
    identity_link_window_seconds: int = 30 * 86_400  # accounts seen on the device/phone lately
    new_account_seconds: int = 7 * 86_400
    new_account_first_purchase_fen_max: int = 200_000  # larger first purchase -> step up
    new_account_exposure_fen_max: int = 500_000  # accepted total in the first week
    merchant_category_risk: Mapping[str, str] = field(
        default_factory=lambda: {
            "gift_cards": "high",
            "digital_goods": "high",
            "prepaid_top_up": "high",
            "jewelry": "high",
            "electronics_resale": "high",
            "gambling": "blocked",
            "crypto_assets": "blocked",
            "cash_equivalents": "blocked",
        }
    )
    high_risk_category_step_up_fen: int = 100_000  # step up above 1,000 yuan in a risky category

    def __post_init__(self) -> None:
        for limit in self.velocity:
            assert limit.window_seconds > 0 and limit.action is not TxnOutcome.APPROVE
        windows = [(v.subject, v.window_seconds) for v in self.velocity]
        assert len(windows) == len(set(windows)), "one velocity limit per subject and window"


@dataclass(frozen=True, slots=True)
class TransactionRiskInput:
    """What the checkout knows about one authorization attempt."""

    transaction_ref: str  # the checkout's id for this attempt; a retry reuses it
    account_id: str
    amount_fen: int
    merchant_category: str
    account_opened_at: datetime
    device_id: str | None = None
    phone_key: str | None = None  # a hash of the phone number, never the number itself

    def __post_init__(self) -> None:
        if isinstance(self.amount_fen, bool) or not isinstance(self.amount_fen, int):
            raise TypeError("amount_fen must be an int")
        if not 0 < self.amount_fen <= TRANSACTION_AMOUNT_FEN_MAX:
            raise ValueError(f"amount_fen must be in 1..{TRANSACTION_AMOUNT_FEN_MAX}")
        for name in ("transaction_ref", "account_id", "merchant_category"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 0 < len(value) <= KEY_LENGTH_MAX:
                raise ValueError(f"{name} must be text of 1..{KEY_LENGTH_MAX} characters")
        if self.account_opened_at.tzinfo is None:
            raise ValueError("account_opened_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class TransactionRiskState:
    """The state the rules read; counts and amounts include the attempt being assessed."""

    velocity: Mapping[tuple[Subject, int], tuple[float, float]]  # (count, amount_fen) estimates
    accounts_on_device: int
    accounts_on_phone: int
    prior_accepted_count: int
    prior_accepted_amount_fen: int
    account_age_seconds: float


@dataclass(frozen=True, slots=True)
class TransactionRiskDecision:
    outcome: TxnOutcome
    reason_code: str
    reason_codes: tuple[str, ...]  # every rule that hit, most severe first

    def to_dict(self) -> dict[str, object]:
        return {
            "outcome": str(self.outcome),
            "reason_code": self.reason_code,
            "reason_codes": list(self.reason_codes),
        }


def evaluate_transaction(
    txn: TransactionRiskInput, state: TransactionRiskState, policy: TransactionRiskPolicy
) -> TransactionRiskDecision:
    hits: list[tuple[TxnOutcome, TxnReason]] = []
    reasons = {
        (Subject.ACCOUNT, "count"): TxnReason.ACCOUNT_VELOCITY_COUNT,
        (Subject.ACCOUNT, "amount"): TxnReason.ACCOUNT_VELOCITY_AMOUNT,
        (Subject.DEVICE, "count"): TxnReason.DEVICE_VELOCITY_COUNT,
        (Subject.DEVICE, "amount"): TxnReason.DEVICE_VELOCITY_AMOUNT,
    }
    for limit in policy.velocity:
        observed = state.velocity.get((limit.subject, limit.window_seconds))
        if observed is None:
            continue
        count, amount_fen = observed
        if limit.count_max is not None and count > limit.count_max:
            hits.append((limit.action, reasons[(limit.subject, "count")]))
        if limit.amount_fen_max is not None and amount_fen > limit.amount_fen_max:
            hits.append((limit.action, reasons[(limit.subject, "amount")]))
    if state.accounts_on_device >= policy.device_accounts_decline:
        hits.append((TxnOutcome.DECLINE, TxnReason.DEVICE_SHARED))
    elif state.accounts_on_device >= policy.device_accounts_step_up:
        hits.append((TxnOutcome.STEP_UP, TxnReason.DEVICE_SHARED))
    if state.accounts_on_phone >= policy.phone_accounts_decline:
        hits.append((TxnOutcome.DECLINE, TxnReason.PHONE_SHARED))
    if state.account_age_seconds < policy.new_account_seconds:
        exposure = state.prior_accepted_amount_fen + txn.amount_fen
        if exposure > policy.new_account_exposure_fen_max:
            hits.append((TxnOutcome.DECLINE, TxnReason.NEW_ACCOUNT_EXPOSURE))
        elif (
            state.prior_accepted_count == 0
            and txn.amount_fen > policy.new_account_first_purchase_fen_max
        ):
            hits.append((TxnOutcome.STEP_UP, TxnReason.NEW_ACCOUNT_FIRST_PURCHASE))
    category = policy.merchant_category_risk.get(txn.merchant_category)
    if category == "blocked":
        hits.append((TxnOutcome.DECLINE, TxnReason.MERCHANT_CATEGORY_BLOCKED))
    elif category == "high" and txn.amount_fen > policy.high_risk_category_step_up_fen:
        hits.append((TxnOutcome.STEP_UP, TxnReason.MERCHANT_CATEGORY_HIGH_RISK))
    if not hits:
        return TransactionRiskDecision(TxnOutcome.APPROVE, TxnReason.OK.value, ())
    hits.sort(key=lambda hit: -SEVERITY[hit[0]])  # stable: rule order breaks ties
    codes = tuple(dict.fromkeys(reason.value for _, reason in hits))
    return TransactionRiskDecision(hits[0][0], hits[0][1].value, codes)
