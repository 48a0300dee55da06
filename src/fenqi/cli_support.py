"""Helpers shared by CLI commands: one context per run, JSON output, errors as clean messages."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer

from fenqi.errors import FenqiError

P = ParamSpec("P")
R = TypeVar("R")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


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


@contextmanager
def context() -> Iterator[Any]:
    from fenqi.context import build_context

    ctx = build_context()
    try:
        yield ctx
    finally:
        ctx.engine.dispose()
