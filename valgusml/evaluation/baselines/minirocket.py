"""MiniRocket (aeon) on the preprocessed windows, with probabilistic heads.

The recordings go through the same preprocessing as the deep models (`valgusml.preprocess.prepare_many`:
canonical skeleton, front view, resampled, fixed windows). Each window is seen twice, once per limb in that
limb's own view (measures mirrored with `mirror_frame_measures`; joints mirrored by swapping left/right joints
and negating x), so one set of heads serves both limbs. Channels: the frame measures (`channels="measures"`),
the pelvis-centred, leg-length-scaled joint x/y (`"joints"`), or both.

MiniRocket's features feed scaled logistic regressions (valgus, mechanism: probabilities, unlike the usual
RidgeClassifierCV) and a ridge regression (severity). Windows are combined per recording with
`valgusml.preprocess.aggregate_model_input`, the rule the predictor uses.

aeon compiles MiniRocket with numba on first use (~35 s); set NUMBA_CACHE_DIR to keep the compiled code.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from valgusml.errors import ConfigError, InputError
from valgusml.evaluation.baselines.feature_model import _Constant, full_probabilities
from valgusml.features.frame import mirror_frame_measures
from valgusml.labels import MECHANISMS
from valgusml.scoring.arrays import ScoreArrays
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS, canonical_index

CHANNELS = ("measures", "joints", "both")
_FLIP = SKELETONS["canonical"].flip_index
_HIPS = [canonical_index("left_hip"), canonical_index("right_hip")]
_LEG = [(canonical_index(f"{s}_hip"), canonical_index(f"{s}_knee"), canonical_index(f"{s}_ankle")) for s in ("left", "right")]


def normalised_joints(joints: np.ndarray) -> np.ndarray:
    """`(N, W, 20, 2)` x/y centred on each window's mean mid-hip and divided by its median leg length."""
    xy = joints[..., :2].astype(np.float64)
    seen = joints[..., 2] > 0
    hips = np.where(seen[..., _HIPS, None], xy[..., _HIPS, :], np.nan).mean(axis=2)  # (N, W, 2)
    # A window that never sees both hips (a side or far view) has no centre: NaN here, 0 below, no warning.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmean(hips, axis=1, keepdims=True)[:, :, None, :]
        legs = [
            np.linalg.norm(xy[..., k, :] - xy[..., h, :], axis=-1) + np.linalg.norm(xy[..., a, :] - xy[..., k, :], axis=-1)
            for h, k, a in _LEG
        ]
        leg = np.nanmedian(np.where(seen[..., [h for h, _, _ in _LEG]].all(-1) & seen[..., [a for *_, a in _LEG]].all(-1),
                                    0.5 * (legs[0] + legs[1]), np.nan), axis=1)
    leg = np.where(np.isfinite(leg) & (leg > 0), leg, 1.0)[:, None, None, None]
    out = (xy - np.nan_to_num(centre)) / leg
    return np.where(seen[..., None], out, 0.0)


def mirror_joints(xy: np.ndarray) -> np.ndarray:
    mirrored = xy[..., _FLIP, :].copy()
    mirrored[..., 0] *= -1.0
    return mirrored


