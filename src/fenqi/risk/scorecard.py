"""Credit scorecard: optimal binning (optbinning), WoE logistic regression, points scaling.

Training uses optbinning only to find the bins; scoring uses the bin tables kept here (splits,
category groups, weight of evidence), so a saved scorecard is plain JSON and a single row scores
without pandas. Missing values get their own bin, and so does each special value (codes such
as -7 "no bureau record", -8 "no usable trade", -9 "not asked": each its own bin and WoE).

No characteristic ships with a wrong sign (a coefficient that gives a riskier bin more points):
by default such characteristics are dropped one at a time and the regression refit
(`drop_wrong_sign=False` keeps them, with a warning in the manifest). With every sign right, a
characteristic's points fall as its bins' bad rates rise, so the reason codes are true: for each
characteristic, the points the applicant lost against the best bin of that characteristic seen
in training; the largest losses are the reasons, and a characteristic on which the applicant is
in the best bin is never one.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fenqi.risk.data import FeatureKind, FeatureSpec
from fenqi.risk.errors import ArtifactError, BadDataError
from fenqi.risk.model import REASONS_MAX, Explained, top_reasons
from fenqi.risk.scaling import ScoreScale

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ScorecardParams:
    # IV below 0.02 is conventionally "not predictive", but on real data the weak characteristics
    # still add lift together (measured in bench/risk.py), so selection is opt-in: raise min_iv.
    min_iv: float = 0.0
    max_iv: float = 5.0  # above this a characteristic is suspect (target leak)
    # "auto": optbinning picks ascending or descending, or a single peak/valley where the data
    # show one (e.g. "paid in full" vs "revolving" vs "late" codes). "auto_asc_desc" forces a
    # monotone trend. Pre-binning as optbinning's defaults (20 pre-bins of at least 5%): a 4%
    # minimum measured better on one data set's holdout and worse in 5-fold CV on both.
    monotonic_trend: str = "auto"
    max_n_prebins: int = 20
    min_prebin_size: float = 0.05
    special_codes: tuple[float, ...] = ()
    # L2 penalty on the coefficients per training row: the regression minimises the mean
    # log-loss + l2 / 2 * |beta|^2 (scikit-learn's C = 1 / (l2 * rows)), so the same setting
    # means the same shrinkage on 1,000 rows or 1,000,000. It keeps correlated characteristics
    # from trading large opposite coefficients: 0.01 gained 0.001-0.002 AUC in 5-fold CV on
    # both benchmark data sets over scikit-learn's C = 1 (bench/scorecard_vs_optbinning.py).
    l2: float = 0.01
    regularization_c: float | None = None  # scikit-learn's C, overrides l2 when set
    drop_wrong_sign: bool = True  # refit without characteristics of the wrong sign
    # feature -> +1 (risk rises with it: bins' bad rate ascending) or -1 (descending)
    monotone: dict[str, int] = field(default_factory=dict)
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0
    integer_points: bool = True  # whole points per bin (artifacts before them: False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["special_codes"] = list(self.special_codes)
        return out


@dataclass(slots=True)
class Characteristic:
    """One feature's bins: weight of evidence per bin, and the labels shown in the table."""

    name: str
    kind: str
    splits: list[float] = field(default_factory=list)  # numeric: bin edges
    woe: list[float] = field(default_factory=list)  # numeric: per bin; categorical: per code
    labels: list[str] = field(default_factory=list)  # human-readable bin labels (table only)
    bin_of_code: list[int] = field(default_factory=list)  # categorical: code -> bin index
    woe_bins: list[float] = field(default_factory=list)  # categorical: per bin
    counts: list[int] = field(default_factory=list)
    event_rates: list[float] = field(default_factory=list)
    woe_special: float = 0.0  # artifacts before one bin per special value: one shared bin
    woe_missing: float = 0.0
    iv: float = 0.0
    special_values: list[float] = field(default_factory=list)  # one bin per special value
    woe_specials: list[float] = field(default_factory=list)
    special_counts: list[int] = field(default_factory=list)
    special_event_rates: list[float] = field(default_factory=list)
    missing_count: int = -1  # -1: not recorded (older artifacts)
    missing_event_rate: float = 0.0

    def observed_woes(self) -> list[float]:
        """The WoE of every bin that had rows in training (the candidates for the best bin)."""
        out = list(self.woe if self.kind == FeatureKind.NUMERIC else self.woe_bins or self.woe)
        if self.missing_count != 0:
            out.append(self.woe_missing)
        if self.special_values:
            out += [w for w, c in zip(self.woe_specials, self.special_counts, strict=True) if c]
        elif self.missing_count < 0:
            out.append(self.woe_special)
        return out

    def woe_with_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Every bin's WoE and its training rows (for rounding points where rows are)."""
        regular = self.woe if self.kind == FeatureKind.NUMERIC else self.woe_bins or self.woe
        counts = list(self.counts) if len(self.counts) == len(regular) else [1] * len(regular)
        woes = [*regular, *self.woe_specials, self.woe_missing]
        counts += [*self.special_counts, max(self.missing_count, 0)]
        return np.asarray(woes, dtype=np.float64), np.asarray(counts, dtype=np.float64)

    def woe_of(self, column: np.ndarray, special_codes: np.ndarray) -> np.ndarray:
        out = np.empty(len(column), dtype=np.float64)
        missing = np.isnan(column)
        if self.kind == FeatureKind.NUMERIC:
            index = np.searchsorted(np.asarray(self.splits), column, side="right")
            out[:] = np.asarray(self.woe)[np.minimum(index, len(self.woe) - 1)]
            if self.special_values:
                for value, woe in zip(self.special_values, self.woe_specials, strict=True):
                    out[column == value] = woe
            elif len(special_codes):
                out[np.isin(column, special_codes)] = self.woe_special
        else:
            codes = np.where(missing, 0, column).astype(np.int64)
            out[:] = np.asarray(self.woe)[codes]
        out[missing] = self.woe_missing
        return out


