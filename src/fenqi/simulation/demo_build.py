"""Build the demo marketplace: months of simulated trade on a SQLite file, a risk model trained
on that platform's own data, a demo shop with a few of its shoppers, and one staff login per
role; what the console and the demo shop need is written to the demo file (JSON).

Everything goes through the services, like the simulation itself. The build is done once; a
second `fenqi demo` finds the demo file and the database and reuses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fenqi.clock import FixedClock
from fenqi.context import Context
from fenqi.credit.applications import apply
from fenqi.credit.merchants import create_merchant
from fenqi.credit.underwriting import MODEL_FEATURES
from fenqi.errors import FenqiError
from fenqi.privacy.staff import Role, create_staff
from fenqi.simulation.market import SimConfig, Simulation
from fenqi.simulation.runner import TARGET, ledger_checks, training_table
from fenqi.simulation.starter import ensure_starter_model
from fenqi.store.schema.credit import credit_accounts

DEMO_SHOP_ID = "demo-shop"
DEMO_SHOPPERS = 5
BADS_TO_TRAIN_MIN = 10  # fewer bad accounts than this cannot teach a model anything
DEMO_PASSWORDS = {role: f"fenqi-demo-{role.value.replace('_', '-')}" for role in Role}


@dataclass(frozen=True)
class DemoSpec:
    shoppers: int = 20_000
    months: int = 6
    seed: int = 2026
    # share of the market's shoppers who apply for fenqi credit: what a two-minute build allows,
    # since each applicant costs about eight service calls over six months (docs/simulation.md)
    take_up: float = 0.15
    product: str = "huabei"
    apply_window_share: float = 0.35  # early applications leave time to observe arrears


Step = Callable[[str], None]
Tick = Callable[[int, int], None]


def build(ctx: Context, spec: DemoSpec, today: date, say: Step, tick: Tick) -> dict[str, Any]:
    """Simulate `spec.months` up to yesterday, train a model, open the demo shop and logins,
    and return the demo file's content."""
    if not isinstance(ctx.clock, FixedClock):
        raise TypeError("the demo build moves time: give the context a FixedClock")
    config = SimConfig(
        shoppers=spec.shoppers,
        months=spec.months,
        seed=spec.seed,
        product=spec.product,
        take_up=spec.take_up,
        apply_window_share=spec.apply_window_share,
        start=today - timedelta(days=round(spec.months * 30.4)),
    )
    say("risk model: the bootstrap model decides the first applications")
    ensure_starter_model(ctx.settings.models_dir, ctx.clock)
    _ = ctx.underwriter
    say(f"marketplace: {spec.shoppers:,} shoppers over {spec.months} months")
    sim = Simulation(ctx, config, tick)
    counts = sim.run()
    model_note = _train(ctx, sim, say)
    say("demo shop, shoppers and staff logins")
    ctx.clock.set(FixedClock.on(today, 9, str(ctx.clock.zone)).now())
    with ctx.engine.begin() as conn:
        shop = create_merchant(conn, ctx.clock, DEMO_SHOP_ID, "fenqi demo shop", "electronics")
        staff = []
        for role, password in DEMO_PASSWORDS.items():
            username = f"demo-{role.value.replace('_', '-')}"
            create_staff(conn, ctx.clock, username, password, role)
            staff.append({"username": username, "password": password, "role": role.value})
        shoppers = []
        for i in _good_shoppers(sim, conn):
            body = sim.application_body(i)
            out = apply(conn, ctx, DEMO_SHOP_ID, body.to_application())  # links the shop
            shoppers.append(
                {
                    "customer_id": int(out["customer_id"]),
                    "credit_account_id": sim.account(i),
                    # synthetic (simulation.distributions): printed by `fenqi demo` so that a
                    # shopper can be looked up in the console by phone
                    "phone": body.phone,
                }
            )
        checks = ledger_checks(conn)
    return {
        "database_url": ctx.settings.database_url,
        "shop": {"id": shop["id"], "api_key": shop["api_key"]},
        "staff": staff,
        "shoppers": shoppers,
        "built": {
            "shoppers": spec.shoppers,
            "months": spec.months,
            "seed": spec.seed,
            "take_up": spec.take_up,
            "through": (today - timedelta(days=1)).isoformat(),
            "seconds": round(sim.seconds, 1),
            "cpu_seconds": round(sim.cpu_seconds, 1),
            "phase_seconds": {k: round(v, 1) for k, v in sim.phase_seconds.items()},
            "counts": vars(counts),
            "model": model_note,
            "ledger": checks,
        },
    }


def _train(ctx: Context, sim: Simulation, say: Step) -> str:
    from fenqi.risk.train import train_model

    frame = training_table(sim)
    bads = int(frame[TARGET].sum()) if len(frame) else 0
    if bads < BADS_TO_TRAIN_MIN:
        say(f"risk model: only {bads} accounts went 90+ days past due; keeping the bootstrap")
        return f"bootstrap (only {bads} bad accounts observed)"
    say(f"risk model: training on {len(frame):,} accounts of this platform ({bads} bad)")
    from fenqi.risk.promotion import crown_current, promote_if_better

    # The model in use stays the champion; the newest 30% of accounts (by opening) are the
    # out-of-time sample the promotion gate compares the two on (issue 23).
    crown_current(ctx.settings.models_dir)
    ordered = frame.sort_values("credit_account_id")
    cut = int(len(ordered) * 0.7)
    try:
        model = train_model(
            ordered.iloc[:cut][[*MODEL_FEATURES, TARGET]],
            TARGET,
            "gbm",
            ctx.settings.models_dir,
            ctx.clock,
            seed=sim.config.seed,
        )
        gate = promote_if_better(
            ctx.settings.models_dir,
            model.path,
            ordered.iloc[cut:][[*MODEL_FEATURES, TARGET]],
            TARGET,
            ctx.clock,
        )
    except (FenqiError, ValueError) as exc:
        say(f"risk model: training failed ({exc}); keeping the bootstrap")
        return f"bootstrap (training on {len(frame):,} accounts failed: {exc})"
    if not gate["promoted"]:
        why = "; ".join(gate["reasons"])
        say(f"risk model: {model.model_id} stays a challenger ({why})")
        return f"{model.model_id} trained on {cut:,} platform accounts, not promoted: {why}"
    return f"{model.model_id} trained on {cut:,} platform accounts ({bads} bad), promoted"


def _good_shoppers(sim: Simulation, conn: Any) -> list[int]:
    """A few shoppers in good standing (active, not past due) for the demo shop's wallet."""
    st = sim.state
    candidates = sorted(i for i in st.features if st.max_dpd.get(i, 0) == 0)
    active = set(
        conn.execute(
            select(credit_accounts.c.id).where(
                credit_accounts.c.status == "active", credit_accounts.c.past_due_since.is_(None)
            )
        ).scalars()
    )
    return [i for i in candidates if sim.account(i) in active][:DEMO_SHOPPERS]


def write_demo_file(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False))
    tmp.chmod(0o600)  # holds an API key and passwords
    tmp.replace(path)


def read_demo_file(path: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and "shop" in content else None
