"""Test mode's magic inputs: values that force an outcome, in the test book only.

A shop testing its integration needs every branch on demand: a declined application, one
sent to review, a declined or stepped-up checkout. In test mode (docs/api.md, "Test mode")
these inputs force them; every other input goes through the real risk model and checkout risk
(on the test book's own data). The live book never consults this module: only the test
book's context (`fenqi.context.TestModeContext`) wraps its deciders with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select

from fenqi.clock import Clock
from fenqi.credit.checkout import RiskCheck, RiskVerdict
from fenqi.credit.underwriting import Underwriter, UnderwritingDecision
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.parties import customers

# Valid resident ID numbers (GB 11643 check digit), born 1990-01-01 in Beijing Dongcheng, that
# no real person is issued in test mode's world: the application's outcome is forced.
MAGIC_ID_NUMBERS: dict[str, str] = {
    "110101199001019917": "decline",
    "110101199001019925": "refer",  # "review"
    "110101199001019933": "approve",
}
FORCED_APPROVAL_LIMIT_FEN = 2_000_000  # ¥20,000, then clamped to the product's limits

# Order amounts (fen) whose checkout risk verdict is forced.
MAGIC_AMOUNTS: dict[int, RiskVerdict] = {
    40_002: RiskVerdict("decline", "TEST_MODE_DECLINE"),
    40_003: RiskVerdict("step_up", "TEST_MODE_STEP_UP"),
}


def forced_outcome(decision: UnderwritingDecision, outcome: str) -> UnderwritingDecision:
    """`decision` with its outcome forced (a reason code says so)."""
    limit = decision.limit_fen if decision.limit_fen > 0 else FORCED_APPROVAL_LIMIT_FEN
    return replace(
        decision,
        outcome=outcome,
        limit_fen=limit if outcome == "approve" else 0,
        reason_codes=(f"TEST_MODE_{outcome.upper()}",),
    )


@dataclass(frozen=True)
class MagicUnderwriter:
    """The real underwriter, except for the magic ID numbers (test book only)."""

    base: Underwriter
    keys: KeyRing

    def decide(
        self, conn: Connection, clock: Clock, record: dict[str, Any]
    ) -> UnderwritingDecision:
        decision = self.base.decide(conn, clock, record)
        outcome = self._magic(conn, record)
        return decision if outcome is None else forced_outcome(decision, outcome)

    def _magic(self, conn: Connection, record: dict[str, Any]) -> str | None:
        customer_id = int(str(record["applicant_id"]).split(":", 1)[1])
        bidx = conn.execute(
            select(customers.c.id_number_bidx).where(customers.c.id == customer_id)
        ).scalar_one_or_none()
        for number, outcome in MAGIC_ID_NUMBERS.items():
            if bidx == self.keys.blind_index(number, purpose="customers.id_number"):
                return outcome
        return None


def magic_checkout_risk(base: RiskCheck) -> RiskCheck:
    """Checkout risk, except for the magic amounts (test book only)."""

    def check(conn: Connection, facts: dict[str, Any]) -> RiskVerdict:
        forced = MAGIC_AMOUNTS.get(int(facts.get("amount_fen", 0)))
        return forced if forced is not None else base(conn, facts)

    return check
