"""What every fenqi risk model offers, whatever its kind (scorecard or gradient boosting).

A model turns the encoded feature matrix (see `data.encode_frame`) into a probability of default
and, on request, reason codes: the features that pushed this applicant's score down the most,
measured in score points so that scorecard and GBM reasons read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fenqi.risk.data import FeatureSpec
from fenqi.risk.scaling import ScoreScale

REASONS_MAX = 4  # adverse-action notices conventionally list up to four principal reasons


@dataclass(frozen=True, slots=True)
class ReasonCode:
    feature: str
    points_lost: float  # how many score points this feature cost the applicant

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "points_lost": round(self.points_lost, 2)}


@dataclass(frozen=True, slots=True)
class Explained:
    pd: float
    score: int
    reasons: tuple[ReasonCode, ...]


class RiskModel(Protocol):
    kind: str
    specs: tuple[FeatureSpec, ...]
    scale: ScoreScale

    def predict_pd(self, matrix: np.ndarray) -> np.ndarray: ...

    def explain_row(self, row: np.ndarray, top_n: int = REASONS_MAX) -> Explained: ...

    def save(self, directory: Path) -> dict[str, Any]: ...


def top_reasons(
    names: tuple[str, ...], points_lost: np.ndarray, top_n: int
) -> tuple[ReasonCode, ...]:
    """The `top_n` features with the largest positive point loss, largest first."""
    assert points_lost.shape == (len(names),)
    if top_n <= 0:
        return ()
    order = np.argsort(-points_lost, kind="stable")[:top_n]
    return tuple(ReasonCode(names[j], float(points_lost[j])) for j in order if points_lost[j] > 0)
