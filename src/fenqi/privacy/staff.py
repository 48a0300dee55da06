"""Staff users, roles and permissions: who in operations may do what.

Least privilege with segregation of duties: each role gets the permissions its daily work
needs and no more, and no single role can both change the rules and move money. Why each role
holds each permission is written beside it; docs/privacy.md has the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from fenqi.clock import Clock
from fenqi.privacy._rows import as_utc, to_utc
from fenqi.privacy.errors import Forbidden, StaffError, StaffNotFound
from fenqi.privacy.passwords import (
    PASSWORD_CHARS_MAX,
    hash_password,
    needs_rehash,
    verify_password,
)
from fenqi.store.schema.privacy import staff_users

PASSWORD_CHARS_MIN = 12  # NIST SP 800-63B allows 8; staff reach everyone's data, so 12
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
DISPLAY_NAME_CHARS_MAX = 128
STAFF_LIST_MAX = 1000


class Role(StrEnum):
    ADMIN = "admin"
    RISK_ANALYST = "risk_analyst"
    COLLECTOR = "collector"
    FINANCE = "finance"
    COMPLIANCE = "compliance"
    SUPPORT = "support"


class Permission(StrEnum):
    CUSTOMER_READ_MASKED = "customer.read_masked"
    CUSTOMER_REVEAL_PII = "customer.reveal_pii"
    ACCOUNT_FREEZE = "account.freeze"  # freeze and unfreeze
    ACCOUNT_CHANGE_LIMIT = "account.change_limit"
    LEDGER_REVERSE = "ledger.reverse"
    HARDSHIP_APPROVE = "hardship.approve"
    RISK_MODELS_READ = "risk.models.read"
    RISK_FLOWS_EDIT = "risk.flows.edit"
    WEBHOOKS_REPLAY = "webhooks.replay"
    AUDIT_READ = "audit.read"
    STAFF_MANAGE = "staff.manage"
    BATCH_RUN = "batch.run"
    REPORTS_READ = "reports.read"
    COMPLIANCE_CASES = "compliance.cases"  # credit-report disputes, data-subject requests


P = Permission
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        # Runs the platform, not the money: manages staff accounts, re-runs batch steps and
        # webhook deliveries, reads the audit log to answer for it. Cannot reveal personal
        # data, change limits or reverse entries: an admin who could also grant itself those
        # powers and use them would leave no second pair of eyes.
        Role.ADMIN: frozenset(
            {
                P.STAFF_MANAGE,
                P.AUDIT_READ,
                P.BATCH_RUN,
                P.WEBHOOKS_REPLAY,
                P.REPORTS_READ,
                P.CUSTOMER_READ_MASKED,
            }
        ),
        # Owns credit decisions: models, decision flows, limit changes, and freezing an account
        # on a fraud signal. Works on masked data: scores never need a name or ID number.
        Role.RISK_ANALYST: frozenset(
            {
                P.CUSTOMER_READ_MASKED,
                P.RISK_MODELS_READ,
                P.RISK_FLOWS_EDIT,
                P.ACCOUNT_CHANGE_LIMIT,
                P.ACCOUNT_FREEZE,
                P.REPORTS_READ,
            }
        ),
        # Calls shoppers in arrears, so must see the phone number (each reveal is audited),
        # and agrees hardship plans within the product's rules. Cannot touch limits or money.
        Role.COLLECTOR: frozenset(
            {P.CUSTOMER_READ_MASKED, P.CUSTOMER_REVEAL_PII, P.HARDSHIP_APPROVE}
        ),
        # Keeps the books: reverses wrong entries (with a reason), runs end of day, reads
        # reports. Cannot change the rules (flows, limits) that decide what gets booked.
        Role.FINANCE: frozenset(
            {P.CUSTOMER_READ_MASKED, P.LEDGER_REVERSE, P.BATCH_RUN, P.REPORTS_READ}
        ),
        # Answers regulators and data-subject requests (needs the full identity), reviews the
        # audit log and model governance, and may freeze an account on a legal hold.
        Role.COMPLIANCE: frozenset(
            {
                P.CUSTOMER_READ_MASKED,
                P.CUSTOMER_REVEAL_PII,
                P.AUDIT_READ,
                P.RISK_MODELS_READ,
                P.ACCOUNT_FREEZE,
                P.REPORTS_READ,
                P.COMPLIANCE_CASES,
            }
        ),
        # Front line for shoppers and shops: finds a shopper (masked), freezes an account the
        # shopper reports as stolen, replays a shop's missed webhook. Nothing more.
        Role.SUPPORT: frozenset({P.CUSTOMER_READ_MASKED, P.ACCOUNT_FREEZE, P.WEBHOOKS_REPLAY}),
    }
)
del P


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: Role
    display_name: str
    disabled: bool
    created_at: datetime

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]

    def can(self, permission: Permission) -> bool:
        return not self.disabled and permission in ROLE_PERMISSIONS[self.role]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role.value,
            "display_name": self.display_name,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


def role_allows(role: Role | str, permission: Permission | str) -> bool:
    """Whether a role (by enum or stored name) grants a permission; unknown names grant nothing."""
    try:
        return Permission(permission) in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def require(staff: StaffUser, permission: Permission) -> None:
    """Refuse (403 forbidden) unless the staff user's role grants the permission."""
    if staff.disabled:
        raise Forbidden(f"staff user {staff.username!r} is disabled", permission=permission.value)
    if permission not in ROLE_PERMISSIONS[staff.role]:
        raise Forbidden(
            f"role {staff.role.value!r} does not grant {permission.value!r}",
            permission=permission.value,
            role=staff.role.value,
        )


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise StaffError(
            f"role: no such role {value!r}; known: {known}", code="unknown_role", field="role"
        ) from None


