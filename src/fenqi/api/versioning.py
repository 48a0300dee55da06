"""API versions: `/v1` in the URL for the major version, a `Fenqi-Version` date header for the
behaviour within it (a pure ASGI middleware; docs/api.md, "Versioning").

- The URL's `/v1` changes only for a rewrite of the whole API; it has not.
- Within `/v1`, a change that could break a working integration (a field removed or renamed, a
  type or meaning changed, a new required field, a new refusal of what was accepted) ships
  as a new dated version, and only requests that ask for it (`Fenqi-Version: <date>`) get it.
  Additions (a new endpoint, an optional field, a response field, an event type, an error
  code for a case that was a 500) are not breaking and reach every version.
- A request without the header is served at `DEFAULT_VERSION`, the earliest supported
  version, so an integration that never sends the header never changes behaviour under it
  silently; the default moves only when that version is retired, after it was announced
  deprecated.
- Every `/v1` response says the version it was served at in `Fenqi-Version`. A deprecated
  version's responses also carry `Deprecation: @<unix time>` (RFC 9745), `Sunset: <HTTP date>`
  (RFC 8594) and a `Link` to the changelog. An unknown or retired version is a 400
  `unsupported_version` naming the header, before the route runs (nothing is changed).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import format_datetime

from fenqi.api.middleware import App, Message, Receive, Scope, Send, _answer, _header
from fenqi.error_codes import ErrorCode

VERSION_HEADER = "Fenqi-Version"
VERSION_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PREFIX = "/v1/"
CHANGELOG = "https://github.com/fenqi/fenqi/blob/main/docs/api.md#versioning"


@dataclass(frozen=True)
class Version:
    name: str  # the release date, YYYY-MM-DD
    changes: str  # what it changed against the version before it
    deprecated_on: date | None = None  # announced deprecated (Deprecation header from then)
    sunset_on: date | None = None  # refused from this date (Sunset header until then)


# Oldest first. Add a version here with the code that branches on it (`version_of(request)`).
VERSIONS: dict[str, Version] = {
    "2026-12-01": Version(
        "2026-12-01", "the first dated version: the API as it was when versioning began"
    ),
    "2026-12-03": Version(
        "2026-12-03",
        "one error vocabulary (issue 22): one `code` per meaning, each answered with the status "
        "fenqi/error_codes.py gives it (docs/api.md, Error codes)",
    ),
}
# From this version on, a refusal is answered in the one vocabulary of `fenqi.error_codes`
# (merged spellings, the code's own status); before it, as it was (`FenqiError.legacy_code`).
ONE_ERROR_VOCABULARY = "2026-12-03"
CURRENT_VERSION: ContextVar[str | None] = ContextVar("fenqi_api_version", default=None)
DEFAULT_VERSION = "2026-12-01"


def version_of(scope: Scope) -> str:
    """The version a request is served at (set by ApiVersion; the default outside /v1)."""
    return str(scope.get("fenqi.version", DEFAULT_VERSION))


def current_version() -> str:
    """The version of the request being served (in its context, threads included); the default
    outside a /v1 request."""
    return CURRENT_VERSION.get() or DEFAULT_VERSION


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


class ApiVersion:
    """Validates `Fenqi-Version` on /v1 requests and echoes the version served."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        asked = _header(scope, VERSION_HEADER.lower().encode())
        name = DEFAULT_VERSION if asked is None else asked.strip()
        version = VERSIONS.get(name)
        if version is None or _retired(version):
            known = ", ".join(v.name for v in VERSIONS.values() if not _retired(v))
            why = "is retired" if version is not None else "is not a version of this API"
            shown = name[:40] if VERSION_PATTERN.match(name) else repr(name[:40])
            await _answer(
                send,
                ErrorCode.UNSUPPORTED_VERSION,
                f"{VERSION_HEADER}: {shown} {why}; supported: {known} (or send no header "
                f"for {DEFAULT_VERSION})",
                field=VERSION_HEADER,
            )
            return
        scope["fenqi.version"] = version.name
        extra = [(VERSION_HEADER.lower().encode(), version.name.encode())]
        if version.deprecated_on is not None:
            at = int(_midnight(version.deprecated_on).timestamp())
            extra.append((b"deprecation", f"@{at}".encode()))
            extra.append((b"link", f'<{CHANGELOG}>; rel="deprecation"'.encode()))
            if version.sunset_on is not None:
                sunset = format_datetime(_midnight(version.sunset_on), usegmt=True)
                extra.append((b"sunset", sunset.encode()))

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        token = CURRENT_VERSION.set(version.name)
        try:
            await self.app(scope, receive, send_with_version)
        finally:
            CURRENT_VERSION.reset(token)


def _retired(version: Version) -> bool:
    """Retired: its sunset has come. The wall clock is not consulted: a version is retired by
    the release that removes it, recorded as `sunset_on` in the past of that release's
    `RETIRED` set."""
    return version.name in RETIRED


RETIRED: frozenset[str] = frozenset()  # versions removed by a release: refused with 400


def describe(schema: dict[str, object]) -> None:
    """Declare the optional `Fenqi-Version` header on every /v1 operation of the OpenAPI
    document, with the supported versions and the default."""
    supported = [v.name for v in VERSIONS.values() if not _retired(v)]
    parameter = {
        "name": VERSION_HEADER,
        "in": "header",
        "required": False,
        "description": "The API version (a date) to serve this request at; without it, the "
        "default (the earliest supported). Echoed in the response's Fenqi-Version header.",
        "schema": {"type": "string", "enum": supported, "default": DEFAULT_VERSION},
    }
    paths = schema.get("paths", {})
    assert isinstance(paths, dict)
    for path, operations in paths.items():
        if not str(path).startswith(PREFIX):
            continue
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.setdefault("parameters", []).append(dict(parameter))
