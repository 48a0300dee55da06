"""Funding in the database and the ledger: allocate a plan to funders, split later cash.

Both run inside the caller's transaction (the capture's, the repayment's), so a plan is funded
if and only if it is booked. Partner limits are enforced by a conditional update of the
funders' state rows (and of their exposure rows for the borrower), one INSERT ... ON CONFLICT DO
UPDATE ... WHERE for all of a loan's funders: concurrent allocations queue on a funder's row
(PostgreSQL checks the WHERE clause on the row's latest version once locked; SQLite has one
writer) and none can take a funder past a cap. A program tried and refused is moved back before
the fallback runs.

Ledger (see docs/funding.md): at allocation, per funder, Dr funder_settlement / Cr
funder_principal (the funder owes its part of the disbursement; the principal is now its).
Later principal moves Dr funder_principal / Cr funder_cash_due (collected for it), or, for a loss
the funder bears, Cr credit_loss_expense (the platform's write-off was too large by the partner's
share) or Cr funder_settlement (own capital written down). Partners' income: Dr funding_cost /
Cr funder_cash_due.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from fenqi.clock import Clock
from fenqi.errors import FenqiError
from fenqi.funding.allocation import (
    Borrower,
    CashKind,
    IncomeSplit,
    Tranche,
    ineligible_reasons,
    loss_borne_by_platform,
    program_shares,
    split_event,
    split_income,
    split_principal,
)
from fenqi.funding.approval import Approver, PartnerApprover
from fenqi.funding.model import Fallback, Funder, FunderKind, FundingCatalog, LossRule, Program
from fenqi.ledger.accounts import open_account, open_accounts
from fenqi.ledger.chart import FUNDER_CODES, AccountCode, OwnerKind
from fenqi.ledger.entry import EntryRequest, PostingSpec
from fenqi.ledger.service import post_entry, reverse_entry
from fenqi.money import BP_PER_UNIT
from fenqi.store.prepared import Prepared
from fenqi.store.schema.funding import funder_exposure as exp_t
from fenqi.store.schema.funding import funder_region_exposure as reg_t
from fenqi.store.schema.funding import funder_state as st_t
from fenqi.store.schema.funding import funding_movements as mv_t
from fenqi.store.schema.funding import funding_tranches as tr_t
from fenqi.store.upsert import conflict_insert

PLATFORM = "platform"  # owner id of the platform's own ledger accounts (credit/service.py)
OWN_ONLY = "own_capital"  # program id recorded when no program serves a product


class FundingError(FenqiError):
    code = "funding_error"
    http_status = 422


class FundingDeclined(FundingError):
    """No funder can take the loan: the purchase is declined with the program's code."""

    code = "funding_unavailable"


@dataclass(frozen=True, slots=True)
class Allocation:
    plan_id: int
    program_id: str
    tranches: dict[str, int]  # funder id -> principal funded
    # why the program's shares were not used (a partner ineligible or full), or None
    fallback_reason: str | None = None
    entry_id: int | None = None
    replayed: bool = False


# ------------------------------------------------------------------ limits in the database


_STATE_COLUMNS = (
    "funder_id",
    "currency",
    "outstanding_fen",
    "lent_on",
    "lent_on_day_fen",
    "updated_at",
    "total_cap_fen",
    "day_cap_fen",
)
_EXPOSURE_COLUMNS = ("credit_account_id", "funder_id", "outstanding_fen", "cap_fen")


@lru_cache(maxsize=16)
def _reserve_state(dialect_name: str, rows: int) -> Any:
    """Add each funder's part to its state row in one statement: INSERT of one row per funder
    (its part, today, its caps) ON CONFLICT DO UPDATE adding to the row WHERE the caps allow it,
    RETURNING the funders that moved. A row refused by the WHERE clause is not returned. The
    caps travel with the row (the file's limits, last applied), so one statement checks each
    funder against its own. Built once per dialect and number of funders."""
    stmt = conflict_insert(dialect_name, st_t).values(
        [
            {c: bindparam(f"{c}_{i}", type_=st_t.c[c].type) for c in _STATE_COLUMNS}
            for i in range(rows)
        ]
    )
    new = stmt.excluded
    lent_today = case((st_t.c.lent_on == new.lent_on, st_t.c.lent_on_day_fen), else_=literal(0))
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=["funder_id"],
            set_={
                "outstanding_fen": st_t.c.outstanding_fen + new.outstanding_fen,
                "lent_on_day_fen": lent_today + new.lent_on_day_fen,
                "lent_on": new.lent_on,
                "updated_at": new.updated_at,
                "total_cap_fen": new.total_cap_fen,
                "day_cap_fen": new.day_cap_fen,
            },
            where=and_(
                or_(
                    new.total_cap_fen.is_(None),
                    st_t.c.outstanding_fen + new.outstanding_fen <= new.total_cap_fen,
                ),
                or_(new.day_cap_fen.is_(None), lent_today + new.lent_on_day_fen <= new.day_cap_fen),
            ),
        ).returning(st_t.c.funder_id)
    )


