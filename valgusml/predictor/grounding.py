"""Root-relative keypoints put back on the ground: the body's own motion rebuilt from its planted foot.

A monocular 3D lifter (MediaPipe's world landmarks, VideoPose3D, MotionBERT) writes every frame with the hips'
centre at the origin. The pose is there, the body's motion is not: a squat's descent shows as the feet rising
towards the pelvis, a walk's travel as the feet sliding back and forth. The model and the rule read the motion
(which foot is planted, how far the pelvis drops, where the stances are), so the task, the scored phase and the
standing reference all go wrong: the shipped 3D squat's valgus right knee read 1.00 in world coordinates and
0.04 root-relative.

The motion is rebuilt as a person moves: the lower foot stays where it is while it carries the body. Each run
of frames with one foot lower holds that foot's centre (mean of its seen ankle, heel and toe points) at one
place, and the body is translated around it; when the other foot takes over, it is held from where it is at
that moment, so the body never jumps. What cannot come back: a flight phase (no foot carries the body; a jump
reads as if the feet stayed on the ground) and the drift of a planted foot's own jitter, which the body takes
on instead.

A 3D frame tilted against the floor is levelled from the footfalls. A markerless system calibrated on a board
that was not flat, or a lifter's camera frame, tilts the floor under a walk: the foot nearer the far end sits
higher, so the rule's floor (the feet's lowest points) misses the stances there and the scored phase goes. The
OpenCap toe-in walk tilted 6 deg along its travel read its valgus left knee 0.64 -> 0.15 and lost every scored
frame of that leg. Each run of frames in which a foot stands still is a footfall; in a recording that travels,
the heights of the footfalls (one foot at each place) fitted by a line along the travel give the floor's rise
along it, and the recording is turned about the axis across the travel. A tilt about the direction of travel is
not read (the feet are a step width apart, too close to measure it), and it leaves the frontal-plane angles of a
walk as they are. The real level walks' footfalls rise 0.0-0.4 deg; recordings in place (squats, landings,
balances) are not read at all. Nor are root-relative recordings after their rebuild: each handover carries the
feet's height difference at that moment over to the next footfall, so the rebuilt footfalls climb or sink by
the rebuild's own drift (15 of 118 untilted estimated-3D walks and runs read a rise of 3 deg or more, and
levelling them lowered their AUROC from 0.853 to 0.848).
"""

from __future__ import annotations

import math

import numpy as np

from valgusml.features.phases import (
    foot_centres,
    foot_height,
    held_foot_squat,
    infer_task,
    planted_feet,
    true_runs,
)
from valgusml.labels import LIMBS
from valgusml.skeleton import canonical_index

_LEG = tuple((canonical_index(f"{side}_hip"), canonical_index(f"{side}_ankle")) for side in LIMBS)
# The other foot takes over once it is this much lower (a share of the hip-to-ankle length): without the margin,
# double support's jitter hands the body from foot to foot at every frame.
HANDOVER_MARGIN = 0.03
# A foot whose centre moves slower than this (leg lengths per second, over a tenth of a second) for at least
# FOOTFALL_MIN_S carries the body: a footfall.
FOOTFALL_STILL = 0.2
FOOTFALL_MIN_S = 0.1
# The floor is read only where the hips travel at least FLOOR_MIN_SPAN (leg lengths), off places this far apart
# where one foot stood alone, spanning at least FLOOR_MIN_SPAN, whose heights a straight line fits within
# FLOOR_MAX_RMS: a walk's or run's footfalls. A drop jump's box and landing each hold both feet, so a box is never
# taken for a slope.
FOOTFALL_SEPARATION = 0.3
FLOOR_MIN_SPAN = 0.75
FLOOR_MAX_RMS = 0.02
# Rises under the first are left alone: an estimated foot can sit 2 cm above the other (Pose2Sim), 1.7 deg over
# a step, and the rule reads a walk tilted 3 deg as it reads it level. Past the second the footfalls are taken for
# something other than a tilted frame (a ramp, a staircase).
FLOOR_LEVEL_DEG = (3.0, 15.0)
# The leg's length and the hips' travel are read off this many evenly spaced frames: it runs on every 3D prediction.
SIZE_FRAMES = 64


