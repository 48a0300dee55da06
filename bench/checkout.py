"""Checkout throughput over HTTP on PostgreSQL, against pgbench's TPC-B-like rate, and where
a checkout's time goes.

In one run, on a fresh PostgreSQL database of its own: `fenqi serve` (uvicorn workers); then
(1) N concurrent clients each loop authorize + capture (`POST /v1/orders`,
`POST /v1/orders/{id}/captures`), spread over many shoppers' accounts, with checkout risk,
idempotency keys and webhook events as in production; (2) the same clients loop the one-call
sale (`capture: true`); (3) one client loops authorize + capture (the latency a shopper sees
when nothing queues); (4) one client sends applications (risk flow, model, decision record);
(5) `pgbench` with its built-in TPC-B-like transaction, the same client count, on the same
server. For each load it prints the rate, p50/p99 latency and the CPU per checkout of the API
processes, of the PostgreSQL backends serving them and of the client (from /proc, as
`bench/simulate.py` does); beside them the statements, transactions and commits one checkout
runs (counted in process on the same code, with SQLAlchemy's cursor events). After the loads it
checks the books: trial balance zero, every balance equal to its postings, the sub-ledgers
(`deep_reconcile`) and no account above its limit. Writes bench/results/checkout.json.

    python bench/checkout.py [--seconds 20] [--clients 16] [--workers 2] [--accounts 2000]

The machine's cores are shared with whatever else runs: compare figures of one run (the ratio
to pgbench), and repeat a run to see the noise.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
from typing import Any

import httpx
from sqlalchemy import Engine, text

from fenqi.clock import FixedClock
from fenqi.context import build_context
from fenqi.credit import service as credit
from fenqi.credit.customers import open_session  # noqa: F401  (kept for parity with the API)
from fenqi.credit.merchants import create_merchant
from fenqi.settings import Settings
from fenqi.simulation.starter import ensure_starter_model
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
    ensure_starter_model(settings.models_dir, clock, rows=2000)
    product = ctx.product("huabei")
    ids = []
    with ctx.engine.begin() as conn:
        shop = create_merchant(conn, clock, "m_bench", "Bench shop", "general")
        for i in range(accounts):
            seal = ctx.keys.encrypt(f"x{i}", context="bench")
            cid = conn.execute(
                customers.insert()
                .values(
                    key_id=seal.key_id,
                    name_enc=seal.ciphertext,
                    id_number_enc=seal.ciphertext,
                    phone_enc=seal.ciphertext,
                    id_number_bidx=f"bench{i}",
                    phone_bidx=f"p{i}",
                    income_band="6k_10k",
                    created_at=clock.now(),
                )
                .returning(customers.c.id)
            ).scalar_one()
            conn.execute(
                customer_links.insert().values(
                    customer_id=cid, merchant_id="m_bench", created_at=clock.now()
                )
            )
            ids.append(credit.open_credit_account(conn, clock, product, str(cid), 5_000_000))
    ctx.engine.dispose()
    return str(shop["api_key"]), ids


async def load(
    base: str, key: str, accounts: list[int], clients: int, seconds: float, kind: str = "pair"
) -> list[float]:
    """Loop `kind` from `clients` clients for `seconds`: "pair" (authorize, then capture),
    "sale" (one call, `capture: true`) or "application" (a new shopper applies); the latency of
    each."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = COUNTER  # each load goes on to the next accounts (checkout risk counts per account)

    async def client(n: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as http:
            while time.perf_counter() < deadline:
                i = next(counter)
                t0 = time.perf_counter()
                if kind == "application":
                    r = await http.post(
                        "/v1/applications",
                        json=application_body(i),
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    if r.status_code != 201:
                        raise SystemExit(f"application failed: {r.status_code} {r.text}")
                    latencies.append(time.perf_counter() - t0)
                    continue
                r = await http.post(
                    "/v1/orders",
                    json={
                        "credit_account_id": accounts[i % len(accounts)],
                        "amount_fen": 1_000,
                        "terms": 0,
                        "currency": "CNY",
                        "merchant_order_ref": uuid.uuid4().hex,
                        "capture": kind == "sale",
                    },
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                if r.status_code != 201:
                    raise SystemExit(f"authorize failed: {r.status_code} {r.text}")
                if kind == "pair":
                    c = await http.post(
                        f"/v1/orders/{r.json()['id']}/captures",
                        json={},
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    if c.status_code != 201:
                        raise SystemExit(f"capture failed: {c.status_code} {c.text}")
                latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies


COUNTER = itertools.count()
RUN = uuid.uuid4().int % 10**6  # applicants differ from one run to the next


def application_body(i: int) -> dict[str, object]:
    """A new applicant: a valid resident ID number and mobile number of their own."""
    from fenqi.privacy.identity import check_char

    n = RUN * 10**4 + i
    birth = date(1970, 1, 1).toordinal() + n % 9000
    id_body = "110105" + date.fromordinal(birth).strftime("%Y%m%d") + f"{n // 9000 % 1000:03d}"
    return {
        "product": "huabei",
        "name": "张三",
        "id_number": id_body + check_char(id_body),
        "phone": f"139{n % 10**8:08d}",
        "income_band": "10k_20k",
        "consents": [
            {"kind": "bureau_inquiry", "text_version": "2026-01", "scope": "credit decision"}
        ],
        "behaviour": {
            "account_age_days": 2000,
            "orders_12m": 40,
            "spend_12m_fen": 3_000_000,
            "return_rate_bp": 300,
            "other_lenders": 0,
        },
    }


TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of one process (0 if it is gone), with `children` that of its
    children that ended (a closed backend's CPU moves to the postmaster when it is reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    # utime, stime, cutime, cstime: fields 14 to 17 of proc(5)
    return sum(int(f) for f in fields[11 : 15 if children else 13]) / TICK


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (uvicorn's supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _all_postgres_cpu() -> float:
    total = 0.0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("postgres"):
            total += _cpu_of(int(entry), children=True)
    return total


def _machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (all processes, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICK


class CpuMeter:
    """CPU spent during one load by the API processes, by the PostgreSQL backends connected to
    the benchmark's database, by this client, by every postgres process (the WAL writer and
    checkpointer included, and other databases' work) and by the whole machine."""

    def __init__(self, admin: Engine, database: str, server_pid: int) -> None:
        self.admin, self.database, self.server_pid = admin, database, server_pid

    def _backends(self) -> dict[int, float]:
        with self.admin.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :db"), {"db": self.database}
            ).scalars()
            return {pid: _cpu_of(pid) for pid in pids}

    def snapshot(self) -> dict[str, Any]:
        return {
            "api": sum(_cpu_of(p, children=True) for p in _descendants(self.server_pid)),
            "db": self._backends(),
            "client": time.process_time(),
            "postgres_all": _all_postgres_cpu(),
            "machine": _machine_busy_seconds(),
        }

    def since(self, before: dict[str, Any]) -> dict[str, float]:
        """CPU seconds since `before`. A backend is counted by its own change (a new one
        started at zero); one that closed during the load is missed here (the pool keeps its
        connections: none should), but not in `postgres_all`."""
        after = self.snapshot()
        spent = {k: after[k] - before[k] for k in before if k != "db"}
        spent["db"] = sum(cpu - before["db"].get(pid, 0.0) for pid, cpu in after["db"].items())
        return spent


def count_statements(
    url: str, tmp: Path, key: str, accounts: list[int], n: int = 40
) -> dict[str, dict[str, float]]:
    """Statements, transactions, commits and pool checkouts (each a ping: `pool_pre_ping`) of
    one authorize, one capture and one sale, run in process over the same ASGI app."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from fenqi.api.app import create_app

    ctx = build_context(
        Settings(database_url=url, models_dir=tmp / "models", keys_file=tmp / "keys.json")
    )
    counts: dict[str, int] = {}

    def bump(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    listeners = [
        (ctx.engine, "before_cursor_execute", lambda *a: bump("statements")),
        (ctx.engine, "begin", lambda *a: bump("transactions")),
        (ctx.engine, "commit", lambda *a: bump("commits")),
        (ctx.engine.pool, "checkout", lambda *a: bump("pool_checkouts")),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    figures: dict[str, dict[str, float]] = {}
    headers = {"Authorization": f"Bearer {key}"}
    fresh = itertools.count(1)  # an account of its own for each order, from the last one down
    with TestClient(create_app(ctx)) as http:

        def order(i: int, capture: bool) -> int:
            r = http.post(
                "/v1/orders",
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                json={
                    "credit_account_id": accounts[-next(fresh)],
                    "amount_fen": 1_000,
                    "terms": 0,
                    "currency": "CNY",
                    "merchant_order_ref": uuid.uuid4().hex,
                    "capture": capture,
                },
            )
            assert r.status_code == 201, r.text
            return int(r.json()["id"])

        def capture(order_id: int) -> None:
            r = http.post(
                f"/v1/orders/{order_id}/captures",
                json={},
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert r.status_code == 201, r.text

        for i in range(5):  # caches warm, as in a running server
            capture(order(i, False))
            order(i, True)
        for name in ("authorize", "capture", "sale"):
            total = {k: 0 for k in ("statements", "transactions", "commits", "pool_checkouts")}
            for i in range(n):
                made = order(i, False) if name == "capture" else None
                counts.clear()
                if name == "capture":
                    capture(made)  # type: ignore[arg-type]
                else:
                    order(i, name == "sale")
                for k in total:
                    total[k] += counts.get(k, 0)
            figures[name] = {k: v / n for k, v in total.items()}
        # the API's CPU for one authorize + capture in process, one at a time: no listeners
        # (they make prepared statements take SQLAlchemy's slower path), no queueing
        for target, name, fn in listeners:
            event.remove(target, name, fn)
        started = time.process_time()
        for i in range(n):
            capture(order(i, False))
        cpu_ms = (time.process_time() - started) / n * 1000
    ctx.engine.dispose()
    figures["authorize+capture"] = {
        k: figures["authorize"][k] + figures["capture"][k] for k in figures["authorize"]
    }
    figures["authorize+capture"]["in_process_cpu_ms"] = cpu_ms
    return figures


def pgbench(clients: int, seconds: int) -> float:
    db = f"fenqi_pgbench_{uuid.uuid4().hex[:6]}"
    admin = make_engine(PG.replace("/test", "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {db}"))
    try:
        base = ["-h", "127.0.0.1", "-U", "postgres"]
        subprocess.run(
            ["pgbench", *base, "-i", "-q", "-s", "16", db], check=True, capture_output=True
        )
        out = subprocess.run(
            ["pgbench", *base, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), db],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {db} WITH (FORCE)"))
        admin.dispose()


OVER_LIMIT = text(
    "SELECT count(*) FROM ledger_balances WHERE debit_cap_fen IS NOT NULL"
    " AND debits_pending + debits_posted - credits_posted > debit_cap_fen"
)


def check_books(url: str) -> dict[str, object]:
    """After the load: trial balance, every balance against its postings, the sub-ledgers
    (orders, plans, payables) against the ledger, and no account's net debit exposure above
    its limit (the cap the ledger enforces); a difference fails the benchmark."""
    from fenqi.credit.reconciliation import deep_reconcile
    from fenqi.ledger.service import reconcile, trial_balance

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            balanced = trial_balance(conn).balanced
            mismatches = len(reconcile(conn))
            deep = deep_reconcile(conn)
            over = int(conn.execute(OVER_LIMIT).scalar_one())
    finally:
        engine.dispose()
    books = {
        "trial_balance_zero": balanced,
        "reconciliation_mismatches": mismatches,
        "sub_ledger_differences": len(deep.differences),
        "accounts_over_limit": over,
    }
    if not balanced or mismatches or not deep.ok or over:
        raise SystemExit(f"books differ after the load: {books} {deep.differences[:5]}")
    return books


def figures_of(
    lat: list[float], elapsed: float, cpu: dict[str, float], per: str
) -> dict[str, float]:
    n = max(len(lat), 1)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0] if lat else 0.0] * 99
    return {
        f"{per}s": len(lat),
        f"{per}s_per_s": len(lat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        **{f"cpu_ms_{k}": v / n * 1000 for k, v in cpu.items()},
    }


def print_load(label: str, f: dict[str, float], per: str) -> None:
    print(
        f"  {label:<30}: {f[f'{per}s_per_s']:8.1f} /s   p50 {f['p50_ms']:.1f} ms   "
        f"p99 {f['p99_ms']:.1f} ms"
    )
    print(
        f"    CPU per {per}: API {f['cpu_ms_api']:.2f} ms, PostgreSQL backends "
        f"{f['cpu_ms_db']:.2f} ms, client {f['cpu_ms_client']:.2f} ms "
        f"(all postgres processes {f['cpu_ms_postgres_all']:.2f} ms, whole machine "
        f"{f['cpu_ms_machine']:.2f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    database = f"fenqi_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(
        PG.replace("/test", "/postgres"), isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0
    )
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    url = PG.replace("/test", f"/{database}")
    server = None
    loads: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            key, accounts = setup(url, Path(tmp), args.accounts)
            statements = count_statements(url, Path(tmp), key, accounts)
            env = {
                **os.environ,
                "FENQI_DATABASE_URL": url,
                "FENQI_MODELS_DIR": f"{tmp}/models",
                "FENQI_KEYS_FILE": f"{tmp}/keys.json",
            }
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fenqi.cli",
                    "serve",
                    "--port",
                    str(args.port),
                    "--workers",
                    str(args.workers),
                    "--no-access-log",
                    "--no-upgrade-db",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            base = f"http://127.0.0.1:{args.port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            # warm every worker and open the connections the measured load will use
            asyncio.run(load(base, key, accounts, args.clients, 2))
            asyncio.run(load(base, key, accounts, 1, 1, "application"))
            meter = CpuMeter(admin, database, server.pid)
            for name, clients, kind, per in (
                ("authorize+capture", args.clients, "pair", "checkout"),
                ("sale", args.clients, "sale", "checkout"),
                ("authorize+capture, 1 client", 1, "pair", "checkout"),
                ("application, 1 client", 1, "application", "application"),
            ):
                seconds = args.seconds if clients > 1 else max(args.seconds // 2, 5)
                before = meter.snapshot()
                t0 = time.perf_counter()
                lat = asyncio.run(load(base, key, accounts, clients, seconds, kind))
                elapsed = time.perf_counter() - t0
                loads[name] = figures_of(lat, elapsed, meter.since(before), per)
            server.terminate()
            server.wait(timeout=30)
            server = None
            books = check_books(url)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {database} WITH (FORCE)"))
    tps = pgbench(args.clients, args.seconds)
    admin.dispose()
    pair, sale = loads["authorize+capture"], loads["sale"]
    result = {
        "clients": args.clients,
        "workers": args.workers,
        "seconds": args.seconds,
        "cores": os.cpu_count(),
        "pgbench_tps": tps,
        "ratio": pair["checkouts_per_s"] / tps,
        "sale_ratio": sale["checkouts_per_s"] / tps,
        "loads": loads,
        "statements": statements,
        "books": books,
        # kept for readers of the earlier file
        "checkouts_per_s": pair["checkouts_per_s"],
        "p50_ms": pair["p50_ms"],
        "p99_ms": pair["p99_ms"],
    }
    print(
        f"checkout benchmark: {args.clients} clients, {args.workers} API workers, "
        f"{args.seconds}s, PostgreSQL, {os.cpu_count()} cores"
    )
    for name, f in loads.items():
        print_load(name, f, "application" if name.startswith("application") else "checkout")
    print(f"  pgbench TPC-B-like            : {tps:8.1f} tps")
    print(
        f"  ratio authorize+capture       : {result['ratio']:.3f}   sale: "
        f"{result['sale_ratio']:.3f}"
    )
    for name in ("authorize", "capture", "authorize+capture", "sale"):
        s = statements[name]
        print(
            f"  per {name:<26}: {s['statements']:.1f} statements, {s['transactions']:.1f} "
            f"transactions ({s['commits']:.1f} commits), {s['pool_checkouts']:.1f} pool "
            f"checkouts (a ping each)"
        )
    print(
        f"  authorize+capture in process, one at a time, API and client CPU: "
        f"{statements['authorize+capture']['in_process_cpu_ms']:.2f} ms"
    )
    cost = pair["cpu_ms_api"] + pair["cpu_ms_db"]
    print(
        f"  machine bound (cores / API+PostgreSQL CPU per checkout): "
        f"{os.cpu_count() or 1} / {cost:.2f} ms = "
        f"{(os.cpu_count() or 1) / max(cost, 1e-9) * 1000:.0f} checkouts/s"
    )
    print(f"  books after the load          : {books}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checkout.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
