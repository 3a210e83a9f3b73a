"""`Predictor` / `Prediction`: the exported model, run with numpy + onnxruntime only (no torch, no pickle).

An exported predictor folder holds `model.onnx` (the network with its normalisation and input streams, dynamic
batch of fixed-length windows) and `model.json` (everything needed to feed it: preprocessing parameters, the
decision threshold, provenance, the sha256 of `model.onnx`). `Predictor.load` verifies the hash and the format
version before building an ONNX Runtime session from the very bytes it hashed.

How a recording becomes one answer:
1. keypoints of any supported skeleton and fps → `valgusml.preprocess.prepare_many` (canonical skeleton, front
   view, resampling to the model's fps, sliding windows with a padding mask);
2. one ONNX call per chunk of windows (many recordings share a call in `predict_batch`);
3. `valgusml.preprocess.aggregate_windows` combines the windows of one recording (the same rule evaluation uses);
4. per limb, the mechanism distribution is made consistent with the valgus probability (below);
5. `Prediction.measures` (`valgusml.features.measures` of the recording) is computed on first access: it costs
   more than steps 2-4 together, and a caller that only reads probabilities should not pay for it.

Mechanism probabilities: the network has a valgus head (P(valgus)) and a mechanism head (a distribution over
MECHANISMS). The reported distribution is
    P(none) = 1 - P(valgus),   P(m) = P(valgus) * q(m) / sum_k q(k)   for m in DEFICITS,
where q is the mechanism head's output without its `none` entry. It sums to 1, its `none` entry agrees with the
valgus probability, and the relative ranking of the deficits is the mechanism head's. A limb's `mechanism` is
`none` when its valgus probability is below the stored decision threshold, and otherwise its most probable
deficit (labels use the same rule: `none` exactly when there is no valgus).

Thread safety: a `Predictor` is immutable after `load`; ONNX Runtime's `InferenceSession.run` is thread-safe, and
every call works on its own arrays, so one predictor may serve many threads.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from valgusml.errors import InputError, ModelFileError
from valgusml.labels import DEFICITS, LIMBS, MECHANISMS
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
MODEL_FILE = "model.onnx"
META_FILE = "model.json"
INPUT_NAMES = ("joints", "measures", "mask")
OUTPUT_NAMES = ("valgus_probability", "mechanism_probabilities", "severity_deg")

# Larger than any pixel or metre coordinate a pose estimator emits; beyond it float32 maths in the
# normalisation (squares of distances) would overflow and turn into NaN probabilities.
MAX_ABS_COORDINATE = 1e6
# Windows per ONNX call: bounds memory for very long recordings or large batches.
DEFAULT_MAX_BATCH_WINDOWS = 256


# -- results ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LimbPrediction:
    """One limb's answer. Fields read as attributes (`limb.valgus_probability`) or keys (`limb["mechanism"]`)."""

    valgus_probability: float
    mechanism: str
    mechanism_probabilities: dict[str, float]
    valgus: bool
    severity_deg: float

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valgus_probability": self.valgus_probability,
            "valgus": self.valgus,
            "mechanism": self.mechanism,
            "mechanism_probabilities": dict(self.mechanism_probabilities),
            "severity_deg": self.severity_deg,
        }


class _LazyMeasures:
    """`valgusml.features.measures(seq)`, computed on first use and kept (thread-safe).

    The summary measures cost more than the network call itself; callers that only read probabilities do not
    pay for them, and `Prediction.measures` / `to_dict()` compute them once.
    """

    __slots__ = ("_lock", "_sequence", "_value")

    def __init__(self, sequence: KeypointSequence | None = None, value: dict[str, Any] | None = None) -> None:
        self._sequence, self._value, self._lock = sequence, value, threading.Lock()

    def get(self) -> dict[str, Any]:
        with self._lock:
            if self._value is None:
                from valgusml.features import measures

                self._value = _jsonable(measures(self._sequence)) if self._sequence is not None else {}
                self._sequence = None
            return self._value


