"""Staff sign-in with throttling, lockout and an audit trail (API and console alike).

Failed sign-ins are counted in the database (`login_throttle`), so every worker process sees
the same counts: per account (`user:<name>`) and per client address (`addr:<ip>`). After
`login_failures_max` failures of an account within `login_window_minutes`, or
`login_address_failures_max` from one address, further attempts are refused for
`login_lock_minutes` without checking the password (429 `too_many_attempts`, Retry-After).
A success clears the account's count. Every failure and every refusal is written to the audit
log (`staff.login_failed`), with the username when it is a well-formed one, the address and
the reason; never the password. Password hashing itself is bounded per process
(`passwords.hashing_slot`), and a request that waited for a slot checks the lock again first,
so a burst of wrong passwords costs a handful of hashes, not one each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, case, delete, select, update

from fenqi.errors import FenqiError
from fenqi.privacy._rows import as_utc
from fenqi.privacy.audit import record
from fenqi.privacy.passwords import hashing_slot
from fenqi.privacy.staff import USERNAME_PATTERN, StaffUser, authenticate
from fenqi.store.schema.privacy import login_throttle, staff_users
from fenqi.store.upsert import insert_ignore

if TYPE_CHECKING:
    from fenqi.context import Context

ADDRESS_CHARS_MAX = 100


class LoginFailed(FenqiError):
    code = "unauthorized"
    http_status = 401


class LoginThrottled(FenqiError):
    code = "too_many_attempts"
    http_status = 429

    def __init__(self, retry_after_seconds: int) -> None:
        minutes = max(1, math.ceil(retry_after_seconds / 60))
        super().__init__(
            f"too many failed sign-ins; try again in {minutes} minute{'s' if minutes > 1 else ''}",
            retry_after_seconds=retry_after_seconds,
        )
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class Policy:
    account_max: int
    address_max: int
    window: timedelta
    lock: timedelta

    @classmethod
    def of(cls, ctx: Context) -> Policy:
        s = ctx.settings
        return cls(
            s.login_failures_max,
            s.login_address_failures_max,
            timedelta(minutes=s.login_window_minutes),
            timedelta(minutes=s.login_lock_minutes),
        )


def _subjects(username: str, address: str) -> tuple[str, str]:
    return f"user:{username.strip().lower()[:64]}", f"addr:{address[:ADDRESS_CHARS_MAX]}"


def locked_until(conn: Connection, now: datetime, subjects: tuple[str, ...]) -> datetime | None:
    t = login_throttle.c
    found = conn.execute(
        select(t.locked_until).where(t.subject.in_(subjects), t.locked_until > now)
    ).scalars()
    return max(found, default=None)


def record_failure(
    conn: Connection, now: datetime, subject: str, max_failures: int, policy: Policy
) -> None:
    """Count one failure (a new window if the last one is over); lock at `max_failures`."""
    t = login_throttle.c
    insert_ignore(
        conn,
        login_throttle,
        {"subject": subject, "failures": 0, "window_start": now, "locked_until": None},
        ["subject"],
    )
    stale = t.window_start < now - policy.window
    count = case((stale, 1), else_=t.failures + 1)
    conn.execute(
        update(login_throttle)
        .where(t.subject == subject)
        .values(
            failures=count,
            window_start=case((stale, now), else_=t.window_start),
            locked_until=case((count >= max_failures, now + policy.lock), else_=t.locked_until),
        )
    )


def _audit_failure(
    conn: Connection, ctx: Context, username: str, address: str, via: str, reason: str
) -> None:
    name = username.strip().lower()
    known = (
        conn.execute(select(staff_users.c.id).where(staff_users.c.username == name)).scalar()
        if USERNAME_PATTERN.fullmatch(name)
        else None
    )
    record(
        conn,
        ctx.clock,
        actor_kind="staff",
        actor_id=known if known is not None else "unknown",
        action="staff.login_failed",
        target_kind="staff_user",
        target_id=known,
        detail={
            # a well-formed name only: people type passwords into the username field
            "username": name if USERNAME_PATTERN.fullmatch(name) else None,
            "address": address[:ADDRESS_CHARS_MAX],
            "via": via,
            "reason": reason,
        },
    )


def _refuse_if_locked(ctx: Context, username: str, address: str, via: str) -> None:
    now = ctx.clock.now()
    with ctx.engine.begin() as conn:
        until = locked_until(conn, now, _subjects(username, address))
        if until is None:
            return
        _audit_failure(conn, ctx, username, address, via, "throttled")
    raise LoginThrottled(max(1, math.ceil((as_utc(until) - now).total_seconds())))


def sign_in(ctx: Context, username: str, password: str, address: str, via: str) -> StaffUser:
    """The staff user if the password is right and neither the account nor the address is
    locked; otherwise LoginThrottled (429) or LoginFailed (401), audited either way. The
    caller opens the session (in its own transaction)."""
    policy = Policy.of(ctx)
    _refuse_if_locked(ctx, username, address, via)
    user_subject, address_subject = _subjects(username, address)
    with hashing_slot():
        # while this request waited for a slot, others may have locked the account; a failure
        # is counted before the slot is released, so the next holder's check sees it
        _refuse_if_locked(ctx, username, address, via)
        with ctx.engine.begin() as conn:
            user = authenticate(conn, username, password)
        now = ctx.clock.now()
        with ctx.engine.begin() as conn:
            if user is not None:
                conn.execute(delete(login_throttle).where(login_throttle.c.subject == user_subject))
                return user
            record_failure(conn, now, user_subject, policy.account_max, policy)
            record_failure(conn, now, address_subject, policy.address_max, policy)
            _audit_failure(conn, ctx, username, address, via, "wrong_password")
    raise LoginFailed("wrong username or password")
