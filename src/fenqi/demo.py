"""The scripted demo: two shoppers on two products buy and repay part, on an embedded SQLite file.

Shopper 1 (Huabei-style) buys a ¥6,000 phone in 12 installments; shopper 2 (Baitiao-style)
buys ¥1,200 of clothes and pays in the interest-free cycle. On the first due date shopper 1 pays
the first installment and shopper 2 pays ¥500. Every step goes through the real services and
ledger; the demo prints each schedule with its annualized rate, the accounts and the trial
balance.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.credit import service as credit
from fenqi.credit.plans import CYCLE, offer
from fenqi.ledger.service import reconcile, trial_balance
from fenqi.money import format_fen
from fenqi.pricing.quote import Quote
from fenqi.settings import Settings
from fenqi.store.migrate import upgrade

START = date(2026, 1, 2)  # the day after a statement day: the longest interest-free period


def _schedule_table(title: str, q: Quote) -> Table:
    table = Table("period", "due date", "principal", "fee", "interest", "total", title=title)
    for line in q.schedule.lines:
        table.add_row(
            str(line.period),
            line.due_date.isoformat(),
            format_fen(line.principal_fen),
            format_fen(line.fee_fen),
            format_fen(line.interest_fen),
            format_fen(line.total_fen),
        )
    s = q.schedule
    table.add_row(
        "",
        "total",
        format_fen(s.principal_fen),
        format_fen(s.fee_fen),
        format_fen(s.interest_fen),
        format_fen(s.total_fen),
    )
    table.caption = (
        f"annualized rate (IRR method): nominal {q.rate.nominal_bp / 100:.2f}% · "
        f"effective {q.rate.effective_bp / 100:.2f}%"
    )
    return table


def run_demo(database: str, fresh: bool = True) -> None:
    console = Console(width=110)
    path = Path(database)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    clock = FixedClock.on(START)
    settings = Settings(database_url=f"sqlite:///{path}")
    ctx = build_context(settings, clock)
    upgrade(ctx.engine)
    huabei, baitiao = ctx.product("huabei"), ctx.product("baitiao")
    cap = settings.apr_cap_bp
    console.rule(f"fenqi demo · business date {clock.today()} · database {path}")

    with ctx.engine.begin() as conn:
        a = credit.open_credit_account(conn, clock, huabei, "shopper-1", 1_000_000)
        b = credit.open_credit_account(conn, clock, baitiao, "shopper-2", 500_000)
        plan_a = offer(huabei, 600_000, 12, clock.today(), cap_bp=cap)
        hold_a = credit.authorize(conn, clock, a, "shop-digital", 600_000, "demo-auth-1")
        credit.capture(
            conn,
            clock,
            huabei,
            a,
            "shop-digital",
            hold_a.hold_entry_id,
            "order-1001",
            plan_a,
            "demo-capture-1",
        )
        plan_b = offer(baitiao, 120_000, CYCLE, clock.today(), cap_bp=cap)
        hold_b = credit.authorize(conn, clock, b, "shop-fashion", 120_000, "demo-auth-2")
        credit.capture(
            conn,
            clock,
            baitiao,
            b,
            "shop-fashion",
            hold_b.hold_entry_id,
            "order-2001",
            plan_b,
            "demo-capture-2",
        )

    console.print(
        _schedule_table(
            f"shopper-1 · {huabei.display_name} · ¥6,000.00 phone in 12 installments", plan_a.quote
        )
    )
    free_days = (plan_b.quote.schedule.lines[0].due_date - START).days + 1
    console.print(
        _schedule_table(
            f"shopper-2 · {baitiao.display_name} · ¥1,200.00 in the interest-free cycle "
            f"({free_days} days, both ends counted)",
            plan_b.quote,
        )
    )

    first_due = plan_a.quote.schedule.lines[0].due_date
    clock.advance(timedelta(days=(first_due - START).days))
    with ctx.engine.begin() as conn:
        pay_a = credit.repay(
            conn, clock, huabei, a, plan_a.quote.schedule.lines[0].total_fen, "demo-repay-1"
        )
        pay_b = credit.repay(conn, clock, baitiao, b, 50_000, "demo-repay-2")
    console.rule(f"business date {clock.today()}: repayments")
    for who, pay in (("shopper-1", pay_a), ("shopper-2", pay_b)):
        parts = ", ".join(f"{k} {format_fen(v)}" for k, v in pay.by_kind_fen.items() if v)
        console.print(f"{who} paid ¥{format_fen(pay.amount_fen)} → {parts}")

    summary = Table(
        "account",
        "product",
        "limit",
        "available",
        "owed",
        "next due",
        "amount due",
        title="credit accounts",
    )
    with ctx.engine.connect() as conn:
        for acct in (a, b):
            s = credit.account_summary(conn, acct, clock.today())
            summary.add_row(
                str(acct),
                s["product"],
                format_fen(s["limit_fen"]),
                format_fen(s["available_fen"] or 0),
                format_fen(s["owed_fen"]),
                s["next_due_date"] or "-",
                format_fen(s["next_due_fen"]),
            )
        tb = trial_balance(conn)
        mismatches = reconcile(conn)
    console.print(summary)
    tb_table = Table("code", "debits posted", "credits posted", "net debit", title="trial balance")
    for row in tb.rows:
        tb_table.add_row(
            str(row["code"]),
            format_fen(int(row["debits_posted"])),
            format_fen(int(row["credits_posted"])),
            format_fen(int(row["net_debit_posted"])),
        )
    totals = tb.totals["CNY"]
    tb_table.add_row(
        "total",
        format_fen(totals["debits_posted"]),
        format_fen(totals["credits_posted"]),
        format_fen(totals["debits_posted"] - totals["credits_posted"]),
    )
    console.print(tb_table)
    console.print(
        f"trial balance {'balanced (zero)' if tb.balanced else 'NOT BALANCED'}; "
        f"reconciliation: {mismatches if mismatches else 'every balance equals its postings'}"
    )
    ctx.engine.dispose()
