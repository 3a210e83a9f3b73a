"""Per-frame biomechanical measures from canonical keypoints: the `(T, F)` stream models and summaries read.

Conventions (one place, because every caller relies on them):

- Input is canonical keypoints `(T, 20, 2|3)`. 2D means image coordinates (y down, pixels or normalised
  units, any camera yaw, the subject facing the camera or away from it); 3D means world metres with +z up.
- 3D input is first viewed from the subject's front (`as_frontal_2d`), so the frontal measures are the same
  formulas in both cases; 3D adds true sagittal angles (knee flexion, shank tilt, trunk lean) and the foot
  progression angle on the floor.
- "Medial" is decided per frame from the hips (towards the other hip), never from the image's left/right, so
  measures do not depend on where the camera stands or which way the subject faces. Signs: positive = medial
  (valgus, adduction, roll-in), toe-out, heel up, knee flexed, trunk leaning forward.
- Distances are divided by a body-size estimate, the leg length (hip→knee + knee→ankle): the 90th percentile
  of its frame values in 2D (squatting foreshortens it), the median in 3D (true lengths).
- A measure whose joints are missing in a frame is NaN in that frame. Nothing raises on missing joints.

2D stand-ins, documented because they are approximations: knee flexion and shank tilt come from the
foreshortening of thigh and shank seen from the front (`acos(length / standing length)`), the sagittal trunk
lean from the foreshortening of the trunk (unsigned: assumed forward), heel rise from the heel's vertical
image offset above the toes, the rearfoot angle from the heel→ankle line in the image (toe-out and camera yaw
move the heel sideways too, and a rising heel shortens the line: it hardly follows the heel, r 0.03 with the 3D
angle, so the summary `measures` leaves it out of 2D; 3D measures it in the foot's own frontal plane, pitch
included). Foot progression in 2D is the heel→toe direction in the image (its sign is
reliable, its size grows with camera height). Baselines (standing segment lengths, flat-foot heel offset) are
taken from the sequence itself, so pass whole recordings, not single frames.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from valgusml.errors import InputError
from valgusml.features.geometry import limb_fppa_deg
from valgusml.skeleton import CANONICAL_JOINTS, canonical_index

PER_LIMB_MEASURES: tuple[str, ...] = (  # each limb's own columns, `left_<name>` and `right_<name>`
    "fppa_deg",
    "hip_adduction_deg",
    "medial_knee_displacement",
    "foot_roll_in",
    "rearfoot_eversion_deg",
    "foot_progression_deg",
    "knee_flexion_deg",
    "shank_tilt_deg",
    "heel_rise",
)
# Bilateral columns and their sign under a left/right mirror of the subject.
_BILATERAL = (
    ("knee_ankle_separation_ratio", 1.0),
    ("pelvic_obliquity_deg", -1.0),  # positive: right hip lower than left (right side dropped)
    ("trunk_lean_frontal_deg", -1.0),  # positive: trunk leans towards the subject's left
    ("trunk_lean_sagittal_deg", 1.0),  # positive: forward (2D: unsigned foreshortening proxy)
    ("camera_yaw_deg", -1.0),  # 2D: the subject's toes point towards their left in the image; 3D: 0
)

FRAME_MEASURES: tuple[str, ...] = tuple(
    f"{side}_{name}" for name in PER_LIMB_MEASURES for side in ("left", "right")
) + tuple(name for name, _ in _BILATERAL)
FRAME_MEASURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FRAME_MEASURES)}
KNEE_FLEXION_COLUMNS: tuple[int, ...] = tuple(FRAME_MEASURE_INDEX[f"{side}_knee_flexion_deg"] for side in ("left", "right"))


def _mirror_spec() -> tuple[tuple[int, float], ...]:
    out = []
    for name in FRAME_MEASURES:
        if name.startswith("left_"):
            out.append((FRAME_MEASURE_INDEX["right_" + name[5:]], 1.0))
        elif name.startswith("right_"):
            out.append((FRAME_MEASURE_INDEX["left_" + name[6:]], 1.0))
        else:
            out.append((FRAME_MEASURE_INDEX[name], dict(_BILATERAL)[name]))
    return tuple(out)


FRAME_MEASURE_MIRROR: tuple[tuple[int, float], ...] = _mirror_spec()

# The frame measures whose 3D values a lifter can learn from 2D (`valgusml.data.frame_targets`, the targets'
# columns after the label's own): the signs the mechanisms show in, per limb, then the bilateral ones.
LIFTED_LIMB_MEASURES: tuple[str, ...] = ("hip_adduction_deg", "rearfoot_eversion_deg", "foot_progression_deg",
                                         "shank_tilt_deg", "knee_flexion_deg")
LIFTED_BILATERAL_MEASURES: tuple[str, ...] = ("pelvic_obliquity_deg", "trunk_lean_frontal_deg")
LIFTED_MEASURES: tuple[str, ...] = tuple(
    f"{side}_{name}" for name in LIFTED_LIMB_MEASURES for side in ("left", "right")
) + LIFTED_BILATERAL_MEASURES

# Measures that need foot keypoints (heel / toes): unavailable for skeletons without feet (coco17).
FOOT_MEASURES: tuple[str, ...] = (
    "foot_roll_in",
    "rearfoot_eversion_deg",
    "foot_progression_deg",
    "heel_rise",
)


def _pair(part: str) -> list[int]:
    return [canonical_index(f"left_{part}"), canonical_index(f"right_{part}")]


_HIP, _KNEE, _ANKLE, _HEEL = _pair("hip"), _pair("knee"), _pair("ankle"), _pair("heel")
_BIG_TOE, _SMALL_TOE = _pair("big_toe"), _pair("small_toe")
_FOOT_POINTS = tuple((_ANKLE[k], _HEEL[k], _BIG_TOE[k], _SMALL_TOE[k]) for k in range(2))  # per limb
_NECK = canonical_index("neck")
_LIMB_JOINTS = np.array(_HIP + _KNEE + _ANKLE + _HEEL + _BIG_TOE + _SMALL_TOE)
_N_JOINTS = len(CANONICAL_JOINTS)


def vector_lengths(vectors: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis, summed coordinate by coordinate in order: the same numbers as
    `np.sqrt((v * v).sum(-1))` without a reduction over an axis of 2 or 3 (slow in numpy)."""
    squares = vectors[..., 0] * vectors[..., 0]
    for c in range(1, vectors.shape[-1]):
        squares += vectors[..., c] * vectors[..., c]
    return np.sqrt(squares)


