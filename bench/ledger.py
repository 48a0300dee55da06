"""Ledger throughput: journal entries per second (one hold + one post per purchase).

For SQLite and PostgreSQL, in the same run: (1) fenqi's ledger — each purchase is a pending
hold checked against the customer's limit, then posted, each in its own transaction; (2) the
floor — the same entry and posting rows inserted with plain SQL, also one transaction per
purchase, with no checks and no balance updates. Prints entries/s for both and the ratio, and
writes bench/results/ledger.json.

    python bench/ledger.py [--purchases 2000] [--pg URL]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, text

from fenqi.clock import FixedClock
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.ledger.entry import EntryRequest, PostingSpec
from fenqi.ledger.service import open_account, post_entry, reconcile, resolve_pending
from fenqi.store.engine import create_all, make_engine
from fenqi.store.schema.ledger import ledger_entries, ledger_postings

RESULTS = Path(__file__).parent / "results"
CUSTOMERS = 100


def setup(engine: Engine, clock: FixedClock) -> tuple[list[int], int]:
    create_all(engine)
    with engine.begin() as conn:
        customers = [
            open_account(
                conn,
                clock,
                AccountCode.PRINCIPAL_RECEIVABLE,
                OwnerKind.CUSTOMER,
                f"c{i}",
                "CNY",
                10**12,
            )
            for i in range(CUSTOMERS)
        ]
        merchant = open_account(
            conn, clock, AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, "m", "CNY"
        )
    return customers, merchant


def run_fenqi(engine: Engine, clock: FixedClock, n: int) -> float:
    customers, merchant = setup(engine, clock)
    t0 = time.perf_counter()
    for i in range(n):
        with engine.begin() as conn:
            hold = post_entry(
                conn,
                clock,
                EntryRequest(
                    f"h{i}",
                    "CNY",
                    (PostingSpec(customers[i % CUSTOMERS], merchant, 1000 + i),),
                    pending=True,
                ),
            )
            assert hold.ok
        with engine.begin() as conn:
            resolve_pending(conn, clock, f"p{i}", hold.entry_id)
    elapsed = time.perf_counter() - t0
    with engine.connect() as conn:
        assert reconcile(conn) == []
    return 2 * n / elapsed


def run_floor(engine: Engine, clock: FixedClock, n: int) -> float:
    customers, merchant = setup(engine, clock)
    now, today = clock.now(), clock.today()

    def entry(cid: str, kind: str, pending_id: int | None) -> dict[str, object]:
        return {
            "client_id": cid,
            "content_hash": "x",
            "kind": kind,
            "status": "posted",
            "business_date": today,
            "created_at": now,
            "description": "",
            "pending_entry_id": pending_id,
        }

    t0 = time.perf_counter()
    for i in range(n):
        with engine.begin() as conn:
            hold_id = conn.execute(
                insert(ledger_entries)
                .values(entry(f"h{i}", "pending", None))
                .returning(ledger_entries.c.id)
            ).scalar_one()
            conn.execute(
                insert(ledger_postings).values(
                    entry_id=hold_id,
                    seq=0,
                    debit_account_id=customers[i % CUSTOMERS],
                    credit_account_id=merchant,
                    amount_fen=1000 + i,
                    phase="pending",
                    pending_remaining_fen=1000 + i,
                    code="",
                )
            )
        with engine.begin() as conn:
            post_id = conn.execute(
                insert(ledger_entries)
                .values(entry(f"p{i}", "post", hold_id))
                .returning(ledger_entries.c.id)
            ).scalar_one()
            conn.execute(
                insert(ledger_postings).values(
                    entry_id=post_id,
                    seq=0,
                    debit_account_id=customers[i % CUSTOMERS],
                    credit_account_id=merchant,
                    amount_fen=1000 + i,
                    phase="posted",
                    pending_remaining_fen=0,
                    code="",
                )
            )
    return 2 * n / (time.perf_counter() - t0)


def fresh_pg(url: str) -> tuple[Engine, Engine, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    return admin, engine, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=2000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, runner in (("fenqi", run_fenqi), ("floor", run_floor)):
            engine = make_engine(f"sqlite:///{tmp}/{label}.sqlite")
            results.setdefault("sqlite", {})[label] = runner(engine, clock, args.purchases)
            engine.dispose()
    for label, runner in (("fenqi", run_fenqi), ("floor", run_floor)):
        admin, engine, schema = fresh_pg(args.pg)
        try:
            results.setdefault("postgresql", {})[label] = runner(engine, clock, args.purchases)
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(
        f"ledger benchmark: {args.purchases} purchases = {2 * args.purchases} journal entries "
        "(hold + post), one transaction each"
    )
    print(f"{'database':<12}{'fenqi entries/s':>18}{'plain SQL entries/s':>22}{'ratio':>8}")
    for db, r in results.items():
        r["ratio"] = r["fenqi"] / r["floor"]
        print(f"{db:<12}{r['fenqi']:>18,.0f}{r['floor']:>22,.0f}{r['ratio']:>8.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ledger.json").write_text(
        json.dumps({"purchases": args.purchases, "results": results}, indent=2)
    )


if __name__ == "__main__":
    main()
