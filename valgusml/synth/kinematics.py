"""Kinematics: joint angles and foot placements → 3D joints, vectorised over trials and frames.

Pelvis, trunk, head, arms and held (free) legs are forward kinematics from joint angles. Limbs that carry
weight are closed chains: the ball of the foot is planted, the heel rises about it, rearfoot eversion and
navicular drop move the ankle, the knee flexion and the shank's forward tilt (ankle dorsiflexion) put the
hip where the pelvis must be, and the knee is solved from hip and ankle with its medial swivel (femoral
adduction + internal rotation, tibial rotation) and the structural valgus/varum of the athlete, which does
not change under load. So stance feet never slide or float, and bone lengths are kept.

Axes: x = subject's left, y = backward (the subject faces -y), z = up; metres; the floor is z = 0.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth.athletes import FLOAT, LIMB_SIGN
from valgusml.synth.tasks import CHAIN, FREE

EXTRA_JOINTS: tuple[str, ...] = (
    "left_eye", "right_eye", "left_ear", "right_ear", "head", "mid_hip",
    "left_eye_inner", "right_eye_inner", "left_eye_outer", "right_eye_outer", "mouth_left", "mouth_right",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
)
JOINTS: tuple[str, ...] = CANONICAL_JOINTS + EXTRA_JOINTS  # everything the generator builds
J = {name: k for k, name in enumerate(JOINTS)}
UP = np.array([0.0, 0.0, 1.0], dtype=FLOAT)

# Head points relative to the neck in the trunk frame, for a 1.75 m athlete (x left, y backward, z up).
HEAD_POINTS = {
    "nose": (0.0, -0.09, 0.10),
    "head": (0.0, -0.01, 0.24),
    "left_eye": (0.032, -0.075, 0.135),
    "right_eye": (-0.032, -0.075, 0.135),
    "left_eye_inner": (0.017, -0.08, 0.135),
    "right_eye_inner": (-0.017, -0.08, 0.135),
    "left_eye_outer": (0.048, -0.066, 0.135),
    "right_eye_outer": (-0.048, -0.066, 0.135),
    "left_ear": (0.075, -0.005, 0.115),
    "right_ear": (-0.075, -0.005, 0.115),
    "mouth_left": (0.025, -0.085, 0.065),
    "mouth_right": (-0.025, -0.085, 0.065),
}


# Vector helpers on the last axis (3) written per component: numpy reduces or broadcasts over an axis of
# length 3 an order of magnitude slower than it runs three whole-array operations.


def norm3(v: np.ndarray) -> np.ndarray:
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])


HAND_POINTS = tuple(f"{side}_{part}" for side in ("left", "right") for part in ("pinky", "index", "thumb"))
OPTIONAL_JOINTS = (frozenset(HEAD_POINTS) | frozenset(HAND_POINTS)) - frozenset(CANONICAL_JOINTS)


@cache
def built_joints(emit: frozenset[str] | None = None) -> tuple[str, ...]:
    """The joints `build_joints` builds for `emit`, in `JOINTS` order: every canonical joint (first, at its
    `JOINTS` index) and the other body points; face and hand points only when `emit` names them."""
    return tuple(j for j in JOINTS if emit is None or j not in OPTIONAL_JOINTS or j in emit)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (norm3(v) + 1e-12)[..., None]


def rotate_zyx(v: np.ndarray, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`Rz(z) @ Ry(y) @ Rx(x) @ v` (right-handed rotations, radians, broadcast against `v[..., 0]`), computed
    element-wise: several times faster than building batched 3x3 matrices."""
    return rotate_zyx_trig(v, zyx_trig(z, y, x))


