"""The promotion gate: a challenger replaces the registry's champion only on evidence.

A registry's champion is the version named in `<registry>/CHAMPION`; without that file the
newest version is used (as before any promotion). `promote_if_better` evaluates champion and
challenger on the same labelled sample (which neither should have trained on; out of time is
best) and promotes only if every check passes:

1. the sample has at least `bads_min` bads, and so had the challenger's training data;
2. the challenger's AUC is higher than the champion's on the same rows, by DeLong's paired test
   at one-sided p < `p_max`;
3. the challenger's score PSI between its training data and the sample is below `psi_max`.

A challenger that is a recalibration of the champion (`fenqi risk recalibrate`: same bins, so
the same ranking) replaces check 2 with calibration: a lower log-loss than the champion's on the
sample and a Hosmer-Lemeshow p-value of at least `p_max`, with an AUC not significantly lower.

Without a champion, checks 1 and 3 decide. Every attempt (promoted or not, with the reasons and
the figures) is appended to `<registry>/promotions.jsonl`; the `CHAMPION` file is replaced
atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fenqi.clock import Clock
from fenqi.risk import metrics, validation
from fenqi.risk.data import resolve_target, target_vector
from fenqi.risk.errors import ArtifactError, BadDataError
from fenqi.risk.registry import CHAMPION, LoadedModel, load_model, resolve
from fenqi.risk.validation import delong_test

if TYPE_CHECKING:
    import pandas as pd

LOG = "promotions.jsonl"


@dataclass(frozen=True, slots=True)
class GatePolicy:
    bads_min: int = 100
    p_max: float = 0.05
    psi_max: float = 0.1


def champion_of(registry: Path) -> Path | None:
    """The champion's version folder named in `CHAMPION`, or None."""
    pointer = Path(registry) / CHAMPION
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    return Path(registry) / name


def crown_current(registry: Path | str) -> Path | None:
    """Make the version now in use the explicit champion when the registry has none yet (so a
    model trained next is a challenger, not live); return the champion's folder, or None for
    an empty registry."""
    registry = Path(registry)
    current = champion_of(registry)
    if current is not None:
        return current
    try:
        current = resolve(registry)
    except ArtifactError:
        return None
    tmp = registry / f".{CHAMPION}.{os.getpid()}"
    tmp.write_text(current.name + "\n")
    tmp.replace(registry / CHAMPION)
    return current


