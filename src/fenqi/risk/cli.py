"""`fenqi risk ...` commands: train, evaluate, report, decide.

Heavy libraries (pandas, lightgbm, optbinning, zen) are imported inside the commands so that
`fenqi --help` stays fast. Expected refusals (bad data, a broken flow, a model/input mismatch)
print `error [code]: message` on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from fenqi.errors import FenqiError

app = typer.Typer(no_args_is_help=True)

EXIT_REFUSED = 2


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except FenqiError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None


def _monotone(raw: list[str]) -> dict[str, int]:
    from fenqi.risk.errors import BadDataError

    out: dict[str, int] = {}
    for item in raw:
        name, _, direction = item.rpartition("=")
        if not name or direction not in {"+1", "1", "-1"}:
            raise BadDataError(f"--monotone takes FEATURE=+1 or FEATURE=-1, not {item!r}")
        out[name] = int(direction)
    return out


def _excludes(raw: list[str] | None) -> list[str]:
    return [name.strip() for item in raw or [] for name in item.split(",") if name.strip()]


@app.command()
def train(
    data: Path = typer.Option(..., "--data", help="CSV with features and a binary target."),
    target: str = typer.Option(..., "--target", help="Target column (1/bad = default)."),
    model: str = typer.Option("scorecard", "--model", help="scorecard or gbm."),
    out: Path = typer.Option(..., "--out", help="Registry folder; a new version is added."),
    seed: int = typer.Option(42, "--seed"),
    bad_value: str | None = typer.Option(None, "--bad-value",
                                         help="Target value meaning default (e.g. bad)."),
    exclude: list[str] | None = typer.Option(None, "--exclude",
                                             help="Columns that are not features (repeatable)."),
    holdout: float = typer.Option(0.2, "--holdout", help="Share of rows kept for metrics."),
    min_iv: float | None = typer.Option(None, "--min-iv",
                                        help="Scorecard: drop characteristics below this IV."),
    calibration: str | None = typer.Option(None, "--calibration",
                                           help="GBM: platt (default), isotonic or none."),
    monotone: list[str] | None = typer.Option(
        None, "--monotone", help="GBM: FEATURE=+1 (risk rises with it) or FEATURE=-1."
    ),
    special_codes: str | None = typer.Option(
        None, "--special-codes", help="Scorecard: numeric codes binned apart, e.g. -1,-2."
    ),
    base_score: float = typer.Option(600.0, "--base-score", help="Score at --base-odds."),
    base_odds: float = typer.Option(50.0, "--base-odds", help="Good:bad odds at --base-score."),
    pdo: float = typer.Option(20.0, "--pdo", help="Points to double the odds."),
) -> None:
    """Train a scorecard or GBM and write a versioned artifact into the registry folder."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fenqi.clock import SystemClock
    from fenqi.risk.data import read_table
    from fenqi.risk.errors import BadDataError
    from fenqi.risk.train import ModelKind, train_model

    console = Console(stderr=True)
    with _refusals():
        if model not in {k.value for k in ModelKind}:
            raise BadDataError(f"--model must be scorecard or gbm, not {model!r}")
        if base_odds <= 0 or pdo <= 0:
            raise BadDataError("--base-odds and --pdo must be positive")
        params: dict[str, Any] = {"base_score": base_score, "base_odds": base_odds, "pdo": pdo}
        if min_iv is not None:
            if model != ModelKind.SCORECARD:
                raise BadDataError("--min-iv applies to --model scorecard only")
            params["min_iv"] = min_iv
        if calibration is not None:
            if model != ModelKind.GBM or calibration not in {"platt", "isotonic", "none"}:
                raise BadDataError("--calibration is platt, isotonic or none, for --model gbm")
            params["calibration"] = calibration
        if monotone:
            if model != ModelKind.GBM:
                raise BadDataError("--monotone applies to --model gbm only")
            params["monotone_constraints"] = _monotone(monotone)
        if special_codes:
            if model != ModelKind.SCORECARD:
                raise BadDataError("--special-codes applies to --model scorecard only")
            try:
                params["special_codes"] = [float(c) for c in special_codes.split(",")]
            except ValueError as exc:
                raise BadDataError(f"--special-codes must be numbers: {special_codes!r}") from exc
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task(f"reading {data}")
            frame = read_table(data)

            def step(message: str) -> None:
                progress.update(task, description=message)

            loaded = train_model(
                frame, target, model, out, SystemClock(), seed=seed, bad_value=bad_value,
                exclude=_excludes(exclude), holdout=holdout, params=params, progress=step,
            )
        measured = loaded.manifest["metrics"]
        console.print(
            f"[green]trained[/green] {loaded.model_id} -> {loaded.path}  "
            f"({measured['sample']}: AUC {measured['auc']:.4f}, KS {measured['ks']:.4f}, "
            f"n {measured['n']})"
        )
        typer.echo(str(loaded.path))


