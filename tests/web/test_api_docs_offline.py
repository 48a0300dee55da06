"""/docs works offline (issue 24 item 6): Swagger UI's files come from the package, the page
names no other host, and every file it names loads from the server itself."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from support.api_server import running_api


def test_swagger_ui_is_served_from_the_package(models_dir: Path, tmp_path: Path) -> None:
    with running_api(f"sqlite:///{tmp_path / 'f.sqlite'}", models_dir, tmp_path) as api:
        client = httpx.Client(base_url=api.base)
        page = client.get("/docs")
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text  # no CDN, no badge
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
        for asset in assets:
            assert asset.startswith("/console/static/"), asset
            loaded = client.get(asset)
            assert loaded.status_code == 200 and len(loaded.content) > 500, asset
        assert "SwaggerUIBundle" in client.get("/console/static/swagger-ui-bundle.js").text
        assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/redoc").status_code == 404  # ReDoc (a CDN script) is not offered
        assert "Apache License" in client.get("/console/static/swagger-ui.LICENSE.txt").text
