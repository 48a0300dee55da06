"""The starter risk model of a fresh installation, trained on synthetic applicants.

A new installation has no history to learn from, so before it serves, `fenqi serve` (and the
demo build and the simulator) puts a gradient-boosted model trained on the synthetic applicant
population (`fenqi.simulation.population`) in an empty registry. Operators replace it with a
model trained on their own data (`fenqi risk train`). The credit service only loads what the
registry holds (`fenqi.credit.underwriting.load_decider`): it never falls back to synthetic
shoppers by itself (issue 22).
"""

from __future__ import annotations

from pathlib import Path

from fenqi.clock import Clock
from fenqi.credit.underwriting import MODEL_FEATURES

STARTER_SEED = 7
STARTER_ROWS = 8_000


def has_model(models_dir: Path) -> bool:
    """Whether the registry (or version folder) holds a model version (its manifest; the model
    is not loaded here: a broken one is the loader's error to report, not replaced)."""
    from fenqi.risk.errors import ArtifactError
    from fenqi.risk.registry import resolve

    try:
        resolve(models_dir)
    except ArtifactError:
        return False
    return True


def ensure_starter_model(
    models_dir: Path, clock: Clock, *, seed: int = STARTER_SEED, rows: int = STARTER_ROWS
) -> bool:
    """Train the starter model into `models_dir` when it holds no usable model; True when one
    was trained, False when the registry already had one (it is left as it is)."""
    if has_model(models_dir):
        return False
    from fenqi.risk.train import train_model
    from fenqi.simulation.population import applicants

    frame = applicants(rows, seed)[[*MODEL_FEATURES, "bad"]]
    train_model(frame, "bad", "gbm", models_dir, clock, seed=seed)
    return True
