"""Staff users: creation rules, authentication, roles and permissions, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select, update

from fenqi.clock import FixedClock
from fenqi.errors import FenqiError
from fenqi.privacy import staff as staff_module
from fenqi.privacy.errors import Forbidden, StaffError
from fenqi.privacy.passwords import verify_password
from fenqi.privacy.staff import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    StaffUser,
    authenticate,
    create_staff,
    list_staff,
    require,
    role_allows,
    set_disabled,
    set_password,
)
from fenqi.store.schema.privacy import staff_users

CLOCK = FixedClock(datetime(2026, 11, 26, 4, 0, tzinfo=UTC))
PASSWORD = "a-long-enough-secret"


def test_create_and_authenticate(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        alice = create_staff(conn, CLOCK, " Alice ", PASSWORD, "collector", "爱丽丝")
    assert alice.username == "alice" and alice.role is Role.COLLECTOR
    assert alice.created_at == CLOCK.now()
    with db_engine.begin() as conn:
        stored = conn.execute(select(staff_users.c.password_hash)).scalar_one()
        assert PASSWORD not in stored and stored.startswith("$argon2id$")
        user = authenticate(conn, "ALICE", PASSWORD)
        assert user == alice
        assert authenticate(conn, "alice", PASSWORD + "x") is None
        assert authenticate(conn, "nobody", PASSWORD) is None
        assert [u.username for u in list_staff(conn)] == ["alice"]


def test_unknown_user_still_costs_a_hash(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = verify_password

    def spy(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(staff_module, "verify_password", spy)
    with db_engine.begin() as conn:
        assert authenticate(conn, "ghost", PASSWORD) is None
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_old_hash_is_upgraded_on_login(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        create_staff(conn, CLOCK, "bob", PASSWORD, Role.FINANCE)
        weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
        conn.execute(update(staff_users).values(password_hash=weak))
    with db_engine.begin() as conn:
        assert authenticate(conn, "bob", PASSWORD) is not None
    with db_engine.connect() as conn:
        upgraded = conn.execute(select(staff_users.c.password_hash)).scalar_one()
    assert upgraded != weak and verify_password(upgraded, PASSWORD)
    assert "m=8192" not in upgraded


def test_disabled_user_cannot_log_in_or_act(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        create_staff(conn, CLOCK, "carol", PASSWORD, Role.SUPPORT)
        carol = set_disabled(conn, "carol", True)
        assert authenticate(conn, "carol", PASSWORD) is None
    assert carol.disabled
    with pytest.raises(Forbidden):
        require(carol, Permission.ACCOUNT_FREEZE)
    with db_engine.begin() as conn:
        set_disabled(conn, "carol", False)
        set_password(conn, "carol", "another-long-secret")
        assert authenticate(conn, "carol", "another-long-secret") is not None
        assert authenticate(conn, "carol", PASSWORD) is None


@pytest.mark.parametrize(
    ("username", "password", "role", "code"),
    [
        ("dave", "short", "support", "weak_password"),
        ("dave", "x" * 1025, "support", "weak_password"),
        ("dave-the-long", "dave-the-long", "support", "weak_password"),
        ("dave", PASSWORD, "superuser", "unknown_role"),
        ("d", PASSWORD, "support", "invalid_username"),
        ("dave smith", PASSWORD, "support", "invalid_username"),
    ],
)
def test_creation_rules(
    db_engine: Engine, username: str, password: str, role: str, code: str
) -> None:
    with db_engine.begin() as conn, pytest.raises(StaffError) as info:
        create_staff(conn, CLOCK, username, password, role)
    assert info.value.code == code
    if code == "weak_password":
        assert "password" in info.value.message and password not in info.value.message
    with db_engine.connect() as conn:
        assert list_staff(conn) == []


def test_username_taken(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        create_staff(conn, CLOCK, "erin", PASSWORD, Role.ADMIN)
        with pytest.raises(StaffError) as info:
            create_staff(conn, CLOCK, "ERIN", PASSWORD, Role.ADMIN)
        assert info.value.code == "username_taken" and info.value.http_status == 409
        # The caller's transaction is still usable after the refusal.
        assert len(list_staff(conn)) == 1


def _user(role: Role) -> StaffUser:
    return StaffUser(1, "u", role, "", False, CLOCK.now())


def test_require_and_forbidden() -> None:
    require(_user(Role.FINANCE), Permission.LEDGER_REVERSE)
    with pytest.raises(Forbidden) as info:
        require(_user(Role.SUPPORT), Permission.LEDGER_REVERSE)
    err = info.value
    assert isinstance(err, FenqiError)
    assert err.code == "forbidden" and err.http_status == 403
    assert "support" in err.message and "ledger.reverse" in err.message
    assert role_allows("collector", "customer.reveal_pii")
    assert not role_allows("support", "customer.reveal_pii")
    assert not role_allows("nobody", "customer.read_masked")
    assert not role_allows("admin", "no.such.permission")


def test_least_privilege_table() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    every_permission = set().union(*ROLE_PERMISSIONS.values())
    assert every_permission == set(Permission)  # no permission is unreachable
    # Segregation of duties: no role both changes the rules and moves money, and the admin
    # who manages staff cannot itself reveal personal data, change limits or reverse entries.
    for perms in ROLE_PERMISSIONS.values():
        assert not {Permission.RISK_FLOWS_EDIT, Permission.LEDGER_REVERSE} <= perms
        if Permission.STAFF_MANAGE in perms:
            assert not perms & {
                Permission.CUSTOMER_REVEAL_PII,
                Permission.ACCOUNT_CHANGE_LIMIT,
                Permission.LEDGER_REVERSE,
            }
    who_reveals = {r for r, p in ROLE_PERMISSIONS.items() if Permission.CUSTOMER_REVEAL_PII in p}
    assert who_reveals == {Role.COLLECTOR, Role.COMPLIANCE}
    assert all(Permission.CUSTOMER_READ_MASKED in p for p in ROLE_PERMISSIONS.values())
