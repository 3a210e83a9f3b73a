"""When a limb is loaded, found from the motion alone: repetitions, landings, stances and the scored phase.

The valgus label is scored over each task's *scored phase*, as the clinical tests score it (DESIGN.md):

- squats and step-downs: every repetition, from the knee bending under load to its straightening again;
- drop jumps: the landing, from initial contact to peak knee flexion; what follows (push-off, the second
  landing) is reported apart (`kind="push_off"`), never scored;
- walking and running: each stance (foot on the ground; in 3D also not moving forward past the pelvis, since a
  swinging foot clears the floor by only 1-2 cm).

Nothing here knows who made the keypoints: it reads knee flexion (`frame_measures`) and the feet's height
(3D: above the floor; 2D: the image y of the lowest foot point, y down), and in 3D gait the feet's motion
against the pelvis, so the generator, the predictor, the real-motion suite and rule-labelling of users' mocap
all find the same phases. A task name helps (`drop_vertical_jump`, `walking`, `..._left`); without it the
movement is classified from the motion (`infer_task`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from valgusml.features.frame import foot_forward_velocity, knee_flexion_deg, vector_lengths
from valgusml.features.medians import moving_average
from valgusml.labels import LIMBS, stance_from_task, task_family
from valgusml.skeleton import canonical_index

# A repetition: the knee bends at least this far beyond standing (degrees) ...
MIN_REP_FLEXION_DEG = 20.0
# ... and is loaded over the deeper part of it: flexion above standing + this fraction of the rep's range
# (the generator's `load_threshold` of 0.5 on its depth-driven load is the same cut).
LOADED_FRACTION = 0.5
# A foot is in contact when its lowest point is within this many leg lengths of the floor.
CONTACT_TOLERANCE = 0.06
# 3D gait: a foot moving forward past the pelvis faster than this (leg lengths a second) is swinging, however
# low it is. A stance foot moves backward against the pelvis (the real walks' -1.4 a second), overground and on a
# treadmill alike; one standing still stays within its noise of 0; a swinging one moves forward at 2-4. The four
# OpenCap walks then load 0.53-0.74 of each limb's frames with knees bent to 41 deg (0.81-0.96 and 63 deg from
# the height alone), and the generator's clean 3D walks keep 0.999 of the frames its labels read
# (docs/experiments.md, Gait stance).
SWING_FORWARD_SPEED = 0.3
# Airborne: both feet this far above the floor (leg lengths), for at least FLIGHT_MIN_S.
FLIGHT_HEIGHT = 0.08
FLIGHT_MIN_S = 0.08
# Task inference (`infer_task`), in leg lengths and seconds: the pelvis's up-and-down within a second in a
# drop jump (the generators' drop jumps 0.50-0.75, 5th-95th percentile; every other task 0.21 or less); a planted
# foot's range; a single-leg squat's free foot above the stance foot.
JUMP_BOUNCE = 0.35
PLANTED_RANGE = 0.1
FREE_FOOT_LIFT = 0.12
# Gait: a stride (one foot's strike to its next) shorter than this is running. Walking cadences run 100-130
# steps a minute (strides of 0.9-1.2 s), running 150-190 (0.63-0.8 s): the cut is 141 steps a minute. The
# stride is the first autocorrelation peak of the feet's height within STRIDE_RANGE_S, whose height reaches
# STRIDE_MIN_CORRELATION; the height is high-passed at STRIDE_HIGHPASS_HZ first, since walking towards the
# camera drifts the 2D floor line.
RUNNING_STRIDE_S = 0.85
STRIDE_RANGE_S = (0.4, 1.8)
STRIDE_MIN_CORRELATION = 0.2
STRIDE_HIGHPASS_HZ = 0.5
# Standing: knee flexion within this many degrees of the recording's straightest frames.
STANDING_MARGIN_DEG = 10.0
SMOOTH_S = 0.1

_FOOT = tuple(
    tuple(canonical_index(f"{side}_{part}") for part in ("ankle", "heel", "big_toe", "small_toe")) for side in LIMBS
)
_HIP = tuple(canonical_index(f"{side}_hip") for side in LIMBS)
_KNEE = tuple(canonical_index(f"{side}_knee") for side in LIMBS)
_ANKLE = tuple(canonical_index(f"{side}_ankle") for side in LIMBS)
_LEG_JOINTS = np.array(_HIP + _KNEE + _ANKLE)


@dataclass(frozen=True)
class Phase:
    """Frames `[start, end)` of one limb; `peak` is its deepest knee flexion; `kind` is `rep`, `landing`,
    `push_off` or `stance`; `scored` says whether the valgus label reads this phase."""

    limb: str
    start: int
    end: int
    peak: int
    kind: str
    scored: bool

    def seconds(self, fps: float) -> tuple[float, float]:
        return self.start / fps, self.end / fps


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """`[start, end)` of each run of True in a `(T,)` bool mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile (0-1) of the finite values, nearest rank (one partition; `np.percentile` costs ~10x)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return math.nan
    k = min(int(round(q * (finite.size - 1))), finite.size - 1)
    return float(np.partition(finite, k)[k])


