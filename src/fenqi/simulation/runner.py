"""Run a simulation on a database and read back what it did: portfolio figures, the ledger
checks, throughput, and the training table for the risk engine.

Figures are read from the platform's own tables (applications, orders, plan lines, repayments,
the ledger), not from the simulator's memory, so they are what an analyst would see. Only the
label of the training table uses what the simulator observed week by week (the worst days past
due of each account), since the plan lines keep today's state, not the history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from fenqi.clock import FixedClock
from fenqi.context import Context, build_context
from fenqi.credit.underwriting import MODEL_FEATURES
from fenqi.funding.wiring import active_catalog
from fenqi.ledger.chart import AccountCode
from fenqi.ledger.service import reconcile, trial_balance
from fenqi.money import BP_PER_UNIT
from fenqi.settings import Settings
from fenqi.simulation import distributions as dist
from fenqi.simulation.market import Counts, SimConfig, Simulation, _unpaid_sql

TARGET = "bad_90dpd_12m"
BAD_DPD = 90
LABEL_WINDOW_DAYS = 365


@dataclass
class SimResult:
    config: SimConfig
    counts: Counts
    seconds: float
    metrics: dict[str, Any]
    training: pd.DataFrame
    checks: dict[str, Any] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    @property
    def throughput(self) -> dict[str, float]:
        s = max(self.seconds, 1e-9)
        return {
            "shoppers_per_s": round(self.config.shoppers / s, 1),
            "purchases_per_s": round(self.counts.purchases / s, 1),
            "service_calls_per_s": round(self.counts.service_calls / s, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "shoppers": self.config.shoppers,
            "months": self.config.months,
            "seed": self.config.seed,
            "stress": self.config.stress,
            "product": self.config.product,
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "throughput": self.throughput,
            "counts": vars(self.counts),
            "metrics": self.metrics,
            "checks": self.checks,
            "phase_seconds": {k: round(v, 2) for k, v in self.phase_seconds.items()},
        }


def simulation_context(
    database_url: str,
    *,
    models_dir: Path,
    keys_file: Path,
    start: date,
    flow_file: Path | None = None,
) -> Context:
    """A context on a FixedClock at the start date, with the schema migrated."""
    from fenqi.store.migrate import upgrade

    settings = Settings(
        database_url=database_url,
        models_dir=models_dir,
        keys_file=keys_file,
        risk_flow_file=flow_file,
    )
    ctx = build_context(settings, FixedClock.on(start, 8))
    upgrade(ctx.engine)
    return ctx


def run(
    ctx: Context,
    config: SimConfig,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SimResult:
    return finish(Simulation(ctx, config, progress, stop=stop))


def resume(
    ctx: Context,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SimResult:
    """Go on with the simulation the database holds, from the day after its checkpoint, with
    the options it was started with; the result covers the whole run."""
    return finish(Simulation.resume(ctx, progress, stop))


def finish(sim: Simulation) -> SimResult:
    """Run the simulation to its last day and read back what it did."""
    counts = sim.run()
    with sim.ctx.engine.connect() as conn:
        metrics = portfolio_metrics(conn, sim)
        checks = ledger_checks(conn)
    return SimResult(
        sim.config,
        counts,
        sim.seconds,
        metrics,
        training_table(sim),
        checks,
        sim.phase_seconds,
        sim.cpu_seconds,
    )


def ledger_checks(conn: Connection) -> dict[str, Any]:
    tb = trial_balance(conn)
    mismatches = reconcile(conn)
    return {"trial_balance_zero": bool(tb.balanced), "reconciliation_mismatches": len(mismatches)}


def _scalar(conn: Connection, sql: str, **params: Any) -> int:
    return int(conn.execute(text(sql), params).scalar() or 0)


def funding_cost_fen(net_lent_by_day: Mapping[date, int], end: date, rate_bp: int) -> int:
    """The cost of the money lent: `rate_bp` a year on the principal outstanding each day up to
    `end`, from the net principal lent (lent less repaid, refunded or written off) by day."""
    fen_days = sum(net * (end - day).days for day, net in net_lent_by_day.items() if day < end)
    return max(0, fen_days) * rate_bp // (365 * BP_PER_UNIT)


def net_lent_by_day(conn: Connection) -> dict[date, int]:
    """What the customers' principal receivables grew by on each business day (posted debits
    less credits): the ledger knows when every fen was lent and when it came back."""
    rows = conn.execute(
        text(
            "SELECT e.business_date, "
            "SUM(CASE WHEN d.code = :code THEN p.amount_fen ELSE 0 END) "
            "- SUM(CASE WHEN c.code = :code THEN p.amount_fen ELSE 0 END) "
            "FROM ledger_postings p "
            "JOIN ledger_entries e ON e.id = p.entry_id "
            "JOIN ledger_accounts d ON d.id = p.debit_account_id "
            "JOIN ledger_accounts c ON c.id = p.credit_account_id "
            "WHERE p.phase = 'posted' AND (d.code = :code OR c.code = :code) "
            "GROUP BY e.business_date"
        ),
        {"code": AccountCode.PRINCIPAL_RECEIVABLE.value},
    ).all()
    return {(d if isinstance(d, date) else date.fromisoformat(str(d))): int(net) for d, net in rows}


def portfolio_metrics(conn: Connection, sim: Simulation) -> dict[str, Any]:
    """Approval rate, balances, income, delinquency, bad debt and profit, all in integer fen
    except the rates (basis points)."""
    cfg = sim.config
    end = cfg.start.toordinal() + cfg.days
    applications = _scalar(conn, "SELECT COUNT(*) FROM applications")
    approved = _scalar(conn, "SELECT COUNT(*) FROM applications WHERE outcome = 'approved'")
    captured = _scalar(conn, "SELECT SUM(captured_fen) FROM orders")
    refunded = _scalar(conn, "SELECT SUM(refunded_fen) FROM orders")
    lent = captured - refunded
    principal_out = _scalar(
        conn,
        "SELECT SUM(principal_fen - paid_principal_fen - waived_principal_fen) FROM plan_lines",
    )
    charges_cash = _scalar(
        conn, "SELECT SUM(to_fee_fen + to_interest_fen + to_penalty_fen) FROM repayments"
    )
    # from the trial balance: it adds the hot accounts' slot rows to their balances
    discount = -sum(
        int(row["net_debit_posted"])
        for row in trial_balance(conn).rows
        if str(row["code"]) == AccountCode.MERCHANT_DISCOUNT_INCOME.value
    )
    # accounts 90+ days past due at the end: their principal is the expected loss (charged off
    # at 180 days by the end-of-day run; counted here whether or not it has been yet)
    as_of = date.fromordinal(end)
    rows = conn.execute(
        text(
            "SELECT credit_account_id, MIN(due_date), "
            "SUM(principal_fen - paid_principal_fen - waived_principal_fen) FROM plan_lines "
            f"WHERE {_unpaid_sql()} > 0 GROUP BY credit_account_id"
        )
    ).all()
    bad_accounts = 0
    bad_fen = 0
    for _acct, oldest, principal in rows:
        due = oldest if isinstance(oldest, date) else date.fromisoformat(str(oldest))
        if (as_of - due).days >= BAD_DPD:
            bad_accounts += 1
            bad_fen += int(principal)
    borrowers = _scalar(conn, "SELECT COUNT(DISTINCT credit_account_id) FROM orders")
    ever_90 = sum(1 for v in sim.state.max_dpd.values() if v >= BAD_DPD)
    # funding: the platform's own capital at its cost of capital day by day (the whole book
    # when nothing is co-lent), plus what the partners took as their yield (funding/wiring.py)
    mix = funding_mix(conn, as_of)
    catalog = active_catalog()
    own_id = catalog.own.id if catalog is not None else "platform"
    own_by_day = mix.pop("own_lent_by_day") if mix["funded"] else net_lent_by_day(conn)
    funding = funding_cost_fen(own_by_day, as_of, dist.FUNDING_COST_BP) + mix["partner_income_fen"]
    if mix["funded"]:  # the partners bear their share of the bad debt (pro rata programs)
        bad_fen = bad_fen - _partner_share(conn, bad_fen, own_id)
    income = charges_cash + discount
    return {
        "applications": applications,
        "approved": approved,
        "approval_rate_bp": approved * 10_000 // max(applications, 1),
        "borrowers": borrowers,
        "purchases": sim.counts.purchases,
        "lent_fen": lent,
        "outstanding_principal_fen": principal_out,
        "fee_income_fen": charges_cash,
        "merchant_discount_fen": discount,
        "delinquent_90_accounts": bad_accounts,
        "ever_90_accounts": ever_90,
        "delinquency_90_rate_bp": ever_90 * 10_000 // max(borrowers, 1),
        "bad_debt_fen": bad_fen,
        "bad_debt_rate_bp": bad_fen * 10_000 // max(lent, 1),
        "funding_cost_fen": funding,
        "profit_fen": income - bad_fen - funding,
        "capital_used_fen": mix["capital_used_fen"],
        "partner_share_bp": mix["partner_share_bp"],
        "partner_income_fen": mix["partner_income_fen"],
        "partner_yield_bp": mix["partner_yield_bp"],
    }


def funding_mix(conn: Connection, as_of: date) -> dict[str, Any]:
    """Who funded the book (fenqi.funding): own capital's principal outstanding at the end
    (capital used), the partners' share of all lending, what they took as income and its
    yield a year on their principal outstanding day by day, and own capital's net lending by
    day (for its cost)."""
    rows = conn.execute(
        text(
            "SELECT e.business_date, a.owner_id, "
            "SUM(CASE WHEN p.credit_account_id = a.id THEN p.amount_fen ELSE -p.amount_fen END) "
            "FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id "
            "JOIN ledger_accounts a ON a.id IN (p.debit_account_id, p.credit_account_id) "
            "WHERE p.phase = 'posted' AND a.code = :code AND a.owner_kind = 'funder' "
            "GROUP BY e.business_date, a.owner_id"
        ),
        {"code": AccountCode.FUNDER_PRINCIPAL.value},
    ).all()
    catalog = active_catalog()
    own_id = catalog.own.id if catalog is not None else "platform"
    by_day: dict[date, int] = {}
    partner_days = 0
    for day, owner, net in rows:
        d = day if isinstance(day, date) else date.fromisoformat(str(day))
        if str(owner) == own_id:
            by_day[d] = by_day.get(d, 0) + int(net)
        elif d < as_of:
            partner_days += int(net) * (as_of - d).days
    lent = _scalar(conn, "SELECT SUM(principal_fen) FROM funding_tranches")
    partners = _scalar(
        conn, "SELECT SUM(principal_fen) FROM funding_tranches WHERE funder_id <> :own", own=own_id
    )
    income = _scalar(
        conn, "SELECT SUM(income_fen) FROM funding_movements WHERE funder_id <> :own", own=own_id
    )
    return {
        "funded": lent > 0,
        "own_lent_by_day": by_day,
        "capital_used_fen": sum(by_day.values()),
        "partner_share_bp": partners * BP_PER_UNIT // max(lent, 1),
        "partner_income_fen": income,
        "partner_yield_bp": income * 365 * BP_PER_UNIT // max(partner_days, 1),
    }


def _partner_share(conn: Connection, bad_fen: int, own_id: str) -> int:
    """The partners' part of an expected loss: their share of the principal outstanding (and
    charged off, not recovered) of the whole book, applied to it."""
    held = _scalar(
        conn,
        "SELECT SUM(outstanding_fen + charged_off_fen - recovered_fen) FROM funding_tranches "
        "WHERE funder_id <> :own",
        own=own_id,
    )
    total = _scalar(
        conn,
        "SELECT SUM(outstanding_fen + charged_off_fen - recovered_fen) FROM funding_tranches",
    )
    return bad_fen * held // total if total else 0


def training_table(sim: Simulation) -> pd.DataFrame:
    """One row per approved applicant: what was known at application (the model's features,
    as sent) and whether the account went 90+ days past due within 12 months of opening."""
    st = sim.state
    rows = []
    for i, feats in st.features.items():
        first = st.first_90_day.get(i)
        bad = first is not None and first - int(st.opened_day[i]) <= LABEL_WINDOW_DAYS
        rows.append(
            {
                **feats,
                TARGET: int(bad),
                "credit_account_id": int(st.account_of[i]),
                "observed_days": sim.config.days - int(st.opened_day[i]),
            }
        )
    columns = [*MODEL_FEATURES, TARGET, "credit_account_id", "observed_days"]
    return pd.DataFrame(rows, columns=columns)


def write_training_csv(frame: pd.DataFrame, path: Path) -> Path:
    """The features and the label only: identifiers and the observation span are not features
    (`fenqi risk train --data PATH --target bad_90dpd_12m`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[[*MODEL_FEATURES, TARGET]].to_csv(path, index=False)
    return path