def _evaluate(model: Path, data: Path, target: str, bad_value: str | None) -> dict[str, Any]:
    from fenqi.risk.data import read_table
    from fenqi.risk.registry import load_model
    from fenqi.risk.report import evaluate_frame

    loaded = load_model(model)
    return evaluate_frame(loaded, read_table(data), target, bad_value)


@app.command()
def evaluate(
    model: Path = typer.Option(..., "--model", help="Model version folder or registry."),
    data: Path = typer.Option(..., "--data"),
    target: str = typer.Option(..., "--target"),
    bad_value: str | None = typer.Option(None, "--bad-value"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """AUC, KS, Gini, Brier, calibration and gains of a model on labelled data."""
    from fenqi.risk.report import public

    with _refusals():
        result = public(_evaluate(model, data, target, bad_value))
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key in ("model_id", "n", "bad_rate", "auc", "ks", "gini", "brier", "psi_vs_training"):
        if key in result:
            value = result[key]
            typer.echo(f"{key:>16}: {value:.4f}" if isinstance(value, float)
                       else f"{key:>16}: {value}")


@app.command()
def report(
    model: Path = typer.Option(..., "--model"),
    data: Path = typer.Option(..., "--data"),
    target: str = typer.Option(..., "--target"),
    html: Path = typer.Option(..., "--html", help="HTML file; the JSON goes beside it."),
    bad_value: str | None = typer.Option(None, "--bad-value"),
) -> None:
    """HTML report (ROC, KS, score distribution, calibration) plus the same figures as JSON."""
    from fenqi.risk.report import write_report

    with _refusals():
        json_path = write_report(_evaluate(model, data, target, bad_value), html)
    typer.echo(f"{html}\n{json_path}")


@app.command()
def psi(
    model: Path = typer.Option(..., "--model"),
    expected: Path = typer.Option(..., "--expected", help="Baseline sample (e.g. training)."),
    actual: Path = typer.Option(..., "--actual", help="Recent sample (e.g. this month)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Population stability: PSI of the score and of each feature between two samples."""
    from fenqi.risk.data import read_table
    from fenqi.risk.registry import load_model
    from fenqi.risk.report import stability

    with _refusals():
        result = stability(load_model(model), read_table(expected), read_table(actual))
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"score PSI: {result['score_psi']:.4f} (< 0.1 stable, > 0.25 review the model)")
    for name, value in result["feature_psi"].items():
        typer.echo(f"{name:>40}: {value:.4f}")


def _record(decision: Any, application_ref: str | None) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from fenqi.clock import SystemClock
    from fenqi.risk.errors import RiskError
    from fenqi.risk.records import record_decision
    from fenqi.settings import get_settings
    from fenqi.store.engine import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        with engine.begin() as conn:
            return record_decision(
                conn, SystemClock(), decision,
                application_ref=application_ref or decision.inputs_fingerprint[:32],
            )
    except SQLAlchemyError as exc:
        raise RiskError(
            f"cannot record the decision (is the database migrated?): {exc.__class__.__name__}",
            code="risk.store",
        ) from exc
    finally:
        engine.dispose()


def _read_json(path: Path, what: str) -> Any:
    from fenqi.risk.errors import BadDataError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadDataError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise BadDataError(f"{what} {path} is not valid JSON: {exc}") from exc


@app.command()
def decide(
    flow: Path | None = typer.Option(None, "--flow", help="JDM flow JSON (default: built-in)."),
    model: Path = typer.Option(..., "--model"),
    application: Path = typer.Option(..., "--application", help="Application JSON file."),
    as_json: bool = typer.Option(False, "--json"),
    record: bool = typer.Option(
        False, "--record", help="Store the decision in the database (FENQI_DATABASE_URL)."
    ),
    application_ref: str | None = typer.Option(
        None, "--application-ref", help="Reference stored with the decision (--record)."
    ),
) -> None:
    """Run one application through the decision flow and the model."""
    from fenqi.risk.decision import Decider
    from fenqi.risk.errors import BadDataError
    from fenqi.risk.flow import load_flow
    from fenqi.risk.registry import load_model

    with _refusals():
        raw = _read_json(application, "application")
        if not isinstance(raw, dict):
            raise BadDataError("the application JSON must be an object")
        decider = Decider(load_model(model), load_flow(flow))
        decision = decider.decide(raw)
        result = decision.to_dict()
        if record:
            result["record_id"] = _record(decision, application_ref)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key:>20}: {value}")
