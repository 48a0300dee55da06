"""The bureau service over real HTTP, on SQLite and PostgreSQL, through fenqi's client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from fenqi.bureau import pboc
from fenqi.bureau.client import CircuitBreaker, HttpBureauClient, InquiryAuthorization
from fenqi.bureau.errors import BureauError, BureauUnavailable
from fenqi.bureau.records import AccountRecord, Portfolio, ReportStatus
from fenqi.bureau.server.db import cb_accounts, cb_history, cb_inquiries
from fenqi.bureau.server.seed import seed_population
from fenqi.clock import FixedClock
from support.api_server import free_port
from support.bureau_server import TOKEN_OF, Bureau, running_bureau

SUBJECT = "11010519900307123X"


@pytest.fixture
def bureau(db_url: str) -> Iterator[Bureau]:
    with running_bureau(db_url, FixedClock.on(date(2026, 4, 2))) as b:
        yield b


def client(
    b: Bureau, lender: str = "fenqi", breaker: CircuitBreaker | None = None
) -> HttpBureauClient:
    return HttpBureauClient(
        b.url, TOKEN_OF[lender], b.clock, lender=lender, sleep=lambda _s: None, breaker=breaker
    )


def auth(b: Bureau) -> InquiryAuthorization:
    return InquiryAuthorization("consent:1", b.clock.now() - timedelta(minutes=1), "2026-01")


def line(ref: str, **kw: object) -> AccountRecord:
    base = dict(
        account_ref=ref,
        subject_id=SUBJECT,
        name="张三",
        currency="CNY",
        portfolio=Portfolio.REVOLVING,
        opened_on=date(2025, 6, 1),
        as_of=date(2026, 3, 31),
        limit_minor=800_000,
        balance_minor=300_000,
        past_due_minor=0,
        dpd=0,
        status=ReportStatus.CURRENT,
    )
    base.update(kw)
    return AccountRecord(**base)  # type: ignore[arg-type]


def test_seeded_population_has_multi_lender_borrowers(bureau: Bureau) -> None:
    summary = seed_population(bureau.engine, bureau.clock, 400, seed=7)
    assert summary.multi_lender_subjects > 50  # 多头借贷 exists
    again = seed_population(bureau.engine, bureau.clock, 400, seed=7)  # idempotent
    with bureau.engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(cb_accounts)).scalar_one()
            == summary.accounts
            == again.accounts
        )
    c = client(bureau)
    with bureau.engine.connect() as conn:
        subject = conn.execute(
            select(cb_accounts.c.subject_id)
            .group_by(cb_accounts.c.subject_id)
            .having(func.count() >= 3)
            .limit(1)
        ).scalar_one()
    report = c.inquire(subject, "loan_application", auth(bureau))
    assert len({a.lender for a in report.accounts}) >= 3


def test_every_inquiry_is_kept_and_shown_in_later_reports(bureau: Bureau) -> None:
    first = client(bureau, "bank_a").inquire(SUBJECT, "loan_application", auth(bureau))
    assert first.accounts == () and first.inquiries == ()  # thin file, nothing before
    second = client(bureau).inquire(SUBJECT, "loan_application", auth(bureau))
    assert [(i.lender, i.purpose) for i in second.inquiries] == [("bank_a", "loan_application")]
    with bureau.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cb_inquiries)).scalar_one() == 2


def test_inquiry_without_authorization_is_refused_and_not_kept(bureau: Bureau) -> None:
    r = httpx.post(
        f"{bureau.url}/v1/inquiries",
        json={"subject_id": SUBJECT, "purpose": "loan_application"},
        headers={"Authorization": f"Bearer {TOKEN_OF['fenqi']}"},
    )
    assert r.status_code == 403
    assert r.json()["code"] == "bureau_authorization_required"
    assert r.json()["field"] == "authorization"
    r = httpx.post(
        f"{bureau.url}/v1/inquiries",
        json={"subject_id": SUBJECT, "purpose": "loan_application"},
        headers={"Authorization": "Bearer nope"},
    )
    assert r.status_code == 401
    with bureau.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cb_inquiries)).scalar_one() == 0


def test_reporting_files_update_files_and_a_malformed_one_changes_nothing(
    bureau: Bureau,
) -> None:
    bank = client(bureau, "bank_a")
    text = pboc.write_file(
        [line("A1"), line("A2", balance_minor=100_000)], "2026-03", date(2026, 4, 1)
    )
    assert bank.submit("pboc", text).records == 2
    late = line(
        "A1", balance_minor=310_000, past_due_minor=10_000, dpd=20, status=ReportStatus.DELINQUENT
    )
    corrected = pboc.write_file([late], "2026-03", date(2026, 4, 2))
    bad = corrected.replace("T|1|310000", "T|1|1")
    with pytest.raises(BureauError) as err:
        bank.submit("pboc", bad)
    assert err.value.code == "bureau_file_invalid"
    assert "trailer.balance_sum" in err.value.message
    with bureau.engine.connect() as conn:  # the malformed file changed nothing
        assert (
            conn.execute(
                select(cb_accounts.c.balance_minor).where(cb_accounts.c.account_ref == "A1")
            ).scalar_one()
            == 300_000
        )
    bank.submit("pboc", corrected.replace("|0|\n", "|1|\n"))  # a correction of March
    report = client(bureau).inquire(SUBJECT, "loan_application", auth(bureau))
    a1 = next(a for a in report.accounts if a.account_ref == "A1")
    assert (a1.status, a1.dpd, a1.balance_minor) == ("delinquent", 20, 310_000)
    assert [(h.month, h.dpd) for h in a1.history] == [("2026-03", 20)]
    with bureau.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cb_history)).scalar_one() == 2


def test_client_retries_then_opens_the_circuit_and_recovers(bureau: Bureau) -> None:
    clock = FixedClock.on(date(2026, 4, 2))
    breaker = CircuitBreaker(clock, failures_to_open=2, reset_seconds=60)
    dead = HttpBureauClient(
        f"http://127.0.0.1:{free_port()}",
        "x",
        clock,
        retries=2,
        breaker=breaker,
        timeout_seconds=2,
        sleep=lambda _s: None,
    )
    for _ in range(2):
        with pytest.raises(BureauUnavailable, match="3 attempts"):
            dead.inquire(SUBJECT, "loan_application", auth(bureau))
    assert breaker.state == "open"
    with pytest.raises(BureauUnavailable, match="circuit open"):
        dead.inquire(SUBJECT, "loan_application", auth(bureau))
    clock.advance(timedelta(seconds=61))
    assert breaker.state == "half_open"
    live = client(bureau, breaker=breaker)
    live.inquire(SUBJECT, "loan_application", auth(bureau))
    assert breaker.state == "closed"
