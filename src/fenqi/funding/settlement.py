"""A business date's settlement figures per funder, and their check against the ledger.

Set-based: two GROUP BY statements (the day's tranches, the day's movements) and one upsert,
whatever the number of loans; running a date again rewrites the same figures (restartable,
idempotent). Not yet a step of the end of day (see docs/funding.md): `fenqi funding settle`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, select

from fenqi.clock import Clock
from fenqi.funding.allocation import CashKind
from fenqi.funding.model import FundingCatalog
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.store.schema.funding import funding_movements as mv_t
from fenqi.store.schema.funding import funding_settlements as set_t
from fenqi.store.schema.funding import funding_tranches as tr_t
from fenqi.store.schema.ledger import ledger_accounts as acc
from fenqi.store.schema.ledger import ledger_entries as ent
from fenqi.store.schema.ledger import ledger_postings as pst
from fenqi.store.upsert import conflict_insert

COLLECTED = (CashKind.REPAYMENT, CashKind.REFUND, CashKind.PAYOFF)
LOSSES = (CashKind.CHARGE_OFF, CashKind.WAIVER)


@dataclass(frozen=True, slots=True)
class DayFigures:
    funder_id: str
    business_date: date
    currency: str
    disbursed_fen: int = 0
    principal_collected_fen: int = 0
    income_collected_fen: int = 0
    losses_fen: int = 0
    recoveries_fen: int = 0
    due_to_funder_fen: int = 0  # negative: the funder owes the platform (its disbursements)


def _sum_if(kinds: tuple[CashKind, ...]) -> Any:
    return func.coalesce(
        func.sum(case((mv_t.c.kind.in_([k.value for k in kinds]), mv_t.c.principal_fen), else_=0)),
        0,
    )


_DISBURSED = (
    select(tr_t.c.funder_id, func.sum(tr_t.c.principal_fen))
    .where(tr_t.c.business_date == bindparam("k_day"))
    .group_by(tr_t.c.funder_id)
)
# collected, income, losses, recoveries, due (also grouped per partition by funding/eod.py)
MOVED_COLUMNS = (
    _sum_if(COLLECTED),
    func.coalesce(func.sum(mv_t.c.income_fen), 0),
    _sum_if(LOSSES),
    _sum_if((CashKind.RECOVERY,)),
    func.coalesce(func.sum(mv_t.c.due_fen), 0),
)
_MOVED = (
    select(mv_t.c.funder_id, *MOVED_COLUMNS)
    .where(mv_t.c.business_date == bindparam("k_day"), mv_t.c.funder_id != "-")
    .group_by(mv_t.c.funder_id)
)


def day_figures(conn: Connection, catalog: FundingCatalog, day: date) -> list[DayFigures]:
    """Each funder's figures for `day`, from the day's tranches (disbursed) and movements."""
    disbursed = {str(f): int(v) for f, v in conn.execute(_DISBURSED, {"k_day": day}).all()}
    moved = {str(r[0]): [int(x) for x in r[1:]] for r in conn.execute(_MOVED, {"k_day": day})}
    out = []
    for funder_id in sorted(set(disbursed) | set(moved)):
        funder = catalog.funders.get(funder_id)
        collected, income, losses, recoveries, due = moved.get(funder_id, [0, 0, 0, 0, 0])
        out.append(
            DayFigures(
                funder_id=funder_id,
                business_date=day,
                currency=funder.currency if funder else "CNY",
                disbursed_fen=disbursed.get(funder_id, 0),
                principal_collected_fen=collected,
                income_collected_fen=income,
                losses_fen=losses,
                recoveries_fen=recoveries,
                due_to_funder_fen=due - disbursed.get(funder_id, 0),
            )
        )
    return out


def settle_day(
    conn: Connection, clock: Clock, catalog: FundingCatalog, day: date
) -> list[DayFigures]:
    """Write the day's figures to funding_settlements (again for a date run before)."""
    figures = day_figures(conn, catalog, day)
    if figures:
        stmt = conflict_insert(conn.dialect.name, set_t).values(
            [{**asdict(f), "created_at": clock.now()} for f in figures]
        )
        columns = [c for c in asdict(figures[0]) if c not in ("funder_id", "business_date")]
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["funder_id", "business_date"],
                set_={c: stmt.excluded[c] for c in [*columns, "created_at"]},
            )
        )
    return figures


def ledger_day(conn: Connection, day: date) -> dict[str, tuple[int, int]]:
    """Per funder, from the ledger alone: (cash due credited, less debited other than by a
    payout (a bounced repayment's reversal), disbursement debited to its settlement account by
    allocations) in entries of `day`."""
    out: dict[str, list[int]] = {}
    for side, code, posting_code, index in (
        (pst.c.credit_account_id, AccountCode.FUNDER_CASH_DUE, None, 0),
        (pst.c.debit_account_id, AccountCode.FUNDER_CASH_DUE, "-funder_payout", 2),
        (pst.c.debit_account_id, AccountCode.FUNDER_SETTLEMENT, "funding", 1),
    ):
        if posting_code is None:
            code_rule = []
        elif posting_code.startswith("-"):
            code_rule = [pst.c.code != posting_code[1:]]
        else:
            code_rule = [pst.c.code == posting_code]
        rows = conn.execute(
            select(acc.c.owner_id, func.sum(pst.c.amount_fen))
            .select_from(pst)
            .join(ent, ent.c.id == pst.c.entry_id)
            .join(acc, acc.c.id == side)
            .where(
                ent.c.business_date == day,
                pst.c.phase == "posted",
                and_(acc.c.owner_kind == OwnerKind.FUNDER.value, acc.c.code == code.value),
                *code_rule,
            )
            .group_by(acc.c.owner_id)
        ).all()
        for owner, amount in rows:
            out.setdefault(str(owner), [0, 0, 0])[index] = int(amount)
    return {k: (v[0] - v[2], v[1]) for k, v in out.items()}


def check_against_ledger(
    conn: Connection, catalog: FundingCatalog, day: date
) -> list[dict[str, Any]]:
    """Funders whose day figures and ledger disagree (empty: they agree to the fen)."""
    ledger = ledger_day(conn, day)
    figures = {f.funder_id: f for f in day_figures(conn, catalog, day)}
    out = []
    for funder_id in sorted(set(ledger) | set(figures)):
        f = figures.get(funder_id)
        due_ledger, disbursed_ledger = ledger.get(funder_id, (0, 0))
        disbursed = f.disbursed_fen if f else 0
        due = (f.due_to_funder_fen + disbursed) if f else 0
        if (due, disbursed) != (due_ledger, disbursed_ledger):
            out.append(
                {
                    "funder": funder_id,
                    "disbursed_fen": disbursed,
                    "ledger_disbursed_fen": disbursed_ledger,
                    "cash_due_fen": due,
                    "ledger_cash_due_fen": due_ledger,
                }
            )
    return out
