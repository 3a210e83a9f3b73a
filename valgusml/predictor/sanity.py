"""Is the input what it claims to be? Checks on a canonical-skeleton recording before the model sees it.

A model answers whatever it is given; these checks make sure an answer to input that is not a person seen by a
camera is never silent (issue 13): each returns warnings for `Prediction.warnings`, or raises `InputError`
where no sensible answer exists.

- all joints at one point in every frame (no body to measure) → `InputError`; in some frames → warning;
- 2D with the feet above the head → the image y axis points up (pose estimators emit y down) → read with y
  flipped, warning; with the head beside the feet along x → an image on its side (a phone's portrait video whose
  rotation tag the estimator ignored) → read turned upright, warning; read as given, either had a confident
  answer that did not rest on the knee (the halpe26 squat's valgus right knee 0.60 → 0.37 upside down, 0.22
  on its side, read as a side view); with the legs leaning past `ROLL_LEVEL_DEG` in the image → a rolled
  camera (a hand-held phone) → read levelled, warning (the same squat rolled 20 / 30 deg read 0.34 / 0.18);
- 2D whose body is much wider than tall otherwise → not an upright person in an image (world x/y from above?)
  → warning;
- 2D that says nothing of its units (an array, not an importer's sequence) but lies within [-1, 2] → normalised
  image coordinates, whose x and y are fractions of different lengths (a portrait or landscape frame stretches
  every frontal angle) → read as normalised, the frame's shape read off the body (`features.image`), warning
  (60 held-out athletes' recordings made normalised: presence AUROC 0.849 read as given, 0.937 so);
- 3D whose third coordinate is constant → 2D image points with an extra z = 0 column → `InputError`; whose third
  column lies within [0, 1] beside pixels, or beside a body upright along y under half a unit tall → a 2D
  estimator's (x, y, confidence) rows → `InputError` that says how to pass them;
- 3D whose head sits above the feet along another axis than +z (y up as OpenSim, Unity and many lifters write
  it, y down as camera coordinates have it) → rotated to +z up by a proper rotation, warning; read as given, a
  drop jump without valgus was called valgus on one knee with p 1.00 and no warning at all;
- 3D whose body is not 0.5-3 units tall (not metres) → warning;
- 3D whose footfalls rise 3-15 deg along a walk's or run's travel → a frame tilted against the floor (a
  markerless system calibrated on a board that was not flat) → levelled (`predictor.grounding`), warning; read
  as given, the OpenCap toe-in walk tilted 6 deg read its valgus left knee 0.15 instead of 0.64. Not on
  root-relative input: its rebuilt footfalls are no measure of the floor;
- a task name the rule does not know (`valgusml.labels.is_known_task`) → read from the motion instead → warning;
- the hips' centre at one point in every frame → root-relative keypoints (a monocular 3D lifter's output), whose
  pelvis motion (a squat's descent, a landing) shows as the feet moving → the motion rebuilt from the planted
  foot (`predictor.grounding`), warning (a 3D squat read root-relative: right knee 1.00 → 0.05; rebuilt 1.00);
  without a task named, the task is read from the rebuilt motion (`grounding.rebuilt_task`), warning;
- a body size no camera or unit gives (under 0.01 or over 100,000 units) → rescaled to a typical size (the
  model reads shapes, not sizes, but float arithmetic inside it does not span 1e-6 to 1e6 equally) → warning.

Before the canonical mapping (`undetected_as_missing`, on the recording as given): a point at exactly (0, 0)
(or (0, 0, 0)) with confidence above 0, in a frame whose other points lie away from the origin, is what
OpenPose, AlphaPose and MMPose write for a joint they did not find → read as missing → warning. Left in, one
such knee turns a front view into a "side view" and moves the call (the halpe26 sample with 5% of its points
zeroed: right knee 0.56 → 0.21, read as side-on).
"""

from __future__ import annotations

import numpy as np

from valgusml.errors import InputError
from valgusml.features.medians import finite_median
from valgusml.labels import KNOWN_TASKS_TEXT, is_known_task
from valgusml.predictor.grounding import FLOOR_LEVEL_DEG, floor_rise, ground, levelled, rebuilt_task
from valgusml.preprocess import UPPER_BODY_JOINTS
from valgusml.sequence import UP_AXIS_ROTATIONS, KeypointSequence
from valgusml.skeleton import canonical_index

