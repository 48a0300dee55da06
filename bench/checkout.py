"""Checkout throughput over HTTP on PostgreSQL, against pgbench's TPC-B-like rate.

In one run: (1) `fenqi serve` (uvicorn workers) on a fresh PostgreSQL schema; 16 concurrent
clients each loop authorize + capture (`POST /v1/orders`, `POST /v1/orders/{id}/captures`),
spread over many shoppers' accounts, with checkout risk, idempotency keys and webhook events
as in production; (2) `pgbench` with its built-in TPC-B-like transaction, the same client count,
on the same server. Prints checkouts/s, p50/p99 latency, pgbench's tps and the ratio, and writes
bench/results/checkout.json.

    python bench/checkout.py [--seconds 20] [--clients 16] [--workers 2] [--accounts 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import text

from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.credit import service as credit
from fenqi.credit.customers import open_session  # noqa: F401  (kept for parity with the API)
from fenqi.credit.merchants import create_merchant
from fenqi.credit.underwriting import bootstrap_decider
from fenqi.settings import Settings
from fenqi.store.engine import make_engine
from fenqi.store.migrate import upgrade
from fenqi.store.schema.parties import customer_links, customers

RESULTS = Path(__file__).parent / "results"
PG = os.environ.get("FENQI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def setup(url: str, tmp: Path, accounts: int) -> tuple[str, list[int]]:
    settings = Settings(database_url=url, models_dir=tmp / "models", keys_file=tmp / "keys.json")
    clock = FixedClock.on(date(2026, 1, 2))
    ctx = build_context(settings, clock)
    upgrade(ctx.engine)
    bootstrap_decider(settings.models_dir, clock, rows=2000)
    product = ctx.product("huabei")
    ids = []
    with ctx.engine.begin() as conn:
        shop = create_merchant(conn, clock, "m_bench", "Bench shop", "general")
        for i in range(accounts):
            seal = ctx.keys.encrypt(f"x{i}", context="bench")
            cid = conn.execute(customers.insert().values(
                key_id=seal.key_id, name_enc=seal.ciphertext, id_number_enc=seal.ciphertext,
                phone_enc=seal.ciphertext, id_number_bidx=f"bench{i}", phone_bidx=f"p{i}",
                income_band="6k_10k", created_at=clock.now()).returning(customers.c.id)
            ).scalar_one()
            conn.execute(customer_links.insert().values(customer_id=cid, merchant_id="m_bench",
                                                        created_at=clock.now()))
            ids.append(credit.open_credit_account(conn, clock, product, str(cid), 5_000_000))
    ctx.engine.dispose()
    return str(shop["api_key"]), ids


async def load(base: str, key: str, accounts: list[int], clients: int, seconds: float
               ) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def client(n: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as http:
            while time.perf_counter() < deadline:
                i = next(counter)
                t0 = time.perf_counter()
                r = await http.post("/v1/orders", json={
                    "credit_account_id": accounts[i % len(accounts)], "amount_fen": 1_000,
                    "terms": 0, "currency": "CNY", "merchant_order_ref": uuid.uuid4().hex},
                    headers={"Idempotency-Key": uuid.uuid4().hex})
                if r.status_code != 201:
                    raise SystemExit(f"authorize failed: {r.status_code} {r.text}")
                c = await http.post(f"/v1/orders/{r.json()['id']}/captures", json={},
                                    headers={"Idempotency-Key": uuid.uuid4().hex})
                if c.status_code != 201:
                    raise SystemExit(f"capture failed: {c.status_code} {c.text}")
                latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies


def pgbench(clients: int, seconds: int) -> float:
    db = f"fenqi_pgbench_{uuid.uuid4().hex[:6]}"
    admin = make_engine(PG.replace("/test", "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {db}"))
    try:
        base = ["-h", "127.0.0.1", "-U", "postgres"]
        subprocess.run(["pgbench", *base, "-i", "-q", "-s", "16", db], check=True,
                       capture_output=True)
        out = subprocess.run(["pgbench", *base, "-n", "-c", str(clients), "-j", "2",
                              "-T", str(seconds), db], check=True, capture_output=True,
                             text=True).stdout
        return float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {db} WITH (FORCE)"))
        admin.dispose()


def check_books(url: str) -> dict[str, object]:
    """After the load: trial balance, every balance against its postings, and the sub-ledgers
    (orders, plans, payables) against the ledger; a difference fails the benchmark."""
    from fenqi.credit.reconciliation import deep_reconcile
    from fenqi.ledger.service import reconcile, trial_balance

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            balanced = trial_balance(conn).balanced
            mismatches = len(reconcile(conn))
            deep = deep_reconcile(conn)
    finally:
        engine.dispose()
    books = {"trial_balance_zero": balanced, "reconciliation_mismatches": mismatches,
             "sub_ledger_differences": len(deep.differences)}
    if not balanced or mismatches or not deep.ok:
        raise SystemExit(f"books differ after the load: {books} {deep.differences[:5]}")
    return books


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    server = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            key, accounts = setup(url, Path(tmp), args.accounts)
            env = {**os.environ, "FENQI_DATABASE_URL": url, "FENQI_MODELS_DIR": f"{tmp}/models",
                   "FENQI_KEYS_FILE": f"{tmp}/keys.json"}
            server = subprocess.Popen(
                [sys.executable, "-m", "fenqi.cli", "serve", "--port", str(args.port),
                 "--workers", str(args.workers), "--no-access-log", "--no-upgrade-db"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{args.port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(load(base, key, accounts, 2, 2))  # warm up every worker
            t0 = time.perf_counter()
            lat = asyncio.run(load(base, key, accounts, args.clients, args.seconds))
            elapsed = time.perf_counter() - t0
            books = check_books(url)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    rate = len(lat) / elapsed
    tps = pgbench(args.clients, args.seconds)
    q = statistics.quantiles(lat, n=100)
    result = {"clients": args.clients, "workers": args.workers, "checkouts": len(lat),
              "checkouts_per_s": rate, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
              "pgbench_tps": tps, "ratio": rate / tps, "books": books}
    print(f"checkout benchmark: {args.clients} clients, {args.workers} API workers, "
          f"{args.seconds}s, PostgreSQL")
    print(f"  fenqi authorize+capture : {rate:8.1f} /s   p50 {result['p50_ms']:.1f} ms   "
          f"p99 {result['p99_ms']:.1f} ms")
    print(f"  pgbench TPC-B-like      : {tps:8.1f} tps")
    print(f"  ratio                   : {result['ratio']:.3f}")
    print(f"  books after the load    : {books}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checkout.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
