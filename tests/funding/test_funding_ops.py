"""Funding operations on SQLite and PostgreSQL: loan-level partner files (CSV and Parquet)
agree with the ledger to the fen and a tampered file is refused naming the row; partner
payouts pay once under concurrency; monthly statements; the end-of-day settlement step."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

from fenqi.clock import FixedClock
from fenqi.funding.allocation import CashKind
from fenqi.funding.files import PartnerFileError, export_files, verify_file
from fenqi.funding.payouts import (
    FunderPaymentError,
    monthly_statement,
    pay_funder,
    receive_from_funder,
)
from fenqi.funding.service import allocate_plan, apply_cash
from fenqi.funding.settlement import settle_day
from fenqi.ledger.service import reconcile, trial_balance
from funding.test_funding_service import CATALOG, GOOD, sell

DAY = date(2026, 1, 2)
NEXT = DAY + timedelta(days=1)


@pytest.fixture(autouse=True)
def _funding_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests allocate and split by hand (allocate_plan, apply_cash on their own catalogs):
    the credit code's own funding calls (funding/wiring.py) are off here."""
    from fenqi.funding import wiring

    monkeypatch.setattr(wiring, "_configured", lambda: None)


def books(engine: Engine) -> list[int]:
    """Three co-lent plans on DAY; on NEXT a repayment with income on the first and a charge-off
    on the second."""
    clock = FixedClock.on(DAY)
    plans = []
    with engine.begin() as conn:
        for i, amount in enumerate((100_001, 50_000, 30_000)):
            acct, plan = sell(conn, clock, f"s{i}", amount)
            allocate_plan(
                conn,
                clock,
                CATALOG,
                plan_id=plan,
                credit_account_id=acct,
                principal_fen=amount,
                currency="CNY",
                borrower=GOOD,
                client_id=f"cap-{i}",
            )
            plans.append(plan)
        settle_day(conn, clock, CATALOG, DAY)
    clock = FixedClock.on(NEXT)
    with engine.begin() as conn:
        apply_cash(
            conn,
            clock,
            CATALOG,
            plan_id=plans[0],
            kind=CashKind.REPAYMENT,
            principal_fen=10_000,
            income_fen={"fee": 900},
            period_days=30,
            client_id="r1",
        )
        apply_cash(
            conn,
            clock,
            CATALOG,
            plan_id=plans[1],
            kind=CashKind.CHARGE_OFF,
            principal_fen=50_000,
            client_id="c1",
        )
        settle_day(conn, clock, CATALOG, NEXT)
    return plans


def test_partner_files_agree_with_the_ledger_and_refuse_tampering(
    db_engine: Engine, tmp_path: Path
) -> None:
    plans = books(db_engine)
    with db_engine.connect() as conn:
        out = export_files(conn, "bank_example", NEXT, tmp_path)
        assert out.loans == 3
        frame = pl.read_csv(out.csv_path)
        assert frame["record_type"].to_list() == ["loan", "loan", "loan", "total"]
        first = frame.row(0, named=True)
        assert first["loan_id"] == plans[0] and first["disbursement_fen"] == 50_000
        assert first["principal_repaid_fen"] == 5_000 and first["balance_fen"] == 45_000
        assert first["income_repaid_fen"] > 0
        second = frame.row(1, named=True)
        assert second["status"] == "charged_off" and second["balance_fen"] == 0
        assert out.totals["disbursement_fen"] == 50_000 + 25_000 + 15_000
        assert pl.read_parquet(out.parquet_path).height == 4
        for path in (out.csv_path, out.parquet_path):
            ok = verify_file(conn, path)
            assert ok["agrees_with_ledger"] and ok["loans"] == 3
        # a file of the day before: the balances then, no repayments
        before = export_files(conn, "bank_example", DAY, tmp_path)
        assert before.totals["balance_fen"] == 90_000
        assert before.totals["principal_repaid_fen"] == 0
        assert verify_file(conn, before.csv_path)["agrees_with_ledger"]

        # one row's balance changed and the control row adjusted to match: the ledger refuses
        tampered = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 2)
            .then(pl.col("balance_fen") + 1)
            .when(pl.int_range(pl.len()) == 3)
            .then(pl.col("balance_fen") + 1)
            .otherwise(pl.col("balance_fen"))
            .alias("balance_fen")
        )
        bad = tmp_path / "tampered.csv"
        tampered.write_csv(bad)
        with pytest.raises(PartnerFileError) as err:
            verify_file(conn, bad)
        assert (
            f"row 3 (loan {plans[2]}): balance_fen is 15001 in the file, 15000 in the ledger"
            in (err.value.message)
        )
        assert err.value.detail["row"] == 3
        # the control row not matching its rows
        bad_total = frame.with_columns(
            pl.when(pl.col("record_type") == "total")
            .then(pl.col("principal_repaid_fen") - 1)
            .otherwise(pl.col("principal_repaid_fen"))
            .alias("principal_repaid_fen")
        )
        bad_total.write_parquet(tmp_path / "bad_total.parquet")
        with pytest.raises(PartnerFileError, match="control total row: principal_repaid_fen"):
            verify_file(conn, tmp_path / "bad_total.parquet")
        # a loan dropped from the file (and from the totals)
        dropped = frame.filter(pl.int_range(pl.len()) != 0)
        dropped = dropped.with_columns(
            pl.when(pl.col("record_type") == "total")
            .then(pl.lit("2"))
            .otherwise(pl.col("loan_id").cast(pl.Utf8))
            .alias("loan_id"),
            *[
                pl.when(pl.col("record_type") == "total")
                .then(pl.col(c).filter(pl.col("record_type") == "loan").sum())
                .otherwise(pl.col(c))
                .alias(c)
                for c in (
                    "disbursement_fen",
                    "balance_fen",
                    "principal_repaid_fen",
                    "income_repaid_fen",
                )
            ],
        )
        dropped.write_csv(tmp_path / "dropped.csv")
        with pytest.raises(PartnerFileError, match=f"loan {plans[0]} is missing"):
            verify_file(conn, tmp_path / "dropped.csv")


