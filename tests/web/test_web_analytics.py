"""Portfolio analytics on SQLite and PostgreSQL, over purchases and repayments made through the
credit services: three shoppers buy on 6 installments; one pays on time, one never, one pays
once. Arrears buckets, delinquency, roll rates and vintages follow from that by hand."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, select

from fenqi.analytics import load_book, portfolio_summary, roll_rates, vintage_curves
from fenqi.analytics.arrears import AccountHistory, DueLine, Payment, bucket_of, month_ends
from fenqi.analytics.decisions import psi_by_month
from fenqi.clock import FixedClock
from fenqi.credit import service as credit
from fenqi.credit.arrears import arrears_on
from fenqi.credit.plans import offer
from fenqi.products import load_catalog
from fenqi.store.schema.credit import plan_lines

CATALOG = load_catalog(2400)
START = date(2026, 1, 5)
END = date(2026, 4, 30)
PRICE_FEN = 600_000


def test_buckets_and_month_ends() -> None:
    assert [bucket_of(d).value for d in (0, 1, 30, 31, 60, 61, 180, 181, 999)] == [
        "M0",
        "M1",
        "M1",
        "M2",
        "M2",
        "M3",
        "M6",
        "M7+",
        "M7+",
    ]
    assert month_ends(date(2025, 11, 15), date(2026, 2, 10)) == [
        date(2025, 11, 30),
        date(2025, 12, 31),
        date(2026, 1, 31),
        date(2026, 2, 10),
    ]
    with pytest.raises(AssertionError):
        bucket_of(-1)


def test_history_pays_oldest_line_first() -> None:
    lines = [DueLine(date(2026, 2, 10), 100, 90), DueLine(date(2026, 3, 10), 100, 90)]
    history = AccountHistory(lines, [Payment(date(2026, 3, 1), 150, 135)])
    # on 2026-02-20 nothing was paid yet: the February line is 10 days late
    early = history.state(date(2026, 2, 20))
    assert (early.days_past_due, early.overdue_fen, early.principal_unpaid_fen) == (10, 100, 180)
    # the payment covered February and half of March; on 3-20 March is 10 days late
    later = history.state(date(2026, 3, 20))
    assert (later.days_past_due, later.overdue_fen, later.principal_unpaid_fen) == (10, 50, 45)
    assert history.state(date(2026, 3, 5)).days_past_due == 0


def _world(engine: Engine) -> dict[str, int]:
    """Three accounts, each buying 6 installments on START; A pays every line on its due
    date, B pays nothing, C pays only the first line. Returns the account ids."""
    product = CATALOG["huabei"]
    clock = FixedClock.on(START)
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for name in ("A", "B", "C"):
            account = credit.open_credit_account(conn, clock, product, name, 2_000_000)
            plan = offer(product, PRICE_FEN, 6, clock.today(), cap_bp=2400)
            auth = credit.authorize(conn, clock, account, "m1", PRICE_FEN, f"auth-{name}")
            credit.capture(
                conn,
                clock,
                product,
                account,
                "m1",
                auth.hold_entry_id,
                f"o-{name}",
                plan,
                f"cap-{name}",
            )
            ids[name] = account
        lines = conn.execute(
            select(
                plan_lines.c.credit_account_id, plan_lines.c.due_date, plan_lines.c.period
            ).order_by(plan_lines.c.due_date)
        ).all()
    payers = {ids["A"]: 6, ids["C"]: 1}  # how many lines each pays, on their due dates
    for account, due_date, period in lines:
        if period <= payers.get(account, 0) and due_date <= END:
            clock.set(FixedClock.on(due_date).now())
            with engine.begin() as conn:
                owed = credit.account_summary(conn, account, due_date)
                amount = owed["overdue_fen"] + owed["next_due_fen"]
                credit.repay(conn, clock, product, account, amount, f"pay-{account}-{period}")
    return ids


def test_portfolio_figures_roll_rates_and_vintages(db_engine: Engine) -> None:
    ids = _world(db_engine)
    with db_engine.connect() as conn:
        due_dates = sorted(set(conn.execute(select(plan_lines.c.due_date)).scalars()))
        book = load_book(conn, END)
        summary = portfolio_summary(conn, date(2026, 1, 1), END, book)
        rolls = roll_rates(conn, date(2026, 1, 1), END, book)
        vintages = vintage_curves(conn, END, book)
        # the rebuilt state on the last day agrees with the live account summaries
        for account in ids.values():
            live = credit.account_summary(conn, account, END)
            state = book.state(account, END)
            assert state.overdue_fen == live["overdue_fen"]
            assert state.principal_unpaid_fen == live["principal_owed_fen"]
    # the scenario relies on monthly due dates after the purchase month
    assert due_dates[0] > date(2026, 1, 31) and due_dates[2] < END < due_dates[3]
    b_days = (END - due_dates[0]).days
    c_days = (END - due_dates[1]).days
    assert book.state(ids["B"], END).days_past_due == b_days
    assert book.state(ids["C"], END).days_past_due == c_days
    assert b_days >= 61 and 31 <= c_days <= 60  # B is M3, C is M2 on the last day

    assert summary.new_plans == 3 and summary.new_credit_fen == 3 * PRICE_FEN
    assert summary.applications == 0 and summary.approval_rate is None
    b_unpaid = book.state(ids["B"], END).principal_unpaid_fen
    c_unpaid = book.state(ids["C"], END).principal_unpaid_fen
    assert b_unpaid == PRICE_FEN
    assert (summary.m1_plus_accounts, summary.m1_plus_fen) == (2, b_unpaid + c_unpaid)
    assert (summary.m3_plus_accounts, summary.m3_plus_fen) == (1, b_unpaid)
    assert summary.m3_plus_rate == pytest.approx(b_unpaid / summary.outstanding_fen)
    assert summary.lent_fen == 3 * PRICE_FEN
    assert summary.bad_debt_fen == 0 and summary.bad_debt_rate == 0
    by_bucket = {b.bucket: b.accounts for b in summary.buckets}
    assert (by_bucket["M0"], by_bucket["M2"], by_bucket["M3"]) == (1, 1, 1)

    # month ends Jan..Apr: A stays M0; B goes M0>M1>M2>M3; C goes M0>M0>M1>M2
    index = {b: i for i, b in enumerate(rolls.buckets)}
    nonzero = {
        (rolls.buckets[i], rolls.buckets[j]): c
        for i, row in enumerate(rolls.counts)
        for j, c in enumerate(row)
        if c
    }
    assert nonzero == {("M0", "M0"): 4, ("M0", "M1"): 2, ("M1", "M2"): 2, ("M2", "M3"): 1}
    assert rolls.shares[index["M0"]][index["M1"]] == pytest.approx(2 / 6)

    assert [v.cohort for v in vintages] == ["2026-01"]
    only = vintages[0]
    assert only.accounts == 3 and only.months_on_book == [1, 2, 3, 4]
    # ever 30+ days late by month end: B from March, C from April
    assert only.share_ever_30_plus == pytest.approx([0, 0, 1 / 3, 2 / 3])


def test_period_must_be_ordered(db_engine: Engine) -> None:
    with db_engine.connect() as conn, pytest.raises(ValueError):
        portfolio_summary(conn, END, START)


def test_psi_by_month_against_training_deciles() -> None:
    deciles = [float(x) for x in range(510, 600, 10)]  # 9 edges
    even = [505 + 10 * i for i in range(10)] * 5  # 10% in each bin: PSI 0
    shifted = [700] * 50  # everything in the top bin
    points = psi_by_month(
        [{"model_id": "gbm-v0001", "month": "2026-01", "score": s} for s in even]
        + [{"model_id": "gbm-v0001", "month": "2026-02", "score": s} for s in shifted]
        + [{"model_id": "unknown", "month": "2026-02", "score": 1}],
        {"gbm-v0001": deciles},
        min_decisions=50,  # the default (100) leaves months of 50 unmeasured
    )
    assert [(p["month"], p["n"]) for p in points] == [("2026-01", 50), ("2026-02", 50)]
    assert points[0]["psi"] == pytest.approx(0.0, abs=1e-9)
    assert points[1]["psi"] > 0.25


def test_rebuilt_days_past_due_agree_with_the_end_of_day_run(
    db_url: str, db_engine: Engine
) -> None:
    """The end-of-day run ages accounts its own way (from the lines as they stand); the
    dashboard's rebuild from dated repayments must give the same days past due."""
    from fenqi.batch.eod import run_eod
    from fenqi.context import build_context
    from fenqi.settings import Settings
    from fenqi.store.schema.credit import credit_accounts

    ids = _world(db_engine)
    ctx = build_context(Settings(database_url=db_url), FixedClock.on(END, 23), db_engine)
    run_eod(ctx, END)
    with db_engine.connect() as conn:
        stored = {
            account: arrears_on(since, END)[0]
            for account, since in conn.execute(
                select(credit_accounts.c.id, credit_accounts.c.past_due_since)
            ).all()
        }
        book = load_book(conn, END)
    rebuilt = {a: book.state(a, END).days_past_due for a in ids.values()}
    assert rebuilt == {a: stored[a] for a in ids.values()}
    assert sorted(rebuilt.values())[0] == 0 and sorted(rebuilt.values())[-1] >= 61
