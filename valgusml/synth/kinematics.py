"""Kinematics: joint angles and foot placements → 3D joints, vectorised over trials and frames.

Pelvis, trunk, head, arms and held (free) legs are forward kinematics from joint angles. Limbs that carry
weight are closed chains: the ball of the foot is planted, the heel rises about it, rearfoot eversion and
navicular drop move the ankle, the knee flexion and the shank's forward tilt (ankle dorsiflexion) put the
hip where the pelvis must be, and the knee is solved from hip and ankle with its medial swivel (femoral
adduction + internal rotation, tibial rotation) and the structural valgus/varum of the athlete, which does
not change under load. So stance feet never slide or float, and bone lengths are kept.

Axes: x = subject's left, y = backward (the subject faces -y), z = up; metres; the floor is z = 0.

Vectors here are coordinate-first arrays `(3, ...)`: x, y, z, then the batch axes (trials, frames, limbs).
numpy runs element-wise work over a trailing axis of 3 an order of magnitude slower than over whole
contiguous arrays, and this module is most of the generator's time. Joint arrays it returns are `(..., 3)`.
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
    "spine",  # halfway from the pelvis to the neck (h36m17), last so the joints before keep their places
)
JOINTS: tuple[str, ...] = CANONICAL_JOINTS + EXTRA_JOINTS  # everything the generator builds
J = {name: k for k, name in enumerate(JOINTS)}

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


HAND_POINTS = tuple(f"{side}_{part}" for side in ("left", "right") for part in ("pinky", "index", "thumb"))
OPTIONAL_JOINTS = (frozenset(HEAD_POINTS) | frozenset(HAND_POINTS) | {"spine"}) - frozenset(CANONICAL_JOINTS)


@cache
def built_joints(emit: frozenset[str] | None = None) -> tuple[str, ...]:
    """The joints `build_joints` builds for `emit`, in `JOINTS` order: every canonical joint (first, at its
    `JOINTS` index) and the other body points; face, hand and spine points only when `emit` names them."""
    return tuple(j for j in JOINTS if emit is None or j not in OPTIONAL_JOINTS or j in emit)


# -- coordinate-first vector helpers ---------------------------------------------------------------------------


def vec(x, y, z) -> np.ndarray:
    """A vector array `(3, ...)` from its components (arrays or numbers, broadcast against each other)."""
    out = np.empty((3,) + np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=np.result_type(x, y, z))
    out[0], out[1], out[2] = x, y, z
    return out


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(dot(v, v))


def unit(v: np.ndarray) -> np.ndarray:
    return v / (norm(v) + 1e-12)


def mirrored(x: np.ndarray) -> np.ndarray:
    """`x * LIMB_SIGN` (the right limb's value negated) for limbs on the last axis. Broadcasting a `(2,)` or
    `(n, 1, 2)` array over frames runs ~20x slower in numpy than whole-array work (its inner loop is the
    2-long limb axis), so per-limb values are built from full arrays or stacked instead."""
    out = np.array(x, dtype=FLOAT)
    np.negative(out[..., 1], out=out[..., 1])
    return out


def limbs(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Left and right values stacked on a new last (limb) axis."""
    return np.stack([left, right], axis=-1)


def zyx_trig(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cosines and sines `(cz, sz, cy, sy, cx, sx)` for `rotate`: computed once for several vectors rotated
    by the same angles."""
    return np.cos(z), np.sin(z), np.cos(y), np.sin(y), np.cos(x), np.sin(x)


def rotate(v: np.ndarray, trig: tuple[np.ndarray, ...]) -> np.ndarray:
    """`Rz(z) @ Ry(y) @ Rx(x) @ v` for vectors `(3, ...)` (right-handed rotations, angles from `zyx_trig`,
    broadcast against `v[0]`), element-wise: several times faster than batched 3x3 matrices."""
    cz, sz, cy, sy, cx, sx = trig
    v0, v1, v2 = v[0], v[1], v[2]
    v1, v2 = cx * v1 - sx * v2, sx * v1 + cx * v2
    v0, v2 = cy * v0 + sy * v2, -sy * v0 + cy * v2
    v0, v1 = cz * v0 - sz * v1, sz * v0 + cz * v1
    return vec(v0, v1, v2)


# -- body parts -------------------------------------------------------------------------------------------------


def foot_frame(progression_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal forward and lateral unit vectors `(3, ..., 2)` of each foot (limbs on the last axis of
    `progression_deg`); toe-out turns the toes outward."""
    g = np.radians(progression_deg)
    sin, cos = np.sin(g), np.cos(g)
    return vec(mirrored(sin), -cos, 0.0), vec(mirrored(cos), sin, 0.0)


def foot_forward(progression_deg: np.ndarray) -> np.ndarray:
    """`foot_frame(progression_deg)[0]` alone, for callers that do not need the lateral vector."""
    g = np.radians(progression_deg)
    return vec(mirrored(np.sin(g)), -np.cos(g), 0.0)


def ankle_from_ball(g: dict, forward, lateral, rho_deg, eversion_deg, navicular_drop) -> np.ndarray:
    """Ankle relative to the ball of the foot `(3, n, T, 2)`: heel rise rotates the rearfoot up about the
    ball; eversion rolls the ankle medially; the collapsing arch (navicular drop) carries the talus, and the
    malleoli with it, medially (~0.8 mm per mm of drop, design choice) and lowers them a little (0.3 mm/mm:
    the drop is the navicular's, not the ankle joint's)."""
    b, ha = g["ball_ahead"][..., None], g["ankle_height"][..., None]
    r = np.radians(rho_deg)
    along = -b * np.cos(r) + ha * np.sin(r)
    up = b * np.sin(r) + ha * np.cos(r)
    medial = ha * np.sin(np.radians(eversion_deg)) + 0.8 * navicular_drop
    rel = forward * along - lateral * medial
    rel[2] += up - 0.3 * navicular_drop
    return rel


def foot_points(g: dict, ball, forward, lateral, fore_forward, fore_lateral, rho_deg, eversion_deg) -> dict[str, np.ndarray]:
    """Heel and toes `(3, n, T, 2)` around a ball-of-foot anchor: the heel follows the rearfoot (heel rise,
    abduction, eversion); the toes follow the forefoot, which stays put on the ground."""
    foot = g["foot"][..., None]
    r = np.radians(rho_deg)
    heel_back = 0.73 * foot
    heel_z = 0.03 * foot / 0.27
    heel = ball + forward * (-heel_back * np.cos(r) + heel_z * np.sin(r))
    heel[2] += heel_back * np.sin(r) + heel_z * np.cos(r)
    heel -= lateral * (0.4 * g["ankle_height"][..., None] * np.sin(np.radians(eversion_deg)))
    big = ball + (fore_forward * (0.27 * foot) - fore_lateral * 0.022)  # one broadcast over frames each
    small = ball + (fore_forward * (0.18 * foot) + fore_lateral * 0.035)
    big[2] += 0.015
    small[2] += 0.015
    return {"heel": heel, "big_toe": big, "small_toe": small}


def knee_ik(hip, ankle, thigh, shank, bend_dir, swivel_deg, structural_deg) -> np.ndarray:
    """Knees `(3, ..., 2)` (left, right on the last axis) from hips and ankles: bent toward `bend_dir`,
    swivelled medially about the hip-ankle axis, plus the athlete's structural offset."""
    axis = ankle - hip
    dist = norm(axis)
    u = axis / (dist + 1e-12)
    reach = np.clip(dist, np.abs(thigh - shank) + 1e-4, (thigh + shank) * 0.99999)
    along = (thigh**2 - shank**2 + reach**2) / (2.0 * reach)
    height = np.sqrt(np.maximum(thigh**2 - along**2, 0.0))
    # Bend and medial directions, both made perpendicular to the hip-ankle axis (and to each other); the
    # medial direction before projection is (-1, 0, 0) for the left limb (x = subject's left), (1, 0, 0) for
    # the right.
    f = unit(bend_dir - dot(bend_dir, u) * u)
    medial = mirrored(u[0]) * u + mirrored(f[0]) * f
    medial[0, ..., 0] -= 1.0
    medial[0, ..., 1] += 1.0
    medial = unit(medial)
    s = np.radians(swivel_deg)
    sin_s, cos_s = np.sin(s), np.cos(s)
    # Structural alignment: a constant medial knee offset giving the FPPA `structural_deg` in full extension.
    offset = np.tan(np.radians(structural_deg)) * thigh * shank / (thigh + shank)
    # The knee sits `offset` medial of the swivelled bend direction, at the distance along it that keeps both bones
    # their length (|b d + offset m|^2 = height^2, d = f cos s + m sin s). A leg too straight for its offset gets
    # the nearest point; adding the offset to the circle's point instead lengthened the thigh by up to 9 mm where
    # a large swivel met a deep bend.
    out_of_plane = np.sqrt(np.maximum(height**2 - (offset * cos_s) ** 2, 0.0)) - offset * sin_s
    return hip + u * along + f * (out_of_plane * cos_s) + medial * (out_of_plane * sin_s + offset)


def build_joints(m: dict, g: dict, p: dict, emit: frozenset[str] | None = None) -> np.ndarray:
    """Generator joints `(n, T, len(built_joints(emit)), 3)` from a programme bent by the mechanisms (adds the
    knees' bend directions `(3, n, T, 2)` to `m` as "knee_bend").

    `emit` (default: all) names the joints the caller reads: face and hand points outside it are not built
    (a layout without them never shows them); see `built_joints`.
    """
    n, T = m["depth"].shape
    names = built_joints(emit)
    column = {name: k for k, name in enumerate(names)}
    out = np.empty((n, T, len(names), 3), dtype=FLOAT)  # every column is written below
    wanted = column.__contains__

    def put(name: str, v: np.ndarray) -> None:  # `(3, n, T)`; one (n, T) plane at a time: the fastest copy
        for c in range(3):
            out[:, :, column[name], c] = v[c]

    def put_pair(part: str, v: np.ndarray) -> None:  # left and right `(3, n, T, 2)`
        for k, side in enumerate(("left", "right")):
            put(f"{side}_{part}", v[..., k])

    thigh, shank = g["thigh"][..., None], g["shank"][..., None]  # (n, 1, 1)
    kind = m["kind"][:, None, :]  # (n, 1, 2)
    free = np.repeat(kind == FREE, T, axis=1)  # (n, T, 2): full masks keep np.where on the fast path

    progression = p["foot_progression"] + m["foot_abduction"]  # rearfoot (n, T, 2); pronation abducts it
    forward, lateral = foot_frame(progression)
    # The forefoot keeps the design progression: one frame per trial, broadcast over time.
    fore_forward, fore_lateral = foot_frame(p["foot_progression"])
    rel = ankle_from_ball(g, forward, lateral, m["rho"], m["eversion"], m["navicular_drop"])
    ball = np.moveaxis(m["ball"], -1, 0)
    ankle = ball + rel

    # Pelvis orientation: obliquity from the mechanisms, rotation in gait (anterior tilt moves no joint here).
    # Hip offsets from the pelvis centre: (+-w/2, 0, 0) through Rz(rotation) Ry(obliquity) Rx(tilt); the tilt
    # leaves the hip axis alone, so the offset is w/2 times Rz Ry's first column.
    rot, obl = np.radians(m["pelvis_rot"]), np.radians(m["pelvic_obliquity"])
    hip_axis = vec(np.cos(rot) * np.cos(obl), np.sin(rot) * np.cos(obl), -np.sin(obl))  # (3, n, T)
    half_pelvis = hip_axis * (0.5 * g["hip_width"])  # pelvis centre to the left hip
    hip_off = limbs(half_pelvis, -half_pelvis)  # (3, n, T, 2)

    theta = np.radians(m["theta"])
    tilt_shank = np.radians(m["shank_tilt"] if "shank_tilt" in m else m["beta_ratio"] * m["theta"])
    chain_forward = shank * np.sin(tilt_shank) - thigh * np.sin(theta - tilt_shank)  # hip ahead of ankle
    chain_len2 = thigh**2 + shank**2 + 2.0 * thigh * shank * np.cos(theta)
    w = np.where(np.repeat(kind == CHAIN, T, axis=1), m["weight"], 0.0)
    wsum = w[..., 0] + w[..., 1]
    chained = wsum > 0
    weighted = lambda per_limb: (per_limb[..., 0] * w[..., 0] + per_limb[..., 1] * w[..., 1]) / np.maximum(wsum, 1e-9)  # noqa: E731
    pelvis = np.zeros((3, n, T), dtype=FLOAT)
    pelvis[0] = m["pelvis_x"]
    pelvis[1] = np.where(chained, weighted(ankle[1] - chain_forward - hip_off[1]), m["pelvis_y"])
    dx = limbs(pelvis[0], pelvis[0]) + hip_off[0] - ankle[0]
    dy = limbs(pelvis[1], pelvis[1]) + hip_off[1] - ankle[1]
    rise = np.sqrt(np.maximum(chain_len2 - dx**2 - dy**2, 1e-4))
    pz_chain = weighted(ankle[2] + rise - hip_off[2])
    # Gait: designed pelvis height, lowered where a stance leg could not reach its planted foot.
    # A walker's swing foot in its last half holds the pelvis down as a stance leg does: otherwise the pelvis dropped
    # 2-4 cm in one frame at heel strike, onto a leg it could not reach before.
    stance = (m["planted"] | m["landing"]) & ~free
    reach_z = ankle[2] + np.sqrt(np.maximum((m["stance_reach"] * (thigh + shank)) ** 2 - dx**2 - dy**2, 1e-4)) - hip_off[2]
    limit = np.where(stance, reach_z, 10.0)
    pz_gait = np.fmin(m["pelvis_z"], np.minimum(limit[..., 0], limit[..., 1]))  # pelvis_z is NaN outside gait
    pelvis[2] = np.where(chained, pz_chain, pz_gait)
    hips = limbs(pelvis + half_pelvis, pelvis - half_pelvis)

    # Held legs: forward kinematics from hip flexion and knee flexion (foot hanging, plantar-flexed); a held
    # foot stays off the floor: the knee bends further where the design would put it through.
    hip_flex = np.radians(m["free_hip_flex"])
    knee_free = hips + unit(vec(mirrored(np.full_like(hip_flex, 0.05)), -np.sin(hip_flex), -np.cos(hip_flex))) * thigh
    lowest = g["ankle_height"][..., None] + 0.06
    theta_free = np.maximum(theta, hip_flex + np.arccos(np.clip((knee_free[2] - lowest) / shank, -1.0, 1.0)))
    shank_angle = hip_flex - theta_free
    ankle_free = knee_free + vec(0.0, -np.sin(shank_angle), -np.cos(shank_angle)) * shank
    # Airborne (swing, flight) feet out of the leg's reach are drawn toward the hip; planted ones never move.
    reach = ankle - hips
    pulled = hips + reach * np.minimum(1.0, 0.998 * (thigh + shank) / np.maximum(norm(reach), 1e-9))
    airborne = ~m["planted"]
    ankle = np.where(free, ankle_free, np.where(airborne, pulled, ankle))
    ball = np.where(free | airborne, ankle - rel, ball)

    # Knees track between straight ahead and the toes (half the foot progression); kept in `m` for
    # `resolve_knees`.
    bend = m["knee_bend"] = foot_forward(0.5 * progression + p["knee_track"])
    knee = knee_ik(hips, ankle, thigh, shank, bend, m["swivel"], p["structural_valgus"])
    knee = np.where(free, knee_free, knee)

    put_pair("hip", hips)
    put_pair("knee", knee)
    put_pair("ankle", ankle)
    for name, points in foot_points(g, ball, forward, lateral, fore_forward, fore_lateral, m["rho"], m["eversion"]).items():
        put_pair(name, points)
    put("mid_hip", pelvis)

    # Trunk: forward lean and lean over the stance leg, half the pelvis rotation. Its frame's axes in world
    # coordinates, `(3, n, T)` each: a fixed trunk-frame vector v maps to v0 * ex + v1 * ey + v2 * ez.
    tz, ty, tx = np.radians(0.5 * m["pelvis_rot"]), np.radians(m["trunk_lateral"]), np.radians(m["trunk_fwd"])
    trunk_trig = zyx_trig(tz, ty, tx)
    ex, ey, ez = (rotate(axis, trunk_trig) for axis in np.eye(3, dtype=FLOAT))
    scale = g["height"] / 1.75
    neck = pelvis + g["trunk"] * ez
    put("neck", neck)
    if wanted("spine"):
        put("spine", pelvis + 0.5 * g["trunk"] * ez)
    for name, (v0, v1, v2) in HEAD_POINTS.items():
        if wanted(name):
            put(name, neck + scale * (v0 * ex + v1 * ey + v2 * ez))

    # Arms, both sides at once (limbs on the last axis); neck = shoulder midpoint, as estimators place it.
    a, e = np.radians(m["arm_flex"]), np.radians(m["elbow_flex"])
    limb_trig = tuple(limbs(t, t) for t in trunk_trig)
    half_shoulders = ex * (0.5 * g["shoulder_width"])
    shoulder = limbs(neck + half_shoulders, neck - half_shoulders)
    upper = rotate(unit(vec(mirrored(np.full_like(a, 0.12)), -np.sin(a), -np.cos(a))), limb_trig)
    lower = rotate(unit(vec(-0.25 * mirrored(np.sin(e)), -np.sin(a + e), -np.cos(a + e))), limb_trig)
    elbow = shoulder + upper * g["upper_arm"][..., None]
    wrist = elbow + lower * g["forearm"][..., None]
    put_pair("shoulder", shoulder)
    put_pair("elbow", elbow)
    put_pair("wrist", wrist)
    for part, reach, offset in (("pinky", 0.07, 0.02), ("index", 0.08, -0.01), ("thumb", 0.04, -0.03)):
        for k, side in enumerate(("left", "right")):
            if wanted(f"{side}_{part}"):
                point = wrist[..., k] + reach * lower[..., k]
                point[0] += offset * LIMB_SIGN[k]  # across the hand, towards the little finger for +offset
                put(f"{side}_{part}", point)
    return out


HIPS, KNEES, ANKLES = ([J[f"left_{part}"], J[f"right_{part}"]] for part in ("hip", "knee", "ankle"))


def resolve_knees(joints, chained, knee_bend, thigh, shank, swivel_deg, structural_deg) -> None:
    """Re-solve, in place, the knees of `joints` `(N, K, 3)` (canonical joints first) for a new medial
    swivel `(N, 2)`.

    Frames may come from several trials stacked (per-frame `thigh`, `shank` `(N, 1)`, `structural_deg` and
    `chained` `(N, 2)`, `knee_bend` `(3, N, 2)`): the knee is the only joint the swivel moves, so hips and
    ankles stay and only limbs solved from hip and ankle (`chained`, not held free) change.
    """
    hips, ankles = np.moveaxis(joints[:, HIPS], -1, 0), np.moveaxis(joints[:, ANKLES], -1, 0)
    knee = np.moveaxis(knee_ik(hips, ankles, thigh, shank, knee_bend, swivel_deg, structural_deg), 0, -1)
    joints[:, KNEES] = np.where(chained[..., None], knee, joints[:, KNEES])


def standing_fppa_reference(g: dict, p: dict) -> np.ndarray:
    """Knee position of a quiet standing pose (no load, no swivel) as a canonical frame `(n, 1, 20, 3)`.

    FPPA measured on it gives each limb's static alignment, against which the loaded peak is compared.
    """
    n = len(g["thigh"])
    thigh, shank = g["thigh"][..., None], g["shank"][..., None]
    half = 0.5 * g["hip_width"][..., None] * LIMB_SIGN  # (n, 1, 2)
    stance = half * p["stance_ratio"][..., None]
    hips = vec(half, 0.0, np.sqrt((thigh + shank) ** 2 * 0.995 - (stance - half) ** 2))
    ankles = vec(stance, 0.0, 0.0)
    forward = foot_forward(0.5 * p["foot_progression"] + p["knee_track"])
    knee = knee_ik(hips, ankles, thigh, shank, forward, np.zeros((n, 1, 2), dtype=FLOAT), p["structural_valgus"])
    frame = np.zeros((n, 1, len(CANONICAL_JOINTS), 3), dtype=FLOAT)
    for index, points in ((HIPS, hips), (KNEES, knee), (ANKLES, ankles)):
        frame[:, :, index] = np.moveaxis(points, 0, -1)
    return frame
