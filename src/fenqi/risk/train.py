"""Training pipeline: table -> typed features -> model -> held-out metrics -> registry artifact.

A stratified share of rows (`holdout`, default 20%) is kept out of a first fit and used for the
metrics recorded in the manifest, so the numbers an operator reads are out-of-sample. Then, by
default (`refit=True`), the model is fit again with the same settings on every row and that
model is saved: the holdout measured the method, the refit gives the saved model all the data
(the manifest says both: `metrics.sample`, `refit_on_all_rows`). The saved model's score deciles
and each feature's distribution are kept too, as the baseline for PSI monitoring later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fenqi.clock import Clock
from fenqi.risk import metrics
from fenqi.risk.data import (
    FeatureSpec,
    encode_frame,
    fingerprint_frame,
    infer_features,
    resolve_target,
    target_vector,
)
from fenqi.risk.errors import BadDataError
from fenqi.risk.fairness import protected_columns
from fenqi.risk.gbm import GbmParams, fit_gbm
from fenqi.risk.model import RiskModel
from fenqi.risk.registry import LoadedModel, save_model
from fenqi.risk.scorecard import ScorecardModel, ScorecardParams, fit_scorecard

if TYPE_CHECKING:
    import pandas as pd

Progress = Callable[[str], None]
ROWS_MIN = 50  # fewer rows than this cannot support binning or a validation split
BAD_MIN = 10


class ModelKind(StrEnum):
    SCORECARD = "scorecard"
    GBM = "gbm"


@dataclass(frozen=True)
class Prepared:
    matrix: np.ndarray
    y: np.ndarray
    specs: list[FeatureSpec]
    target: dict[str, str]
    notes: tuple[str, ...] = ()


def prepare(
    frame: pd.DataFrame,
    target_column: str,
    bad_value: str | None = None,
    exclude: Sequence[str] = (),
    *,
    allow_protected: Sequence[str] = (),
) -> Prepared:
    target = resolve_target(frame, target_column, bad_value)
    y = target_vector(frame, target)
    if len(y) < ROWS_MIN or min(int(y.sum()), int(len(y) - y.sum())) < BAD_MIN:
        raise BadDataError(
            f"need at least {ROWS_MIN} rows and {BAD_MIN} of each outcome to train, got "
            f"{len(y)} rows with {int(y.sum())} bad"
        )
    features = frame.drop(columns=[target_column])
    notes: list[str] = []
    protected = protected_columns(features.columns, allow_protected)
    if protected:
        notes.append(
            "protected attributes excluded (opt in with --allow-protected): " + ", ".join(protected)
        )
    for name in allow_protected:
        notes.append(f"protected attribute {name!r} used as a feature by explicit opt-in")
    specs = infer_features(features, [*exclude, *protected], notes)
    return Prepared(
        encode_frame(features, specs),
        y,
        specs,
        {"column": target.column, "bad_label": target.bad_label, "good_label": target.good_label},
        tuple(notes),
    )


def fit(
    kind: ModelKind,
    matrix: np.ndarray,
    y: np.ndarray,
    specs: Sequence[FeatureSpec],
    seed: int = 42,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    weight: np.ndarray | None = None,
) -> RiskModel:
    params = dict(params or {})
    if kind is ModelKind.SCORECARD:
        if "special_codes" in params:
            params["special_codes"] = tuple(params["special_codes"])
        return fit_scorecard(matrix, y, specs, ScorecardParams(**params), progress, weight)
    if kind is ModelKind.GBM:
        return fit_gbm(matrix, y, specs, GbmParams(seed=seed, **params), progress, weight)
    raise BadDataError(f"unknown model kind {kind!r}: use scorecard or gbm")


REJECT_METHODS = ("fuzzy", "parceling")


def fit_with_rejects(
    kind: ModelKind,
    matrix: np.ndarray,
    y: np.ndarray,
    rejects: np.ndarray,
    specs: Sequence[FeatureSpec],
    seed: int,
    params: dict[str, Any] | None,
    progress: Progress | None,
    method: str = "fuzzy",
) -> tuple[RiskModel, dict[str, Any]]:
    """Reject inference: a model of the accepted applicants scores the rejected ones, whose
    outcomes were never seen; the final model trains on both.

    fuzzy: each reject enters twice, as bad with weight PD and as good with weight 1 - PD.
    parceling: each reject is labelled bad or good at random with its PD (seeded), weight 1.
    """
    if method not in REJECT_METHODS:
        raise BadDataError(f"reject inference is fuzzy or parceling, not {method!r}")
    base = fit(kind, matrix, y, specs, seed, params, progress)
    pd_ = base.predict_pd(rejects)
    if progress:
        progress(f"reject inference ({method}) on {len(rejects)} rejected applicants")
    if method == "fuzzy":
        x = np.vstack([matrix, rejects, rejects])
        labels = np.concatenate([y, np.ones(len(rejects)), np.zeros(len(rejects))])
        weight = np.concatenate([np.ones(len(y)), pd_, 1.0 - pd_])
    else:
        rng = np.random.default_rng(seed)
        x = np.vstack([matrix, rejects])
        labels = np.concatenate([y, (rng.random(len(rejects)) < pd_).astype(float)])
        weight = np.ones(len(labels))
    model = fit(kind, x, labels.astype(np.int8), specs, seed, params, progress, weight)
    return model, {
        "method": method,
        "rejects": len(rejects),
        "mean_inferred_pd": float(np.mean(pd_)),
        "accepted_bad_rate": float(np.mean(y)),
    }


def _time_split(
    frame: pd.DataFrame, column: str, y: np.ndarray, holdout: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Out-of-time validation: the latest `holdout` share of rows by `column` (a date or time,
    or a number such as a month index) is the test sample; rows of the same instant stay on one
    side."""
    import pandas as pd

    if column not in frame.columns:
        raise BadDataError(f"--time-column {column!r} not found", column=column)
    if not 0 < holdout < 1:
        raise BadDataError("out-of-time validation needs a holdout share between 0 and 1")
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw):
        when = pd.to_numeric(raw, errors="coerce")
    else:
        when = pd.to_datetime(raw, errors="coerce", utc=True)
    if when.isna().any():
        bad = raw[when.isna()]
        raise BadDataError(
            f"--time-column {column!r} has {len(bad)} missing or unreadable values, e.g. "
            f"{bad.iloc[0]!r} at row {int(bad.index[0]) + 2}",
            column=column,
        )
    order = np.argsort(when.to_numpy(), kind="stable")
    cut_value = when.iloc[order[int(len(order) * (1 - holdout))]]
    test_mask = (when >= cut_value).to_numpy()
    train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    for part, rows in (("before", train), ("from", test)):
        if len(rows) == 0 or y[rows].min() == y[rows].max():
            raise BadDataError(
                f"the rows {part} {cut_value} by {column!r} lack one of the outcomes: "
                "out-of-time validation needs goods and bads on both sides"
            )
    return (
        train,
        test,
        {
            "time_column": column,
            "test_from": str(cut_value),
            "train_rows": len(train),
            "test_rows": len(test),
        },
    )


