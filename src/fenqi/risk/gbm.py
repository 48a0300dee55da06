"""Gradient-boosted PD model (LightGBM) with early stopping, calibration and reason codes.

Training holds out a stratified validation split: boosting stops when the validation log-loss
has not improved for `early_stopping_rounds`, and the calibrator (Platt or isotonic) is fit on the
same held-out predictions, so the output is a probability of default rather than a ranking.
Reason codes come from LightGBM's own SHAP values (`pred_contrib`, TreeSHAP): one predict call
gives both the raw score (the contributions add up to it) and each feature's share of it.

A single application is explained through LightGBM's own C library (`_RowPredictor`: its
single-row fast path, configured once per model), which is the code `Booster.predict` runs, so
the figures are the same; it skips ≈ 0.5 ms of per-call Python set-up, and deciding does not
import the `lightgbm` package (≈ 2 s of CPU: it imports scikit-learn and SciPy). Training,
batch scoring and saving use the package's `Booster`, built on first use from the model text
read when the model was loaded (a loaded model never reads its folder again). LightGBM sees
positional feature names (`f0`, `f1`, ...), so any column name works.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import platform
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fenqi.risk.data import FeatureKind, FeatureSpec
from fenqi.risk.errors import ArtifactError, BadDataError
from fenqi.risk.model import REASONS_MAX, Explained, top_reasons
from fenqi.risk.scaling import PD_FLOOR, ScoreScale

Progress = Callable[[str], None]


class Calibration(StrEnum):
    PLATT = "platt"
    ISOTONIC = "isotonic"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class GbmParams:
    learning_rate: float = 0.06  # 0.03 scores the same on UCI with twice the trees (slower)
    num_leaves: int = 15
    min_child_samples: int = 50
    feature_fraction: float = 0.7
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 5.0
    max_rounds: int = 3_000
    early_stopping_rounds: int = 100
    valid_fraction: float = 0.2
    calibration: str = Calibration.PLATT  # Platt keeps the ranking (AUC) unchanged
    monotone_constraints: Mapping[str, int] = field(default_factory=dict)  # name -> +1 / -1
    refit_full: bool = True  # retrain on all rows for the early-stopped number of rounds
    seed: int = 42
    num_threads: int = 0  # 0 = LightGBM's default (all cores)
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["monotone_constraints"] = dict(self.monotone_constraints)
        return out


@dataclass(frozen=True, slots=True)
class Calibrator:
    method: str
    platt_a: float = 1.0
    platt_b: float = 0.0
    iso_x: tuple[float, ...] = ()
    iso_y: tuple[float, ...] = ()

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if self.method == Calibration.PLATT:
            p = 1.0 / (1.0 + np.exp(-(self.platt_a * raw + self.platt_b)))
        elif self.method == Calibration.ISOTONIC:
            p = np.interp(1.0 / (1.0 + np.exp(-raw)), self.iso_x, self.iso_y)
        else:
            p = 1.0 / (1.0 + np.exp(-raw))
        return np.clip(p, PD_FLOOR, 1.0 - PD_FLOOR)

    @property
    def slope(self) -> float:
        """d(log-odds of PD)/d(raw score), to put SHAP values on the points scale."""
        return self.platt_a if self.method == Calibration.PLATT else 1.0


def fit_calibrator(
    method: str, raw: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
) -> Calibrator:
    if method == Calibration.PLATT:
        from sklearn.linear_model import LogisticRegression

        regression = LogisticRegression(C=1e6, max_iter=1000).fit(
            raw.reshape(-1, 1), y, sample_weight=weight
        )
        return Calibrator(method, float(regression.coef_[0][0]), float(regression.intercept_[0]))
    if method == Calibration.ISOTONIC:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(1.0 / (1.0 + np.exp(-raw)), y, sample_weight=weight)
        return Calibrator(
            method,
            iso_x=tuple(map(float, iso.X_thresholds_)),
            iso_y=tuple(map(float, iso.y_thresholds_)),
        )
    if method == Calibration.NONE:
        return Calibrator(method)
    raise BadDataError(f"unknown calibration {method!r}: use platt, isotonic or none")


_PREDICT_CONTRIB = 3  # C_API_PREDICT_CONTRIB in LightGBM's c_api.h
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_ALL_ITERATIONS = -1  # what Booster.predict asks for when the booster has no best iteration


class NativeError(Exception):
    """LightGBM's C library refused a call (its last error message)."""


