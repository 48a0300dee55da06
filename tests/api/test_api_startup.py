"""What a server does before its first request (issue 21): the risk model and decision flow
are made at start-up, so no request ever trains or loads a model."""

from __future__ import annotations

from pathlib import Path

from support.api_server import running_api


def test_the_underwriter_is_ready_before_the_first_request(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        # cached_property: present in the instance's dict once built (by the app's lifespan)
        assert "underwriter" in vars(api.ctx)
