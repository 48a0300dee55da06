"""The FastAPI application: routers, problem+json errors, OpenAPI 3.1 at /openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from fenqi import __version__
from fenqi.api import openapi_security, problems, routes_merchant, routes_ops, routes_shopper
from fenqi.api.middleware import RequestGuard, install_request_id_logging
from fenqi.api.routes_shop_admin import router as shop_admin_router
from fenqi.api.schemas import Problem
from fenqi.api.versioning import ApiVersion
from fenqi.api.versioning import describe as describe_versions
from fenqi.context import Context, build_context
from fenqi.web import mount_console

DESCRIPTION = """fenqi's REST API. Shops authenticate with `Authorization: Bearer sk_...`
(`sk_live_...`; a test-mode key, `sk_test_...`, sees and makes test data only), shoppers
with a token their shop's session obtained (`st_...`), staff with a token from
`POST /v1/ops/sessions`. Every POST that changes something needs an `Idempotency-Key` header.
Amounts are integer fen. Errors are `application/problem+json` with a stable `code`."""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Sync routes run on a thread pool (40 threads by default): no more of them at once than
    # the process has database connections, so a burst queues for a thread instead of waiting
    # on the pool and failing after its timeout (docs/api.md, connection budget).
    import anyio.to_thread

    ctx = app.state.ctx
    settings = ctx.settings
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = settings.db_pool_size + settings.db_max_overflow
    # The underwriter (risk model, decision flow, tier check) is made before the first request,
    # never inside one: `fenqi serve` builds the starter model before its workers start, so
    # here it is only loaded; without a model (uvicorn run directly on a fresh install) the
    # start-up fails and says how to get one (docs/performance.md).
    await anyio.to_thread.run_sync(lambda: ctx.underwriter)
    yield


def create_app(ctx: Context | None = None) -> FastAPI:
    app = FastAPI(
        title="fenqi",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # /docs: Swagger UI from the package (fenqi.web.api_docs), not a CDN
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.ctx = ctx or build_context()
    app.state.ctx.test_mode  # noqa: B018 - the test book's engine, made once, before requests
    problems.install(app)
    app.add_middleware(ApiVersion)  # inside RequestGuard: its refusals get a request id
    app.add_middleware(
        RequestGuard,
        max_body_bytes=app.state.ctx.settings.max_request_bytes,
    )
    app.include_router(routes_merchant.router)
    app.include_router(routes_shopper.router)
    app.include_router(routes_ops.router)
    app.include_router(shop_admin_router)
    mount_console(app)
    from fenqi.api import routes_funding  # issue 16 funding operations: API, console page
    from fenqi.web import routes_funding as console_funding

    app.include_router(routes_funding.router)
    app.include_router(console_funding.router)
    from fenqi.api import routes_compliance  # issue 18: disputes, data-subject requests
    from fenqi.web import routes_compliance as console_compliance

    app.include_router(routes_compliance.me)
    app.include_router(routes_compliance.ops)
    app.include_router(console_compliance.router)
    from fenqi.web import routes_wallet_rights

    app.include_router(routes_wallet_rights.router)
    from fenqi.api import routes_bureau_monitoring  # issue 18: post-loan monitoring

    app.include_router(routes_bureau_monitoring.router)
    from fenqi.api import routes_complaints  # issue 18: the complaints register

    app.include_router(routes_complaints.router)

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
        openapi_security.describe(schema, app.routes)
        describe_versions(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and `fenqi serve --workers N`: one context per process."""
    from fenqi.privacy.masking import install_log_redaction

    install_log_redaction()
    install_request_id_logging()
    show_request_id_in_access_log()
    return create_app()


ACCESS_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'


def show_request_id_in_access_log() -> None:
    """uvicorn's access line with the request id at its end (the id each response carries in
    X-Request-Id), when uvicorn's own access format is in use."""
    import logging

    from uvicorn.logging import AccessFormatter

    for handler in logging.getLogger("uvicorn.access").handlers:
        formatter = handler.formatter
        if isinstance(formatter, AccessFormatter) and formatter._fmt == ACCESS_FORMAT:
            handler.setFormatter(
                AccessFormatter(
                    ACCESS_FORMAT + " [%(request_id)s]", use_colors=formatter.use_colors
                )
            )