def _bin_feature(
    values: np.ndarray,
    y: np.ndarray,
    spec: FeatureSpec,
    params: ScorecardParams,
    weight: np.ndarray | None = None,
) -> Characteristic:
    from optbinning import OptimalBinning

    specials: dict[str, list[float]] | None = None
    if spec.kind is FeatureKind.NUMERIC and params.special_codes:
        specials = {f"{c:g}": [c] for c in params.special_codes}
    if spec.kind is FeatureKind.NUMERIC:
        x: np.ndarray = values
        dtype = "numerical"
        trend = {1: "ascending", -1: "descending"}.get(
            params.monotone.get(spec.name, 0), params.monotonic_trend
        )
    else:
        labels = np.array(spec.categories, dtype=object)
        x = np.array(
            [labels[int(c)] if not math.isnan(c) else np.nan for c in values], dtype=object
        )
        dtype = "categorical"
        trend = "auto"  # categories have no order, so only the event-rate order applies
    binning = OptimalBinning(
        name=spec.name,
        dtype=dtype,
        monotonic_trend=trend,
        max_n_prebins=params.max_n_prebins,
        min_prebin_size=params.min_prebin_size,
        special_codes=specials,
    )
    with warnings.catch_warnings():
        # optbinning's table builder trips a pandas deprecation (dtype upcast on the "Totals"
        # row); harmless for us, and not ours to fix.
        warnings.filterwarnings("ignore", module=r"optbinning\..*")
        binning.fit(x, y, sample_weight=weight)
        table = binning.binning_table.build()
    rows = table.drop(index="Totals")
    n_special = len(specials) if specials else 1
    regular = rows.iloc[: -(n_special + 1)]
    special_rows, missing = rows.iloc[-(n_special + 1) : -1], rows.iloc[-1]
    w = np.ones(len(y)) if weight is None else weight
    totals = (float(np.sum(w * y)), float(np.sum(w * (1 - y))))
    char = Characteristic(
        name=spec.name,
        kind=str(spec.kind),
        iv=float(binning.binning_table.iv),
        woe_missing=_woe(missing, totals),
        counts=[int(c) for c in regular["Count"]],
        event_rates=[float(r) for r in regular["Event rate"]],
        labels=[str(b) for b in regular["Bin"]],
        missing_count=int(missing["Count"]),
        missing_event_rate=_event_rate(missing),
    )
    if specials:
        char.special_values = [float(c) for c in params.special_codes]
        char.woe_specials = [_woe(r, totals) for _, r in special_rows.iterrows()]
        char.special_counts = [int(r["Count"]) for _, r in special_rows.iterrows()]
        char.special_event_rates = [_event_rate(r) for _, r in special_rows.iterrows()]
    bin_woe = [float(w) for w in regular["WoE"]]
    if spec.kind is FeatureKind.NUMERIC:
        char.splits = [float(s) for s in binning.splits]
        char.woe = bin_woe
        assert len(char.woe) == len(char.splits) + 1
    else:
        position = {c: i for i, c in enumerate(spec.categories)}
        bin_of_code = [-1] * len(spec.categories)
        for b, group in enumerate(binning.splits):
            for category in group:
                bin_of_code[position[str(category)]] = b
        char.bin_of_code = bin_of_code
        char.woe_bins = bin_woe
        # A category too rare to bin behaves like a missing value.
        char.woe = [bin_woe[b] if b >= 0 else char.woe_missing for b in bin_of_code]
    return char


