"""End-of-day at scale: accounts per second against the floor of one set-based UPDATE.

Builds a portfolio directly in the database with set-based SQL (this is benchmark setup, not a
way to book credit): every account with its ledger accounts; a realistic mix of current cycle
purchases, revolving balances after a minimum payment, 12-installment plans, and arrears in
every bucket M1..M7+; and the history such a book carries (the statements of February to May,
May's daily accrual journals). Then one end-of-day with a statement cut (the 1st of the month)
runs, and in the same run the floor is timed: one set-based UPDATE touching the same rows (every
account and every plan line, each changed and then put back); then the next, ordinary day runs.
Prints accounts/s, the ratio to the floor, the funding_settle step's share of the run and peak
memory, on SQLite and PostgreSQL; writes bench/results/eod.json.

`--funding on` funds the book: every open plan of an account not charged off is allocated to
the shipped program (bank 50% / trust 20% / platform 30%) with its unpaid principal, through
`wiring.plan_booked`, one plan at a time (setup, not timed; a day's new lending is spread over
days so no partner's daily cap is reached); borrowers are T1, aged 35, from the bank's four
provinces. `--funding both` builds and runs the unfunded book and then the funded one, the
same figures otherwise, and prints the funded run's ratios against the unfunded one's.

    python bench/eod.py --accounts 1000000 [--db sqlite|postgresql|both] [--funding off|on|both]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, Engine, text

from fenqi.batch.eod import run_eod
from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.funding import wiring
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.service import open_account
from fenqi.settings import Settings
from fenqi.store.engine import make_engine
from fenqi.store.migrate import upgrade

RESULTS = Path(__file__).parent / "results"
PG = os.environ.get("FENQI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RUN_DATE = date(2026, 6, 1)  # a statement day for the Huabei-style product
NEXT_DATE = date(2026, 6, 2)  # an ordinary day after it
HISTORY_ACCRUAL_FEN = 50  # a day's accrued interest or penalty of an account, in May
CODES = (
    "principal_receivable",
    "fee_receivable",
    "interest_receivable",
    "penalty_receivable",
    "written_off_receivable",
    "customer_credit_balance",
)


def numbers(n: int) -> str:
    return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "


def build(engine: Engine, accounts: int) -> None:
    """The portfolio, with SQL that both SQLite and PostgreSQL run."""
    now = "'2026-05-31 12:00:00+00'"
    dialect = engine.dialect.name

    def d(day: str) -> str:  # a date literal both databases type as a date
        return f"'{day}'" if dialect == "sqlite" else f"DATE '{day}'"

    with engine.begin() as conn:
        conn.execute(
            text(
                numbers(accounts)
                + f"""
            INSERT INTO credit_accounts (id, customer_ref, product, tier, currency, limit_fen,
                status, principal_account_id, opened_at)
            SELECT i, 'c' || i, 'huabei', NULL, 'CNY', 2000000, 'active', NULL, {now}
            FROM n"""
            )
        )
        # a customer's ledger accounts are opened together, as `open_accounts` does when a credit
        # account opens, so their ids (and rows) sit side by side, customer after customer
        for k, code in enumerate(CODES):
            cap = "2000000" if code == "principal_receivable" else "NULL"
            flag = "TRUE" if "receivable" in code else "FALSE"
            ledger_id = f"(i - 1) * {len(CODES)} + {k + 1}"
            conn.execute(
                text(
                    numbers(accounts)
                    + f"""
                INSERT INTO ledger_accounts (id, code, owner_kind, owner_id, currency, created_at)
                SELECT {ledger_id}, '{code}', 'customer', CAST(i AS VARCHAR(64)), 'CNY', {now}
                FROM n"""
                )
            )
            conn.execute(
                text(
                    numbers(accounts)
                    + f"""
                INSERT INTO ledger_balances (account_id, debit_cap_fen,
                    credits_must_not_exceed_debits, debits_must_not_exceed_credits,
                    debits_pending, debits_posted, credits_pending, credits_posted)
                SELECT {ledger_id}, {cap}, {flag}, FALSE, 0, 0, 0, 0 FROM n"""
                )
            )
        # one purchase per account: kind by account id (a realistic mix)
        #   i % 10 in 0..3: a cycle purchase billed on this statement (current)
        #   4: a cycle purchase revolving since 11 May after a minimum payment
        #   5..7: a 12-installment plan bought in January, paid to date
        #   8: a cycle purchase unpaid since a due date 15..240 days ago (M1..M7+; those past the
        #      charge-off threshold were charged off when they reached it, below)
        #   9: a 12-installment plan with its last 1..6 lines unpaid (arrears)
        conn.execute(
            text(
                numbers(accounts)
                + f"""
            INSERT INTO installment_plans (id, credit_account_id, order_ref, kind, terms, method,
                purchase_date, principal_fen, fee_fen, interest_fen, nominal_rate_bp,
                effective_rate_bp, status, refunded_fen, fee_removed_fen, interest_removed_fen,
                late_fees_fen, created_at)
            SELECT i, i, 'o' || i,
                CASE WHEN i % 10 IN (5, 6, 7, 9) THEN 'installments' ELSE 'cycle' END,
                CASE WHEN i % 10 IN (5, 6, 7, 9) THEN 12 ELSE 1 END,
                'equal_principal_equal_fee', {d("2026-01-05")}, 120000,
                CASE WHEN i % 10 IN (5, 6, 7, 9) THEN 10560 ELSE 0 END, 0,
                CASE WHEN i % 10 IN (5, 6, 7, 9) THEN 1586 ELSE 0 END, 0, 'open',
                0, 0, 0, 0, {now}
            FROM n"""
            )
        )
        conn.execute(
            text(
                numbers(accounts)
                + """
            INSERT INTO plan_income (plan_id, fee_earned_fen, interest_earned_fen)
            SELECT i, 4 * 880, 0 FROM n WHERE i % 10 IN (5, 6, 7, 9)  -- Feb..May billed"""
            )
        )
        add_days = (
            "date('2026-06-10', '-' || ((i % 226) + 15) || ' days')"
            if dialect == "sqlite"
            else "DATE '2026-06-10' - ((i % 226) + 15)"
        )
        conn.execute(
            text(
                numbers(accounts)
                + f"""
            INSERT INTO plan_lines (plan_id, period, credit_account_id, due_date, principal_fen,
                fee_fen, interest_fen, paid_principal_fen, paid_fee_fen, paid_interest_fen,
                waived_principal_fen, waived_fee_fen, waived_interest_fen, revolving_since)
            SELECT i, 1, i,
                CASE WHEN i % 10 = 8 THEN {add_days} WHEN i % 10 = 4 THEN {d("2026-05-10")}
                     ELSE {d("2026-06-10")} END,
                120000, 0, 0, CASE WHEN i % 10 = 4 THEN 12000 ELSE 0 END, 0, 0, 0, 0, 0,
                CASE WHEN i % 10 = 4 THEN {d("2026-05-11")} ELSE NULL END
            FROM n WHERE i % 10 NOT IN (5, 6, 7, 9)"""
            )
        )
        for period in range(1, 13):
            month = period + 1  # Feb .. Jan
            due = f"{2026 + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}-10"
            paid = "10000" if due < "2026-06-10" else "0"
            unpaid_tail = (
                f"AND NOT (i % 10 = 9 AND {period} > 6 - (i % 6))" if due < "2026-06-10" else ""
            )
            # a line falling due before this statement was billed on its own statement day
            billed = d(due[:8] + "01") if due < "2026-06-10" else "NULL"
            conn.execute(
                text(
                    numbers(accounts)
                    + f"""
                INSERT INTO plan_lines (plan_id, period, credit_account_id, due_date,
                    principal_fen, fee_fen, interest_fen, paid_principal_fen, paid_fee_fen,
                    paid_interest_fen, waived_principal_fen, waived_fee_fen,
                    waived_interest_fen, billed_on)
                SELECT i, {period}, i, {d(due)}, 10000, 880, 0,
                    CASE WHEN 1 = 1 {unpaid_tail} THEN {paid} ELSE 0 END,
                    CASE WHEN 1 = 1 {unpaid_tail} THEN {"880" if paid != "0" else "0"} ELSE 0 END,
                    0, 0, 0, 0, {billed}
                FROM n WHERE i % 10 IN (5, 6, 7, 9)"""
                )
            )
        # A cycle purchase unpaid since 06-10 minus ((id % 226) + 15) days is (id % 226) + 5 days
        # past due on 05-31. One that reached the charge-off threshold (180 days) before today
        # was charged off on that day, as the end of day leaves it (stopped, its limit at zero in
        # the ledger); this run charges off only those reaching it today (1 in 226 of them).
        crossed = (
            "date('2026-06-10', (165 - id % 226) || ' days')"
            if dialect == "sqlite"
            else "DATE '2026-06-10' + CAST(165 - id % 226 AS INTEGER)"
        )
        conn.execute(
            text(f"""
            UPDATE credit_accounts SET status = 'charged_off', charged_off_on = {crossed}
            WHERE id % 10 = 8 AND id % 226 + 5 >= 180""")
        )
        # what the end of day of 05-31 left: each account's oldest amount due before that day,
        # unpaid and not revolving
        conn.execute(
            text(f"""
            UPDATE credit_accounts SET past_due_since = (
                SELECT min(due_date) FROM plan_lines
                WHERE credit_account_id = credit_accounts.id AND due_date < {d("2026-05-31")}
                    AND revolving_since IS NULL
                    AND paid_principal_fen + waived_principal_fen + paid_fee_fen
                        + waived_fee_fen < principal_fen + fee_fen)""")
        )
        conn.execute(
            text("""
            UPDATE ledger_balances SET debit_cap_fen = 0
            WHERE account_id IN (
                SELECT id FROM ledger_accounts WHERE code = 'principal_receivable'
                    AND owner_id IN (SELECT CAST(id AS VARCHAR(64)) FROM credit_accounts
                                     WHERE charged_off_on IS NOT NULL))""")
        )
        if dialect == "postgresql":
            for table in ("credit_accounts", "ledger_accounts", "installment_plans"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        history(conn, d)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("COMMIT"))
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))


def history(conn: Connection, d: Callable[[str], str]) -> None:
    """What the book carries into the run day, so that the day's statements, postings and
    accruals go into tables and indexes that already hold their accounts' earlier rows, as in
    production, instead of appending to empty ones:
    - the statements cut on 1 February to 1 May (every account not yet charged off);
    - May's daily accrual journals (one entry a day per kind, a posting per account): revolving
      interest from 11 May, penalty interest on each day an account was past due; with the
      accrued totals in `accruals` and the receivables' and income's balances."""
    clock = FixedClock(datetime(2026, 5, 31, 12, 0, tzinfo=UTC))
    income = {
        kind: open_account(
            conn, clock, AccountCode(f"{kind}_income"), OwnerKind.PLATFORM, "platform", "CNY"
        )
        for kind in ("interest", "penalty")
    }
    for month in range(2, 6):
        conn.execute(
            text(f"""
            INSERT INTO statements (credit_account_id, statement_date, due_date, principal_fen,
                fee_fen, interest_fen, penalty_fen, total_fen, minimum_fen, created_at)
            SELECT id, {d(f"2026-{month:02d}-01")}, {d(f"2026-{month:02d}-10")}, 10000, 880, 0, 0,
                10880, 10880, '2026-{month:02d}-01 15:00:00+00'
            FROM credit_accounts
            WHERE charged_off_on IS NULL OR charged_off_on > {d(f"2026-{month:02d}-01")}""")
        )
    # (kind, the customer's ledger account among CODES, its first day, who accrues on a day)
    accruing = (
        ("interest", CODES.index("interest_receivable"), 11, "id % 10 = 4"),
        (
            "penalty",
            CODES.index("penalty_receivable"),
            1,
            "charged_off_on IS NULL AND past_due_since < {day}",
        ),
    )
    for kind, k, first, where in accruing:
        for day_of_month in range(first, 32):
            day = d(f"2026-05-{day_of_month:02d}")
            entry = conn.execute(
                text(f"""
                INSERT INTO ledger_entries (client_id, content_hash, kind, status, business_date,
                    created_at, description, ref_kind, ref_id)
                VALUES ('eod:2026-05-{day_of_month:02d}:{kind}:CNY:0', 'batch', 'single', 'posted',
                    {day}, '2026-05-{day_of_month:02d} 23:00:00+00', 'daily {kind}', 'partition',
                    '0')
                RETURNING id""")
            ).scalar_one()
            conn.execute(
                text(f"""
                INSERT INTO ledger_postings (entry_id, seq, debit_account_id, credit_account_id,
                    amount_fen, phase, pending_remaining_fen, code)
                SELECT {entry}, id, (id - 1) * {len(CODES)} + {k + 1}, {income[kind]},
                    {HISTORY_ACCRUAL_FEN}, 'posted', 0, '{kind}'
                FROM credit_accounts WHERE {where.format(day=day)}""")
            )
    for kind, k, _first, _where in accruing:
        per_account = f"""
            SELECT (p.debit_account_id - {k + 1}) / {len(CODES)} + 1 AS account_id,
                   p.debit_account_id AS ledger_id, sum(p.amount_fen) AS amount
            FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
            WHERE e.client_id LIKE 'eod:2026-05-%:{kind}:CNY:0'
            GROUP BY p.debit_account_id"""
        conn.execute(
            text(f"""
            INSERT INTO accruals (credit_account_id, kind, accrued_fen, paid_fen, waived_fen,
                accrued_through)
            SELECT account_id, '{kind}', amount, 0, 0, {d("2026-05-31")} FROM ({per_account}) a""")
        )
        conn.execute(
            text(f"""
            UPDATE ledger_balances SET debits_posted = debits_posted + a.amount
            FROM ({per_account}) a WHERE ledger_balances.account_id = a.ledger_id""")
        )
        conn.execute(
            text(f"""
            UPDATE ledger_balances SET credits_posted = credits_posted
                + (SELECT coalesce(sum(amount), 0) FROM ({per_account}) a)
            WHERE account_id = {income[kind]}""")
        )


PLANS_A_DAY = 10_000  # funded plans booked per business day (the bank's daily cap: ¥20 million)
REGIONS = ("110101", "310101", "320101", "440101")  # the bank's four provinces


def borrowers(engine: Engine) -> None:
    """Every account's holder as the funders' rules see it (both runs: the same book)."""
    region = " ".join(f"WHEN {k} THEN '{r}'" for k, r in enumerate(REGIONS))
    with engine.begin() as conn:
        conn.execute(
            text(f"""
            UPDATE credit_accounts SET tier = 'T1', birth_date = :born,
                id_region = CASE id % {len(REGIONS)} {region} END"""),
            {"born": date(1990, 5, 1)},
        )


def fund(engine: Engine) -> dict[str, int]:
    """Each open plan of an account not charged off allocated to the shipped program with its
    unpaid principal (as if funded at purchase and repaid since). Returns plans per funder."""
    if wiring.active_catalog() is None:
        raise SystemExit("--funding on needs FENQI_FUNDING_ENABLED (the shipped program)")
    with engine.connect() as conn:
        plans = conn.execute(
            text("""
            SELECT a.id, a.currency, a.product, a.tier, a.id_region, a.birth_date, p.id AS plan,
                p.terms, sum(l.principal_fen - l.paid_principal_fen - l.waived_principal_fen)
            FROM credit_accounts a JOIN installment_plans p ON p.credit_account_id = a.id
                JOIN plan_lines l ON l.plan_id = p.id
            WHERE a.charged_off_on IS NULL
            GROUP BY a.id, a.currency, a.product, a.tier, a.id_region, a.birth_date, p.id, p.terms
            ORDER BY p.id""")
        ).all()
    start = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    for k in range(0, len(plans), PLANS_A_DAY):
        clock = FixedClock(start + timedelta(days=k // PLANS_A_DAY))
        with engine.begin() as conn:
            for r in plans[k : k + PLANS_A_DAY]:
                if int(r[8]) > 0:
                    account = dict(zip(("id", "currency", "product", "tier"), r[:4], strict=True))
                    account.update(id_region=r[4], birth_date=date.fromisoformat(str(r[5])[:10]))
                    wiring.plan_booked(conn, clock, account, int(r[6]), int(r[8]), int(r[7]))
    with engine.connect() as conn:
        by_funder = conn.execute(
            text("SELECT funder_id, count(*) FROM funding_tranches GROUP BY funder_id")
        ).all()
    return {str(f): int(n) for f, n in by_funder}


def _step_loop_module() -> ModuleType:
    """The module whose `run_partition` loops over STEPS (batch/eod.py; batch/partitions.py
    once the partition's code moved there)."""
    for name in ("fenqi.batch.partitions", "fenqi.batch.eod"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        loop = getattr(module, "run_partition", None)
        if loop is not None and loop.__module__ == name and hasattr(module, "STEPS"):
            return module
    raise SystemExit("bench/eod.py: no run_partition looping over STEPS found")


@contextmanager
def timed_steps() -> Iterator[dict[str, float]]:
    """Seconds spent in each end-of-day step, summed over partitions (the STEPS that
    `run_partition` loops over wrapped for the block; a block that timed nothing fails)."""
    spent: dict[str, float] = {}
    module = _step_loop_module()
    original = getattr(module, "STEPS")  # noqa: B009 (the run's module global, replaced)

    def timed(name: str, step: Any) -> Any:
        def run(conn: Connection, facts: Any, part: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return step(conn, facts, part)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

        return run

    setattr(module, "STEPS", tuple((name, timed(name, step)) for name, step in original))  # noqa: B010
    try:
        yield spent
    finally:
        setattr(module, "STEPS", original)  # noqa: B010
    if "funding_settle" not in spent:
        raise SystemExit("bench/eod.py: the steps were not timed (STEPS moved?)")


# What the floor changes in every row it touches: a value moved by one and then put back before
# anything else runs. It must change: SQLite does not write a row whose new content equals
# the old one, so `SET x = x + 0` reads every row and writes no page at all (its write-ahead log
# stays empty), while PostgreSQL writes a new version of every row either way.
FLOOR_UPDATES = (
    "UPDATE credit_accounts SET limit_fen = limit_fen + {step}",
    "UPDATE plan_lines SET principal_fen = principal_fen + {step}",
)


def floor(engine: Engine) -> float:
    """One set-based UPDATE of every account and every plan line, with its commit, timed; then
    the same UPDATE puts the values back, untimed."""
    t0 = time.perf_counter()
    _touch(engine, 1)
    elapsed = time.perf_counter() - t0
    _touch(engine, -1)
    return elapsed


def _touch(engine: Engine, step: int) -> None:
    with engine.begin() as conn:
        for sql in FLOOR_UPDATES:
            conn.execute(text(sql.format(step=step)))


def bench(url: str, accounts: int, label: str, funded: bool = False) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    build(engine, accounts)
    borrowers(engine)
    tranches = fund(engine) if funded else {}
    built = time.perf_counter() - t0
    clock = FixedClock(datetime(2026, 6, 1, 15, 0, tzinfo=UTC))
    ctx = build_context(Settings(database_url=url, eod_partition_size=100_000), clock, engine)
    floor_s = floor(engine)
    t0 = time.perf_counter()
    with timed_steps() as spent:
        figures = run_eod(ctx, RUN_DATE, progress=True)
    eod_s = time.perf_counter() - t0
    floor_s = min(floor_s, floor(engine))
    # the next day, an ordinary one (no statement): accrual, ageing, billing of nothing
    next_clock = FixedClock(datetime(2026, 6, 2, 15, 0, tzinfo=UTC))
    next_ctx = build_context(ctx.settings, next_clock, engine)
    t0 = time.perf_counter()
    run_eod(next_ctx, NEXT_DATE, progress=True)
    next_s = time.perf_counter() - t0
    engine.dispose()
    steps = figures[RUN_DATE.isoformat()]
    settle_s = spent.get("funding_settle", 0.0)
    print(
        f"{label}: built {accounts:,} accounts in {built:.1f}s"
        f"{f' (tranches {tranches})' if funded else ''}; end of day {eod_s:.1f}s "
        f"({accounts / eod_s:,.0f} accounts/s); floor {floor_s:.1f}s; "
        f"ratio {eod_s / floor_s:.2f}; billed rows {steps['bill']['rows']:,}, "
        f"late accounts {steps['age']['rows']:,}, charged off {steps['charge_off']['rows']:,}; "
        f"the next day (no statement) {next_s:.1f}s, ratio {next_s / floor_s:.2f}; "
        f"funding_settle {settle_s:.2f}s ({settle_s / eod_s:.1%} of the run, "
        f"{steps['funding_settle']['rows']:,} funder rows)"
    )
    return {
        "accounts": accounts,
        "build_s": built,
        "eod_s": eod_s,
        "floor_s": floor_s,
        "next_day_eod_s": next_s,
        "accounts_per_s": accounts / eod_s,
        "ratio_to_floor": eod_s / floor_s,
        "billed_rows": steps["bill"]["rows"],
        "late_accounts": steps["age"]["rows"],
        "charged_off": steps["charge_off"]["rows"],
        "funded": funded,
        "tranches": tranches,
        "step_s": spent,
        "funding_settle_s": settle_s,
        "funding_settle_share": settle_s / eod_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--funding", choices=["off", "on", "both"], default="off")
    args = parser.parse_args()
    arms = {"off": [False], "on": [True], "both": [False, True]}[args.funding]
    results: dict[str, Any] = {}
    for db in ("sqlite", "postgresql"):
        if args.db not in (db, "both"):
            continue
        for funded in arms:
            label = f"{db}{' funded' if funded else ''}"
            results[label] = run_on(db, args.accounts, label, funded)
        if len(arms) == 2:
            compare(results[db], results[f"{db} funded"], db)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak_mb:,.0f} MB")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "eod.json").write_text(json.dumps({**results, "peak_rss_mb": peak_mb}, indent=2))


def run_on(db: str, accounts: int, label: str, funded: bool) -> dict[str, Any]:
    """One bench on a fresh SQLite file or PostgreSQL schema."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return bench(f"sqlite:///{tmp}/eod.sqlite", accounts, label, funded)
    schema = f"bench_eod_{uuid.uuid4().hex[:6]}"
    admin = make_engine(PG, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        return bench(f"{PG}?options=-csearch_path%3D{schema}", accounts, label, funded)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def compare(plain: dict[str, Any], funded: dict[str, Any], db: str) -> None:
    print(
        f"{db}: funded against unfunded: end of day {funded['eod_s']:.1f}s against "
        f"{plain['eod_s']:.1f}s (x{funded['eod_s'] / plain['eod_s']:.2f}); ratio to the floor "
        f"{funded['ratio_to_floor']:.2f} against {plain['ratio_to_floor']:.2f}; funding_settle "
        f"{funded['funding_settle_s']:.2f}s ({funded['funding_settle_share']:.1%}) against "
        f"{plain['funding_settle_s']:.2f}s ({plain['funding_settle_share']:.1%})"
    )


if __name__ == "__main__":
    main()