def check_password(password: str, username: str = "") -> None:
    """Password rules: 12 to 1024 characters, not the username."""
    if len(password) < PASSWORD_CHARS_MIN:
        raise StaffError(
            f"password: at least {PASSWORD_CHARS_MIN} characters, got {len(password)}",
            code="weak_password",
            field="password",
        )
    if len(password) > PASSWORD_CHARS_MAX:
        raise StaffError(
            f"password: at most {PASSWORD_CHARS_MAX} characters",
            code="weak_password",
            field="password",
        )
    if username and password.strip().lower() == username.lower():
        raise StaffError(
            "password: must not be the username", code="weak_password", field="password"
        )


def normalize_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_PATTERN.fullmatch(name):
        raise StaffError(
            "username: 3-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            code="invalid_username",
            field="username",
        )
    return name


def _from_row(row: Any) -> StaffUser:
    return StaffUser(
        id=int(row.id),
        username=row.username,
        role=Role(row.role),
        display_name=row.display_name,
        disabled=bool(row.disabled),
        created_at=as_utc(row.created_at),
    )


_COLUMNS = (
    staff_users.c.id,
    staff_users.c.username,
    staff_users.c.role,
    staff_users.c.display_name,
    staff_users.c.disabled,
    staff_users.c.created_at,
)


def create_staff(
    conn: Connection,
    clock: Clock,
    username: str,
    password: str,
    role: Role | str,
    display_name: str = "",
) -> StaffUser:
    """Add a staff user; refuses a taken username (409), a weak password, an unknown role."""
    name = normalize_username(username)
    staff_role = role if isinstance(role, Role) else parse_role(role)
    check_password(password, name)
    display = display_name.strip()
    if len(display) > DISPLAY_NAME_CHARS_MAX:
        raise StaffError(
            f"display_name: at most {DISPLAY_NAME_CHARS_MAX} characters",
            code="invalid_display_name",
            field="display_name",
        )
    taken = StaffError(f"username: {name!r} is taken", code="username_taken", field="username")
    taken.http_status = 409
    if conn.execute(select(staff_users.c.id).where(staff_users.c.username == name)).first():
        raise taken
    created_at = to_utc(clock.now())
    try:
        # A savepoint, so a concurrent insert of the same name leaves the caller's transaction
        # usable (PostgreSQL aborts the whole transaction on an error otherwise).
        with conn.begin_nested():
            new_id = conn.execute(
                staff_users.insert()
                .values(
                    username=name,
                    password_hash=hash_password(password),
                    role=staff_role.value,
                    display_name=display,
                    disabled=False,
                    created_at=created_at,
                )
                .returning(staff_users.c.id)
            ).scalar_one()
    except IntegrityError:
        raise taken from None
    return StaffUser(int(new_id), name, staff_role, display, False, created_at)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("fenqi-no-such-user-padding")


def authenticate(conn: Connection, username: str, password: str) -> StaffUser | None:
    """The staff user if the password matches and the account is enabled, else None.

    The same argon2 work is done whether or not the user exists, so response time does not
    tell an attacker which usernames are real. A hash made with older parameters is upgraded.
    """
    name = username.strip().lower()
    row = conn.execute(
        select(*_COLUMNS, staff_users.c.password_hash).where(staff_users.c.username == name)
    ).first()
    if row is None:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(row.password_hash, password):
        return None
    if row.disabled:
        return None
    if needs_rehash(row.password_hash):
        conn.execute(
            update(staff_users)
            .where(staff_users.c.id == row.id)
            .values(password_hash=hash_password(password))
        )
    return _from_row(row)


def get_staff(conn: Connection, staff_id: int) -> StaffUser | None:
    row = conn.execute(select(*_COLUMNS).where(staff_users.c.id == staff_id)).first()
    return None if row is None else _from_row(row)


def get_staff_by_username(conn: Connection, username: str) -> StaffUser | None:
    name = username.strip().lower()
    row = conn.execute(select(*_COLUMNS).where(staff_users.c.username == name)).first()
    return None if row is None else _from_row(row)


def list_staff(conn: Connection, *, limit: int = 100, after_id: int = 0) -> list[StaffUser]:
    """Staff users in id order after `after_id` (cursor pagination), at most `limit`."""
    if not 1 <= limit <= STAFF_LIST_MAX:
        raise ValueError(f"limit must be 1..{STAFF_LIST_MAX}")
    rows = conn.execute(
        select(*_COLUMNS).where(staff_users.c.id > after_id).order_by(staff_users.c.id).limit(limit)
    ).all()
    return [_from_row(r) for r in rows]


def set_disabled(conn: Connection, username: str, disabled: bool) -> StaffUser:
    """Disable (or re-enable) a staff user; a disabled user cannot log in or act."""
    name = username.strip().lower()
    result = conn.execute(
        update(staff_users).where(staff_users.c.username == name).values(disabled=disabled)
    )
    if result.rowcount == 0:
        raise StaffNotFound(f"username: no staff user {name!r}", field="username")
    user = get_staff_by_username(conn, name)
    assert user is not None
    return user


def set_password(conn: Connection, username: str, password: str) -> None:
    name = username.strip().lower()
    check_password(password, name)
    result = conn.execute(
        update(staff_users)
        .where(staff_users.c.username == name)
        .values(password_hash=hash_password(password))
    )
    if result.rowcount == 0:
        raise StaffNotFound(f"username: no staff user {name!r}", field="username")