class MiniRocketModel:
    """aeon MiniRocket features + logistic/ridge heads on preprocessed windows."""

    name = "minirocket"

    def __init__(self, num_kernels: int = 2000, channels: str = "both", preprocess: dict | None = None,
                 C: float = 0.1, max_windows: int = 4000, seed: int = 0, n_jobs: int = 1):
        if channels not in CHANNELS:
            raise ConfigError(f"MiniRocketModel channels must be one of {CHANNELS}, got {channels!r}")
        if num_kernels < 84:
            raise ConfigError(f"MiniRocketModel num_kernels must be >= 84 (MiniRocket's minimum), got {num_kernels}")
        self.num_kernels = int(num_kernels)
        self.channels = channels
        self.preprocess = dict(preprocess or {})
        self.C = float(C)
        self.max_windows = int(max_windows)
        self.seed = int(seed)
        self.n_jobs = int(n_jobs)

    def _windows(self, sequences: Sequence[KeypointSequence]):
        from valgusml.preprocess import PreprocessConfig, prepare_many

        cfg = PreprocessConfig.from_dict(self.preprocess)
        return prepare_many(sequences, cfg)

    def _limb_series(self, model_input) -> np.ndarray:
        """`(2, N, C, W)` float64 series for the left-limb and right-limb views of every window."""
        views = []
        if self.channels in ("measures", "both"):
            m = model_input.measures.astype(np.float64)
            views.append((m, mirror_frame_measures(m)))
        if self.channels in ("joints", "both"):
            xy = normalised_joints(model_input.joints)
            n, w = xy.shape[:2]
            views.append((xy.reshape(n, w, -1), mirror_joints(xy).reshape(n, w, -1)))
        left = np.concatenate([v[0] for v in views], axis=-1)
        right = np.concatenate([v[1] for v in views], axis=-1)
        # C-contiguous float64 always: numba compiles one specialisation per memory layout
        return np.ascontiguousarray(np.stack([left, right]).transpose(0, 1, 3, 2), dtype=np.float64)

    def _features(self, series: np.ndarray) -> np.ndarray:
        two, n, c, w = series.shape
        flat = np.ascontiguousarray(series.reshape(two * n, c, w))
        return np.asarray(self.transform_.transform(flat), dtype=np.float64)

    def fit(self, sequences: Sequence[KeypointSequence]) -> MiniRocketModel:
        from aeon.transformations.collection.convolution_based import MiniRocket

        from valgusml.scoring.arrays import LabelArrays

        if not sequences:
            raise InputError("minirocket.fit got no sequences")
        model_input = self._windows(sequences)
        labels = LabelArrays.from_sequences(sequences)
        rows = np.arange(len(model_input))
        if len(rows) > self.max_windows:  # keep the fit affordable on long recordings
            rows = np.sort(np.random.default_rng(self.seed).choice(rows, self.max_windows, replace=False))
        series = np.ascontiguousarray(self._limb_series(model_input)[:, rows])
        seq = model_input.sequence_index[rows]
        self.transform_ = MiniRocket(n_kernels=self.num_kernels, n_jobs=self.n_jobs, random_state=self.seed)
        self.transform_.fit(np.ascontiguousarray(series.reshape(-1, *series.shape[2:])))
        x = self._features(series)
        # rows: all left views, then all right views
        valgus = np.concatenate([labels.valgus[seq, 0], labels.valgus[seq, 1]])
        mechanism = np.concatenate([labels.mechanism[seq, 0], labels.mechanism[seq, 1]])
        severity = np.concatenate([labels.severity_deg[seq, 0], labels.severity_deg[seq, 1]])
        self.valgus_model_ = self._classifier(x, valgus)
        known = mechanism >= 0  # rule-labelled limbs: presence only
        self.mechanism_model_ = self._classifier(x[known], mechanism[known])
        ok = np.isfinite(severity)
        self.severity_model_ = (
            make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(x[ok], severity[ok]) if ok.sum() >= 2 else None
        )
        return self

    def _classifier(self, x: np.ndarray, y: np.ndarray):
        if len(np.unique(y)) < 2:
            return _Constant(int(y[0]))
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=1000)).fit(x, y)

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        from valgusml.preprocess import PreprocessConfig, aggregate_model_input

        model_input = self._windows(sequences)
        n_windows = len(model_input)
        x = self._features(self._limb_series(model_input))
        prob = full_probabilities(self.valgus_model_, x, 2)[:, 1]
        mech = full_probabilities(self.mechanism_model_, x, len(MECHANISMS))
        severity = self.severity_model_.predict(x) if self.severity_model_ is not None else np.full(len(x), np.nan)

        def per_window(values: np.ndarray) -> np.ndarray:  # (2W, ...) → (W, 2, ...)
            return np.stack([values[:n_windows], values[n_windows:]], axis=1)

        combined, _ = aggregate_model_input(
            {
                "valgus_probability": per_window(prob),
                "mechanism_probabilities": per_window(mech),
                "severity_deg": per_window(severity),
            },
            model_input,
            PreprocessConfig.from_dict(self.preprocess).fps,
        )
        return ScoreArrays(
            np.clip(combined["valgus_probability"], 0.0, 1.0),
            combined["mechanism_probabilities"],
            combined["severity_deg"],
        )