@lru_cache(maxsize=16)
def _reserve_exposure(dialect_name: str, rows: int) -> Any:
    """The same for the funders' exposure to one borrower, against their per-borrower caps."""
    stmt = conflict_insert(dialect_name, exp_t).values(
        [
            {c: bindparam(f"{c}_{i}", type_=exp_t.c[c].type) for c in _EXPOSURE_COLUMNS}
            for i in range(rows)
        ]
    )
    new = stmt.excluded
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=["credit_account_id", "funder_id"],
            set_={
                "outstanding_fen": exp_t.c.outstanding_fen + new.outstanding_fen,
                "cap_fen": new.cap_fen,
            },
            where=or_(
                new.cap_fen.is_(None), exp_t.c.outstanding_fen + new.outstanding_fen <= new.cap_fen
            ),
        ).returning(exp_t.c.funder_id)
    )


_REGION_COLUMNS = ("funder_id", "region", "outstanding_fen", "cap_fen")
UNKNOWN_REGION = "00"


def region_of(id_prefix: str | None) -> str:
    """The province a borrower counts in for concentration: the ID number's first two digits."""
    return id_prefix[:2] if id_prefix and len(id_prefix) >= 2 else UNKNOWN_REGION


@lru_cache(maxsize=16)
def _reserve_region(dialect_name: str, rows: int) -> Any:
    """The same for the funders' exposure to one region (province), against their region caps."""
    stmt = conflict_insert(dialect_name, reg_t).values(
        [
            {c: bindparam(f"{c}_{i}", type_=reg_t.c[c].type) for c in _REGION_COLUMNS}
            for i in range(rows)
        ]
    )
    new = stmt.excluded
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=["funder_id", "region"],
            set_={
                "outstanding_fen": reg_t.c.outstanding_fen + new.outstanding_fen,
                "cap_fen": new.cap_fen,
            },
            where=or_(
                new.cap_fen.is_(None), reg_t.c.outstanding_fen + new.outstanding_fen <= new.cap_fen
            ),
        ).returning(reg_t.c.funder_id)
    )


_UNDO_STATE = (
    update(st_t)
    .where(st_t.c.funder_id == bindparam("k_funder"))
    .values(
        outstanding_fen=st_t.c.outstanding_fen - bindparam("k_amount"),
        lent_on_day_fen=st_t.c.lent_on_day_fen - bindparam("k_amount"),
    )
)
_UNDO_EXPOSURE = (
    update(exp_t)
    .where(
        exp_t.c.credit_account_id == bindparam("k_account"),
        exp_t.c.funder_id == bindparam("k_funder"),
    )
    .values(outstanding_fen=exp_t.c.outstanding_fen - bindparam("k_amount"))
)


_UNDO_REGION = (
    update(reg_t)
    .where(reg_t.c.funder_id == bindparam("k_funder"), reg_t.c.region == bindparam("k_region"))
    .values(outstanding_fen=reg_t.c.outstanding_fen - bindparam("k_amount"))
)


def _over_cap(funder: Funder, amount_fen: int) -> str | None:
    """A part larger than a cap on its own (checked here: a funder's first row is inserted,
    not updated, so the statement's WHERE clause does not see it)."""
    limits = funder.limits
    for cap, what in (
        (limits.total_outstanding_fen, "total"),
        (limits.new_per_day_fen, "daily"),
        (limits.per_borrower_fen, "per borrower"),
        (limits.per_region_fen, "per region"),
    ):
        if cap is not None and amount_fen > cap:
            return f"{funder.id}: over its {what} limit"
    return None


