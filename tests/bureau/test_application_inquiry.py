"""Applications with a bureau configured, over real HTTP (fenqi's API and the bureau service),
on SQLite and PostgreSQL: the bureau's attributes decide, an outage gives the fallback."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fenqi.bureau import pboc
from fenqi.bureau.client import (
    CircuitBreaker,
    HttpBureauClient,
    InquiryAuthorization,
    SubmissionResult,
)
from fenqi.bureau.errors import NoAuthorization
from fenqi.bureau.inquiry import UNAVAILABLE_REASON, inquire, stored_report
from fenqi.bureau.model import CreditReport
from fenqi.bureau.records import AccountRecord, Portfolio, ReportStatus
from fenqi.clock import FixedClock
from fenqi.privacy.audit import list_entries
from fenqi.privacy.consent import ConsentKind, record_consent, revoke_consent
from fenqi.privacy.crypto import KeyRing
from fenqi.store.schema.bureau import bureau_reports
from support.api_server import Api, free_port, id_number, running_api
from support.bureau_server import TOKEN_OF, running_bureau


def late_elsewhere(subject: str) -> str:
    rec = AccountRecord(
        account_ref="B-77",
        subject_id=subject,
        name="张三",
        currency="CNY",
        portfolio=Portfolio.INSTALLMENT,
        opened_on=date(2025, 3, 1),
        as_of=date(2025, 12, 31),
        limit_minor=1_000_000,
        balance_minor=400_000,
        past_due_minor=80_000,
        dpd=65,
        status=ReportStatus.DELINQUENT,
    )
    return pboc.write_file([rec], "2025-12", date(2026, 1, 1))


def use_bureau(api: Api, url: str, **kw: object) -> HttpBureauClient:
    client = HttpBureauClient(url, TOKEN_OF["fenqi"], api.clock, sleep=lambda _s: None, **kw)  # type: ignore[arg-type]
    api.ctx.__dict__["bureau"] = client  # what FENQI_BUREAU_URL would configure
    return client


def test_bureau_attributes_replace_the_shop_flag(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    subject = id_number(seq="201")
    with (
        running_api(db_url, models_dir, tmp_path) as api,
        running_bureau(f"sqlite:///{tmp_path / 'bureau.sqlite'}", api.clock) as bureau,
    ):
        HttpBureauClient(bureau.url, TOKEN_OF["bank_a"], api.clock).submit(
            "pboc", late_elsewhere(subject)
        )
        use_bureau(api, bureau.url)
        key = api.merchant()
        # the shop says nothing bad; the bureau knows of 65 days past due at another lender
        r = api.apply(key, subject, "13812340001", bureau_delinquent=False)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["outcome"] == "declined"
        assert "P06_BUREAU_DELINQUENT" in body["reasons"]
        clean = api.apply(key, id_number(seq="202"), "13812340002")
        assert clean.json()["outcome"] == "approved", clean.text
        with api.ctx.engine.connect() as conn:
            rows = conn.execute(select(bureau_reports).order_by(bureau_reports.c.id)).all()
            assert [r.status for r in rows] == ["ok", "ok"]
            first = rows[0]
            assert first.retention_until == api.clock.today() + timedelta(days=5 * 365)
            assert subject not in (first.report_enc or "")  # sealed, not in clear
            attrs = json.loads(first.attributes)
            assert attrs["worst_dpd_24m"] == 65 and attrs["open_accounts_elsewhere"] == 1
            report = stored_report(conn, api.ctx.keys, int(first.id))
            assert report is not None and report.subject_id == subject
            actions = [e.action for e in list_entries(conn, action="bureau.inquiry")]
            assert len(actions) == 2


@pytest.mark.parametrize("fallback", ["refer", "decline"])
def test_bureau_outage_gives_the_configured_fallback(
    db_url: str, models_dir: Path, tmp_path: Path, fallback: str
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        api.ctx.settings = api.ctx.settings.model_copy(update={"bureau_outage_fallback": fallback})
        use_bureau(
            api,
            f"http://127.0.0.1:{free_port()}",
            breaker=CircuitBreaker(api.clock, failures_to_open=1),
        )
        key = api.merchant()
        for seq in ("301", "302"):  # the second finds the circuit open: no wait, same answer
            r = api.apply(key, id_number(seq=seq), f"13812340{seq}")
            assert r.status_code == 201, r.text
            body = r.json()
            assert body["outcome"] == ("review" if fallback == "refer" else "declined")
            assert UNAVAILABLE_REASON in body["reasons"]
            assert body["credit_account_id"] is None
        with api.ctx.engine.connect() as conn:
            rows = conn.execute(select(bureau_reports.c.status, bureau_reports.c.report_enc))
            assert [tuple(r) for r in rows] == [("unavailable", None)] * 2


def test_inquiry_needs_a_standing_authorization(db_engine: object, tmp_path: Path) -> None:
    from sqlalchemy import Engine

    assert isinstance(db_engine, Engine)
    clock = FixedClock.on(date(2026, 3, 2))
    keys = KeyRing.generate()

    class Never:
        lender = "fenqi"

        def inquire(
            self, subject_id: str, purpose: str, authorization: InquiryAuthorization
        ) -> CreditReport:
            raise AssertionError("no call without authorization")

        def submit(self, fmt: str, content: str) -> SubmissionResult:
            raise AssertionError

    with db_engine.begin() as conn:
        with pytest.raises(NoAuthorization):
            inquire(
                conn, clock, keys, Never(), 7, id_number(), "loan_application", retention_days=30
            )
        record_consent(
            conn, clock, 7, ConsentKind.BUREAU_INQUIRY, text_version="2026-01", channel="test"
        )
        clock.advance(timedelta(minutes=1))
        revoke_consent(conn, clock, 7, ConsentKind.BUREAU_INQUIRY)  # withdrawn: refused again
        clock.advance(timedelta(minutes=1))
        with pytest.raises(NoAuthorization):
            inquire(
                conn, clock, keys, Never(), 7, id_number(), "loan_application", retention_days=30
            )
        refused = list_entries(conn, action="bureau.inquiry_refused")
        assert len(refused) == 2
        assert conn.execute(select(bureau_reports)).first() is None


def test_monitoring_needs_its_own_consent_and_stops_when_it_is_withdrawn(
    db_engine: object,
) -> None:
    from sqlalchemy import Engine

    from fenqi.bureau.errors import BureauUnavailable

    assert isinstance(db_engine, Engine)
    clock = FixedClock.on(date(2026, 3, 2))
    keys = KeyRing.generate()
    calls: list[str] = []

    class Recorder:
        lender = "fenqi"

        def inquire(
            self, subject_id: str, purpose: str, authorization: InquiryAuthorization
        ) -> CreditReport:
            calls.append(purpose)
            raise BureauUnavailable("down")  # what the bureau answers does not matter here

        def submit(self, fmt: str, content: str) -> SubmissionResult:
            raise AssertionError

    def monitor() -> object:
        return inquire(
            conn, clock, keys, Recorder(), 7, id_number(), "post_loan_monitoring", retention_days=30
        )

    with db_engine.begin() as conn:
        record_consent(conn, clock, 7, ConsentKind.BUREAU_INQUIRY, text_version="v", channel="t")
        with pytest.raises(NoAuthorization, match="bureau_monitoring"):
            monitor()  # the application's consent does not cover monitoring
        record_consent(conn, clock, 7, ConsentKind.BUREAU_MONITORING, text_version="v", channel="t")
        clock.advance(timedelta(minutes=1))
        monitor()
        assert calls == ["post_loan_monitoring"]
        revoke_consent(conn, clock, 7, ConsentKind.BUREAU_MONITORING)  # withdrawn (privacy.rights)
        clock.advance(timedelta(minutes=1))
        with pytest.raises(NoAuthorization, match="bureau_monitoring"):
            monitor()
        assert calls == ["post_loan_monitoring"]