def zyx_trig(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cosines and sines `(cz, sz, cy, sy, cx, sx)` for `rotate_zyx_trig`: computed once for several vectors
    rotated by the same angles."""
    return np.cos(z), np.sin(z), np.cos(y), np.sin(y), np.cos(x), np.sin(x)


def rotate_zyx_trig(v: np.ndarray, trig: tuple[np.ndarray, ...]) -> np.ndarray:
    """`rotate_zyx` from precomputed `zyx_trig`; the same arithmetic, so the same bits."""
    cz, sz, cy, sy, cx, sx = trig
    v0, v1, v2 = v[..., 0], v[..., 1], v[..., 2]
    v1, v2 = cx * v1 - sx * v2, sx * v1 + cx * v2
    v0, v2 = cy * v0 + sy * v2, -sy * v0 + cy * v2
    v0, v1 = cz * v0 - sz * v1, sz * v0 + cz * v1
    out = np.empty(np.broadcast_shapes(v0.shape, v1.shape, v2.shape) + (3,), dtype=np.result_type(v0, v1, v2))
    out[..., 0], out[..., 1], out[..., 2] = v0, v1, v2
    return out


def foot_frame(progression_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal forward and lateral unit vectors of each foot `(..., 2, 3)`; toe-out turns the toes outward."""
    g = np.radians(progression_deg)
    s = LIMB_SIGN
    forward = np.stack([s * np.sin(g), -np.cos(g), np.zeros_like(g)], -1)
    lateral = np.stack([s * np.cos(g), np.sin(g) * np.ones_like(s), np.zeros_like(g)], -1)
    return forward, lateral


def foot_forward(progression_deg: np.ndarray) -> np.ndarray:
    """`foot_frame(progression_deg)[0]` alone, for callers that do not need the lateral vector."""
    g = np.radians(progression_deg)
    out = np.zeros(g.shape + (3,), dtype=g.dtype)
    out[..., 0] = LIMB_SIGN * np.sin(g)
    out[..., 1] = -np.cos(g)
    return out


def ankle_from_ball(g: dict, forward, lateral, rho_deg, eversion_deg, navicular_drop) -> np.ndarray:
    """Ankle relative to the ball of the foot: heel rise rotates the rearfoot up about the ball; eversion
    rolls the ankle medially; navicular drop lowers it."""
    b, ha = g["ball_ahead"][..., None], g["ankle_height"][..., None]
    r = np.radians(rho_deg)
    along = -b * np.cos(r) + ha * np.sin(r)
    up = b * np.sin(r) + ha * np.cos(r)
    medial = ha * np.sin(np.radians(eversion_deg))
    return forward * along[..., None] + UP * (up - navicular_drop)[..., None] - lateral * medial[..., None]


def foot_points(g: dict, ball, forward, lateral, fore_forward, fore_lateral, rho_deg, eversion_deg) -> dict[str, np.ndarray]:
    """Heel and toes around a ball-of-foot anchor: the heel follows the rearfoot (heel rise, abduction,
    eversion); the toes follow the forefoot, which stays put on the ground."""
    foot = g["foot"][..., None, None]
    r = np.radians(rho_deg)[..., None]
    heel_back = 0.73 * foot
    heel_z = 0.03 * foot / 0.27
    heel = ball + forward * (-heel_back * np.cos(r) + heel_z * np.sin(r)) + UP * (heel_back * np.sin(r) + heel_z * np.cos(r))
    heel = heel - lateral * (0.4 * g["ankle_height"][..., None, None] * np.sin(np.radians(eversion_deg))[..., None])
    big = ball + fore_forward * (0.27 * foot) - fore_lateral * 0.022 + UP * 0.015
    small = ball + fore_forward * (0.18 * foot) + fore_lateral * 0.035 + UP * 0.015
    return {"heel": heel, "big_toe": big, "small_toe": small}


def knee_ik(hip, ankle, thigh, shank, bend_dir, medial_sign, swivel_deg, structural_deg):
    """Knee from hip and ankle: bend toward `bend_dir`, swivelled medially about the hip-ankle axis."""
    hx, hy, hz = hip[..., 0], hip[..., 1], hip[..., 2]
    ux, uy, uz = ankle[..., 0] - hx, ankle[..., 1] - hy, ankle[..., 2] - hz
    dist = np.sqrt(ux * ux + uy * uy + uz * uz)
    inverse = 1.0 / (dist + 1e-12)
    ux, uy, uz = ux * inverse, uy * inverse, uz * inverse
    reach = np.clip(dist, np.abs(thigh - shank) + 1e-4, (thigh + shank) * 0.99999)
    along = (thigh**2 - shank**2 + reach**2) / (2.0 * reach)
    height = np.sqrt(np.maximum(thigh**2 - along**2, 0.0))
    # Bend direction and medial direction, both made perpendicular to the hip-ankle axis (and to each other).
    bx, by, bz = bend_dir[..., 0], bend_dir[..., 1], bend_dir[..., 2]
    d = bx * ux + by * uy + bz * uz
    fx, fy, fz = bx - d * ux, by - d * uy, bz - d * uz
    inverse = 1.0 / (np.sqrt(fx * fx + fy * fy + fz * fz) + 1e-12)
    fx, fy, fz = fx * inverse, fy * inverse, fz * inverse
    medial_x = -medial_sign  # the medial direction before projection: (-sign, 0, 0)
    du, df = medial_x * ux, medial_x * fx
    mx, my, mz = medial_x - du * ux - df * fx, -du * uy - df * fy, -du * uz - df * fz
    inverse = 1.0 / (np.sqrt(mx * mx + my * my + mz * mz) + 1e-12)
    mx, my, mz = mx * inverse, my * inverse, mz * inverse
    s = np.radians(swivel_deg)
    bend, swivel = height * np.cos(s), height * np.sin(s)
    # Structural alignment: a constant knee offset giving the FPPA `structural_deg` in full extension.
    offset = np.tan(np.radians(structural_deg)) * thigh * shank / (thigh + shank)
    knee = np.empty(np.broadcast_shapes(hx.shape, bend.shape) + (3,), dtype=np.result_type(hip, bend))
    for c, (h, u, f, m) in enumerate(((hx, ux, fx, mx), (hy, uy, fy, my), (hz, uz, fz, mz))):
        knee[..., c] = h + u * along + bend * f + swivel * m + m * offset
    return knee


def build_joints(m: dict, g: dict, p: dict, emit: frozenset[str] | None = None) -> np.ndarray:
    """Generator joints `(n, T, len(built_joints(emit)), 3)` from a programme bent by the mechanisms (adds the
    knees' bend directions to `m` as "knee_bend").

    `emit` (default: all) names the joints the caller reads: face and hand points outside it are not built
    (a layout without them never shows them); see `built_joints`.
    """
    n, T = m["depth"].shape
    names = built_joints(emit)
    column = {name: k for k, name in enumerate(names)}
    out = np.empty((n, T, len(names), 3), dtype=FLOAT)  # every column is written below
    wanted = column.__contains__

    def put(name: str, value: np.ndarray) -> None:
        out[:, :, column[name]] = value
    thigh, shank = g["thigh"][..., None], g["shank"][..., None]  # (n, 1, 1)
    kind = m["kind"][:, None, :]  # (n, 1, 2)

    progression = p["foot_progression"] + m["foot_abduction"]  # rearfoot (n, T, 2); pronation abducts it
    forward, lateral = foot_frame(progression)
    # The forefoot keeps the design progression: one frame per trial `(n, 1, 2, 3)`, broadcast over time
    # (`+ 0.0` as the former `+ zeros` did, so a -0.0 angle still turns into +0.0).
    fore_forward, fore_lateral = foot_frame(p["foot_progression"] + 0.0)
    rel = ankle_from_ball(g, forward, lateral, m["rho"], m["eversion"], m["navicular_drop"])
    ankle = m["ball"] + rel

    # Pelvis orientation: obliquity from the mechanisms, rotation in gait (anterior tilt moves no joint here).
    # Hip offsets from the pelvis centre: (+-w/2, 0, 0) through Rz(rotation) Ry(obliquity) Rx(tilt); the tilt
    # leaves the hip axis alone, so the offset is w/2 times Rz Ry's first column.
    rot, obl = np.radians(m["pelvis_rot"]), np.radians(m["pelvic_obliquity"])
    axis = np.stack([np.cos(rot) * np.cos(obl), np.sin(rot) * np.cos(obl), -np.sin(obl)], -1)  # (n, T, 3)
    half = 0.5 * g["hip_width"][..., None] * LIMB_SIGN  # (n, 1, 2)
    hip_off = axis[:, :, None, :] * half[..., None]  # (n, T, 2, 3)

    theta = np.radians(m["theta"])
    tilt_shank = np.radians(m["shank_tilt"] if "shank_tilt" in m else m["beta_ratio"] * m["theta"])
    chain_forward = shank * np.sin(tilt_shank) - thigh * np.sin(theta - tilt_shank)  # hip ahead of ankle
    chain_len2 = thigh**2 + shank**2 + 2.0 * thigh * shank * np.cos(theta)
    w = np.where(kind == CHAIN, m["weight"], 0.0)
    wsum = w.sum(-1)
    pelvis = np.zeros((n, T, 3), dtype=FLOAT)
    pelvis[..., 0] = m["pelvis_x"]
    chained = wsum > 0
    py = ((ankle[..., 1] - chain_forward - hip_off[..., 1]) * w).sum(-1) / np.maximum(wsum, 1e-9)
    pelvis[..., 1] = np.where(chained, py, 0.0)
    hip_xy = pelvis[:, :, None, :2] + hip_off[..., :2]
    dx, dy = hip_xy[..., 0] - ankle[..., 0], hip_xy[..., 1] - ankle[..., 1]
    rise = np.sqrt(np.maximum(chain_len2 - dx**2 - dy**2, 1e-4))
    pz_chain = ((ankle[..., 2] + rise - hip_off[..., 2]) * w).sum(-1) / np.maximum(wsum, 1e-9)
    # Gait: designed pelvis height, lowered where a stance leg could not reach its planted foot.
    stance = m["planted"] & (kind != FREE)
    reach = ankle[..., 2] + np.sqrt(np.maximum((0.985 * (thigh + shank)) ** 2 - dx**2 - dy**2, 1e-4)) - hip_off[..., 2]
    pz_gait = np.minimum(np.nan_to_num(m["pelvis_z"], nan=10.0), np.where(stance, reach, 10.0).min(-1))
    pelvis[..., 2] = np.where(chained, pz_chain, pz_gait)
    hips = pelvis[:, :, None, :] + hip_off

    # Held legs: forward kinematics from hip flexion and knee flexion (foot hanging, plantar-flexed).
    hip_flex = np.radians(m["free_hip_flex"])
    thigh_dir = np.stack([LIMB_SIGN * 0.05 * np.ones_like(hip_flex), -np.sin(hip_flex), -np.cos(hip_flex)], -1)
    knee_free = hips + _unit(thigh_dir) * thigh[..., None]
    shank_angle = hip_flex - theta
    shank_dir = np.stack([np.zeros_like(hip_flex), -np.sin(shank_angle), -np.cos(shank_angle)], -1)
    ankle_free = knee_free + shank_dir * shank[..., None]
    # A held foot stays off the floor: bend the knee further where the design would put it through.
    lowest = g["ankle_height"][..., None] + 0.06
    c = np.clip((knee_free[..., 2] - lowest) / shank, -1.0, 1.0)
    theta_free = np.maximum(theta, hip_flex + np.arccos(c))
    shank_angle = hip_flex - theta_free
    shank_dir = np.stack([np.zeros_like(hip_flex), -np.sin(shank_angle), -np.cos(shank_angle)], -1)
    ankle_free = knee_free + shank_dir * shank[..., None]
    free = (kind == FREE)[..., None]
    # Airborne (swing, flight) feet out of the leg's reach are drawn toward the hip; planted ones never move.
    reach = ankle - hips
    dist = norm3(reach)[..., None]
    pulled = hips + reach * np.minimum(1.0, 0.998 * (thigh + shank)[..., None] / np.maximum(dist, 1e-9))
    airborne = (~m["planted"])[..., None]
    ankle = np.where(free, ankle_free, np.where(airborne, pulled, ankle))
    ball = np.where(free | airborne, ankle - rel, m["ball"])

    # Knees track between straight ahead and the toes (half the foot progression); kept in `m` for
    # `resolve_knees`.
    bend = m["knee_bend"] = foot_forward(0.5 * progression)
    knee = knee_ik(hips, ankle, thigh, shank, bend, LIMB_SIGN, m["swivel"], p["structural_valgus"])
    knee = np.where(free, knee_free, knee)
    feet = foot_points(g, ball, forward, lateral, fore_forward, fore_lateral, m["rho"], m["eversion"])

    for k, side in enumerate(("left", "right")):
        put(f"{side}_hip", hips[:, :, k])
        put(f"{side}_knee", knee[:, :, k])
        put(f"{side}_ankle", ankle[:, :, k])
        for name, pts in feet.items():
            put(f"{side}_{name}", pts[:, :, k])
    put("mid_hip", pelvis)

    # Trunk: forward lean and lean over the stance leg, half the pelvis rotation. Its frame's axes in world
    # coordinates, `(n, T, 3)` each: a fixed trunk-frame vector v maps to v0 * ex + v1 * ey + v2 * ez.
    tz, ty, tx = np.radians(0.5 * m["pelvis_rot"]), np.radians(m["trunk_lateral"]), np.radians(m["trunk_fwd"])
    trunk_trig = zyx_trig(tz, ty, tx)
    ex, ey, ez = (rotate_zyx_trig(axis, trunk_trig) for axis in np.eye(3, dtype=FLOAT))

    scale = (g["height"] / 1.75)[..., None]
    neck = pelvis + g["trunk"][..., None] * ez
    put("neck", neck)
    for name, (v0, v1, v2) in HEAD_POINTS.items():
        if wanted(name):
            put(name, neck + scale * (v0 * ex + v1 * ey + v2 * ez))
    arm_flex = np.radians(m["arm_flex"])
    elbow_flex = np.radians(m["elbow_flex"])
    for k, side in enumerate(("left", "right")):
        s = LIMB_SIGN[k]
        # Neck = shoulder midpoint, as estimators place it.
        shoulder = neck + (s * 0.5 * g["shoulder_width"])[..., None] * ex
        a, e = arm_flex[..., k], elbow_flex[..., k]
        upper = rotate_zyx_trig(_unit(np.stack([0.12 * s * np.ones_like(a), -np.sin(a), -np.cos(a)], -1)), trunk_trig)
        lower = rotate_zyx_trig(_unit(np.stack([-0.25 * s * np.sin(e), -np.sin(a + e), -np.cos(a + e)], -1)), trunk_trig)
        elbow = shoulder + upper * g["upper_arm"][..., None]
        wrist = elbow + lower * g["forearm"][..., None]
        put(f"{side}_shoulder", shoulder)
        put(f"{side}_elbow", elbow)
        put(f"{side}_wrist", wrist)
        for part, reach, offset in (("pinky", 0.07, 0.02), ("index", 0.08, -0.01), ("thumb", 0.04, -0.03)):
            if wanted(f"{side}_{part}"):
                point = wrist + reach * lower
                point[..., 0] += offset * s  # across the hand, towards the little finger for +offset
                put(f"{side}_{part}", point)
    return out


KNEES = [J["left_knee"], J["right_knee"]]


def resolve_knees(joints, chained, knee_bend, thigh, shank, swivel_deg, structural_deg) -> None:
    """Re-solve, in place, the knees of `joints` `(N, len(JOINTS), 3)` for a new medial swivel `(N, 2)`.

    Frames may come from several trials stacked (per-frame `thigh`, `shank` `(N, 1)`, `structural_deg`,
    `knee_bend` and `chained` `(N, 2)`): the knee is the only joint the swivel moves, so hips and ankles stay
    and only limbs solved from hip and ankle (`chained`, not held free) change.
    """
    hips, ankles = joints[:, [J["left_hip"], J["right_hip"]]], joints[:, [J["left_ankle"], J["right_ankle"]]]
    knee = knee_ik(hips, ankles, thigh, shank, knee_bend, LIMB_SIGN, swivel_deg, structural_deg)
    joints[:, KNEES] = np.where(chained[..., None], knee, joints[:, KNEES])


def standing_fppa_reference(g: dict, p: dict) -> np.ndarray:
    """Knee position of a quiet standing pose (no load, no swivel) as a canonical frame `(n, 1, 20, 3)`.

    FPPA measured on it gives each limb's static alignment, against which the loaded peak is compared.
    """
    n = len(g["thigh"])
    thigh, shank = g["thigh"][..., None], g["shank"][..., None]
    half = 0.5 * g["hip_width"][..., None] * LIMB_SIGN  # (n, 1, 2)
    stance = half * p["stance_ratio"][..., None]
    hips = np.zeros((n, 1, 2, 3), dtype=FLOAT)
    hips[..., 0] = half
    height = np.sqrt((thigh + shank) ** 2 * 0.995 - (stance - half) ** 2)
    hips[..., 2] = height
    ankles = np.zeros((n, 1, 2, 3), dtype=FLOAT)
    ankles[..., 0] = stance
    forward, _ = foot_frame(0.5 * p["foot_progression"])
    knee = knee_ik(hips, ankles, thigh, shank, forward, LIMB_SIGN, np.zeros((n, 1, 2), dtype=FLOAT), p["structural_valgus"])
    frame = np.zeros((n, 1, len(CANONICAL_JOINTS), 3), dtype=FLOAT)
    for k, side in enumerate(("left", "right")):
        frame[:, :, J[f"{side}_hip"]] = hips[:, :, k]
        frame[:, :, J[f"{side}_knee"]] = knee[:, :, k]
        frame[:, :, J[f"{side}_ankle"]] = ankles[:, :, k]
    return frame
