"""Reading training data, finding the binary target, typing the features, encoding rows.

Nothing here knows any particular data set: a table is any CSV with a binary target column. A
feature is numeric (int, float, bool) or categorical (text). Every model sees the same encoding:
numeric values as float64 (missing = NaN), categories as their index in the training category
list (missing or never seen in training = NaN), so one float matrix feeds every model and the
single-row path never builds a DataFrame.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
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
# A text column that is mostly numbers (at least this share) with many distinct numbers is a
# numeric column with some text in it, not a category: refused (clean it or pass --na-values).
MOSTLY_NUMERIC_SHARE = 0.5
CODES_MAX = 20  # a mostly-numeric column with at most this many distinct numbers is a code list
# High-cardinality categories: with more labels than HIGH_CARDINALITY, only labels seen in at
# least max(RARE_MIN_ROWS, RARE_MIN_SHARE of the rows) are kept (CATEGORIES_KEPT_MAX most
# frequent at most); the rest are treated like a label never seen in training (missing), and a
# warning says so. Grouping hundreds of rare labels by their observed bad rate overfits.
HIGH_CARDINALITY = 20
RARE_MIN_ROWS = 50
RARE_MIN_SHARE = 0.005
CATEGORIES_KEPT_MAX = 100
ROWS_MAX = 50_000_000
PERCENT_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)\s*%$")
ENCODING_HINT = "pass --encoding (e.g. gbk, gb18030, latin-1)"


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    kind: FeatureKind
    categories: tuple[str, ...] = ()
    # "percent": a numeric feature written as text like "83.70%", read as the fraction 0.837
    # (a number given for it is taken as the fraction already).
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": str(self.kind),
            "categories": list(self.categories),
        }
        if self.unit:
            out["unit"] = self.unit
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            str(raw["name"]),
            FeatureKind(raw["kind"]),
            tuple(raw.get("categories", ())),
            str(raw.get("unit", "")),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """A binary target: y = 1 is the bad outcome (default), the event the PD estimates."""

    column: str
    bad_label: str
    good_label: str


def read_table(
    path: Path | str,
    *,
    encoding: str | None = None,
    na_values: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a CSV (or Parquet: `.parquet`/`.pq`); refuse a missing, empty or header-only file,
    a file that is not in `encoding` (UTF-8 by default), and duplicate column names (pandas
    would rename them `x.1` silently). `na_values`: extra strings that mean "missing"."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise BadDataError(f"data file not found: {path}", path=str(path))
    if path.suffix.lower() in {".parquet", ".pq"}:
        import polars as pl

        try:
            parquet = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise BadDataError(f"cannot read {path} as Parquet: {exc}", path=str(path)) from exc
        _check_names(parquet.columns, path)
        # Column by column through numpy: no pyarrow needed.
        frame = pd.DataFrame({name: parquet[name].to_numpy() for name in parquet.columns})
    else:
        chosen = encoding or "utf-8"
        try:
            "".encode(chosen)
        except LookupError as exc:
            raise BadDataError(f"unknown encoding {chosen!r}", path=str(path)) from exc
        try:
            with path.open(newline="", encoding=chosen) as handle:
                header = next(csv.reader(handle), None)
            frame = pd.read_csv(
                path, low_memory=False, encoding=chosen, na_values=list(na_values) or None
            )
        except pd.errors.EmptyDataError as exc:
            raise BadDataError(f"data file is empty: {path}", path=str(path)) from exc
        except UnicodeDecodeError as exc:
            raise BadDataError(
                f"{path} is not {chosen} text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}); " + ENCODING_HINT,
                path=str(path),
            ) from exc
        except pd.errors.ParserError as exc:
            raise BadDataError(f"cannot parse {path} as CSV: {exc}", path=str(path)) from exc
        if header is not None:
            _check_names(header, path)
    if frame.empty:
        raise BadDataError(f"data file has no rows: {path}", path=str(path))
    if len(frame) > ROWS_MAX:
        raise BadDataError(f"data file has {len(frame)} rows, more than {ROWS_MAX}")
    return frame


def _check_names(names: Sequence[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for name in names:
        key = name.strip().lstrip("\ufeff")
        seen[key] = seen.get(key, 0) + 1
    duplicated = sorted(n for n, count in seen.items() if count > 1)
    if duplicated:
        raise BadDataError(
            f"{path} has duplicate column names: {', '.join(map(repr, duplicated))}; "
            "rename them so each column is named once",
            path=str(path),
            columns=duplicated,
        )


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def resolve_target(
    frame: pd.DataFrame,
    column: str,
    bad_value: str | None = None,
    bad_value_source: str = "--bad-value",
) -> Target:
    """Work out which of the target's two values is the bad outcome.

    0/1 (or False/True) targets: 1 is bad. Two text labels: `bad_value` if given, else the one
    label in BAD_LABELS (e.g. good/bad, no/yes); anything else needs an explicit `bad_value`.
    `bad_value_source` names where `bad_value` came from, for the error message (e.g. the
    model's manifest when evaluating).
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
                f"{bad_value_source} {bad_value!r} is not a value of {column!r} "
                f"({', '.join(labels)})",
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


def _first_row(mask: Any) -> int:
    """The CSV line number (header = 1) of the first True in a boolean Series."""
    return int(mask.index[mask.to_numpy().nonzero()[0][0]]) + 2


def infer_features(
    frame: pd.DataFrame,
    exclude: Sequence[str] = (),
    notes: list[str] | None = None,
) -> list[FeatureSpec]:
    """Type each column as numeric or categorical; refuse columns that are mistyped.

    Dropped without asking: the excluded columns, constant columns and identifiers (whole
    numbers that are all different, or text labels that are all different), which carry no
    information about the applicant. Conversions and warnings are appended to `notes`:
    percentages written as text ("83.70%") become numeric fractions; rare labels of a
    high-cardinality text column are treated as unseen (missing).
    """
    import pandas as pd

    notes = notes if notes is not None else []
    specs: list[FeatureSpec] = []
    for name in frame.columns:
        if name in exclude:
            continue
        series = frame[name]
        if series.nunique(dropna=True) <= 1 or _looks_like_identifier(series):
            continue
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            if not pd.api.types.is_bool_dtype(series):
                infinite = pd.Series(
                    np.isinf(series.to_numpy(dtype=np.float64)), index=series.index
                )
                if infinite.any():
                    raise BadDataError(
                        f"column {name!r} has {int(infinite.sum())} infinite values (first at "
                        f"row {_first_row(infinite)}); replace them with a number, a special "
                        "code or an empty cell",
                        column=str(name),
                    )
            specs.append(FeatureSpec(str(name), FeatureKind.NUMERIC))
            continue
        present = series.dropna().astype(str).str.strip()
        present = present[present != ""]
        if len(present) and bool(present.str.fullmatch(PERCENT_RE).all()):
            specs.append(FeatureSpec(str(name), FeatureKind.NUMERIC, unit="percent"))
            notes.append(f'column {name!r}: percentages read as fractions ("83.70%" -> 0.837)')
            continue
        numeric = pd.to_numeric(present, errors="coerce")
        share = float(numeric.notna().mean()) if len(present) else 0.0
        distinct_numbers = int(numeric.nunique(dropna=True))
        if share >= NUMERIC_SHARE_MIN or (
            share >= MOSTLY_NUMERIC_SHARE and distinct_numbers > CODES_MAX
        ):
            bad = present[numeric.isna()]
            others = [repr(v) for v in bad.value_counts().index[:5] if v != bad.iloc[0]]
            raise BadDataError(
                f"column {name!r} is numeric but has {len(bad)} non-numeric values, e.g. "
                f"{bad.iloc[0]!r} at row {int(bad.index[0]) + 2}"
                + (f" (also {', '.join(others)})" if others else "")
                + f"; {len(present) - len(bad)} of {len(present)} values are numbers. Clean "
                "them, pass --na-values for those meaning missing, or --exclude the column",
                column=str(name),
            )
        counts = present.value_counts()
        if len(counts) > HIGH_CARDINALITY:
            if len(present) >= IDENTIFIER_ROWS_MIN and int(counts.iloc[0]) == 1:
                notes.append(f"column {name!r} dropped: every text value differs (identifier)")
                continue
            rare_min = max(RARE_MIN_ROWS, math.ceil(RARE_MIN_SHARE * len(series)))
            kept = counts[counts >= rare_min].index[:CATEGORIES_KEPT_MAX]
            if len(kept) == 0:
                notes.append(
                    f"column {name!r} dropped: {len(counts)} labels, none seen in {rare_min} rows"
                )
                continue
            if len(kept) < len(counts):
                notes.append(
                    f"column {name!r} has {len(counts)} labels: the {len(kept)} seen in at least "
                    f"{rare_min} rows are kept, the other {len(counts) - len(kept)} "
                    f"({int(counts.iloc[len(kept) :].sum())} rows) are treated as unseen (missing)"
                )
            categories = tuple(sorted(map(str, kept)))
        else:
            categories = tuple(sorted(counts.index.astype(str)))
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
        if (
            spec.kind is FeatureKind.NUMERIC
            and not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))
            and _numeric_text(series, spec).isna().any()
        ):
            mistyped.append(spec.name)
    if mistyped:
        raise FeatureMismatchError(
            f"numeric model features hold non-numeric values: {', '.join(mistyped)}",
            mistyped=mistyped,
        )


