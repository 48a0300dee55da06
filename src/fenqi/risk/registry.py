"""Model registry: every trained model is a versioned folder with a manifest.

Layout: `<registry>/<kind>-v<NNNN>/` holding `manifest.json` (features and types, target, training
data fingerprint, parameters, metrics, created time from the clock, score scale, file list) and
the model files (`scorecard.json` + table CSV/HTML, or LightGBM `model.txt` + `gbm.json`).
Artifacts are plain text (JSON, LightGBM text): loading one never executes code from it.

A version folder is claimed with an atomic `mkdir`, so two trainers writing to one registry get
different versions. `load_model` accepts a version folder or a registry (then the newest).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fenqi.clock import Clock
from fenqi.risk.data import FeatureSpec, RecordEncoder, encode_frame
from fenqi.risk.errors import ArtifactError
from fenqi.risk.model import REASONS_MAX, Explained, RiskModel

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHAMPION = "CHAMPION"  # names the version in use after a promotion (see promotion.py)
VERSION_RE = re.compile(r"^(?P<kind>[a-z]+)-v(?P<number>\d{4,})$")
VERSIONS_MAX = 100_000


@dataclass(frozen=True)
class LoadedModel:
    """A model with its manifest: what decisions and evaluations use."""

    model: RiskModel
    manifest: dict[str, Any]
    path: Path

    @property
    def model_id(self) -> str:
        return str(self.manifest["model_id"])

    @property
    def specs(self) -> tuple[FeatureSpec, ...]:
        return self.model.specs

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return encode_frame(frame, self.model.specs)

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_pd(self.matrix(frame))

    def score(self, pd_: np.ndarray) -> np.ndarray:
        scores: np.ndarray = np.rint(self.model.scale.score_from_pd(pd_)).astype(np.int64)
        return scores

    def explain(self, record: dict[str, Any], top_n: int = REASONS_MAX) -> Explained:
        return self.model.explain_row(self._encoder.encode(record), top_n)

    @property
    def _encoder(self) -> RecordEncoder:
        cached = self.__dict__.get("_encoder_cache")
        if cached is None:
            cached = RecordEncoder(self.model.specs)
            object.__setattr__(self, "_encoder_cache", cached)
        return cached


def _next_version_dir(registry: Path, kind: str) -> Path:
    registry.mkdir(parents=True, exist_ok=True)
    numbers = [
        int(m["number"])
        for p in registry.iterdir()
        if (m := VERSION_RE.match(p.name)) and m["kind"] == kind
    ]
    number = max(numbers, default=0) + 1
    for _ in range(VERSIONS_MAX):
        candidate = registry / f"{kind}-v{number:04d}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1
    raise ArtifactError(f"registry {registry} has no free version number")


def save_model(
    model: RiskModel,
    registry: Path,
    clock: Clock,
    *,
    target: dict[str, str],
    data_fingerprint: str,
    n_rows: int,
    metrics: dict[str, Any],
    params: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> LoadedModel:
    directory = _next_version_dir(Path(registry), model.kind)
    files = model.save(directory)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_id": directory.name,
        "kind": model.kind,
        "created_at": clock.now().isoformat(),
        "features": [s.to_dict() for s in model.specs],
        "target": target,
        "training_data": {"fingerprint_sha256": data_fingerprint, "rows": n_rows},
        "params": params,
        "metrics": metrics,
        "score_scale": model.scale.to_dict(),
        "files": files,
        **(extra or {}),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return LoadedModel(model, manifest, directory)


def resolve(path: Path) -> Path:
    """A version folder as is; a registry folder resolves to its champion (the version named in
    its CHAMPION file, written by a promotion) or, before any promotion, its newest version."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if not path.is_dir():
        raise ArtifactError(f"model not found: {path}", path=str(path))
    pointer = path / CHAMPION
    if pointer.is_file():
        champion = path / pointer.read_text().strip()
        if not VERSION_RE.match(champion.name) or not (champion / MANIFEST).is_file():
            raise ArtifactError(f"{pointer} names {champion.name!r}, not a model version")
        return champion
    versions = [p for p in path.iterdir() if VERSION_RE.match(p.name) and (p / MANIFEST).is_file()]
    if not versions:
        raise ArtifactError(f"{path} is neither a model version nor a registry with models")
    return max(versions, key=_created_at)


def _created_at(directory: Path) -> tuple[str, str]:
    """Newest by the manifest's created time; the folder name breaks ties."""
    try:
        created = str(json.loads((directory / MANIFEST).read_text())["created_at"])
    except (OSError, ValueError, KeyError, TypeError):
        created = ""
    return created, directory.name


def load_model(path: Path | str) -> LoadedModel:
    from fenqi.risk.gbm import GbmModel
    from fenqi.risk.scorecard import ScorecardModel

    directory = resolve(Path(path))
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        specs = [FeatureSpec.from_dict(f) for f in manifest["features"]]
        kind = manifest["kind"]
        version = manifest["format_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"unreadable manifest in {directory}: {exc}") from exc
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{directory}: artifact format {version}, expected {FORMAT_VERSION}")
    model: RiskModel
    if kind == "scorecard":
        model = ScorecardModel.load(directory, specs)
    elif kind == "gbm":
        model = GbmModel.load(directory, specs)
    else:
        raise ArtifactError(f"{directory}: unknown model kind {kind!r}")
    return LoadedModel(model, manifest, directory)
