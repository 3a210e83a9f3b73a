"""`Predictor`: an exported folder (see `valgusml.predictor.format`) run with numpy + onnxruntime only (no torch, no pickle).

`Predictor.load` checks `model.json` and the sha256 of `model.onnx`, then builds an ONNX Runtime session from
the very bytes it hashed. How a recording becomes one answer:
1. keypoints of any supported skeleton and fps → the canonical skeleton (once: `Prediction.measures` reads the
   same mapped sequence) → `valgusml.preprocess.prepare_many` (front view, resampling to the model's fps,
   sliding windows with a padding mask);
2. one ONNX call per chunk of windows (many recordings share a call in `predict_batch`);
3. `valgusml.preprocess.aggregate_model_input` combines the windows of one recording: its worst scored segment
   (rep, landing), admitted for the view (the same rule evaluation uses);
4. per limb, the mechanism distribution is made consistent with the valgus probability (`results`).

Thread safety: a `Predictor` is immutable after `load`; ONNX Runtime's `InferenceSession.run` is thread-safe, and
every call works on its own arrays, so one predictor may serve many threads.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from valgusml.errors import ConfigError, InputError, ModelFileError
from valgusml.labels import DEFICITS, LIMBS
from valgusml.predictor.format import (
    OPTIONAL_OUTPUT_NAMES,
    OUTPUT_NAMES,
    check_measure_names,
    check_model_io,
    check_model_shapes,
    external_session_folder,
    model_file_path,
    preprocess_config,
    read_external_data,
    read_metadata,
    read_model_bytes,
)
from valgusml.predictor.measured import MeasuredPresence, apply_measured, read_measured
from valgusml.predictor.results import Prediction, make_prediction, offsets_array, weigh_deficits
from valgusml.predictor.sanity import check_input, undetected_as_missing
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS

# Larger than any pixel or metre coordinate a pose estimator emits; beyond it float32 maths in the
# normalisation (squares of distances) would overflow and turn into NaN probabilities.
MAX_ABS_COORDINATE = 1e6
# ONNX Runtime's session option naming where a graph's external data files are read from.
EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path"
# Windows per ONNX call: bounds memory for very long recordings or large batches.
DEFAULT_MAX_BATCH_WINDOWS = 256
# The deficit names as an array, indexed by the mechanism head's argmax in every timeline (built once).
_DEFICIT_NAMES = np.asarray(DEFICITS)


def session_options(threads: int = 1) -> ort.SessionOptions:
    """One intra- and inter-op thread by default: callers parallelise over requests, not inside one."""
    # Refused here, as `valgusml predict --threads` refuses them: ONNX Runtime would read 0 as its default (a thread
    # per core), int() would make 2.5 two threads and "x" a bare ValueError.
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r:.40}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


class Predictor:
    """A loaded predictor folder. Build with `Predictor.load(folder)`."""

    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: dict[str, Any],
        folder: Path | None = None,
        max_batch_windows: int = DEFAULT_MAX_BATCH_WINDOWS,
        measure_3d: bool = True,
    ) -> None:
        from valgusml.preprocess import n_measures

        self._session = session
        self.metadata = metadata
        self.folder = folder
        where = self.folder or "model"
        self.preprocess = preprocess_config(metadata["preprocess"], where)
        self.decision_threshold = float(metadata["decision_threshold"])
        # (4,) per deficit, DEFICITS order; zeros for folders exported without them (`read_metadata` checked them).
        self.mechanism_offsets = offsets_array(metadata.get("mechanism_offsets"))
        self._threshold_free = False
        self.undecided = float(metadata.get("presence_undecided", 0.5))  # where side views are pulled
        self.max_batch_windows = max(1, int(max_batch_windows))
        self.measure_3d = bool(measure_3d)
        outputs = [o.name for o in session.get_outputs()]
        check_model_io([i.name for i in session.get_inputs()], outputs, where)
        # The outputs read from every call: the required ones, then the optional ones this graph has.
        self.output_names = OUTPUT_NAMES + tuple(name for name in OPTIONAL_OUTPUT_NAMES if name in outputs)
        check_measure_names(metadata, where)
        check_model_shapes({i.name: i.shape for i in session.get_inputs()}, self.preprocess, n_measures(), where)

    @property
    def _neutral(self) -> float:
        """Where a side view's probabilities are pulled: the head's undecided answer (`undecided_probability`),
        never onto this predictor's threshold or over it."""
        from valgusml.features.view import admission_neutral

        return admission_neutral(None if self._threshold_free else self.decision_threshold, self.undecided)

    def threshold_free(self) -> Predictor:
        """This predictor (the same session) answering with side views admitted towards its undecided answer
        whatever its threshold: the answers a decision threshold is chosen on
        (`valgusml.export.folder.validation_threshold`, as training chooses it), since where a threshold under
        that answer pulls them depends on that threshold."""
        free = copy.copy(self)
        free._threshold_free = True
        return free

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        threads: int = 1,
        providers: Sequence[str] | None = None,
        options: ort.SessionOptions | None = None,
        max_batch_windows: int = DEFAULT_MAX_BATCH_WINDOWS,
        measure_3d: bool = True,
    ) -> Predictor:
        """Load a folder written by `valgusml export`; refuses a wrong hash, version or missing file.

        `threads` sets ONNX Runtime's intra-op threads (an integer >= 1, else `ConfigError`; 1 by default;
        `options` overrides everything);
        `providers` defaults to the CPU provider. `measure_3d`: a 3D recording's valgus probability and
        severity come from its measured frontal-plane angle (`valgusml.predictor.measured`) where its joint
        centres hold steady from frame to frame (estimated 3D is the network's, with a warning); False gives the
        network's estimate for all 3D as for 2D.
        """
        folder = Path(folder)
        meta = read_metadata(folder)
        data = read_model_bytes(folder, meta)
        external = read_external_data(folder, meta)
        options = options or session_options(threads)
        try:
            # From the hashed bytes, not the path: what runs is exactly what was verified; external data only
            # from a private copy of the verified files (never the working directory).
            with external_session_folder(external) as private:
                options.add_session_config_entry(EXTERNAL_DATA_FOLDER, private)
                session = ort.InferenceSession(
                    data, sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
                )
        except Exception as exc:  # onnxruntime raises its own exception types for invalid graphs
            hint = (" (it refers to external data that model.json's model.external_data does not list with a "
                    "sha256)" if "external data" in str(exc).lower() else "")
            raise ModelFileError(f"{model_file_path(folder, meta)}: ONNX Runtime cannot load the model{hint} ({exc})") from None
        return cls(session, meta, folder, max_batch_windows=max_batch_windows, measure_3d=measure_3d)

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
        """Raw model outputs (`output_names`) for prepared windows `(N, W, ...)`, chunked into calls of
        `max_batch_windows`."""
        n = len(joints)
        outs: list[list[np.ndarray]] = [[] for _ in self.output_names]
        for start in range(0, n, self.max_batch_windows):
            stop = start + self.max_batch_windows
            feed = {
                "joints": np.ascontiguousarray(joints[start:stop], dtype=np.float32),
                "measures": np.ascontiguousarray(measures[start:stop], dtype=np.float32),
                "mask": np.ascontiguousarray(mask[start:stop], dtype=np.float32),
            }
            for k, value in enumerate(self._session.run(list(self.output_names), feed)):
                outs[k].append(value)
        return tuple(np.concatenate(o, axis=0) for o in outs)

    def _check_outputs(self, valgus: np.ndarray, mechanism: np.ndarray) -> None:
        """Probabilities a model gives must be probabilities: anything else is a broken model file, not an
        answer (a model giving p = 7 would otherwise be reported as valgus)."""
        for name, value in (("valgus_probability", valgus), ("mechanism_probabilities", mechanism)):
            with np.errstate(invalid="ignore"):
                bad = np.isfinite(value) & ((value < -1e-6) | (value > 1 + 1e-6))
            if bad.any():
                raise ModelFileError(
                    f"{self.folder or 'model'}: the model gave {name} {float(value[bad][0]):g}, outside [0, 1]; "
                    "the model file is broken"
                )
        sums = mechanism.sum(axis=-1)
        if (np.isfinite(sums) & (np.abs(sums - 1.0) > 1e-3)).any():
            raise ModelFileError(f"{self.folder or 'model'}: the model's mechanism probabilities do not sum to 1")

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
        from valgusml.preprocess import aggregate_model_input, prepare_many

        if isinstance(items, (np.ndarray, KeypointSequence)):
            raise InputError("predict_batch takes a list of recordings; use predict() for one")
        if items is None or isinstance(items, (str, bytes, dict)) or not hasattr(items, "__iter__"):
            raise InputError(f"predict_batch takes a list of recordings, got {type(items).__name__}")
        items = list(items)
        if not items:
            return []
        if confidence is not None and (isinstance(confidence, (str, bytes, dict)) or not hasattr(confidence, "__iter__")
                                       or isinstance(confidence, np.ndarray) and confidence.ndim == 0):
            raise InputError(f"confidence takes one entry (array or None) per recording, got {type(confidence).__name__}")
        confidences = list(confidence) if confidence is not None else [None] * len(items)
        if len(confidences) != len(items):
            raise InputError(f"confidence has {len(confidences)} entries for {len(items)} recordings")
        # Mapped to the canonical skeleton once: preprocessing and the (lazy) summary measures share it.
        canonical, sanity_notes = [], []
        for i, (item, conf) in enumerate(zip(items, confidences, strict=True)):
            where = f"recording {i}: " if len(items) > 1 else ""
            seq, placeholder_notes = undetected_as_missing(_as_sequence(item, skeleton, fps, conf, where=where), where)
            seq, notes = check_input(seq.to_canonical(), where)
            canonical.append(seq)
            sanity_notes.append(placeholder_notes + notes)
        model_input = prepare_many(canonical, self.preprocess, noun="recording")
        per_window = dict(zip(self.output_names, self.run_windows(model_input.joints, model_input.measures,
                                                                  model_input.mask), strict=True))
        valgus_w, mechanism_w = per_window["valgus_probability"], per_window["mechanism_probabilities"]
        self._check_outputs(valgus_w, mechanism_w)
        aggregated, view_notes = aggregate_model_input(per_window, model_input, self.fps, self._neutral)
        valgus_s, mechanism_s, severity_s = (aggregated[name] for name in OUTPUT_NAMES)
        frontal_s = aggregated.get("frontal_fppa_deg", np.full_like(valgus_s, np.nan))
        predictions = []
        for i, seq in enumerate(canonical):
            rows = np.flatnonzero(np.asarray(model_input.sequence_index) == i)
            values = (valgus_s[i], mechanism_s[i], severity_s[i])
            if not all(np.isfinite(v).all() for v in values):
                where = f"recording {i}: " if len(canonical) > 1 else ""
                raise InputError(f"{where}the model gave a non-finite output; the keypoints are not usable as given")
            view = model_input.views[i].to_dict()
            notes = sanity_notes[i] + view_notes[i] + model_input.warnings[i]
            frontal = frontal_s[i]
            measured, estimated = read_measured(seq, self.decision_threshold) if self.measure_3d else (None, None)
            if estimated:
                notes = notes + [estimated]
                view["presence_from"] = dict.fromkeys(LIMBS, "network")
            if measured is not None:
                valgus, severity, frontal, read = apply_measured(measured, values[0], values[2], frontal)
                values = (valgus, values[1], severity)
                view["presence_from"] = {limb: ("measured" if limb in read else "network") for limb in LIMBS}
                unread = [limb for limb in model_input.scored_limbs[i] if limb not in read]
                if unread:
                    notes = notes + [f"3D input: no scored phase found for the {' and '.join(unread)} knee"
                                     f"{'s' if len(unread) > 1 else ''}; valgus probability from the network"]
            predictions.append(
                make_prediction(
                    *values,
                    decision_threshold=self.decision_threshold,
                    canonical=seq,
                    warnings=notes,
                    timeline=self._timeline(rows, model_input, valgus_w, mechanism_w, i, measured),
                    view=view,
                    frontal_fppa_deg=frontal,
                    mechanism_offsets=self.mechanism_offsets,
                )
            )
        return predictions

    def _timeline(
        self, rows: np.ndarray, model_input: Any, valgus_w: np.ndarray, mechanism_w: np.ndarray, index: int,
        measured: MeasuredPresence | None = None,
    ) -> list:
        """One entry per scored segment of recording `index` (rep, landing, stance; windows when the motion
        shows none, or the recording is one window long): its time span, kind, and each limb's valgus
        probability (admitted for the view, as the recording's; for 3D input the rule over the span, as the
        recording's) and mechanism (`None` for a limb not loaded in it)."""
        from valgusml.features.view import admit_view
        from valgusml.preprocess import segment_overlaps, segment_probabilities

        segments = model_input.segments[index]
        valgus, mechanism = valgus_w[rows], mechanism_w[rows]
        start = np.asarray(model_input.window_start_s)[rows]
        frames = np.asarray(model_input.mask)[rows].sum(axis=1)
        if segments:
            overlaps = segment_overlaps(segments, start * self.fps, frames)
            weights = overlaps / np.maximum(overlaps.sum(1, keepdims=True), 1e-12)
            spans = [(g.start / self.fps, g.end / self.fps, g.kind, g.limbs) for g in segments]
            probability, mechanism = segment_probabilities(valgus, overlaps), np.einsum("sn,nlm->slm", weights, mechanism)
        else:
            scored = model_input.scored_limbs[index]
            spans = [(s, s + f / self.fps, "window", scored) for s, f in zip(start.tolist(), frames.tolist(), strict=True)]
            probability = valgus
        probability = admit_view(probability, model_input.views[index], self._neutral)[0]
        if measured is not None:
            # A measured limb: each span's own rule reading; a span the rule scores no frame of keeps the
            # network's value, capped at the recording's. The span nearest the rule's peak (the segments are
            # found at the model's frame rate, the rule's phases at the recording's) carries the recording's
            # value, so the recording's answer stays its worst span's.
            probability = np.array(probability, dtype=np.float64)
            for j, whole in enumerate(measured.readings):
                if whole is None or not spans:
                    continue
                for k, (begin, end, _, _) in enumerate(spans):
                    span = measured.limb(j, begin, end)
                    probability[k, j] = span[0] if span is not None else min(probability[k, j], whole[0])
                distance = [max(begin - whole[2], whole[2] - end, 0.0) if LIMBS[j] in limbs else math.inf
                            for begin, end, _, limbs in spans]
                if math.isfinite(min(distance)):
                    probability[int(np.argmin(distance)), j] = whole[0]
        # The most probable deficit (weighed as the recording's) where the limb is over the threshold.
        deficit = _DEFICIT_NAMES[np.argmax(weigh_deficits(mechanism, self.mechanism_offsets)[..., 1:], axis=-1)]
        names = np.where(probability >= self.decision_threshold, deficit, "none")
        out = []
        for k, (begin, end, kind, limbs) in enumerate(spans):
            out.append({
                "start_s": round(float(begin), 4),
                "end_s": round(float(end), 4),
                "kind": kind,
                "valgus_probability": {
                    limb: (round(float(probability[k, j]), 6) if limb in limbs and np.isfinite(probability[k, j]) else None)
                    for j, limb in enumerate(LIMBS)
                },
                "mechanism": {limb: (str(names[k, j]) if limb in limbs else None) for j, limb in enumerate(LIMBS)},
            })
        return out

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
    # A cheap screen first (one pass; fmax skips the NaN of missing points, NaN when all are missing), the
    # search for the offending point only when there is one.
    if seq.keypoints.size and np.fmax.reduce(np.abs(seq.keypoints), axis=None) > MAX_ABS_COORDINATE:
        finite = np.isfinite(seq.keypoints)
        offending = np.argwhere(finite & (np.abs(np.nan_to_num(seq.keypoints)) > MAX_ABS_COORDINATE))
        if len(offending):
            t, j, _ = offending[0]
            raise InputError(
                f"{where}keypoint of joint {seq.joints[j]!r} at frame {t} is {seq.keypoints[t, j].tolist()}: "
                f"coordinates beyond ±{MAX_ABS_COORDINATE:g} are not pixels or metres"
            )
    return seq
