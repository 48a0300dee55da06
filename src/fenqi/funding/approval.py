"""A partner's own credit decision on a loan a program offers it.

A program with `partner_approval = true` asks each partner funder (not own capital) before the
loan is split: by the rule set in the funder's file (`[approval] mode = "rules"`), or by an HTTP
call to the partner's endpoint (`mode = "http"`, `url`, `timeout_ms`) whose failure or silence
counts as the funder's `on_timeout` ("decline" by default: the program's fallback runs). A
partner that declines is treated like one that is full: the program's fallback decides
(platform alone, next program, or decline with the program's code).

The call runs inside the caller's transaction (the capture's), so its timeout bounds how long
the capture holds its locks: keep it short (800 ms by default). `PartnerSimulator` below is a
small partner endpoint for the demo and the tests (`fenqi funding partner-sim`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from fenqi.funding.allocation import Borrower
from fenqi.funding.model import ApprovalMode, ApprovalRules, Funder


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    reason: str = ""
    source: str = "rules"  # rules | http | timeout | error | none


class Approver(Protocol):
    def __call__(
        self, funder: Funder, borrower: Borrower, amount_fen: int, plan_id: int
    ) -> Decision: ...


def rule_reasons(rules: ApprovalRules, borrower: Borrower, amount_fen: int) -> list[str]:
    """Why a partner's rule set declines the loan (empty: approved). Pure."""
    out = []
    if rules.max_amount_fen is not None and amount_fen > rules.max_amount_fen:
        out.append(f"its part {amount_fen} is over {rules.max_amount_fen}")
    if rules.max_terms is not None and borrower.terms > rules.max_terms:
        out.append(f"term {borrower.terms} over {rules.max_terms}")
    if rules.min_age is not None and (borrower.age is None or borrower.age < rules.min_age):
        out.append(f"age under {rules.min_age} or unknown")
    if borrower.tier is not None and borrower.tier in rules.decline_tiers:
        out.append(f"tier {borrower.tier!r} declined")
    if borrower.id_prefix and any(
        borrower.id_prefix.startswith(p) for p in rules.decline_region_prefixes
    ):
        out.append("region declined")
    return out


def request_body(
    funder: Funder, borrower: Borrower, amount_fen: int, plan_id: int
) -> dict[str, Any]:
    """What a partner's endpoint is sent: the loan, never the borrower's identity (the region
    is the ID number's first six digits, the age a number)."""
    return {
        "funder": funder.id,
        "loan_id": str(plan_id),
        "amount_fen": amount_fen,
        "currency": funder.currency,
        "product": borrower.product,
        "terms": borrower.terms,
        "tier": borrower.tier,
        "score_band": borrower.score_band,
        "region": borrower.id_prefix,
        "age": borrower.age,
    }


@dataclass
class PartnerApprover:
    """The default approver: a funder's rule set, or a call to its endpoint."""

    client: httpx.Client | None = None

    def __call__(
        self, funder: Funder, borrower: Borrower, amount_fen: int, plan_id: int
    ) -> Decision:
        approval = funder.approval
        if approval.mode is ApprovalMode.NONE:
            return Decision(True, source="none")
        if approval.mode is ApprovalMode.RULES:
            reasons = rule_reasons(approval.rules, borrower, amount_fen)
            return Decision(not reasons, "; ".join(reasons), "rules")
        assert approval.url is not None
        fallback = approval.on_timeout == "approve"
        client = self.client or httpx.Client()
        try:
            r = client.post(
                approval.url,
                json=request_body(funder, borrower, amount_fen, plan_id),
                timeout=approval.timeout_ms / 1000,
            )
            r.raise_for_status()
            body = r.json()
            approved = body.get("approved")
            if not isinstance(approved, bool):
                return Decision(fallback, "partner answer has no boolean 'approved'", "error")
            return Decision(approved, str(body.get("reason") or ""), "http")
        except httpx.TimeoutException:
            return Decision(fallback, f"no answer within {approval.timeout_ms} ms", "timeout")
        except (httpx.HTTPError, ValueError) as exc:
            return Decision(fallback, f"partner call failed: {type(exc).__name__}", "error")
        finally:
            if self.client is None:
                client.close()


# ------------------------------------------------------------------ the partner simulator


class SimLoan(BaseModel):
    """What the simulator reads of a request (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")
    funder: str = Field(max_length=32)
    loan_id: str = Field(max_length=32)
    amount_fen: int = Field(gt=0)
    terms: int = Field(ge=1, le=60)
    product: str = Field(max_length=64)
    region: str | None = Field(default=None, max_length=6)
    age: int | None = None


def partner_simulator(
    max_amount_fen: int | None = None,
    decline_regions: tuple[str, ...] = (),
    hang: bool = False,
) -> Any:
    """A small partner bank's decision endpoint (FastAPI): POST /decisions with the loan,
    answers {"approved": bool, "reason": str}. Declines parts over `max_amount_fen` and
    borrowers whose region starts with one of `decline_regions`; `hang` never answers (to show
    the timeout and fallback). GET /decisions lists what it was asked (for the demo)."""
    import asyncio

    from fastapi import FastAPI

    app = FastAPI(title="fenqi partner simulator")
    seen: list[dict[str, Any]] = []

    @app.post("/decisions")
    async def decide(loan: SimLoan) -> dict[str, Any]:
        if hang:
            await asyncio.Event().wait()
        reasons = []
        if max_amount_fen is not None and loan.amount_fen > max_amount_fen:
            reasons.append(f"amount over {max_amount_fen}")
        if loan.region and any(loan.region.startswith(p) for p in decline_regions):
            reasons.append("region outside the bank's appetite")
        answer = {"approved": not reasons, "reason": "; ".join(reasons)}
        seen.append({**loan.model_dump(), **answer})
        return answer

    @app.get("/decisions")
    def asked() -> list[dict[str, Any]]:
        return seen

    return app
