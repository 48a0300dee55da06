"""The API reference page (/docs): Swagger UI served from the package, not from a CDN, so it
works offline and behind a firewall, like the console's htmx and Plotly. The files are
Swagger UI's distribution (npm `swagger-ui-dist`), vendored under static/ with their license
(static/swagger-ui.LICENSE.txt). ReDoc is not offered (`redoc_url=None`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

STATIC = "/console/static"


def mount_api_docs(app: FastAPI) -> None:
    """Add GET /docs (the app must be made with `docs_url=None`)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} · API reference",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/swagger-favicon-32x32.png",
            # no validator badge: it would fetch from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )
