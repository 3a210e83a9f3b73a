"""Per-limb summary measures of one recording: what a clinician would read off the video.

`measures(seq)` returns a JSON-ready dict (floats or None, never NaN):

```
{"left":  {"peak_fppa_deg": 14.2, "fppa_at_peak_load_deg": 12.9, "pelvic_drop_deg": 5.1, ...},
 "right": {...},
 "bilateral": {"min_knee_ankle_separation_ratio": 0.81, "peak_trunk_lean_sagittal_deg": 21.0, ...},
 "stance": ["left"],                 # limbs that carried load at some point
 "unavailable": ["left_foot_roll_in", ...]}   # flat names that the keypoints could not support
```

Per-limb keys (`LIMB_MEASURES`), all taken over the frames where that limb is loaded (its foot on the
ground; the stance limb only in single-leg tasks named `..._left` / `..._right`). A swinging foot clears the
floor by 1-2 cm: in 3D walks and runs (named, or read from the motion) a foot moving forward past the pelvis is
not loaded however low it is (`phases.swinging_feet`, as the rule reads them); in 2D the height alone decides, so
most of a 2D walk's swing counts as loaded and its "peak load" frames are the swing's most bent knee
(docs/experiments.md, Gait stance).

- `peak_fppa_deg`: highest FPPA (lightly smoothed over ~0.1 s).
- `fppa_at_peak_load_deg`: mean FPPA over the peak-load frames (knee flexion within the top 15 % of its range,
  i.e. the bottom of every rep or landing).
- `pelvic_drop_deg`: drop of the pelvis on the *other* side at peak load, relative to level (positive =
  contralateral drop, negative = hike), as the studies report it; `pelvic_drop_change_deg`: the same relative
  to the first frames, which cancels a pose estimator's constant bias on the hips but misses a drop that is
  already there at the start (a single-leg squat starts on one leg).
- `peak_hip_adduction_deg`: highest hip adduction proxy (thigh vs pelvis, frontal view).
- `medial_knee_displacement`: largest medial shift of the knee over the ankle relative to the start, in leg
  lengths (× ~850 mm for an adult's hip–ankle length).
- `foot_roll_in`: ankle medial to the forefoot at peak load, in leg lengths; `foot_progression_deg`: median
  toe-out.
- `rearfoot_eversion_deg`: heel→ankle tilt at peak load in the foot's own frontal plane, from 3D keypoints only.
  From 2D it is None: the heel→ankle line is a few centimetres long, the camera's yaw and height and the heel's
  rise turn it, and a pose estimator's heel error is as large as the tilt (on the generator's 2D it correlates
  0.03 with the 3D angle, and healthy limbs spread over ±60 deg). The frame measure stays a network input.
- `peak_knee_flexion_deg` (depth), `peak_shank_tilt_deg` (ankle dorsiflexion proxy).
- `peak_heel_rise` (leg lengths) and `heel_rise_onset_s`: when the heel starts to rise relative to the deepest
  point (negative = before it; None when the heel does not rise during that rep). Both relative to the
  flat foot of the first frames; a rise counts when it stays `HEEL_RISE_THRESHOLD` (or 3 × the jitter of
  those first frames, if larger) above it for 0.1 s.
- `trunk_lean_toward_deg`: frontal trunk lean towards this limb at peak load.

`measure_vector(seq)` flattens the same values to `(K,)` float64 with NaN for None (names like
`left_peak_fppa_deg`, `min_knee_ankle_separation_ratio`), for scikit-learn baselines.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from valgusml.features.frame import FRAME_MEASURE_INDEX, check_canonical, frame_measures
from valgusml.features.geometry import as_frontal_2d
from valgusml.features.image import equal_axis_keypoints
from valgusml.features.medians import median, moving_average, percentile
from valgusml.features.phases import swinging_feet
from valgusml.json_safe import json_float
from valgusml.labels import LIMBS, stance_from_task
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import canonical_index

LIMB_MEASURES: tuple[str, ...] = (
    "peak_fppa_deg",
    "fppa_at_peak_load_deg",
    "pelvic_drop_deg",
    "pelvic_drop_change_deg",
    "peak_hip_adduction_deg",
    "medial_knee_displacement",
    "foot_roll_in",
    "rearfoot_eversion_deg",
    "foot_progression_deg",
    "peak_knee_flexion_deg",
    "peak_shank_tilt_deg",
    "peak_heel_rise",
    "heel_rise_onset_s",
    "trunk_lean_toward_deg",
)
BILATERAL_MEASURES: tuple[str, ...] = (
    "min_knee_ankle_separation_ratio",
    "peak_trunk_lean_sagittal_deg",
    "peak_trunk_lean_frontal_deg",
)
MEASURE_NAMES: tuple[str, ...] = (
    tuple(f"{side}_{m}" for side in LIMBS for m in LIMB_MEASURES) + BILATERAL_MEASURES
)
_FOOT_BASED = {
    "foot_roll_in",
    "rearfoot_eversion_deg",
    "foot_progression_deg",
    "peak_heel_rise",
    "heel_rise_onset_s",
}

SMOOTH_S = 0.1  # moving-average width: removes estimator jitter, keeps a 0.1-0.2 s landing peak
PEAK_LOAD_FRACTION = 0.85  # frames with knee flexion above this fraction of its range = "peak load"
START_FRACTION = 0.1  # the first 10 % of frames (>= 3) give the starting posture
CONTACT_TOLERANCE = 0.1  # foot within this many leg lengths of its lowest position = on the ground
HEEL_RISE_THRESHOLD = 0.03  # leg lengths (~2.5 cm) above the flat foot = heel rising
HEEL_RISE_SUSTAIN_S = 0.1  # ... for at least this long
MIN_CONFIDENCE = 0.3  # joints below this confidence are treated as missing (estimators: ~0.3 = guess)

_FOOT_JOINTS = [
    [canonical_index(f"{side}_{j}") for j in ("ankle", "heel", "big_toe", "small_toe")] for side in LIMBS
]


def _col(name: str) -> int:
    return FRAME_MEASURE_INDEX[name]


def _nan_reduce(fn, values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(fn(finite)) if finite.size else math.nan


def _mean(values: np.ndarray) -> float:
    """`np.mean` of a 1-D float64 array: the same pairwise sum over the count, without its dispatch (it runs
    a dozen times per recording)."""
    return float(values.sum() / values.size)


def contact_mask(front: np.ndarray, scale: float, task: str = "") -> np.ndarray:
    """`(T, 2)` bool: the limb's foot is on the ground. Single-leg tasks load only their named limb.

    A foot is on the ground when its lowest point is within `CONTACT_TOLERANCE` leg lengths of its lowest
    position in the recording (found per limb: with a yawed camera the far foot's floor line sits higher in
    the image) and, without a named stance limb, not that much higher than the other foot in the same frame
    (the free foot of a single-leg squat is lifted all the time, so its own lowest position is not the floor).
    A named stance foot needs no such check, and may not have it: a step-down's stands on a step, above the
    free foot at the bottom of every rep. `front` is the frontal view (y down) of canonical keypoints.
    """
    n_frames = front.shape[0]
    mask = np.zeros((n_frames, 2), dtype=bool)
    if not math.isfinite(scale):
        return mask
    named = stance_from_task(task)
    # lowest foot point per limb (y down); NaN only where the whole foot is missing
    low = np.stack([np.fmax.reduce(front[:, _FOOT_JOINTS[k], 1], axis=1) for k in range(2)], axis=1)
    tolerance = CONTACT_TOLERANCE * scale
    with np.errstate(invalid="ignore"):
        above_other = low[:, ::-1] - low > tolerance  # False where the other foot is missing
        for k, side in enumerate(LIMBS):
            finite = np.isfinite(low[:, k])
            if (named is not None and side not in named) or not finite.any():
                continue
            floor = percentile(low[finite, k], 95.0)
            mask[:, k] = finite & (floor - low[:, k] < tolerance) & (named is not None or ~above_other[:, k])
    return mask


def _leg_scale(front: np.ndarray) -> float:
    hips, knees, ankles = (
        front[:, [canonical_index(f"{s}_{j}") for s in LIMBS]] for j in ("hip", "knee", "ankle")
    )
    leg = np.linalg.norm(knees - hips, axis=-1) + np.linalg.norm(ankles - knees, axis=-1)
    return _nan_reduce(lambda v: percentile(v, 90.0), leg)


def _heel_rise_threshold(heel_rise: np.ndarray, n_start: int) -> tuple[float, float]:
    """(flat-foot level, rise threshold) from the first frames, which start flat-footed in every task: a pose
    estimator's foot jitter alone can exceed a fixed 2-3 cm, so the threshold grows with the jitter seen there."""
    start = heel_rise[:n_start]
    start = start[np.isfinite(start)]
    if start.size < 3:
        return 0.0, HEEL_RISE_THRESHOLD
    level = median(start)
    return level, level + max(HEEL_RISE_THRESHOLD, 3.0 * float(start.std()))


