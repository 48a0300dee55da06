"""What a shop integrator expects of the merchant and shopper API, over real HTTP on SQLite and
PostgreSQL: reads never write, orders state their currency, every plan, capture and refund of
an order is its own resource, lookups by the shop's reference, filters and newest-first lists."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from fenqi.store.schema.ledger import ledger_accounts
from support.api_server import Api, id_number, running_api


def _ledger_accounts(api: Api) -> int:
    with api.ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ledger_accounts)).scalar_one())


def test_settlement_is_a_read_and_refuses_unknown_currencies(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant("m_reader")
        before = _ledger_accounts(api)
        r = api.get("/v1/settlement", key, currency="XYZ")
        assert r.status_code == 422 and r.json()["code"] == "unknown_currency", r.text
        assert r.json()["field"] == "currency"
        ok = api.get("/v1/settlement", key, currency="CNY")
        assert ok.status_code == 200, ok.text
        assert ok.json()["owed_fen"] == 0 and ok.json()["orders"] == 0
        # a shop with no payable yet: nothing was opened in the ledger by asking
        assert _ledger_accounts(api) == before