def _numeric_text(series: pd.Series, spec: FeatureSpec) -> pd.Series:
    """The numbers in a text column (NaN where a present value is not a number)."""
    import pandas as pd

    present = series.dropna().astype(str).str.strip()
    present = present[present != ""]
    if spec.unit == "percent":
        is_percent = present.str.endswith("%")
        values = pd.to_numeric(present.str.rstrip("%").str.strip(), errors="coerce")
        return values.where(~is_percent, values / 100.0)
    return pd.to_numeric(present, errors="coerce")


def _numeric_column(series: pd.Series, spec: FeatureSpec) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.full(len(series), np.nan)
    values = _numeric_text(series, spec)
    out[series.index.get_indexer(values.index)] = values.to_numpy(dtype=np.float64)
    return out


def _category_codes(series: pd.Series, spec: FeatureSpec) -> np.ndarray:
    """Index in the training label list; NaN for missing or unseen labels. Exact matches go
    through pandas' categorical hashing; only the rest are stripped and matched again."""
    import pandas as pd

    categories = list(spec.categories)
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        values = pd.Index(series.to_numpy(dtype=object))
        codes = pd.Index(categories, dtype=object).get_indexer(values)
    else:
        codes = np.full(len(series), -1, dtype=np.int16)
    out = codes.astype(np.float64)
    unmatched = (codes < 0) & series.notna().to_numpy()
    if unmatched.any():
        labels = series[unmatched].astype("string").str.strip()
        index = {c: float(i) for i, c in enumerate(categories)}
        out[unmatched] = (
            labels.map(index).astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        )
    out[out < 0] = np.nan
    return out