def _reserve_all(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    credit_account_id: int,
    parts: Mapping[str, int],
    region: str = UNKNOWN_REGION,
) -> str | None:
    """Add every funder's part to its counters if all its caps allow it, or none (the rows that
    moved are moved back, as the ledger does): three statements when all fit (state, borrower,
    region). Funders in id order, so concurrent allocations lock their rows in one order. Why
    not, when refused."""
    funders = [catalog.funders[f] for f in sorted(parts)]
    for funder in funders:
        too_big = _over_cap(funder, parts[funder.id])
        if too_big is not None:
            return too_big
    today, now = clock.today(), clock.now()
    state: dict[str, Any] = {}
    exposure: dict[str, Any] = {}
    regional: dict[str, Any] = {}
    for i, f in enumerate(funders):
        regional.update(
            {
                f"funder_id_{i}": f.id,
                f"region_{i}": region,
                f"outstanding_fen_{i}": parts[f.id],
                f"cap_fen_{i}": f.limits.per_region_fen,
            }
        )
        state.update(
            {
                f"funder_id_{i}": f.id,
                f"currency_{i}": f.currency,
                f"outstanding_fen_{i}": parts[f.id],
                f"lent_on_{i}": today,
                f"lent_on_day_fen_{i}": parts[f.id],
                f"updated_at_{i}": now,
                f"total_cap_fen_{i}": f.limits.total_outstanding_fen,
                f"day_cap_fen_{i}": f.limits.new_per_day_fen,
            }
        )
        exposure.update(
            {
                f"credit_account_id_{i}": credit_account_id,
                f"funder_id_{i}": f.id,
                f"outstanding_fen_{i}": parts[f.id],
                f"cap_fen_{i}": f.limits.per_borrower_fen,
            }
        )
    dialect = conn.dialect.name
    moved = {str(r[0]) for r in _reserve_state(dialect, len(funders)).run(conn, state).rows}
    refused = [f.id for f in funders if f.id not in moved]
    if not refused:
        exposed = {
            str(r[0]) for r in _reserve_exposure(dialect, len(funders)).run(conn, exposure).rows
        }
        over = [f.id for f in funders if f.id not in exposed]
        if not over:
            in_region = {
                str(r[0]) for r in _reserve_region(dialect, len(funders)).run(conn, regional).rows
            }
            crowded = [f.id for f in funders if f.id not in in_region]
            if not crowded:
                return None
            if in_region:
                conn.execute(
                    _UNDO_REGION,
                    [
                        {"k_funder": f, "k_region": region, "k_amount": parts[f]}
                        for f in sorted(in_region)
                    ],
                )
            exposed_all = sorted(exposed)
            conn.execute(
                _UNDO_EXPOSURE,
                [
                    {"k_account": credit_account_id, "k_funder": f, "k_amount": parts[f]}
                    for f in exposed_all
                ],
            )
            conn.execute(
                _UNDO_STATE, [{"k_funder": f, "k_amount": parts[f]} for f in sorted(moved)]
            )
            return f"{crowded[0]}: over its limit per region ({region})"
        if exposed:
            conn.execute(
                _UNDO_EXPOSURE,
                [
                    {"k_account": credit_account_id, "k_funder": f, "k_amount": parts[f]}
                    for f in sorted(exposed)
                ],
            )
        reason = f"{over[0]}: over its limit per borrower"
    else:
        reason = f"{refused[0]}: over its total or daily limit"
    if moved:
        conn.execute(_UNDO_STATE, [{"k_funder": f, "k_amount": parts[f]} for f in sorted(moved)])
    return reason


# ------------------------------------------------------------------ allocation

_TRANCHES_OF_PLAN = (
    select(tr_t).where(tr_t.c.plan_id == bindparam("k_plan")).order_by(tr_t.c.funder_id)
)
_TRANCHES_PREPARED = Prepared(_TRANCHES_OF_PLAN)
_INSERT_TRANCHES = Prepared(insert(tr_t))


