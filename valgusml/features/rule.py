"""The valgus presence rule, applied to any motion: dynamic FPPA over the scored phase against a threshold.

This is the label's own definition (the generator computes it on its clean 3D motion, DESIGN.md): a limb is
valgus when its peak frontal-plane projection angle over the task's scored phase (`valgusml.features.phases`)
exceeds its standing FPPA by more than a task- and sex-specific threshold (`VALGUS_THRESHOLD_DEG`, BIOMECH.md's
healthy ranges). Read on 3D joint centres it labels real motion capture; read on 2D keypoints it is the
clinical 2D test and depends on the view.

Valgus in a drop jump's push-off is measured (`push_off_dynamic_fppa_deg`) but is not the label.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from valgusml.features.geometry import fppa_deg
from valgusml.features.phases import (
    infer_task,
    loaded_mask,
    phases,
    raw_knee_flexion,
    scored_mask,
    smooth_flexion,
    standing_frames,
    straight_frames,
)
from valgusml.json_safe import json_float
from valgusml.labels import LIMBS, VALGUS_THRESHOLD_DEG, check_task, task_family
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import canonical_index

SEXES = ("female", "male")
# Largest frame-to-frame change of the legs' segment lengths (`segment_length_jitter`) at which the rule's angle
# is read as measured: marker-based joint centres stay below it, estimated 3D does not (`valgusml.predictor.measured`).
MEASURED_3D_MAX_JITTER = 0.004
_JITTER_FPS = 30.0
_LEG_SEGMENTS = tuple(
    (canonical_index(f"{side}_{a}"), canonical_index(f"{side}_{b}")) for side in LIMBS for a, b in (("hip", "knee"), ("knee", "ankle"))
)
# Task from a file name, first match wins (`DJ1.trc` is a drop jump); no match → inferred from the motion;
# static trials have no movement to score (None).
TASK_PATTERNS: tuple[tuple[str, str | None], ...] = (
    (r"static", None),
    (r"^dj|drop", "drop_vertical_jump"),
    (r"step.?down", "lateral_step_down"),
    (r"single.?leg|balanc", "single_leg_squat_left"),
    (r"squat", "bilateral_squat"),
    (r"run", "running"),
    (r"walk|gait", "walking"),
)


def task_from_file_name(stem: str) -> str | None:
    """The task a file name announces, `""` to infer it from the motion, None for a static trial."""
    for pattern, task in TASK_PATTERNS:
        if re.search(pattern, stem.lower()):
            return task
    return ""


def rule_limb_labels(rule: dict[str, Any], sex: str | None = None) -> dict[str, Any]:
    """Per-limb labels from `apply_rule`'s output: valgus by the threshold of `sex` (unknown: the higher of
    the two, so no limb is called valgus on a guess), mechanism unknown (None) for a valgus limb, severity the
    peak FPPA of the scored phase."""
    labels = {}
    for limb in LIMBS:
        verdicts = rule[limb]["valgus"]
        valgus = verdicts[sex] if sex else all(verdicts.values())
        peak = rule[limb]["peak_fppa_deg"]
        labels[limb] = {
            "valgus": bool(valgus),
            "mechanism": None if valgus else "none",
            "severity_deg": float("nan") if peak is None else float(peak),
        }
    return labels


def standing_fppa(fppa: np.ndarray, flexion: np.ndarray) -> np.ndarray:
    """`(2,)` standing FPPA per limb: the median over frames with both knees near straight (quiet standing);
    where there are none (walking and running straighten one knee at a time), over the frames with the limb's
    own knee near straight."""
    standing = standing_frames(flexion)
    out = np.full(2, np.nan)
    for k in range(2):
        values = fppa[standing, k]
        if not np.isfinite(values).any():  # the limb's own straight frames, only when needed
            values = fppa[straight_frames(flexion[:, k]), k]
        values = values[np.isfinite(values)]
        if values.size:
            out[k] = float(np.median(values))
    return out


@dataclass(frozen=True)
class RuleFrames:
    """The rule's per-frame inputs for one recording: what `apply_rule` thresholds, kept for callers that score
    spans of it (the predictor's timeline). `fppa_deg (T, 2)`, `standing_fppa_deg (2,)`, `scored (T, 2)` (frames
    of the task's scored phase, per limb), `push_off (T, 2)`."""

    task: str
    task_family: str
    fppa_deg: np.ndarray
    standing_fppa_deg: np.ndarray
    scored: np.ndarray
    push_off: np.ndarray

    def peak_frame(self, limb: int, frames: slice = slice(None)) -> int | None:
        """The scored frame of highest FPPA within `frames` (an index into the whole recording), None if none."""
        scored = np.where(self.scored[frames, limb], self.fppa_deg[frames, limb], np.nan)
        if not np.isfinite(scored).any():
            return None
        return int(np.nanargmax(scored)) + (frames.start or 0)


def rule_frames(keypoints: np.ndarray, fps: float, task: str = "") -> RuleFrames:
    """`RuleFrames` of canonical keypoints `(T, 20, 2|3)`; the task is inferred from the motion when not given."""
    kp = np.asarray(keypoints, dtype=np.float64)
    task = check_task(task) or infer_task(kp, fps)
    fppa = fppa_deg(kp)
    raw = raw_knee_flexion(kp)  # the frame measures once, for every step below
    found = phases(kp, fps, task, flexion=raw)
    return RuleFrames(
        task=task,
        task_family=task_family(task),
        fppa_deg=fppa,
        standing_fppa_deg=standing_fppa(fppa, smooth_flexion(raw, fps)),
        scored=loaded_mask(kp, fps, task, flexion=raw, found=found),
        push_off=scored_mask(found, len(kp), kind="push_off"),
    )


def apply_rule(
    keypoints: np.ndarray, fps: float, task: str = "", sex: str | None = None
) -> dict[str, Any]:
    """The rule on canonical keypoints `(T, 20, 2|3)`, per limb.

    Returns `{"task", "task_family", "left": {...}, "right": {...}}` where each limb holds `peak_fppa_deg` (over its
    scored frames), `standing_fppa_deg`, `dynamic_fppa_deg`, `peak_time_s`, `threshold_deg` ({sex: deg}),
    `valgus` ({sex: bool}, or a bool when `sex` is given), `loaded` (any scored frame) and, for drop jumps,
    `push_off_dynamic_fppa_deg`.
    """
    frames = rule_frames(keypoints, fps, task)
    family, fppa, standing = frames.task_family, frames.fppa_deg, frames.standing_fppa_deg
    thresholds = VALGUS_THRESHOLD_DEG[family]
    out: dict[str, Any] = {"task": frames.task, "task_family": family}
    for k, limb in enumerate(LIMBS):
        peak_frame = frames.peak_frame(k)
        has = peak_frame is not None
        peak = float(fppa[peak_frame, k]) if has else math.nan
        dynamic = peak - standing[k]
        valgus = {s: bool(has and math.isfinite(dynamic) and dynamic > thresholds[s]) for s in SEXES}
        limb_out: dict[str, Any] = {
            "peak_fppa_deg": json_float(peak, 3),
            "standing_fppa_deg": json_float(standing[k], 3),
            "dynamic_fppa_deg": json_float(dynamic, 3),
            "peak_time_s": round(peak_frame / fps, 4) if has else None,
            "threshold_deg": dict(thresholds),
            "valgus": valgus[sex] if sex else valgus,
            "loaded": bool(has),
        }
        if family == "drop_vertical_jump":
            after = np.where(frames.push_off[:, k], fppa[:, k], np.nan)
            limb_out["push_off_dynamic_fppa_deg"] = (
                json_float(float(np.nanmax(after)) - standing[k], 3) if np.isfinite(after).any() else None
            )
        out[limb] = limb_out
    return out


def rule_labels(seq: KeypointSequence, sex: str | None = None) -> dict[str, Any]:
    """`apply_rule` on a sequence (mapped to the canonical skeleton; low-confidence joints are missing)."""
    canon = seq.to_canonical()
    return apply_rule(canon.seen_keypoints(), canon.fps, canon.task or "", sex)


def segment_length_jitter(canonical: KeypointSequence) -> float:
    """How much the legs' segments change length from one frame to the next in a canonical 3D recording: the
    median absolute second difference of each thigh's and shank's length over frames about 1/30 s apart (the
    same for any frame rate), relative to its mean length; the median over the four (NaN when none is seen in
    three such frames). The rule's peak over frames picks up estimated 3D's frame-by-frame error."""
    step = max(1, int(round(canonical.fps / _JITTER_FPS)))
    kp = canonical.seen_keypoints()[::step]
    jitter = []
    for a, b in _LEG_SEGMENTS:
        length = np.linalg.norm(kp[:, a] - kp[:, b], axis=-1)
        length = length[np.isfinite(length)]
        if length.size >= 3 and length.mean() > 0:
            jitter.append(float(np.median(np.abs(np.diff(length, 2))) / length.mean()))
    return float(np.median(jitter)) if jitter else math.nan
