"""The web console (staff), the demo shop and the shopper wallet: server-rendered pages
(Jinja2 + htmx) mounted into the API's FastAPI app. Scripts are served from the package
(htmx vendored under static/, plotly.js from the installed plotly): no CDN, works offline.
The API reference (/docs, Swagger UI) is served from static/ too (`api_docs.py`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from fenqi.web.auth import CsrfFailed, LoginRequired, NotAllowed, current

STATIC_DIR = Path(__file__).parent / "static"
CACHE_SECONDS = 24 * 3600


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def mount_console(app: FastAPI) -> None:
    """Add /console, /shop and /wallet to `app` (whose state holds the Context)."""
    from fenqi.web import demo_webhooks, routes_console, routes_shop, routes_test_mode
    from fenqi.web.api_docs import mount_api_docs
    from fenqi.web.render import page

    if not any(getattr(r, "path", None) == "/docs" for r in app.router.routes):
        mount_api_docs(app)  # Swagger UI from static/ (the app is made with docs_url=None)

    @app.get("/console/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(
            _plotly_js(),
            media_type="application/javascript",
            headers={"Cache-Control": f"public, max-age={CACHE_SECONDS}"},
        )

    app.include_router(routes_console.router)
    app.include_router(routes_shop.router)
    app.include_router(routes_test_mode.router)
    app.include_router(demo_webhooks.router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if request.headers.get("HX-Request"):  # htmx: reload the whole page at the login form
            return Response(status_code=401, headers={"HX-Redirect": "/console/login"})
        return routes_console.login_redirect(exc.next_path)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAllowed)
        console = current(request)  # signed in, or NotAllowed would not have been raised
        return page(
            request,
            "forbidden.html",
            status_code=403,
            permission=exc.permission,
            console=console,
            nav=routes_console.nav_for(console),
            path=request.url.path,
        )

    async def csrf_failed(request: Request, exc: Exception) -> Response:
        return HTMLResponse(
            "<p class='error'>This form has expired; reload the page and try again.</p>",
            status_code=403,
        )

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(NotAllowed, not_allowed)
    app.add_exception_handler(CsrfFailed, csrf_failed)


__all__ = ["mount_console"]