def allocate_plan(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    *,
    plan_id: int,
    credit_account_id: int,
    principal_fen: int,
    currency: str,
    borrower: Borrower,
    client_id: str,
    approver: Approver | None = None,
) -> Allocation:
    """Fund a plan's principal: the first program serving the product whose funders all accept
    the loan and have room takes it, split by share; otherwise the program's fallback (own
    capital alone, the next program, or a decline with the program's code). A product no
    program serves is funded by own capital alone. Idempotent per plan: a second call returns
    the tranches already written. Raises FundingDeclined when nobody can fund it (nothing is
    written; the caller's transaction decides what else to undo). A program with
    `partner_approval` asks each partner (`approver`, by default its rule set or endpoint:
    approval.py) before reserving; a partner that declines is treated as one that is full."""
    if principal_fen <= 0:
        raise FundingError("principal_fen: must be positive", code="invalid_amount")
    existing = _TRANCHES_PREPARED.run(conn, {"k_plan": plan_id}).mappings()
    if existing:
        return Allocation(
            plan_id,
            str(existing[0]["program_id"]),
            {str(r["funder_id"]): int(r["principal_fen"]) for r in existing},
            entry_id=existing[0]["ledger_entry_id"],
            replayed=True,
        )
    if currency not in _own_currencies(catalog):
        raise FundingDeclined(f"no funder lends in {currency}", code="funding_unavailable")
    own = catalog.own_for(currency)
    region = region_of(borrower.id_prefix)
    programs = catalog.programs_for(borrower.product, currency)
    if not programs:
        reason = ineligible_reasons(own.eligibility, borrower)
        if not reason:
            refused = _reserve_all(
                conn, clock, catalog, credit_account_id, {own.id: principal_fen}, region
            )
            if refused is None:
                return _book(
                    conn,
                    clock,
                    catalog,
                    plan_id,
                    credit_account_id,
                    currency,
                    OWN_ONLY,
                    {own.id: (BP_PER_UNIT, principal_fen)},
                    client_id,
                    None,
                    region,
                )
            reason = [refused]
        raise FundingDeclined(f"own capital cannot fund the plan: {'; '.join(reason)}")
    why: list[str] = []
    for program in programs:
        refusal = _try_program(
            conn,
            clock,
            catalog,
            program,
            credit_account_id,
            principal_fen,
            borrower,
            plan_id,
            approver,
        )
        if refusal is None:
            shares = dict(program_shares(program))
            parts = split_principal(
                principal_fen, program_shares(program), catalog.own_for(program.currency).id
            )
            return _book(
                conn,
                clock,
                catalog,
                plan_id,
                credit_account_id,
                currency,
                program.id,
                {f: (shares[f], p) for f, p in parts.items()},
                client_id,
                None,
                region,
            )
        why.append(f"{program.id}: {refusal}")
        if program.fallback is Fallback.PLATFORM_ALONE:
            alone = ineligible_reasons(own.eligibility, borrower)
            refused = (
                None
                if alone
                else _reserve_all(
                    conn, clock, catalog, credit_account_id, {own.id: principal_fen}, region
                )
            )
            if not alone and refused is None:
                return _book(
                    conn,
                    clock,
                    catalog,
                    plan_id,
                    credit_account_id,
                    currency,
                    program.id,
                    {own.id: (BP_PER_UNIT, principal_fen)},
                    client_id,
                    "; ".join(why),
                    region,
                )
            raise FundingDeclined(
                f"{'; '.join(why)}; own capital cannot take it alone: "
                f"{'; '.join(alone) or refused}",
                code=program.decline_code,
            )
        if program.fallback is Fallback.DECLINE:
            raise FundingDeclined("; ".join(why), code=program.decline_code)
    raise FundingDeclined("; ".join(why), code=programs[-1].decline_code)


def _try_program(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    program: Program,
    credit_account_id: int,
    principal_fen: int,
    borrower: Borrower,
    plan_id: int,
    approver: Approver | None,
) -> str | None:
    """Reserve the program's split if every funder accepts the loan; why not otherwise."""
    for share in program.shares:
        reasons = ineligible_reasons(catalog.funders[share.funder].eligibility, borrower)
        if reasons:
            return f"{share.funder} declines ({', '.join(reasons)})"
    parts = split_principal(
        principal_fen, program_shares(program), catalog.own_for(program.currency).id
    )
    if program.partner_approval:
        ask = approver or PartnerApprover()
        for funder_id in sorted(parts):
            funder = catalog.funders[funder_id]
            if funder.kind is FunderKind.OWN:
                continue
            decision = ask(funder, borrower, parts[funder_id], plan_id)
            if not decision.approved:
                return f"{funder_id} declines ({decision.source}: {decision.reason})"
    return _reserve_all(
        conn, clock, catalog, credit_account_id, parts, region_of(borrower.id_prefix)
    )


def funder_accounts(
    conn: Connection, clock: Clock, funder_id: str, currency: str
) -> dict[AccountCode, int]:
    """A funder's ledger accounts (principal, cash due, settlement), opened if absent."""
    return open_accounts(conn, clock, FUNDER_CODES, OwnerKind.FUNDER, funder_id, currency)