def _leg_length(keypoints: np.ndarray) -> float:
    lengths = [np.linalg.norm(keypoints[:, hip] - keypoints[:, ankle], axis=-1) for hip, ankle in _LEG]
    finite = np.concatenate(lengths)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if len(finite) else float("nan")


def planted_foot_offsets(keypoints: np.ndarray) -> np.ndarray:
    """`(T, C)` translation that, added to each frame of canonical `(T, J, C)` keypoints (3D +z up, or 2D image
    y down), holds the lower foot still while it is the lower one (see the module docstring). Zero where no
    foot is seen until one is; a frame without a seen foot keeps the translation before it."""
    kp = np.asarray(keypoints, dtype=np.float64)
    n_frames, dims = len(kp), kp.shape[-1]
    centres = foot_centres(kp)
    height = centres[..., 2] if dims == 3 else -centres[..., 1]  # (T, 2): larger is higher
    margin = HANDOVER_MARGIN * _leg_length(kp)
    offsets = np.zeros((n_frames, dims))
    foot, anchor = -1, None
    for t in range(n_frames):
        seen = np.isfinite(height[t])
        if not seen.any():
            offsets[t] = offsets[t - 1] if t else 0.0
            continue
        other = 1 - foot
        if foot < 0 or not seen[foot] or (seen[other] and height[t, other] < height[t, foot] - margin):
            foot = int(np.nanargmin(np.where(seen, height[t], np.inf)))
            # the new foot is held where it is now, as the body stood a frame ago: no jump at the handover
            anchor = centres[t, foot] + (offsets[t - 1] if t else 0.0)
        offsets[t] = anchor - centres[t, foot]
    return offsets


def rebuilt_task(keypoints: np.ndarray, fps: float) -> str:
    """The task of a recording rebuilt by `ground` (canonical 3D, +z up), read as `phases.infer_task` reads it
    but for one clue the rebuild fakes: it holds the lower foot still, so a foot that stays put is no sign of a
    single-leg task by itself (drop jumps rebuilt so read as single-leg squats, and scored their push-off). One
    is read only where the other foot is held clearly higher (`phases.held_foot_squat`), as for two planted
    feet; otherwise the pelvis's bounce tells a landing from gait, and both knees are scored."""
    kp = np.asarray(keypoints, dtype=np.float64)
    height = foot_height(kp)
    planted = planted_feet(kp)
    if planted.sum() == 1:
        held = held_foot_squat(height)
        if held:
            return held
        planted = np.zeros(2, dtype=bool)
    return infer_task(kp, fps, height, planted)


def _travel(keypoints: np.ndarray) -> tuple[float, np.ndarray]:
    """`(distance, direction (2,))`: how far the hips' centre moves over the floor (5th-95th percentile) along
    its main horizontal direction. A foot held still in the air (a balance, a single-leg squat's free foot) is
    no footfall, so only recordings that travel are read for the floor, and only along their travel: a walk's
    feet are a step width apart across it."""
    hips = 0.5 * (keypoints[:, _LEG[0][0], :2] + keypoints[:, _LEG[1][0], :2])
    hips = hips[np.isfinite(hips).all(axis=-1)]
    if len(hips) < 2:
        return 0.0, np.array([1.0, 0.0])
    dx, dy = (hips - hips.mean(axis=0)).T
    angle = 0.5 * math.atan2(2.0 * float(dx @ dy), float(dx @ dx - dy @ dy))  # the 2x2 covariance's main axis
    direction = np.array([math.cos(angle), math.sin(angle)])
    along = np.sort(hips @ direction)
    return float(along[round(0.95 * (len(along) - 1))] - along[round(0.05 * (len(along) - 1))]), direction


