"""Errors as application/problem+json (RFC 9457) with a stable machine `code`.

Every FenqiError maps here once, through `fenqi.error_codes.ErrorCode`: the code's status and
title come from there (one mapping; no code is spelled here), and a request served at an API
version before `ONE_ERROR_VOCABULARY` gets the refusal as it was answered then (the
exception's `legacy_code` and own status). Validation errors name the field; nothing else
leaks a stack trace to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fenqi.error_codes import ErrorCode, known_code
from fenqi.errors import FenqiError

PROBLEM = "application/problem+json"
log = logging.getLogger("fenqi.api")


class ApiError(FenqiError):
    """An error raised by the HTTP layer itself (auth, idempotency, pagination)."""


def problem_body(
    code: ErrorCode | str, detail: str, *, status: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The problem document of `code` (its status unless `status` says otherwise: a legacy
    answer, or a code this enumeration does not hold)."""
    from fenqi.api.middleware import current_request_id

    known = known_code(code)
    if status is None:
        assert known is not None, f"no status for the unknown code {code!r}"
        status = known.http_status
    body = {
        "type": f"https://fenqi.dev/problems/{code}",
        "title": known.problem_title if known is not None else str(code).replace("_", " "),
        "status": status,
        "code": str(code),
        "detail": detail,
        **extra,
    }
    request_id = current_request_id()
    if request_id is not None:
        body.setdefault("request_id", request_id)
    return body


def _field(error: Any) -> str:
    """The field a validation error is about: its location without "body", and nothing for a
    body that is not JSON at all (pydantic puts a byte offset there)."""
    if error.get("type") == "json_invalid":
        return ""
    return ".".join(str(p) for p in error["loc"] if p != "body")


def problem(
    code: ErrorCode | str, detail: str, *, status: int | None = None, **extra: Any
) -> JSONResponse:
    body = problem_body(code, detail, status=status, **extra)
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM)


def answer_of(exc: FenqiError, version: str) -> tuple[str, int]:
    """The (code, status) a refusal is answered with at an API version: from
    ONE_ERROR_VOCABULARY on, its code and the status `ErrorCode` gives it; before, the code it
    had then (`legacy_code`) with the status it was raised with."""
    from fenqi.api.versioning import ONE_ERROR_VOCABULARY

    if version < ONE_ERROR_VOCABULARY:  # ISO dates: text order is date order
        return exc.legacy_code or exc.code, exc.http_status
    known = known_code(exc.code)
    return exc.code, known.http_status if known is not None else exc.http_status


def error_response(exc: FenqiError, version: str | None = None) -> JSONResponse:
    """A refusal as problem+json, at `version` (default: the version of the request being
    served)."""
    from fenqi.api.versioning import current_version

    code, status = answer_of(exc, version or current_version())
    # the status answered is the refusal's from here on: the idempotency store keeps it beside
    # the body, so a replay answers both as they were (api/deps.py reads `exc.http_status`)
    exc.http_status = status
    safe = {k: v for k, v in exc.detail.items() if isinstance(v, str | int | float | bool)}
    return problem(code, exc.message, status=status, **safe)


# Starlette's own HTTP errors (no route, wrong method, …): the code each status is answered with
HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    401: ErrorCode.UNAUTHORIZED,
}


def install(app: FastAPI) -> None:
    @app.exception_handler(FenqiError)
    async def _fenqi(request: Request, exc: FenqiError) -> JSONResponse:
        from fenqi.api.versioning import version_of

        return error_response(exc, version_of(request.scope))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in raw):
            return problem(ErrorCode.MALFORMED_JSON, "the body is not valid JSON")
        errors = [{"field": _field(e), "message": e["msg"]} for e in raw]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem(
            ErrorCode.VALIDATION_ERROR,
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, ErrorCode.HTTP_ERROR)
        return problem(code, str(exc.detail), status=exc.status_code)

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        # two requests raced for the same unique thing; the loser changed nothing
        log.warning("integrity conflict: %s", exc.orig)
        return problem(
            ErrorCode.CONFLICT,
            "this conflicts with a change made at the same time; read the current state and retry",
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(ErrorCode.INTERNAL_ERROR, "an internal error occurred; it has been logged")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status, text in (
        (400, "Bad request"),
        (401, "Not authenticated"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
        (422, "Invalid input"),
    )
}