def _split(y: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    if holdout <= 0:
        return index, index
    if not holdout < 1:
        raise BadDataError("holdout must be a share below 1")
    train, test = train_test_split(index, test_size=holdout, stratify=y, random_state=seed)
    return np.sort(train), np.sort(test)


CALIBRATED = ("hosmer_lemeshow", "brier")  # holdout figures that calibration changes


def _calibrate_scorecard(
    model: ScorecardModel, matrix: np.ndarray, y: np.ndarray, seed: int
) -> dict[str, Any]:
    """Platt scaling of a scorecard on rows it did not train on: the log-odds of bad become
    shift + slope * log-odds (a slope below 1 undoes the overconfidence of bins and weights
    fit on the same rows). The Hosmer-Lemeshow test of the calibrated PDs is cross-fitted
    (calibrate on one half of the rows, test on the other, and back), so it is out of sample
    too."""
    from fenqi.risk import validation
    from fenqi.risk.recalibration import fit_shift_slope

    log_odds = model.log_odds_bad(matrix)
    shift, slope = fit_shift_slope(log_odds, y, fit_slope=True)
    halves = np.random.default_rng(seed).permutation(len(y)) % 2 == 0
    crossed = np.empty(len(y))
    for fit_rows in (halves, ~halves):
        a, b = fit_shift_slope(log_odds[fit_rows], y[fit_rows], fit_slope=True)
        crossed[~fit_rows] = 1.0 / (1.0 + np.exp(-(a + b * log_odds[~fit_rows])))
    return {
        "method": "platt",
        "shift": shift,
        "slope": slope,
        "rows": len(y),
        "brier": metrics.brier(y, crossed),
        "hosmer_lemeshow": validation.hosmer_lemeshow(y, crossed),
        "hosmer_lemeshow_uncalibrated": validation.hosmer_lemeshow(y, model.predict_pd(matrix)),
    }


def _calibrated(
    model: ScorecardModel, calibration: dict[str, Any], matrix: np.ndarray, y: np.ndarray
) -> ScorecardModel:
    """The model with the holdout's slope; the shift is fit again on `matrix` when the model
    was refit (its log-odds moved a little), so that its mean PD stays the bad rate there."""
    from fenqi.risk.recalibration import fit_shift_slope

    slope = calibration["slope"]
    if not slope > 0.05:  # the holdout says the scorecard barely ranks: leave it as it is
        return model
    shift, _ = fit_shift_slope(slope * model.log_odds_bad(matrix), y, fit_slope=False)
    return model.recalibrated(shift, slope)


def train_model(
    frame: pd.DataFrame,
    target_column: str,
    kind: ModelKind | str,
    registry: Path,
    clock: Clock,
    *,
    seed: int = 42,
    bad_value: str | None = None,
    exclude: Sequence[str] = (),
    holdout: float = 0.2,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    refit: bool = True,
    allow_protected: Sequence[str] = (),
    rejects: pd.DataFrame | None = None,
    reject_method: str = "fuzzy",
    time_column: str | None = None,
    calibrate: bool = True,
) -> LoadedModel:
    from fenqi.risk import validation

    kind = ModelKind(kind)
    say = progress or (lambda _message: None)
    say(f"checking {len(frame)} rows")
    if time_column is not None:
        exclude = [*exclude, time_column]
    prepared = prepare(frame, target_column, bad_value, exclude, allow_protected=allow_protected)
    out_of_time: dict[str, Any] | None = None
    if time_column is not None:
        train, test, out_of_time = _time_split(frame, time_column, prepared.y, holdout)
    else:
        train, test = _split(prepared.y, holdout, seed)
    reject_matrix = None
    if rejects is not None:
        reject_matrix = encode_frame(
            rejects.drop(columns=[target_column], errors="ignore"), prepared.specs
        )
        if len(reject_matrix) == 0:
            raise BadDataError("the rejects file has no rows")
    inference: dict[str, Any] | None = None

    def fit_on(rows: np.ndarray) -> RiskModel:
        nonlocal inference
        if reject_matrix is None:
            return fit(
                kind,
                prepared.matrix[rows],
                prepared.y[rows],
                prepared.specs,
                seed,
                params,
                progress,
            )
        model, inference = fit_with_rejects(
            kind,
            prepared.matrix[rows],
            prepared.y[rows],
            reject_matrix,
            prepared.specs,
            seed,
            params,
            progress,
            reject_method,
        )
        return model

    say(f"training {kind} on {len(train)} rows, {len(prepared.specs)} features")
    model = fit_on(train)
    say("measuring on held-out rows" if holdout > 0 else "measuring on training rows")
    test_pd = model.predict_pd(prepared.matrix[test])
    train_scores = model.scale.score_from_pd(model.predict_pd(prepared.matrix[train]))
    y_test = prepared.y[test]
    measured: dict[str, Any] = {
        "sample": ("out_of_time" if out_of_time else "holdout") if holdout > 0 else "training",
        "holdout_share": holdout,
        **({"out_of_time": out_of_time} if out_of_time else {}),
        **metrics.summary(y_test, test_pd).to_dict(),
        **validation.intervals(y_test, test_pd, seed=seed),
        "hosmer_lemeshow": validation.hosmer_lemeshow(y_test, test_pd),
        "psi_holdout_vs_train": metrics.psi(train_scores, model.scale.score_from_pd(test_pd))
        if holdout > 0
        else 0.0,
    }
    calibration = None
    if isinstance(model, ScorecardModel) and holdout > 0 and calibrate:
        say("calibrating the scorecard on held-out rows")
        calibration = _calibrate_scorecard(model, prepared.matrix[test], y_test, seed)
        measured.update(calibration=calibration, **{k: calibration[k] for k in CALIBRATED})
    refitted = refit and holdout > 0
    if refitted:
        say(f"refitting {kind} on all {len(prepared.y)} rows with the same settings")
        model = fit_on(np.arange(len(prepared.y)))
    if calibration is not None:
        rows = np.arange(len(prepared.y)) if refitted else test
        model = _calibrated(model, calibration, prepared.matrix[rows], prepared.y[rows])  # type: ignore[arg-type]
    all_scores = model.scale.score_from_pd(model.predict_pd(prepared.matrix))
    effective = getattr(model, "params", None)
    notes = [*prepared.notes, *getattr(model, "notes", ())]
    say("writing artifact")
    return save_model(
        model,
        Path(registry),
        clock,
        target=prepared.target,
        data_fingerprint=fingerprint_frame(frame),
        n_rows=len(frame),
        metrics=measured,
        params={
            "seed": seed,
            "holdout": holdout,
            "refit": refit,
            "calibrate": calibrate,
            "exclude": list(exclude),
            "allow_protected": list(allow_protected),
            **(effective.to_dict() if effective is not None else {}),
        },
        extra={
            "dropped_columns": [
                str(c)
                for c in frame.columns
                if c != target_column and c not in {s.name for s in prepared.specs}
            ],
            "refit_on_all_rows": refitted,
            "training_rows": len(prepared.y) if refitted else len(train),
            "training_bads": int(prepared.y.sum() if refitted else prepared.y[train].sum()),
            "warnings": notes,
            "reject_inference": inference,
            "score_reference": {
                "deciles": np.quantile(all_scores, np.linspace(0.1, 0.9, 9)).tolist()
            },
            "feature_reference": validation.feature_reference(prepared.matrix, prepared.specs),
        },
    )
