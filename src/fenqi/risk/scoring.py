"""Batch scoring: a file of applications in, a file of PD, score, band and reasons out.

`score_file` reads CSV or Parquet in chunks (so memory stays flat on any file size), encodes
each chunk with the model's feature specs (the same checks as every other path), scores it, and
appends the chunk to the output (CSV or Parquet, by the output's suffix). Per row: the kept
columns (`keep`, e.g. an application id), `pd`, `score` (integer points on the model's scale),
`band` (the master scale, `validation.MASTER_SCALE`) and the top `reasons` characteristics that
cost the applicant the most points (`reason_1`, `reason_1_points`, ...; empty when fewer
characteristics cost points). For a GBM, one TreeSHAP call per chunk gives both the raw score
and the reasons; with `reasons=0` it is a plain predict.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fenqi.risk.data import ENCODING_HINT, FeatureKind, _check_names, encode_frame
from fenqi.risk.errors import BadDataError, FeatureMismatchError
from fenqi.risk.model import REASONS_MAX
from fenqi.risk.registry import LoadedModel
from fenqi.risk.validation import band_of

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 100_000
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


def _chunks(
    path: Path, loaded: LoadedModel, chunk_rows: int, encoding: str | None, na_values: Sequence[str]
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    if path.suffix.lower() in PARQUET_SUFFIXES:
        import polars as pl

        try:
            lazy = pl.scan_parquet(path)
            names = lazy.collect_schema().names()
            rows = int(lazy.select(pl.len()).collect().item())
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise BadDataError(f"cannot read {path} as Parquet: {exc}") from exc
        _check_names(names, path)
        for start in range(0, rows, chunk_rows):
            yield polars_to_pandas(lazy.slice(start, chunk_rows).collect())
        return
    chosen = encoding or "utf-8"
    text = {s.name: "string" for s in loaded.specs if s.kind is FeatureKind.CATEGORICAL}
    try:
        with path.open(newline="", encoding=chosen) as handle:
            header = next(csv.reader(handle), None)
        if header is None:
            raise BadDataError(f"data file is empty: {path}")
        _check_names(header, path)
        reader = pd.read_csv(
            path,
            chunksize=chunk_rows,
            encoding=chosen,
            low_memory=False,
            dtype={k: v for k, v in text.items() if k in header},
            na_values=list(na_values) or None,
        )
        yield from reader
    except UnicodeDecodeError as exc:
        raise BadDataError(f"{path} is not {chosen} text; " + ENCODING_HINT) from exc
    except pd.errors.ParserError as exc:
        raise BadDataError(f"cannot parse {path} as CSV: {exc}") from exc


def polars_to_pandas(frame: Any) -> pd.DataFrame:
    """Without pyarrow: column by column through numpy (text stays object, nulls None/NaN)."""
    import pandas as pd

    return pd.DataFrame({name: frame[name].to_numpy() for name in frame.columns})


def pandas_to_polars(frame: pd.DataFrame) -> Any:
    import polars as pl

    return pl.DataFrame({str(c): frame[c].to_numpy() for c in frame.columns})


def score_matrix(
    loaded: LoadedModel, matrix: np.ndarray, reasons: int = REASONS_MAX
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    """PD per row, and (when `reasons` > 0) the points each feature cost each row."""
    model: Any = loaded.model
    if reasons > 0:
        names, lost, pd_ = model.batch_reasons(matrix)
        return pd_, names, lost
    return model.predict_pd(matrix), (), None


def score_frame(
    loaded: LoadedModel,
    frame: pd.DataFrame,
    *,
    keep: Sequence[str] = (),
    reasons: int = REASONS_MAX,
) -> pd.DataFrame:
    """The output rows for one chunk (see the module docstring)."""
    import pandas as pd

    missing = [k for k in keep if k not in frame.columns]
    if missing:
        raise FeatureMismatchError(f"--keep names columns not in the data: {missing}")
    matrix = encode_frame(frame, loaded.specs)
    pd_, names, lost = score_matrix(loaded, matrix, reasons)
    out = pd.DataFrame({k: frame[k].to_numpy() for k in keep})
    out["pd"] = pd_
    out["score"] = loaded.score(pd_)
    out["band"] = band_of(pd_)
    if lost is not None and reasons > 0:
        k = min(reasons, lost.shape[1])
        order = np.argsort(-lost, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(lost, order, axis=1)
        labels = np.asarray(names, dtype=object)[order]
        for i in range(k):
            costs = top[:, i] > 0
            out[f"reason_{i + 1}"] = np.where(costs, labels[:, i], "")
            out[f"reason_{i + 1}_points"] = np.where(costs, np.round(top[:, i], 2), 0.0)
    return out


def score_file(
    loaded: LoadedModel,
    data: Path,
    out: Path,
    *,
    keep: Sequence[str] = (),
    reasons: int = REASONS_MAX,
    chunk_rows: int = CHUNK_ROWS,
    encoding: str | None = None,
    na_values: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> int:
    """Score every row of `data` into `out`; return the number of rows. The output is written
    to a temporary name and renamed at the end, so a failed run leaves no partial file."""
    data, out = Path(data), Path(out)
    if not data.is_file():
        raise BadDataError(f"data file not found: {data}")
    if not 1 <= chunk_rows <= 10_000_000:
        raise BadDataError("chunk rows must be between 1 and 10,000,000")
    if not 0 <= reasons <= 50:
        raise BadDataError("--reasons must be between 0 and 50")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    parquet = out.suffix.lower() in PARQUET_SUFFIXES
    parts: list[Any] = []  # Parquet output: written once at the end (polars has no appender)
    total = 0
    try:
        for number, chunk in enumerate(_chunks(data, loaded, chunk_rows, encoding, na_values)):
            try:
                scored = score_frame(loaded, chunk, keep=keep, reasons=reasons)
            except FeatureMismatchError as exc:
                first = total + 2  # the CSV line of the chunk's first row
                raise FeatureMismatchError(
                    f"{exc.message} (in the chunk starting at row {first})", **exc.detail
                ) from exc
            if parquet:
                parts.append(pandas_to_polars(scored))
            else:
                scored.to_csv(
                    tmp, mode="w" if number == 0 else "a", header=number == 0, index=False
                )
            total += len(scored)
            if progress:
                progress(total)
        if total == 0:
            raise BadDataError(f"data file has no rows: {data}")
        if parquet:
            import polars as pl

            pl.concat(parts, how="vertical_relaxed").write_parquet(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return total
