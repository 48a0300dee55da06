"""schemathesis against the running app's OpenAPI document, over HTTP: generated requests to
every operation, as a shop, a shopper and staff; no 5xx, every status code and body as
documented."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fenqi.credit.checkout import RiskVerdict
from support.api_server import Api, id_number, running_api

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    with running_api(f"sqlite:///{tmp / 'api.sqlite'}", models_dir, tmp) as api:
        api.ctx.__dict__["checkout_risk"] = lambda _c, _f: RiskVerdict("approve")
        shop = api.merchant()
        app = api.apply(shop, id_number(), "13300000003").json()
        api.post(
            "/v1/orders",
            shop,
            {
                "credit_account_id": app["credit_account_id"],
                "amount_fen": 1_000,
                "terms": 0,
                "currency": "CNY",
                "merchant_order_ref": "seed",
            },
        )
        yield {
            "api": api,
            "shop": shop,
            "shopper": api.shopper_token(shop, app["customer_id"]),
            "staff": api.staff_token(),
        }


def test_api_honours_its_schema(live: dict[str, Any]) -> None:
    api: Api = live["api"]
    spec = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    results = list(spec.get_all_operations())
    assert [r.err() for r in results if isinstance(r, Err)] == []
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 25
    for operation in operations:
        _fuzz(operation, api.base, _token(live, operation.path))


def _token(live: dict[str, Any], path: str) -> str:
    if path.startswith("/v1/ops"):
        return str(live["staff"])
    return str(live["shopper"] if path.startswith("/v1/me") else live["shop"])


def _fuzz(operation: Any, base: str, token: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

    check()
