"""The command line on the test book (FENQI_MODE=test): `fenqi db upgrade` prepares both
books, a command says which book it works on, one book is never taken for the other, and
what reaches the real world (bureau files, funders' settlement) refuses test data; key
rotation covers both books."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def fenqi(*args: str, cwd: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FENQI_") and k != "COLUMNS"}
    env.update(env_vars)
    return subprocess.run(
        [sys.executable, "-m", "fenqi.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


def test_commands_work_on_the_book_they_are_told(tmp_path: Path) -> None:
    live = f"sqlite:///{tmp_path / 'book.sqlite'}"
    test = f"sqlite:///{tmp_path / 'book.test.sqlite'}"
    made = fenqi("db", "upgrade", cwd=tmp_path, FENQI_DATABASE_URL=live)
    assert made.returncode == 0, made.stderr
    assert f"test mode: test book at {test}" in made.stderr  # beside the live file

    out = fenqi("ledger", "trial-balance", cwd=tmp_path, FENQI_DATABASE_URL=live, FENQI_MODE="test")
    assert out.returncode == 0, out.stderr
    assert f"database: {test} (test book, FENQI_MODE=test; default)" in out.stderr

    # the test book named as the live one (and the other way round) is refused
    out = fenqi("ledger", "trial-balance", cwd=tmp_path, FENQI_DATABASE_URL=test)
    assert out.returncode != 0 and "fenqi's test book" in out.stderr, out.stderr
    assert "set FENQI_MODE=test" in out.stderr
    out = fenqi(
        "ledger",
        "trial-balance",
        cwd=tmp_path,
        FENQI_DATABASE_URL=f"sqlite:///{tmp_path / 'other.sqlite'}",
        FENQI_TEST_DATABASE_URL=live,
        FENQI_MODE="test",
    )
    assert out.returncode != 0 and "fenqi's live book" in out.stderr, out.stderr

    # bureau files and funders' settlement never carry test data
    out = fenqi(
        "bureau", "report", "--month", "2026-01", cwd=tmp_path,
        FENQI_DATABASE_URL=live, FENQI_MODE="test",
    )  # fmt: skip
    assert out.returncode != 0 and "live book only" in out.stderr, out.stderr
    out = fenqi(
        "funding", "settle", "--date", "2026-01-02", cwd=tmp_path,
        FENQI_DATABASE_URL=live, FENQI_MODE="test",
    )  # fmt: skip
    assert out.returncode != 0 and "live book only" in out.stderr, out.stderr
    assert (tmp_path / "book.test.sqlite").exists()

    # the test book's personal data is sealed with the same keys: rotated with the live book's
    out = fenqi("rotate-keys", cwd=tmp_path, FENQI_DATABASE_URL=live)
    assert out.returncode == 0, out.stderr
    assert "test book: re-encrypted 0 customers" in out.stdout, out.stdout
