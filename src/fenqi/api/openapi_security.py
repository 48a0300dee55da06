"""The OpenAPI document says how each operation authenticates and which headers it requires.

The routes read `Authorization` and `Idempotency-Key` through dependencies (`fenqi.api.deps`);
this walks each route's dependencies and writes what they demand into the document: a security
scheme per kind of caller (so Swagger UI has an Authorize button), and `Idempotency-Key` marked
required where the route refuses a request without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import fastapi.routing
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from fenqi.api import deps

SCHEMES: dict[str, dict[str, Any]] = {
    "shopApiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sk_...",
        "description": "A shop's API key (`Authorization: Bearer sk_...`), shown once at "
        "onboarding: live keys `sk_live_...`, test-mode keys `sk_test_...` (test data only, "
        "in a book of its own: docs/api.md, Test mode).",
    },
    "shopperToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "st_...",
        "description": "A shopper session token that the shop obtained from "
        "`POST /v1/shopper-sessions`.",
    },
    "staffToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A staff session token from `POST /v1/ops/sessions`.",
    },
}
_BY_DEPENDENCY = {
    deps.merchant: "shopApiKey",
    deps.shopper: "shopperToken",
    deps.staff: "staffToken",
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[Any]:
    """Every API route in the document, included routers' routes too (FastAPI ≥ 0.16x keeps
    an included router as one entry and resolves its routes through `iter_route_contexts`)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in contexts(list(routes)) if contexts is not None else routes:
        dependant = getattr(route, "dependant", None)
        if isinstance(dependant, Dependant) and getattr(route, "include_in_schema", False):
            yield route


def describe(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    schema.setdefault("components", {})["securitySchemes"] = SCHEMES
    for route in _api_routes(routes):
        calls = set(_calls(route.dependant))
        schemes = [name for call, name in _BY_DEPENDENCY.items() if call in calls]
        key_required = deps.idempotency_key in calls
        for method in route.methods or ():
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            if schemes:
                operation["security"] = [{name: []} for name in schemes]
            parameters = []
            for parameter in operation.get("parameters", []):
                name = str(parameter.get("name", "")).lower()
                if parameter.get("in") == "header" and name == "authorization" and schemes:
                    continue  # the security scheme sends it (Swagger ignores such a parameter)
                if parameter.get("in") == "header" and name == "idempotency-key" and key_required:
                    parameter["required"] = True
                    parameter["description"] = (
                        "Required. 1-128 characters without control characters; a retry "
                        "with the same key and body gets the first answer."
                    )
                    parameter.get("schema", {}).pop("anyOf", None)
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 128}
                parameters.append(parameter)
            operation["parameters"] = parameters
            if not parameters:
                operation.pop("parameters")
