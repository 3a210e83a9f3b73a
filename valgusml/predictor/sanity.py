"""Is the input what it claims to be? Checks on a canonical-skeleton recording before the model sees it.

A model answers whatever it is given; these checks make sure an answer to input that is not a person seen by a
camera is never silent (issue 13): each returns warnings for `Prediction.warnings`, or raises `InputError`
where no sensible answer exists.

- all joints at one point in every frame (no body to measure) → `InputError`; in some frames → warning;
- 2D with the feet above the head → the image y axis points up (pose estimators emit y down) → warning;
- 2D whose body is much wider than tall → not an upright person in an image (world x/y from above?) → warning;
- 3D whose third coordinate is constant → 2D image points with an extra z = 0 column → `InputError`;
- 3D whose feet are above the head (+z is not up) or whose body is not 0.5-3 units tall (not metres) → warning;
- a body size no camera or unit gives (under 0.01 or over 100,000 units) → rescaled to a typical size (the
  model reads shapes, not sizes, but float arithmetic inside it does not span 1e-6 to 1e6 equally) → warning.
"""

from __future__ import annotations

import warnings

import numpy as np

from valgusml.errors import InputError
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import canonical_index

_HEAD = [canonical_index(j) for j in ("nose", "neck", "left_shoulder", "right_shoulder")]
_FEET = [canonical_index(j) for j in ("left_ankle", "right_ankle", "left_heel", "right_heel")]
# Body sizes (largest extent of the joints in a frame, median over frames) outside this range are rescaled.
PLAUSIBLE_SIZE = (1e-2, 1e5)
TYPICAL_SIZE = {2: 500.0, 3: 1.7}  # pixels of a person in a video frame; metres of a standing adult
# The body's orientation and size are medians over frames: this many evenly spaced frames give the same
# verdicts as all of them, at a fraction of the cost on every prediction.
MEDIAN_FRAMES = 64


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def _frame_extent(kp: np.ndarray) -> np.ndarray:
    """`(T, C)` max - min of the valid joints of each frame along each axis (NaN where a frame has none).
    `fmax`/`fmin` skip NaN without `nanmax`'s copies and warnings: this runs on every prediction."""
    return np.fmax.reduce(kp, axis=1) - np.fmin.reduce(kp, axis=1)


def _head_minus_feet(kp: np.ndarray, axis: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        head = np.nanmean(kp[:, _HEAD, axis], axis=1)
        feet = np.nanmean(kp[:, _FEET, axis], axis=1)
    return _median(head - feet)


def check_input(seq: KeypointSequence, where: str = "") -> tuple[KeypointSequence, list[str]]:
    """`seq` (canonical skeleton) as the model should see it, and the warnings about it; `InputError` when
    it cannot be a person (see the module docstring)."""
    kp = np.where((seq.confidence > 0)[..., None], seq.keypoints, np.nan).astype(np.float64)
    extent = _frame_extent(kp)
    with np.errstate(invalid="ignore"):
        size = np.fmax.reduce(extent, axis=1)  # NaN where a frame shows nobody
        magnitude = np.nan_to_num(np.fmax.reduce(np.abs(kp).reshape(len(kp), -1), axis=1))
        collapsed = np.isfinite(size) & (size <= 1e-6 * np.maximum(magnitude, 1e-30))
    seen = np.isfinite(size)
    notes: list[str] = []
    if seen.any() and collapsed[seen].all():
        raise InputError(f"{where}all joints are at one point in every frame: there is no body to measure")
    if collapsed[seen].any():
        notes.append(f"degenerate frames: all joints at one point in {int(collapsed.sum())} of {int(seen.sum())} frames")
    body = _median(size[seen & ~collapsed])
    step = max(1, len(kp) // MEDIAN_FRAMES)
    kp, extent = kp[::step], extent[::step]
    if seq.dims == 3:
        xy, z = _median(np.nanmax(extent[:, :2], axis=1)), _median(extent[:, 2])
        if not z > 1e-3 * xy:
            raise InputError(
                f"{where}3D keypoints whose third coordinate (z, up) is constant ({z:.3g}): these look like 2D "
                "image points with an extra column; pass them as (T, J, 2)"
            )
        if _head_minus_feet(kp, 2) < 0:
            notes.append("upside down: the feet are above the head along +z; 3D keypoints need +z up "
                         "(valgusml.io.read(..., up_axis=) fixes it for TRC files)")
        if np.isfinite(body) and not 0.5 <= body <= 3.0 and PLAUSIBLE_SIZE[0] <= body <= PLAUSIBLE_SIZE[1]:
            notes.append(f"3D body size {body:.3g} units: 3D keypoints should be metres (mm or cm?)")
    else:
        height, width = _median(np.abs(_frame_extent(kp[:, _HEAD + _FEET])[:, 1])), _median(extent[:, 0])
        if _head_minus_feet(kp, 1) > 0.25 * body:
            notes.append("y axis points up: the feet are above the head, but image coordinates have y down "
                         "(flip y, e.g. y = image_height - y)")
        elif height < 0.5 * width:
            notes.append(f"not an upright person: the body is {width:.3g} wide but only {height:.3g} from head to "
                         "feet; are these world x/y (seen from above) instead of image coordinates?")
    if np.isfinite(body) and not PLAUSIBLE_SIZE[0] <= body <= PLAUSIBLE_SIZE[1]:
        factor = TYPICAL_SIZE[seq.dims] / body
        notes.append(f"implausible scale: the body spans {body:.3g} units; rescaled by {factor:.3g} "
                     "(neither pixels, normalised image units nor metres?)")
        seq = seq.replace(keypoints=(seq.keypoints.astype(np.float64) * factor).astype(np.float32))
    return seq, notes


__all__ = ["PLAUSIBLE_SIZE", "check_input"]
