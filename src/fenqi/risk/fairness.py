"""Protected attributes: kept out of models by default, and a by-group view of outcomes.

A column is protected when a word of its name (split on anything that is not a letter or
digit, case-insensitive) names a characteristic that credit law commonly forbids as a basis for
decisions: sex or gender, marital status, race or ethnicity, religion, national origin,
pregnancy, disability. Such columns are excluded from training unless the user opts in by name
(`--allow-protected COL`, recorded in the manifest's params and warnings). Age is not on the
list: many regimes allow it in an empirically derived model (and fenqi's flows pre-screen on
it), but where law restricts it, `--exclude` it, and report by age band with `--group`.

`group_table` gives, per group, approval rate and bad rate at a score cut-off and the
adverse-impact ratio (a group's approval rate over the highest group's; below 0.8 is the usual
"four-fifths" flag).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from fenqi.risk.errors import BadDataError

PROTECTED_WORDS = frozenset(
    {
        "sex",
        "gender",
        "marital",
        "marriage",
        "married",
        "race",
        "racial",
        "ethnicity",
        "ethnic",
        "religion",
        "religious",
        "nationality",
        "foreign",
        "pregnant",
        "pregnancy",
        "disability",
        "disabled",
    }
)
ADVERSE_IMPACT_MIN = 0.8  # the four-fifths rule
GROUPS_MAX = 50


def is_protected(name: str) -> bool:
    words = {w for w in re.split(r"[^0-9a-z]+", str(name).lower()) if w}
    return bool(words & PROTECTED_WORDS)


def protected_columns(columns: Iterable[Any], allow: Sequence[str] = ()) -> list[str]:
    """The protected columns of a table, except those opted in by name."""
    names = [str(c) for c in columns]
    unknown = sorted(set(allow) - set(names))
    if unknown:
        raise BadDataError(f"--allow-protected names columns not in the data: {unknown}")
    return [n for n in names if is_protected(n) and n not in allow]


def group_table(
    groups: np.ndarray, y: np.ndarray, score: np.ndarray, cutoff: float
) -> list[dict[str, Any]]:
    """Approval rate (score >= cutoff), bad rate overall and among the approved, adverse-impact
    ratio, per group (missing values form their own group)."""
    labels = np.asarray([("(missing)" if _missing(g) else str(g)) for g in groups], dtype=object)
    unique = sorted(set(labels.tolist()))
    if len(unique) > GROUPS_MAX:
        raise BadDataError(f"the group column has {len(unique)} values; at most {GROUPS_MAX}")
    approved = np.asarray(score) >= cutoff
    rows: list[dict[str, Any]] = []
    for label in unique:
        mask = labels == label
        ok = mask & approved
        rows.append(
            {
                "group": label,
                "n": int(mask.sum()),
                "bad_rate": float(y[mask].mean()),
                "approval_rate": float(ok.sum() / mask.sum()),
                "bad_rate_approved": float(y[ok].mean()) if ok.any() else None,
            }
        )
    best = max((r["approval_rate"] for r in rows), default=0.0)
    for row in rows:
        ratio = row["approval_rate"] / best if best > 0 else None
        row["adverse_impact_ratio"] = ratio
        row["flag"] = ratio is not None and ratio < ADVERSE_IMPACT_MIN
    return rows


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
