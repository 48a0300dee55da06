"""Applications: a shopper asks for credit through a shop; the risk engine decides.

Identity is validated and stored protected, consents are recorded with their text version and
scope, the decision flow decides (outcome, limit, pricing tier, reasons), and an approved
applicant gets a credit account on the product with a limit the product allows. Everything,
the webhook event included, is one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert

from fenqi.bureau import inquiry as bureau_inquiry
from fenqi.credit import customers
from fenqi.credit import service as credit
from fenqi.credit.errors import CreditError
from fenqi.credit.underwriting import Behaviour, application_record
from fenqi.privacy.consent import ConsentGiven, record_consents
from fenqi.store.prepared import Prepared
from fenqi.store.schema.parties import applications
from fenqi.webhooks.outbox import EventType, enqueue

if TYPE_CHECKING:
    from fenqi.context import Context


@dataclass(frozen=True, slots=True)
class Application:
    """An application as the service takes it (the API validates `ApplicationIn` and turns it
    into this; the simulator does the same)."""

    product: str
    name: str
    id_number: str
    phone: str
    income_band: str
    consents: tuple[ConsentGiven, ...]
    behaviour: Behaviour


OUTCOMES = {"approve": "approved", "decline": "declined", "refer": "review"}


_INSERT = Prepared(insert(applications).returning(applications.c.id))  # built once, reused


def apply(conn: Connection, ctx: Context, merchant_id: str, body: Application) -> dict[str, Any]:
    clock = ctx.clock
    product = ctx.product(body.product)
    if not any(c.kind == "bureau_inquiry" for c in body.consents):
        raise CreditError(
            "consents: a credit decision needs consent to a bureau inquiry", code="consent_required"
        )
    ident = customers.check_identity(body.name, body.id_number, body.phone, clock.today())
    customer_id, _ = customers.register(conn, clock, ctx.keys, ident, body.income_band, merchant_id)
    record_consents(
        conn, clock, customer_id, list(body.consents), channel=f"merchant:{merchant_id}"
    )
    existing = credit.account_of(conn, str(customer_id), product.name)
    bureau = bureau_inquiry.for_application(conn, ctx, customer_id, ident.id_number)
    record = application_record(
        customer_id,
        ident,
        body.income_band,
        body.behaviour,
        clock.today(),
        existing_customer=existing is not None,
    )
    if bureau is not None:  # the bureau's attributes replace the shop-sent flag
        bureau.apply_to(record)
    decision = ctx.underwriter.decide(conn, clock, record)
    if bureau is not None:  # an outage gives the configured fallback
        decision = bureau.decide(decision)
    outcome = OUTCOMES.get(decision.outcome, "review")
    tier = decision.pricing_tier if product.tier(decision.pricing_tier) else None
    limit = decision.limit_fen
    if outcome == "approved":
        found = product.tier(tier) if tier else None
        ceiling = found.limit_max_fen if found else product.limits.max_fen
        limit = max(product.limits.min_fen, min(limit, ceiling))
    account_id = existing
    decided_limit = limit if outcome == "approved" else None
    account_state: str | None = None
    if outcome == "approved" and existing is None:
        account_id = credit.open_credit_account(conn, clock, product, str(customer_id), limit, tier)
        account_state = "opened"
    elif outcome == "approved":
        # A re-application does not change an open account: its limit and tier stay as they
        # are (a limit changes through a limit review), and the response says so.
        assert existing is not None
        current = credit.get_account(conn, existing)
        limit, tier, account_state = int(current["limit_fen"]), current["tier"], "existing"
    application_id = int(
        _INSERT.run(
            conn,
            {
                "customer_id": customer_id,
                "merchant_id": merchant_id,
                "product": product.name,
                "outcome": outcome,
                "tier": tier,
                "limit_fen": limit if outcome == "approved" else None,
                "reasons": json.dumps(list(decision.reason_codes)),
                "decision_id": decision.decision_id,
                "credit_account_id": account_id if outcome == "approved" else None,
                "created_at": clock.now(),
            },
        ).scalar_one()
    )
    out = {
        "application_id": application_id,
        "customer_id": customer_id,
        "outcome": outcome,
        "credit_account_id": account_id if outcome == "approved" else None,
        "product": product.name,
        "tier": tier,
        "limit_fen": limit if outcome == "approved" else None,
        "reasons": list(decision.reason_codes),
        "decision_id": decision.decision_id,
        # what happened to the account: "opened" now, "existing" (kept as it was: limit_fen is
        # its real limit, decision_limit_fen what this decision alone would have granted)
        "account": account_state,
        "decision_limit_fen": decided_limit,
    }
    enqueue(conn, clock, merchant_id, EventType.APPLICATION_DECIDED, {"application": out})
    return out