def footfalls(keypoints: np.ndarray, fps: float, leg: float) -> tuple[np.ndarray, np.ndarray]:
    """`(centres (N, 3), foot (N,))`: the mean centre of each foot over each run of frames in which it stands
    still (see the constants), and which foot it is (0 left, 1 right), in canonical 3D `(T, J, 3)` keypoints
    whose hip-to-ankle length is `leg`."""
    kp = np.asarray(keypoints, dtype=np.float64)
    centres = foot_centres(kp)  # (T, 2, 3)
    half = max(1, round(0.05 * fps))
    if len(kp) <= 2 * half or not leg > 0:
        return np.empty((0, 3)), np.empty(0, dtype=int)
    with np.errstate(invalid="ignore"):
        moved = np.linalg.norm(centres[2 * half :, :, :2] - centres[: -2 * half, :, :2], axis=-1)
        still = np.zeros((len(kp), 2), dtype=bool)
        still[half:-half] = moved / (2 * half / fps) < FOOTFALL_STILL * leg
    # run means from cumulative sums: a noisy estimate stands still in dozens of short runs, and a reduction
    # per run would cost milliseconds on every 3D prediction
    seen = np.isfinite(centres).all(axis=-1) & still
    sums = np.concatenate([np.zeros((1, 2, 3)), np.cumsum(np.where(seen[..., None], centres, 0.0), axis=0)])
    counts = np.concatenate([np.zeros((1, 2)), np.cumsum(seen, axis=0)])
    shortest = max(2, math.ceil(FOOTFALL_MIN_S * fps))
    found = [(k, start, end) for k in range(2) for start, end in true_runs(still[:, k]) if end - start >= shortest]
    found = [(k, a, b) for k, a, b in found if counts[b, k] > counts[a, k]]
    if not found:
        return np.empty((0, 3)), np.empty(0, dtype=int)
    foot, start, end = (np.array(column) for column in zip(*found, strict=True))
    means = (sums[end, foot] - sums[start, foot]) / (counts[end, foot] - counts[start, foot])[:, None]
    return means, foot


def floor_rise(keypoints: np.ndarray, fps: float) -> tuple[float, np.ndarray, np.ndarray] | None:
    """`(rise_deg, direction (2,), centre (3,))`: how steeply the floor under canonical 3D keypoints rises along
    the horizontal unit `direction` of travel, read off the footfalls through `centre`; None where the footfalls
    do not show a floor (see the constants)."""
    sample = np.asarray(keypoints[:: max(1, len(keypoints) // SIZE_FRAMES)], dtype=np.float64)
    leg = _leg_length(sample)
    travel, direction = _travel(sample)
    if not travel >= FLOOR_MIN_SPAN * leg:  # in place, as most recordings are: nothing more to read
        return None
    placed, foot = footfalls(keypoints, fps, leg)
    if len(placed) < 2:
        return None
    along = placed[:, :2] @ direction
    # places along the travel: footfalls closer than FOOTFALL_SEPARATION are one place
    order = np.argsort(along)
    place = np.zeros(len(placed), dtype=int)
    place[order] = np.concatenate([[0], np.cumsum(np.diff(along[order]) > FOOTFALL_SEPARATION * leg)])
    # a walk sets one foot at each place; where both feet stood together (a box, a standing start) is not read
    single = np.array([len(set(foot[place == p].tolist())) == 1 for p in place], dtype=bool)
    placed, along, place = placed[single], along[single], place[single]
    if len(np.unique(place)) < 2 or np.ptp(along) < FLOOR_MIN_SPAN * leg:
        return None
    slope, intercept = np.polyfit(along, placed[:, 2], 1)
    if math.sqrt(float(np.mean((placed[:, 2] - slope * along - intercept) ** 2))) > FLOOR_MAX_RMS * leg:
        return None
    centre = np.append(placed[:, :2].mean(axis=0), intercept + slope * along.mean())
    return math.degrees(math.atan(slope)), direction, centre


def levelled(keypoints: np.ndarray, rise_deg: float, direction: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """`keypoints` (canonical 3D) turned about `centre` so that a floor rising `rise_deg` along `direction` is
    level, in the input's dtype."""
    angle = -math.radians(rise_deg)  # about the hinge below, a positive angle would raise `direction` further
    axis = np.array([direction[1], -direction[0], 0.0])  # direction x up: horizontal, across the travel
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    rotation = np.eye(3) + math.sin(angle) * cross + (1.0 - math.cos(angle)) * cross @ cross  # Rodrigues
    return ((keypoints.astype(np.float64) - centre) @ rotation.T + centre).astype(keypoints.dtype)


def ground(keypoints: np.ndarray) -> np.ndarray:
    """`keypoints` with `planted_foot_offsets` added to every joint of each frame, in the input's dtype."""
    return (keypoints.astype(np.float64) + planted_foot_offsets(keypoints)[:, None, :]).astype(keypoints.dtype)


__all__ = ["FLOOR_LEVEL_DEG", "HANDOVER_MARGIN", "floor_rise", "footfalls", "ground", "levelled", "planted_foot_offsets",
           "rebuilt_task"]
