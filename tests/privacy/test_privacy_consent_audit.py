"""Consent records and the append-only audit log, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from fenqi.clock import FixedClock
from fenqi.privacy import audit
from fenqi.privacy.consent import (
    ConsentGiven,
    ConsentKind,
    has_consent,
    list_consents,
    record_consent,
    record_consents,
    revoke_consent,
)
from fenqi.privacy.errors import PrivacyError
from fenqi.store.schema.privacy import audit_log

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_consent_lifecycle(db_engine: Engine) -> None:
    clock = FixedClock(T0)
    with db_engine.begin() as conn:
        given = record_consent(
            conn,
            clock,
            42,
            ConsentKind.BUREAU_INQUIRY,
            text_version="bureau-2026-01",
            scope="PBOC credit report, one inquiry per application",
            channel="app",
        )
        record_consent(conn, clock, 42, "shopping_data", text_version="shop-v3", channel="web")
        record_consent(
            conn, clock, 7, "bureau_inquiry", text_version="bureau-2026-01", channel="app"
        )
    assert given.granted_at == T0 and given.revoked_at is None
    before, later = T0 - timedelta(seconds=1), T0 + timedelta(days=30)
    with db_engine.connect() as conn:
        assert has_consent(conn, 42, ConsentKind.BUREAU_INQUIRY, T0)
        assert has_consent(conn, 42, "bureau_inquiry", later)
        assert not has_consent(conn, 42, "bureau_inquiry", before)
        assert not has_consent(conn, 42, "marketing", later)
        assert not has_consent(conn, 43, "bureau_inquiry", later)
    clock.advance(timedelta(days=10))
    revoked_at = clock.now()
    with db_engine.begin() as conn:
        assert revoke_consent(conn, clock, 42, "bureau_inquiry") == 1
        assert revoke_consent(conn, clock, 42, "bureau_inquiry") == 0  # nothing left standing
    with db_engine.connect() as conn:
        assert has_consent(conn, 42, "bureau_inquiry", revoked_at - timedelta(seconds=1))
        assert not has_consent(conn, 42, "bureau_inquiry", revoked_at)
        assert not has_consent(conn, 42, "bureau_inquiry", later)
        assert has_consent(conn, 42, "shopping_data", later)  # other kinds untouched
        assert has_consent(conn, 7, "bureau_inquiry", later)  # other customers untouched
        history = list_consents(conn, 42)
    assert [c.kind for c in history] == [ConsentKind.BUREAU_INQUIRY, ConsentKind.SHOPPING_DATA]
    assert history[0].revoked_at == revoked_at and history[0].text_version == "bureau-2026-01"
    assert not history[0].active_at(later) and history[1].active_at(later)
    # Consent given again after a revocation counts from its own grant time.
    clock.advance(timedelta(days=1))
    with db_engine.begin() as conn:
        record_consent(
            conn, clock, 42, "bureau_inquiry", text_version="bureau-2026-02", channel="app"
        )
        assert has_consent(conn, 42, "bureau_inquiry", clock.now())
        assert not has_consent(conn, 42, "bureau_inquiry", revoked_at + timedelta(hours=1))


@pytest.mark.parametrize(
    ("kind", "version", "channel", "field"),
    [
        ("credit_card", "v1", "app", "kind"),
        ("marketing", "", "app", "text_version"),
        ("marketing", "v" * 33, "app", "text_version"),
        ("marketing", "v1", " ", "channel"),
    ],
)
def test_consent_refusals(
    db_engine: Engine, kind: str, version: str, channel: str, field: str
) -> None:
    with db_engine.begin() as conn, pytest.raises(PrivacyError) as info:
        record_consent(conn, FixedClock(T0), 1, kind, text_version=version, channel=channel)
    assert info.value.code == "invalid_consent" and info.value.detail["field"] == field


def test_audit_record_and_cursor_pagination(db_engine: Engine) -> None:
    clock = FixedClock(T0)
    with db_engine.begin() as conn:
        for i in range(12):
            clock.advance(timedelta(minutes=1))
            audit.record(
                conn,
                clock,
                actor_kind="staff",
                actor_id=1 + i % 2,
                action="account.freeze",
                target_kind="credit_account",
                target_id=100 + i % 3,
                reason=f"case {i}",
                detail={"n": i},
            )
    with db_engine.connect() as conn:
        pages: list[list[audit.AuditEntry]] = []
        after = 0
        while page := audit.list_entries(conn, limit=5, after_id=after):
            pages.append(page)
            after = page[-1].id
        assert [len(p) for p in pages] == [5, 5, 2]
        entries = [e for p in pages for e in p]
        assert [e.detail["n"] for e in entries] == list(range(12))
        assert entries[0].at == T0 + timedelta(minutes=1)
        assert entries[0].actor_kind is audit.ActorKind.STAFF
        by_target = audit.list_entries(conn, target_kind="credit_account", target_id=101)
        assert [e.detail["n"] for e in by_target] == [1, 4, 7, 10]
        by_actor = audit.list_entries(conn, actor_id=2, limit=2)
        assert [e.detail["n"] for e in by_actor] == [1, 3]
        rest = audit.list_entries(conn, actor_id=2, after_id=by_actor[-1].id)
        assert [e.detail["n"] for e in rest] == [5, 7, 9, 11]
        assert audit.list_entries(conn, target_kind="order") == []
    with pytest.raises(ValueError):
        audit.list_entries(conn, limit=0)


def test_audit_redacts_personal_data(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        entry = audit.record(
            conn,
            FixedClock(T0),
            actor_kind=audit.ActorKind.STAFF,
            actor_id="7",
            action="customer.reveal_pii",
            target_kind="customer",
            target_id="42",
            reason="called back on 13812341234",
            detail={"id_number": "11010519491231002X", "nested": ["+86 139 1234 5678"], "n": 5},
        )
    with db_engine.connect() as conn:
        row = conn.execute(select(audit_log)).one()
    stored = json.dumps(dict(row._mapping), default=str)
    for plain in ("13812341234", "11010519491231002X", "13912345678", "139 1234 5678"):
        assert plain not in stored
    assert "138****1234" in row.reason and "110***********002X" in row.detail
    assert entry.detail == {"id_number": "110***********002X", "nested": ["139****5678"], "n": 5}


def test_audit_refusals(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        for kwargs in (
            {"actor_kind": "robot", "actor_id": "1", "action": "x"},
            {"actor_kind": "staff", "actor_id": "", "action": "x"},
            {"actor_kind": "staff", "actor_id": "1", "action": ""},
            {"actor_kind": "staff", "actor_id": "1", "action": "x", "detail": {"a": "b" * 20000}},
        ):
            with pytest.raises(PrivacyError) as info:
                audit.record(conn, FixedClock(T0), **kwargs)
            assert info.value.code == "invalid_audit"


def test_audit_module_offers_no_update_or_delete() -> None:
    public = {name for name in dir(audit) if not name.startswith("_")}
    assert not {n for n in public if any(w in n for w in ("update", "delete", "remove", "edit"))}


def test_several_consents_in_one_statement_read_back_as_one_by_one(db_engine: Engine) -> None:
    clock = FixedClock(T0)
    given = [
        ConsentGiven("bureau_inquiry", " v1 ", "credit decision"),
        ConsentGiven(ConsentKind.SHOPPING_DATA, "v1", "credit decision"),
    ]
    with db_engine.begin() as conn:
        for g in given:
            record_consent(
                conn,
                clock,
                1,
                g.kind,
                text_version=g.text_version,
                scope=g.scope,
                channel="merchant:s1",
            )
        assert record_consents(conn, clock, 2, given, channel="merchant:s1") == 2
        assert record_consents(conn, clock, 3, [], channel="merchant:s1") == 0
    with db_engine.connect() as conn:
        one_by_one, together = list_consents(conn, 1), list_consents(conn, 2)
    assert [c.id for c in together] == sorted(c.id for c in together)
    assert [
        (c.kind, c.text_version, c.scope, c.granted_at, c.revoked_at, c.channel) for c in together
    ] == [
        (c.kind, c.text_version, c.scope, c.granted_at, c.revoked_at, c.channel) for c in one_by_one
    ]
    assert together[0].text_version == "v1"
    bad = [*given, ConsentGiven("telepathy", "v1")]
    with db_engine.begin() as conn, pytest.raises(PrivacyError, match="no such consent kind"):
        record_consents(conn, clock, 4, bad, channel="merchant:s1")
    with db_engine.connect() as conn:
        assert list_consents(conn, 4) == []  # checked before anything is written
