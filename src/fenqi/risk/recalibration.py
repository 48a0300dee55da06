"""Recalibrating a scorecard without refitting its bins.

A portfolio's bad rate moves (a new channel, a downturn) while the ranking a scorecard gives
still holds. Recalibration keeps every bin and weight of evidence and moves the log-odds of bad
to `shift + slope * old`, which moves the intercept (and, with a slope, scales the
coefficients); the integer points are derived again. Three ways to say where to:

- `bad_rate`: the new expected bad rate of the population the model was trained on; the shift
  is the prior correction logit(new) - logit(training bad rate) (slope 1);
- `odds_at`: (score, odds) - at this score the observed good:bad odds are now `odds` (slope 1);
- a labelled sample: the shift (and with `fit_slope` the slope) by maximum likelihood of the
  outcomes given the current log-odds.

The result is a new version in the same registry: a challenger (the registry's champion is
made explicit first, so the new version never goes live by being newest), whose manifest records
`recalibration` (from which version, how, the shift and slope, the bad rates). Every
recalibration is appended to `<registry>/recalibrations.jsonl`. It goes live only through the
promotion gate, which for a recalibration of the champion asks for better calibration on the
sample instead of a better AUC (the ranking is the champion's by construction).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fenqi.clock import Clock
from fenqi.risk import metrics, validation
from fenqi.risk.data import resolve_target, target_vector
from fenqi.risk.errors import BadDataError
from fenqi.risk.registry import LoadedModel, load_model, resolve, save_model
from fenqi.risk.scorecard import ScorecardModel

if TYPE_CHECKING:
    import pandas as pd

LOG = "recalibrations.jsonl"
NEWTON_STEPS = 100
SLOPE_MIN = 0.05  # a fitted slope below this would flatten the scorecard: refuse


@dataclass(frozen=True, slots=True)
class Recalibration:
    method: str  # bad_rate, odds_at or sample
    shift: float
    slope: float
    inputs: dict[str, Any]


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def for_bad_rate(training_bad_rate: float, bad_rate: float) -> Recalibration:
    if not 0 < bad_rate < 1:
        raise BadDataError(f"--bad-rate must be between 0 and 1, not {bad_rate}")
    if not 0 < training_bad_rate < 1:
        raise BadDataError("the model's manifest does not record a usable training bad rate")
    return Recalibration(
        "bad_rate",
        _logit(bad_rate) - _logit(training_bad_rate),
        1.0,
        {"bad_rate": bad_rate, "training_bad_rate": training_bad_rate},
    )


def for_odds_at(model: ScorecardModel, score: float, odds: float) -> Recalibration:
    """At `score` the model's odds are the scale's; observed odds there are now `odds`."""
    if not odds > 0 or not math.isfinite(score):
        raise BadDataError(f"--odds-at needs a score and positive good:bad odds, not {odds}")
    scale = model.scale
    model_log_odds_good = (score - scale.offset) / scale.factor
    return Recalibration(
        "odds_at",
        model_log_odds_good - math.log(odds),
        1.0,
        {"score": score, "odds": odds, "odds_before": math.exp(model_log_odds_good)},
    )


def fit_shift_slope(
    log_odds_bad: np.ndarray, y: np.ndarray, fit_slope: bool
) -> tuple[float, float]:
    """Maximum likelihood of y given `shift + slope * log_odds_bad` (Newton's method)."""
    x = np.asarray(log_odds_bad, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    shift, slope = 0.0, 1.0
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(shift + slope * x)))
        w = np.maximum(p * (1.0 - p), 1e-12)
        r = y - p
        if fit_slope:
            hessian = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
            step = np.linalg.solve(hessian, np.array([r.sum(), (r * x).sum()]))
        else:
            step = np.array([r.sum() / w.sum(), 0.0])
        shift, slope = shift + float(step[0]), slope + float(step[1])
        if np.max(np.abs(step)) < 1e-10:
            break
    return shift, slope


def for_sample(
    model: ScorecardModel, matrix: np.ndarray, y: np.ndarray, fit_slope: bool
) -> Recalibration:
    bads = int(y.sum())
    if bads == 0 or bads == len(y):
        raise BadDataError("the recalibration sample needs both good and bad outcomes")
    shift, slope = fit_shift_slope(model.log_odds_bad(matrix), y, fit_slope)
    if not slope >= SLOPE_MIN:
        raise BadDataError(
            f"the fitted slope is {slope:.3f}: on this sample the scorecard barely ranks; "
            "refit it instead of recalibrating"
        )
    return Recalibration(
        "sample",
        shift,
        slope,
        {"rows": len(y), "bads": bads, "bad_rate": bads / len(y), "fit_slope": fit_slope},
    )