def leg_length(keypoints: np.ndarray) -> float:
    """Hip→knee + knee→ankle, the 90th percentile over frames and limbs (squatting foreshortens it in 2D)."""
    # one gather of the six leg joints (cast after it, not the whole array), then views per joint pair
    legs = np.take(keypoints, _LEG_JOINTS, axis=1).astype(np.float64)
    hip, knee, ankle = legs[:, 0:2], legs[:, 2:4], legs[:, 4:6]
    leg = vector_lengths(knee - hip) + vector_lengths(ankle - knee)
    return _quantile(leg, 0.9)


def foot_height(keypoints: np.ndarray) -> np.ndarray:
    """`(T, 2)` height of each foot's lowest point above the floor, in leg lengths (NaN where unseen).

    3D: z above the floor (+z up; the floor is the 2nd percentile of the feet's lowest points). 2D: the floor
    line is the 98th percentile of the feet's lowest image y (y down), and the height is how far above it the
    foot sits. A camera's perspective tilts the floor line a little; the tolerance absorbs it.
    """
    kp = keypoints.astype(np.float64)
    scale = leg_length(kp)
    is3d = kp.shape[-1] == 3
    low = np.full((len(kp), 2), np.nan)
    with np.errstate(invalid="ignore"):
        for k in range(2):
            points = kp[:, list(_FOOT[k])]
            low[:, k] = np.fmin.reduce(points[..., 2], axis=1) if is3d else np.fmax.reduce(points[..., 1], axis=1)
    if not np.isfinite(low).any() or not math.isfinite(scale) or scale <= 0:
        return np.full((len(kp), 2), np.nan)
    if is3d:
        return (low - _quantile(low, 0.02)) / scale
    return (_quantile(low, 0.98) - low) / scale


def raw_knee_flexion(keypoints: np.ndarray) -> np.ndarray:
    """`(T, 2)` knee flexion in degrees as `frame_measures` gives it (3D: true angle; 2D: the foreshortening
    proxy); the functions below take it as `flexion=` so one caller computes the frame measures once."""
    return knee_flexion_deg(keypoints).astype(np.float64)


def smooth_flexion(flexion: np.ndarray, fps: float) -> np.ndarray:
    """Knee flexion `(T, 2)` averaged over `SMOOTH_S`: what phases and the rule read."""
    return moving_average(np.asarray(flexion, dtype=np.float64), max(1, int(round(SMOOTH_S * fps)) | 1))


def knee_flexion(keypoints: np.ndarray, fps: float) -> np.ndarray:
    """`(T, 2)` knee flexion in degrees, lightly smoothed."""
    return smooth_flexion(raw_knee_flexion(keypoints), fps)


def flight_frames(height: np.ndarray, fps: float) -> np.ndarray:
    """`(T,)` bool: both feet off the floor for at least `FLIGHT_MIN_S`."""
    with np.errstate(invalid="ignore"):
        both_up = (height > FLIGHT_HEIGHT).all(axis=1)
    out = np.zeros(len(height), dtype=bool)
    for start, end in true_runs(both_up):
        if end - start >= FLIGHT_MIN_S * fps:
            out[start:end] = True
    return out


