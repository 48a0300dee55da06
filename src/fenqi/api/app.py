"""The FastAPI application: routers, problem+json errors, OpenAPI 3.1 at /openapi.json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fenqi import __version__
from fenqi.api import problems, routes_merchant, routes_ops, routes_shopper
from fenqi.api.schemas import Problem
from fenqi.context import Context, build_context
from fenqi.web import mount_console

DESCRIPTION = """fenqi's REST API. Shops authenticate with `Authorization: Bearer sk_...`,
shoppers with a token their shop's session obtained (`st_...`), staff with a token from
`POST /v1/ops/sessions`. Every POST that changes something needs an `Idempotency-Key` header.
Amounts are integer fen. Errors are `application/problem+json` with a stable `code`."""


def create_app(ctx: Context | None = None) -> FastAPI:
    app = FastAPI(
        title="fenqi",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # /docs: Swagger UI from the package (fenqi.web.api_docs), not a CDN
        redoc_url=None,
    )
    app.state.ctx = ctx or build_context()
    problems.install(app)
    app.include_router(routes_merchant.router)
    app.include_router(routes_shopper.router)
    app.include_router(routes_ops.router)
    mount_console(app)

    @app.get("/healthz", tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness, and the business date the server works on."""
        return {"ok": True, "business_date": app.state.ctx.clock.today().isoformat()}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
            Problem.model_json_schema()
        )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and `fenqi serve --workers N`: one context per process."""
    from fenqi.privacy.masking import install_log_redaction

    install_log_redaction()
    return create_app()
