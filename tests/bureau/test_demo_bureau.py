"""The demo starts the bureau beside the API, seeded, and the API's settings point at it."""

from __future__ import annotations

from pathlib import Path

import httpx

from fenqi.demo import DEMO_BUREAU_TOKEN, start_bureau
from fenqi.settings import Settings
from support.api_server import free_port


def test_the_demo_bureau_is_seeded_and_answers(tmp_path: Path) -> None:
    settings = Settings(demo_file=tmp_path / "demo.json")
    url, stop = start_bureau(settings, "127.0.0.1", free_port())
    try:
        assert accounts(tmp_path) > 1000  # 1,000 subjects' borrowing at other lenders

        r = httpx.get(f"{url}/v1/subjects/none", headers={"Authorization": "Bearer wrong"})
        assert r.status_code in (401, 403)
        body = {
            "subject_id": "110105199001010011",
            "purpose": "loan_application",
            "authorization": {
                "reference": "consent:1",
                "granted_at": "2026-01-01T00:00:00+00:00",
                "text_version": "2026-01",
            },
        }
        r = httpx.post(
            f"{url}/v1/inquiries",
            json=body,
            headers={"Authorization": f"Bearer {DEMO_BUREAU_TOKEN}"},
        )
        assert r.status_code == 200, r.text
    finally:
        stop()
    before = accounts(tmp_path)
    url, stop = start_bureau(settings, "127.0.0.1", free_port())  # a second demo start
    stop()
    assert accounts(tmp_path) == before  # seeding is idempotent


def accounts(tmp_path: Path) -> int:
    from sqlalchemy import func, select

    from fenqi.bureau.server.db import cb_accounts
    from fenqi.store.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'demo-bureau.sqlite'}")
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(cb_accounts)).scalar_one())
    engine.dispose()
    return n