def _source(path: Path) -> tuple[Path, LoadedModel]:
    """The version to recalibrate (a registry means its champion) and its registry."""
    from fenqi.risk.promotion import crown_current

    path = Path(path)
    registry = path.parent if (path / "manifest.json").is_file() else path
    loaded = load_model(resolve(path))
    crown_current(registry)  # the version deciding now stays the champion
    if not isinstance(loaded.model, ScorecardModel):
        raise BadDataError(
            f"{loaded.model_id} is a {loaded.model.kind}: recalibrate applies to scorecards "
            "(a GBM's calibrator is fit at training)"
        )
    return registry, loaded


def _shifted_deciles(
    model: ScorecardModel, how: Recalibration, deciles: list[float]
) -> list[float]:
    """The training score deciles as the recalibrated model scores the same people."""
    scale = model.scale
    log_odds = (scale.offset - np.asarray(deciles, dtype=np.float64)) / scale.factor
    moved = how.shift + how.slope * log_odds
    return [float(v) for v in np.rint(scale.offset - scale.factor * moved)]


def _from_sample(
    source: LoadedModel,
    frame: pd.DataFrame,
    target_column: str | None,
    bad_value: str | None,
    fit_slope: bool,
) -> tuple[Recalibration, np.ndarray, np.ndarray]:
    if target_column is None:
        raise BadDataError("--data needs --target")
    manifest = source.manifest
    named_by = "--bad-value"
    if bad_value is None and manifest["target"]["column"] == target_column:
        bad_value, named_by = manifest["target"]["bad_label"], "the model's bad label"
    target = resolve_target(frame, target_column, bad_value, named_by)
    y = target_vector(frame, target)
    matrix = source.matrix(frame)
    return for_sample(source.model, matrix, y, fit_slope), matrix, y  # type: ignore[arg-type]


KEPT = (
    "dropped_columns",
    "refit_on_all_rows",
    "training_rows",
    "training_bads",
    "warnings",
    "reject_inference",
    "feature_reference",
)


def recalibrate(
    model_path: Path | str,
    clock: Clock,
    *,
    by: str,
    bad_rate: float | None = None,
    odds_at: tuple[float, float] | None = None,
    frame: pd.DataFrame | None = None,
    target_column: str | None = None,
    bad_value: str | None = None,
    fit_slope: bool = False,
) -> tuple[LoadedModel, dict[str, Any]]:
    """Write the recalibrated scorecard as a new challenger version; return it and the audit
    record appended to `<registry>/recalibrations.jsonl`."""
    chosen = sum(x is not None for x in (bad_rate, odds_at, frame))
    if chosen != 1:
        raise BadDataError("give exactly one of --bad-rate, --odds-at or --data")
    registry, source = _source(Path(model_path))
    before: ScorecardModel = source.model  # type: ignore[assignment]
    manifest = source.manifest
    # Ranking figures stay; calibration figures of the old intercept would mislead.
    measured: dict[str, Any] = {
        k: v
        for k, v in manifest.get("metrics", {}).items()
        if k not in ("brier", "hosmer_lemeshow")
    }
    if bad_rate is not None:
        rows, bads = manifest.get("training_rows"), manifest.get("training_bads")
        training_rate = float(bads) / float(rows) if rows and bads is not None else float("nan")
        how = for_bad_rate(training_rate, bad_rate)
    elif odds_at is not None:
        how = for_odds_at(before, *odds_at)
    else:
        assert frame is not None
        how, matrix, y = _from_sample(source, frame, target_column, bad_value, fit_slope)
    after = before.recalibrated(how.shift, how.slope)
    if frame is not None:
        pd_after = after.predict_pd(matrix)
        measured = {
            **metrics.summary(y, pd_after).to_dict(),
            "sample": "recalibration",
            "hosmer_lemeshow": validation.hosmer_lemeshow(y, pd_after),
        }
    measured["recalibrated_from"] = source.model_id
    deciles = manifest.get("score_reference", {}).get("deciles") or []
    record: dict[str, Any] = {
        "at": clock.now().isoformat(),
        "by": by,
        "from": source.model_id,
        "method": how.method,
        "shift": how.shift,
        "slope": how.slope,
        "inputs": how.inputs,
    }
    extra = {k: manifest[k] for k in KEPT if k in manifest}
    saved = save_model(
        after,
        registry,
        clock,
        target=manifest["target"],
        data_fingerprint=manifest["training_data"]["fingerprint_sha256"],
        n_rows=int(manifest["training_data"]["rows"]),
        metrics=measured,
        params=manifest.get("params", {}),
        extra={
            **extra,
            "score_reference": {"deciles": _shifted_deciles(before, how, deciles)},
            "recalibration": record,
        },
    )
    record["to"] = saved.model_id
    with (registry / LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(record, default=str) + "\n")
    return saved, record