def _onset_relative_to_peak(
    flexion: np.ndarray, heel_rise: np.ndarray, threshold: float, fps: float
) -> float:
    """Seconds from the deepest point to the first heel rise of that rep lasting `HEEL_RISE_SUSTAIN_S`
    (negative = before the bottom); +inf when the heel stays down, NaN when it cannot be measured."""
    if not np.isfinite(flexion).any() or not np.isfinite(heel_rise).any():
        return math.nan
    peak = int(np.nanargmax(flexion))
    low, high = np.nanmin(flexion), flexion[peak]
    shallow = np.where(flexion <= low + 0.25 * (high - low))[0]
    before, after = shallow[shallow < peak], shallow[shallow > peak]
    start = int(before[-1]) if before.size else 0
    end = int(after[0]) if after.size else len(flexion) - 1
    sustain = max(1, int(round(HEEL_RISE_SUSTAIN_S * fps)))
    with np.errstate(invalid="ignore"):
        above = heel_rise[start : end + 1] > threshold
    rising = np.array([], dtype=int)
    if above.size >= sustain:
        rising = np.flatnonzero(
            np.convolve(above.astype(int), np.ones(sustain, dtype=int), mode="valid") == sustain
        )
    if not rising.size:
        return math.inf  # the heel stayed down: reported as None, but not "unavailable"
    return (start + int(rising[0]) - peak) / fps