def _acos_ratio_deg(length: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(length / reference, 0.0, 1.0)))


def _nanpercentile_cols(values: np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """Column percentiles ignoring NaN (linear interpolation; `q` scalar or one per column); all-NaN
    columns give NaN.

    One sort instead of `np.nanpercentile`, which loops over columns in Python and dominated the run time.
    """
    ordered = np.sort(values, axis=0)  # NaN sorts last
    count = np.isfinite(values).sum(axis=0)
    last = np.maximum(count - 1, 0)
    position = (np.asarray(q) / 100.0) * last
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, last)
    cols = np.arange(values.shape[1])
    low, high = ordered[lower, cols], ordered[upper, cols]
    result = low + (high - low) * (position - lower)
    return np.where(count > 0, result, np.nan)


def forefoot_points(coords: np.ndarray) -> np.ndarray:
    """Forefoot point per limb `(T, 2[, C])` of canonical `(T, J[, C])` coordinates: mean of big and small toe, the
    big toe alone where the small one is missing."""
    return _forefoot(coords[:, _BIG_TOE], coords[:, _SMALL_TOE])


def _forefoot(big: np.ndarray, small: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(small), big, 0.5 * (big + small))


FOOT_OVER_LEG = 0.29  # heel→mid-toes length / (thigh + shank): ~0.95 × 0.152 H / 0.491 H (Winter)
# Hip-joint-centre width / (thigh + shank) seen from the front, measured on the real recordings of
# ../shared/realdata (0.227-0.241)
HIP_OVER_LEG = 0.24
TYPICAL_TOE_OUT_DEG = 10.0  # foot progression of a planted foot when only one foot can show the view


def _tilt(ratio: np.ndarray, sin2_yaw: float) -> np.ndarray:
    """Sagittal tilt (radians) of a segment whose image length is `ratio` × its standing length, seen from a
    camera yawed by asin(sqrt(sin2_yaw)): image length² = L² (cos² t + sin² t sin² yaw)."""
    cos2 = (np.clip(ratio, 0.0, 1.0) ** 2 - sin2_yaw) / (1.0 - sin2_yaw)
    return np.arccos(np.sqrt(np.clip(cos2, 0.0, 1.0)))