def _book(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    plan_id: int,
    credit_account_id: int,
    currency: str,
    program_id: str,
    parts: Mapping[str, tuple[int, int]],
    client_id: str,
    fallback_reason: str | None,
    region: str = UNKNOWN_REGION,
) -> Allocation:
    postings = []
    for funder_id in sorted(parts):
        accts = funder_accounts(conn, clock, funder_id, currency)
        postings.append(
            PostingSpec(
                accts[AccountCode.FUNDER_SETTLEMENT],
                accts[AccountCode.FUNDER_PRINCIPAL],
                parts[funder_id][1],
                "funding",
            )
        )
    result = post_entry(
        conn,
        clock,
        EntryRequest(
            _entry_id("alloc", client_id),
            currency,
            tuple(postings),
            description=f"funding of plan {plan_id} by {program_id}",
            ref_kind="plan",
            ref_id=str(plan_id),
        ),
    )
    assert result.ok, result
    now, today = clock.now(), clock.today()
    _INSERT_TRANCHES.many(
        conn,
        [
            {
                "credit_account_id": credit_account_id,
                "plan_id": plan_id,
                "funder_id": f,
                "program_id": program_id,
                "share_bp": share,
                "currency": currency,
                "principal_fen": amount,
                "outstanding_fen": amount,
                "charged_off_fen": 0,
                "recovered_fen": 0,
                "business_date": today,
                "ledger_entry_id": result.entry_id,
                "created_at": now,
                "region": region,
            }
            for f, (share, amount) in sorted(parts.items())
        ],
    )
    # the tranches are the allocation's record (disbursed by business_date); movements hold
    # what happens to them later
    return Allocation(
        plan_id,
        program_id,
        {f: p for f, (_, p) in sorted(parts.items())},
        fallback_reason,
        result.entry_id,
    )


def _entry_id(prefix: str, client_id: str) -> str:
    return f"funding:{prefix}:{client_id}"[:128]


def _movements(
    conn: Connection,
    clock: Clock,
    client_id: str,
    credit_account_id: int,
    plan_id: int,
    kind: str,
    principal: Mapping[str, int],
    income: Mapping[str, int],
    due: Mapping[str, int],
    entry_id: int | None,
) -> None:
    funders = sorted(set(principal) | set(income) | set(due))
    if not funders:
        funders = ["-"]  # a record that the event happened, so a replay finds it
    conn.execute(
        insert(mv_t),
        [
            {
                "client_id": client_id,
                "credit_account_id": credit_account_id,
                "plan_id": plan_id,
                "funder_id": f,
                "kind": kind,
                "business_date": clock.today(),
                "principal_fen": principal.get(f, 0),
                "income_fen": income.get(f, 0),
                "due_fen": due.get(f, 0),
                "ledger_entry_id": entry_id,
                "created_at": clock.now(),
            }
            for f in funders
        ],
    )


# ------------------------------------------------------------------ later cash


@dataclass(frozen=True, slots=True)
class CashSplit:
    plan_id: int
    kind: CashKind
    principal: dict[str, int]  # funder -> principal moved
    income: IncomeSplit = field(default_factory=IncomeSplit)
    entry_id: int | None = None
    replayed: bool = False


_LOCK_TRANCHES = _TRANCHES_OF_PLAN.with_for_update()
_LOCK_PREPARED = Prepared(_LOCK_TRANCHES)
_MOVEMENTS_OF = select(
    mv_t.c.funder_id,
    mv_t.c.kind,
    mv_t.c.principal_fen,
    mv_t.c.income_fen,
    mv_t.c.ledger_entry_id,
    mv_t.c.plan_id,
).where(mv_t.c.client_id == bindparam("k_client"))
_TRANCHE_MOVE = (
    update(tr_t)
    .where(tr_t.c.plan_id == bindparam("k_plan"), tr_t.c.funder_id == bindparam("k_funder"))
    .values(
        outstanding_fen=tr_t.c.outstanding_fen - bindparam("k_out"),
        charged_off_fen=tr_t.c.charged_off_fen + bindparam("k_lost"),
        recovered_fen=tr_t.c.recovered_fen + bindparam("k_rec"),
    )
)
_STATE_DOWN = (
    update(st_t)
    .where(st_t.c.funder_id == bindparam("k_funder"))
    .values(
        outstanding_fen=st_t.c.outstanding_fen - bindparam("k_out"), updated_at=bindparam("k_now")
    )
)
_REGION_DOWN = (
    update(reg_t)
    .where(reg_t.c.funder_id == bindparam("k_funder"), reg_t.c.region == bindparam("k_region"))
    .values(outstanding_fen=reg_t.c.outstanding_fen - bindparam("k_out"))
)
_EXPOSURE_DOWN = (
    update(exp_t)
    .where(
        exp_t.c.credit_account_id == bindparam("k_account"),
        exp_t.c.funder_id == bindparam("k_funder"),
    )
    .values(outstanding_fen=exp_t.c.outstanding_fen - bindparam("k_out"))
)