def test_partner_payouts_pay_once_and_statements_add_up(db_engine: Engine) -> None:
    books(db_engine)
    clock = FixedClock.on(NEXT)

    def pay(i: int) -> int:
        try:
            with db_engine.begin() as conn:
                return int(pay_funder(conn, clock, CATALOG, "bank_example", f"p{i}")["paid_fen"])
        except FunderPaymentError:
            return 0

    workers = 8 if db_engine.dialect.name == "postgresql" else 1
    with ThreadPoolExecutor(workers) as pool:
        paid = list(pool.map(pay, range(8)))
    assert len([p for p in paid if p]) == 1, paid
    with db_engine.begin() as conn:
        st = monthly_statement(conn, CATALOG, "bank_example", "2026-01")
        assert st["paid_to_funder_fen"] == max(paid)
        assert st["closing_cash_due_fen"] == 0
        # collected 5,000 principal + its income; its charge-off share was a loss, not cash
        assert (
            max(paid)
            == st["totals"]["principal_collected_fen"] + st["totals"]["income_collected_fen"]
        )
        assert st["totals"]["disbursed_fen"] == 90_000
        assert st["closing_principal_fen"] == 90_000 - 5_000 - 25_000
        got = receive_from_funder(conn, clock, CATALOG, "bank_example", "rcv-1")
        assert got["received_fen"] == 90_000
        with pytest.raises(FunderPaymentError):
            receive_from_funder(conn, clock, CATALOG, "bank_example", "rcv-2")
        assert trial_balance(conn).balanced and reconcile(conn) == []


def test_cli_export_and_verify_file(db_engine: Engine, tmp_path: Path) -> None:
    """`fenqi funding export --partner --date` writes both files; `verify-file` accepts them
    and refuses a tampered one, naming the row (exit non-zero)."""
    from funding.test_funding_cli import fenqi

    plans = books(db_engine)
    env = {"FENQI_DATABASE_URL": db_engine.url.render_as_string(hide_password=False)}
    out = fenqi(
        "funding", "export", "--partner", "trust_example", "--date", NEXT.isoformat(),
        "--out", str(tmp_path), "--json", env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["loans"] == 3 and figures["disbursement_fen"] == 20_000 + 10_000 + 6_000
    for path in (figures["csv"], figures["parquet"]):
        ok = fenqi("funding", "verify-file", path, env=env)
        assert ok.returncode == 0 and "agree with the ledger to the fen" in ok.stdout, ok.stderr
    csv = Path(figures["csv"])
    lines = csv.read_text().splitlines()
    cells = lines[1].split(",")
    assert cells[3] == str(plans[0])
    cells[11] = str(int(cells[11]) + 100)  # principal repaid, first loan
    lines[1] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    bad = fenqi("funding", "verify-file", str(csv), env=env)
    assert bad.returncode != 0
    assert "control total row: principal_repaid_fen" in bad.stderr


def _totals(engine: Engine, day: date) -> dict[str, tuple[int, ...]]:
    from sqlalchemy import select

    from fenqi.store.schema.funding import funding_settlements as t

    with engine.connect() as conn:
        return {
            r.funder_id: tuple(r)[3:9]
            for r in conn.execute(select(t).where(t.c.business_date == day))
        }


def test_eod_step_per_partition_matches_the_whole_day(db_engine: Engine) -> None:
    """Partitions in any order, one rerun, and the totals equal the whole-day figures."""
    from dataclasses import astuple

    from sqlalchemy import delete

    from fenqi.batch.sql import Partition
    from fenqi.funding.eod import settle_partition
    from fenqi.funding.settlement import day_figures
    from fenqi.store.schema.funding import funding_settlements

    books(db_engine)
    with db_engine.connect() as conn:
        whole = {
            day: {f.funder_id: astuple(f)[3:] for f in day_figures(conn, CATALOG, day)}
            for day in (DAY, NEXT)
        }
    with db_engine.begin() as conn:
        conn.execute(delete(funding_settlements))  # written by books(); the step writes anew

    class Run:
        def __init__(self, day: date) -> None:
            self.business_date, self.now = day, FixedClock.on(day).now()

    parts = [Partition(0, 1, 1), Partition(1, 2, 2), Partition(2, 3, 1000)]
    for day in (DAY, NEXT):
        for part in [*reversed(parts), parts[1]]:  # any order; partition 1 twice
            with db_engine.begin() as conn:
                settle_partition(conn, Run(day), part)
        assert _totals(db_engine, day) == whole[day]
    assert whole[NEXT]["bank_example"][3] == 25_000  # the day's charge-off share


def test_eod_step_runs_inside_the_real_end_of_day(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step is registered in batch/steps.py, last, after charge_off."""
    import fenqi.batch.eod as eod
    from fenqi.batch.steps import STEPS
    from fenqi.context import build_context
    from fenqi.funding.eod import settle_partition
    from fenqi.settings import Settings

    books(db_engine)
    assert STEPS[-1] == ("funding_settle", settle_partition)
    assert [n for n, _ in STEPS][-2] == "charge_off"
    ctx = build_context(
        Settings(database_url=db_engine.url.render_as_string(hide_password=False)),
        FixedClock.on(NEXT, 23),
        db_engine,
    )
    figures = eod.run_eod(ctx, NEXT)[NEXT.isoformat()]
    assert figures["funding_settle"]["rows"] == 3
    assert _totals(db_engine, NEXT)["bank_example"][3] == 25_000