_HEAD = [canonical_index(j) for j in UPPER_BODY_JOINTS]  # whose absence `preprocess` warns of
_FEET = [canonical_index(j) for j in ("left_ankle", "right_ankle", "left_heel", "right_heel")]
_HEAD_AND_FEET = _HEAD + _FEET  # as many of each: one gather reads both groups
_HIPS = (canonical_index("left_hip"), canonical_index("right_hip"))
_ANKLES = (canonical_index("left_ankle"), canonical_index("right_ankle"))
# Body sizes (largest extent of the joints in a frame, median over frames) outside this range are rescaled.
PLAUSIBLE_SIZE = (1e-2, 1e5)
TYPICAL_SIZE = {2: 500.0, 3: 1.7}  # pixels of a person in a video frame; metres of a standing adult
# The body's orientation and size are medians over frames: this many evenly spaced frames give the same
# verdicts as all of them, at a fraction of the cost on every prediction.
MEDIAN_FRAMES = 64
# Where every coordinate of normalised image keypoints lies (fractions of the image, a little outside it at its
# edges): the MediaPipe importer's test (`io.mediapipe`); no person spans under 3 pixels.
NORMALISED_RANGE = (-1.0, 2.0)
# How far (as a share of the body's size, medians over frames) the head must sit above the feet along an axis
# for that axis to be read as up: a standing or squatting person's head is most of the body's size above them.
UPRIGHT_SHARE = 0.25
# A camera rolled further than this is levelled (training rotates windows by up to 8 deg). The legs' lean in the
# image (hips' centre over the ankles', median over frames) is 1.7 deg at the median of make run's 800 first
# held-out recordings, p99 6.9, at most 11.0: single-leg squats, whose free foot moves the ankles' centre (7 of
# the 320 recordings of the tests' tiny set lean 8-11 deg, all of them single-leg squats). Past 12 no generator
# recording is touched, so a folder answers its own test athletes as training scored them. On 60 held-out athletes
# rolled 20 / 30 deg, AUROC 0.867 / 0.812 -> 0.937 (10 deg, under the cut: 0.916).
ROLL_LEVEL_DEG = 12.0


def _joint_major(seq: KeypointSequence) -> np.ndarray:
    """`(C, J, T)` float32 copy of the keypoints, NaN where the confidence is 0.

    Reductions over the joints then run along contiguous rows of frames: over the middle axis of `(T, J, C)`
    numpy takes ~40x longer (a strided inner loop of C = 2 values per step). Max, min and abs are exact in
    float32; what is computed from them is cast to float64 first, as the checks always did."""
    out = np.ascontiguousarray(seq.keypoints.transpose(2, 1, 0), dtype=np.float32)
    out[:, seq.confidence.T <= 0] = np.nan
    return out


