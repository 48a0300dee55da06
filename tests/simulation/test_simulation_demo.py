"""The demo build: a marketplace, the demo shop with linked shoppers, one login per role, and
the demo file the console and the demo shop read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from fenqi.context import Context
from fenqi.credit import customers
from fenqi.demo import _print_logins
from fenqi.privacy.staff import Role
from fenqi.simulation.demo_build import (
    DEMO_SHOP_ID,
    DemoSpec,
    build,
    read_demo_file,
    write_demo_file,
)
from fenqi.store.engine import create_all, make_engine


def test_build_writes_a_usable_demo_file(
    make_ctx: Callable[[Engine], Context], tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    create_all(engine)
    ctx = make_ctx(engine)
    said: list[str] = []
    days: list[int] = []
    demo = build(
        ctx,
        DemoSpec(shoppers=300, months=1, take_up=0.5, seed=3),
        date(2026, 3, 1),
        said.append,
        lambda day, _total: days.append(day),
    )
    assert days[-1] == 30 and any("marketplace" in s for s in said)
    assert demo["shop"]["id"] == DEMO_SHOP_ID and demo["shop"]["api_key"].startswith("sk")
    assert {s["role"] for s in demo["staff"]} == {r.value for r in Role}
    assert 0 < len(demo["shoppers"]) <= 5
    with engine.connect() as conn:
        for s in demo["shoppers"]:
            assert customers.is_linked(conn, s["customer_id"], DEMO_SHOP_ID)
    assert demo["built"]["ledger"] == {"trial_balance_zero": True, "reconciliation_mismatches": 0}
    assert demo["built"]["through"] == "2026-02-28"
    with engine.connect() as conn:  # each shopper's printed phone finds that shopper
        for s in demo["shoppers"]:
            assert customers.find(conn, ctx.keys, phone=s["phone"]) == [s["customer_id"]]
    printed = Console(record=True, width=200)
    _print_logins(printed, demo, "127.0.0.1", 8000)
    text = printed.export_text()
    assert all(s["phone"] in text for s in demo["shoppers"])
    assert "wallet:    http://127.0.0.1:8000/wallet" in text
    assert "export FENQI_DATABASE_URL=sqlite:///.fenqi/demo.sqlite" in text
    path = tmp_path / "demo.json"
    write_demo_file(path, demo)
    assert read_demo_file(path) == demo and path.stat().st_mode & 0o077 == 0
    assert read_demo_file(tmp_path / "missing.json") is None
    engine.dispose()
