"""Normalised image coordinates (x / image width, y / image height) in units of one length along x and y.

x and y of normalised keypoints are fractions of different lengths, so a portrait or landscape frame stretches
every frontal angle (the shipped MediaPipe squat's right knee peaks at 37 deg of FPPA read as fractions of its
1080 x 1920 frame, 21 deg in pixels). With the image size known (`meta` `image_width` / `image_height`, as the
importers record it) they are scaled to pixels.

Without it the frame's shape is read off the body. In an image of equal units, an upright adult's hip width
over the legs' length is `HIP_OVER_LEG` x cos(yaw) and the feet's sideways extent over it is `FOOT_OVER_LEG` x
sin(yaw), so the root of the sum of their squares (`frontal_radius`, per frame, median) is about 1 from any
view: 0.97 (5-95%: 0.81-1.12) on make run's held-out athletes, 0.96 (0.74-1.15) on the real recordings filmed by
the transfer suite. x stretched by k scales it by about k. Of the shapes video comes in (`IMAGE_ASPECTS`: 16:9
either way up, and square), the one that brings the body nearest `FRONTAL_RADIUS` is taken, square unless another
fits clearly better (`SQUARE_MARGIN`: side views, whose legs reach along x); the spacing of the shapes (x 1.78)
is wider than the body's spread. On 60 held-out athletes' recordings made normalised, presence AUROC
is 0.849 read as given and 0.937 with the shape read off the body, as in pixels (docs/experiments.md).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from valgusml.errors import InputError
from valgusml.features.frame import FOOT_OVER_LEG, HIP_OVER_LEG, forefoot_points, vector_lengths
from valgusml.features.medians import finite_median
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import canonical_index

# width / height of the frames that normalised keypoints are read as coming from when nothing says which
IMAGE_ASPECTS: dict[float, str] = {16 / 9: "16:9 landscape", 9 / 16: "9:16 portrait", 1.0: "square"}
FRONTAL_RADIUS = 0.97
# A frame other than square is taken only where it fits the body better by this much (|log| of the radius's
# ratio to FRONTAL_RADIUS): side views, whose legs reach along x, can make a square frame look stretched.
SQUARE_MARGIN = 0.15
# Largest image_width / image_height taken as an image size: normalised coordinates times more than this are
# no pixels (and 1e300 would overflow float32 into infinities, then NaN model outputs).
MAX_IMAGE_SIDE = 1e6

_HIPS = [canonical_index("left_hip"), canonical_index("right_hip")]
_LEGS = [canonical_index(f"{side}_{joint}") for joint in ("hip", "knee", "ankle") for side in ("left", "right")]
_HEELS = [canonical_index("left_heel"), canonical_index("right_heel")]


def frontal_radius(keypoints: np.ndarray) -> float:
    """sqrt((hip width / HIP_OVER_LEG)^2 + (the feet's sideways extent / FOOT_OVER_LEG)^2) over the longer leg's
    length, per frame of 2D canonical keypoints `(T, 20, 2)` (unseen NaN), median over frames: about 1 in an
    image of equal units from any view. Per frame, so a walk towards the camera (the body grows) reads as one
    standing still; the feet's heel-to-toe x is the mean of both feet, whose toe-out cancels. NaN when the hips,
    a leg or the feet are never seen."""
    kp = np.asarray(keypoints, dtype=np.float64)
    legs = kp[:, _LEGS]  # hips, knees, ankles; left and right
    hips, knees, ankles = legs[:, 0:2], legs[:, 2:4], legs[:, 4:6]
    leg = vector_lengths(knees - hips) + vector_lengths(ankles - knees)
    longer = np.fmax(leg[:, 0], leg[:, 1])
    forward = forefoot_points(kp[..., 0]) - kp[:, _HEELS, 0]  # (T, 2): heel-to-toe x of each foot
    either = np.where(np.isnan(forward), forward[:, ::-1], forward)  # a foot unseen: the other alone
    with np.errstate(invalid="ignore", divide="ignore"):
        hip_width = np.abs(kp[:, _HIPS[0], 0] - kp[:, _HIPS[1], 0]) / (HIP_OVER_LEG * longer)
        feet_sideways = np.abs(0.5 * (either[:, 0] + either[:, 1])) / (FOOT_OVER_LEG * longer)
    return finite_median(np.hypot(hip_width, feet_sideways))


def image_aspect(keypoints: np.ndarray) -> float | None:
    """The shape (width / height, one of `IMAGE_ASPECTS`) of the frame that normalised 2D canonical keypoints
    `(T, 20, 2)` (unseen NaN) most likely came from: the one whose stretch of x brings `frontal_radius` nearest
    `FRONTAL_RADIUS` (in ratio), square unless another is nearer by `SQUARE_MARGIN`. None when the body shows
    too little to tell (hips, legs or feet never seen)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    # each shape tried as it is (a side view's legs reach along x too, so the radius is not simply k times)
    misfit = {}
    for aspect in IMAGE_ASPECTS:
        radius = frontal_radius(kp * np.array([aspect, 1.0]))
        if not (math.isfinite(radius) and radius > 0):
            return None
        misfit[aspect] = abs(math.log(radius / FRONTAL_RADIUS))
    best = min(misfit, key=misfit.__getitem__)
    return best if misfit[1.0] - misfit[best] >= SQUARE_MARGIN else 1.0


def equal_axis_keypoints(seq: KeypointSequence, where: str = "") -> tuple[np.ndarray, str | None]:
    """`seq`'s keypoints (canonical skeleton) in units of one length along x and y, and a warning where that
    rests on a guess. Normalised image coordinates (`meta["coordinates"] == "normalized"`) are scaled by the
    image size in `meta` (InputError, after `where`, when that is no image size in pixels), or without it by
    the frame shape read off the body (`image_aspect`); everything else is returned as it is."""
    if seq.dims != 2 or seq.meta.get("coordinates") != "normalized":
        return seq.keypoints, None
    width, height = seq.meta.get("image_width"), seq.meta.get("image_height")
    if width is not None and height is not None:
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v <= MAX_IMAGE_SIDE
                   for v in (width, height)):  # NaN fails 0 < v too
            raise InputError(f"{where}meta image_width x image_height is {width!r:.30} x {height!r:.30}: "
                             f"not an image size in pixels (numbers in (0, {MAX_IMAGE_SIDE:g}])")
        return (seq.keypoints * np.array([width, height], dtype=seq.keypoints.dtype)).astype(seq.keypoints.dtype), None
    how_to_know = "give image_width / image_height in meta, or image_size= to the reader"
    aspect = image_aspect(seq.seen_keypoints())
    if aspect is None:
        return seq.keypoints, ("normalised image coordinates without the image size: angles are distorted unless "
                               f"the image is square, and the body shows too little to read its shape ({how_to_know})")
    note = (f"normalised image coordinates without the image size: read as a {IMAGE_ASPECTS[aspect]} frame, the shape "
            f"({', '.join(IMAGE_ASPECTS.values())}) that gives the body an adult's frontal proportions (hip width "
            f"and the feet against the legs' length); {how_to_know} to be sure")
    if aspect == 1.0:
        return seq.keypoints, note
    return (seq.keypoints * np.array([aspect, 1.0], dtype=seq.keypoints.dtype)).astype(seq.keypoints.dtype), note


__all__ = ["FRONTAL_RADIUS", "IMAGE_ASPECTS", "MAX_IMAGE_SIDE", "SQUARE_MARGIN", "equal_axis_keypoints", "frontal_radius",
           "image_aspect"]
