"""The end of day's funding settlement step: per partition, set-based, restartable.

`settle_partition(conn, run, part)` has the signature of a step in batch/steps.py's STEPS and
runs in the partition's transaction. For the run's business date and the partition's credit
accounts it computes each funder's figures (two GROUP BY statements: the day's tranches, the
day's movements), replaces the partition's rows in `funding_settlement_parts`, then sets the
day's totals in `funding_settlements` of the funders it touched to the sum of all partitions'
rows, with those total rows locked (in funder order) before summing. Partitions may run in any
order or at once, and rerun (a resumed run): the totals end equal to the sum of the parts.

It runs last in `batch.steps.STEPS` ("funding_settle", after charge_off) and first brings the
day's charge-offs into funding (`wiring.charge_off_funded`: each charged-off plan's funders'
principal charged off among them, idempotent per plan), so the day's losses count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, delete, func, select, update

from fenqi.funding.settlement import MOVED_COLUMNS
from fenqi.store.schema.funding import funder_state as st_t
from fenqi.store.schema.funding import funding_movements as mv_t
from fenqi.store.schema.funding import funding_settlement_parts as parts_t
from fenqi.store.schema.funding import funding_settlements as set_t
from fenqi.store.schema.funding import funding_tranches as tr_t
from fenqi.store.upsert import conflict_insert

FIGURES = (
    "disbursed_fen",
    "principal_collected_fen",
    "income_collected_fen",
    "losses_fen",
    "recoveries_fen",
    "due_to_funder_fen",
)


class _Run(Protocol):  # what the step reads of batch.steps.RunFacts
    @property
    def business_date(self) -> Any: ...
    @property
    def now(self) -> Any: ...


class _Part(Protocol):  # batch.sql.Partition
    @property
    def lo(self) -> int: ...
    @property
    def hi(self) -> int: ...


def _in_part(column: Any) -> Any:
    return column.between(bindparam("k_lo"), bindparam("k_hi"))


_DISBURSED = (
    select(tr_t.c.funder_id, tr_t.c.currency, tr_t.c.principal_fen)
    .where(tr_t.c.business_date == bindparam("k_day"), _in_part(tr_t.c.credit_account_id))
    .subquery()
)
_DISBURSED_SUM = select(
    _DISBURSED.c.funder_id,
    _DISBURSED.c.currency,
    func.sum(_DISBURSED.c.principal_fen),
).group_by(_DISBURSED.c.funder_id, _DISBURSED.c.currency)
_MOVED = (
    select(mv_t.c.funder_id, *MOVED_COLUMNS)
    .where(
        mv_t.c.business_date == bindparam("k_day"),
        mv_t.c.funder_id != "-",
        _in_part(mv_t.c.credit_account_id),
    )
    .group_by(mv_t.c.funder_id)
)


def partition_figures(conn: Connection, day: Any, lo: int, hi: int) -> dict[str, dict[str, Any]]:
    """Each funder's figures for `day` over the credit accounts lo..hi."""
    params = {"k_day": day, "k_lo": lo, "k_hi": hi}
    out: dict[str, dict[str, Any]] = {}

    def row(funder: str) -> dict[str, Any]:
        return out.setdefault(funder, {"currency": None, **{f: 0 for f in FIGURES}})

    for funder, currency, amount in conn.execute(_DISBURSED_SUM, params):
        r = row(str(funder))
        r["currency"] = str(currency)
        r["disbursed_fen"] = int(amount)
    for funder, collected, income, losses, recoveries, due in conn.execute(_MOVED, params):
        r = row(str(funder))
        r.update(
            principal_collected_fen=int(collected),
            income_collected_fen=int(income),
            losses_fen=int(losses),
            recoveries_fen=int(recoveries),
        )
        r["due_to_funder_fen"] = int(due)
    for r in out.values():
        r["due_to_funder_fen"] -= r["disbursed_fen"]
    if any(r["currency"] is None for r in out.values()):
        currencies = dict(conn.execute(select(st_t.c.funder_id, st_t.c.currency)).all())
        for funder, r in out.items():
            r["currency"] = r["currency"] or str(currencies.get(funder, "CNY"))
    return out


def _recompute_totals(conn: Connection, run: _Run, funders: Mapping[str, str]) -> None:
    """The day's totals of `funders` (id -> currency) set to the sum of their parts. Each
    total row is made to exist, then locked in funder order, before the parts are summed: a
    partition committing meanwhile is waited for, and its part is in the sum (READ COMMITTED
    reads each statement afresh; SQLite has one writer)."""
    if not funders:
        return
    day = run.business_date
    ids = sorted(funders)
    stmt = conflict_insert(conn.dialect.name, set_t).values(
        [
            {
                "funder_id": f,
                "business_date": day,
                "currency": funders[f],
                **{c: 0 for c in FIGURES},
                "created_at": run.now,
            }
            for f in ids
        ]
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["funder_id", "business_date"]))
    conn.execute(
        select(set_t.c.funder_id)
        .where(set_t.c.business_date == day, set_t.c.funder_id.in_(ids))
        .order_by(set_t.c.funder_id)
        .with_for_update()
    ).all()
    sums = {
        str(r[0]): r[1:]
        for r in conn.execute(
            select(parts_t.c.funder_id, *[func.sum(parts_t.c[c]) for c in FIGURES])
            .where(parts_t.c.business_date == day, parts_t.c.funder_id.in_(ids))
            .group_by(parts_t.c.funder_id)
        )
    }
    conn.execute(
        update(set_t)
        .where(
            set_t.c.funder_id == bindparam("k_funder"),
            set_t.c.business_date == bindparam("k_day"),
        )
        .values({c: bindparam(f"k_{c}") for c in [*FIGURES, "created_at"]}),
        [
            {
                "k_funder": f,
                "k_day": day,
                "k_created_at": run.now,
                **{
                    f"k_{c}": int(v or 0)
                    for c, v in zip(FIGURES, sums.get(f, [0] * 6), strict=True)
                },
            }
            for f in ids
        ],
    )


def settle_partition(conn: Connection, run: _Run, part: _Part) -> tuple[int, int]:
    """The step: the partition's figures written and the day's totals moved by the change.
    Returns (funders with figures, amount due to funders net) for the run's figures."""
    day = run.business_date
    clock = getattr(run, "clock", None)
    if clock is not None:
        from fenqi.funding.wiring import charge_off_funded

        charge_off_funded(conn, clock, day, part.lo, part.hi)
    new = partition_figures(conn, day, part.lo, part.hi)
    where = and_(parts_t.c.business_date == day, parts_t.c.part_lo == part.lo)
    old = {
        str(r.funder_id): {"currency": r.currency, **{c: int(r._mapping[c]) for c in FIGURES}}
        for r in conn.execute(select(parts_t).where(where))
    }
    touched = {f: str(r["currency"]) for f, r in {**old, **new}.items()}
    conn.execute(delete(parts_t).where(where))
    if new:
        conn.execute(
            parts_t.insert(),
            [
                {
                    "funder_id": f,
                    "business_date": day,
                    "part_lo": part.lo,
                    "part_hi": part.hi,
                    **r,
                    "created_at": run.now,
                }
                for f, r in sorted(new.items())
            ],
        )
    _recompute_totals(conn, run, touched)
    return len(new), sum(r["due_to_funder_fen"] for r in new.values())