def summarize(keypoints: np.ndarray, fps: float, task: str = "") -> dict[str, Any]:
    """The `measures` dict from canonical keypoints `(T, 20, 2|3)` (missing joints NaN)."""
    kp = check_canonical(keypoints)
    fm = frame_measures(kp).astype(np.float64)
    n_frames = len(fm)
    is3d = kp.shape[2] == 3
    front = as_frontal_2d(kp)
    scale = _leg_scale(front)
    loaded = contact_mask(front, scale, task) & ~swinging_feet(kp, fps, task)
    width = max(1, int(round(SMOOTH_S * fps)) | 1)
    smooth = moving_average(fm, width)
    n_start = min(n_frames, max(3, int(round(START_FRACTION * n_frames))))

    result: dict[str, Any] = {}
    raw: dict[str, float] = {}
    for k, side in enumerate(LIMBS):
        sign = 1.0 if side == "left" else -1.0  # left stance: right hip lower is positive obliquity
        mask = loaded[:, k]

        def col(name: str, _side: str = side) -> np.ndarray:
            return smooth[:, _col(f"{_side}_{name}")]

        def on_load(values: np.ndarray, _mask: np.ndarray = mask) -> np.ndarray:
            return np.where(_mask, values, np.nan)

        flexion = on_load(col("knee_flexion_deg"))
        peak = mask.copy()
        if np.isfinite(flexion).any():
            lo, hi = np.nanmin(flexion), np.nanmax(flexion)
            with np.errstate(invalid="ignore"):
                peak = mask & (flexion >= lo + PEAK_LOAD_FRACTION * (hi - lo))

        def at_peak(values: np.ndarray, _peak: np.ndarray = peak) -> float:
            return _nan_reduce(_mean, values[_peak])

        def start_value(values: np.ndarray) -> float:
            return _nan_reduce(median, values[:n_start])

        drop = sign * smooth[:, _col("pelvic_obliquity_deg")]
        lean_toward = sign * smooth[:, _col("trunk_lean_frontal_deg")]
        mkd = col("medial_knee_displacement")
        heel_level, heel_threshold = _heel_rise_threshold(col("heel_rise"), n_start)
        onset = _onset_relative_to_peak(flexion, on_load(col("heel_rise")), heel_threshold, fps)
        values = {
            "peak_fppa_deg": _nan_reduce(np.ndarray.max, on_load(col("fppa_deg"))),
            "fppa_at_peak_load_deg": at_peak(col("fppa_deg")),
            "pelvic_drop_deg": at_peak(drop),
            "pelvic_drop_change_deg": at_peak(drop) - start_value(drop),
            "peak_hip_adduction_deg": _nan_reduce(np.ndarray.max, on_load(col("hip_adduction_deg"))),
            "medial_knee_displacement": _nan_reduce(np.ndarray.max, on_load(mkd)) - start_value(mkd),
            "foot_roll_in": at_peak(col("foot_roll_in")),
            "rearfoot_eversion_deg": at_peak(col("rearfoot_eversion_deg")) if is3d else math.nan,
            "foot_progression_deg": _nan_reduce(median, on_load(col("foot_progression_deg"))),
            "peak_knee_flexion_deg": _nan_reduce(np.ndarray.max, flexion),
            "peak_shank_tilt_deg": _nan_reduce(np.ndarray.max, on_load(col("shank_tilt_deg"))),
            "peak_heel_rise": _nan_reduce(np.ndarray.max, on_load(col("heel_rise"))) - heel_level,
            "heel_rise_onset_s": onset,
            "trunk_lean_toward_deg": at_peak(lean_toward),
        }
        result[side] = values
        raw.update({f"{side}_{name}": v for name, v in values.items()})

    both = loaded.all(axis=1)
    separation = np.where(both, smooth[:, _col("knee_ankle_separation_ratio")], np.nan)
    bilateral = {
        "min_knee_ankle_separation_ratio": _nan_reduce(lambda v: percentile(v, 5.0), separation),
        "peak_trunk_lean_sagittal_deg": _nan_reduce(np.ndarray.max, smooth[:, _col("trunk_lean_sagittal_deg")]),
        "peak_trunk_lean_frontal_deg": _nan_reduce(
            lambda v: np.max(np.abs(v)), smooth[:, _col("trunk_lean_frontal_deg")]
        ),
    }
    result["bilateral"] = bilateral
    raw.update(bilateral)

    unavailable = []
    for name, value in raw.items():
        if value == math.inf:  # computed: the heel did not rise
            continue
        if not math.isfinite(value):
            unavailable.append(name)
    for side in LIMBS:
        result[side] = {m: json_float(v, 4) for m, v in result[side].items()}
    result["bilateral"] = {m: json_float(v, 4) for m, v in bilateral.items()}
    result["stance"] = [side for k, side in enumerate(LIMBS) if loaded[:, k].any()]
    result["unavailable"] = unavailable
    return result


