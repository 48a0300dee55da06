"""Which database a command uses, and that none is ever created empty behind the user's back
(issue 24 item 5: after `make demo`, `fenqi ledger trial-balance` made an empty
`.fenqi/fenqi.sqlite` and died with "no such table")."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def fenqi(*args: str, cwd: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    # as a user runs it from a script: no database chosen, no terminal width set
    env = {k: v for k, v in os.environ.items() if k not in ("FENQI_DATABASE_URL", "COLUMNS")}
    if url:
        env["FENQI_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


def test_a_missing_database_is_refused_not_created(tmp_path: Path) -> None:
    out = fenqi("ledger", "trial-balance", cwd=tmp_path)
    assert out.returncode == 2
    assert "database: sqlite:///.fenqi/fenqi.sqlite (default)" in out.stderr
    assert "no database at .fenqi/fenqi.sqlite" in out.stderr
    assert "fenqi db upgrade" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / ".fenqi" / "fenqi.sqlite").exists()


def test_the_refusal_points_at_the_demo_book_when_there_is_one(tmp_path: Path) -> None:
    (tmp_path / ".fenqi").mkdir()
    sqlite3.connect(tmp_path / ".fenqi" / "demo.sqlite").close()
    out = fenqi("ledger", "reconcile", cwd=tmp_path)
    assert out.returncode == 2
    assert "export FENQI_DATABASE_URL=sqlite:///.fenqi/demo.sqlite" in out.stderr


def test_a_database_without_tables_is_refused(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.sqlite").execute("CREATE TABLE t (x)").connection.close()
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    out = fenqi("webhooks", "list", cwd=tmp_path, url=url)
    assert out.returncode == 2
    assert f"database {url} has no fenqi tables" in out.stderr
    assert f"database: {url} (FENQI_DATABASE_URL)" in out.stderr


def test_after_db_upgrade_the_command_runs_and_says_where(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.sqlite'}"
    made = fenqi("db", "upgrade", cwd=tmp_path, url=url)
    assert made.returncode == 0, made.stderr
    out = fenqi("ledger", "trial-balance", "--json", cwd=tmp_path, url=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.lstrip().startswith("{") or out.stdout.lstrip().startswith("[")
    assert f"database: {url} (FENQI_DATABASE_URL)" in out.stderr


def test_tables_are_not_cut_at_80_columns_when_piped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.sqlite'}"
    assert fenqi("db", "upgrade", cwd=tmp_path, url=url).returncode == 0
    out = fenqi("ledger", "trial-balance", cwd=tmp_path, url=url)  # stdout is a pipe
    assert out.returncode == 0, out.stderr
    header = next(line for line in out.stdout.splitlines() if "currency" in line)
    assert "debits posted" in header and "credits pending" in header  # one line, not wrapped


def test_serve_without_migrating_needs_an_existing_database(tmp_path: Path) -> None:
    out = fenqi("serve", "--no-upgrade-db", "--port", "1", cwd=tmp_path)
    assert out.returncode == 2 and "no database at .fenqi/fenqi.sqlite" in out.stderr
    assert not (tmp_path / ".fenqi").exists()


def test_serve_prepares_the_starter_model_before_it_serves(tmp_path: Path) -> None:
    """`fenqi serve` trains the starter model into an empty registry before its workers start
    (the credit service itself never trains one: issue 22); a second start keeps it."""
    models = tmp_path / "models"
    env = {
        **{k: v for k, v in os.environ.items() if k != "FENQI_DATABASE_URL"},
        "FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite'}",
        "FENQI_MODELS_DIR": str(models),
    }
    prepare = "from fenqi.cli import _prepare_database; _prepare_database(True, 1)"
    first = subprocess.run(
        [sys.executable, "-c", prepare], capture_output=True, text=True, env=env, timeout=300
    )
    assert first.returncode == 0, first.stderr
    assert "trained the starter model" in first.stderr
    assert [p.name for p in models.iterdir() if p.is_dir()] == ["gbm-v0001"]
    again = subprocess.run(
        [sys.executable, "-c", prepare], capture_output=True, text=True, env=env, timeout=300
    )
    assert again.returncode == 0 and "starter" not in again.stderr, again.stderr
