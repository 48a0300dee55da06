"""Monthly reporting from the ledger and arrears, on SQLite and PostgreSQL: records, grace not
late, first-negative notice, corrections, files validated and accepted by the bureau over
HTTP, reconciliation against the ledger."""

from __future__ import annotations

from datetime import date

from sqlalchemy import insert, select, update

from fenqi.bureau import pboc
from fenqi.bureau.client import HttpBureauClient
from fenqi.bureau.records import ReportStatus
from fenqi.bureau.reporting import build_records, ledger_owed_as_of, reconcile, write_files
from fenqi.credit.customers import check_identity, register
from fenqi.privacy.audit import list_entries
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.bureau import bureau_notices, bureau_records
from fenqi.store.schema.credit import plan_lines
from fenqi.store.schema.parties import merchants
from support.api_server import id_number
from support.billing_world import World
from support.bureau_server import TOKEN_OF, running_bureau


def world_with_customer(db_url: str) -> tuple[World, int]:
    w = World(db_url, date(2026, 1, 2), product="renxingfu")
    w.ctx.__dict__["keys"] = KeyRing.generate()
    with w.ctx.engine.begin() as conn:
        conn.execute(
            insert(merchants).values(
                id="m1",
                name="m1",
                category="electronics",
                currency="CNY",
                status="active",
                created_at=w.clock.now(),
            )
        )
        ident = check_identity("李四", id_number(seq="411"), "13900001111", w.clock.today())
        customer_id, _ = register(conn, w.clock, w.ctx.keys, ident, "6k_10k", "m1")
    return w, w.open(limit_fen=1_000_000, customer=str(customer_id))


def run(w: World, as_of: date):  # type: ignore[no-untyped-def]
    grace = {name: p.billing.grace_days for name, p in w.ctx.catalog.items()}
    with w.ctx.engine.begin() as conn:
        r = build_records(conn, w.clock, w.ctx.keys, as_of, grace_of=grace)
        write_files(r, w.clock)
    return r


def test_monthly_records_follow_the_ledger_and_arrears(db_url: str, tmp_path: object) -> None:
    w, account = world_with_customer(db_url)
    w.buy(account, 300_000, 3)
    with w.ctx.engine.connect() as conn:
        first_due = conn.execute(
            select(plan_lines.c.due_date)
            .where(plan_lines.c.credit_account_id == account)
            .order_by(plan_lines.c.due_date)
            .limit(1)
        ).scalar_one()
    w.go_to(date(2026, 2, 1))
    jan = run(w, date(2026, 1, 31))
    [rec] = jan.records
    assert rec.status is ReportStatus.CURRENT and rec.dpd == 0
    with w.ctx.engine.connect() as conn:
        owed, _ = ledger_owed_as_of(conn, date(2026, 1, 31))
        assert rec.balance_minor == owed[account] >= 300_000
        assert reconcile(conn, date(2026, 1, 31)) == []

    # within the product's grace period (3 days) an unpaid amount is not reported late
    in_grace = date.fromordinal(first_due.toordinal() + 2)
    w.go_to(date.fromordinal(in_grace.toordinal() + 1))
    grace_run = run(w, in_grace)
    assert grace_run.records[0].status is ReportStatus.CURRENT
    assert grace_run.notices == 0

    month_end = date(first_due.year, first_due.month + 1, 1)
    w.go_to(month_end)
    as_of = date.fromordinal(month_end.toordinal() - 1)
    late = run(w, as_of)
    [rec] = late.records
    assert rec.status is ReportStatus.DELINQUENT
    assert rec.dpd == (as_of - first_due).days
    assert 0 < rec.past_due_minor < rec.balance_minor
    # earlier months' records (the mid-February one is this month's, not history)
    assert [p.month for p in rec.history] == ["2026-01"]
    # the shopper was notified before this first negative record went out, and it is audited
    assert late.notices == 1
    with w.ctx.engine.connect() as conn:
        assert conn.execute(select(bureau_notices.c.month)).scalar_one() == rec.month
        assert len(list_entries(conn, action="bureau.negative_notice")) == 1
        assert reconcile(conn, as_of) == []
    fields = dict(zip(pboc.FIELDS, late.files["pboc"].split("\n")[1].split("|"), strict=True))
    assert fields["account_status"] == "2" and fields["days_past_due"] == str(rec.dpd)
    assert fields["repayment_status_24m"].endswith("N1")

    # a record changed after it was reported: reconciliation sees it; a rerun corrects it
    with w.ctx.engine.begin() as conn:
        conn.execute(
            update(bureau_records).where(bureau_records.c.as_of == as_of).values(balance_fen=1)
        )
        [diff] = reconcile(conn, as_of)
        assert (diff.reported_fen, diff.ledger_fen) == (1, rec.balance_minor)
    again = run(w, as_of)
    assert again.corrections == 1 and again.records[0].correction
    assert again.notices == 0  # noticed once
    line = again.files["pboc"].split("\n")[1]
    assert dict(zip(pboc.FIELDS, line.split("|"), strict=True))["correction"] == "1"
    with w.ctx.engine.connect() as conn:
        assert reconcile(conn, as_of) == []

    # the bureau accepts the file over HTTP and shows the account to another lender
    with running_bureau(db_url, w.clock) as bureau:
        ours = HttpBureauClient(bureau.url, TOKEN_OF["fenqi"], w.clock)
        assert ours.submit("pboc", again.files["pboc"]).records == 1
        from fenqi.bureau.server.app import subject_report

        with bureau.engine.connect() as conn:
            report = subject_report(conn, rec.subject_id, w.clock.now())
        [acct] = report.accounts
        assert (acct.lender, acct.status, acct.balance_minor) == (
            "fenqi",
            "delinquent",
            rec.balance_minor,
        )


def test_usd_accounts_go_to_a_metro2_file(db_url: str) -> None:
    w = World(db_url, date(2026, 1, 2), product="affirm_loan")
    w.ctx.__dict__["keys"] = KeyRing.generate()
    with w.ctx.engine.begin() as conn:
        conn.execute(
            insert(merchants).values(
                id="m1",
                name="m1",
                category="electronics",
                currency="USD",
                status="active",
                created_at=w.clock.now(),
            )
        )
        ident = check_identity("John Smith", id_number(seq="412"), "13900001112", w.clock.today())
        customer_id, _ = register(conn, w.clock, w.ctx.keys, ident, "6k_10k", "m1")
    account = w.open(limit_fen=500_000, customer=str(customer_id))
    w.buy(account, 120_050, 3)
    w.go_to(date(2026, 2, 1))
    r = run(w, date(2026, 1, 31))
    assert set(r.files) == {"metro2"}
    lines = r.files["metro2"].rstrip("\n").split("\n")
    assert [len(x) for x in lines] == [426, 426, 426]
    [rec] = r.records
    assert lines[1][154:163] == f"{rec.balance_minor // 100:09d}"  # whole dollars
    assert lines[1][123:125] == "11" and lines[1][231:256].rstrip() == "SMITH"
    with w.ctx.engine.connect() as conn:
        assert reconcile(conn, date(2026, 1, 31)) == []