@dataclass(frozen=True)
class Prediction:
    """The answer for one recording; the top-level fields are those of the more affected limb (`limb`).

    `measures` (the biomechanical summary of the recording, `valgusml.features.measures`) is computed on first
    access; everything else is computed by `predict`.
    """

    valgus_probability: float
    mechanism: str
    mechanism_probabilities: dict[str, float]
    valgus: bool
    severity_deg: float
    limb: str
    limbs: dict[str, LimbPrediction]
    warnings: list[str]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    decision_threshold: float = 0.5
    _measures: _LazyMeasures = field(default_factory=_LazyMeasures, repr=False, compare=False)

    @property
    def measures(self) -> dict[str, Any]:
        return self._measures.get()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (NaN becomes None), ready for `json.dumps`."""
        return _jsonable(
            {
                "valgus_probability": self.valgus_probability,
                "valgus": self.valgus,
                "mechanism": self.mechanism,
                "mechanism_probabilities": self.mechanism_probabilities,
                "severity_deg": self.severity_deg,
                "limb": self.limb,
                "decision_threshold": self.decision_threshold,
                "limbs": {name: limb.to_dict() for name, limb in self.limbs.items()},
                "measures": self.measures,
                "warnings": list(self.warnings),
                "timeline": self.timeline,
            }
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def combine_mechanisms(valgus_probability: np.ndarray, mechanism_probabilities: np.ndarray) -> np.ndarray:
    """`(..., 5)` distribution over MECHANISMS consistent with `(...)` valgus probabilities (see module doc)."""
    p = np.clip(np.asarray(valgus_probability, dtype=np.float64), 0.0, 1.0)
    deficits = np.clip(np.asarray(mechanism_probabilities, dtype=np.float64)[..., 1:], 0.0, None)
    total = deficits.sum(axis=-1, keepdims=True)
    # A head that puts all its mass on `none` says nothing about which deficit: spread evenly.
    conditional = np.where(total > 1e-12, deficits / np.maximum(total, 1e-12), 1.0 / len(DEFICITS))
    return np.concatenate([(1.0 - p)[..., None], p[..., None] * conditional], axis=-1)


# -- loading ------------------------------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """Parse and check `model.json` of an exported folder (no model loading)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: not a predictor folder (written by `valgusml export`)")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ModelFileError(f"{folder}: missing {META_FILE}; is this a folder written by `valgusml export`?")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{meta_path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{meta_path}: expected a JSON object")
    version = meta.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelFileError(
            f"{meta_path}: unknown format_version {version!r}; this valgusml reads {SUPPORTED_FORMAT_VERSIONS}"
        )
    required = ("mechanisms", "preprocess", "decision_threshold", "model")
    missing = [k for k in required if k not in meta]
    if missing:
        raise ModelFileError(f"{meta_path}: missing keys {missing}")
    if tuple(meta["mechanisms"]) != MECHANISMS:
        raise ModelFileError(f"{meta_path}: mechanisms {meta['mechanisms']} differ from this valgusml's {MECHANISMS}")
    model = meta["model"]
    if not isinstance(model, dict) or not isinstance(model.get("sha256"), str):
        raise ModelFileError(f"{meta_path}: 'model' must hold the file's sha256")
    threshold = meta["decision_threshold"]
    if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise ModelFileError(f"{meta_path}: decision_threshold must be a number in [0, 1], got {threshold!r}")
    return meta


