"""Funding in the money flows: the one call each credit operation makes, after its own posting.

Every operation that changes a plan's principal calls one function here in its transaction,
after its own ledger entry, so every fen of principal outstanding belongs to exactly one funder
at every commit:

- capture, sale (`purchases.py`): `plan_booked` -> `allocate_plan` (a decline raises, and the
  purchase rolls back with the program's code);
- bill converted (`conversion.py`), hardship plan (`hardship.py`): `plans_replaced` -> the old
  plans paid off in funding, the new plan allocated afresh;
- repayment (`repayments.py`), credit balance applied (`credit_balance.py`): `lines_paid` ->
  `apply_cash` per plan with its principal, fee and interest (a recovery once charged off);
- refund (`refunds.py`): `plan_refunded` -> `apply_cash(REFUND)`, the principal taken off
  unpaid lines;
- early payoff (`payoff.py`): `plan_paid_off` -> `apply_cash(PAYOFF)`;
- charge-off (end of day, from `eod.settle_partition`): `charge_off_funded` ->
  `apply_cash(CHARGE_OFF)` of what each charged-off plan's funders still hold.

Lock order (PostgreSQL; SQLite has one writer): the credit account's row and the customer's
ledger rows (the operation's own entry) first, then the plan's tranches, the funders' state,
borrower and region rows, and last the funders' ledger accounts and the platform's hot
accounts the funding entry posts to. Every path takes them in this order, so none waits on
another in a cycle; a hook placed before the credit posting would invert it (a capture holding
a funder's row waiting for a receivable that a repayment holds while it waits for the funder).

The catalog is the running system's (settings `FENQI_FUNDING_*`), loaded once; `using()`
swaps it for a block (the simulator's what-if arms, tests) and `using(None)` turns funding off
(the benchmark's baseline, and a database with plans booked before migration 0017).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select

from fenqi.clock import Clock
from fenqi.funding.allocation import Borrower, CashKind, age_on
from fenqi.funding.model import FundingCatalog
from fenqi.funding.service import (
    Allocation,
    FundingError,
    allocate_plan,
    apply_cash,
    reverse_cash,
)
from fenqi.store.schema.credit import credit_accounts as ca_t
from fenqi.store.schema.credit import repayment_parts as rp_t
from fenqi.store.schema.funding import funding_tranches as tr_t

PERIOD_DAYS = 30  # income on an installment line covers a month (a promised yield's period)

_UNSET: Any = object()
_CATALOG: ContextVar[Any] = ContextVar("fenqi_funding_catalog", default=_UNSET)


@lru_cache(maxsize=1)
def _configured() -> FundingCatalog | None:
    from fenqi.products.catalog_loader import load_catalog
    from fenqi.settings import get_settings

    from .loader import load_funding_catalog

    s = get_settings()
    if not s.funding_enabled:
        return None
    return load_funding_catalog(
        load_catalog(s.apr_cap_bp, s.catalog_dir), s.funding_platform_floor_bp, s.funding_dir
    )


def active_catalog() -> FundingCatalog | None:
    """The catalog the money flows fund with, or None when funding is off."""
    found = _CATALOG.get()
    return _configured() if found is _UNSET else found


@contextmanager
def using(catalog: FundingCatalog | None) -> Iterator[None]:
    """Fund with `catalog` (None: not at all) inside the block, in this thread or task."""
    token = _CATALOG.set(catalog)
    try:
        yield
    finally:
        _CATALOG.reset(token)


class OnDay:
    """A clock whose business date is `day` (the end of day's run date, which a catch-up run
    reaches before the wall clock's date): funding movements are dated by it."""

    def __init__(self, clock: Clock, day: date) -> None:
        self._clock, self._day = clock, day

    def now(self) -> datetime:
        return self._clock.now()

    def today(self) -> date:
        return self._day


def borrower_of(account: Mapping[str, Any], terms: int, clock: Clock) -> Borrower:
    """What funders' rules see of a credit account's holder (never the ID number itself)."""
    birth = account.get("birth_date")
    return Borrower(
        product=str(account["product"]),
        terms=terms,
        tier=account.get("tier"),
        id_prefix=account.get("id_region"),
        age=None if birth is None else age_on(birth, clock.today()),
    )


def plan_booked(
    conn: Connection, clock: Clock, account: Mapping[str, Any], plan_id: int, principal_fen: int,
    terms: int,
) -> Allocation | None:  # fmt: skip
    """A captured or sold purchase's plan funded (idempotent per plan). FundingDeclined (the
    program's decline code) propagates: the caller's transaction, and the purchase, roll back."""
    catalog = active_catalog()
    if catalog is None or principal_fen <= 0:
        return None
    return allocate_plan(
        conn,
        clock,
        catalog,
        plan_id=plan_id,
        credit_account_id=int(account["id"]),
        principal_fen=principal_fen,
        currency=str(account["currency"]),
        borrower=borrower_of(account, terms, clock),
        client_id=f"plan:{plan_id}",
    )


_TRANCHES = select(
    tr_t.c.plan_id, tr_t.c.outstanding_fen, tr_t.c.charged_off_fen, tr_t.c.recovered_fen
).where(tr_t.c.plan_id.in_(bindparam("k_plans", expanding=True)))


def _held(conn: Connection, plan_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Per plan: its funders' principal outstanding, and charged off not yet recovered."""
    out: dict[int, tuple[int, int]] = {}
    for plan_id, outstanding, lost, recovered in conn.execute(
        _TRANCHES, {"k_plans": list(plan_ids)}
    ):
        o, c = out.get(int(plan_id), (0, 0))
        out[int(plan_id)] = (o + int(outstanding), c + int(lost) - int(recovered))
    return out


def _apply(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    plan_id: int,
    kind: CashKind,
    principal_fen: int,
    client_id: str,
    income: Mapping[str, int] | None = None,
) -> None:
    apply_cash(
        conn,
        clock,
        catalog,
        plan_id=plan_id,
        kind=kind,
        principal_fen=principal_fen,
        client_id=client_id,
        income_fen=income,
        period_days=PERIOD_DAYS,
    )


def plans_replaced(
    conn: Connection,
    clock: Clock,
    credit_account_id: int,
    old_plan_ids: Sequence[int],
    new_plan_id: int,
    principal_fen: int,
    terms: int,
    client_id: str,
) -> Allocation | None:
    """Plans refinanced into a new one (a bill converted to installments, a hardship plan):
    each old plan's funders are paid off in funding (cash due to them), and the new plan is
    allocated afresh (the funders it goes to owe its disbursement); the same funders net out
    in settlement."""
    catalog = active_catalog()
    if catalog is None:
        return None
    held = _held(conn, old_plan_ids)
    for plan_id in sorted(held):
        if held[plan_id][0]:
            _apply(
                conn,
                clock,
                catalog,
                plan_id,
                CashKind.PAYOFF,
                held[plan_id][0],
                f"{client_id}:{plan_id}",
            )
    account = conn.execute(select(ca_t).where(ca_t.c.id == credit_account_id)).mappings().one()
    return plan_booked(conn, clock, dict(account), new_plan_id, principal_fen, terms)


def lines_paid(
    conn: Connection,
    clock: Clock,
    parts: Sequence[tuple[Any, Any, int]],
    client_id: str,
    account: Mapping[str, Any] | None = None,
) -> None:
    """A payment's allocation onto plan lines (a repayment, a credit balance applied) on the
    credit `account` (its row): per plan, the principal paid and the plan's fee and interest
    collected go to its funders. On a charged-off account the principal is a recovery (the
    charge-off is brought into funding first if the end of day has not yet done it).
    Account-level accruals (penalties, revolving interest) are the platform's."""
    catalog = active_catalog()
    if catalog is None:
        return
    charged_off = account is not None and account.get("charged_off_on") is not None
    by_plan: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, kind, amount in parts:
        plan_id = getattr(key, "plan_id", None)
        if plan_id is not None and amount:
            by_plan[int(plan_id)][str(getattr(kind, "value", kind))] += amount
    held = _held(conn, sorted(by_plan))
    for plan_id in sorted(by_plan):
        if plan_id not in held:
            continue  # booked before funding was wired (or with funding off): nobody's
        paid = by_plan[plan_id]
        principal = paid.pop("principal", 0)
        if charged_off:
            _charge_off(conn, clock, catalog, plan_id, held[plan_id][0])
            if principal:
                _apply(
                    conn, clock, catalog, plan_id, CashKind.RECOVERY, principal,
                    f"{client_id}:{plan_id}",
                )  # fmt: skip
            continue
        _apply(
            conn,
            clock,
            catalog,
            plan_id,
            CashKind.REPAYMENT,
            principal,
            f"{client_id}:{plan_id}",
            {k: v for k, v in paid.items() if k in ("fee", "interest")},
        )


_PLANS_OF_REPAYMENT = (
    select(rp_t.c.plan_id)
    .where(rp_t.c.repayment_id == bindparam("k_repayment"), rp_t.c.plan_id.is_not(None))
    .distinct()
)


def repayment_reversed(
    conn: Connection, clock: Clock, repayment: Mapping[str, Any], client_id: str
) -> int:
    """A repayment that bounced (`repayment`: its row): what it gave each plan's funders is
    taken back (`service.reverse_cash`, per plan, whichever of the two ways it was paid: a
    repayment or a credit balance applied). Returns the principal the funders hold again."""
    if active_catalog() is None:
        return 0
    plan_ids = sorted(
        int(p)
        for p in conn.execute(_PLANS_OF_REPAYMENT, {"k_repayment": repayment["id"]}).scalars()
    )
    given = 0
    for plan_id in plan_ids:
        for prefix in ("repay", "credit-applied"):
            given += reverse_cash(
                conn,
                clock,
                client_id=f"{prefix}:{repayment['client_id']}:{plan_id}",
                reversal_id=f"reverse:{client_id}:{plan_id}",
            )
    return given


def plan_refunded(
    conn: Connection, clock: Clock, plan_id: int, principal_fen: int, client_id: str
) -> None:
    """A refund took `principal_fen` off the plan's unpaid principal (what it paid back of
    principal already repaid was the funders' at the repayment, and stays theirs). On a plan
    whose funders have charged it off, the shop's money recovers their loss (a recovery)."""
    catalog = active_catalog()
    held = _held(conn, [plan_id]).get(plan_id)
    if catalog is None or principal_fen <= 0 or held is None:
        return
    outstanding, lost = held
    if outstanding >= principal_fen:
        kind, amount = CashKind.REFUND, principal_fen
    else:
        kind, amount = CashKind.RECOVERY, min(principal_fen, lost)
    if amount:
        _apply(conn, clock, catalog, plan_id, kind, amount, f"refund:{client_id}")


def plan_paid_off(conn: Connection, clock: Clock, plan_id: int, quote: Any, client_id: str) -> None:
    """An early payoff (`quote`: the credit.payoff.PayoffQuote paid): the plan's principal,
    fee and interest collected go to its funders."""
    catalog = active_catalog()
    if catalog is None or plan_id not in _held(conn, [plan_id]):
        return
    income = {"fee": int(quote.fee_fen), "interest": int(quote.interest_fen)}
    _apply(
        conn, clock, catalog, plan_id, CashKind.PAYOFF, int(quote.principal_fen),
        f"payoff:{client_id}", income,
    )  # fmt: skip


def _charge_off(
    conn: Connection, clock: Clock, catalog: FundingCatalog, plan_id: int, outstanding_fen: int
) -> None:
    if outstanding_fen > 0:
        _apply(
            conn, clock, catalog, plan_id, CashKind.CHARGE_OFF, outstanding_fen,
            f"charge-off:{plan_id}",
        )  # fmt: skip


_CHARGED_OFF_HELD = (
    select(tr_t.c.plan_id, tr_t.c.outstanding_fen)
    .select_from(tr_t.join(ca_t, ca_t.c.id == tr_t.c.credit_account_id))
    .where(
        and_(
            ca_t.c.id.between(bindparam("k_lo"), bindparam("k_hi")),
            ca_t.c.charged_off_on.is_not(None),
            ca_t.c.charged_off_on <= bindparam("k_day"),
            tr_t.c.outstanding_fen > 0,
        )
    )
)


def charge_off_funded(conn: Connection, clock: Clock, day: date, lo: int, hi: int) -> int:
    """The end of day's charge-offs brought into funding, for the credit accounts lo..hi: each
    plan of an account charged off by `day` whose funders still hold principal has it charged
    off among them (pro rata; each funder's loss by the program's rule). Idempotent per plan;
    a resumed run finds nothing left. Returns the principal charged off."""
    catalog = active_catalog()
    if catalog is None:
        return 0
    clock = OnDay(clock, day)
    held: dict[int, int] = defaultdict(int)
    for plan_id, outstanding in conn.execute(
        _CHARGED_OFF_HELD, {"k_lo": lo, "k_hi": hi, "k_day": day}
    ):
        held[int(plan_id)] += int(outstanding)
    for plan_id in sorted(held):
        _charge_off(conn, clock, catalog, plan_id, held[plan_id])
    return sum(held.values())


__all__ = [
    "FundingError",
    "active_catalog",
    "borrower_of",
    "charge_off_funded",
    "lines_paid",
    "plan_booked",
    "plan_paid_off",
    "plan_refunded",
    "plans_replaced",
    "repayment_reversed",
    "using",
]