def apply_cash(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    *,
    plan_id: int,
    kind: CashKind,
    principal_fen: int,
    client_id: str,
    income_fen: Mapping[str, int] | None = None,
    period_days: int = 0,
) -> CashSplit:
    """Split what an event did to a plan's principal (and the income collected with it) among
    the plan's funders, and post it: pro rata to outstanding principal (a recovery: to principal
    charged off and not yet recovered), income by each funder's rules over `period_days`.
    Runs in the caller's transaction (the repayment's); the plan's tranches are locked first.
    Idempotent per client_id."""
    if principal_fen < 0:
        raise FundingError("principal_fen: must not be negative", code="invalid_amount")
    rows = _LOCK_PREPARED.run(conn, {"k_plan": plan_id}).mappings()
    if not rows:
        raise FundingError(f"plan {plan_id} is not funded", code="plan_not_funded", http_status=404)
    done = conn.execute(_MOVEMENTS_OF, {"k_client": client_id}).all()
    if done:
        return _replayed(plan_id, kind, client_id, done)
    tranches = [
        Tranche(
            str(r["funder_id"]),
            int(r["outstanding_fen"]),
            int(r["charged_off_fen"]),
            int(r["recovered_fen"]),
        )
        for r in rows
    ]
    currency = str(rows[0]["currency"])
    credit_account_id = int(rows[0]["credit_account_id"])
    program = catalog.programs.get(str(rows[0]["program_id"]))
    losses = program.losses if program is not None else LossRule.PRO_RATA
    try:
        principal = split_event(kind, principal_fen, tranches)
    except ValueError as exc:
        raise FundingError(f"principal_fen: {exc}", code="exceeds_outstanding") from None
    income = (
        split_income(
            {k: v for k, v in (income_fen or {}).items() if v},
            {t.funder_id: t.outstanding_fen for t in tranches},
            _funders_of(catalog, [t.funder_id for t in tranches]),
            period_days,
        )
        if income_fen and not kind.is_loss and kind is not CashKind.RECOVERY
        else IncomeSplit({}, sum((income_fen or {}).values()))
    )
    # the funders' rows first, then the ledger's, as an allocation takes them (no deadlock)
    moved = sorted(principal.items())
    recovery = kind is CashKind.RECOVERY
    if moved:  # one statement per table for all funders (executemany)
        conn.execute(
            _TRANCHE_MOVE,
            [
                {
                    "k_plan": plan_id,
                    "k_funder": funder_id,
                    "k_out": 0 if recovery else amount,
                    "k_lost": amount if kind.is_loss else 0,
                    "k_rec": amount if recovery else 0,
                }
                for funder_id, amount in moved
            ],
        )
    if moved and not recovery:
        conn.execute(
            _STATE_DOWN,
            [{"k_funder": f, "k_out": amount, "k_now": clock.now()} for f, amount in moved],
        )
        conn.execute(
            _EXPOSURE_DOWN,
            [
                {"k_account": credit_account_id, "k_funder": f, "k_out": amount}
                for f, amount in moved
            ],
        )
        region = str(rows[0]["region"])
        conn.execute(
            _REGION_DOWN,
            [{"k_funder": f, "k_region": region, "k_out": amount} for f, amount in moved],
        )
    postings, due = _cash_postings(conn, clock, catalog, currency, kind, losses, principal, income)
    entry_id = None
    if postings:
        result = post_entry(
            conn,
            clock,
            EntryRequest(
                _entry_id(kind.value, client_id),
                currency,
                tuple(postings),
                description=f"funders' share of {kind.value} on plan {plan_id}",
                ref_kind="plan",
                ref_id=str(plan_id),
            ),
        )
        if not result.ok:  # the tranches and the ledger disagree: a bug; roll back
            raise FundingError(
                f"ledger refused the funders' split: {result.reject_code}",
                code="funding_ledger_refused",
            )
        entry_id = result.entry_id
    _movements(
        conn,
        clock,
        client_id,
        credit_account_id,
        plan_id,
        kind.value,
        principal,
        {f: income.funder_total(f) for f in income.to_funders},
        due,
        entry_id,
    )
    return CashSplit(plan_id, kind, principal, income, entry_id)