def _view_yaw(
    forward_dx: np.ndarray, foot_low: np.ndarray, medial_sign: np.ndarray, scale: float
) -> tuple[float, float]:
    """(image x of the feet's forward direction, signed sin of the camera yaw) from the median heel→toe x of
    each foot. Seen from the front the feet point at the camera (no sideways extent); a yawed camera sees them
    sideways by foot length × sin(yaw). Toe-out is symmetric and cancels between two planted feet; when one
    foot is off the ground (single-leg tasks) only the lower one is used, less a typical toe-out.
    `medial_sign` (2,): image-x direction of each limb's medial side. (0, 0) without feet.

    Two numbers per limb: plain Python floats (the same IEEE arithmetic) cost a fraction of numpy calls."""
    forward, low, medial = forward_dx.tolist(), foot_low.tolist(), medial_sign.tolist()
    finite = [math.isfinite(f) and math.isfinite(h) for f, h in zip(forward, low, strict=True)]
    if not any(finite) or not math.isfinite(scale) or scale <= 0:
        return 0.0, 0.0
    if all(finite) and abs(low[0] - low[1]) < 0.1 * scale:
        dx = (forward[0] + forward[1]) / 2  # their mean
    else:
        # the lower foot (largest image y) among those seen; the first on a tie, as argmax
        planted = max((k for k in range(len(low)) if finite[k]), key=lambda k: (low[k], -k))
        toe_out = FOOT_OVER_LEG * scale * math.sin(math.radians(TYPICAL_TOE_OUT_DEG))
        dx = forward[planted] + medial[planted] * toe_out
    sin_yaw = min(max(dx / (FOOT_OVER_LEG * scale), -0.85), 0.85)
    return dx, sin_yaw


def _nanmean_pair(values: np.ndarray) -> float:
    """`np.nanmean` of two values, NaN unless one is finite (as the callers guard it); plain floats, since
    `np.nanmean` costs ~20 µs on any array."""
    a, b = values.tolist()
    if not (math.isfinite(a) or math.isfinite(b)):
        return math.nan
    if math.isnan(a) or math.isnan(b):
        return b if math.isnan(a) else a
    return (a + b) / 2


def _usual_sign(signs: np.ndarray) -> np.ndarray:
    """`(2,)` sign of the column sums of `(T, 2)` signs ±1 / NaN, NaN skipped: the sign most frames show.
    The sums are integers, exact in any order (`np.nansum` gives the same at several times the cost)."""
    return np.sign(np.where(np.isnan(signs), 0.0, signs).sum(axis=0))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross handles arbitrary axes and costs ~60 µs a call; this is the plain formula
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