def _ranges(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(C, T)` max and min of the valid joints of `(C, J, T)` along each axis (NaN where a frame has none).
    `fmax`/`fmin` skip NaN without `nanmax`'s copies and warnings: this runs on every prediction."""
    return np.fmax.reduce(coords, axis=1), np.fmin.reduce(coords, axis=1)


def _extent(highest: np.ndarray, lowest: np.ndarray) -> np.ndarray:
    """`(C, T)` float64 max - min along each axis."""
    return highest.astype(np.float64) - lowest.astype(np.float64)


def _largest_magnitude(highest: np.ndarray, lowest: np.ndarray) -> np.ndarray:
    """`(T,)` largest |coordinate| of the valid joints of each frame (0 where a frame has none): the largest
    is the max or the min of some axis."""
    per_axis = np.fmax(np.abs(highest), np.abs(lowest))
    return np.nan_to_num(np.fmax.reduce(per_axis, axis=0).astype(np.float64))


def _nanmean_over_joints(values: np.ndarray) -> np.ndarray:
    """`np.nanmean(values, axis=-2)` of `(..., J, T)` values in float64 (NaN for a frame without any), summed in
    the same order; the caller silences the 0 / 0 of such frames."""
    values = values.astype(np.float64)
    missing = np.isnan(values)
    values[missing] = 0.0
    return values.sum(axis=-2) / (~missing).sum(axis=-2)


def _within(highest: np.ndarray, lowest: np.ndarray, bounds: tuple[float, float]) -> bool:
    """Whether every valid coordinate (the `(C, T)` maxima and minima of `_ranges`) lies within `bounds`."""
    with np.errstate(invalid="ignore"):
        return bool(np.fmax.reduce(highest, axis=None) <= bounds[1] and np.fmin.reduce(lowest, axis=None) >= bounds[0])


def _head_minus_feet(coords: np.ndarray) -> np.ndarray:
    """`(C,)` median over frames of the head's mean position minus the feet's, along each axis of `(C, J, T)`;
    in frames without a seen head point the hips' stand in for it (a camera framing the legs)."""
    means = _nanmean_over_joints(coords[:, _HEAD_AND_FEET].reshape(len(coords), 2, len(_HEAD), -1))  # (C, 2, T)
    top = means[:, 0]
    headless = np.isnan(top[0])
    if headless.any():
        top = np.where(headless, _nanmean_over_joints(coords[:, list(_HIPS)]), top)
    return np.array([finite_median(along_axis) for along_axis in top - means[:, 1]])


def _up_axis(coords: np.ndarray, body: float, usual: str) -> str | None:
    """The axis (`"+z"`, `"-y"`, ...) of `(C, J, T)` along which the head sits above the feet by at least a
    quarter of the body's size, or None where no axis shows it (head or feet unseen, a body lying down). The
    `usual` axis is tried alone first: it is the answer for nearly every recording, at a third of the cost."""
    usual_axis, usual_sign = "xyz".index(usual[1]), 1.0 if usual[0] == "+" else -1.0
    if usual_sign * _head_minus_feet(coords[usual_axis : usual_axis + 1])[0] >= UPRIGHT_SHARE * body:
        return usual
    head_minus_feet = _head_minus_feet(coords)
    axis = int(np.argmax(np.nan_to_num(np.abs(head_minus_feet))))
    if not abs(head_minus_feet[axis]) >= UPRIGHT_SHARE * body:
        return None
    return ("+" if head_minus_feet[axis] > 0 else "-") + "xyz"[axis]


def _legs_lean_deg(coords: np.ndarray, pelvis: np.ndarray) -> float:
    """The image angle (deg, + clockwise from image up) of the hips' centre over the ankles' centre, median over
    the frames of `(2, J, T)` image coordinates (`pelvis`: twice the hips' centre, `(2, T)`): 0 for an upright
    body in a level image, whatever the view."""
    legs = 0.5 * (pelvis - coords[:, _ANKLES[0]] - coords[:, _ANKLES[1]])  # hips' centre minus the ankles'
    return float(np.degrees(np.arctan2(finite_median(legs[0]), -finite_median(legs[1]))))


def _levelled_2d(keypoints: np.ndarray, lean_deg: float, centre: np.ndarray) -> np.ndarray:
    """`(T, J, 2)` keypoints turned by `-lean_deg` about `centre`: the legs' lean taken out."""
    angle = np.radians(lean_deg)
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    return ((keypoints.astype(np.float64) - centre) @ rotation.T + centre).astype(np.float32)


def _flipped(values: np.ndarray) -> np.ndarray:
    """Coordinates mirrored within their own span (min and max trade places)."""
    return np.nanmin(values) + np.nanmax(values) - values


def _upright_2d(keypoints: np.ndarray, up: str) -> np.ndarray:
    """`(T, J, 2)` image keypoints whose head lies along `up` from the feet, turned so that it lies along -y
    (image up); each axis keeps the span it had, so the body stays where the image had it."""
    x, y = keypoints[..., 0].astype(np.float64), keypoints[..., 1].astype(np.float64)
    x_new, y_new = {"+y": (x, _flipped(y)), "+x": (y, _flipped(x)), "-x": (_flipped(y), x)}[up]
    return np.stack([x_new, y_new], axis=-1).astype(np.float32)


def _floor_levelled(seq: KeypointSequence) -> tuple[KeypointSequence, list[str]]:
    """`seq` (3D, +z up) turned so that the floor under its footfalls is level, with a warning, where they rise
    within `FLOOR_LEVEL_DEG` along the travel (`predictor.grounding`); `seq` itself otherwise."""
    rise = floor_rise(seq.seen_keypoints(), seq.fps)
    if rise is None or not FLOOR_LEVEL_DEG[0] <= abs(rise[0]) <= FLOOR_LEVEL_DEG[1]:
        return seq, []
    return seq.replace(keypoints=levelled(seq.keypoints, *rise)), [
        f"a tilted floor: the footfalls rise {abs(rise[0]):.1f} deg along the direction of travel, where a level "
        "frame has +z up; read levelled (a frame calibrated off the floor? a real ramp reads so too)"]


def undetected_as_missing(seq: KeypointSequence, where: str = "") -> tuple[KeypointSequence, list[str]]:
    """`seq` with its undetected-joint placeholders (see the module docstring) missing (NaN, confidence 0), and a
    warning that counts them; `seq` itself when it has none. The origin counts as away from a frame's body when
    it lies outside the box of the frame's other seen points widened by a quarter of its largest side, so
    keypoints centred on the body (a pelvis at the origin) keep their zeros."""
    if np.count_nonzero(seq.keypoints) == seq.keypoints.size:  # no coordinate is 0: the common case, one quick pass
        return seq, []
    at_origin = (seq.keypoints == 0).all(axis=-1) & (seq.confidence > 0)
    if not at_origin.any():
        return seq, []
    others = np.where((at_origin | (seq.confidence <= 0))[..., None], np.nan, seq.keypoints)
    highest, lowest = np.fmax.reduce(others, axis=1), np.fmin.reduce(others, axis=1)  # (T, C), NaN: nothing else
    with np.errstate(invalid="ignore"):
        margin = 0.25 * np.max(highest - lowest, axis=-1, keepdims=True)
        body_around_origin = ((lowest - margin <= 0) & (highest + margin >= 0)).all(axis=-1)
    placeholder = at_origin & (np.isfinite(highest).all(axis=-1) & ~body_around_origin)[:, None]
    if not placeholder.any():
        return seq, []
    keypoints, confidence = seq.keypoints.copy(), seq.confidence.copy()
    keypoints[placeholder], confidence[placeholder] = np.nan, 0.0
    frames, joints = np.nonzero(placeholder)
    names = [seq.joints[j] for j in dict.fromkeys(joints[np.argsort(frames, kind="stable")].tolist())]
    origin = ", ".join("0" * seq.dims)
    note = (f"{where}{int(placeholder.sum())} joint sample(s) at exactly ({origin}), away from the body, read as "
            f"undetected (pose estimators write ({origin}) for a joint they did not find), first in frame "
            f"{int(frames.min())}: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}; give confidence 0 "
            "for undetected joints")
    return seq.replace(keypoints=keypoints, confidence=confidence), [note]


def check_input(seq: KeypointSequence, where: str = "") -> tuple[KeypointSequence, list[str]]:
    """`seq` (canonical skeleton) as the model should see it, and the warnings about it; `InputError` when
    it cannot be a person (see the module docstring)."""
    coords = _joint_major(seq)
    highest, lowest = _ranges(coords)
    with np.errstate(invalid="ignore", divide="ignore"):
        extent = _extent(highest, lowest)
        size = np.fmax.reduce(extent, axis=0)  # NaN where a frame shows nobody
        collapsed = np.isfinite(size) & (size <= 1e-6 * np.maximum(_largest_magnitude(highest, lowest), 1e-30))
        seen = np.isfinite(size)
        notes: list[str] = []
        if seen.any() and collapsed[seen].all():
            raise InputError(f"{where}all joints are at one point in every frame: there is no body to measure")
        if collapsed[seen].any():
            notes.append(f"degenerate frames: all joints at one point in {int(collapsed.sum())} of {int(seen.sum())} frames")
        body = finite_median(size[seen & ~collapsed])
        step = max(1, seq.n_frames // MEDIAN_FRAMES)
        coords, extent = coords[:, :, ::step], extent[:, ::step]
        pelvis = coords[:, _HIPS[0]] + coords[:, _HIPS[1]]  # (C, frames): twice the hips' centre, NaN where unseen
        spread = np.fmax.reduce(pelvis, axis=1) - np.fmin.reduce(pelvis, axis=1)  # NaN-skipping, as `_ranges`
        root_relative = bool((spread <= 2e-4 * body).all() and np.count_nonzero(np.isfinite(pelvis[0])) > 1)
        if root_relative:
            notes.append("root-relative keypoints: the hips' centre is at one point in every frame (a 3D lifter's "
                         "output?), so the body's own motion (a squat's descent, a landing, the walk's travel) "
                         "showed as the feet moving; read with that motion rebuilt by holding the lower foot still "
                         "while it carries the body (a jump's flight cannot be rebuilt): camera or world "
                         "coordinates are better")
        if seq.dims == 3:
            xy, z = finite_median(np.fmax(extent[0], extent[1])), finite_median(extent[2])
            # (x, y, confidence) rows of a 2D estimator passed as 3D: the third column a score, the body upright
            # along y, in pixels (the third column flat beside them) or normalised (a body under half a metre)
            third_like_confidence = z > 0 and _within(highest[2:], lowest[2:], (0.0, 1.0))
            up = _up_axis(coords, body, usual="+z")
            if third_like_confidence and (not z > 1e-3 * xy or up in ("+y", "-y") and body < 0.5):
                raise InputError(
                    f"{where}3D keypoints whose third column lies within [0, 1] beside a body that spans {body:.3g} "
                    "along y: (x, y, confidence) from a 2D pose estimator? pass keypoints[..., :2] and "
                    "confidence=keypoints[..., 2]")
            if not z > 1e-3 * xy:
                raise InputError(
                    f"{where}3D keypoints whose third coordinate (z, up) is constant ({z:.3g}): these look like 2D "
                    "image points with an extra column; pass them as (T, J, 2)"
                )
            if up not in (None, "+z"):
                rotated = seq.keypoints.astype(np.float64) @ UP_AXIS_ROTATIONS[up].T
                seq = seq.replace(keypoints=rotated.astype(np.float32))
                notes.append(f"{up} up: the head is above the feet along {up}, but 3D keypoints have +z up; read "
                             f"rotated to +z up (valgusml.io.read(..., up_axis=) sets it for TRC files)")
            if np.isfinite(body) and not 0.5 <= body <= 3.0 and PLAUSIBLE_SIZE[0] <= body <= PLAUSIBLE_SIZE[1]:
                notes.append(f"3D body size {body:.3g} units: 3D keypoints should be metres (mm or cm?)")
        else:
            # head to feet; hips to feet for a camera framing the legs
            top = _HEAD if np.isfinite(coords[1, _HEAD]).any() else list(_HIPS)
            height = finite_median(np.abs(_extent(*_ranges(coords[1:2, top + _FEET]))[0]))
            width = finite_median(extent[0])
            up = _up_axis(coords, body, usual="-y")
            if up in ("+y", "+x", "-x"):
                seq = seq.replace(keypoints=_upright_2d(seq.keypoints, up))
                notes.append("y axis points up: the feet are above the head, but image coordinates have y down; "
                             "read with y flipped" if up == "+y" else
                             f"an image on its side: the head lies along {up} from the feet, not up the image (a "
                             "portrait video whose rotation the pose estimator ignored?); read turned upright")
            elif height < 0.5 * width:
                notes.append(f"not an upright person: the body is {width:.3g} wide but only {height:.3g} from head to "
                             "feet; are these world x/y (seen from above) instead of image coordinates?")
            if up == "-y":
                lean = _legs_lean_deg(coords, pelvis)
                if abs(lean) > ROLL_LEVEL_DEG:
                    centre = 0.5 * np.array([finite_median(pelvis[0]), finite_median(pelvis[1])])
                    seq = seq.replace(keypoints=_levelled_2d(seq.keypoints, lean, centre))
                    notes.append(f"a rolled camera: the legs lean {abs(lean):.0f} deg "
                                 f"{'clockwise' if lean > 0 else 'anticlockwise'} in the image, where an upright body "
                                 f"leans under {ROLL_LEVEL_DEG:.0f}; read levelled")
            if "coordinates" not in seq.meta and _within(highest, lowest, NORMALISED_RANGE):
                # read as normalised from here on: the model's input and the summary measures scale them alike
                seq = seq.replace(meta={**seq.meta, "coordinates": "normalized"})
                notes.append("the keypoints look like normalised image coordinates (all within [-1, 2]) and nothing "
                             "says what they are: read as fractions of the image's width and height (pass pixels, "
                             "or a KeypointSequence with meta coordinates='normalized', image_width and "
                             "image_height, as valgusml.io.read gives)")
    if root_relative:  # after the axes are turned: the lower foot is the one nearer the floor
        seq = seq.replace(keypoints=ground(seq.keypoints))
        if not seq.task and seq.dims == 3:
            task = rebuilt_task(seq.seen_keypoints(), seq.fps)
            seq = seq.replace(task=task)
            notes.append(f"no task given: read from the rebuilt motion as {task}, without the clue of a foot that "
                         "stays put (the rebuild holds one still); name the task to be sure")
    if seq.dims == 3 and not root_relative:  # a rebuilt walk's footfall heights carry the rebuild's own drift
        seq, floor_note = _floor_levelled(seq)
        notes += floor_note
    if np.isfinite(body) and not PLAUSIBLE_SIZE[0] <= body <= PLAUSIBLE_SIZE[1]:
        factor = TYPICAL_SIZE[seq.dims] / body
        notes.append(f"implausible scale: the body spans {body:.3g} units; rescaled by {factor:.3g} "
                     "(neither pixels, normalised image units nor metres?)")
        seq = seq.replace(keypoints=(seq.keypoints.astype(np.float64) * factor).astype(np.float32))
    if seq.task and not is_known_task(seq.task):
        notes.append(f"unknown task {seq.task!r}, read from the motion instead; expected one of {KNOWN_TASKS_TEXT}")
        seq = seq.replace(task="")
    return seq, notes


__all__ = ["PLAUSIBLE_SIZE", "check_input", "undetected_as_missing"]