def _pd(loaded: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    return loaded.predict_pd(frame)


def evaluate_gate(
    champion: LoadedModel | None,
    challenger: LoadedModel,
    frame: pd.DataFrame,
    target_column: str,
    *,
    bad_value: str | None = None,
    policy: GatePolicy = GatePolicy(),
) -> dict[str, Any]:
    """The gate's checks and figures (nothing written)."""
    if bad_value is None and challenger.manifest["target"]["column"] == target_column:
        bad_value = challenger.manifest["target"]["bad_label"]
    target = resolve_target(
        frame, target_column, bad_value, "--bad-value" if bad_value is None else "the bad label"
    )
    y = target_vector(frame, target)
    reasons: list[str] = []
    bads = int(y.sum())
    train_bads = challenger.manifest.get("training_bads")
    if bads < policy.bads_min:
        reasons.append(f"the sample has {bads} bads, fewer than {policy.bads_min}")
    if train_bads is not None and int(train_bads) < policy.bads_min:
        reasons.append(f"the challenger trained on {train_bads} bads, fewer than {policy.bads_min}")
    pd_challenger = _pd(challenger, frame)
    figures: dict[str, Any] = {
        "n": len(y),
        "bads": bads,
        "challenger_auc": metrics.auc(y, pd_challenger),
    }
    deciles = challenger.manifest.get("score_reference", {}).get("deciles")
    if deciles:
        score_psi = metrics.psi_against_deciles(
            np.asarray(deciles), challenger.model.scale.score_from_pd(pd_challenger)
        )
        figures["challenger_score_psi"] = score_psi
        if score_psi >= policy.psi_max:
            reasons.append(
                f"the challenger's score PSI vs its training data is "
                f"{score_psi:.3f}, not below {policy.psi_max}"
            )
    if champion is not None:
        pd_champion = _pd(champion, frame)
        if recalibrates(challenger, champion):
            reasons += _calibration_checks(y, pd_champion, pd_challenger, policy, figures)
        else:
            reasons += _ranking_checks(y, pd_champion, pd_challenger, policy, figures)
    return {
        "challenger": challenger.model_id,
        "champion": champion.model_id if champion is not None else None,
        "promoted": not reasons,
        "reasons": reasons or ["passed every check"],
        "figures": figures,
        "policy": {"bads_min": policy.bads_min, "p_max": policy.p_max, "psi_max": policy.psi_max},
    }


def recalibrates(challenger: LoadedModel, champion: LoadedModel) -> bool:
    """Is the challenger a recalibration of the champion (same bins, same ranking)?"""
    record = challenger.manifest.get("recalibration") or {}
    return bool(record) and record.get("from") == champion.model_id


def _ranking_checks(
    y: np.ndarray,
    pd_champion: np.ndarray,
    pd_challenger: np.ndarray,
    policy: GatePolicy,
    figures: dict[str, Any],
) -> list[str]:
    test = delong_test(y, pd_champion, pd_challenger)
    figures.update(
        {
            "champion_auc": test["auc_a"],
            "auc_difference": test["difference"],
            "delong_z": test["z"],
            "delong_p_challenger_better": test["p_value_b_better"],
        }
    )
    if test["difference"] <= 0:
        return [
            f"the challenger's AUC {test['auc_b']:.4f} is not above the "
            f"champion's {test['auc_a']:.4f} on the same rows"
        ]
    if test["p_value_b_better"] >= policy.p_max:
        return [
            f"the AUC gain {test['difference']:+.4f} is not significant "
            f"(DeLong one-sided p = {test['p_value_b_better']:.3f}, needs < {policy.p_max})"
        ]
    return []


def _log_loss(y: np.ndarray, pd_: np.ndarray) -> float:
    p = np.clip(pd_, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _calibration_checks(
    y: np.ndarray,
    pd_champion: np.ndarray,
    pd_challenger: np.ndarray,
    policy: GatePolicy,
    figures: dict[str, Any],
) -> list[str]:
    """A recalibration keeps the champion's ranking, so it must calibrate better instead: a
    lower log-loss on the sample than the champion's, and a Hosmer-Lemeshow test it passes
    (p >= `p_max`); its AUC must not be significantly lower (rounding of points only)."""
    test = delong_test(y, pd_champion, pd_challenger)
    hl = validation.hosmer_lemeshow(y, pd_challenger)
    figures.update(
        {
            "champion_auc": test["auc_a"],
            "auc_difference": test["difference"],
            "champion_log_loss": _log_loss(y, pd_champion),
            "challenger_log_loss": _log_loss(y, pd_challenger),
            "champion_mean_pd": float(np.mean(pd_champion)),
            "challenger_mean_pd": float(np.mean(pd_challenger)),
            "challenger_hosmer_lemeshow_p": hl["p_value"],
        }
    )
    reasons = []
    if figures["challenger_log_loss"] >= figures["champion_log_loss"]:
        reasons.append(
            f"the recalibration does not fit the sample better: log-loss "
            f"{figures['challenger_log_loss']:.4f} against the champion's "
            f"{figures['champion_log_loss']:.4f} (mean PD {figures['challenger_mean_pd']:.3f} "
            f"vs {figures['champion_mean_pd']:.3f}, observed {float(np.mean(y)):.3f})"
        )
    if hl["p_value"] < policy.p_max:
        reasons.append(
            f"the recalibrated PDs fail Hosmer-Lemeshow on the sample "
            f"(p = {hl['p_value']:.3f}, needs >= {policy.p_max})"
        )
    if test["difference"] < 0 and 1.0 - test["p_value_b_better"] < policy.p_max:
        reasons.append(
            f"the recalibrated AUC {test['auc_b']:.4f} is significantly below the "
            f"champion's {test['auc_a']:.4f}"
        )
    return reasons


def promote_if_better(
    registry: Path | str,
    challenger_dir: Path | str,
    frame: pd.DataFrame,
    target_column: str,
    clock: Clock,
    *,
    bad_value: str | None = None,
    policy: GatePolicy = GatePolicy(),
) -> dict[str, Any]:
    registry = Path(registry)
    if not registry.is_dir():
        raise ArtifactError(f"registry not found: {registry}")
    challenger_path = resolve(Path(challenger_dir))
    if challenger_path.resolve().parent != registry.resolve():
        raise BadDataError(f"{challenger_path} is not a version of the registry {registry}")
    challenger = load_model(challenger_path)
    current = champion_of(registry)
    if current is not None and current.name == challenger_path.name:
        raise BadDataError(f"{challenger.model_id} is already the champion")
    champion = load_model(current) if current is not None else None
    result = evaluate_gate(
        champion, challenger, frame, target_column, bad_value=bad_value, policy=policy
    )
    result["decided_at"] = clock.now().isoformat()
    if result["promoted"]:
        tmp = registry / f".{CHAMPION}.{os.getpid()}"
        tmp.write_text(challenger_path.name + "\n")
        tmp.replace(registry / CHAMPION)
    with (registry / LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(result, default=str) + "\n")
    return result


def gate_history(registry: Path | str, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` gate decisions of a registry (from `promotions.jsonl`), newest first;
    an unreadable line is skipped, a missing log is an empty history."""
    path = Path(registry) / LOG
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "challenger" in entry:
            out.append(entry)
            if len(out) >= limit:
                break
    return out
