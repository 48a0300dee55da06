"""Disputes (异议) of reported records, on SQLite and PostgreSQL: only one's own account, the
statutory answer date, the dispute flag in the next report, evidence from the ledger, a
correction derived again (or fixed by the investigator) and sent to the bureau, audited."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from bureau.test_reporting import run, world_with_customer
from fenqi.bureau import pboc
from fenqi.bureau.client import HttpBureauClient
from fenqi.bureau.corrections import DisputeError
from fenqi.bureau.disputes import Actor, list_disputes, open_dispute, resolve_dispute
from fenqi.privacy.audit import list_entries
from fenqi.store.schema.bureau import bureau_records
from fenqi.store.schema.credit import credit_accounts, plan_lines
from support.bureau_server import TOKEN_OF, running_bureau


def _late_record(db_url: str):  # type: ignore[no-untyped-def]
    w, account = world_with_customer(db_url)
    w.buy(account, 300_000, 3)
    with w.ctx.engine.connect() as conn:
        first_due = conn.execute(
            select(plan_lines.c.due_date)
            .where(plan_lines.c.credit_account_id == account)
            .order_by(plan_lines.c.due_date)
            .limit(1)
        ).scalar_one()
        customer = int(
            conn.execute(
                select(credit_accounts.c.customer_ref).where(credit_accounts.c.id == account)
            ).scalar_one()
        )
    month_end = date(first_due.year, first_due.month + 1, 1)
    w.go_to(month_end)
    as_of = month_end - timedelta(days=1)
    late = run(w, as_of)
    assert late.records[0].dpd > 0
    return w, account, customer, as_of


def _fields(text: str) -> dict[str, str]:
    return dict(zip(pboc.FIELDS, text.split("\n")[1].split("|"), strict=True))


def test_a_dispute_flags_the_account_and_a_correction_goes_to_the_bureau(db_url: str) -> None:
    w, account, customer, as_of = _late_record(db_url)
    shopper = Actor("customer", str(customer), "api")
    grace = {n: p.billing.grace_days for n, p in w.ctx.catalog.items()}
    with w.ctx.engine.begin() as conn:
        # someone else's account: not found, as if it did not exist
        with pytest.raises(DisputeError) as refused:
            open_dispute(
                conn,
                w.clock,
                shopper,
                account_id=account,
                item="status",
                claim="x",
                customer_id=customer + 1,
            )
        assert refused.value.code == "not_found"
        d = open_dispute(
            conn,
            w.clock,
            shopper,
            account_id=account,
            item="status",
            claim="I paid on time; the payment was applied late",
            customer_id=customer,
        )
    assert d["status"] == "open" and d["record_as_of"] == as_of.isoformat()
    assert d["due_on"] == (w.clock.today() + timedelta(days=20)).isoformat()
    with w.ctx.engine.begin() as conn:
        with pytest.raises(DisputeError) as twice:
            open_dispute(
                conn,
                w.clock,
                shopper,
                account_id=account,
                item="balance",
                claim="again",
                customer_id=customer,
            )
        assert twice.value.code == "dispute_exists"
        assert (
            list_disputes(conn, overdue_on=w.clock.today() + timedelta(days=21))[0]["id"] == d["id"]
        )
        assert list_disputes(conn, overdue_on=w.clock.today()) == []

    # the next report carries the dispute flag (PBOC DISPUTE)
    next_end = date(as_of.year, as_of.month + 2, 1) - timedelta(days=1)  # the next month's end
    w.go_to(next_end + timedelta(days=1))
    flagged = run(w, next_end)
    assert _fields(flagged.files["pboc"])["special_event"] == "DISPUTE"

    staff = Actor("staff", "7", "api")
    # nothing changed in the ledger and no fix given: nothing to correct; the dispute stays open
    with pytest.raises(DisputeError) as nothing, w.ctx.engine.begin() as conn:
        resolve_dispute(
            conn, w.clock, w.ctx.keys, staff, d["id"], "corrected", "checked", grace_of=grace
        )  # a refusal: the caller's transaction rolls back
    assert nothing.value.code == "dispute_nothing_to_correct"
    with w.ctx.engine.connect() as conn:
        assert list_disputes(conn, status="open")[0]["id"] == d["id"]

    # the investigation finds the payment was on time: the record is corrected and sent
    # the bureau on its own database (on SQLite another file: fenqi's transaction is open)
    with running_bureau(db_url.replace("fenqi.sqlite", "bureau.sqlite"), w.clock) as bureau:
        client = HttpBureauClient(bureau.url, TOKEN_OF["fenqi"], w.clock)
        with w.ctx.engine.begin() as conn:
            done = resolve_dispute(
                conn,
                w.clock,
                w.ctx.keys,
                staff,
                d["id"],
                "corrected",
                "repayment 1 was received before the due date and applied late",
                grace_of=grace,
                client=client,
                fix={"status": "current", "dpd": 0, "past_due_fen": 0},
            )
    assert done["status"] == "corrected" and done["correction_sent"] == "sent"
    assert done["evidence"]["reported"]["status"] == "delinquent"
    assert done["evidence"]["ledger_balance_fen"] > 0
    with w.ctx.engine.connect() as conn:
        row = conn.execute(
            select(bureau_records).where(
                bureau_records.c.credit_account_id == account, bureau_records.c.as_of == as_of
            )
        ).one()
        assert (row.status, row.dpd, row.correction) == ("current", 0, True)
        actions = [e.action for e in list_entries(conn, target_kind="credit_account")]
        assert "bureau.dispute_opened" in actions and "bureau.dispute_corrected" in actions
    # closed: the flag is gone from the next record of that account, and it cannot be resolved again
    with w.ctx.engine.begin() as conn:
        with pytest.raises(DisputeError) as again:
            resolve_dispute(conn, w.clock, w.ctx.keys, staff, d["id"], "confirmed", "x")
        assert again.value.code == "dispute_closed"
    rerun = run(w, next_end)
    assert _fields(rerun.files["pboc"])["special_event"] == ""
    # a rerun of the disputed month keeps the investigator's correction (no revert)
    again = run(w, as_of)
    assert again.records[0].status.value == "current" and again.corrections == 0


def test_a_dispute_is_confirmed_with_its_reason_and_a_late_date_cleared_is_a_correction(
    db_url: str,
) -> None:
    w, account, _customer, as_of = _late_record(db_url)
    staff = Actor("staff", "7", "console")
    grace = {n: p.billing.grace_days for n, p in w.ctx.catalog.items()}
    with w.ctx.engine.begin() as conn:
        with pytest.raises(DisputeError) as no_record:
            open_dispute(
                conn,
                w.clock,
                staff,
                account_id=account,
                item="balance",
                claim="x",
                record_as_of=as_of - timedelta(days=3),
            )
        assert no_record.value.code == "dispute_invalid"
        first = open_dispute(
            conn, w.clock, staff, account_id=account, item="balance", claim="the balance is wrong"
        )
        confirmed = resolve_dispute(
            conn,
            w.clock,
            w.ctx.keys,
            staff,
            first["id"],
            "confirmed",
            "the ledger shows the balance as reported",
        )
    assert confirmed["status"] == "confirmed" and confirmed["correction_sent"] == ""
    assert confirmed["outcome_note"] == "the ledger shows the balance as reported"

    # a wrongly kept late date is cleared at the source: the record derived again is current
    with w.ctx.engine.begin() as conn:
        second = open_dispute(
            conn, w.clock, staff, account_id=account, item="status", claim="not late"
        )
        conn.execute(
            update(credit_accounts)
            .where(credit_accounts.c.id == account)
            .values(past_due_since=None)
        )
        done = resolve_dispute(
            conn,
            w.clock,
            w.ctx.keys,
            staff,
            second["id"],
            "corrected",
            "late date cleared",
            grace_of=grace,
        )
    assert done["correction_sent"] == "pending"  # no bureau client: sent with the next file
    with w.ctx.engine.connect() as conn:
        status = conn.execute(
            select(bureau_records.c.status).where(
                bureau_records.c.credit_account_id == account, bureau_records.c.as_of == as_of
            )
        ).scalar_one()
    assert status == "current"