NUDGES = np.linspace(-0.5, 0.5, 101)[:-1]


def _rounding_nudge(raw: np.ndarray, counts: np.ndarray) -> float:
    """The shift in [-0.5, 0.5) with the least row-weighted squared rounding error."""
    if not counts.sum() > 0:
        return 0.0
    moved = raw[None, :] + NUDGES[:, None]
    errors = ((np.rint(moved) - moved) ** 2 * counts[None, :]).sum(axis=1)
    best = np.flatnonzero(errors <= errors.min() + 1e-12)
    return float(NUDGES[best[np.argmin(np.abs(NUDGES[best]))]])


def _event_rate(row: Any) -> float:
    count = int(row["Count"])
    return float(row["Event"]) / count if count else 0.0


def _woe(row: Any, totals: tuple[float, float]) -> float:
    """ln(good share / bad share) of a special or missing bin (optbinning's sign), with half a
    row added to an empty class so that a pure bin gets a finite WoE (optbinning gives 0)."""
    count, bad = float(row["Count"]), float(row["Event"])
    good = count - bad
    if count == 0:
        return 0.0
    total_bad, total_good = totals
    if bad == 0 or good == 0:
        bad, good, total_bad, total_good = bad + 0.5, good + 0.5, total_bad + 0.5, total_good + 0.5
    return math.log((good / total_good) / (bad / total_bad))


