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
    bad_value: str | None = typer.Option(
        None, "--bad-value", help="Target value meaning default (e.g. bad)."
    ),
    exclude: list[str] | None = typer.Option(
        None, "--exclude", help="Columns that are not features (repeatable)."
    ),
    holdout: float = typer.Option(
        0.2,
        "--holdout",
        help="Share of rows (stratified) kept out of a first fit to measure the manifest's "
        "metrics; the saved model is then refit on every row with the same settings "
        "(see --no-refit).",
    ),
    refit: bool = typer.Option(
        True,
        "--refit/--no-refit",
        help="Refit on all rows after measuring on the holdout (default). --no-refit saves "
        "the model that was measured, trained on the other rows only.",
    ),
    encoding: str | None = typer.Option(
        None, "--encoding", help="Text encoding of the CSV (default utf-8; e.g. gbk, gb18030)."
    ),
    na_values: list[str] | None = typer.Option(
        None, "--na-values", help="A text meaning 'missing' (repeatable), e.g. n/a."
    ),
    time_column: str | None = typer.Option(
        None,
        "--time-column",
        help="Date/time column: the holdout is the latest rows by it "
        "(out-of-time validation); the column is not a feature.",
    ),
    rejects: Path | None = typer.Option(
        None,
        "--rejects",
        help="Rejected applicants (same feature columns, no outcome): "
        "reject inference, for data of accepted applicants only.",
    ),
    reject_method: str = typer.Option(
        "fuzzy", "--reject-method", help="fuzzy (default) or parceling."
    ),
    keep_wrong_sign: bool = typer.Option(
        False,
        "--keep-wrong-sign",
        help="Scorecard: keep characteristics whose coefficient has the wrong sign (default: "
        "drop them and refit; kept ones are listed in the manifest's warnings).",
    ),
    allow_protected: list[str] | None = typer.Option(
        None,
        "--allow-protected",
        help="Use this protected attribute (sex, marital status, ...) as a feature; logged "
        "in the manifest. Excluded by default (repeatable).",
    ),
    min_iv: float | None = typer.Option(
        None, "--min-iv", help="Scorecard: drop characteristics below this IV."
    ),
    calibration: str | None = typer.Option(
        None,
        "--calibration",
        help="GBM: platt (default), isotonic or none, on a validation split. Scorecard: platt "
        "(default; intercept and slope of the log-odds fit on the holdout) or none.",
    ),
    monotone: list[str] | None = typer.Option(
        None,
        "--monotone",
        help="FEATURE=+1 (risk rises with it) or FEATURE=-1: a monotone "
        "GBM constraint, or monotone scorecard bins.",
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
    from fenqi.risk.promotion import crown_current
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
            if model == ModelKind.GBM:
                if calibration not in {"platt", "isotonic", "none"}:
                    raise BadDataError("--calibration is platt, isotonic or none, for --model gbm")
                params["calibration"] = calibration
            elif calibration not in {"platt", "none"}:
                raise BadDataError("--calibration is platt or none for --model scorecard")
        if monotone:
            key = "monotone_constraints" if model == ModelKind.GBM else "monotone"
            params[key] = _monotone(monotone)
        if keep_wrong_sign:
            if model != ModelKind.SCORECARD:
                raise BadDataError("--keep-wrong-sign applies to --model scorecard only")
            params["drop_wrong_sign"] = False
        if special_codes:
            if model != ModelKind.SCORECARD:
                raise BadDataError("--special-codes applies to --model scorecard only")
            try:
                params["special_codes"] = [float(c) for c in special_codes.split(",")]
            except ValueError as exc:
                raise BadDataError(f"--special-codes must be numbers: {special_codes!r}") from exc
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(f"reading {data}")
            frame = read_table(data, encoding=encoding, na_values=na_values or ())
            reject_frame = (
                read_table(rejects, encoding=encoding, na_values=na_values or ())
                if rejects is not None
                else None
            )

            def step(message: str) -> None:
                progress.update(task, description=message)

            # The version deciding now stays the champion: the new one is a challenger.
            champion = crown_current(out) if out.is_dir() else None
            loaded = train_model(
                frame,
                target,
                model,
                out,
                SystemClock(),
                seed=seed,
                bad_value=bad_value,
                exclude=_excludes(exclude),
                holdout=holdout,
                params=params,
                progress=step,
                refit=refit,
                allow_protected=_excludes(allow_protected),
                rejects=reject_frame,
                reject_method=reject_method,
                time_column=time_column,
                calibrate=calibration != "none",
            )
        measured = loaded.manifest["metrics"]
        for note in loaded.manifest.get("warnings", []):
            console.print(f"[yellow]warning[/yellow]: {note}")
        console.print(
            f"[green]trained[/green] {loaded.model_id} -> {loaded.path}  "
            f"({measured['sample']}: AUC {measured['auc']:.4f}, KS {measured['ks']:.4f}, "
            f"n {measured['n']}"
            + (
                "; saved model refit on all rows"
                if loaded.manifest.get("refit_on_all_rows")
                else ""
            )
            + ")"
        )
        if champion is not None:
            console.print(
                f"{loaded.model_id} is a challenger; {champion.name} still decides. Promote it "
                f"with fenqi risk promote --registry {out} --challenger {loaded.path} ..."
            )
        typer.echo(str(loaded.path))


def _evaluate(
    model: Path, data: Path, target: str, bad_value: str | None, encoding: str | None = None
) -> dict[str, Any]:
    from fenqi.risk.data import read_table
    from fenqi.risk.registry import load_model
    from fenqi.risk.report import evaluate_frame

    loaded = load_model(model)
    return evaluate_frame(loaded, read_table(data, encoding=encoding), target, bad_value)


@app.command()
def evaluate(
    model: Path = typer.Option(..., "--model", help="Model version folder or registry."),
    data: Path = typer.Option(..., "--data"),
    target: str = typer.Option(..., "--target"),
    bad_value: str | None = typer.Option(None, "--bad-value"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    encoding: str | None = typer.Option(None, "--encoding", help="CSV text encoding."),
) -> None:
    """AUC, KS, Gini, Brier, calibration and gains of a model on labelled data."""
    from fenqi.risk.report import public

    with _refusals():
        result = public(_evaluate(model, data, target, bad_value, encoding))
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key in ("model_id", "n", "bad_rate", "auc", "ks", "gini", "brier", "psi_vs_training"):
        if key in result:
            value = result[key]
            typer.echo(
                f"{key:>16}: {value:.4f}" if isinstance(value, float) else f"{key:>16}: {value}"
            )


@app.command()
def report(
    model: Path = typer.Option(..., "--model"),
    data: Path = typer.Option(..., "--data"),
    target: str = typer.Option(..., "--target"),
    html: Path = typer.Option(..., "--html", help="HTML file; the JSON goes beside it."),
    bad_value: str | None = typer.Option(None, "--bad-value"),
    encoding: str | None = typer.Option(None, "--encoding", help="CSV text encoding."),
    group: list[str] | None = typer.Option(
        None,
        "--group",
        help="Column to report approval and bad rates by (e.g. a protected "
        "attribute; repeatable). It need not be a model feature.",
    ),
    cutoff: float = typer.Option(600.0, "--cutoff", help="Score cut-off for --group tables."),
    challenger: Path | None = typer.Option(
        None, "--challenger", help="A second model: DeLong's test of the two AUCs."
    ),
) -> None:
    """HTML report (ROC, KS, score distribution, calibration, master scale, IV, PSI,
    intervals, Hosmer-Lemeshow) plus the same figures and tables as JSON."""
    from fenqi.risk.registry import load_model
    from fenqi.risk.report import add_comparison, add_groups, write_report

    with _refusals():
        evaluation = _evaluate(model, data, target, bad_value, encoding)
        if group:
            add_groups(evaluation, _excludes(group), cutoff)
        if challenger is not None:
            add_comparison(evaluation, load_model(challenger))
        json_path = write_report(evaluation, html)
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
                conn,
                SystemClock(),
                decision,
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


@app.command()
def score(
    model: Path = typer.Option(..., "--model", help="Model version folder or registry."),
    data: Path = typer.Option(..., "--data", help="CSV or Parquet (.parquet) to score."),
    out: Path = typer.Option(..., "--out", help="CSV or Parquet (.parquet) to write."),
    keep: list[str] | None = typer.Option(
        None, "--keep", help="Input column copied to the output, e.g. an id (repeatable)."
    ),
    reasons: int = typer.Option(4, "--reasons", help="Reason codes per row (0: none)."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", help="Rows per chunk."),
    encoding: str | None = typer.Option(None, "--encoding", help="CSV text encoding."),
    na_values: list[str] | None = typer.Option(
        None, "--na-values", help="A text meaning 'missing' (repeatable)."
    ),
) -> None:
    """Score a file: PD, score, master-scale band and top reasons per row, in chunks."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fenqi.risk.registry import load_model
    from fenqi.risk.scoring import score_file

    console = Console(stderr=True)
    with _refusals():
        loaded = load_model(model)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(f"scoring {data} with {loaded.model_id}")

            def step(rows: int) -> None:
                progress.update(task, description=f"scored {rows:,} rows")

            rows = score_file(
                loaded,
                data,
                out,
                keep=_excludes(keep),
                reasons=reasons,
                chunk_rows=chunk_rows,
                encoding=encoding,
                na_values=na_values or (),
                progress=step,
            )
    console.print(f"[green]scored[/green] {rows:,} rows with {loaded.model_id} -> {out}")
    typer.echo(str(out))


@app.command()
def promote(
    registry: Path = typer.Option(..., "--registry", help="The registry folder."),
    challenger: Path = typer.Option(..., "--challenger", help="Version folder to promote."),
    data: Path = typer.Option(
        ..., "--data", help="Labelled sample neither model trained on (ideally out of time)."
    ),
    target: str = typer.Option(..., "--target"),
    bad_value: str | None = typer.Option(None, "--bad-value"),
    bads_min: int = typer.Option(100, "--bads-min", help="Bads needed in the sample."),
    p_max: float = typer.Option(0.05, "--p-max", help="DeLong one-sided p-value needed."),
    psi_max: float = typer.Option(0.1, "--psi-max", help="Largest score PSI vs training."),
    encoding: str | None = typer.Option(None, "--encoding", help="CSV text encoding."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Make a challenger the registry's champion if it passes the gate; else say why not.

    The gate: enough bads in the sample and in the challenger's training data, an AUC better
    than the champion's on the same rows by DeLong's test, and a stable score PSI. The outcome
    and its reasons are appended to <registry>/promotions.jsonl either way."""
    from fenqi.clock import SystemClock
    from fenqi.risk.data import read_table
    from fenqi.risk.promotion import GatePolicy, promote_if_better

    with _refusals():
        result = promote_if_better(
            registry,
            challenger,
            read_table(data, encoding=encoding),
            target,
            SystemClock(),
            bad_value=bad_value,
            policy=GatePolicy(bads_min=bads_min, p_max=p_max, psi_max=psi_max),
        )
    if as_json:
        typer.echo(json.dumps(result))
    else:
        verdict = "promoted" if result["promoted"] else "stays challenger"
        typer.echo(f"{result['challenger']}: {verdict}")
        for reason in result["reasons"]:
            typer.echo(f"  - {reason}")
    if not result["promoted"]:
        raise typer.Exit(1)


def _odds_at(raw: str) -> tuple[float, float]:
    from fenqi.risk.errors import BadDataError

    score, sep, odds = raw.partition(":")
    try:
        if not sep:
            raise ValueError(raw)
        return float(score), float(odds)
    except ValueError:
        raise BadDataError(f"--odds-at takes SCORE:ODDS, e.g. 600:30, not {raw!r}") from None


@app.command()
def recalibrate(
    model: Path = typer.Option(
        ..., "--model", help="Scorecard version folder, or a registry (its champion)."
    ),
    bad_rate: float | None = typer.Option(
        None, "--bad-rate", help="New expected bad rate of the training population, e.g. 0.08."
    ),
    odds_at: str | None = typer.Option(
        None, "--odds-at", help="SCORE:ODDS - the good:bad odds now observed at a score."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Recent labelled sample: fit the intercept on it."
    ),
    target: str | None = typer.Option(None, "--target", help="Target column of --data."),
    bad_value: str | None = typer.Option(None, "--bad-value"),
    slope: bool = typer.Option(
        False, "--slope", help="With --data: fit a slope too (scales every bin's points)."
    ),
    by: str | None = typer.Option(None, "--by", help="Who recalibrates (audit; default $USER)."),
    encoding: str | None = typer.Option(None, "--encoding", help="CSV text encoding."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Move a scorecard's intercept (and with --slope its points) to a new bad rate, to the
    odds seen at a score, or to a labelled sample, keeping its bins. The result is a new
    version, a challenger: it goes live only through `fenqi risk promote`. Audited in
    <registry>/recalibrations.jsonl."""
    import getpass

    from fenqi.clock import SystemClock
    from fenqi.risk.data import read_table
    from fenqi.risk.errors import BadDataError
    from fenqi.risk.recalibration import recalibrate as run

    with _refusals():
        if slope and data is None:
            raise BadDataError("--slope needs --data")
        saved, record = run(
            model,
            SystemClock(),
            by=by or getpass.getuser(),
            bad_rate=bad_rate,
            odds_at=_odds_at(odds_at) if odds_at is not None else None,
            frame=read_table(data, encoding=encoding) if data is not None else None,
            target_column=target,
            bad_value=bad_value,
            fit_slope=slope,
        )
    if as_json:
        typer.echo(json.dumps({**record, "path": str(saved.path)}))
        return
    typer.echo(
        f"{record['from']} -> {saved.model_id} ({record['method']}: shift "
        f"{record['shift']:+.4f}, slope {record['slope']:.4f}); a challenger: promote it with "
        f"fenqi risk promote --registry {saved.path.parent} --challenger {saved.path} ..."
    )
    typer.echo(str(saved.path))
