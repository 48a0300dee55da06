"""What every request passes through before a route sees it (a pure ASGI middleware).

- A request id: a valid incoming `X-Request-Id` is kept, otherwise one is made; it is on every
  response, in every problem+json body and in the log lines of the request.
- A size limit (`FENQI_MAX_REQUEST_BYTES`): a larger body is refused with 413 before it is read
  whole.
- Strict input, refused up front so that nothing is written first: control characters in the
  path, the query or a header (400); a JSON body that is malformed, has a duplicate key, or
  holds a string no database can store (NUL, a lone surrogate) (400); the same for a form.
- An unhandled error becomes a problem+json 500 and the connection stays usable (Starlette's
  outermost error middleware re-raises after answering, and the server then drops the
  keep-alive connection, so the client's next request on it is reset).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from fenqi.api.text import control_character
from fenqi.error_codes import ErrorCode
from fenqi.privacy.masking import close_personal_scope, open_personal_scope

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM = "application/problem+json"
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
JSON_DEPTH_MAX = 32  # nesting deeper than any request body of this API
log = logging.getLogger("fenqi.api")

REQUEST_ID: ContextVar[str | None] = ContextVar("fenqi_request_id", default=None)


def current_request_id() -> str | None:
    return REQUEST_ID.get()


class Refused(Exception):
    """A request refused before any route runs; its status is the code's (ErrorCode)."""

    def __init__(self, code: ErrorCode, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


def problem_bytes(code: ErrorCode, detail: str, **extra: Any) -> bytes:
    from fenqi.api.problems import problem_body

    return json.dumps(problem_body(code, detail, **extra), ensure_ascii=False).encode()


class RequestGuard:
    def __init__(self, app: App, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        id_token = REQUEST_ID.set(request_id)
        personal_token = open_personal_scope()
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            try:
                _check_target(scope)
                body = await self._read_body(scope, receive)
                _check_body(scope, body)
            except Refused as refused:
                extra = {"field": refused.field} if refused.field is not None else {}
                await _answer(send_with_id, refused.code, refused.detail, **extra)
                return
            await self.app(scope, _replay(body, receive), send_with_id)
        except Exception:
            log.exception("unhandled error (request %s)", request_id)
            if started:
                raise  # the answer is half sent: only dropping the connection can say so
            await _answer(
                send_with_id,
                ErrorCode.INTERNAL_ERROR,
                f"an internal error occurred; it has been logged under request id {request_id}",
            )
        finally:
            close_personal_scope(personal_token)
            REQUEST_ID.reset(id_token)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body (at most the limit), or None when the request carries none."""
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Refused(ErrorCode.BAD_REQUEST, "Content-Length is not a number")
            if int(declared) > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and not declared:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _too_large(limit: int) -> Refused:
    return Refused(
        ErrorCode.REQUEST_TOO_LARGE, f"the request body is larger than the limit of {limit} bytes"
    )


def _replay(body: bytes | None, receive: Receive) -> Receive:
    if body is None:
        return receive
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: wait for the disconnect as the server says
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


async def _answer(send: Send, code: ErrorCode, detail: str, **extra: Any) -> None:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        extra.setdefault("request_id", request_id)
    body = problem_bytes(code, detail, **extra)
    await send(
        {
            "type": "http.response.start",
            "status": code.http_status,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    value = _header(scope, b"x-request-id")
    return value if value is not None and REQUEST_ID_PATTERN.match(value) else None


def _check_target(scope: Scope) -> None:
    """Path, query and headers: no control characters, whatever route would parse them."""
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        try:
            unquote_to_bytes(bytes(raw_path)).decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(
                ErrorCode.VALIDATION_ERROR, "the path is not UTF-8", field="path"
            ) from None
    path = scope.get("path", "")
    found = control_character(path)
    if found is not None:
        raise Refused(ErrorCode.VALIDATION_ERROR, f"the path contains {found}", field="path")
    raw_query = bytes(scope.get("query_string", b""))
    try:
        query = raw_query.decode("utf-8")
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Refused(
            ErrorCode.VALIDATION_ERROR, "the query string is not UTF-8", field="query"
        ) from None
    for name, value in pairs:
        found = control_character(name) or control_character(value)
        if found is not None:
            raise Refused(
                ErrorCode.VALIDATION_ERROR,
                f"query parameter {name!r}: contains {found}",
                field=name if control_character(name) is None else "query",
            )
    for key, value in scope.get("headers", []):
        text = bytes(value).decode("latin-1")
        found = control_character(text, allow="\t")
        if found is not None:
            name = bytes(key).decode("latin-1")
            raise Refused(
                ErrorCode.VALIDATION_ERROR, f"header {name}: contains {found}", field=name
            )


def _check_body(scope: Scope, body: bytes | None) -> None:
    if not body:
        return
    media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    # FastAPI reads a body without a Content-Type as JSON too, so it is checked as JSON
    if not media or media == "application/json" or media.endswith("+json"):
        _check_json(body)
    elif media == "application/x-www-form-urlencoded":
        _check_form(body)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise Refused(
                ErrorCode.DUPLICATE_KEY,
                f"the JSON body names {key!r} more than once; send each field once",
                field=key,
            )
        seen[key] = value
    return seen


def _check_json(body: bytes) -> None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(ErrorCode.MALFORMED_JSON, "the body is not UTF-8 text") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise Refused(
            ErrorCode.MALFORMED_JSON,
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
        ) from None
    except RecursionError:
        raise Refused(ErrorCode.MALFORMED_JSON, "the JSON body is nested too deeply") from None
    _check_json_strings(parsed, "", 0)


def _check_json_strings(value: Any, where: str, depth: int) -> None:
    """NUL and lone surrogates cannot be stored (PostgreSQL refuses both in text): refuse them
    in any string or key of the body, naming where. Other control characters are refused by the
    field types (`fenqi.api.text`), which know whether a field may hold a line break."""
    if depth > JSON_DEPTH_MAX:
        raise Refused(ErrorCode.MALFORMED_JSON, "the JSON body is nested too deeply")
    if isinstance(value, str):
        found = control_character(value, allow=_BODY_ALLOWED)
        if found is not None:
            raise Refused(
                ErrorCode.VALIDATION_ERROR, f"{where or 'body'}: contains {found}", field=where
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_strings(key, where, depth + 1)
            _check_json_strings(item, f"{where}.{key}" if where else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_strings(item, f"{where}.{index}" if where else str(index), depth + 1)


# Anything but NUL and lone surrogates passes this net; the field types are stricter.
_BODY_ALLOWED = "".join(
    chr(c)
    for c in [
        *range(1, 0x20),
        *range(0x7F, 0xA0),
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)


def _check_form(body: bytes) -> None:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Refused(ErrorCode.VALIDATION_ERROR, "the form is not UTF-8") from None
    for name, value in pairs:
        found = control_character(name) or control_character(value, allow="\r\n\t")
        if found is not None:
            raise Refused(
                ErrorCode.VALIDATION_ERROR, f"form field {name!r}: contains {found}", field=name
            )


def install_request_id_logging() -> None:
    """Every log record gets `request_id` (the request it was made for, or "-")."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_fenqi_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = REQUEST_ID.get() or "-"
        return record

    factory._fenqi_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


__all__ = [
    "RequestGuard",
    "current_request_id",
    "install_request_id_logging",
]
