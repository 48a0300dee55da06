"""Console sign-in: a staff session in an HttpOnly cookie, role checks, and CSRF tokens.

The cookie holds a session token made like the API's (`open_session`, stored hashed in
`sessions`), so signing out or expiry works the same way for both. A POST form carries a CSRF
token derived from the session token (HMAC), which a page on another site cannot read; before
sign-in (the login form, the demo shop and wallet) a random token is set as a cookie and must
come back in the form as well (double submit). SameSite=Lax on every cookie is a second fence.
Every cookie is Secure unless the setting `cookie_secure` is off (plain-http development, the
demo on http://localhost).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import delete, select

from fenqi.context import Context
from fenqi.privacy.staff import Permission, StaffUser, get_staff
from fenqi.privacy.tokens import hash_token
from fenqi.store.schema.parties import sessions

SESSION_COOKIE = "fenqi_console"
CSRF_COOKIE = "fenqi_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_HOURS = 8


class LoginRequired(Exception):
    """No valid staff session: the console answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class NotAllowed(Exception):
    """The staff user's role lacks a permission the page needs (403)."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


class CsrfFailed(Exception):
    """A POST without the right CSRF token (403)."""


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


@dataclass(frozen=True)
class Console:
    """Who is signed in, and the CSRF token of their session."""

    user: StaffUser
    token: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    def can(self, permission: Permission | str) -> bool:
        return self.user.can(Permission(permission))

    def can_any(self, permissions: Iterable[Permission]) -> bool:
        return any(self.user.can(p) for p in permissions)


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"console-csrf", hashlib.sha256).hexdigest()


def current(request: Request) -> Console:
    """The signed-in staff user, or LoginRequired."""
    token = request.cookies.get(SESSION_COOKIE)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token or len(token) > 200:
        raise LoginRequired(path)
    ctx = ctx_of(request)
    with ctx.engine.connect() as conn:
        row = conn.execute(
            select(sessions.c.subject_id).where(
                sessions.c.token_hash == hash_token(token),
                sessions.c.subject_kind == "staff",
                sessions.c.expires_at > ctx.clock.now(),
            )
        ).first()
        user = get_staff(conn, int(row[0])) if row is not None else None
    if user is None or user.disabled:
        raise LoginRequired(path)
    return Console(user, token)


def end_session(ctx: Context, token: str) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.token_hash == hash_token(token)))


def needs(*permissions: Permission) -> Callable[..., Console]:
    """A dependency: the signed-in user if their role grants any of `permissions` (or, when
    none are named, any signed-in user)."""

    def check(console: Console = Depends(current)) -> Console:
        if permissions and not console.can_any(permissions):
            raise NotAllowed(" or ".join(p.value for p in permissions))
        return console

    return check


async def check_csrf(request: Request, expected: str) -> None:
    """The request's CSRF token (form field or htmx header) must equal `expected`."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise CsrfFailed()


def posted(*permissions: Permission) -> Callable[..., Any]:
    """A dependency for console POSTs: the permission check, then the session's CSRF token."""
    base = needs(*permissions)

    async def check(request: Request, console: Console = Depends(base)) -> Console:
        await check_csrf(request, console.csrf)
        return console

    return check


def anonymous_csrf(request: Request) -> str:
    """The double-submit token of a visitor without a staff session (set it if absent)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(24)
    request.state.csrf_new = token
    return token


def set_anonymous_csrf(request: Request, response: Response) -> None:
    token = getattr(request.state, "csrf_new", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_https(request), path="/"
        )


async def check_anonymous_csrf(request: Request) -> None:
    await check_csrf(request, request.cookies.get(CSRF_COOKIE, ""))


def _https(request: Request) -> bool:
    """Whether cookies get the Secure attribute: always over https, and by default everywhere
    (setting `cookie_secure`; off only for plain-http development and the demo), since behind
    a TLS-terminating proxy the request reaching fenqi is plain http."""
    return request.url.scheme == "https" or bool(ctx_of(request).settings.cookie_secure)


def cookie_secure(request: Request) -> bool:
    return _https(request)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=_https(request),
        path="/console",
    )
