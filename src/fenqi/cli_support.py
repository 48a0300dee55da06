"""Helpers shared by CLI commands: one context per run, JSON output, errors as clean messages."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer

from fenqi.errors import FenqiError

P = ParamSpec("P")
R = TypeVar("R")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


# Width of tables written to a pipe or a file: rich would cut them at 80 columns (its default
# when it finds no terminal), wrapping every cell; wide enough for any table here. A terminal
# keeps its own width; COLUMNS, when set, wins as rich reads it.
PIPED_WIDTH = 240


def table_console() -> Any:
    """A rich console for a command's tables on standard output, not cut at 80 columns when
    piped (`fenqi ledger trial-balance | less`, `> report.txt`)."""
    from rich.console import Console

    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=PIPED_WIDTH)


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def clean_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Expected refusals (FenqiError, bad values) print one line and exit non-zero."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FenqiError as exc:
            fail(f"{exc.message} [{exc.code}]")
        except (ValueError, FileNotFoundError) as exc:
            fail(str(exc))
        raise AssertionError("unreachable")

    return run


def parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--date: {value!r} is not a date like 2026-11-26") from None


class DatabaseNotReady(FenqiError):
    code = "database_not_ready"
    http_status = 503


def _create_hint(url: str) -> str:
    demo = Path(".fenqi/demo.sqlite")
    named = os.environ.get("FENQI_DATABASE_URL")
    hint = f"create it with `{'FENQI_DATABASE_URL=' + url + ' ' if named else ''}fenqi db upgrade`"
    if demo.is_file():
        hint += (
            f", or use the demo's book: export FENQI_DATABASE_URL=sqlite:///{demo} "
            "(what `make demo` built)"
        )
    return hint


def check_database(engine: Any, url: str) -> None:
    """Refuse a database without fenqi's tables, or behind the code's migrations, naming it and
    how to set it up (a command never creates an empty database silently)."""
    from sqlalchemy import inspect

    tables = set(inspect(engine).get_table_names())
    if "ledger_accounts" not in tables:
        raise DatabaseNotReady(f"database {url} has no fenqi tables; {_create_hint(url)}")
    if "alembic_version" in tables:  # tables made by create_all (tests) carry no version
        from alembic.script import ScriptDirectory

        from fenqi.store.migrate import alembic_config, current

        heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
        at = current(engine)
        if at not in heads:
            raise DatabaseNotReady(
                f"database {url} is at schema revision {at}, this fenqi needs "
                f"{' or '.join(heads)}: "
                f"upgrade it with `FENQI_DATABASE_URL={url} fenqi db upgrade`"
            )


def check_book(engine: Any, mode: str) -> None:
    """Refuse to work on the test book as the live one, or the other way round."""
    from sqlalchemy import inspect

    from fenqi.store.books import BookMismatch, book_of

    if "fenqi_book" not in set(inspect(engine).get_table_names()):
        return
    with engine.connect() as conn:
        found = book_of(conn)
    if found is not None and found != mode:
        hint = "unset FENQI_MODE" if found == "live" else "set FENQI_MODE=test"
        raise BookMismatch(f"this database is fenqi's {found} book: to work on it, {hint}")


def live_only(ctx: Any, what: str) -> None:
    """Refuse `what` on the test book (FENQI_MODE=test): it reaches the real world (a credit
    bureau, funders), which must never hear of test data."""
    if not ctx.livemode:
        raise FenqiError(
            f"{what} works on the live book only, not in test mode (unset FENQI_MODE)",
            code="live_book_only",
        )


def say_database(url: str, mode: str = "live") -> None:
    """Which database a command works on, on standard error (stdout stays data)."""
    name = "FENQI_DATABASE_URL" if mode == "live" else "FENQI_TEST_DATABASE_URL"
    source = name if os.environ.get(name) else "default"
    book = "" if mode == "live" else "test book, FENQI_MODE=test; "
    typer.secho(f"database: {url} ({book}{source})", err=True, fg=typer.colors.BRIGHT_BLACK)


@contextmanager
def context(*, create: bool = False) -> Iterator[Any]:
    """The command's context on FENQI_DATABASE_URL, said on standard error. Unless `create`
    (`fenqi db upgrade`), a SQLite file that does not exist is not created and a database
    without fenqi's tables is refused (DatabaseNotReady)."""
    from sqlalchemy.engine import make_url

    from fenqi.context import build_context
    from fenqi.settings import get_settings

    settings = get_settings()
    raw = settings.book_url()  # the live book, or the test book with FENQI_MODE=test
    url = make_url(raw).render_as_string(hide_password=True)
    say_database(url, settings.mode)
    parsed = make_url(raw)
    path = parsed.database
    in_file = parsed.get_backend_name() == "sqlite" and path and path != ":memory:"
    if not create and in_file and not Path(str(path)).is_file():
        raise DatabaseNotReady(f"no database at {path} ({url}); {_create_hint(url)}")
    ctx = build_context()
    try:
        if not create:
            check_database(ctx.engine, url)
            check_book(ctx.engine, settings.mode)
        yield ctx
    finally:
        ctx.engine.dispose()