class ScorecardModel:
    kind = "scorecard"

    def __init__(
        self,
        specs: Sequence[FeatureSpec],
        characteristics: list[Characteristic],
        coefficients: np.ndarray,
        intercept: float,
        params: ScorecardParams,
    ) -> None:
        self.specs = tuple(specs)
        self.characteristics = characteristics
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        self.intercept = float(intercept)
        self.params = params
        self.scale = ScoreScale(params.base_score, params.base_odds, params.pdo)
        self._columns = [
            next(j for j, s in enumerate(self.specs) if s.name == c.name) for c in characteristics
        ]
        self._special = np.asarray(params.special_codes, dtype=np.float64)
        self._names = tuple(c.name for c in characteristics)
        assert len(self.coefficients) == len(characteristics)
        # Points per characteristic: -factor * (beta * woe + intercept / k) + offset / k, rounded
        # to a whole number as published scorecards are; the score is the sum of these integer
        # points and the PD is read from that score on the scale, so a table, a score and a PD
        # always agree. The best bin of each characteristic is its maximum.
        self._shift = self._shifts()
        self._max_points = np.array(
            [
                max(self._points(j, np.asarray(c.observed_woes())))
                for j, c in enumerate(characteristics)
            ]
        )
        wrong = [c.name for c, b in zip(characteristics, self.coefficients, strict=True) if b > 0]
        self.notes: tuple[str, ...] = (
            (
                f"characteristics kept with the wrong sign (riskier bins get more points; their "
                f"reason codes are unreliable): {', '.join(wrong)}",
            )
            if wrong
            else ()
        )

    def _points(self, j: int, woe: np.ndarray) -> np.ndarray:
        return self._round(-self.scale.factor * self.coefficients[j] * woe + self._shift[j])

    def _shown(self, points: float) -> int | float:
        return int(points) if self.params.integer_points else round(points, 2)

    def _round(self, points: np.ndarray) -> np.ndarray:
        return np.rint(points) if self.params.integer_points else points

    def _shifts(self) -> np.ndarray:
        """Each characteristic's share of the constant, nudged by under half a point so that
        its bins' rounded points stay closest to the unrounded ones where the training rows
        are (rounding every bin by up to half a point blurs the ranking otherwise); the nudges
        are taken back in whole points, so the constant's total stays within half a point."""
        k = len(self.characteristics)
        nominal = (self.scale.offset - self.scale.factor * self.intercept) / max(k, 1)
        shifts = np.full(k, nominal)
        if not self.params.integer_points:
            return shifts
        for j, char in enumerate(self.characteristics):
            woes, counts = char.woe_with_counts()
            raw = -self.scale.factor * self.coefficients[j] * woes + nominal
            shifts[j] += _rounding_nudge(raw, counts)
        if k:
            shifts[0] -= np.rint(shifts.sum() - nominal * k)
        return shifts

    def recalibrated(self, shift: float, slope: float = 1.0) -> ScorecardModel:
        """The same bins and weights of evidence, with log-odds of bad `shift + slope * old`:
        every coefficient times `slope`, the intercept `shift + slope * intercept`; the integer
        points are derived again. A positive slope keeps the order of the bins' points."""
        if not (slope > 0 and math.isfinite(slope) and math.isfinite(shift)):
            raise BadDataError(
                f"a recalibration needs a finite shift and a positive slope, not {slope}"
            )
        model = ScorecardModel(
            self.specs,
            self.characteristics,
            self.coefficients * slope,
            shift + slope * self.intercept,
            self.params,
        )
        model.notes = self.notes
        return model

    def woe_matrix(self, matrix: np.ndarray) -> np.ndarray:
        out = np.empty((matrix.shape[0], len(self.characteristics)), dtype=np.float64)
        for j, (char, col) in enumerate(zip(self.characteristics, self._columns, strict=True)):
            out[:, j] = char.woe_of(matrix[:, col], self._special)
        return out

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """The published score: the sum of each characteristic's integer points."""
        total: np.ndarray = self.points_matrix(matrix).sum(axis=1)
        return total

    def log_odds_bad(self, matrix: np.ndarray) -> np.ndarray:
        return (self.scale.offset - self.score(matrix)) / self.scale.factor

    def predict_pd(self, matrix: np.ndarray) -> np.ndarray:
        return self.scale.pd_from_score(self.score(matrix))

    def points_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Points per row and characteristic: whole numbers (held in floats), except in an
        artifact saved before integer points."""
        woe = self.woe_matrix(matrix)
        return self._round(-self.scale.factor * woe * self.coefficients + self._shift)

    def batch_reasons(self, matrix: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """Characteristic names, points lost per characteristic against its best bin for every
        row, and the rows' PDs (from the same points)."""
        points = self.points_matrix(matrix)
        pd_ = self.scale.pd_from_score(points.sum(axis=1))
        return self._names, self._max_points - points, pd_

    def explain_row(self, row: np.ndarray, top_n: int = REASONS_MAX) -> Explained:
        points = self.points_matrix(row.reshape(1, -1))[0]
        score = float(points.sum())
        pd_ = float(self.scale.pd_from_score(np.array([score]))[0])
        reasons = top_reasons(self._names, self._max_points - points, top_n)
        return Explained(pd=pd_, score=round(score), reasons=reasons)

    def table(self) -> list[dict[str, Any]]:
        """The scorecard table: one row per bin with its WoE and its integer points."""
        rows: list[dict[str, Any]] = []
        for j, char in enumerate(self.characteristics):
            woe_bins = char.woe if char.kind == FeatureKind.NUMERIC else char.woe_bins
            entries: list[tuple[str, int | None, float | None, float]] = [
                (label, count, rate, woe)
                for label, count, rate, woe in zip(
                    char.labels, char.counts, char.event_rates, woe_bins, strict=True
                )
            ]
            if char.special_values:
                entries += [
                    (f"Special {value:g}", count, rate, woe)
                    for value, count, rate, woe in zip(
                        char.special_values,
                        char.special_counts,
                        char.special_event_rates,
                        char.woe_specials,
                        strict=True,
                    )
                ]
            elif char.missing_count < 0:
                entries.append(("Special", None, None, char.woe_special))
            entries.append(
                (
                    "Missing",
                    None if char.missing_count < 0 else char.missing_count,
                    None if char.missing_count < 0 else char.missing_event_rate,
                    char.woe_missing,
                )
            )
            for label, count, rate, woe in entries:
                rows.append(
                    {
                        "characteristic": char.name,
                        "bin": label,
                        "count": count,
                        "event_rate": rate,
                        "woe": round(woe, 6),
                        "iv": round(char.iv, 6),
                        "coefficient": round(float(self.coefficients[j]), 6),
                        "points": self._shown(float(self._points(j, np.array([woe]))[0])),
                    }
                )
        return rows

    def save(self, directory: Path) -> dict[str, Any]:
        payload = {
            "characteristics": [asdict(c) for c in self.characteristics],
            "coefficients": self.coefficients.tolist(),
            "intercept": self.intercept,
            "params": self.params.to_dict(),
        }
        (directory / "scorecard.json").write_text(json.dumps(payload))
        export_table(self, directory / "scorecard_table.csv", directory / "scorecard_table.html")
        return {"model_file": "scorecard.json"}

    @classmethod
    def load(cls, directory: Path, specs: Sequence[FeatureSpec]) -> ScorecardModel:
        try:
            payload = json.loads((directory / "scorecard.json").read_text())
            params = ScorecardParams(
                **{
                    "drop_wrong_sign": False,  # the default of artifacts that do not record it
                    "integer_points": False,  # older artifacts score as they were validated
                    **payload["params"],
                    "special_codes": tuple(payload["params"]["special_codes"]),
                }
            )
            chars = [Characteristic(**c) for c in payload["characteristics"]]
            return cls(
                specs, chars, np.asarray(payload["coefficients"]), payload["intercept"], params
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"cannot load scorecard from {directory}: {exc}") from exc


