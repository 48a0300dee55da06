"""The simulated marketplace, run day by day through fenqi's real services.

Control plane and data plane are kept apart: numpy decides, for the whole population at once,
who applies, who shops, for how much and in which shop (the same draws whatever the decision
flow, so two what-if arms see the same demand); the services then do the work, each call under
a savepoint so a decline undoes only itself, as the API's one-transaction-per-request would.
One process commits each simulated day's calls in one transaction with the day's checkpoint
(`simulation.checkpoint`), so a stopped run resumes at the next day; parallel workers commit
`batch_ops` calls at a time. Nothing here writes a balance: applications go through
`credit.applications.apply` (identity, consents, the risk engine), purchases through checkout
risk and `authorize_order` as a sale (authorized and captured at once, as a marketplace
charges at payment), returns through `refund_order`, payments through
`credit.service.repay`, and each day ends with the end-of-day run when `fenqi.batch.eod` exists.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import DBAPIError

from fenqi.api.schemas import ApplicationIn, Behaviour, ConsentIn
from fenqi.clock import FixedClock
from fenqi.context import Context
from fenqi.credit import checkout
from fenqi.credit import service as credit
from fenqi.credit.applications import apply
from fenqi.credit.checkout import RiskVerdict
from fenqi.credit.merchants import create_merchant
from fenqi.credit.underwriting import age_on
from fenqi.errors import FenqiError
from fenqi.products.model import ProductKind
from fenqi.simulation import checkpoint
from fenqi.simulation import distributions as dist
from fenqi.simulation.starter import ensure_starter_model
from fenqi.store.prepared import Prepared
from fenqi.store.schema.credit import plan_lines
from fenqi.store.schema.parties import merchants

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_OPS_MAX = 5_000  # service calls per transaction: bounded, so a lock is never held long
MONTHS_MAX = 36
DAYS_PER_MONTH = 30.4
OBSERVE_EVERY_DAYS = 7  # days past due are read weekly for the accounts that missed a due date
CHUNK_IDS = 500  # bound on an IN list
DEADLOCK_RETRIES = 5


@dataclass(frozen=True)
class SimConfig:
    shoppers: int = 1_000
    months: int = 6
    seed: int = 1
    stress: float = 0.0
    product: str = "huabei"
    start: date = date(2026, 1, 1)
    batch_ops: int = 500
    eod: bool = True  # run fenqi.batch.eod each simulated day, when it exists
    apply_window_share: float = 0.5  # applications arrive uniformly over this share of the run
    take_up: float = 1.0  # share of shoppers who apply for credit at all
    shop_prefix: str = "shop"

    def __post_init__(self) -> None:
        if not 1 <= self.months <= MONTHS_MAX:
            raise ValueError(f"months must be in 1..{MONTHS_MAX}")
        if not 1 <= self.batch_ops <= BATCH_OPS_MAX:
            raise ValueError(f"batch_ops must be in 1..{BATCH_OPS_MAX}")
        if not 0 < self.apply_window_share <= 1:
            raise ValueError("apply_window_share must be in (0, 1]")
        if not 0 < self.take_up <= 1:
            raise ValueError("take_up must be in (0, 1]")

    @property
    def days(self) -> int:
        return round(self.months * DAYS_PER_MONTH)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["start"] = date.fromisoformat(str(values["start"]))
        return cls(**values)


@dataclass(frozen=True)
class Shop:
    id: str
    category: str
    api_key: str | None  # shown once, at creation; None when the shop already existed


@dataclass
class Counts:
    applications: int = 0
    approved: int = 0
    purchases: int = 0
    declined_purchases: int = 0
    step_ups: int = 0
    refunds: int = 0
    repayments: int = 0
    eod_runs: int = 0
    service_calls: int = 0
    refusals: dict[str, int] = field(default_factory=dict)  # machine code -> how many


@dataclass
class RunState:
    """What the simulator remembers: who has which account, what it sent at application, and
    the worst days past due seen (the label of the training table)."""

    account_of: np.ndarray  # shopper -> credit account id (0: none)
    opened_day: np.ndarray
    customer_of: np.ndarray
    features: dict[int, dict[str, Any]] = field(default_factory=dict)
    max_dpd: dict[int, int] = field(default_factory=dict)  # shopper -> worst DPD seen
    first_90_day: dict[int, int] = field(default_factory=dict)
    shopper_of_account: dict[int, int] = field(default_factory=dict)
    watch: set[int] = field(default_factory=set)  # accounts that missed a due date


class Stopped(Exception):
    """Asked to stop (Ctrl-C, SIGTERM): raised between two service calls, so the day under
    way is undone whole and the days done stay, with their checkpoint."""


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for k in range(0, len(items), size):
        yield items[k : k + size]


def _unit(*keys: int) -> float:
    """A uniform draw in [0, 1) from integers (splitmix64): the same keys, the same draw, in
    whatever order events happen."""
    x = 0x9E3779B97F4A7C15
    for k in keys:
        x = (x ^ (k & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return (x >> 11) / float(1 << 53)


def load_eod() -> Callable[..., Any] | None:
    try:
        from fenqi.batch.eod import run_eod
    except ImportError:
        return None
    return run_eod


class Simulation:
    def __init__(
        self,
        ctx: Context,
        config: SimConfig,
        progress: Callable[[int, int], None] | None = None,
        *,
        partition: tuple[int, int] = (0, 1),
        day_done: Callable[[int], None] | None = None,
        resumable: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """`partition` (k, n): this process simulates the shoppers i with i mod n = k (the draws
        are made for everyone, so n partitions together are the one-process run); `day_done` is
        called after each simulated day (a barrier, in parallel runs). `resumable`: each day's
        calls are one transaction with the day's checkpoint (else `batch_ops` calls at a time,
        no checkpoint: parallel workers, whose days are not theirs alone). `stop`, asked
        between two calls and between two days, ends the run with `Stopped` when it says so."""
        if not isinstance(ctx.clock, FixedClock):
            raise TypeError("the simulation moves time: give the context a FixedClock")
        if not 0 <= partition[0] < partition[1]:
            raise ValueError("partition must be (k, n) with 0 <= k < n")
        self.part, self.parts = partition
        self.day_done = day_done
        self.ctx = ctx
        self.clock: FixedClock = ctx.clock
        # a fresh registry gets the starter model (synthetic applicants) before anything decides
        ensure_starter_model(ctx.settings.models_dir, ctx.clock)
        self.config = config
        self.progress = progress
        self.product = ctx.product(config.product)
        self.pop = dist.shoppers(config.shoppers, config.seed, config.stress)
        self.counts = Counts()
        n = config.shoppers
        rng = np.random.default_rng([config.seed, 2])
        window = max(1, int(config.days * config.apply_window_share))
        self.apply_day = (rng.random(n) * window).astype(int)
        self.defaults = rng.random(n) < self.pop.p_default
        delay = dist.DEFAULT_DELAY_MIN_DAYS + rng.exponential(dist.DEFAULT_DELAY_MEAN_DAYS, n)
        delay = np.minimum(delay, dist.DEFAULT_DELAY_MAX_DAYS)
        self.default_day = self.apply_day + delay.astype(int)
        # only a share of the market's shoppers ever apply for credit (take-up); the others shop
        # with other means of payment and never reach fenqi's books
        self.applies = rng.random(n) < config.take_up
        self.state = RunState(
            account_of=np.zeros(n, dtype=np.int64),
            opened_day=np.full(n, -1, dtype=np.int64),
            customer_of=np.zeros(n, dtype=np.int64),
        )
        self.repay_agenda: dict[int, set[int]] = defaultdict(set)  # day -> accounts
        self.late_agenda: dict[int, set[int]] = defaultdict(set)  # of those: paying late
        self.refund_agenda: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
        terms = [t.count for t in self.product.installments.terms if t.count in dist.TERM_WEIGHTS]
        weights = np.array([dist.TERM_WEIGHTS[t] for t in terms], dtype=float)
        self.terms = np.array(terms, dtype=int)
        self.term_p = weights / weights.sum() if terms else weights
        self.cycle_allowed = self.product.kind is ProductKind.REVOLVING
        self.run_eod = load_eod() if config.eod else None
        self.shops: list[Shop] = []
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.phase_seconds: dict[str, float] = {}  # where the time goes, for the throughput note
        self.resumable = resumable
        self.stop = stop
        self.first_day = 0  # a resumed run starts after its checkpoint's day
        self.eod_pending: int | None = None  # the checkpoint's day, whose end of day may be due
        self._conn: Connection | None = None  # the day's transaction, when resumable
        self._spent = (0.0, 0.0)  # wall and CPU seconds before a resume

    def account(self, i: int) -> int:
        """Shopper i's credit account id (0: none)."""
        return int(self.state.account_of[i])

    # ------------------------------------------------------------------ set-up
    def _day(self, d: int) -> date:
        return self.config.start + timedelta(days=d)

    def _at(self, d: int, hour: int) -> None:
        self.clock.set(FixedClock.on(self._day(d), hour, str(self.clock.zone)).now())

    def open_shops(self) -> list[Shop]:
        """One shop per SHOPS_PER_SHOPPERS shoppers, at least one per category; shops that
        exist already (a run on the same database) are reused."""
        cats = list(dist.CATEGORIES)
        count = max(len(cats), min(dist.SHOPS_MAX, self.config.shoppers // dist.SHOPS_PER_SHOPPERS))
        shares = np.array([dist.CATEGORIES[c][0] for c in cats])
        per_cat = np.maximum(1, np.round(shares / shares.sum() * count)).astype(int)
        self._at(0, 8)
        shops = []
        with self.ctx.engine.begin() as conn:
            existing = set(conn.execute(select(merchants.c.id)).scalars())
            for c, k in zip(cats, per_cat, strict=True):
                for j in range(int(k)):
                    shop_id = f"{self.config.shop_prefix}-{dist.CATEGORY_CODES[c]}-{j + 1}"
                    key = None
                    if shop_id not in existing:
                        name = f"{c.replace('_', ' ').title()} Shop {j + 1}"
                        key = create_merchant(conn, self.clock, shop_id, name, c)["api_key"]
                    shops.append(Shop(shop_id, c, key))
        self.shops = shops
        self.shops_by_cat = [[s for s in shops if s.category == c] for c in cats]
        return shops

    # ------------------------------------------------------------------ the run
    def run(self) -> Counts:
        started, cpu_started = time.perf_counter(), time.process_time()
        if not self.shops:
            self.open_shops()
        if self.run_eod is None and self.config.eod:
            log.warning("fenqi.batch.eod is not available: end-of-day runs are skipped")
        by_day = np.argsort(self.apply_day, kind="stable")
        bounds = np.searchsorted(self.apply_day[by_day], np.arange(self.config.days + 1))
        timed = self._timed
        if self.eod_pending is not None:  # the checkpoint's day may have stopped in its end of day
            timed("end_of_day", self._end_of_day, self.eod_pending)
            self.eod_pending = None
        if self.progress:
            self.progress(self.first_day, self.config.days)
        for d in range(self.first_day, self.config.days):
            self._check_stop()
            if self.resumable:
                with self.ctx.engine.begin() as conn:
                    self._conn = conn
                    try:
                        self._day_calls(d, by_day[bounds[d] : bounds[d + 1]])
                        self._save(conn, d, started, cpu_started)
                    finally:
                        self._conn = None
            else:
                self._day_calls(d, by_day[bounds[d] : bounds[d + 1]])
            timed("end_of_day", self._end_of_day, d)
            if self.day_done:
                self.day_done(d)
            if self.progress:
                self.progress(d + 1, self.config.days)
        self.observe(self.config.days - 1)
        self.seconds = self._spent[0] + time.perf_counter() - started
        # this process, not the database's
        self.cpu_seconds = self._spent[1] + time.process_time() - cpu_started
        return self.counts

    def _day_calls(self, d: int, applicants: np.ndarray) -> None:
        timed = self._timed
        self._at(d, 9)
        timed("applications", self._applications, d, applicants)
        self._at(d, 12)
        timed("purchases", self._purchases, d)
        self._at(d, 18)
        timed("refunds", self._refunds, d)
        timed("repayments", self._repayments, d)
        if d % OBSERVE_EVERY_DAYS == OBSERVE_EVERY_DAYS - 1:
            timed("observe", self.observe, d)

    def _timed(self, phase: str, work: Callable[..., None], *args: Any) -> None:
        started = time.perf_counter()
        work(*args)
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + (
            time.perf_counter() - started
        )

    def _batched(self, items: Sequence[T], work: Callable[[Connection, T], None]) -> None:
        if self._conn is not None:  # the day's transaction
            self._calls(self._conn, items, work)
            return
        for chunk in _chunks(items, self.config.batch_ops):
            for attempt in range(DEADLOCK_RETRIES + 1):
                try:
                    with self.ctx.engine.begin() as conn:
                        self._calls(conn, chunk, work)
                    break
                except DBAPIError as exc:
                    # parallel workers on PostgreSQL can deadlock on shared ledger rows; the
                    # database undid the transaction, so one call per transaction is retried
                    deadlock = getattr(exc.orig, "sqlstate", None) == "40P01"
                    if not deadlock or len(chunk) > 1 or attempt == DEADLOCK_RETRIES:
                        raise
                    self.counts.refusals["deadlock_retried"] = (
                        self.counts.refusals.get("deadlock_retried", 0) + 1
                    )

    def _calls(
        self, conn: Connection, items: Sequence[T], work: Callable[[Connection, T], None]
    ) -> None:
        for item in items:
            self._check_stop()
            try:
                with conn.begin_nested():
                    work(conn, item)
            except FenqiError as exc:  # a refusal: undone, as the API would
                code = str(getattr(exc, "code", type(exc).__name__))
                self.counts.refusals[code] = self.counts.refusals.get(code, 0) + 1
            self.counts.service_calls += 1

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop():
            raise Stopped("asked to stop")

    # ------------------------------------------------------------------ applications
    def application_body(self, i: int) -> ApplicationIn:
        p = self.pop
        name, id_number, phone = dist.identity(i, int(p.age[i]), self.config.start)
        return ApplicationIn(
            product=self.product.name,
            name=name,
            id_number=id_number,
            phone=phone,
            income_band=cast(Any, p.income_band(i)),  # one of INCOME_BANDS; strict model
            consents=[
                ConsentIn(kind="bureau_inquiry", text_version="v1", scope="credit decision"),
                ConsentIn(kind="shopping_data", text_version="v1", scope="credit decision"),
            ],
            behaviour=Behaviour(
                account_age_days=int(p.account_age_days[i]),
                orders_12m=int(p.orders_12m[i]),
                spend_12m_fen=int(p.spend_12m_fen[i]),
                return_rate_bp=int(p.return_rate_bp[i]),
                other_lenders=int(p.other_lenders[i]),
                bureau_delinquent=bool(p.bureau_delinquent[i]),
            ),
        )

    def _applications(self, d: int, who: np.ndarray) -> None:
        today = self._day(d)
        st = self.state

        def one(conn: Connection, i: int) -> None:
            body = self.application_body(i)
            shop = self._shop_for(i, _unit(self.config.seed, i, 7))
            out = apply(conn, self.ctx, shop.id, body.to_application())
            self.counts.applications += 1
            st.customer_of[i] = out["customer_id"]
            if out["outcome"] == "approved" and out["credit_account_id"]:
                self.counts.approved += 1
                acct = int(out["credit_account_id"])
                st.account_of[i] = acct
                st.opened_day[i] = d
                st.shopper_of_account[acct] = i
                st.features[i] = _features(body, today)

        self._batched([int(i) for i in who if self.applies[i] and self._mine(int(i))], one)

    def _mine(self, i: int) -> bool:
        return i % self.parts == self.part

    def _shop_for(self, i: int, u: float) -> Shop:
        """The favourite category 60% of the time, else a category by its share."""
        cats = len(dist.CATEGORIES)
        if u < 0.6:
            c = int(self.pop.category_idx[i])
        else:
            shares = np.cumsum([v[0] for v in dist.CATEGORIES.values()])
            c = min(cats - 1, int(np.searchsorted(shares / shares[-1], (u - 0.6) / 0.4)))
        pool = self.shops_by_cat[c]
        return pool[int(u * 1_000_003) % len(pool)]

    # ------------------------------------------------------------------ purchases
    def _purchases(self, d: int) -> None:
        """Everyone's demand is drawn, approved or not, so two arms see the same shoppers."""
        p, cfg = self.pop, self.config
        rng = np.random.default_rng([cfg.seed, 3, d])
        today = self._day(d)
        rate = p.orders_month * p.credit_share / DAYS_PER_MONTH * dist.season_multiplier(today)
        soon = (self.default_day - dist.BUST_OUT_DAYS <= d) & (d < self.default_day)
        rate = np.where(self.defaults & soon, rate * dist.BUST_OUT_FACTOR, rate)
        counts = rng.poisson(rate)
        buyers = np.repeat(np.arange(p.n), counts)
        if buyers.size == 0:
            return
        cat_mult = np.array([v[1] for v in dist.CATEGORIES.values()])
        u_shop = rng.random(buyers.size)
        noise = rng.normal(0, 0.5, buyers.size)
        u_plan = rng.random(buyers.size)
        u_term = rng.random(buyers.size)
        u_return = rng.random(buyers.size)
        u_step = rng.random(buyers.size)
        refund_after = rng.integers(*dist.REFUND_DAYS, size=buyers.size)
        orders = []
        for k in (int(x) for x in np.flatnonzero(buyers % self.parts == self.part)):
            i = buyers[k]
            if self.state.account_of[i] == 0 or d < self.state.opened_day[i]:
                continue
            if self.defaults[i] and d >= self.default_day[i]:
                continue  # gone: no longer shops on credit
            shop = self._shop_for(int(i), float(u_shop[k]))
            c = list(dist.CATEGORIES).index(shop.category)
            amount = int(np.exp(p.basket_log_mean[i] + noise[k]) * cat_mult[c])
            amount = min(max(amount, dist.ORDER_AMOUNT_FEN_MIN), dist.ORDER_AMOUNT_FEN_MAX)
            split = dist.sigmoid(
                np.array(1.2 * np.log(amount / dist.INSTALLMENT_PIVOT_FEN) - 0.3 * p.z[i])
            )
            wants_split = float(u_plan[k]) < float(split) or not self.cycle_allowed
            terms = 0
            if wants_split and self.terms.size:
                terms = int(
                    self.terms[
                        min(np.searchsorted(np.cumsum(self.term_p), u_term[k]), self.terms.size - 1)
                    ]
                )
            orders.append(
                (
                    int(i),
                    shop,
                    amount,
                    terms,
                    float(u_return[k]),
                    int(refund_after[k]),
                    float(u_step[k]),
                    k,
                )
            )
        self._batched(orders, lambda conn, o: self._checkout(conn, d, *o))

    def _device(self, i: int, d: int) -> str:
        changes = int(self.pop.device_changes_12m[i] * d / 365)
        return f"dev-{self.config.seed}-{i}-{changes}"

    def _checkout(
        self,
        conn: Connection,
        d: int,
        i: int,
        shop: Shop,
        amount: int,
        terms: int,
        u_return: float,
        refund_after: int,
        u_step: float,
        k: int,
    ) -> None:
        account_id = int(self.state.account_of[i])
        ref = f"sim-{d}-{i}-{k}"
        facts = {
            "transaction_ref": f"{shop.id}:{ref}",
            "credit_account_id": account_id,
            "amount_fen": amount,
            "device_id": self._device(i, d),
            "merchant_category": shop.category,
        }
        verdict = self.ctx.checkout_risk(conn, facts)
        if verdict.decision == "step_up":
            # the shop asks for an SMS code or password, then retries as the API documents
            self.counts.step_ups += 1
            if u_step >= dist.STEP_UP_PASS:
                self.counts.declined_purchases += 1
                return
            verdict = self.ctx.checkout_risk(conn, {**facts, "transaction_ref": f"{ref}:step-up"})
            if verdict.decision == "step_up":
                verdict = RiskVerdict("approve", verdict.reason)
        settings = self.ctx.settings
        try:
            # a marketplace charges at payment, as Huabei and Baitiao do: a sale
            captured = checkout.authorize_order(
                conn,
                self.clock,
                self.product,
                merchant_id=shop.id,
                credit_account_id=account_id,
                amount_fen=amount,
                terms=terms,
                merchant_order_ref=ref,
                client_id=f"{shop.id}:{ref}",
                cap_bp=settings.apr_cap_bp,
                hold_seconds=settings.pending_hold_seconds,
                risk=lambda _conn, _facts: verdict,
                capture=True,
            )
        except FenqiError:
            self.counts.declined_purchases += 1
            raise
        self.counts.purchases += 1
        for due in _DUES.run(conn, {"k_plan": captured["plan_id"]}).scalars():
            day = (due - self.config.start).days
            if day < self.config.days:
                self.repay_agenda[day].add(account_id)
        if u_return * 10_000 < self.pop.return_rate_bp[i]:
            self.refund_agenda[d + refund_after].append((shop.id, int(captured["id"]), amount))

    # ------------------------------------------------------------------ refunds
    def _refunds(self, d: int) -> None:
        def one(conn: Connection, item: tuple[str, int, int]) -> None:
            shop_id, order_id, amount = item
            checkout.refund_order(
                conn,
                self.clock,
                self.product,
                merchant_id=shop_id,
                order_id=order_id,
                amount_fen=amount,
                client_id=f"{shop_id}:refund:{order_id}",
            )
            self.counts.refunds += 1

        self._batched(self.refund_agenda.pop(d, []), one)

    # ------------------------------------------------------------------ repayments
    def _repayments(self, d: int) -> None:
        today = self._day(d)
        cfg, st = self.config, self.state
        due_now = sorted(self.repay_agenda.pop(d, set()))
        self.late_agenda.pop(d, None)
        payers = []
        owed = self._owed(due_now, today)
        for acct in due_now:
            i = st.shopper_of_account[acct]
            amount, oldest = owed.get(acct, (0, today))
            if amount <= 0:
                continue
            if self.defaults[i] and d >= self.default_day[i]:
                st.watch.add(acct)
                continue
            if oldest == today and _unit(cfg.seed, i, d, 11) < self.pop.p_late[i]:
                late = 1 + int(np.log1p(-_unit(cfg.seed, i, d, 12)) / np.log1p(-dist.LATE_DAYS_P))
                pays_on = d + min(late, dist.LATE_DAYS_MAX)
                self.repay_agenda[pays_on].add(acct)
                self.late_agenda[pays_on].add(acct)
                st.watch.add(acct)
                continue
            payers.append((acct, amount))

        def one(conn: Connection, item: tuple[int, int]) -> None:
            acct, amount = item
            credit.repay(conn, self.clock, self.product, acct, amount, f"sim:{acct}:{d}")
            self.counts.repayments += 1

        self._batched(payers, one)

    def _owed(self, accounts: Sequence[int], today: date) -> dict[int, tuple[int, date]]:
        """What each account owes up to today (plan lines and accrued charges), and the oldest
        unpaid due date: read through the account index, a few hundred accounts at a time."""
        out: dict[int, tuple[int, date]] = {}
        lines_q = text(
            "SELECT credit_account_id, SUM(" + _unpaid_sql() + "), MIN(due_date) "
            "FROM plan_lines WHERE credit_account_id IN :ids AND due_date <= :today AND "
            + _unpaid_sql()
            + " > 0 GROUP BY credit_account_id"
        ).bindparams(bindparam("ids", expanding=True))
        # charges the end-of-day run accrued (late-payment penalty, revolving interest) are due
        # at once and come first in the allocation, so a payer pays them too
        accrued_q = text(
            "SELECT credit_account_id, SUM(accrued_fen - paid_fen - waived_fen) FROM accruals "
            "WHERE credit_account_id IN :ids GROUP BY credit_account_id"
        ).bindparams(bindparam("ids", expanding=True))
        with self._reading() as conn:
            for chunk in _chunks(list(accounts), CHUNK_IDS):
                for acct, amount, oldest in conn.execute(lines_q, {"ids": chunk, "today": today}):
                    out[int(acct)] = (int(amount), _as_date(oldest))
                for acct, accrued in conn.execute(accrued_q, {"ids": list(chunk)}):
                    if accrued and int(acct) in out:
                        amount, oldest = out[int(acct)]
                        out[int(acct)] = (amount + int(accrued), oldest)
        return out

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """The day's transaction (it sees the day's own calls), else a connection of its own."""
        if self._conn is not None:
            yield self._conn
            return
        with self.ctx.engine.connect() as conn:
            yield conn

    # ------------------------------------------------------------------ arrears
    def observe(self, d: int) -> None:
        """Days past due of the watched accounts, from their plan lines (the same rule as the
        end-of-day aging: the oldest unpaid amount's due date)."""
        today = self._day(d)
        st = self.state
        owed = self._owed(sorted(st.watch), today - timedelta(days=1))
        for acct in list(st.watch):
            i = st.shopper_of_account[acct]
            if acct not in owed:
                if not (self.defaults[i] and d >= self.default_day[i]):
                    st.watch.discard(acct)
                continue
            dpd = (today - owed[acct][1]).days
            if dpd > st.max_dpd.get(i, 0):
                st.max_dpd[i] = dpd
            if dpd >= 90 and i not in st.first_90_day:
                st.first_90_day[i] = d - (dpd - 90)

    # ------------------------------------------------------------------ checkpoints
    def _save(self, conn: Connection, d: int, started: float, cpu_started: float) -> None:
        """Day d's checkpoint, in day d's transaction (`simulation.checkpoint`)."""
        st = self.state
        late = [(day, acct) for day, accts in self.late_agenda.items() for acct in accts]
        shop_index = {shop.id: k for k, shop in enumerate(self.shops)}
        refunds = [
            (day, shop_index[shop_id], order_id, amount)
            for day, items in self.refund_agenda.items()
            for shop_id, order_id, amount in items
        ]
        arrays = {
            "account_of": st.account_of,
            "opened_day": st.opened_day,
            "customer_of": st.customer_of,
            "max_dpd": _pairs(st.max_dpd),
            "first_90_day": _pairs(st.first_90_day),
            "watch": np.array(sorted(st.watch), dtype=np.int64),
            "late": np.array(late, dtype=np.int64).reshape(-1, 2),
            "refunds": np.array(refunds, dtype=np.int64).reshape(-1, 4),
        }
        meta = {
            "counts": vars(self.counts),
            "phase_seconds": self.phase_seconds,
            "seconds": self._spent[0] + time.perf_counter() - started,
            "cpu_seconds": self._spent[1] + time.process_time() - cpu_started,
            "models_dir": _models_dir(self.ctx),
        }
        checkpoint.save(conn, d, self.config.to_json(), arrays, meta, self.clock.now())

    @classmethod
    def resume(
        cls,
        ctx: Context,
        progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Simulation:
        """The simulation the database holds, as it was at the end of its checkpoint's day
        (calls committed; that day's end of day runs again first, a no-op if it was done)."""
        with ctx.engine.connect() as conn:
            saved = checkpoint.load(conn)
        models_dir = _models_dir(ctx)
        if saved.meta.get("models_dir", models_dir) != models_dir:
            raise ValueError(
                f"models_dir: this simulation decided with the models in "
                f"{saved.meta['models_dir']!r}, not {models_dir!r}; resume it with those"
            )
        sim = cls(ctx, SimConfig.from_json(saved.config), progress, stop=stop)
        sim._restore(saved)
        return sim

    def _restore(self, saved: checkpoint.Checkpoint) -> None:
        a, st = saved.arrays, self.state
        n = self.config.shoppers
        for name in ("account_of", "opened_day", "customer_of"):
            if a[name].shape != (n,):
                raise ValueError(f"checkpoint: {name} has {a[name].shape[0]} shoppers, not {n}")
            getattr(st, name)[:] = a[name]
        holders = np.flatnonzero(st.account_of)
        # in the order they were approved: by day, then shopper (the training table's order)
        for i in sorted((int(i) for i in holders), key=lambda i: (int(st.opened_day[i]), i)):
            st.shopper_of_account[int(st.account_of[i])] = i
            st.features[i] = _features(self.application_body(i), self._day(int(st.opened_day[i])))
        st.max_dpd = {int(k): int(v) for k, v in a["max_dpd"]}
        st.first_90_day = {int(k): int(v) for k, v in a["first_90_day"]}
        st.watch = {int(x) for x in a["watch"]}
        d = saved.day
        for day, acct in a["late"]:
            self.late_agenda[int(day)].add(int(acct))
            self.repay_agenda[int(day)].add(int(acct))
        self.open_shops()
        for day, shop, order_id, amount in a["refunds"]:
            item = (self.shops[int(shop)].id, int(order_id), int(amount))
            self.refund_agenda[int(day)].append(item)
        # the due dates still ahead are the plan lines': every captured plan put its own there
        with self.ctx.engine.connect() as conn:
            dues = conn.execute(
                select(plan_lines.c.credit_account_id, plan_lines.c.due_date)
                .where(plan_lines.c.due_date > self._day(d))
                .where(plan_lines.c.due_date < self._day(self.config.days))
                .distinct()
            )
            for acct, due in dues:
                if int(acct) in st.shopper_of_account:
                    self.repay_agenda[(_as_date(due) - self.config.start).days].add(int(acct))
        meta = saved.meta
        self.counts = Counts(**meta["counts"])  # a fresh dict of refusals, from the JSON
        self.phase_seconds = {k: float(v) for k, v in meta["phase_seconds"].items()}
        self._spent = (float(meta["seconds"]), float(meta["cpu_seconds"]))
        self.first_day = d + 1
        self.eod_pending = d

    def _end_of_day(self, d: int) -> None:
        if self.run_eod is None:
            return
        self._at(d, 23)
        self.run_eod(self.ctx, self._day(d))
        self.counts.eod_runs += 1


_DUES = Prepared(select(plan_lines.c.due_date).where(plan_lines.c.plan_id == bindparam("k_plan")))


def _features(body: ApplicationIn, today: date) -> dict[str, Any]:
    """What the training table keeps of an application: the model's features, as sent."""
    b = body.behaviour
    return {
        "age": age_on(_birth(body.id_number), today),
        "income_band": body.income_band,
        "account_age_days": b.account_age_days,
        "orders_12m": b.orders_12m,
        "spend_12m_fen": b.spend_12m_fen,
        "return_rate_bp": b.return_rate_bp,
        "other_lenders": b.other_lenders,
    }


def _models_dir(ctx: Context) -> str:
    """The models a run decides with, as a checkpoint names them (an absolute path)."""
    return str(Path(ctx.settings.models_dir).resolve())


def _pairs(values: dict[int, int]) -> np.ndarray:
    return np.array(sorted(values.items()), dtype=np.int64).reshape(-1, 2)


def _unpaid_sql() -> str:
    return (
        "(principal_fen - paid_principal_fen - waived_principal_fen + fee_fen - paid_fee_fen"
        " - waived_fee_fen + interest_fen - paid_interest_fen - waived_interest_fen)"
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _birth(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
