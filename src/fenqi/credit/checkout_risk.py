"""Checkout risk for the order service: the risk engine's transaction rules, as a RiskCheck.

Runs in the caller's transaction. A decline keeps its velocity count only if the caller commits
it: `checkout.authorize_order` marks its refusals after risk ran (`keeps_work`), and the API
commits the assessment with the stored refusal, so probing attempts count.
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
        opened_at = facts.get("account_opened_at")
        if opened_at is None:  # the caller did not pass the account's row: read it
            opened_at = credit.get_account(conn, int(facts["credit_account_id"]))["opened_at"]
        decision = assess_transaction(
            conn,
            clock,
            TransactionRiskInput(
                transaction_ref=str(facts["transaction_ref"]),
                account_id=str(facts["credit_account_id"]),
                amount_fen=int(facts["amount_fen"]),
                merchant_category=str(facts.get("merchant_category") or "general"),
                account_opened_at=utc(opened_at),
                device_id=facts.get("device_id"),
                phone_key=facts.get("phone_key"),
            ),
        )
        return RiskVerdict(str(decision.outcome), decision.reason_code)

    return check
