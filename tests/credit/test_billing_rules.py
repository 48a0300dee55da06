"""The billing rules have one home, `fenqi.credit.billing` (issue 22): the end of day's SQL is
built by the same functions, and on random cases, on both databases, it computes what the
Python computes."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Engine, literal, select

from fenqi.batch.sql import larger, smaller
from fenqi.credit import billing

STEPS = Path(__file__).resolve().parents[2] / "src" / "fenqi" / "batch" / "steps"
CASES = 300
CHUNK = 60  # expressions per SELECT


def _n(value: int) -> Any:
    return literal(value, BigInteger)


def _agree(
    engine: Engine,
    cases: Sequence[tuple[int, ...]],
    sql: Callable[..., Any],
    py: Callable[..., int],
) -> None:
    with engine.connect() as conn:
        for start in range(0, len(cases), CHUNK):
            chunk = cases[start : start + CHUNK]
            row = conn.execute(
                select(*[sql(*(_n(v) for v in c)).label(f"c{i}") for i, c in enumerate(chunk)])
            ).one()
            for case, got in zip(chunk, row, strict=True):
                assert int(got) == py(*case), case


def test_the_sql_and_the_python_rules_agree(db_engine: Engine) -> None:
    rng = random.Random(22)
    charges = [
        (rng.randrange(0, 10**9), rng.choice([0, 1, 350, 500, 499, 700, rng.randrange(0, 3000)]))
        for _ in range(CASES)
    ]
    _agree(
        db_engine,
        charges,
        lambda fen, ppm: billing.round_charge(fen * ppm),
        billing.charge_for_day,
    )
    penalties = [
        (rng.randrange(0, 2000), rng.randrange(0, 4000), rng.choice([2400, 3600, 1000]))
        for _ in range(CASES)
    ]
    _agree(
        db_engine,
        penalties,
        lambda pen, plan, cap: billing.capped_penalty_rule(
            pen, plan, cap, smaller=smaller, larger=larger
        ),
        billing.capped_penalty_ppm,
    )
    minimums = []
    for _ in range(CASES):
        total = rng.randrange(0, 10**8)
        minimums.append(
            (
                total,
                rng.randrange(0, total + 1),
                rng.choice([0, 500, 1000, 10_000, rng.randrange(0, 10_001)]),
                rng.choice([0, 1_000, 5_000, rng.randrange(0, 10**6)]),
            )
        )

    def minimum_sql(total: Any, revolvable: Any, principal_bp: Any, floor: Any) -> Any:
        # the product's figures are constants in the end of day's SQL, as here
        return billing.minimum_payment_rule(
            total,
            revolvable,
            principal_bp.value,
            floor.value,
            smaller=smaller,
            larger=larger,
        )

    _agree(db_engine, minimums, minimum_sql, billing.minimum_payment)


def test_the_end_of_day_spells_no_rule_of_its_own() -> None:
    """No literal year length or rounding constant in the steps: they call the rules."""
    rule_literals = re.compile(r"\b(365|1_?000_?000|500_?000)\b")
    hits = [
        f"{p.name}:{n}"
        for p in sorted(STEPS.glob("*.py"))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if rule_literals.search(line) and not line.lstrip().startswith("#")
    ]
    assert hits == []


def test_the_python_rules() -> None:
    assert billing.charge_for_day(10_000, 500) == 5  # 0.05%/day of 100 yuan
    assert billing.charge_for_day(1_000, 500) == 1  # 0.5 fen rounds half up
    assert billing.charge_for_day(999, 500) == 0
    # 24% cap, plan at 18%: room 6%/year = 164 ppm/day; the product's 500 ppm is held down
    assert billing.capped_penalty_ppm(500, 1_800, 2_400) == 164
    assert billing.capped_penalty_ppm(100, 1_800, 2_400) == 100
    assert billing.capped_penalty_ppm(500, 2_390, 2_400) == 2  # 10 bp/year of room
    assert billing.capped_penalty_ppm(500, 3_000, 2_400) == 0  # over the cap: none
    assert billing.minimum_payment(100_000, 100_000, 1_000, 5_000) == 10_000
    assert billing.minimum_payment(100_000, 0, 1_000, 5_000) == 100_000
    assert billing.minimum_payment(3_000, 3_000, 1_000, 5_000) == 3_000  # floor above total
