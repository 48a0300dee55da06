"""Points scaling: PD <-> score on the lender's scale.

The industry convention: score = offset + factor * ln(odds of good), with factor = PDO / ln 2 so
that every PDO points double the odds, and offset chosen so that `base_score` sits at
`base_odds` (good:bad). fenqi's default is 600 points at 50:1 with PDO 20. Scorecard and GBM
scores share this scale, so flows and cut-offs do not depend on the model kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PD_FLOOR = 1e-9  # keeps ln(odds) finite for a PD of exactly 0 or 1


@dataclass(frozen=True, slots=True)
class ScoreScale:
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def __post_init__(self) -> None:
        if self.pdo <= 0 or self.base_odds <= 0:
            raise ValueError("pdo and base_odds must be positive")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def score_from_log_odds_bad(self, log_odds_bad: np.ndarray) -> np.ndarray:
        return self.offset - self.factor * np.asarray(log_odds_bad, dtype=np.float64)

    def score_from_pd(self, pd_: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(pd_, dtype=np.float64), PD_FLOOR, 1.0 - PD_FLOOR)
        return self.score_from_log_odds_bad(np.log(p / (1.0 - p)))

    def pd_from_score(self, score: np.ndarray) -> np.ndarray:
        log_odds_bad = (self.offset - np.asarray(score, dtype=np.float64)) / self.factor
        return 1.0 / (1.0 + np.exp(-log_odds_bad))

    def to_dict(self) -> dict[str, float]:
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo}
