"""A shopper's life month by month for billing tests: buy, pay, refund, run end of day."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from fenqi.batch.eod import run_eod
from fenqi.clock import FixedClock
from fenqi.context import Context, build_context
from fenqi.credit import service as credit
from fenqi.credit.arrears import arrears_on
from fenqi.credit.plans import offer
from fenqi.credit.reconciliation import deep_reconcile
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.service import get_balance, open_account, reconcile, trial_balance
from fenqi.settings import Settings
from fenqi.store.engine import create_all, make_engine
from fenqi.store.schema.batch import accruals, statements
from fenqi.store.schema.credit import credit_accounts


class World:
    def __init__(self, db_url: str, start: date, product: str = "huabei") -> None:
        engine = make_engine(db_url)
        create_all(engine)
        self.clock = FixedClock.on(start, hour=10)
        self.ctx: Context = build_context(Settings(database_url=db_url), self.clock, engine)
        self.product = self.ctx.product(product)
        self.start = start
        self.last_eod: date | None = None
        self.n = 0

    def _id(self, what: str) -> str:
        self.n += 1
        return f"{what}-{self.n}"

    def open(self, limit_fen: int = 2_000_000, customer: str = "s1") -> int:
        with self.ctx.engine.begin() as conn:
            return credit.open_credit_account(conn, self.clock, self.product, customer, limit_fen)

    def buy(self, account: int, amount_fen: int, terms: int, merchant: str = "m1") -> int:
        plan = offer(self.product, amount_fen, terms, self.clock.today(), cap_bp=2400)
        with self.ctx.engine.begin() as conn:
            hold = credit.authorize(
                conn, self.clock, account, merchant, amount_fen, self._id("auth")
            )
            return credit.capture(
                conn,
                self.clock,
                self.product,
                account,
                merchant,
                hold.hold_entry_id,
                self._id("order"),
                plan,
                self._id("cap"),
            )

    def pay(self, account: int, amount_fen: int) -> credit.RepaymentResult:
        with self.ctx.engine.begin() as conn:
            return credit.repay(
                conn, self.clock, self.product, account, amount_fen, self._id("pay")
            )

    def go_to(self, day: date) -> None:
        """Run end of day for every date before `day`, then stand on `day` at 10:00."""
        end = day - timedelta(days=1)
        if self.last_eod is None and end >= self.start:
            run_eod(self.ctx, self.start)  # the first run; later runs catch up day by day
            self.last_eod = self.start
        if self.last_eod is not None and end > self.last_eod:
            self.clock.set(FixedClock.on(end, hour=23).now())
            run_eod(self.ctx, end)
            self.last_eod = end
        self.clock.set(FixedClock.on(day, hour=10).now())

    def summary(self, account: int) -> dict[str, Any]:
        with self.ctx.engine.connect() as conn:
            return credit.account_summary(conn, account, self.clock.today())

    def arrears(self, account: int) -> tuple[int, str, Any]:
        """Days past due and bucket as of the last end of day, and the charge-off date."""
        with self.ctx.engine.connect() as conn:
            since, charged_off_on = conn.execute(
                select(credit_accounts.c.past_due_since, credit_accounts.c.charged_off_on).where(
                    credit_accounts.c.id == account
                )
            ).one()
        assert since is None or self.last_eod is not None
        days, bucket = arrears_on(since, self.last_eod or self.start)
        return days, bucket, charged_off_on

    def accrued(self, account: int) -> dict[str, int]:
        with self.ctx.engine.connect() as conn:
            return {
                k: int(v)
                for k, v in conn.execute(
                    select(accruals.c.kind, accruals.c.accrued_fen).where(
                        accruals.c.credit_account_id == account
                    )
                ).all()
            }

    def statements(self, account: int) -> list[dict[str, Any]]:
        with self.ctx.engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    select(statements)
                    .where(statements.c.credit_account_id == account)
                    .order_by(statements.c.statement_date)
                ).mappings()
            ]

    def platform(self, code: AccountCode) -> int:
        """Net credit balance of a platform account (income, allowance ...)."""
        with self.ctx.engine.begin() as conn:
            bal = get_balance(
                conn,
                open_account(
                    conn, self.clock, code, OwnerKind.PLATFORM, "platform", self.product.currency
                ),
            )
        return bal.credits_posted - bal.debits_posted

    def customer(self, account: int, code: AccountCode) -> int:
        with self.ctx.engine.begin() as conn:
            bal = get_balance(
                conn,
                credit.customer_account(conn, self.clock, account, code, self.product.currency),
            )
        return bal.debits_posted - bal.credits_posted

    def books_balance(self) -> None:
        with self.ctx.engine.connect() as conn:
            assert trial_balance(conn).balanced
            assert reconcile(conn) == []
            deep = deep_reconcile(conn)
            assert deep.ok, [str(d) for d in deep.differences]

    def receivables_equal_owed(self, account: int) -> None:
        """What the shopper owes by the plans and charges equals their receivables."""
        owed = self.summary(account)["owed_fen"]
        held = sum(
            self.customer(account, code)
            for code in (
                AccountCode.PRINCIPAL_RECEIVABLE,
                AccountCode.FEE_RECEIVABLE,
                AccountCode.INTEREST_RECEIVABLE,
                AccountCode.PENALTY_RECEIVABLE,
                AccountCode.WRITTEN_OFF_RECEIVABLE,
            )
        )
        assert owed == held, (owed, held)

    def close(self) -> None:
        self.ctx.engine.dispose()
