"""The `fenqi` command line (Typer). Each area adds its own sub-command group.

Heavy imports (models, database drivers) happen inside commands, so `fenqi --help` stays fast.
"""

from __future__ import annotations

import typer

from fenqi.risk.cli import app as risk_app

app = typer.Typer(
    help="fenqi: e-commerce consumer finance (buy now, pay later).", no_args_is_help=True
)
app.add_typer(risk_app, name="risk", help="Risk engine: train, evaluate, report, decide.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
