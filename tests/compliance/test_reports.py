"""Regulatory reports from the ledger, on SQLite and PostgreSQL: figures add up to the ledger's
totals, agree with what was reported to the bureau, and a rerun for an old month after later
payments gives the same figures."""

from __future__ import annotations

from bureau.test_disputes import _late_record
from fenqi.bureau.disputes import Actor, open_dispute
from fenqi.bureau.reporting import ledger_owed_as_of
from fenqi.compliance import reports


def test_reports_add_up_to_the_ledger_and_are_reproducible(db_url: str) -> None:
    w, account, customer, as_of = _late_record(db_url)
    grace = {n: p.billing.grace_days for n, p in w.ctx.catalog.items()}
    month = as_of.strftime("%Y-%m")
    with w.ctx.engine.begin() as conn:
        open_dispute(
            conn,
            w.clock,
            Actor("customer", str(customer), "api"),
            account_id=account,
            item="balance",
            claim="wrong",
            customer_id=customer,
        )

    def build(name: str) -> reports.Report:
        with w.ctx.engine.connect() as conn:
            return reports.build(conn, name, month, grace_of=grace, cap_fen=30_000_000)

    overdue = build("overdue")
    with w.ctx.engine.connect() as conn:
        owed, _ = ledger_owed_as_of(conn, as_of)
    assert (
        overdue.totals["ledger_owed_fen"]
        == sum(owed.values())
        == sum(r["balance_fen"] for r in overdue.rows)
    )
    [row] = overdue.rows
    assert (row["band"], row["five_class"]) == ("dpd_1_30", "special_mention")
    assert row["balance_fen"] == owed[account]
    bureau = build("bureau")
    assert bureau.totals["records"] == 1 and bureau.totals["reconciliation_differences"] == 0
    [reported] = bureau.rows
    assert reported["status"] == "delinquent" and reported["balance_fen"] == row["balance_fen"]
    from sqlalchemy import select

    from fenqi.store.schema.bureau import bureau_records

    with w.ctx.engine.connect() as conn:
        past_due = conn.execute(select(bureau_records.c.past_due_fen)).scalar_one()
    assert row["past_due_fen"] == past_due

    rates = build("rates")
    assert rates.totals["plans"] == 0  # the purchase was in January
    january = as_of.replace(month=1, day=31).strftime("%Y-%m")
    with w.ctx.engine.connect() as conn:
        jan = reports.build(conn, "rates", january, grace_of=grace, cap_fen=1)
    assert jan.totals["plans"] == 1 and jan.totals["principal_fen_CNY"] == 300_000
    assert sum(r["plans"] for r in jan.rows) == 1

    exposure = build("exposure")
    assert exposure.totals["balance_fen"] == exposure.totals["ledger_owed_fen"]
    with w.ctx.engine.connect() as conn:
        capped = reports.build(conn, "exposure", month, grace_of=grace, cap_fen=1)
    assert capped.totals["over_cap"] == 1

    disputes = build("disputes")
    assert disputes.totals["opened"] == 0  # opened in the following month (today)
    with w.ctx.engine.connect() as conn:
        now = reports.build(
            conn, "disputes", w.clock.today().strftime("%Y-%m"), grace_of=grace, cap_fen=1
        )
    assert now.rows == [{"kind": "bureau_dispute", "what": "balance", "status": "open", "count": 1}]
    assert now.csv().splitlines()[0] == "kind,what,status,count"

    # everything paid later: the old month's report does not change
    w.pay(account, past_due)
    assert build("overdue").rows == overdue.rows
