"""Hand-built canonical poses with known geometry, and a pinhole camera to view them in 2D.

World frame: metres, +z up, the subject facing -y, so the subject's left is +x.
"""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.skeleton import CANONICAL_JOINTS

HIP_HALF_WIDTH = 0.1
HIP_Z, KNEE_Z, ANKLE_Z = 0.9, 0.5, 0.08  # thigh 0.40 m, shank 0.42 m


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def build_pose(
    knee_medial: tuple[float, float] = (0.0, 0.0),
    right_hip_drop: float = 0.0,
    trunk_lateral: float = 0.0,
    trunk_forward: float = 0.0,
    toe_out_deg: tuple[float, float] = (0.0, 0.0),
    heel_raise: tuple[float, float] = (0.0, 0.0),
    ankle_half_width: float = HIP_HALF_WIDTH,
    flexion_deg: float = 0.0,
    lift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """One frame `(20, 3)`. `knee_medial`: metres towards the midline per (left, right) limb; negative = varus.
    `trunk_lateral` > 0 moves the neck towards the subject's left; `trunk_forward` > 0 moves it forward (-y).
    `flexion_deg` bends both knees in the sagittal plane (shank and thigh each tilt by half; the body lowers);
    `lift` raises a knee and foot off the floor (the free leg of a single-leg squat; its thigh shortens)."""
    p: dict[str, np.ndarray] = {}
    half = np.radians(flexion_deg / 2.0)
    thigh_len, shank_len = HIP_Z - KNEE_Z, KNEE_Z - ANKLE_Z
    knee_dy, knee_dz = -shank_len * np.sin(half), shank_len * np.cos(half)
    hip_dy, hip_dz = thigh_len * np.sin(half), thigh_len * np.cos(half)
    lower = HIP_Z - (ANKLE_Z + knee_dz + hip_dz)  # how far the pelvis and trunk descend
    for k, (side, s) in enumerate((("left", 1.0), ("right", -1.0))):
        ankle = np.array([s * ankle_half_width, 0.0, ANKLE_Z + lift[k]])
        hip_z = HIP_Z - lower - (right_hip_drop if side == "right" else 0.0)
        p[f"{side}_hip"] = np.array([s * HIP_HALF_WIDTH, knee_dy + hip_dy, hip_z])
        p[f"{side}_knee"] = np.array(
            [s * (HIP_HALF_WIDTH - knee_medial[k]), knee_dy, ANKLE_Z + lift[k] + knee_dz]
        )
        p[f"{side}_ankle"] = ankle
        # foot: heel behind the ankle, toes ahead (-y), turned out by toe_out_deg about the heel
        heel = ankle + np.array([0.0, 0.05, -0.05 + heel_raise[k]])
        turn = _rot_z(s * toe_out_deg[k])  # toe-out turns the left foot towards +x, the right towards -x
        p[f"{side}_heel"] = heel
        p[f"{side}_big_toe"] = heel + turn @ np.array([-s * 0.03, -0.25, -0.02 - heel_raise[k]])
        p[f"{side}_small_toe"] = heel + turn @ np.array([s * 0.03, -0.23, -0.02 - heel_raise[k]])
        p[f"{side}_shoulder"] = np.array([s * 0.18, 0.0, 1.42 - lower])
        p[f"{side}_elbow"] = np.array([s * 0.20, 0.0, 1.15 - lower])
        p[f"{side}_wrist"] = np.array([s * 0.20, 0.0, 0.90 - lower])
    p["neck"] = np.array([trunk_lateral, -trunk_forward, 1.45 - lower])
    p["nose"] = p["neck"] + np.array([0.0, -0.05, 0.2])
    return np.array([p[j] for j in CANONICAL_JOINTS])


def sequence_of(frames: list[np.ndarray] | np.ndarray) -> np.ndarray:
    return np.asarray(frames, dtype=np.float32)


def yaw(kp: np.ndarray, deg: float) -> np.ndarray:
    """Rotate the whole subject about the vertical axis (through the origin)."""
    return (kp.astype(np.float64) @ _rot_z(deg).T).astype(np.float32)


def camera_2d(
    kp: np.ndarray, yaw_deg: float = 0.0, distance: float = 4.0, height: float = 1.0, focal: float = 1200.0
):
    """Pinhole view from in front of the subject (camera yawed `yaw_deg` around them), pixels, y down."""
    a = np.radians(yaw_deg)
    cam = np.array([distance * np.sin(a), -distance * np.cos(a), height])
    target = np.array([0.0, 0.0, height])
    fwd = (target - cam) / np.linalg.norm(target - cam)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    rel = kp.astype(np.float64) - cam
    depth = rel @ fwd
    x = focal * (rel @ right) / depth + 960.0
    y = focal * (rel @ down) / depth + 540.0
    return np.stack([x, y], axis=-1).astype(np.float32)


def mirror(kp: np.ndarray) -> np.ndarray:
    """The left/right mirror image of the subject: x negated (world x or image x), left and right joints swapped."""
    from valgusml.skeleton import CANONICAL

    out = kp[:, CANONICAL.flip_index].copy()
    out[..., 0] = -out[..., 0]
    return out


def walk_with_a_low_swing(treadmill: bool) -> tuple[np.ndarray, np.ndarray]:
    """A hand-built 3D walk at 100 fps (1.2 m/s, 1-s strides): each foot flat on the floor for 0.6 s, then
    swinging forward 1.5 cm above it for 0.4 s; on a treadmill the pelvis stays put and the belt carries the
    planted foot. Returns the keypoints and each limb's place in its stride `(T, 2)` (swing from 0.6)."""
    fps, speed, n = 100.0, 1.2, 300
    cycle = (np.arange(n)[:, None] / fps + np.array([0.0, 0.5])) % 1.0
    pelvis_y = np.zeros(n) if treadmill else -speed * np.arange(n) / fps  # walking towards -y
    kp = np.zeros((n, len(CANONICAL_JOINTS), 3))
    for k, (side, x) in enumerate((("left", 0.1), ("right", -0.1))):
        swing = cycle[:, k] >= 0.6
        # the foot against the pelvis: backward at walking speed in stance, forward over the step in swing
        ahead = np.where(swing, -0.36 + 0.72 * (cycle[:, k] - 0.6) / 0.4, 0.36 - speed * cycle[:, k])
        ankle = np.stack([np.full(n, x), pelvis_y - ahead, 0.08 + np.where(swing, 0.015, 0.0)], axis=1)
        hip = np.stack([np.full(n, x), pelvis_y, np.full(n, 0.9)], axis=1)
        bend = np.where(swing, 0.15, 0.03)  # the knee ahead of the hip-ankle line: bent in swing
        knee = 0.5 * (hip + ankle) + np.stack([np.zeros(n), -bend, np.zeros(n)], axis=1)
        for part, point in (("hip", hip), ("knee", knee), ("ankle", ankle), ("heel", ankle + [0.0, 0.05, -0.065]),
                            ("big_toe", ankle + [-0.02, -0.18, -0.065]), ("small_toe", ankle + [0.02, -0.16, -0.065])):
            kp[:, CANONICAL_JOINTS.index(f"{side}_{part}")] = point
    for name, z in (("neck", 1.45), ("nose", 1.6), ("left_shoulder", 1.42), ("right_shoulder", 1.42)):
        kp[:, CANONICAL_JOINTS.index(name)] = np.stack([np.zeros(n), pelvis_y, np.full(n, z)], axis=1)
    return kp, cycle


@pytest.fixture
def poses():
    class Poses:
        build = staticmethod(build_pose)
        seq = staticmethod(sequence_of)
        yaw = staticmethod(yaw)
        camera = staticmethod(camera_2d)
        mirror = staticmethod(mirror)
        walk = staticmethod(walk_with_a_low_swing)

    return Poses
