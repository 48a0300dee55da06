"""`fenqi staff ...` through Typer's CliRunner on a temporary SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fenqi.privacy.cli import app
from fenqi.settings import get_settings
from fenqi.store.engine import create_all, make_engine

PASSWORD = "a-long-enough-secret"


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    engine = make_engine(url)
    create_all(engine)
    engine.dispose()
    monkeypatch.setenv("FENQI_DATABASE_URL", url)
    monkeypatch.delenv("FENQI_STAFF_PASSWORD", raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _login(url: str, username: str, password: str) -> bool:
    from fenqi.privacy.staff import authenticate

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            return authenticate(conn, username, password) is not None
    finally:
        engine.dispose()


def test_create_from_env_and_list(db_file: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["create", "--username", "alice", "--role", "compliance", "--display-name", "Alice W"],
        env={"FENQI_STAFF_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert "created staff user alice" in result.output
    assert PASSWORD not in result.output
    assert _login(db_file, "alice", PASSWORD)

    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    users = json.loads(result.stdout)
    assert [(u["username"], u["role"], u["display_name"]) for u in users] == [
        ("alice", "compliance", "Alice W")
    ]
    assert "password" not in result.stdout

    from fenqi.privacy.audit import list_entries

    engine = make_engine(db_file)
    with engine.connect() as conn:
        (entry,) = list_entries(conn)
    engine.dispose()
    assert entry.action == "staff.create" and entry.target_id == str(users[0]["id"])


def test_create_with_prompt(db_file: str) -> None:
    result = CliRunner().invoke(
        app, ["create", "--username", "bob", "--role", "finance"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert _login(db_file, "bob", PASSWORD)


def test_refusals_exit_non_zero_with_a_clear_message(db_file: str) -> None:
    runner = CliRunner()
    env = {"FENQI_STAFF_PASSWORD": PASSWORD}
    result = runner.invoke(app, ["create", "--username", "carol", "--role", "root"], env=env)
    assert result.exit_code == 2 and "no such role 'root'" in result.output
    result = runner.invoke(
        app,
        ["create", "--username", "carol", "--role", "support"],
        env={"FENQI_STAFF_PASSWORD": "short"},
    )
    assert result.exit_code == 2 and "at least 12 characters" in result.output
    assert (
        runner.invoke(
            app, ["create", "--username", "carol", "--role", "support"], env=env
        ).exit_code
        == 0
    )
    result = runner.invoke(app, ["create", "--username", "carol", "--role", "support"], env=env)
    assert result.exit_code == 2 and "is taken" in result.output
    result = runner.invoke(app, ["list", "--json"])
    assert len(json.loads(result.stdout)) == 1


def test_disable_and_roles(db_file: str) -> None:
    runner = CliRunner()
    env = {"FENQI_STAFF_PASSWORD": PASSWORD}
    assert (
        runner.invoke(app, ["create", "--username", "dan", "--role", "support"], env=env).exit_code
        == 0
    )
    assert runner.invoke(app, ["disable", "--username", "dan"]).exit_code == 0
    assert not _login(db_file, "dan", PASSWORD)
    assert runner.invoke(app, ["disable", "--username", "dan", "--enable"]).exit_code == 0
    assert _login(db_file, "dan", PASSWORD)
    result = runner.invoke(app, ["roles", "--json"])
    roles = json.loads(result.stdout)
    assert "ledger.reverse" in roles["finance"] and "ledger.reverse" not in roles["support"]
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "dan" in result.output
