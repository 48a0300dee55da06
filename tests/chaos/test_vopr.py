"""The randomized concurrency harness (tests/support/vopr.py, issue 25), a short run on each
database: clients issuing a seeded mix of money operations over HTTP against `fenqi serve`
while workers are killed, the server is killed, end of day crashes part-way and (PostgreSQL)
connections are dropped; then every invariant. The long run: `python bench/vopr.py`.

A failure names the seed and the operation log; `python bench/vopr.py --seed N --db sqlite`
(or `--db postgresql`) runs the same plan again. FENQI_VOPR_SEED=N picks the seed here."""

from __future__ import annotations

import os
from pathlib import Path

from support.vopr import Config, run

SEED = int(os.environ.get("FENQI_VOPR_SEED", "2526"))


def test_vopr_short_run(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    report = run(
        Config(
            seed=SEED,
            db_url=db_url,
            models_dir=models_dir,
            workdir=tmp_path / "vopr",
            clients=6,
            ops=120,
            faults=4,
            eods=3,
            shoppers=8,
        )
    )
    print(report.summary())
    assert not report.problems, report.summary()
    assert report.faults, report.summary()