@lru_cache(maxsize=1)
def _native_lib() -> ctypes.CDLL | None:
    """LightGBM's shared library, found where the `lightgbm` package keeps it, without importing
    the package; None when it cannot be found or loaded (then the package's API is used)."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    name = {"Windows": "lib_lightgbm.dll", "Darwin": "lib_lightgbm.dylib"}.get(
        platform.system(), "lib_lightgbm.so"
    )
    for candidate in (package.parent / name, package / "bin" / name, package / "lib" / name):
        if candidate.is_file():
            try:
                lib = ctypes.CDLL(str(candidate))
            except OSError:
                return None
            break
    else:
        return None
    vp, ip, i64p, dp = (
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_int64),
        ctypes.POINTER(ctypes.c_double),
    )
    signatures: dict[str, list[Any]] = {
        "LGBM_BoosterLoadModelFromString": [ctypes.c_char_p, ip, ctypes.POINTER(vp)],
        "LGBM_BoosterFree": [vp],
        "LGBM_BoosterGetNumFeature": [vp, ip],
        "LGBM_BoosterGetFeatureNames": [
            vp,
            ctypes.c_int,
            ip,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(ctypes.c_char_p),
        ],
        "LGBM_BoosterPredictForMatSingleRowFastInit": [
            vp,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int32,
            ctypes.c_char_p,
            ctypes.POINTER(vp),
        ],
        "LGBM_BoosterPredictForMatSingleRowFast": [vp, vp, i64p, dp],
        "LGBM_FastConfigFree": [vp],
    }
    try:
        for function, argtypes in signatures.items():
            getattr(lib, function).argtypes = argtypes
            getattr(lib, function).restype = ctypes.c_int
        lib.LGBM_GetLastError.restype = ctypes.c_char_p
    except AttributeError:  # a library without the single-row fast path
        return None
    return lib


class _RowPredictor:
    """One model's SHAP contributions for one row, from LightGBM's C library.

    The model is loaded from its text (what `model.txt` holds); contributions are predicted
    with the parameters `Booster.predict(row, pred_contrib=True, num_threads=1)` passes, over
    every iteration. The fast-path configuration is not safe to share between threads while
    a prediction runs (the library releases the GIL), hence the lock.
    """

    def __init__(self, lib: ctypes.CDLL, model_text: bytes) -> None:
        self._lib = lib
        self._booster = ctypes.c_void_p()
        self._config = ctypes.c_void_p()
        iterations, features = ctypes.c_int(), ctypes.c_int()
        self._check(
            lib.LGBM_BoosterLoadModelFromString(
                model_text, ctypes.byref(iterations), ctypes.byref(self._booster)
            )
        )
        self._check(lib.LGBM_BoosterGetNumFeature(self._booster, ctypes.byref(features)))
        self.n_features = features.value
        self._check(
            lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                self._booster,
                _PREDICT_CONTRIB,
                0,
                _ALL_ITERATIONS,
                _DTYPE_FLOAT64,
                self.n_features,
                b"num_threads=1",
                ctypes.byref(self._config),
            )
        )
        self._width = self.n_features + 1  # a contribution per feature, then the expected value
        self._lock = threading.Lock()

    def _check(self, code: int) -> None:
        if code != 0:
            message = self._lib.LGBM_GetLastError()
            raise NativeError(message.decode(errors="replace") if message else "LightGBM error")

    def feature_names(self) -> list[str]:
        count, size = self.n_features, 256
        while True:
            buffers = [ctypes.create_string_buffer(size) for _ in range(count)]
            pointers = (ctypes.c_char_p * count)(
                *[ctypes.cast(b, ctypes.c_char_p) for b in buffers]
            )
            got, needed = ctypes.c_int(), ctypes.c_size_t()
            self._check(
                self._lib.LGBM_BoosterGetFeatureNames(
                    self._booster,
                    count,
                    ctypes.byref(got),
                    size,
                    ctypes.byref(needed),
                    pointers,
                )
            )
            if needed.value <= size:
                return [b.value.decode() for b in buffers[: got.value]]
            size = needed.value

    def contributions(self, row: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(row, dtype=np.float64)
        if data.shape != (self.n_features,):
            raise ValueError(f"a row of {self.n_features} features expected, got {data.shape}")
        out = np.empty(self._width, dtype=np.float64)
        length = ctypes.c_int64()
        with self._lock:
            code = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._config,
                data.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(length),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        self._check(code)
        if length.value != self._width:
            raise NativeError(f"{length.value} contributions, expected {self._width}")
        return out

    def __del__(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        if getattr(self, "_config", None):
            lib.LGBM_FastConfigFree(self._config)
        if getattr(self, "_booster", None):
            lib.LGBM_BoosterFree(self._booster)


class GbmModel:
    kind = "gbm"

    def __init__(
        self,
        specs: Sequence[FeatureSpec],
        booster: Any,
        calibrator: Calibrator,
        params: GbmParams,
        best_rounds: int,
        *,
        model_text: bytes | None = None,
        row_predictor: _RowPredictor | None = None,
    ) -> None:
        if booster is None and model_text is None:
            raise ValueError("a GBM needs a booster or its model text")
        self.specs = tuple(specs)
        self._booster = booster
        self._model_text = model_text
        self._row_predictor = row_predictor
        self._row_predictor_tried = row_predictor is not None
        self.calibrator = calibrator
        self.params = params
        self.best_rounds = best_rounds
        self.scale = ScoreScale(params.base_score, params.base_odds, params.pdo)
        self._names = tuple(s.name for s in self.specs)
        self._points_per_raw = self.scale.factor * calibrator.slope

    @property
    def booster(self) -> Any:
        """The `lightgbm.Booster`, built on first use from the model text read at load time (so
        a model whose folder was moved or deleted after loading still scores)."""
        if self._booster is None:
            import lightgbm as lgb

            assert self._model_text is not None
            self._booster = lgb.Booster(model_str=self._model_text.decode())
        return self._booster

    def feature_importance(self) -> dict[str, float]:
        """Total gain per feature (LightGBM's split gain summed over trees), largest first."""
        gains = np.asarray(self.booster.feature_importance(importance_type="gain"), dtype=float)
        pairs = sorted(zip(self._names, gains.tolist(), strict=True), key=lambda kv: -kv[1])
        return dict(pairs)

    def _row_contributions(self, row: np.ndarray) -> np.ndarray:
        if not self._row_predictor_tried:
            self._row_predictor_tried = True
            lib = _native_lib()
            if lib is not None:
                try:
                    text = self.booster.model_to_string().encode()
                    self._row_predictor = _RowPredictor(lib, text)
                except NativeError:
                    self._row_predictor = None
        if self._row_predictor is not None:
            return self._row_predictor.contributions(row)
        contributions: np.ndarray = np.asarray(
            self.booster.predict(row.reshape(1, -1), pred_contrib=True, num_threads=1)
        )[0]
        return contributions

    def raw_score(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(matrix, raw_score=True), dtype=np.float64)

    def predict_pd(self, matrix: np.ndarray) -> np.ndarray:
        return self.calibrator.apply(self.raw_score(matrix))

    def batch_reasons(self, matrix: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """Feature names, the score points each feature cost each row (TreeSHAP), and the rows'
        PDs, from one `pred_contrib` call (the contributions add up to the raw score)."""
        contrib = np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)
        pd_ = self.calibrator.apply(contrib.sum(axis=1))
        return self._names, contrib[:, :-1] * self._points_per_raw, pd_

    def explain_row(self, row: np.ndarray, top_n: int = REASONS_MAX) -> Explained:
        contrib = self._row_contributions(row)
        raw = float(contrib.sum())
        pd_ = float(self.calibrator.apply(np.array([raw]))[0])
        score = float(self.scale.score_from_pd(np.array([pd_]))[0])
        # A positive contribution pushes toward default, i.e. costs points.
        reasons = top_reasons(self._names, contrib[:-1] * self._points_per_raw, top_n)
        return Explained(pd=pd_, score=round(score), reasons=reasons)

    def save(self, directory: Path) -> dict[str, Any]:
        self.booster.save_model(str(directory / "model.txt"))
        payload = {
            "calibrator": asdict(self.calibrator),
            "params": self.params.to_dict(),
            "best_rounds": self.best_rounds,
        }
        (directory / "gbm.json").write_text(json.dumps(payload))
        return {"model_file": "model.txt"}

    @classmethod
    def load(cls, directory: Path, specs: Sequence[FeatureSpec]) -> GbmModel:
        model_file = directory / "model.txt"
        booster: Any = None
        row_predictor: _RowPredictor | None = None
        try:
            payload = json.loads((directory / "gbm.json").read_text())
            cal = payload["calibrator"]
            calibrator = Calibrator(
                cal["method"],
                cal["platt_a"],
                cal["platt_b"],
                tuple(cal["iso_x"]),
                tuple(cal["iso_y"]),
            )
            params = GbmParams(**payload["params"])
            best_rounds = int(payload["best_rounds"])
            model_text = model_file.read_bytes()  # kept: the folder may move after loading
            lib = _native_lib()
            if lib is not None:  # deciding needs no lightgbm import
                row_predictor = _RowPredictor(lib, model_text)
                names = row_predictor.feature_names()
            else:
                booster, names = _load_booster(model_text)
        except (OSError, KeyError, TypeError, ValueError, NativeError) as exc:
            raise ArtifactError(f"cannot load GBM from {directory}: {exc}") from exc
        # Boosters name features by position (f0, f1, ...: LightGBM refuses some characters in
        # names and rewrites spaces); artifacts from before that carry the column names.
        if names not in ([s.name for s in specs], booster_names(specs)):
            raise ArtifactError(f"GBM in {directory} does not match its manifest's features")
        return cls(
            specs,
            booster,
            calibrator,
            params,
            best_rounds,
            model_text=model_text,
            row_predictor=row_predictor,
        )


def booster_names(specs: Sequence[FeatureSpec]) -> list[str]:
    """The feature names given to LightGBM: positional, so any column name works (LightGBM
    refuses JSON special characters such as `[` or `:` and turns spaces into `_`)."""
    return [f"f{j}" for j in range(len(specs))]


def _load_booster(model_text: bytes) -> tuple[Any, list[str]]:
    import lightgbm as lgb

    try:
        booster = lgb.Booster(model_str=model_text.decode())
    except lgb.basic.LightGBMError as exc:
        raise NativeError(str(exc)) from exc
    return booster, booster.feature_name()


def _lgb_params(params: GbmParams, specs: Sequence[FeatureSpec]) -> dict[str, Any]:
    unknown = set(params.monotone_constraints) - {s.name for s in specs}
    if unknown:
        raise BadDataError(f"monotone constraints name unknown features: {sorted(unknown)}")
    out: dict[str, Any] = {
        "objective": "binary",
        "metric": "binary_logloss",
        "verbosity": -1,
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_child_samples": params.min_child_samples,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": params.bagging_freq,
        "lambda_l2": params.lambda_l2,
        "seed": params.seed,
        "deterministic": True,
        "force_col_wise": True,
    }
    if params.num_threads:
        out["num_threads"] = params.num_threads
    if params.monotone_constraints:
        out["monotone_constraints"] = [
            int(params.monotone_constraints.get(s.name, 0)) for s in specs
        ]
        # "advanced" breaks monotonicity when categorical features are present (measured in
        # tests/risk/test_models.py); "intermediate" holds it and is nearly as flexible.
        out["monotone_constraints_method"] = "intermediate"
    return out


def fit_gbm(
    matrix: np.ndarray,
    y: np.ndarray,
    specs: Sequence[FeatureSpec],
    params: GbmParams | None = None,
    progress: Progress | None = None,
    weight: np.ndarray | None = None,
) -> GbmModel:
    import lightgbm as lgb
    from sklearn.model_selection import train_test_split

    params = params or GbmParams()
    names = booster_names(specs)
    categorical = [
        n for n, s in zip(names, specs, strict=True) if s.kind is FeatureKind.CATEGORICAL
    ]
    lgb_params = _lgb_params(params, specs)
    index = np.arange(len(y))
    train_idx, valid_idx = train_test_split(
        index, test_size=params.valid_fraction, stratify=y, random_state=params.seed
    )

    def dataset(rows: np.ndarray) -> Any:
        return lgb.Dataset(
            matrix[rows],
            y[rows],
            feature_name=names,
            categorical_feature=categorical,
            free_raw_data=False,
            weight=None if weight is None else weight[rows],
        )

    train_set = dataset(train_idx)
    valid_set = lgb.Dataset(
        matrix[valid_idx],
        y[valid_idx],
        reference=train_set,
        weight=None if weight is None else weight[valid_idx],
    )

    def report(env: Any) -> None:
        if progress and env.iteration % 50 == 0:
            progress(f"boosting round {env.iteration}")

    booster = lgb.train(
        lgb_params,
        train_set,
        num_boost_round=params.max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False), report],
    )
    best = max(int(booster.best_iteration), 1)
    if progress:
        progress(f"calibrating ({params.calibration}) on {len(valid_idx)} held-out rows")
    valid_raw = np.asarray(booster.predict(matrix[valid_idx], raw_score=True, num_iteration=best))
    calibrator = fit_calibrator(
        params.calibration, valid_raw, y[valid_idx], None if weight is None else weight[valid_idx]
    )
    if params.refit_full:
        if progress:
            progress(f"refitting on all {len(y)} rows for {best} rounds")
        # More rows support a few more rounds at the same learning rate (rows ratio heuristic).
        rounds = int(best / (1.0 - params.valid_fraction))
        final = lgb.train(lgb_params, dataset(index), num_boost_round=rounds)
        # The refit shifts the raw scale slightly; recentre the calibrator on the training rows.
        shift = float(
            np.mean(final.predict(matrix, raw_score=True))
            - np.mean(booster.predict(matrix, raw_score=True, num_iteration=best))
        )
        if calibrator.method == Calibration.PLATT:
            calibrator = Calibrator(
                calibrator.method,
                calibrator.platt_a,
                calibrator.platt_b - calibrator.platt_a * shift,
            )
        return GbmModel(specs, final, calibrator, params, rounds)
    booster.free_dataset()
    return GbmModel(specs, _trimmed(booster, best), calibrator, params, best)


def _trimmed(booster: Any, rounds: int) -> Any:
    import lightgbm as lgb

    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
