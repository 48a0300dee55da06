"""`fenqi risk ...` commands (placeholder until the risk engine lands)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
