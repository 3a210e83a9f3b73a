"""Where the camera stands, read from 2D keypoints: facing front / rear / side and a yaw estimate.

The subject's left appears on the image's right when they face the camera and on its left when they turn
their back to it (pose estimators label limbs anatomically). A frontal view shows the hips and shoulders at
their full width; a side view shows them nearly end-on. So:

- `facing` comes from the sign of (left hip - right hip) and (left shoulder - right shoulder) along image x,
  median over the recording;
- |yaw| comes from how wide the hips (or, unseen, the shoulders) look against the legs' length: width / leg
  ~ cos(yaw) x the frontal ratio of an adult. That reading is good from the side (±5-10° on rendered real
  motion) and poor near square on, where cos(yaw) hardly moves and builds differ (a square-on camera read at
  15-35°). There the feet decide: seen from a yawed camera they point sideways in the image by foot length x
  sin(yaw) (`frame_measures`' `camera_yaw_deg`, toe-out cancelling between two feet), which reads a square-on
  view at ~0° and ±20° at ±13°. The feet also sign the yaw: toes pointing to the subject's left in the front
  view mean a camera to their right, and in a mirrored rear view (the feet point away from the camera) the
  other way round;
- `side` when |yaw| is beyond `SIDE_YAW_DEG`: the frontal plane is seen too edge-on to read a knee angle.

3D input has no camera: it is read in the subject's own frontal plane (`facing="front"`, yaw 0).
`canonical_front_view` mirrors a rear view into the front view the model reads, left and right unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from valgusml.features.frame import HIP_OVER_LEG
from valgusml.features.medians import finite_median, median
from valgusml.features.phases import leg_length
from valgusml.skeleton import canonical_index

# Shoulder width / leg length seen from the front (shoulder markers of ../shared/realdata: 0.32-0.40): the hips
# (`HIP_OVER_LEG`) decide, the wider and more variable shoulders only stand in when the hips are unseen.
SHOULDER_OVER_LEG = 0.40
SIDE_YAW_DEG = 60.0
# Below this |yaw| by the hips' width the feet's reading of |yaw| is used instead (see the module docstring).
FEET_SIZE_YAW_BELOW_DEG = 45.0
# Between these camera yaws the frontal plane fades from readable to unreadable: a valgus probability is pulled
# towards the model's undecided answer ("cannot tell": 0.5 for a head without calibration; `admission_neutral`)
# in proportion (`frontal_trust`).
READABLE_YAW_DEG = 50.0
UNREADABLE_YAW_DEG = 80.0
# How far below a decision threshold under 0.5 the pull stops (`admission_neutral`): clear of the 6 decimals
# a prediction's probability is written with.
_NEUTRAL_MARGIN = 1e-4

_L_HIP, _R_HIP = canonical_index("left_hip"), canonical_index("right_hip")
_L_SHO, _R_SHO = canonical_index("left_shoulder"), canonical_index("right_shoulder")
_FEET = [canonical_index(f"{side}_{part}") for side in ("left", "right") for part in ("heel", "big_toe", "small_toe")]


@dataclass(frozen=True)
class View:
    """`facing` front / rear / side; `yaw_deg` signed in (-180, 180] (0: camera in front, ±180 behind);
    `frontal_visibility` in [0, 1]: |cos yaw|, how much of the frontal plane the image shows."""

    facing: str
    yaw_deg: float
    frontal_visibility: float

    def to_dict(self) -> dict[str, float | str]:
        return {
            "facing": self.facing,
            "yaw_deg": round(self.yaw_deg, 1) + 0.0,
            "frontal_visibility": round(self.frontal_visibility, 3) + 0.0,
        }


FRONT_3D = View("front", 0.0, 1.0)


def infer_view(keypoints: np.ndarray, feet_yaw_deg: float | None = None) -> View:
    """The view of canonical keypoints `(T, 20, 2|3)` (missing joints NaN). `feet_yaw_deg` is `frame_measures`'
    `camera_yaw_deg` of the front view the model reads (`canonical_front_view`), when the caller has it and the
    feet were seen: it signs the yaw and sizes it near square on; without it the sign is left positive
    (`read_view` works it out from the keypoints)."""
    kp = np.asarray(keypoints)
    if kp.shape[-1] == 3:
        return FRONT_3D
    # Only the hips' and shoulders' x and the legs are read: cast those to float64, not the whole array.
    x = kp[..., 0]
    hip_dx = finite_median(x[:, _L_HIP].astype(np.float64) - x[:, _R_HIP].astype(np.float64))
    shoulder_dx = finite_median(x[:, _L_SHO].astype(np.float64) - x[:, _R_SHO].astype(np.float64))
    with np.errstate(invalid="ignore"):
        leg = leg_length(kp)
    ratios, signs = [], []
    if math.isfinite(leg) and leg > 0:
        for dx, frontal in ((hip_dx, HIP_OVER_LEG), (shoulder_dx, SHOULDER_OVER_LEG)):
            if math.isfinite(dx):
                ratios.append(min(abs(dx) / (frontal * leg), 1.0))
                signs.append(math.copysign(1.0, dx))
    if not ratios:
        return View("front", math.nan, math.nan)
    cos_yaw = float(ratios[0])
    # The wider of the two pairs decides the facing: hips are the more reliable, shoulders break ties.
    facing_sign = signs[0] if len(signs) == 1 or abs(hip_dx) >= 0.5 * abs(shoulder_dx) else signs[1]
    abs_yaw = math.degrees(math.acos(max(min(cos_yaw, 1.0), 0.0)))
    sign = 1.0
    if feet_yaw_deg is not None and math.isfinite(feet_yaw_deg):
        if abs_yaw < FEET_SIZE_YAW_BELOW_DEG:
            abs_yaw = abs(feet_yaw_deg)
            cos_yaw = math.cos(math.radians(abs_yaw))
        # front view: toes to the subject's left (+) = camera to their right (yaw < 0); mirrored rear: the reverse
        sign = math.copysign(1.0, -feet_yaw_deg if facing_sign > 0 else feet_yaw_deg)
    if facing_sign < 0:  # seen from behind: yaw measured from the front, 180 - |yaw|
        yaw = sign * (180.0 - abs_yaw)
    else:
        yaw = sign * abs_yaw
    facing = "side" if abs_yaw > SIDE_YAW_DEG else ("front" if facing_sign > 0 else "rear")
    return View(facing, yaw, cos_yaw)


def read_view(keypoints: np.ndarray, confidence: np.ndarray | None = None) -> View:
    """`infer_view` of canonical keypoints `(T, 20, 2|3)`, the feet's reading worked out here (from the front
    view the model would read); the preprocessing passes the one it already has."""
    from valgusml.features.frame import FRAME_MEASURE_INDEX, frame_measures

    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape[-1] == 3:
        return FRONT_3D
    front, _ = canonical_front_view(kp, confidence)
    if not np.isfinite(front[:, _FEET, 0]).any():
        return infer_view(kp)
    with np.errstate(all="ignore"):
        feet = finite_median(frame_measures(front)[:, FRAME_MEASURE_INDEX["camera_yaw_deg"]])
    return infer_view(kp, feet if math.isfinite(feet) else None)


def frontal_trust(view: View) -> float:
    """How far a 2D view lets a knee's frontal angle be read, in [0, 1]: 1 up to `READABLE_YAW_DEG` of yaw
    from the front or the back, 0 from `UNREADABLE_YAW_DEG` (a side view), linear in |cos yaw| between."""
    visibility = view.frontal_visibility
    if not math.isfinite(visibility):
        return 1.0
    full, none = math.cos(math.radians(READABLE_YAW_DEG)), math.cos(math.radians(UNREADABLE_YAW_DEG))
    return float(min(max((visibility - none) / (full - none), 0.0), 1.0))


def undecided_probability(presence_calibration: Mapping[str, float] | None = None) -> float:
    """What a model answers when its presence head is undecided (logit 0): 0.5, or where a presence calibration
    (`valgusml.training.calibration`: `scale * logit + shift`) puts it, sigmoid(shift). Unreadable views are
    pulled there (`admission_neutral`), so a calibrated model admits them, and calls them, as its head would."""
    if not presence_calibration:
        return 0.5
    return 1.0 / (1.0 + math.exp(-float(presence_calibration["shift"])))


def admission_neutral(decision_threshold: float | None = None, undecided: float = 0.5) -> float:
    """Where `admit_view` pulls an unreadable view's probabilities: the model's `undecided` answer
    (`undecided_probability`), or just below a decision threshold under it, so that admitting a view can take a
    valgus call back but never make one (a model whose threshold is 0.4 would otherwise call every side view
    valgus)."""
    if decision_threshold is None or not decision_threshold < undecided + _NEUTRAL_MARGIN:
        return float(undecided)
    return max(0.0, float(decision_threshold) - _NEUTRAL_MARGIN)


def admit_view(probability: np.ndarray, view: View, neutral: float = 0.5) -> tuple[np.ndarray, str | None]:
    """Valgus probabilities pulled towards `neutral` (`admission_neutral`) as far as the view hides the
    frontal plane, and the warning that says so (None for a readable view)."""
    trust = frontal_trust(view)
    if trust >= 1.0:
        return probability, None
    adjusted = neutral + (np.asarray(probability, dtype=np.float64) - neutral) * trust
    yaw = f"{abs(view.yaw_deg):.0f}" if math.isfinite(view.yaw_deg) else "?"
    return adjusted, (
        f"side view (camera ~{yaw} deg from the front): the knee's frontal-plane angle cannot be read "
        f"reliably from it; valgus probabilities pulled towards {neutral:.4g}, where the model leaves a view it "
        f"cannot read (trust {trust:.2f}); film from the front or from behind"
    )


def front_view_yaw_deg(yaw_deg: float) -> float:
    """The yaw of the front view that `canonical_front_view` makes of a view at `yaw_deg`: a front view's own,
    and for a rear view (|yaw| > 90) that of its mirror image through the frontal plane, 180 - yaw (or
    -180 - yaw): a mirrored rear image is the body seen, front and back swapped, by a camera at that yaw. In
    [-90, 90]; NaN stays NaN."""
    yaw = (float(yaw_deg) + 180.0) % 360.0 - 180.0
    if abs(yaw) <= 90.0:
        return yaw
    return math.copysign(180.0, yaw) - yaw


def canonical_front_view(xy: np.ndarray, confidence: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """2D canonical keypoints `(T, J, 2)` as seen from the front: a rear view is mirrored about the median
    mid-hip (x -> 2 c - x), so the subject's left is on the image right again; limb labels never change, since
    they are the subject's own. Returns (keypoints, mirrored)."""
    seen = np.isfinite(xy[..., 0]) if confidence is None else (confidence > 0)
    both = seen[:, _L_HIP] & seen[:, _R_HIP]
    if not both.any():
        return xy, False
    left, right = xy[both, _L_HIP, 0], xy[both, _R_HIP, 0]
    if median(left - right) >= 0:
        return xy, False
    centre = median(0.5 * (left + right))
    out = xy.copy()
    out[..., 0] = 2.0 * centre - out[..., 0]
    return out, True
