"""pandas rows as the dicts fenqi's risk code takes: pandas types their keys as Hashable, a
frame's column names here are always strings."""

from __future__ import annotations

from typing import Any

import pandas as pd


def row_record(row: pd.Series[Any]) -> dict[str, Any]:
    """One row (`frame.iloc[i]`) as {column: value}."""
    return {str(k): v for k, v in row.to_dict().items()}


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every row of a frame as {column: value} (`to_dict("records")`)."""
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
