"""The randomized concurrency harness, long run (issue 25; tests/support/vopr.py).

Clients issue a seeded random mix of sales, authorizations, captures, voids, refunds,
repayments, conversions, payoffs, payouts and hardship plans over HTTP against `fenqi serve
--workers 2`, while the business date moves and `fenqi eod` runs, and faults are injected
(kill -9 of a worker, kill -9 of the server, end of day killed part-way, and on PostgreSQL every
server connection terminated). Then: trial balance, reconcile, deep reconcile (sub-ledgers),
limits, every acknowledged operation applied exactly once, replays identical. Prints the seed
and the figures, writes bench/results/vopr.json, exits 1 when an invariant fails (the operation
log is named in the output). The same seed replays the same plan.

    python bench/vopr.py [--seed N] [--clients 8] [--ops 2000] [--faults 12] [--eods 8]
                         [--db both|sqlite|postgresql] [--shoppers 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import uuid
from dataclasses import asdict
from datetime import date
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fenqi.clock import FixedClock
from fenqi.simulation.starter import ensure_starter_model
from fenqi.store.engine import make_engine
from support.vopr import Config, Report, run

RESULTS = Path(__file__).parent / "results"
PG = os.environ.get("FENQI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def one(database: str, args: argparse.Namespace, models: Path, tmp: Path) -> Report:
    if database == "sqlite":
        url = f"sqlite:///{tmp / 'vopr.sqlite'}"
        return run(_config(args, url, models, tmp / "sqlite"))
    schema = f"vopr_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG else "?"
    try:
        return run(_config(args, f"{PG}{sep}options=-csearch_path%3D{schema}", models, tmp / "pg"))
    finally:
        if not args.keep:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        else:
            print(f"kept PostgreSQL schema {schema}")
        admin.dispose()


def _config(args: argparse.Namespace, url: str, models: Path, workdir: Path) -> Config:
    return Config(
        seed=args.seed,
        db_url=url,
        models_dir=models,
        workdir=workdir,
        clients=args.clients,
        ops=args.ops,
        faults=args.faults,
        eods=args.eods,
        shoppers=args.shoppers,
        shops=args.shops,
        workers=args.workers,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ops", type=int, default=2000, help="operations in all")
    parser.add_argument("--faults", type=int, default=12)
    parser.add_argument("--eods", type=int, default=8, help="times the date moves and eod runs")
    parser.add_argument("--shoppers", type=int, default=24)
    parser.add_argument("--shops", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", choices=["both", "sqlite", "postgresql"], default="both")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 10**6)
    print(f"vopr: seed {args.seed} (rerun: python bench/vopr.py --seed {args.seed} ...)")
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="vopr-") as scratch:
        tmp = args.workdir or Path(scratch)
        models = tmp / "models"
        ensure_starter_model(models, FixedClock.on(date(2026, 1, 1)), rows=4000)
        reports = []
        for database in databases:
            report = one(database, args, models, tmp)
            print(report.summary(), flush=True)
            reports.append(report)
        failed = [r for r in reports if r.problems]
        if failed and args.workdir is None:  # keep the logs of a failing run
            keep = Path(tempfile.mkdtemp(prefix=f"vopr-{args.seed}-"))
            for r in failed:
                src = Path(r.log_file)
                (keep / src.name).write_bytes(src.read_bytes())
                r.log_file = str(keep / src.name)
                print(f"operation log kept: {r.log_file}")
    RESULTS.mkdir(exist_ok=True)
    figures = {
        "seed": args.seed,
        "clients": args.clients,
        "ops": args.ops,
        "faults": args.faults,
        "eods": args.eods,
        "runs": [
            {
                **{k: v for k, v in asdict(r).items() if k not in ("ops", "server_errors")},
                "ops": dict(r.ops),
                "server_errors": dict(r.server_errors),
                "operations_per_s": sum(r.ops.values()) / r.seconds if r.seconds else 0.0,
            }
            for r in reports
        ],
    }
    (RESULTS / "vopr.json").write_text(json.dumps(figures, indent=2, default=str))
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