_MOVEMENT_ROWS = select(mv_t).where(mv_t.c.client_id == bindparam("k_client"))


def reverse_cash(conn: Connection, clock: Clock, *, client_id: str, reversal_id: str) -> int:
    """Undo the funders' side of an event recorded under `client_id` (a repayment that
    bounced): the plan's tranches, the funders' state and exposure get the principal back (a
    recovery: the tranches' recovered goes down), the funding entry is reversed in the ledger,
    and movements of the same kind with the opposite amounts are recorded under `reversal_id`
    (so the day's settlement nets them). Nothing recorded under `client_id`: nothing to undo.
    Idempotent per `reversal_id`. Returns the principal given back to the funders."""
    done = [
        r
        for r in conn.execute(_MOVEMENT_ROWS, {"k_client": client_id}).mappings().all()
        if r["funder_id"] != "-"
    ]
    if not done:
        return 0
    plan_id = int(done[0]["plan_id"])
    rows = _LOCK_PREPARED.run(conn, {"k_plan": plan_id}).mappings()
    if conn.execute(_MOVEMENTS_OF, {"k_client": reversal_id}).first() is not None:
        return 0
    kind = CashKind(str(done[0]["kind"]))
    recovery = kind is CashKind.RECOVERY
    moved = sorted(
        (str(r["funder_id"]), int(r["principal_fen"])) for r in done if r["principal_fen"]
    )
    if moved:
        conn.execute(
            _TRANCHE_MOVE,
            [
                {
                    "k_plan": plan_id,
                    "k_funder": f,
                    "k_out": 0 if recovery else -amount,
                    "k_lost": 0,
                    "k_rec": -amount if recovery else 0,
                }
                for f, amount in moved
            ],
        )
    if moved and not recovery:
        account, region = int(rows[0]["credit_account_id"]), str(rows[0]["region"])
        now = clock.now()
        conn.execute(_STATE_DOWN, [{"k_funder": f, "k_out": -a, "k_now": now} for f, a in moved])
        conn.execute(
            _EXPOSURE_DOWN,
            [{"k_account": account, "k_funder": f, "k_out": -a} for f, a in moved],
        )
        conn.execute(
            _REGION_DOWN, [{"k_funder": f, "k_region": region, "k_out": -a} for f, a in moved]
        )
    entry_id = done[0]["ledger_entry_id"]
    if entry_id is not None:
        result = reverse_entry(
            conn, clock, _entry_id("reverse", reversal_id), int(entry_id), "repayment reversed"
        )
        if not result.ok:
            raise FundingError(
                f"ledger refused to reverse the funders' split: {result.reject_code}",
                code="funding_ledger_refused",
            )
        entry_id = result.entry_id
    _movements(
        conn,
        clock,
        reversal_id,
        int(done[0]["credit_account_id"]),
        plan_id,
        kind.value,
        {str(r["funder_id"]): -int(r["principal_fen"]) for r in done if r["principal_fen"]},
        {str(r["funder_id"]): -int(r["income_fen"]) for r in done if r["income_fen"]},
        {str(r["funder_id"]): -int(r["due_fen"]) for r in done if r["due_fen"]},
        entry_id,
    )
    return sum(a for _, a in moved)


def _funders_of(catalog: FundingCatalog, ids: Sequence[str]) -> dict[str, Funder]:
    """The catalog's funders; one removed from the files since is treated as a partner that
    takes no income (its principal still moves)."""
    return {
        i: catalog.funders.get(i) or Funder(id=i, kind=FunderKind.BANK, legal_name=i) for i in ids
    }


