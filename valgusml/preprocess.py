"""Preprocessing shared by training, evaluation and the torch-free predictor (numpy only).

`prepare(seq, cfg)` turns one `KeypointSequence` of any skeleton, dimensionality, frame rate and length into
fixed-size model windows:

1. canonical skeleton (`seq.to_canonical()`), 3D projected on the frontal plane (`as_frontal_2d`); the view is
   inferred (`valgusml.features.view`) and a 2D view from behind is mirrored into the front view, so a model
   reads the subject's left on the image right whichever side the camera stood (limb labels never change);
2. resampled to `cfg.fps` by linear interpolation in time, per joint, over that joint's valid samples only
   (confidence is interpolated the same way);
3. gaps no longer than `cfg.max_gap_s` are filled by that interpolation; inside longer gaps, and before the
   first / after the last valid sample of a joint, it keeps its nearest valid position, so every coordinate
   stays finite, and gets confidence 0, which is what tells the model it is missing;
4. sliding windows of `cfg.window` frames every `cfg.stride` frames (the last window is aligned to the end so
   no frame is lost); a recording shorter than one window is zero-padded with mask 0 on the padding;
5. the per-frame biomechanical measures (`valgusml.features.frame_measures`) as an extra stream, NaN → 0.

Normalisation (pelvis centring, body-size scaling) and the joint/bone/motion streams are computed inside the
torch model (`valgusml.models.streams`) so that they are part of the exported ONNX graph.

`aggregate_windows` is the one rule that combines the windows of one recording into one answer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from valgusml import limits
from valgusml.errors import ConfigError, InputError
from valgusml.features.frame import FRAME_MEASURE_INDEX
from valgusml.features.geometry import as_frontal_2d
from valgusml.features.image import equal_axis_keypoints
from valgusml.features.medians import percentile
from valgusml.features.phases import (
    Segment,
    movement_family,
    phases,
    planted_feet,
    planted_stance,
    scored_segments,
)
from valgusml.features.view import FRONT_3D, View, admit_view, canonical_front_view, infer_view
from valgusml.labels import LIMBS, stance_from_task, task_family
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS, canonical_index

N_JOINTS = len(CANONICAL_JOINTS)
# The joints a valgus call cannot do without: a frame counts as valid when both hips and at least one full
# leg (hip, knee, ankle) are seen.
_HIPS = (canonical_index("left_hip"), canonical_index("right_hip"))
_LEGS = tuple(tuple(canonical_index(f"{s}_{j}") for j in ("hip", "knee", "ankle")) for s in ("left", "right"))
_CORE = tuple(sorted({j for leg in _LEGS for j in leg}))
_LEG_JOINTS = [j for leg in _LEGS for j in leg]  # left hip, knee, ankle, then right
_FEET = tuple(
    canonical_index(f"{s}_{j}") for s in ("left", "right") for j in ("heel", "big_toe", "small_toe")
)
_CAMERA_YAW = FRAME_MEASURE_INDEX["camera_yaw_deg"]
# Where a layout has no small toe (mediapipe33), it is placed from the big toe, outwards along the hip line and
# back towards the heel: small toe = big toe + 0.289 x (own hip - other hip) + 0.133 x (heel - big toe), the
# least-squares fit over 477,000 frames of the generator's halpe26 2D (RMS error 0.60 of the toe-to-toe
# offset, against 1.0 for the big toe itself). Every network was trained with small toes; without them it
# reads a valgus squat as none (docs/experiments.md, Transfer: small toes).
_SMALL_TOE_ALONG_HIP_LINE = 0.289
_SMALL_TOE_TOWARDS_HEEL = 0.133
_HIP_LEFT, _HIP_RIGHT = _HIPS
_TOES = {side: tuple(canonical_index(f"{side}_{j}") for j in ("small_toe", "big_toe", "heel")) for side in LIMBS}
# Where a layout has no foot point at all (coco17), each heel and toe is placed from the ankle: ankle + a x shank
# (ankle - knee) + b x outward hip line (own hip - other hip) + c x the face's sideways offset (nose - neck
# along x: which way the toes point in a side view), the least-squares fit over 933,000 limb-frames of the
# generator's halpe26 2D (make run's data, every view and estimator family; scripts/fit_foot_placement.py; the
# two sides' fits agree within 0.03 and are averaged). RMS error against the ankle itself: heel 13 / 18, big
# toe 27 / 47, small toe 24 / 45 px. Frames without a seen nose and neck use the fit without the face (16, 45,
# 38 px). A fourth term, the hip line turned 90 deg (front from rear), cut the toes' error to 21 px but read
# the skeleton shift no better.
_FOOT_FROM_LEG = {  # joint: ((shank, hip line, face x), (shank, hip line) without the face)
    "heel": ((0.051, -0.035, -0.438), (0.066, -0.034)),
    "big_toe": ((0.190, 0.103, 1.740), (0.130, 0.100)),
    "small_toe": ((0.183, 0.376, 1.462), (0.133, 0.374)),
}
_NOSE, _NECK = canonical_index("nose"), canonical_index("neck")
# The points that mark the top of the body (the predictor's checks read the head's height off them too).
UPPER_BODY_JOINTS = ("nose", "neck", "left_shoulder", "right_shoulder")
_UPPER_BODY = tuple(canonical_index(j) for j in UPPER_BODY_JOINTS)
# A camera framing the legs (as the clinical 2D test may): the networks read the whole body, and read less
# without it. Measured on 60 of make run's held-out athletes (480 recordings) with these points hidden: presence
# AUROC 0.937 -> 0.867 (arms alone hidden 0.936; an upright trunk placed over the hips 0.856-0.861, no better).
UPPER_BODY_UNSEEN = ("upper body never seen (nose, neck, shoulders): the model reads the whole body, and reads "
                     "the knee less well without it (held-out presence AUROC 0.937 -> 0.867); frame the athlete "
                     "from head to feet")
# Seen in 2D, a walking or running knee's collapse under load (a few degrees) is about what a camera 25 deg
# off square puts on a knee flexed 15-20 deg (6-9 deg), and the lifter, which cannot know the yaw that closely,
# reads it low: on held-out athletes' loaded gait frames whose 3D angle passes 5 deg, 3.0 deg against 6.7
# walking and 4.7 against 8.8 running; a real toe-in walk from the front 2.6-2.8 against 6.2-7.0
# (docs/experiments.md: gait seen in 2D says so).
GAIT_IN_2D_WARNING = (
    "gait seen in 2D: a walking or running knee collapses by a few degrees, about what the camera's yaw alone "
    "shows on a flexed knee, so gait valgus near the threshold may be read low; 3D input (motion capture) is "
    "read by the rule"
)
# Walks and runs shorter than this are one stride or two, as a gait lab's capture volume records them; the
# realistic preset's last 3 s and more (only the start's last CPU stage drew them from 1.2 s), and the network
# reads single strides less surely (docs/experiments.md: one stride).
SHORT_GAIT_S = 2.0
# A loaded leg whose hip, knee and ankle are seen together in fewer of a recording's frames than this cannot show
# its knee's frontal angle: it gets the undecided answer (a valgus knee never seen read 0.01, "no valgus"). On
# make run's 1,280 held-out recordings 10 fall under it (athletes out of frame for most of a walk or run), at
# AUROC -0.0003. Seen that little in its scored frames alone, it is said in a warning: the same rule on the
# scored frames pulled 17 recordings (26 by each leg's best-seen segment) and cost a walking shift (narrow steps)
# 0.757 -> 0.724 AUROC, as the network still reads a walk's stances from the frames around them.
LEG_SEEN_MIN = 0.35
# A network that reads confidence as given learnt the estimator families' score scales: the 90th percentile of a
# recording's hip, knee and ankle confidences runs 0.49-1.0 over make run's data (median 0.86; the OpenPose-like
# family lowest). Below that range its answers drift (every confidence x 0.4: held-out AUROC 0.937 -> 0.915;
# x 0.2: 0.884); such a recording is rescaled to the typical level (0.937 at both).
CONFIDENCE_LEVEL_MIN = 0.45
CONFIDENCE_LEVEL_TYPICAL = 0.86
_GAIT_FAMILIES = ("walking", "running")


@dataclass(frozen=True)
class PreprocessConfig:
    """What the model was trained on; saved in checkpoints and exported predictors (`to_dict`/`from_dict`).

    fps: frame rate every input is resampled to. window / stride: frames per model window and the hop between
    windows of a long recording. min_valid_frames: fewer valid frames (at `fps`) than this → `InputError`.
    max_gap_s: gaps of a joint up to this long are interpolated; longer ones stay missing (confidence 0).
    low_confidence: mean confidence of hips/knees/ankles below this adds a warning.
    min_confidence_ratio: a point whose confidence is below this fraction of its joint's median confidence over
    the recording is treated as missing (then gap-filled like any other gap): a pose estimator's low-confidence
    guesses (occluded or blurred joints) land anywhere, and one such knee at the bottom of a squat reads as tens
    of degrees of valgus. Relative, because estimators' scales differ (OpenPose's good points score 0.4-0.9,
    MediaPipe's 0.8-1). 0 keeps every point with confidence above 0 (predictors exported before the key).
    relative_confidence: the confidence the model reads is divided by the recording's 90th percentile over the
    hips, knees and ankles it shows (capped at 1), so estimators whose scores run on different scales give the
    model the same input; False (predictors exported before the key) passes it as reported.
    """

    fps: float = 30.0
    window: int = 96
    stride: int = 48
    min_valid_frames: int = 10
    max_gap_s: float = 0.25
    low_confidence: float = 0.3
    min_confidence_ratio: float = 0.0
    relative_confidence: bool = False

    def __post_init__(self) -> None:
        checks = {
            "fps": math.isfinite(self.fps) and self.fps > 0,
            "window": int(self.window) == self.window and self.window >= 2,
            "stride": int(self.stride) == self.stride and 1 <= self.stride <= self.window,
            "min_valid_frames": int(self.min_valid_frames) == self.min_valid_frames
            and self.min_valid_frames >= 1,
            "max_gap_s": math.isfinite(self.max_gap_s) and self.max_gap_s >= 0,
            "low_confidence": 0.0 <= self.low_confidence <= 1.0,
            "min_confidence_ratio": 0.0 <= self.min_confidence_ratio < 1.0,
            "relative_confidence": isinstance(self.relative_confidence, bool),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                "invalid preprocessing config: "
                + ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
                + " (need fps > 0, window >= 2, 1 <= stride <= window, min_valid_frames >= 1, max_gap_s >= 0, "
                "0 <= low_confidence <= 1, 0 <= min_confidence_ratio < 1, relative_confidence a bool)"
            )
        object.__setattr__(self, "window", int(self.window))
        object.__setattr__(self, "stride", int(self.stride))
        object.__setattr__(self, "min_valid_frames", int(self.min_valid_frames))
        object.__setattr__(self, "fps", float(self.fps))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown preprocessing keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data))

    @property
    def window_s(self) -> float:
        return self.window / self.fps


@dataclass
class ModelInput:
    """Windows ready for the model. N windows of W frames; F frame measures.

    joints (N, W, 20, 3) float32: front-view x, y and confidence per canonical joint (confidence 0 = missing).
    measures (N, W, F) float32: `frame_measures`, NaN → 0.  mask (N, W) float32: 1 = real frame, 0 = padding.
    scored_frames (N,) float32: frames of each window inside its recording's scored segments (a one-window
    recording, whose segments are not searched, counts all its real frames): training picks its windows by it.
    sequence_index (N,) int64: which input sequence each window came from.  window_start_s (N,) float64: start
    time of each window in its recording.  warnings: one list of messages per input sequence.  views: the
    inferred `View` of each input sequence.  segments: per input sequence, its scored `Segment`s (reps,
    landings, stances; frames at `cfg.fps`), found from the motion by `valgusml.features.phases`.
    scored_limbs: per input sequence, the limbs its task loads (a single-leg task's stance limb; both
    otherwise).  leg_seen: per input sequence, `(2,)` the share of its frames in which each leg's hip, knee and
    ankle are all seen (`leg_seen_fraction`).
    """

    joints: np.ndarray
    measures: np.ndarray
    mask: np.ndarray
    scored_frames: np.ndarray
    sequence_index: np.ndarray
    window_start_s: np.ndarray
    warnings: list[list[str]] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    segments: list[list[Segment]] = field(default_factory=list)
    scored_limbs: list[tuple[str, ...]] = field(default_factory=list)
    leg_seen: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.joints.shape[0])

    @property
    def n_sequences(self) -> int:
        return len(self.warnings)


# -- resampling and gap filling ------------------------------------------------------------------------


def _last_valid_index(valid: np.ndarray) -> np.ndarray:
    """`(T, J)`: index of the latest valid sample at or before t, -1 if none."""
    idx = np.where(valid, np.arange(len(valid))[:, None], -1)
    return np.maximum.accumulate(idx, axis=0)


def _next_valid_index(valid: np.ndarray) -> np.ndarray:
    """`(T, J)`: index of the earliest valid sample at or after t, T if none."""
    n = len(valid)
    idx = np.where(valid, np.arange(n)[:, None], n)
    return np.minimum.accumulate(idx[::-1], axis=0)[::-1]


def resample(
    xy: np.ndarray, conf: np.ndarray, fps_in: float, fps_out: float, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Resample `(T, J, C)` coordinates and `(T, J)` confidence to `fps_out`; fill gaps up to `max_gap_s`.

    Each output sample interpolates linearly between the valid source samples of that joint that bracket it.
    Returns finite coordinates everywhere (held at the last valid value inside long gaps, at the joint's
    nearest valid value outside its valid range, 0 for a joint never seen), the confidence (0 in long gaps,
    outside the valid range and for joints never seen), and gap statistics for the warnings.
    """
    valid = conf > 0
    never = ~valid.any(axis=0)
    # Most recordings have no gaps: every joint is seen in every frame or in none. Then all joints of an output
    # frame interpolate between the same two source frames (`_resample_without_gaps`, the same numbers).
    if (valid.all(axis=0) | never).all():
        return _resample_without_gaps(xy, conf, fps_in, fps_out, never)
    return _resample_with_gaps(xy, conf, fps_in, fps_out, max_gap_s)


