"""Reading training data, finding the binary target, typing the features, encoding rows.

Nothing here knows any particular data set: a table is any CSV with a binary target column. A
feature is numeric (int, float, bool) or categorical (text). Every model sees the same encoding:
numeric values as float64 (missing = NaN), categories as their index in the training category
list (missing or never seen in training = NaN), so one float matrix feeds every model and the
single-row path never builds a DataFrame.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fenqi.risk.errors import BadDataError, FeatureMismatchError

if TYPE_CHECKING:
    import pandas as pd

# Labels that mean "the bad outcome" when a target has two text labels and no --bad-value.
# Not "1": in a 1/2 coding (e.g. the original Statlog German credit file) 1 means good.
BAD_LABELS = frozenset({"bad", "default", "defaulted", "yes", "true", "y", "event"})
# A text column whose values are numbers except for a few is a typing error, not a category.
NUMERIC_SHARE_MIN = 0.9
CATEGORIES_MAX = 1_000  # more distinct labels than this is an identifier, not a category
ROWS_MAX = 50_000_000


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    kind: FeatureKind
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": str(self.kind), "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSpec:
        return cls(str(raw["name"]), FeatureKind(raw["kind"]), tuple(raw.get("categories", ())))


@dataclass(frozen=True, slots=True)
class Target:
    """A binary target: y = 1 is the bad outcome (default), the event the PD estimates."""

    column: str
    bad_label: str
    good_label: str


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV; refuse a missing, empty or header-only file with a clear message."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise BadDataError(f"data file not found: {path}", path=str(path))
    try:
        frame = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise BadDataError(f"data file is empty: {path}", path=str(path)) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BadDataError(f"cannot parse {path} as CSV: {exc}", path=str(path)) from exc
    if frame.empty:
        raise BadDataError(f"data file has no rows: {path}", path=str(path))
    if len(frame) > ROWS_MAX:
        raise BadDataError(f"data file has {len(frame)} rows, more than {ROWS_MAX}")
    return frame


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def resolve_target(frame: pd.DataFrame, column: str, bad_value: str | None = None) -> Target:
    """Work out which of the target's two values is the bad outcome.

    0/1 (or False/True) targets: 1 is bad. Two text labels: `bad_value` if given, else the one
    label in BAD_LABELS (e.g. good/bad, no/yes); anything else needs an explicit `bad_value`.
    """
    if column not in frame.columns:
        raise BadDataError(
            f"target column {column!r} not found; columns are: "
            f"{', '.join(map(str, frame.columns))}",
            column=column,
        )
    values = frame[column]
    n_missing = int(values.isna().sum())
    if n_missing:
        raise BadDataError(
            f"target column {column!r} has {n_missing} missing values", column=column
        )
    labels = sorted({_label(v) for v in values.unique()})
    if len(labels) != 2:
        shown = ", ".join(labels[:10])
        raise BadDataError(
            f"target column {column!r} must have exactly two values, found {len(labels)}: {shown}",
            column=column,
        )
    if bad_value is not None:
        if bad_value not in labels:
            raise BadDataError(
                f"--bad-value {bad_value!r} is not a value of {column!r} ({', '.join(labels)})",
                column=column,
            )
        bad = bad_value
    elif labels == ["0", "1"] or [x.lower() for x in labels] == ["false", "true"]:
        bad = labels[1]
    else:
        known = [x for x in labels if x.lower() in BAD_LABELS]
        if len(known) != 1:
            raise BadDataError(
                f"cannot tell which value of {column!r} is the bad outcome ({', '.join(labels)}); "
                "pass --bad-value",
                column=column,
            )
        bad = known[0]
    good = labels[0] if labels[1] == bad else labels[1]
    return Target(column, bad, good)


def target_vector(frame: pd.DataFrame, target: Target) -> np.ndarray:
    if target.column not in frame.columns:
        raise BadDataError(f"target column {target.column!r} not found", column=target.column)
    values = frame[target.column]
    if values.isna().any():
        raise BadDataError(f"target column {target.column!r} has missing values")
    labels = values.map(_label)
    unknown = sorted(set(labels.unique()) - {target.bad_label, target.good_label})
    if unknown:
        raise BadDataError(
            f"target column {target.column!r} has values {unknown[:5]} besides "
            f"{target.good_label!r}/{target.bad_label!r}",
            column=target.column,
        )
    y = (labels == target.bad_label).to_numpy(dtype=np.int8)
    if y.min() == y.max():
        raise BadDataError(f"target column {target.column!r} has only one class in this data")
    return y


IDENTIFIER_ROWS_MIN = 50


def _looks_like_identifier(series: pd.Series) -> bool:
    """Whole numbers, all different: a row number or record id (also in a random sample of
    one), which would let a model memorise rows. Amounts repeat (zeros, round sums); ids do not.
    """
    import pandas as pd

    if not pd.api.types.is_integer_dtype(series) or series.isna().any():
        return False
    return len(series) >= IDENTIFIER_ROWS_MIN and bool(series.is_unique)


def infer_features(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[FeatureSpec]:
    """Type each column as numeric or categorical; refuse columns that are mistyped.

    Dropped without asking: the excluded columns, constant columns and identifiers (whole
    numbers that are all different), which carry no information about the applicant.
    """
    import pandas as pd

    specs: list[FeatureSpec] = []
    for name in frame.columns:
        if name in exclude:
            continue
        series = frame[name]
        if series.nunique(dropna=True) <= 1 or _looks_like_identifier(series):
            continue
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            specs.append(FeatureSpec(str(name), FeatureKind.NUMERIC))
            continue
        present = series.dropna().astype(str).str.strip()
        numeric = pd.to_numeric(present, errors="coerce")
        share = float(numeric.notna().mean()) if len(present) else 0.0
        if share >= NUMERIC_SHARE_MIN:
            bad = present[numeric.isna()]
            raise BadDataError(
                f"column {name!r} is numeric but has {len(bad)} non-numeric values, "
                f"e.g. {bad.iloc[0]!r} at row {int(bad.index[0]) + 2}",
                column=str(name),
            )
        categories = tuple(sorted(present.unique()))
        if len(categories) > CATEGORIES_MAX:
            raise BadDataError(
                f"column {name!r} has {len(categories)} distinct text values (identifier?); "
                "exclude it",
                column=str(name),
            )
        specs.append(FeatureSpec(str(name), FeatureKind.CATEGORICAL, categories))
    if not specs:
        raise BadDataError("no usable feature columns besides the target")
    return specs


def check_columns(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> None:
    """Refuse a frame that lacks a model feature or carries text in a numeric feature."""
    import pandas as pd

    missing = [s.name for s in specs if s.name not in frame.columns]
    if missing:
        raise FeatureMismatchError(
            f"input lacks model features: {', '.join(missing)}", missing=missing
        )
    mistyped: list[str] = []
    for spec in specs:
        series = frame[spec.name]
        if spec.kind is FeatureKind.NUMERIC and not (
            pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        ):
            present = series.dropna()
            if pd.to_numeric(present.astype(str).str.strip(), errors="coerce").isna().any():
                mistyped.append(spec.name)
    if mistyped:
        raise FeatureMismatchError(
            f"numeric model features hold non-numeric values: {', '.join(mistyped)}",
            mistyped=mistyped,
        )


def encode_frame(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> np.ndarray:
    """The float matrix every model scores: one column per feature, in spec order."""
    import pandas as pd

    check_columns(frame, specs)
    out = np.empty((len(frame), len(specs)), dtype=np.float64)
    for j, spec in enumerate(specs):
        series = frame[spec.name]
        if spec.kind is FeatureKind.NUMERIC:
            out[:, j] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        else:
            index = {c: float(i) for i, c in enumerate(spec.categories)}
            labels = series.astype("string").str.strip()
            out[:, j] = labels.map(index).astype("Float64").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
    return out


class RecordEncoder:
    """Encodes one application (a mapping of feature name to value) without pandas."""

    def __init__(self, specs: Sequence[FeatureSpec]) -> None:
        self.specs = tuple(specs)
        self._index = [
            {c: float(i) for i, c in enumerate(s.categories)} if s.kind is FeatureKind.CATEGORICAL
            else None
            for s in self.specs
        ]

    def encode(self, record: Mapping[str, Any]) -> np.ndarray:
        missing = [s.name for s in self.specs if s.name not in record]
        if missing:
            raise FeatureMismatchError(
                f"application lacks model features: {', '.join(missing)}", missing=missing
            )
        row = np.empty(len(self.specs), dtype=np.float64)
        mistyped: list[str] = []
        for j, (spec, index) in enumerate(zip(self.specs, self._index, strict=True)):
            value = record[spec.name]
            if value is None:
                row[j] = math.nan
            elif index is None:
                try:
                    row[j] = float(value)
                except (TypeError, ValueError):
                    mistyped.append(spec.name)
            else:
                row[j] = index.get(str(value).strip(), math.nan)
        if mistyped:
            raise FeatureMismatchError(
                f"numeric model features hold non-numeric values: {', '.join(mistyped)}",
                mistyped=mistyped,
            )
        return row


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """SHA-256 over the column names and the row hashes: names the exact training data."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def fingerprint_record(record: Mapping[str, Any]) -> str:
    """SHA-256 of an application's canonical JSON: what a decision record keeps of its inputs."""
    import json

    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