def export_table(model: ScorecardModel, csv_path: Path, html_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(model.table())
    frame.to_csv(csv_path, index=False)
    html_path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Scorecard</title>"
        f"<h1>Scorecard</h1><p>{model.scale.base_score:g} points at {model.scale.base_odds:g}:1 "
        f"odds, {model.scale.pdo:g} points to double the odds.</p>"
        + frame.to_html(index=False, na_rep="", border=0)
    )


def _inverse_penalty(params: ScorecardParams, y: np.ndarray, weight: np.ndarray | None) -> float:
    """scikit-learn's C for the per-row penalty `l2` (or the explicit `regularization_c`)."""
    if params.regularization_c is not None:
        return params.regularization_c
    if params.l2 <= 0:
        return 1e12  # no penalty
    rows = float(len(y) if weight is None else np.sum(weight))
    return 1.0 / (params.l2 * rows)


def fit_scorecard(
    matrix: np.ndarray,
    y: np.ndarray,
    specs: Sequence[FeatureSpec],
    params: ScorecardParams | None = None,
    progress: Progress | None = None,
    weight: np.ndarray | None = None,
) -> ScorecardModel:
    """Bin every feature, keep those with enough information value, fit the regression.

    A characteristic whose coefficient comes out with the wrong sign (more points for a riskier
    bin) is dropped and the regression refit (`drop_wrong_sign`, default): such a scorecard
    could not be explained.
    """
    from sklearn.linear_model import LogisticRegression

    params = params or ScorecardParams()
    unknown = sorted(set(params.monotone) - {s.name for s in specs})
    if unknown:
        raise BadDataError(f"monotone trends name unknown features: {unknown}")
    chars: list[Characteristic] = []
    for j, spec in enumerate(specs):
        if progress:
            progress(f"binning {spec.name}")
        char = _bin_feature(matrix[:, j], y, spec, params, weight)
        if params.min_iv <= char.iv <= params.max_iv:
            chars.append(char)
    if not chars:
        raise BadDataError(f"no feature reaches the minimum information value {params.min_iv}")
    special = np.asarray(params.special_codes, dtype=np.float64)
    columns = {s.name: j for j, s in enumerate(specs)}
    dropped: list[str] = []
    for _ in range(len(chars)):
        if progress:
            progress(f"logistic regression on {len(chars)} characteristics")
        woe = np.column_stack([c.woe_of(matrix[:, columns[c.name]], special) for c in chars])
        regression = LogisticRegression(C=_inverse_penalty(params, y, weight), max_iter=1000)
        regression.fit(woe, y, sample_weight=weight)
        beta = regression.coef_[0]
        # optbinning's WoE is ln(good share / bad share): a sound characteristic has beta < 0.
        wrong = [i for i, b in enumerate(beta) if b > 0]
        if not params.drop_wrong_sign or not wrong or len(chars) == 1:
            break
        worst = max(wrong, key=lambda i: beta[i])
        dropped.append(chars.pop(worst).name)
    model = ScorecardModel(specs, chars, beta, float(regression.intercept_[0]), params)
    if dropped:
        model.notes = (
            *model.notes,
            "characteristics dropped for a wrong-sign coefficient "
            f"(given the others, riskier bins would get more points): "
            f"{', '.join(dropped)}",
        )
    return model