def session_options(threads: int = 1) -> ort.SessionOptions:
    """One intra- and inter-op thread by default: callers parallelise over requests, not inside one."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


# -- the predictor ------------------------------------------------------------------------------------------
class Predictor:
    """A loaded predictor folder. Build with `Predictor.load(folder)`."""

    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: dict[str, Any],
        folder: Path | None = None,
        max_batch_windows: int = DEFAULT_MAX_BATCH_WINDOWS,
    ) -> None:
        from valgusml.preprocess import PreprocessConfig

        self._session = session
        self.metadata = metadata
        self.folder = folder
        self.preprocess = PreprocessConfig.from_dict(metadata["preprocess"])
        self.decision_threshold = float(metadata["decision_threshold"])
        self.max_batch_windows = max(1, int(max_batch_windows))
        self._check_session()

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        threads: int = 1,
        providers: Sequence[str] | None = None,
        options: ort.SessionOptions | None = None,
        max_batch_windows: int = DEFAULT_MAX_BATCH_WINDOWS,
    ) -> Predictor:
        """Load a folder written by `valgusml export`; refuses a wrong hash, version or missing file.

        `threads` sets ONNX Runtime's intra-op threads (1 by default; `options` overrides everything);
        `providers` defaults to the CPU provider.
        """
        folder = Path(folder)
        meta = read_metadata(folder)
        model_path = folder / meta["model"].get("file", MODEL_FILE)
        try:
            data = model_path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{model_path}: cannot read the model ({exc.strerror or exc})") from None
        digest = sha256_bytes(data)
        if digest != meta["model"]["sha256"]:
            raise ModelFileError(
                f"{model_path}: sha256 {digest[:12]}… does not match model.json's {meta['model']['sha256'][:12]}…; "
                "the file is corrupt or was replaced"
            )
        try:
            # From the hashed bytes, not the path: what runs is exactly what was verified.
            session = ort.InferenceSession(
                data,
                sess_options=options or session_options(threads),
                providers=list(providers or ["CPUExecutionProvider"]),
            )
        except Exception as exc:  # onnxruntime raises its own exception types for invalid graphs
            raise ModelFileError(f"{model_path}: ONNX Runtime cannot load the model ({exc})") from None
        return cls(session, meta, folder, max_batch_windows=max_batch_windows)

    def _check_session(self) -> None:
        names = tuple(i.name for i in self._session.get_inputs())
        outputs = tuple(o.name for o in self._session.get_outputs())
        where = self.folder or "model"
        if set(names) != set(INPUT_NAMES) or set(outputs) != set(OUTPUT_NAMES):
            raise ModelFileError(
                f"{where}: model inputs {names} / outputs {outputs}; expected {INPUT_NAMES} / {OUTPUT_NAMES}"
            )
        from valgusml.features import FRAME_MEASURES

        stored = self.metadata.get("measure_names")
        if stored is not None and tuple(stored) != tuple(FRAME_MEASURES):
            added = [m for m in FRAME_MEASURES if m not in stored]
            dropped = [m for m in stored if m not in FRAME_MEASURES]
            raise ModelFileError(
                f"{where}: the model was exported with {len(stored)} frame measures, this valgusml computes "
                f"{len(FRAME_MEASURES)} (new: {added}, gone: {dropped}, else reordered); re-export it with this version"
            )

    # -- properties --------------------------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return float(self.preprocess.fps)

    @property
    def window(self) -> int:
        return int(self.preprocess.window)

    def __repr__(self) -> str:
        return (
            f"Predictor({str(self.folder)!r}, fps={self.fps:g}, window={self.window}, "
            f"threshold={self.decision_threshold:.3f})"
        )

    # -- inference ---------------------------------------------------------------------------------------
    def run_windows(self, joints: np.ndarray, measures: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        """Raw model outputs for prepared windows `(N, W, ...)`, chunked into calls of `max_batch_windows`."""
        n = len(joints)
        outs: list[list[np.ndarray]] = [[], [], []]
        for start in range(0, n, self.max_batch_windows):
            stop = start + self.max_batch_windows
            feed = {
                "joints": np.ascontiguousarray(joints[start:stop], dtype=np.float32),
                "measures": np.ascontiguousarray(measures[start:stop], dtype=np.float32),
                "mask": np.ascontiguousarray(mask[start:stop], dtype=np.float32),
            }
            for k, value in enumerate(self._session.run(list(OUTPUT_NAMES), feed)):
                outs[k].append(value)
        return tuple(np.concatenate(o, axis=0) for o in outs)

    def predict(
        self,
        keypoints: np.ndarray | KeypointSequence,
        skeleton: str = "halpe26",
        fps: float = 60.0,
        confidence: np.ndarray | None = None,
    ) -> Prediction:
        """Predict one recording: `(T, J, 2|3)` keypoints of `skeleton` at `fps`, or a `KeypointSequence`."""
        return self.predict_batch([keypoints], skeleton=skeleton, fps=fps, confidence=[confidence])[0]

    def predict_batch(
        self,
        items: Sequence[np.ndarray | KeypointSequence],
        skeleton: str = "halpe26",
        fps: float = 60.0,
        confidence: Sequence[np.ndarray | None] | None = None,
    ) -> list[Prediction]:
        """Predict many recordings with few ONNX calls (their windows are stacked into shared batches).

        Arrays use `skeleton` and `fps`; a `KeypointSequence` brings its own. `confidence`, if given, has one
        entry (array or None) per item. Bad input raises InputError naming the item.
        """
        from valgusml.preprocess import aggregate_windows, prepare_many

        if isinstance(items, (np.ndarray, KeypointSequence)):
            raise InputError("predict_batch takes a list of recordings; use predict() for one")
        items = list(items)
        if not items:
            return []
        confidences = list(confidence) if confidence is not None else [None] * len(items)
        if len(confidences) != len(items):
            raise InputError(f"confidence has {len(confidences)} entries for {len(items)} recordings")
        sequences = [
            _as_sequence(item, skeleton, fps, conf, where=f"recording {i}: " if len(items) > 1 else "")
            for i, (item, conf) in enumerate(zip(items, confidences, strict=True))
        ]
        model_input = prepare_many(sequences, self.preprocess)
        valgus_w, mechanism_w, severity_w = self.run_windows(
            model_input.joints, model_input.measures, model_input.mask
        )
        per_window = dict(zip(OUTPUT_NAMES, (valgus_w, mechanism_w, severity_w), strict=True))
        aggregated = aggregate_windows(
            per_window, model_input.sequence_index, model_input.mask, n_sequences=len(sequences)
        )
        valgus_s, mechanism_s, severity_s = (aggregated[name] for name in OUTPUT_NAMES)
        predictions = []
        for i, seq in enumerate(sequences):
            rows = np.flatnonzero(np.asarray(model_input.sequence_index) == i)
            warnings = list(model_input.warnings[i])
            values = (valgus_s[i], mechanism_s[i], severity_s[i])
            if not all(np.isfinite(v).all() for v in values):
                where = f"recording {i}: " if len(sequences) > 1 else ""
                raise InputError(f"{where}the model gave a non-finite output; the keypoints are not usable as given")
            timeline = self._timeline(rows, model_input, valgus_w, mechanism_w)
            predictions.append(
                self._prediction(*values, sequence=seq, warnings=warnings, timeline=timeline)
            )
        return predictions

    def _timeline(self, rows: np.ndarray, model_input: Any, valgus_w: np.ndarray, mechanism_w: np.ndarray) -> list:
        """Per window of one recording: its time span and each limb's valgus probability and mechanism."""
        valgus = valgus_w[rows]
        # Mechanism per window and limb: the most probable deficit where the limb is over the threshold.
        deficit = np.argmax(mechanism_w[rows][..., 1:], axis=-1)
        names = np.where(valgus >= self.decision_threshold, np.asarray(DEFICITS)[deficit], "none").tolist()
        start = np.asarray(model_input.window_start_s)[rows]
        end = start + np.asarray(model_input.mask)[rows].sum(axis=1) / self.fps
        valgus = valgus.tolist()
        return [
            {
                "start_s": round(float(start[k]), 4),
                "end_s": round(float(end[k]), 4),
                "valgus_probability": dict(zip(LIMBS, valgus[k], strict=True)),
                "mechanism": dict(zip(LIMBS, names[k], strict=True)),
            }
            for k in range(len(rows))
        ]

    def _mechanism_name(self, valgus_probability: float, combined: np.ndarray) -> str:
        if valgus_probability < self.decision_threshold:
            return "none"
        return DEFICITS[int(np.argmax(combined[1:]))]

    def _prediction(
        self,
        valgus: np.ndarray,
        mechanism: np.ndarray,
        severity: np.ndarray,
        *,
        sequence: KeypointSequence,
        warnings: list[str],
        timeline: list[dict[str, Any]],
    ) -> Prediction:
        combined = combine_mechanisms(valgus, mechanism)
        limbs = {}
        for k, limb in enumerate(LIMBS):
            p = float(valgus[k])
            limbs[limb] = LimbPrediction(
                valgus_probability=p,
                mechanism=self._mechanism_name(p, combined[k]),
                mechanism_probabilities={m: float(combined[k, j]) for j, m in enumerate(MECHANISMS)},
                valgus=p >= self.decision_threshold,
                severity_deg=float(severity[k]),
            )
        worst = max(LIMBS, key=lambda name: limbs[name].valgus_probability)
        top = limbs[worst]
        return Prediction(
            valgus_probability=top.valgus_probability,
            mechanism=top.mechanism,
            mechanism_probabilities=dict(top.mechanism_probabilities),
            valgus=top.valgus,
            severity_deg=top.severity_deg,
            limb=worst,
            limbs=limbs,
            warnings=list(dict.fromkeys(warnings)),
            timeline=timeline,
            decision_threshold=self.decision_threshold,
            _measures=_LazyMeasures(sequence),
        )


