"""Statements disclose each plan's annualized rate (IRR, PBOC 2021 No. 3), as quotes do."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from fenqi.credit import views
from fenqi.store.schema.credit import installment_plans
from support.billing_world import World


def test_each_statement_line_carries_its_plans_annualized_rate(db_url: str) -> None:
    w = World(db_url, date(2026, 1, 2), product="huabei")
    account = w.open()
    w.buy(account, 120_000, 6)
    with w.ctx.engine.connect() as conn:
        rate = conn.execute(select(installment_plans.c.nominal_rate_bp)).scalar_one()
        found = views.statements(conn, account)
    assert rate > 0
    assert found and all(line["annualized_rate_bp"] == rate for s in found for line in s["lines"])
