"""Checkout risk for the order service: the risk engine's transaction rules, as a RiskCheck.

Runs in the caller's transaction. A decline keeps its velocity count only if the caller commits
it; the API commits the assessment in its own transaction first, so probing attempts count.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from fenqi.clock import Clock
from fenqi.credit import service as credit
from fenqi.credit.checkout import RiskCheck, RiskVerdict
from fenqi.store.times import utc


def risk_engine_check(clock: Clock) -> RiskCheck:
    from fenqi.risk.transaction import TransactionRiskInput
    from fenqi.risk.transaction_service import assess_transaction

    def check(conn: Connection, facts: dict[str, Any]) -> RiskVerdict:
        account = credit.get_account(conn, int(facts["credit_account_id"]))
        decision = assess_transaction(
            conn,
            clock,
            TransactionRiskInput(
                transaction_ref=str(facts["transaction_ref"]),
                account_id=str(facts["credit_account_id"]),
                amount_fen=int(facts["amount_fen"]),
                merchant_category=str(facts.get("merchant_category") or "general"),
                account_opened_at=utc(account["opened_at"]),
                device_id=facts.get("device_id"),
                phone_key=facts.get("phone_key"),
            ),
        )
        return RiskVerdict(str(decision.outcome), decision.reason_code)

    return check