def _source_frames(n_in: int, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional source frame of each output frame, and the source frames at or before (i0) and after (i1) it."""
    pos = np.arange(resampled_length(n_in, fps_in, fps_out)) * (fps_in / fps_out)
    i0 = np.minimum(np.floor(pos + 1e-9).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return pos, i0, i1


def _frame_plan(n_in: int, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The source frames (a, b) each output frame interpolates between, and the weight of b: they depend only
    on the length and the two frame rates."""
    pos, a, i1 = _source_frames(n_in, fps_in, fps_out)
    b = np.where(pos - a > 1e-9, i1, a)
    span = (b - a).astype(np.float64)
    w = np.clip(np.where(span > 0, (pos - a) / np.maximum(span, 1.0), 0.0), 0.0, 1.0)
    return a, b, w


# Recordings up to this many frames share their `_frame_plan` (most inputs repeat one length and frame rate);
# longer ones are rare and would make the cache large.
_PLAN_CACHE_FRAMES = 2048


@functools.lru_cache(maxsize=32)
def _whole_frame_plan(n_in: int, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_frame_plan`, computed once per (length, frame rates) and shared read-only (~0.03 ms a prediction)."""
    plan = _frame_plan(n_in, fps_in, fps_out)
    for array in plan:
        array.setflags(write=False)
    return plan


def _resample_without_gaps(
    xy: np.ndarray, conf: np.ndarray, fps_in: float, fps_out: float, never: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """`resample` when each joint is valid in every frame or in none: whole frames are interpolated, and
    joints never seen are 0 with confidence 0, as `_resample_with_gaps` leaves them."""
    n_in = len(xy)
    a, b, w = _whole_frame_plan(n_in, fps_in, fps_out) if n_in <= _PLAN_CACHE_FRAMES else _frame_plan(n_in, fps_in, fps_out)
    xa, xb = xy[a], xy[b]
    ca, cb = conf[a], conf[b]
    out = xa + (xb - xa) * w[:, None, None]
    out_conf = ca + (cb - ca) * w[:, None]
    if never.any():
        out[:, never] = 0.0
        out_conf[:, never] = 0.0
    stats = {
        "filled_samples": 0,
        "missing_joints_in_long_gaps": [],
        "longest_filled_s": 0.0,
        "never_seen": [CANONICAL_JOINTS[j] for j in np.flatnonzero(never)],
    }
    return out, out_conf.astype(np.float32), stats


def _resample_with_gaps(
    xy: np.ndarray, conf: np.ndarray, fps_in: float, fps_out: float, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """`resample` in general: each joint interpolates between its own valid samples."""
    n_in = len(xy)
    valid = conf > 0
    pos, i0, i1 = _source_frames(n_in, fps_in, fps_out)
    prev = _last_valid_index(valid)[i0]  # (n_out, J)
    nxt = _next_valid_index(valid)[np.where(pos - i0 > 1e-9, i1, i0)]
    has_prev, has_next = prev >= 0, nxt < n_in
    a = np.where(has_prev, prev, np.where(has_next, nxt, 0))
    b = np.where(has_next, nxt, a)
    span = (b - a).astype(np.float64)
    w = np.where(span > 0, (pos[:, None] - a) / np.maximum(span, 1.0), 0.0)
    w = np.clip(w, 0.0, 1.0)
    joint_idx = np.arange(xy.shape[1])[None, :]
    xa, xb = xy[a, joint_idx], xy[b, joint_idx]  # (n_out, J, C)
    ca, cb = conf[a, joint_idx], conf[b, joint_idx]

    # A sample inside a gap longer than max_gap_s, or outside the joint's valid range (nothing to interpolate
    # from on one side), is missing.
    inside_gap = (span > 1) & (pos[:, None] > a + 1e-9)
    missing_s = np.where(inside_gap, (span - 1.0) / fps_in, 0.0)
    never = ~valid.any(axis=0)
    long_gap = (missing_s > max_gap_s + 1e-9) | ~(has_prev & has_next)

    out = xa + (xb - xa) * w[..., None]
    out_conf = ca + (cb - ca) * w
    # Long gaps: hold the last valid position (finite, no invented motion); confidence 0 says "missing".
    out = np.where(long_gap[..., None], np.where(has_prev[..., None], xa, xb), out)
    out_conf = np.where(long_gap, 0.0, out_conf)
    out[:, never] = 0.0
    filled = inside_gap & ~long_gap
    stats = {
        "filled_samples": int(filled.sum()),
        "missing_joints_in_long_gaps": [
            CANONICAL_JOINTS[j] for j in np.flatnonzero((long_gap & ~never).any(0))
        ],
        "longest_filled_s": float(missing_s[filled].max()) if filled.any() else 0.0,
        "never_seen": [CANONICAL_JOINTS[j] for j in np.flatnonzero(never)],
    }
    return out, out_conf.astype(np.float32), stats


def _planted_feet(canon: KeypointSequence, front_seen: np.ndarray) -> np.ndarray:
    """`planted_feet` of a recording: on its own 3D keypoints (a free foot swinging forward moves in depth,
    which the front view loses), on `front_seen` (the model's front view at the model's rate, unseen points
    NaN) for 2D."""
    return planted_feet(np.asarray(canon.seen_keypoints(), dtype=np.float64) if canon.dims == 3 else front_seen)


def _frame_measures(
    xy: np.ndarray, conf: np.ndarray, fps: float, task: str, find_segments: bool
) -> tuple[np.ndarray, list[Segment]]:
    """The frame measures (NaN → 0) and, if asked, the scored segments (reps, landings, stances) found from
    them (a recording of one window has nothing to choose between: `aggregate_windows` needs none)."""
    from valgusml.features.frame import KNEE_FLEXION_COLUMNS, frame_measures

    kp = xy.astype(np.float32)
    kp[conf <= 0] = np.nan
    with np.errstate(all="ignore"):
        m = np.asarray(frame_measures(kp), dtype=np.float32)  # a new array: zeroed in place below
        segments = []
        if find_segments:
            flexion = m[:, list(KNEE_FLEXION_COLUMNS)]
            segments = scored_segments(phases(kp, fps, task, flexion=flexion))
    m[~np.isfinite(m)] = 0.0  # as nan_to_num(nan=posinf=neginf=0), without its copies
    return m, segments


def _is_gait(task: str | None, segments: list[Segment], planted: np.ndarray | None,
             front_seen: np.ndarray | None, fps: float) -> bool:
    """Walking or running: by the task's name; unnamed, by the stances found (segments are sought in recordings
    longer than one window), else by the movement read from `front_seen` (the front view at the model's rate,
    unseen points NaN), which a planted foot rules out (`planted`: `_planted_feet`) without reading the rest."""
    if task:
        return task_family(task) in _GAIT_FAMILIES
    if segments:
        return any(segment.kind == "stance" for segment in segments)
    if planted is not None and planted.any():
        return False
    return movement_family(front_seen, fps, planted=planted) == "gait"


def n_measures() -> int:
    from valgusml.features import FRAME_MEASURES

    return len(FRAME_MEASURES)


# -- windows ---------------------------------------------------------------------------------------------


def window_starts(n_frames: int, window: int, stride: int) -> np.ndarray:
    """Start frames of the windows covering `n_frames`: every `stride`, plus one aligned to the end."""
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_frames - window + 1, stride, dtype=np.int64)
    if starts[-1] + window < n_frames:
        starts = np.append(starts, n_frames - window)
    return starts


def _windows(array: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Stack windows of `array` (T, ...) starting at `starts`, zero-padded to `window` frames."""
    n = len(array)
    if n < window:
        pad = np.zeros((window - n, *array.shape[1:]), dtype=array.dtype)
        array = np.concatenate([array, pad])
    idx = starts[:, None] + np.arange(window)[None, :]
    return array[idx]


# -- public API ------------------------------------------------------------------------------------------


def _describe(seq: KeypointSequence) -> str:
    return f"sequence {seq.id!r}: " if seq.id else ""


def _core_confidence_level(core: np.ndarray) -> float:
    """The 90th percentile of the seen `core` (hip, knee, ankle) confidences: a recording's score scale."""
    seen = core[core > 0]
    return percentile(seen, 90.0) if seen.size else 1.0


def _relative_confidence(confidence: np.ndarray, core: np.ndarray) -> np.ndarray:
    """`confidence` over the 90th percentile of the seen `core` (hip, knee, ankle) values, capped at 1."""
    return np.minimum(confidence / max(_core_confidence_level(core), 1e-6), 1.0).astype(confidence.dtype)


def _confidence_on_a_learnt_scale(confidence: np.ndarray, core: np.ndarray, warnings: list[str]) -> np.ndarray:
    """`confidence` as given when its scale (`_core_confidence_level`) is one the model learnt, else rescaled to
    the typical one (`CONFIDENCE_LEVEL_TYPICAL`), capped at 1, with a warning."""
    level = _core_confidence_level(core)
    if level >= CONFIDENCE_LEVEL_MIN:
        return confidence
    warnings.append(f"confidence runs low: its 90th percentile on hips, knees and ankles is {level:.2f}, under any "
                    f"the model learnt from ({CONFIDENCE_LEVEL_MIN:g}; another estimator's score scale?): rescaled to "
                    f"the typical {CONFIDENCE_LEVEL_TYPICAL:g}")
    return np.minimum(confidence * (CONFIDENCE_LEVEL_TYPICAL / max(level, 1e-6)), 1.0).astype(confidence.dtype)


def _drop_unsure_points(confidence: np.ndarray, ratio: float) -> np.ndarray:
    """`(T, J)` confidence with 0 where a seen point scores below `ratio` x its joint's median over the seen
    frames (the joint's usual certainty in this recording)."""
    seen = confidence > 0
    usual = np.zeros(confidence.shape[1], dtype=confidence.dtype)
    ever = seen.any(axis=0)
    usual[ever] = np.nanmedian(np.where(seen[:, ever], confidence[:, ever], np.nan), axis=0)
    unsure = seen & (confidence < ratio * usual)
    return np.where(unsure, np.zeros((), confidence.dtype), confidence)


def _equal_axis_units(seq: KeypointSequence, warnings: list[str]) -> np.ndarray:
    """`seq`'s keypoints in units of one length along x and y (`features.image.equal_axis_keypoints`)."""
    keypoints, note = equal_axis_keypoints(seq, _describe(seq))
    if note:
        warnings.append(note)
    return keypoints


def resampled_length(n_frames: int, fps_in: float, fps_out: float) -> int:
    """Frames `resample` makes of `n_frames` at `fps_in`, computed without allocating them."""
    return int(math.floor((n_frames - 1) * fps_out / fps_in + 1e-9)) + 1


def _place_missing_small_toes(keypoints: np.ndarray, conf: np.ndarray,
                              warnings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A small toe never seen in the recording (its layout has none) placed from the big toe, heel and hip line
    (`_SMALL_TOE_*`) where those are seen, with the lower of the big toe's and heel's confidence."""
    placed = []
    for side, outward in zip(LIMBS, (1.0, -1.0), strict=True):
        small, big, heel = _TOES[side]
        if (conf[:, small] > 0).any():
            continue
        seen = (conf[:, [big, heel, _HIP_LEFT, _HIP_RIGHT]] > 0).all(axis=1)
        if not seen.any():
            continue
        if not placed:
            keypoints, conf = keypoints.copy(), conf.copy()
        hip_line = outward * (keypoints[seen, _HIP_LEFT] - keypoints[seen, _HIP_RIGHT])
        keypoints[seen, small] = (keypoints[seen, big] + _SMALL_TOE_ALONG_HIP_LINE * hip_line
                                  + _SMALL_TOE_TOWARDS_HEEL * (keypoints[seen, heel] - keypoints[seen, big]))
        conf[seen, small] = np.minimum(conf[seen, big], conf[seen, heel])
        placed.append(CANONICAL_JOINTS[small])
    if placed:
        warnings.append(f"placed from the big toe, heel and hips (this layout has none): {', '.join(placed)}")
    return keypoints, conf


def foot_placement_basis(keypoints: np.ndarray, conf: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray]:
    """What `_FOOT_FROM_LEG` places `side`'s foot points from, per frame of canonical 2D `keypoints (T, J, >=2)`:
    `(ankle (T, 2), vectors (T, 3, 2): shank (ankle - knee), outward hip line (own hip - other hip), the face's
    sideways offset (nose - neck along x; zero where either is unseen), face_seen (T,))`. The placement and its
    fit (`scripts/fit_foot_placement.py`) both read it."""
    own_hip, other_hip = _HIPS if side == LIMBS[0] else _HIPS[::-1]
    _, knee, ankle = _LEGS[LIMBS.index(side)]
    face_seen = (conf[:, [_NOSE, _NECK]] > 0).all(axis=1)
    face = np.zeros((len(keypoints), 2))
    face[face_seen, 0] = keypoints[face_seen, _NOSE, 0] - keypoints[face_seen, _NECK, 0]
    origin = keypoints[:, ankle, :2]
    vectors = np.stack([origin - keypoints[:, knee, :2], keypoints[:, own_hip, :2] - keypoints[:, other_hip, :2],
                        face], axis=1)
    return origin, vectors, face_seen


def _place_missing_feet(keypoints: np.ndarray, conf: np.ndarray,
                        warnings: list[str]) -> tuple[np.ndarray, np.ndarray, bool]:
    """Heels and toes of a layout with no foot point at all (`_FOOT_FROM_LEG`), placed in the frames that show
    the leg and both hips, with the lower of the ankle's and knee's confidence. Every network was trained with
    feet; without them it reads a valgus squat as none (docs/experiments.md, Transfer: feet placed). Returns
    the keypoints, confidences and whether feet were placed."""
    if (conf[:, list(_FEET)] > 0).any():
        return keypoints, conf, False
    keypoints, conf = keypoints.copy(), conf.copy()
    placed = False
    for side, (hip, knee, ankle), other_hip in zip(LIMBS, _LEGS, _HIPS[::-1], strict=True):
        seen = (conf[:, [hip, knee, ankle, other_hip]] > 0).all(axis=1)
        if not seen.any():
            continue
        origin, vectors, face_seen = foot_placement_basis(keypoints, conf, side)
        shank, hip_line, face = vectors[:, 0], vectors[:, 1], vectors[:, 2]
        for joint, (with_face, without_face) in _FOOT_FROM_LEG.items():
            a, b = (np.where(face_seen, with_face[i], without_face[i])[:, None] for i in (0, 1))
            point = origin + a * shank + b * hip_line + with_face[2] * face
            index = canonical_index(f"{side}_{joint}")
            keypoints[seen, index, :2] = point[seen]
            conf[seen, index] = np.minimum(conf[seen, ankle], conf[seen, knee])
        placed = True
    if placed:
        warnings.append("missing feet: no heel or toe keypoints (e.g. coco17), placed from the ankle, knee, hips "
                        "and face; foot cues (pronation, heel rise, foot progression) cannot be seen")
    return keypoints, conf, placed


def _with_hidden_as(keypoints: np.ndarray, hidden: np.ndarray, value: float) -> np.ndarray:
    """A copy of `(T, J, C)` keypoints with the `(T, J)` hidden points set to `value`: as
    `np.where(~hidden[..., None], keypoints, value)` (same dtype), without its broadcast, ~5x slower."""
    out = keypoints.copy()
    out[hidden] = value
    return out


def check_bounds(seq: KeypointSequence, cfg: PreprocessConfig, what: str = "") -> None:
    """Refuse, before any allocation, a recording whose frame rate, length or resampled length is beyond
    `valgusml.limits` (fps = 1e-6 would otherwise ask resampling for billions of frames)."""
    lim = limits.current()
    fps = lim.check_fps(seq.fps, what)
    lim.check_frames(seq.n_frames, fps, what)
    lim.check_frames(resampled_length(seq.n_frames, fps, cfg.fps), cfg.fps, what, "frames after resampling")


def prepare(seq: KeypointSequence, cfg: PreprocessConfig | None = None) -> ModelInput:
    """One sequence → model windows (see the module docstring for the steps). Raises `InputError` when too
    few frames show the hips and a leg."""
    cfg = cfg or PreprocessConfig()
    if not isinstance(seq, KeypointSequence):
        raise InputError(f"prepare() expects a KeypointSequence, got {type(seq).__name__}")
    what = _describe(seq)
    check_bounds(seq, cfg, what)
    canon = seq.to_canonical()
    conf_in = canon.confidence
    if cfg.min_confidence_ratio > 0:
        conf_in = _drop_unsure_points(conf_in, cfg.min_confidence_ratio)
    warnings: list[str] = []
    keypoints = _equal_axis_units(canon, warnings)
    feet_placed = False
    if canon.dims == 2:  # the fit is the image's: a 3D recording without feet keeps none
        keypoints, conf_in, feet_placed = _place_missing_feet(keypoints, conf_in, warnings)
    keypoints, conf_in = _place_missing_small_toes(keypoints, conf_in, warnings)
    hidden = conf_in <= 0
    xy_in = as_frontal_2d(_with_hidden_as(keypoints, hidden, 0.0))
    if canon.dims == 2:
        xy_in, _ = canonical_front_view(xy_in, conf_in)

    if abs(canon.fps - cfg.fps) > 1e-6 * cfg.fps:
        warnings.append(f"resampled from {canon.fps:g} fps to {cfg.fps:g} fps")
    xy, conf, stats = resample(xy_in, conf_in, canon.fps, cfg.fps, cfg.max_gap_s)

    seen = conf > 0
    frame_valid = seen[:, _HIPS].all(1) & (seen[:, _LEGS[0]].all(1) | seen[:, _LEGS[1]].all(1))
    n_valid = int(frame_valid.sum())
    if n_valid < cfg.min_valid_frames:
        raise InputError(
            f"{what}too short: only {n_valid} frame(s) at {cfg.fps:g} fps show both hips and a full leg "
            f"(hip, knee, ankle); at least {cfg.min_valid_frames} needed ({cfg.min_valid_frames / cfg.fps:.2f} s)"
        )

    never = stats["never_seen"]
    feet_missing = [CANONICAL_JOINTS[j] for j in _FEET if CANONICAL_JOINTS[j] in never]
    if len(feet_missing) == len(_FEET) and not feet_placed:
        warnings.append(
            "missing feet: no heel or toe keypoints (e.g. coco17); foot cues (pronation, heel rise, foot "
            "progression) cannot be seen"
        )
    elif feet_missing:
        warnings.append(f"missing foot keypoints: {', '.join(feet_missing)}")
    other_missing = [j for j in never if CANONICAL_JOINTS.index(j) not in _FEET]
    if other_missing:
        warnings.append(f"missing joints: {', '.join(other_missing)}")
    if all(CANONICAL_JOINTS[j] in never for j in _UPPER_BODY):
        warnings.append(UPPER_BODY_UNSEEN)
    core_conf = conf[frame_valid][:, _CORE]
    mean_conf = float(core_conf.mean())
    if mean_conf < cfg.low_confidence:
        warnings.append(
            f"low confidence: mean {mean_conf:.2f} on hips/knees/ankles (below {cfg.low_confidence:g})"
        )
    if stats["filled_samples"]:
        warnings.append(
            f"gaps: interpolated {stats['filled_samples']} missing joint sample(s), longest gap "
            f"{stats['longest_filled_s']:.2f} s"
        )
    if stats["missing_joints_in_long_gaps"]:
        warnings.append(
            f"gaps longer than {cfg.max_gap_s:g} s left missing for: {', '.join(stats['missing_joints_in_long_gaps'])}"
        )
    scored_limbs = stance_from_task(canon.task or "") or LIMBS
    # An unnamed 2D recording's front view with unseen points NaN, read once for its stance leg and for gait.
    front_seen = np.where(conf[..., None] > 0, xy, np.nan) if not canon.task and canon.dims == 2 else None
    planted = None if canon.task else _planted_feet(canon, front_seen)
    if len(scored_limbs) < len(LIMBS):
        free = " and ".join(limb for limb in LIMBS if limb not in scored_limbs)
        warnings.append(f"task {canon.task}: only the {scored_limbs[0]} knee is loaded, so the {free} knee is "
                        "not scored (valgus probability 0)")
    elif planted is not None and (stance := planted_stance(planted)) is not None:
        scored_limbs = (stance,)
        free = next(limb for limb in LIMBS if limb != stance)
        warnings.append(f"no task given: the {stance} foot stays put while the {free} one moves, read as a "
                        f"single-leg task on the {stance} leg, so the {free} knee is not scored (valgus probability "
                        "0); name the task to score both")
    n_frames = len(xy)
    # One window has no segments to choose between, so none are searched (finding them would triple the cost
    # of preparing such a recording): whether a leg was seen where the task is scored is said for longer ones.
    measures, segments = _frame_measures(xy, conf, cfg.fps, canon.task or "", find_segments=n_frames > cfg.window)
    leg_seen = leg_seen_fraction(conf)
    if segments:
        in_scored = leg_seen_fraction(conf, segments)
        for k, limb in enumerate(LIMBS):
            if limb in scored_limbs and in_scored[k] < LEG_SEEN_MIN <= leg_seen[k]:
                warnings.append(f"{limb} leg (hip, knee, ankle) seen in {in_scored[k]:.0%} of the frames that are "
                                "scored (reps, landings, stances): its call rests on the frames around them")
    if canon.dims == 2 and _is_gait(canon.task, segments, planted, front_seen, cfg.fps):
        warnings.append(GAIT_IN_2D_WARNING)
        if (seconds := n_frames / cfg.fps) < SHORT_GAIT_S:
            warnings.append(f"one stride of gait ({seconds:.1f} s): the network learnt walks and runs mostly of "
                            f"3 s and more and reads single strides less surely; a recording of {SHORT_GAIT_S:g} s "
                            "or more, or 3D input, is read better")
    view = FRONT_3D
    if canon.dims == 2:
        # the feet's reading of the camera's yaw, constant over frames (`frame_measures`), when they were seen
        feet_yaw = None if feet_placed or len(feet_missing) == len(_FEET) else float(measures[0, _CAMERA_YAW])
        view = infer_view(_with_hidden_as(keypoints, hidden, np.nan), feet_yaw)
    model_conf = (_relative_confidence(conf, core_conf) if cfg.relative_confidence
                  else _confidence_on_a_learnt_scale(conf, core_conf, warnings))
    joints = np.concatenate([xy, model_conf[..., None]], axis=-1).astype(np.float32)
    starts = window_starts(n_frames, cfg.window, cfg.stride)
    mask = _windows(np.ones(n_frames, dtype=np.float32), starts, cfg.window)
    real = mask.sum(axis=1)
    overlaps = segment_overlaps(segments, starts.astype(np.float64), real)
    return ModelInput(
        joints=_windows(joints, starts, cfg.window),
        measures=_windows(measures, starts, cfg.window),
        mask=mask,
        scored_frames=(overlaps.sum(axis=0) if segments else real).astype(np.float32),
        sequence_index=np.zeros(len(starts), dtype=np.int64),
        window_start_s=starts / cfg.fps,
        warnings=[warnings],
        views=[view],
        segments=[segments],
        scored_limbs=[scored_limbs],
        leg_seen=[leg_seen],
    )


def leg_seen_fraction(confidence: np.ndarray, segments: Sequence[Segment] = ()) -> np.ndarray:
    """`(2,)` per leg (left, right): the share of frames where its hip, knee and ankle are all seen in
    `confidence` `(T, J)` at the model's rate (after gap filling: a gap too long to fill is unseen), over the
    union of `segments` (every frame without any)."""
    seen = (confidence[:, _LEG_JOINTS] > 0).reshape(len(confidence), len(LIMBS), -1).all(axis=2)
    if segments:
        frames = np.zeros(len(confidence), dtype=bool)
        for segment in segments:
            frames[segment.start : segment.end] = True
        seen = seen[frames] if frames.any() else seen
    return seen.mean(axis=0)


def prepare_many(seqs: Sequence[KeypointSequence], cfg: PreprocessConfig | None = None,
                 noun: str = "input") -> ModelInput:
    """Many sequences → one stack of windows; `sequence_index` maps each window to its sequence. A sequence that
    cannot be prepared is named `"{noun} {i}: "` among several (the predictor's "recording"), not when alone."""
    cfg = cfg or PreprocessConfig()
    parts = []
    for i, seq in enumerate(seqs):
        try:
            parts.append(prepare(seq, cfg))
        except InputError as exc:
            raise InputError(f"{noun} {i}: {exc}" if len(seqs) > 1 else str(exc)) from None
    if not parts:
        raise InputError("prepare_many() got no sequences")
    return ModelInput(
        joints=np.concatenate([p.joints for p in parts]),
        measures=np.concatenate([p.measures for p in parts]),
        mask=np.concatenate([p.mask for p in parts]),
        scored_frames=np.concatenate([p.scored_frames for p in parts]),
        sequence_index=np.concatenate([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(parts)]),
        window_start_s=np.concatenate([p.window_start_s for p in parts]),
        warnings=[p.warnings[0] for p in parts],
        views=[p.views[0] for p in parts],
        segments=[p.segments[0] for p in parts],
        scored_limbs=[p.scored_limbs[0] for p in parts],
        leg_seen=[p.leg_seen[0] for p in parts],
    )


# -- combining windows -----------------------------------------------------------------------------------


def _per_limb_selection(prob: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Weights `(n, 2)` over the windows of one recording: the upper half by valgus probability.

    The fallback when the motion shows no scored phase: valgus may show in only some windows of a long
    recording, so a plain mean dilutes it; the max trusts a single (possibly spurious) window. The
    frame-weighted mean over the windows at or above the weighted median is between the two: with one window
    it is that window, with two the stronger one.
    """
    n = len(prob)
    weights = np.zeros_like(prob, dtype=np.float64)
    for limb in range(prob.shape[1]):
        order = np.argsort(-prob[:, limb], kind="stable")
        cum = np.cumsum(frames[order])
        keep = order[: int(np.searchsorted(cum, 0.5 * cum[-1] - 1e-9)) + 1] if n > 1 else order
        weights[keep, limb] = frames[keep]
    return weights


def segment_overlaps(segments: Sequence[Segment], starts: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """`(n_segments, n_windows)` real frames each window shares with each segment (windows start at frame
    `starts` and hold `frames` real frames)."""
    if not segments:
        return np.zeros((0, len(starts)))
    begin = np.array([g.start for g in segments], dtype=np.float64)[:, None]
    end = np.array([g.end for g in segments], dtype=np.float64)[:, None]
    return np.clip(np.minimum(end, starts + frames) - np.maximum(begin, starts), 0.0, None)


def segment_probabilities(prob: np.ndarray, overlaps: np.ndarray) -> np.ndarray:
    """`(n_segments, 2)`: each segment's valgus probability per limb, the overlap-weighted mean of its
    windows' (NaN for a segment no window reaches)."""
    total = overlaps.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, overlaps @ prob / np.maximum(total, 1e-12), np.nan)


def _worst_segment_selection(
    prob: np.ndarray, frames: np.ndarray, starts: np.ndarray, segments: Sequence[Segment]
) -> np.ndarray:
    """Weights `(n, 2)`: per limb, the windows of its worst scored segment (rep, landing, stance), each by
    the frames it shares with it; a limb scored in no segment falls back to `_per_limb_selection`."""
    weights = _per_limb_selection(prob, frames)
    overlaps = segment_overlaps(segments, starts, frames)
    if not len(overlaps):
        return weights
    scores = segment_probabilities(prob, overlaps)
    for k, limb in enumerate(LIMBS):
        mine = np.array([limb in g.limbs for g in segments]) & np.isfinite(scores[:, k])
        if mine.any():
            best = int(np.nanargmax(np.where(mine, scores[:, k], -np.inf)))
            weights[:, k] = overlaps[best]
    return weights


def aggregate_windows(
    per_window: Mapping[str, np.ndarray],
    sequence_index: np.ndarray,
    mask: np.ndarray,
    n_sequences: int | None = None,
    segments: Sequence[Sequence[Segment]] | None = None,
    window_start: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Combine per-window outputs into one per recording (the rule shared by evaluation and the predictor).

    `per_window` maps names to `(N, ...)` arrays (e.g. `valgus_probability (N, 2)`, `mechanism_probabilities
    (N, 2, 5)`, `severity_deg (N, 2)`). Windows are weighted by their real frames (`mask.sum(1)`), so a padded
    tail counts for what it holds. When `valgus_probability (N, 2)` is present, each limb's answer is its worst
    scored segment's, the label's own rule (the recording is valgus when any rep or landing is): with
    `segments` (per sequence, from `ModelInput.segments`) and `window_start` (frames), each segment's
    probability is the overlap-weighted mean of its windows and the limb keeps the windows of its highest one
    (one valgus rep in minutes of standing is not averaged away); a limb without scored segments, or a call
    without `segments`, keeps its upper half of windows by probability (`_per_limb_selection`). Every
    `(N, 2, ...)` array is averaged over the same windows for that limb, so the mechanism and severity
    describe the windows that decided the valgus call. Other arrays are frame-weighted means over all windows of the recording;
    mechanism probabilities are renormalised to sum to 1. Recording i's single window passes through unchanged.
    The per-window timeline stays available as the inputs with `window_start_s`.
    """
    sequence_index = np.asarray(sequence_index, dtype=np.int64)
    frames = np.asarray(mask, dtype=np.float64).reshape(len(sequence_index), -1).sum(1)
    frames = np.maximum(frames, 1e-6)
    n_seq = int(
        n_sequences if n_sequences is not None else (sequence_index.max() + 1 if len(sequence_index) else 0)
    )
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in per_window.items()}
    for name, arr in arrays.items():
        if len(arr) != len(sequence_index):
            raise InputError(
                f"aggregate_windows: {name} has {len(arr)} rows for {len(sequence_index)} windows"
            )
    if n_seq == 1 and len(sequence_index) == 1 and sequence_index[0] == 0 and not _scored(segments, window_start):
        out = _single_window(arrays, frames[0])
    else:
        out = _each_sequence(arrays, sequence_index, frames, n_seq, segments, window_start)
    if "mechanism_probabilities" in out:
        m = out["mechanism_probabilities"]
        out["mechanism_probabilities"] = m / np.maximum(m.sum(-1, keepdims=True), 1e-12)
    return out


def _scored(segments: Sequence[Sequence[Segment]] | None, window_start: np.ndarray | None) -> bool:
    """Whether the first recording's scored segments choose its windows (they need the window starts, as in
    `_each_sequence`)."""
    return segments is not None and window_start is not None and len(segments[0]) > 0


def _single_window(arrays: Mapping[str, np.ndarray], frames: np.floating) -> dict[str, np.ndarray]:
    """`_each_sequence` for one recording of one window without scored segments (a recording up to one
    window long, the predictor's usual case): every weight is that window's frames, so each output is
    `(x * f).sum(0) / f`, the general path's `(x * w).sum(0) / w.sum(0)` over one row, element for element,
    without its per-window selection (~0.1 ms). The sum over one row is kept: it turns -0.0 into 0.0."""
    return {k: (v * frames).sum(0, keepdims=True) / frames for k, v in arrays.items()}


def _each_sequence(
    arrays: Mapping[str, np.ndarray],
    sequence_index: np.ndarray,
    frames: np.ndarray,
    n_seq: int,
    segments: Sequence[Sequence[Segment]] | None,
    window_start: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """`aggregate_windows`' weighted means per recording, before the mechanism renormalisation."""
    out = {k: np.zeros((n_seq, *v.shape[1:])) for k, v in arrays.items()}
    prob = arrays.get("valgus_probability")
    order = np.argsort(sequence_index, kind="stable")
    bounds = np.searchsorted(sequence_index[order], np.arange(n_seq + 1))
    for s in range(n_seq):
        rows = order[bounds[s] : bounds[s + 1]]
        if len(rows) == 0:
            for v in out.values():
                v[s] = np.nan
            continue
        f = frames[rows]
        limb_w = None
        if prob is not None and prob.ndim == 2:
            if segments is not None and window_start is not None:
                starts = np.asarray(window_start, dtype=np.float64)[rows]
                limb_w = _worst_segment_selection(prob[rows], f, starts, segments[s])
            else:
                limb_w = _per_limb_selection(prob[rows], f)
        for name, arr in arrays.items():
            x = arr[rows]
            if limb_w is not None and x.ndim >= 2 and x.shape[1] == limb_w.shape[1]:
                w = limb_w.reshape(limb_w.shape + (1,) * (x.ndim - 2))
            else:
                w = f.reshape((-1,) + (1,) * (x.ndim - 1))
            out[name][s] = _weighted_mean(x, w)
    return out


def _weighted_mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`(x * w).sum(0) / w.sum(0)`, leaving out NaN entries of `x` (an output a window does not give, such as the
    frontal angle of a window without load); NaN where no window gives one."""
    if not np.isnan(x).any():
        return (x * w).sum(0) / w.sum(0)
    given = ~np.isnan(x)
    w = w * given
    total = w.sum(0)
    mean = (np.where(given, x, 0.0) * w).sum(0) / np.where(total > 0, total, 1.0)
    return np.where(total > 0, mean, np.nan)  # a plain NaN (0 / 0 would give the sign-bit NaN of x86)


def aggregate_model_input(
    per_window: Mapping[str, np.ndarray], model_input: ModelInput, fps: float, neutral: float = 0.5
) -> tuple[dict[str, np.ndarray], list[str | None]]:
    """`aggregate_windows` over a `ModelInput`'s recordings with their scored segments, then each recording's
    valgus probabilities admitted for its view (`valgusml.features.view.admit_view`: pulled towards `neutral`,
    0.5 or just under a lower decision threshold, where a side view hides the frontal plane), and 0 for a limb
    its task never loads (the rule scores loaded frames only: the free leg of a single-leg squat cannot collapse
    under load). Returns the per-recording arrays and, per recording, the view warning or None. The one rule of
    the predictor and of every evaluated model."""
    return aggregate_recordings(
        per_window, model_input.sequence_index, model_input.mask, model_input.window_start_s, fps,
        model_input.n_sequences, model_input.segments, model_input.views, model_input.scored_limbs, neutral,
        model_input.leg_seen,
    )


def aggregate_recordings(
    per_window: Mapping[str, np.ndarray],
    sequence_index: np.ndarray,
    mask: np.ndarray,
    window_start_s: np.ndarray,
    fps: float,
    n_sequences: int,
    segments: Sequence[Sequence[Segment]],
    views: Sequence[View],
    scored_limbs: Sequence[tuple[str, ...]],
    neutral: float = 0.5,
    leg_seen: Sequence[np.ndarray] = (),
) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """`aggregate_model_input` from its parts (`sequence_index` in `range(n_sequences)`; `segments`, `views`,
    `scored_limbs`, `leg_seen` one per recording or empty), for callers that hold windows without a
    `ModelInput`: the training loop's validation and test windows."""
    out = aggregate_windows(
        per_window,
        sequence_index,
        mask,
        n_sequences=n_sequences,
        segments=segments or None,
        window_start=np.asarray(window_start_s) * fps,
    )
    notes: list[list[str]] = [[] for _ in range(n_sequences)]
    if "valgus_probability" in out and views:
        for i, view in enumerate(views):
            out["valgus_probability"][i], note = admit_view(out["valgus_probability"][i], view, neutral)
            notes[i] += [note] if note else []
    for i, seen in enumerate(leg_seen):
        loaded = scored_limbs[i] if scored_limbs else LIMBS
        for k in (k for k in np.flatnonzero(seen < LEG_SEEN_MIN) if LIMBS[k] in loaded):
            if "valgus_probability" in out:
                out["valgus_probability"][i, k] = neutral
            if "frontal_fppa_deg" in out:
                out["frontal_fppa_deg"][i, k] = np.nan
            notes[i].append(f"{LIMBS[k]} leg (hip, knee, ankle) seen in {seen[k]:.0%} of the frames: its knee's "
                            f"frontal-plane angle cannot be read; valgus probability set to {neutral:.4g}, the "
                            "model's undecided answer; film the leg unhidden")
    for i, scored in enumerate(scored_limbs):
        free = [k for k, limb in enumerate(LIMBS) if limb not in scored]
        if "valgus_probability" in out:
            out["valgus_probability"][i, free] = 0.0
        if "frontal_fppa_deg" in out:
            out["frontal_fppa_deg"][i, free] = np.nan
    return out, notes


__all__ = [
    "ModelInput",
    "aggregate_model_input",
    "aggregate_recordings",
    "PreprocessConfig",
    "aggregate_windows",
    "check_bounds",
    "UPPER_BODY_JOINTS",
    "UPPER_BODY_UNSEEN",
    "n_measures",
    "prepare",
    "prepare_many",
    "resample",
    "window_starts",
]
