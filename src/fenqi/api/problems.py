"""Errors as application/problem+json (RFC 9457) with a stable machine `code`.

Every FenqiError maps here once; validation errors name the field; nothing else leaks a
stack trace to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fenqi.errors import FenqiError

PROBLEM = "application/problem+json"
log = logging.getLogger("fenqi.api")


class ApiError(FenqiError):
    """An error raised by the HTTP layer itself (auth, idempotency, pagination)."""


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    from fenqi.api.middleware import current_request_id

    body = {
        "type": f"https://fenqi.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
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


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, **extra), status_code=status, media_type=PROBLEM
    )


def error_response(exc: FenqiError) -> JSONResponse:
    safe = {k: v for k, v in exc.detail.items() if isinstance(v, str | int | float | bool)}
    return problem(exc.http_status, exc.code, exc.message, **safe)


def install(app: FastAPI) -> None:
    @app.exception_handler(FenqiError)
    async def _fenqi(_: Request, exc: FenqiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in raw):
            return problem(400, "malformed_json", "the body is not valid JSON")
        errors = [{"field": _field(e), "message": e["msg"]} for e in raw]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem(
            422,
            "validation_error",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        # two requests raced for the same unique thing; the loser changed nothing
        log.warning("integrity conflict: %s", exc.orig)
        return problem(
            409,
            "conflict",
            "this conflicts with a change made at the same time; read the current state and retry",
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "internal_error", "an internal error occurred; it has been logged")


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