def _cash_postings(
    conn: Connection,
    clock: Clock,
    catalog: FundingCatalog,
    currency: str,
    kind: CashKind,
    losses: LossRule,
    principal: Mapping[str, int],
    income: IncomeSplit,
) -> tuple[list[PostingSpec], dict[str, int]]:
    """The entry's postings, and what each funder is owed in cash because of it (credited to
    its funder_cash_due: principal collected, its income, a guarantee, a recovery share)."""
    funders = _funders_of(catalog, sorted(set(principal) | set(income.to_funders)))

    def platform(code: AccountCode) -> int:
        return open_account(conn, clock, code, OwnerKind.PLATFORM, PLATFORM, currency)

    out = []
    due_accounts: dict[int, str] = {}
    for funder_id in sorted(funders):
        funder = funders[funder_id]
        own = funder.kind is FunderKind.OWN
        accts = funder_accounts(conn, clock, funder_id, currency)
        due_accounts[accts[AccountCode.FUNDER_CASH_DUE]] = funder_id
        amount = principal.get(funder_id, 0)
        if amount:
            fp, due = accts[AccountCode.FUNDER_PRINCIPAL], accts[AccountCode.FUNDER_CASH_DUE]
            if kind is CashKind.RECOVERY:
                # a partner that bore the loss gets its share of what is recovered; own capital
                # and guaranteed partners (already made whole) leave it with the platform
                if not own and not loss_borne_by_platform(losses, funder):
                    out.append(
                        PostingSpec(
                            platform(AccountCode.RECOVERY_INCOME), due, amount, "funder_recovery"
                        )
                    )
            elif kind.is_loss:
                if own:
                    out.append(
                        PostingSpec(fp, accts[AccountCode.FUNDER_SETTLEMENT], amount, "funder_loss")
                    )
                elif loss_borne_by_platform(losses, funder):
                    out.append(PostingSpec(fp, due, amount, "funder_guarantee"))
                else:
                    out.append(
                        PostingSpec(
                            fp, platform(AccountCode.CREDIT_LOSS_EXPENSE), amount, "funder_loss"
                        )
                    )
            else:
                out.append(PostingSpec(fp, due, amount, "funder_principal"))
        earned = income.funder_total(funder_id)
        if earned:
            out.append(
                PostingSpec(
                    platform(AccountCode.FUNDING_COST),
                    accts[AccountCode.FUNDER_CASH_DUE],
                    earned,
                    "funder_income",
                )
            )
    owed: dict[str, int] = defaultdict(int)
    for p in out:
        owner = due_accounts.get(p.credit_account_id)
        if owner is not None:
            owed[owner] += p.amount_fen
    return out, dict(owed)


def _replayed(plan_id: int, kind: CashKind, client_id: str, done: Sequence[Any]) -> CashSplit:
    if any(int(r.plan_id) != plan_id or r.kind != kind.value for r in done):
        raise FundingError(
            f"client_id {client_id!r} was already used for another event",
            code="idempotency_conflict",
            http_status=409,
        )
    principal = {str(r.funder_id): int(r.principal_fen) for r in done if r.principal_fen}
    income = {str(r.funder_id): {"total": int(r.income_fen)} for r in done if r.income_fen}
    return CashSplit(
        plan_id, kind, principal, IncomeSplit(income, 0), done[0].ledger_entry_id, replayed=True
    )


# ------------------------------------------------------------------ reading


def exposure(conn: Connection, catalog: FundingCatalog) -> list[dict[str, Any]]:
    """Each funder's principal outstanding and new lending today against its limits."""
    state = {r.funder_id: r for r in conn.execute(select(st_t)).all()}
    top = dict(
        conn.execute(
            select(exp_t.c.funder_id, func.max(exp_t.c.outstanding_fen)).group_by(exp_t.c.funder_id)
        ).all()
    )
    out = []
    for funder in catalog.funders.values():
        row = state.get(funder.id)
        out.append(
            {
                "funder": funder.id,
                "kind": funder.kind.value,
                "currency": funder.currency,
                "outstanding_fen": int(row.outstanding_fen) if row else 0,
                "limit_total_fen": funder.limits.total_outstanding_fen,
                "lent_on": row.lent_on.isoformat() if row and row.lent_on else None,
                "lent_on_day_fen": int(row.lent_on_day_fen) if row else 0,
                "limit_per_day_fen": funder.limits.new_per_day_fen,
                "largest_borrower_fen": int(top.get(funder.id) or 0),
                "limit_per_borrower_fen": funder.limits.per_borrower_fen,
            }
        )
    return out


def _own_currencies(catalog: FundingCatalog) -> set[str]:
    return {f.currency for f in catalog.funders.values() if f.kind is FunderKind.OWN}
