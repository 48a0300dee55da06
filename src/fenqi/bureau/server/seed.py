"""Seed the bureau with the synthetic population's borrowing at other lenders (多头借贷).

The simulator's applicants (fenqi.simulation.population.applicants) carry `other_lenders` (how
many other lenders they owe) and `bureau_delinquent`; here each becomes credit files at named
other lenders, with a status history, so a report shows multi-lender borrowing and delinquency
that agree with what the population says. Subject i's identity number is
`synthetic_id_number(i, age)`, so the simulator (or a test) can apply to fenqi as that subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import Engine, insert, select

from fenqi.bureau.attributes import months_before
from fenqi.bureau.server.db import cb_accounts, cb_history, cb_inquiries, create_bureau_tables
from fenqi.clock import Clock
from fenqi.privacy.identity import check_char

OTHER_LENDERS = ("bank_a", "cfc_b", "jiebei", "baitiao", "weilidai", "cfc_c", "bank_d", "p2p_e")
SEED_SUBJECTS_MAX = 300_000  # ids stay unique below this


def synthetic_id_number(index: int, age: int, today: date) -> str:
    """A valid resident ID number (GB 11643) for synthetic subject `index` of `age`."""
    if not 0 <= index < SEED_SUBJECTS_MAX:
        raise ValueError(f"index must be 0..{SEED_SUBJECTS_MAX - 1}")
    birth = date(today.year - age - 1, 1, 1) + timedelta(days=index % 365)
    body = f"110105{birth:%Y%m%d}{(index // 365) % 1000:03d}"
    return body + check_char(body)


@dataclass(frozen=True, slots=True)
class SeedSummary:
    subjects: int
    accounts: int
    multi_lender_subjects: int  # open accounts at 2 or more lenders
    delinquent_subjects: int
    inquiries: int
    subject_ids: tuple[str, ...]


def seed_population(engine: Engine, clock: Clock, n: int, seed: int = 7) -> SeedSummary:
    """Write n synthetic subjects' files at other lenders. Idempotent per (n, seed): accounts
    already present (same lender and account number) are left alone."""
    from fenqi.simulation.population import applicants

    if not 1 <= n <= SEED_SUBJECTS_MAX:
        raise ValueError(f"n must be 1..{SEED_SUBJECTS_MAX}")
    create_bureau_tables(engine)
    frame = applicants(n, seed)
    rng = np.random.default_rng(seed + 1)
    today = clock.today()
    now = clock.now()
    as_of = today.replace(day=1) - timedelta(days=1)  # last month's end
    accounts: list[dict[str, object]] = []
    histories: list[tuple[str, list[tuple[str, str, int, int]]]] = []
    inquiries: list[dict[str, object]] = []
    ids = []
    multi = delinquent = 0
    for i, (age, others, bad_flag) in enumerate(
        zip(frame["age"], frame["other_lenders"], frame["bureau_delinquent"], strict=True)
    ):
        subject = synthetic_id_number(i, int(age), today)
        ids.append(subject)
        k = int(min(others, len(OTHER_LENDERS)))
        lenders: list[int] = (
            [int(x) for x in rng.choice(len(OTHER_LENDERS), size=k, replace=False)] if k else []
        )
        multi += k >= 2
        delinquent += bool(bad_flag)
        for j, li in enumerate(lenders):
            late = bool(bad_flag) and j == 0
            dpd = int(rng.choice([35, 65, 95])) if late else 0
            limit = int(rng.integers(5, 200)) * 100_000
            balance = int(limit * float(rng.uniform(0.1, 0.9)))
            opened = months_before(as_of, int(rng.integers(3, 48)))
            ref = f"seed{seed}-{i}-{OTHER_LENDERS[li]}"
            accounts.append(
                {
                    "subject_id": subject,
                    "lender": OTHER_LENDERS[li],
                    "account_ref": ref,
                    "portfolio": "revolving" if j % 2 == 0 else "installment",
                    "currency": "CNY",
                    "opened_on": opened,
                    "closed_on": None,
                    "limit_minor": limit,
                    "balance_minor": balance,
                    "past_due_minor": balance // 5 if late else 0,
                    "charge_off_minor": 0,
                    "status": "delinquent" if late else "current",
                    "dpd": dpd,
                    "as_of": as_of,
                    "special": "",
                }
            )
            months = []
            for back in range(min(24, max(1, (as_of - opened).days // 30))):
                month_day = months_before(as_of, back)
                m_dpd = max(0, dpd - 30 * back) if late else 0
                months.append(
                    (
                        f"{month_day.year:04d}-{month_day.month:02d}",
                        "delinquent" if m_dpd else "current",
                        m_dpd,
                        balance,
                    )
                )
            histories.append((ref, months))
        for q in range(int(rng.poisson(0.5 + k * 0.6))):
            inquiries.append(
                {
                    "subject_id": subject,
                    "lender": OTHER_LENDERS[int(rng.integers(len(OTHER_LENDERS)))],
                    "purpose": "loan_application",
                    "authorization_ref": f"seed-{i}-{q}",
                    "authorized_at": now - timedelta(days=int(rng.integers(1, 360))),
                    "at": now - timedelta(days=int(rng.integers(1, 360))),
                }
            )
    with engine.begin() as conn:
        known = {
            r.account_ref
            for r in conn.execute(
                select(cb_accounts.c.account_ref).where(
                    cb_accounts.c.account_ref.like(f"seed{seed}-%")
                )
            )
        }
        fresh = [a for a in accounts if a["account_ref"] not in known]
        if fresh:
            conn.execute(insert(cb_accounts), fresh)
            id_of = {
                r.account_ref: r.id
                for r in conn.execute(
                    select(cb_accounts.c.id, cb_accounts.c.account_ref).where(
                        cb_accounts.c.account_ref.like(f"seed{seed}-%")
                    )
                )
            }
            rows = [
                {
                    "account_id": id_of[ref],
                    "month": m,
                    "status": s,
                    "dpd": d,
                    "balance_minor": b,
                    "corrected": False,
                }
                for ref, months in histories
                if ref not in known
                for m, s, d, b in months
            ]
            if rows:
                conn.execute(insert(cb_history), rows)
            if inquiries:
                conn.execute(insert(cb_inquiries), inquiries)
    return SeedSummary(
        subjects=n,
        accounts=len(accounts),
        multi_lender_subjects=int(multi),
        delinquent_subjects=int(delinquent),
        inquiries=len(inquiries) if fresh else 0,
        subject_ids=tuple(ids),
    )