def encode_frame(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> np.ndarray:
    """The float matrix every model scores: one column per feature, in spec order."""
    if frame.columns.has_duplicates:
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise FeatureMismatchError(f"input has duplicate columns: {', '.join(duplicated)}")
    check_columns(frame, specs)
    frame = frame.reset_index(drop=True)
    out = np.empty((len(frame), len(specs)), dtype=np.float64)
    infinite: list[str] = []
    for j, spec in enumerate(specs):
        series = frame[spec.name]
        if spec.kind is FeatureKind.NUMERIC:
            out[:, j] = _numeric_column(series, spec)
            if np.isinf(out[:, j]).any():
                infinite.append(spec.name)
        else:
            out[:, j] = _category_codes(series, spec)
    if infinite:
        raise FeatureMismatchError(
            f"numeric model features hold infinite values: {', '.join(infinite)}",
            infinite=infinite,
        )
    return out


class RecordEncoder:
    """Encodes one application (a mapping of feature name to value) without pandas."""

    def __init__(self, specs: Sequence[FeatureSpec]) -> None:
        self.specs = tuple(specs)
        self._index = [
            {c: float(i) for i, c in enumerate(s.categories)}
            if s.kind is FeatureKind.CATEGORICAL
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
                    if (
                        spec.unit == "percent"
                        and isinstance(value, str)
                        and value.strip().endswith("%")
                    ):
                        row[j] = float(value.strip()[:-1]) / 100.0
                    else:
                        row[j] = float(value)
                except (TypeError, ValueError):
                    mistyped.append(spec.name)
                    continue
                if math.isinf(row[j]):
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