# -- input handling -----------------------------------------------------------------------------------------
def _as_sequence(
    item: Any, skeleton: str, fps: float, confidence: np.ndarray | None, where: str = ""
) -> KeypointSequence:
    if isinstance(item, KeypointSequence):
        seq = item if confidence is None else item.replace(confidence=confidence)
    else:
        if not isinstance(skeleton, str) or skeleton not in SKELETONS:
            raise InputError(f"{where}unknown skeleton {skeleton!r}; supported: {sorted(SKELETONS)}")
        try:
            seq = KeypointSequence(keypoints=item, skeleton=skeleton, fps=fps, confidence=confidence)
        except InputError as exc:
            raise InputError(f"{where}{exc}") from None
    finite = np.isfinite(seq.keypoints)
    if finite.any() and np.abs(seq.keypoints[finite]).max() > MAX_ABS_COORDINATE:
        t, j, _ = np.argwhere(finite & (np.abs(np.nan_to_num(seq.keypoints)) > MAX_ABS_COORDINATE))[0]
        raise InputError(
            f"{where}keypoint of joint {seq.joints[j]!r} at frame {t} is {seq.keypoints[t, j].tolist()}: "
            f"coordinates beyond ±{MAX_ABS_COORDINATE:g} are not pixels or metres"
        )
    return seq