def _canonical_keypoints(seq: KeypointSequence, min_confidence: float) -> np.ndarray:
    """Canonical keypoints in units of one length along x and y (normalised image coordinates scaled as the
    model reads them), NaN where less sure than `min_confidence`."""
    canonical = seq.to_canonical()
    kp = equal_axis_keypoints(canonical)[0].copy()
    kp[canonical.confidence < min_confidence] = np.nan
    return kp


def measures(seq: KeypointSequence, min_confidence: float = MIN_CONFIDENCE) -> dict[str, Any]:
    """Per-limb biomechanical summary of one recording (see the module docstring for every key)."""
    return summarize(_canonical_keypoints(seq, min_confidence), seq.fps, seq.task)


def flatten_measures(summary: dict[str, Any]) -> np.ndarray:
    """`(len(MEASURE_NAMES),)` float64 from a `measures` dict, NaN for None."""
    flat = [summary[side][m] for side in LIMBS for m in LIMB_MEASURES] + [
        summary["bilateral"][m] for m in BILATERAL_MEASURES
    ]
    return np.array([np.nan if v is None else v for v in flat], dtype=np.float64)


def measure_vector(
    seq: KeypointSequence, min_confidence: float = MIN_CONFIDENCE
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Flat numeric summary for scikit-learn: `(values (K,), MEASURE_NAMES)`, NaN where unavailable."""
    return flatten_measures(measures(seq, min_confidence)), MEASURE_NAMES