def _body_axes(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The subject's horizontal left and forward unit vectors `(3,)`, from the median hip line (as
    `geometry.frontal_axes`, which tiles them per frame)."""
    left = world[:, _HIP[0]] - world[:, _HIP[1]]
    left[:, 2] = 0.0
    left_dir = _nanpercentile_cols(left, 50.0)
    left_dir /= np.linalg.norm(left_dir) + 1e-12
    forward = np.array([left_dir[1], -left_dir[0], 0.0])  # left × up
    return left_dir, forward


def check_canonical(keypoints: np.ndarray) -> np.ndarray:
    kp = np.asarray(keypoints)
    if kp.ndim != 3 or kp.shape[1] != _N_JOINTS or kp.shape[2] not in (2, 3):
        raise InputError(
            f"frame measures need canonical keypoints of shape (T, {_N_JOINTS}, 2|3), got {kp.shape}; "
            "map other layouts with KeypointSequence.to_canonical()"
        )
    return kp


def _knee_flexion_3d(thigh: np.ndarray, shank: np.ndarray) -> np.ndarray:
    """True knee flexion (deg) between 3D thigh and shank vectors `(..., 3)`."""
    return np.degrees(np.arctan2(vector_lengths(_cross(thigh, shank)), (thigh * shank).sum(-1)))


def foot_forward_velocity(keypoints: np.ndarray, fps: float) -> np.ndarray:
    """`(T, 2)` each foot's velocity forward relative to the pelvis (the hips' midpoint), in the keypoints' units
    a second, from canonical 3D keypoints `(T, 20, 3)`: the mean of the foot's seen points (ankle, heel, toes),
    along the subject's median forward direction, unsmoothed; NaN where unseen or with fewer than two frames.

    A foot on the ground moves backward against the pelvis, overground (the body passes over it) and on a
    treadmill (the belt carries it) alike; a swinging one moves forward. The feet's height cannot tell them
    apart in a walk: a swinging foot clears the floor by 1-2 cm."""
    world = np.asarray(keypoints, dtype=np.float64)
    if world.ndim != 3 or world.shape[2] != 3:
        raise InputError(f"foot_forward_velocity needs canonical 3D keypoints (T, 20, 3), got shape {world.shape}")
    n_frames = len(world)
    if n_frames < 2:
        return np.full((n_frames, 2), np.nan)
    _, forward = _body_axes(world)
    pelvis = 0.5 * (world[:, _HIP[0]] + world[:, _HIP[1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a foot unseen in a frame: its mean is NaN there
        feet = np.stack([np.nanmean(world[:, list(_FOOT_POINTS[limb])], axis=1) for limb in range(2)], axis=1)
    along = (feet - pelvis[:, None]) @ forward
    return np.gradient(along, axis=0) * fps


def knee_flexion_deg(keypoints: np.ndarray) -> np.ndarray:
    """`(T, 2)` float32 knee flexion of canonical keypoints, exactly `frame_measures`' column: 3D computes only
    this angle (the rule's phases need nothing else, and the full measures cost ten times more); 2D's proxy
    needs the recording's standing lengths, so it takes the full measures."""
    kp = check_canonical(keypoints)
    if kp.shape[2] != 3:
        return frame_measures(kp)[:, list(KNEE_FLEXION_COLUMNS)]
    world = kp.astype(np.float64)
    hip, knee, ankle = world[:, _HIP], world[:, _KNEE], world[:, _ANKLE]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _knee_flexion_3d(knee - hip, ankle - knee).astype(np.float32)


def frame_measures(keypoints: np.ndarray) -> np.ndarray:
    """Per-frame measures `(T, len(FRAME_MEASURES))` float32 from canonical keypoints `(T, 20, 2|3)`.

    See the module docstring for the conventions; columns are named by `FRAME_MEASURES`. Written with x/y
    component arrays `(T, 2 limbs)` rather than vector reductions: it runs for every sequence in
    preprocessing and in the predictor, and numpy's per-call overhead is most of its cost.
    """
    kp = check_canonical(keypoints)
    n_frames = kp.shape[0]
    if n_frames == 0:
        return np.full((0, len(FRAME_MEASURES)), np.nan, dtype=np.float32)
    is3d = kp.shape[2] == 3
    if is3d:
        world = kp.astype(np.float64)
        left_dir, forward = _body_axes(world)
        # the front view of `as_frontal_2d`, inlined to share the body axes with the sagittal measures
        fx, fy = world @ left_dir, -world[..., 2]
    else:
        fx, fy = kp[..., 0].astype(np.float64), kp[..., 1].astype(np.float64)  # x horizontal, y down
    # One gather per axis of the joints read below, then a (T, 2 limbs) view per joint pair.
    px, py = np.take(fx, _LIMB_JOINTS, axis=1), np.take(fy, _LIMB_JOINTS, axis=1)
    hip_x, knee_x, ankle_x, heel_x, big_x, small_x = (px[:, k : k + 2] for k in range(0, 12, 2))
    hip_y, knee_y, ankle_y, heel_y, big_y, small_y = (py[:, k : k + 2] for k in range(0, 12, 2))
    toe_x, toe_y = _forefoot(big_x, small_x), _forefoot(big_y, small_y)
    neck_x, neck_y = fx[:, _NECK], fy[:, _NECK]

    with np.errstate(invalid="ignore", divide="ignore"):
        medial_x, medial_y = hip_x[:, ::-1] - hip_x, hip_y[:, ::-1] - hip_y  # towards the other hip
        # +1 where image x grows medially for that limb; NaN when the hips coincide (no frontal information)
        medial_sign = np.sign(medial_x)
        medial_sign[medial_sign == 0] = np.nan
        left_sign = medial_sign[:, 1]  # the right limb's medial direction is the subject's left

        thigh_len = np.hypot(knee_x - hip_x, knee_y - hip_y)
        shank_len = np.hypot(ankle_x - knee_x, ankle_y - knee_y)
        limb_len = thigh_len + shank_len
        trunk_x = neck_x - 0.5 * (hip_x[:, 0] + hip_x[:, 1])
        trunk_y = neck_y - 0.5 * (hip_y[:, 0] + hip_y[:, 1])
        trunk_len = np.hypot(trunk_x, trunk_y)
        heel_raw = toe_y - heel_y  # heel above the toes in the image (unscaled)
        yaw_deg = np.zeros(n_frames)
        if is3d:
            hip3, knee3, ankle3 = world[:, _HIP], world[:, _KNEE], world[:, _ANKLE]
            thigh3, shank3 = knee3 - hip3, ankle3 - knee3
            heel3, toe3 = world[:, _HEEL], forefoot_points(world)
            heel_raw = heel3[..., 2] - toe3[..., 2]
            leg3 = vector_lengths(thigh3) + vector_lengths(shank3)
            # columns: leg L/R (median → scale), heel L/R (10th percentile → flat-foot baseline)
            q = _nanpercentile_cols(np.column_stack([leg3, heel_raw]), np.array([50.0, 50.0, 10.0, 10.0]))
            scale = _nanmean_pair(q[0:2])
            heel_base = q[2:4]
        else:
            foot_dx = toe_x - heel_x
            foot_low = np.fmax(np.fmax(ankle_y, heel_y), toe_y)
            # one sort for every per-recording reference: thigh, shank (standing length, 95th), leg (90th:
            # body size), trunk (95th), heel offset (10th: flat foot), heel→toe x and foot height (medians)
            q = _nanpercentile_cols(
                np.column_stack([thigh_len, shank_len, limb_len, trunk_len, heel_raw, foot_dx, foot_low]),
                np.array([95.0, 95.0, 95.0, 95.0, 90.0, 90.0, 95.0, 10.0, 10.0, 50.0, 50.0, 50.0, 50.0]),
            )
            scale = _nanmean_pair(q[4:6])
            heel_base = q[7:9]
            usual_medial = _usual_sign(medial_sign)  # the medial side in most frames
            forward_x, sin_yaw = _view_yaw(q[9:11], q[11:13], usual_medial, scale)
            yaw_deg[:] = np.degrees(np.arcsin(sin_yaw)) * usual_medial[1] if usual_medial[1] != 0 else np.nan
            if sin_yaw != 0.0:
                # A yawed camera shows part of the sagittal plane: a knee ahead of the ankle appears shifted
                # sideways by (how far ahead) × sin(yaw). Undo it with the tilts the foreshortening gives.
                s2 = sin_yaw * sin_yaw
                thigh_tilt = _tilt(thigh_len / q[0:2], s2)
                shank_tilt_rad = _tilt(shank_len / q[2:4], s2)
                knee_ahead = q[2:4] * np.sin(shank_tilt_rad)
                hip_ahead = knee_ahead - q[0:2] * np.sin(thigh_tilt)
                knee_x = knee_x - np.where(np.isnan(knee_ahead), 0.0, knee_ahead) * sin_yaw
                hip_x = hip_x - np.where(np.isnan(hip_ahead), 0.0, hip_ahead) * sin_yaw
                toe_x = toe_x - forward_x  # the feet's common forward direction, seen sideways
            else:
                thigh_tilt = _tilt(thigh_len / q[0:2], 0.0)
                shank_tilt_rad = _tilt(shank_len / q[2:4], 0.0)

        thigh_x, thigh_y = knee_x - hip_x, knee_y - hip_y
        fppa = limb_fppa_deg(hip_x, hip_y, knee_x, knee_y, ankle_x, ankle_y)

        # Hip adduction proxy: thigh angle from the pelvis' own downward perpendicular, positive medially.
        down_sign = np.sign(
            medial_x + 1e-300
        )  # perpendicular (-my, mx) or its opposite, whichever points down
        down_x, down_y = -medial_y * down_sign, medial_x * down_sign
        hip_adduction = np.degrees(
            np.arctan2(thigh_x * medial_x + thigh_y * medial_y, thigh_x * down_x + thigh_y * down_y)
        )

        # Heel rise relative to the flat foot of this recording: the heel keypoint sits above the toes even
        # when flat, and in 2D the heel is further from the camera, so it appears higher.
        heel_rise = (heel_raw - heel_base) / scale
        medial_knee = (knee_x - ankle_x) * medial_sign / scale
        foot_roll_in = (ankle_x - toe_x) * medial_sign / scale
        rearfoot = np.degrees(np.arctan2((ankle_x - heel_x) * medial_sign, heel_y - ankle_y))

        ankle_gap = np.abs(ankle_x[:, 0] - ankle_x[:, 1])
        ankle_gap[ankle_gap < 0.02 * scale] = np.nan  # feet together: the ratio carries no information
        separation = (knee_x[:, 0] - knee_x[:, 1]) * left_sign / ankle_gap

        # right minus left, y down: right hip lower → positive
        # (from the hips as seen: the yaw correction moves each hip along its own leg chain, the pelvis is one)
        obliquity = np.degrees(np.arctan2(hip_y[:, 1] - hip_y[:, 0], np.abs(medial_x[:, 0])))
        lean_frontal = np.degrees(np.arctan2(trunk_x * left_sign, -trunk_y))

        if is3d:
            knee_flexion = _knee_flexion_3d(thigh3, shank3)
            shank_fwd = -(shank3 @ forward)
            shank_tilt = np.degrees(np.arctan2(shank_fwd, -shank3[..., 2]))
            trunk3 = world[:, _NECK] - 0.5 * (hip3[:, 0] + hip3[:, 1])
            lean_sagittal = np.degrees(np.arctan2(trunk3 @ forward, trunk3[:, 2]))
            foot3 = toe3 - heel3
            lateral = np.stack([foot3[:, 0] @ left_dir, -(foot3[:, 1] @ left_dir)], axis=1)  # outwards
            foot_progression = np.degrees(np.arctan2(lateral, foot3 @ forward))
            # Rearfoot angle in the foot's own frontal plane (perpendicular to heel→toe): the front view would
            # read toe-out as eversion, since the heel sits behind the ankle. Its up is the vertical with the
            # foot's pitch taken out, so a heel rising off the floor is not read as the heel rolling over: from
            # the floor's vertical, a push-off's heel above the ankle read 150°.
            along_x, along_y = foot3[..., 0], foot3[..., 1]
            length = vector_lengths(foot3)
            floor_length = np.hypot(along_x, along_y)
            limb_sign = np.array([1.0, -1.0])
            foot_medial_x, foot_medial_y = along_y / floor_length * limb_sign, -along_x / floor_length * limb_sign
            rear = world[:, _ANKLE] - heel3
            along_z = foot3[..., 2] / length
            rear_along = (rear * foot3).sum(axis=-1) / length
            rear_up = (rear[..., 2] - along_z * rear_along) / (floor_length / length)
            rearfoot = np.degrees(
                np.arctan2(rear[..., 0] * foot_medial_x + rear[..., 1] * foot_medial_y, rear_up)
            )
        else:
            shank_tilt = np.degrees(shank_tilt_rad)
            knee_flexion = np.degrees(thigh_tilt) + shank_tilt
            lean_sagittal = _acos_ratio_deg(trunk_len, q[6])
            foot_progression = np.degrees(np.arctan2((heel_x - toe_x) * medial_sign, toe_y - heel_y))

    per_limb = (
        fppa,
        hip_adduction,
        medial_knee,
        foot_roll_in,
        rearfoot,
        foot_progression,
        knee_flexion,
        shank_tilt,
        heel_rise,
    )
    return _float32_columns(n_frames, per_limb, (separation, obliquity, lean_frontal, lean_sagittal, yaw_deg))


def _float32_columns(n_frames: int, per_limb: tuple[np.ndarray, ...], bilateral: tuple[np.ndarray, ...]) -> np.ndarray:
    """`np.concatenate([*per_limb, np.stack(bilateral, axis=1)], axis=1, dtype=np.float32)`: `(T, 2)` and
    `(T,)` float64 columns rounded into one float32 array, the same cast, without the stack's temporaries."""
    out = np.empty((n_frames, 2 * len(per_limb) + len(bilateral)), dtype=np.float32)
    for k, pair in enumerate(per_limb):
        out[:, 2 * k : 2 * k + 2] = pair
    for k, column in enumerate(bilateral, start=2 * len(per_limb)):
        out[:, k] = column
    return out


def mirror_frame_measures(measures: np.ndarray) -> np.ndarray:
    """The measures of the left/right mirrored subject, from `FRAME_MEASURE_MIRROR` (for augmentation)."""
    index = np.array([k for k, _ in FRAME_MEASURE_MIRROR])
    sign = np.array([s for _, s in FRAME_MEASURE_MIRROR], dtype=measures.dtype)
    mirrored = np.empty_like(measures)
    mirrored[..., index] = measures * sign
    return mirrored