def infer_task(keypoints: np.ndarray, fps: float, height: np.ndarray | None = None,
               planted: np.ndarray | None = None) -> str:
    """A task read from the motion when none is given (`movement_family`, gait told apart by its stride):

    - both feet planted all along (`planted_feet`): a bilateral squat, or a single-leg squat on the lower foot
      when the other is held more than `FREE_FOOT_LIFT` above it;
    - one foot planted: a single-leg task on it, a step-down when the free foot reaches below it;
    - feet that move, with the pelvis bouncing up and down by more than `JUMP_BOUNCE` leg lengths within a
      second: a drop jump (a quick squat's pelvis moves as far, but its feet stay put);
    - otherwise gait: running when its stride is shorter than `RUNNING_STRIDE_S` (`stride_period_s`), else
      walking (a recording of one stride or less reads as walking; both are scored by their stances, against
      their own thresholds).

    Image height alone cannot tell a foot off the ground from a foot nearer the camera, so nothing here needs
    both feet's heights against one floor line: that read every step-down and most walks filmed from the front
    as drop jumps, and squats filmed from an angle as single-leg. `height`, `planted`: the feet's `foot_height`
    and `planted_feet`, when the caller has them."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if height is None:
        height = foot_height(kp)
    task = movement_family(kp, fps, height, planted)
    if task != "gait":
        return task
    return "running" if stride_period_s(height, fps) < RUNNING_STRIDE_S else "walking"


def held_foot_squat(height: np.ndarray) -> str | None:
    """A single-leg squat on the lower foot when the other is held more than `FREE_FOOT_LIFT` above it (median
    over frames of the feet's `foot_height`), else None."""
    lift = _quantile(height[:, 0] - height[:, 1], 0.5)  # > 0: the left foot is the higher
    if not abs(lift) > FREE_FOOT_LIFT:
        return None
    return f"single_leg_squat_{LIMBS[1 if lift > 0 else 0]}"


def movement_family(keypoints: np.ndarray, fps: float, height: np.ndarray | None = None,
                    planted: np.ndarray | None = None) -> str:
    """`infer_task`'s reading with walking and running left as one, "gait": the stride's period that tells them
    apart costs more than the rest of the reading together. `height` and `planted` (`foot_height`,
    `planted_feet` of these keypoints): when the caller has them."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if height is None:
        height = foot_height(kp)
    scale = leg_length(kp)
    if not np.isfinite(height).any() or not math.isfinite(scale) or scale <= 0:
        return "bilateral_squat"
    if planted is None:
        planted = planted_feet(kp, scale)
    if planted.all():
        return held_foot_squat(height) or "bilateral_squat"
    if planted.any():
        stance = int(np.argmax(planted))
        if _quantile(height[:, 1 - stance], 0.02) < _quantile(height[:, stance], 0.5) - 0.5 * FREE_FOOT_LIFT:
            return f"lateral_step_down_{LIMBS[stance]}"
        return f"single_leg_squat_{LIMBS[stance]}"
    hips = kp[:, list(_HIP)].mean(axis=1)
    up = hips[:, 2] if kp.shape[-1] == 3 else -hips[:, 1]
    bounce = up - moving_average(up[:, None], max(1, int(round(fps)) | 1))[:, 0]
    if (_quantile(bounce, 0.98) - _quantile(bounce, 0.02)) / scale > JUMP_BOUNCE:
        return "drop_vertical_jump"
    return "gait"


@functools.lru_cache(maxsize=16)
def _stride_highpass(fps: float) -> np.ndarray:
    """The second-order Butterworth high-pass `stride_period_s` filters with (designing it costs more than
    filtering a recording)."""
    from scipy.signal import butter

    return butter(2, STRIDE_HIGHPASS_HZ, "highpass", fs=fps, output="sos")


def stride_period_s(height: np.ndarray, fps: float) -> float:
    """The gait's stride in seconds from the feet's height `(T, 2)` (`foot_height`): the first peak of the
    feet's mean autocorrelation within `STRIDE_RANGE_S`, each foot's height high-passed; NaN when no peak
    reaches `STRIDE_MIN_CORRELATION` (fewer than two strides, a foot unseen for half the recording)."""
    from scipy.signal import correlate, find_peaks, sosfiltfilt

    lowest, highest = (int(round(s * fps)) for s in STRIDE_RANGE_S)
    if len(height) < 2 * max(lowest, 8) or not fps > 4 * STRIDE_HIGHPASS_HZ:
        return math.nan  # no room for two strides (nor for the filter's edge padding), or too few frames a second
    frames = np.arange(len(height))
    highpass = _stride_highpass(float(fps))
    correlations = []
    for column in np.asarray(height, dtype=np.float64).T:
        seen = np.isfinite(column)
        if seen.mean() < 0.5:
            continue
        signal = sosfiltfilt(highpass, np.interp(frames, frames[seen], column[seen]))
        signal -= signal.mean()
        power = float(signal @ signal)
        if power > 0:
            correlations.append(correlate(signal, signal)[len(signal) - 1 : len(signal) + highest] / power)
    if not correlations:
        return math.nan
    peaks, _ = find_peaks(np.mean(correlations, axis=0), height=STRIDE_MIN_CORRELATION)
    peaks = peaks[peaks >= lowest]
    return float(peaks[0] / fps) if peaks.size else math.nan


def planted_stance(planted: np.ndarray) -> str | None:
    """The limb a recording with no task name stands on when exactly one foot stays put and the other moves
    (`planted`: `planted_feet`), else None. Of `infer_task`'s readings this is the one sure enough to leave the
    other knee unscored: on 800 sequences of each generator it named a single-leg task 313 and 279 times, a
    bilateral squat twice; a single-leg task read from two planted feet at different heights is a bilateral
    squat about half the time (a camera at an angle sets the far foot higher in the image)."""
    return LIMBS[int(np.argmax(planted))] if int(np.sum(planted)) == 1 else None


def foot_centres(keypoints: np.ndarray) -> np.ndarray:
    """`(T, 2, C)` each foot's (left, right) mean seen point: its ankle, heel and toes; NaN where none is seen."""
    points = keypoints[:, np.array(_FOOT)]  # (T, 2, 4, C)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(points, axis=2) / np.isfinite(points).sum(axis=2)


def planted_feet(keypoints: np.ndarray, scale: float | None = None) -> np.ndarray:
    """`(2,)` bool: each foot's centre stays within `PLANTED_RANGE` leg lengths (5th-95th percentile, on every
    axis) over the recording; `scale`: the `leg_length`, when the caller has it (neither foot, without one)."""
    out = np.zeros(2, dtype=bool)
    if scale is None:
        scale = leg_length(keypoints)
    if not math.isfinite(scale) or scale <= 0:
        return out
    centres = foot_centres(keypoints)
    with np.errstate(all="ignore"):
        for k in range(2):
            centre = centres[:, k]
            spans = [_quantile(centre[:, a], 0.95) - _quantile(centre[:, a], 0.05) for a in range(centre.shape[-1])]
            out[k] = all(math.isfinite(span) and span < PLANTED_RANGE * scale for span in spans)
    return out


def _standing_level(column: np.ndarray, standing: np.ndarray) -> float:
    """One limb's standing knee flexion: the median over standing frames, else its least flexion."""
    reference = column[standing & np.isfinite(column)]
    if reference.size:
        return float(np.median(reference))
    return float(np.nanmin(column)) if np.isfinite(column).any() else math.nan


def straight_frames(column: np.ndarray) -> np.ndarray:
    """`(T,)` bool: one knee's flexion `(T,)` within `STANDING_MARGIN_DEG` of its straightest (5th percentile);
    all True when the knee is never seen."""
    straightest = _quantile(column, 0.05)
    if not math.isfinite(straightest):
        return np.ones(len(column), dtype=bool)
    with np.errstate(invalid="ignore"):
        return column <= straightest + STANDING_MARGIN_DEG


def standing_frames(flexion: np.ndarray) -> np.ndarray:
    """`(T,)` bool: both knees near straight at once (`straight_frames`): quiet standing. Gait has none, as
    its knees straighten in turn."""
    return straight_frames(flexion[:, 0]) & straight_frames(flexion[:, 1])


def support_height(height: np.ndarray, task: str) -> np.ndarray:
    """`foot_height` `(T, 2)` with a single-leg task's stance foot measured from its own lowest position: a
    step-down's stance foot stands on a step all along, above the floor its free foot reaches, and is in
    contact there (without a named side both feet are). Other tasks' feet keep the common floor."""
    named = stance_from_task(task)
    if named is None and task_family(task) != "lateral_step_down":
        return height
    out = height.copy()
    for k, limb in enumerate(LIMBS):
        if named in (None, (limb,)) and np.isfinite(height[:, k]).any():
            out[:, k] = height[:, k] - _quantile(height[:, k], 0.02)
    return out


def _repetitions(limb: str, flexion: np.ndarray, contact: np.ndarray, standing_level: float) -> list[Phase]:
    """Repetitions of one limb: knee bent beyond standing + `MIN_REP_FLEXION_DEG`/2 with the foot down; the
    loaded (scored) part is where flexion passes standing + `LOADED_FRACTION` of the rep's range."""
    out = []
    with np.errstate(invalid="ignore"):
        bent = contact & (flexion > standing_level + 0.5 * MIN_REP_FLEXION_DEG)
    for start, end in true_runs(bent):
        segment = flexion[start:end]
        if not np.isfinite(segment).any():
            continue
        peak = start + int(np.nanargmax(segment))
        depth = flexion[peak] - standing_level
        if depth < MIN_REP_FLEXION_DEG:
            continue
        out.append(Phase(limb, start, end, peak, "rep", True))
    return out


def swinging_feet(keypoints: np.ndarray, fps: float, task: str = "") -> np.ndarray:
    """`(T, 2)` bool: in 3D gait (`task` a walk or a run, named or read from the motion), the frames where a foot
    moves forward past the pelvis faster than `SWING_FORWARD_SPEED`, however low it is; all False otherwise
    (2D does not show a foot's depth) and where a foot is unseen (its height alone decides there)."""
    shape = np.shape(keypoints)
    none = np.zeros((shape[0], 2), dtype=bool)
    if len(shape) != 3 or shape[-1] != 3 or shape[0] < 2:  # before any copy: the summary asks for 2D input too
        return none
    kp = np.asarray(keypoints, dtype=np.float64)
    if task_family(task or infer_task(kp, fps)) not in ("walking", "running"):
        return none
    # in leg lengths a second, the unit of the feet's height (`foot_height`)
    forward = moving_average(foot_forward_velocity(kp, fps) / leg_length(kp), max(1, int(round(SMOOTH_S * fps)) | 1))
    with np.errstate(invalid="ignore"):
        return forward > SWING_FORWARD_SPEED


def phases(keypoints: np.ndarray, fps: float, task: str = "", flexion: np.ndarray | None = None) -> list[Phase]:
    """Loaded phases of both limbs from canonical keypoints `(T, 20, 2|3)` (missing joints NaN), in time order.

    `task` names the movement (`drop_vertical_jump`, `single_leg_squat_left`, …); empty → inferred.
    `flexion` `(T, 2)`: `raw_knee_flexion` already computed by the caller, else computed here.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    n = len(kp)
    if n == 0:
        return []
    height = foot_height(kp)
    task = task or infer_task(kp, fps, height)
    family = task_family(task)
    flexion = smooth_flexion(raw_knee_flexion(kp) if flexion is None else flexion, fps)
    with np.errstate(invalid="ignore"):
        contact = support_height(height, task) <= CONTACT_TOLERANCE
    named = stance_from_task(task) if task else None
    standing = standing_frames(flexion)
    stance = contact & ~swinging_feet(kp, fps, task)
    out: list[Phase] = []
    for k, limb in enumerate(LIMBS):
        if named is not None and limb not in named:
            continue
        column = flexion[:, k]
        level = _standing_level(column, standing)
        if not math.isfinite(level):
            continue
        if family == "drop_vertical_jump":
            out.extend(_landing(limb, column, contact[:, k], flight_frames(height, fps), fps))
        elif family in ("walking", "running"):
            for start, end in true_runs(stance[:, k]):
                if end - start >= 0.15 * fps:  # a touch-down is not a stance
                    segment = column[start:end]
                    peak = start + (int(np.nanargmax(segment)) if np.isfinite(segment).any() else 0)
                    out.append(Phase(limb, start, end, peak, "stance", True))
        else:
            out.extend(_repetitions(limb, column, contact[:, k], level))
    return sorted(out, key=lambda p: (p.start, p.limb))


def _landing(limb: str, flexion: np.ndarray, contact: np.ndarray, flight: np.ndarray, fps: float) -> list[Phase]:
    """The first landing (initial contact after the first flight → peak knee flexion, scored) and the rest of
    that contact (push-off, not scored). Without a flight phase the first contact after a raised start is
    used; with neither, nothing is scored."""
    n = len(flexion)
    flights = true_runs(flight)
    if flights:
        after = flights[0][1]
    else:
        up = ~contact
        raised = true_runs(up)
        if not raised or raised[0][0] != 0:
            return []
        after = raised[0][1]
    touching = np.flatnonzero(contact[after:])
    if not touching.size:
        return []
    contact_frame = after + int(touching[0])
    next_flight = [s for s, _ in flights if s > contact_frame]
    takeoff = next_flight[0] if next_flight else n
    # The landing absorbs within ~0.5 s; a later, deeper bend is a new movement, not this landing.
    window_end = min(takeoff, contact_frame + max(2, int(round(0.5 * fps))))
    segment = flexion[contact_frame:window_end]
    if not np.isfinite(segment).any():
        return []
    peak = contact_frame + int(np.nanargmax(segment))
    out = [Phase(limb, contact_frame, peak + 1, peak, "landing", True)]
    if takeoff > peak + 1:
        out.append(Phase(limb, peak + 1, takeoff, peak, "push_off", False))
    return out


@dataclass(frozen=True)
class Segment:
    """Frames `[start, end)` where at least one limb is in a scored phase (overlapping phases of the two limbs
    merged: one bilateral rep is one segment); `limbs` are the limbs scored in it, `kind` the phases' kind."""

    start: int
    end: int
    kind: str
    limbs: tuple[str, ...]


def scored_segments(phase_list: list[Phase]) -> list[Segment]:
    """The scored phases as time segments, overlapping phases of both limbs merged, in time order."""
    out: list[Segment] = []
    for p in sorted((p for p in phase_list if p.scored), key=lambda p: p.start):
        if out and p.start < out[-1].end:
            last = out[-1]
            limbs = tuple(sorted(set(last.limbs) | {p.limb}, key=LIMBS.index))
            out[-1] = Segment(last.start, max(last.end, p.end), last.kind, limbs)
        else:
            out.append(Segment(p.start, p.end, p.kind, (p.limb,)))
    return out


def scored_mask(phase_list: list[Phase], n_frames: int, kind: str = "scored") -> np.ndarray:
    """`(T, 2)` bool over the limbs: frames inside a scored phase (`kind="scored"`), or inside phases of one
    kind (`"push_off"`, `"rep"`, …)."""
    mask = np.zeros((n_frames, 2), dtype=bool)
    for p in phase_list:
        if (p.scored if kind == "scored" else p.kind == kind):
            mask[p.start : p.end, LIMBS.index(p.limb)] = True
    return mask


def loaded_mask(
    keypoints: np.ndarray,
    fps: float,
    task: str = "",
    flexion: np.ndarray | None = None,
    found: list[Phase] | None = None,
) -> np.ndarray:
    """`(T, 2)` bool: the frames the valgus rule reads. In repetitions only the deeper part of each rep
    (flexion above standing + `LOADED_FRACTION` of its range), as the generator's load threshold does.
    `flexion` (`raw_knee_flexion`) and `found` (`phases`) when the caller has them."""
    kp = np.asarray(keypoints, dtype=np.float64)
    raw = raw_knee_flexion(kp) if flexion is None else flexion
    if found is None:
        found = phases(kp, fps, task, flexion=raw)
    flexion = smooth_flexion(raw, fps)
    standing = standing_frames(flexion)
    mask = np.zeros((len(kp), 2), dtype=bool)
    for p in found:
        if not p.scored:
            continue
        k = LIMBS.index(p.limb)
        if p.kind == "rep":
            column = flexion[:, k]
            level = _standing_level(column, standing)
            cut = level + LOADED_FRACTION * (column[p.peak] - level)
            with np.errstate(invalid="ignore"):
                mask[p.start : p.end, k] = column[p.start : p.end] >= cut
        else:
            mask[p.start : p.end, k] = True
    return mask
