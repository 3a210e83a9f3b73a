"""A small hand-built motion (a bodyweight squat) in every supported layout: the source of data/samples/.

The motion is built in 3D (metres, +z up, floor at z = 0, the subject facing -y, the subject's left = +x),
with the right knee drifting 5 cm medially at depth (a clear valgus: 31.6 deg peak FPPA by the rule, the thigh
being nearly level), then seen by a frontal camera for the 2D layouts. It is deterministic and tiny so that
tests and the README can rely on it.
"""

from __future__ import annotations

import numpy as np

from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS, SKELETONS

IMAGE_WIDTH, IMAGE_HEIGHT = 1080, 1920
FOCAL_PX = 1400.0
CAMERA = np.array([0.0, -3.5, 1.0])  # in front of the subject, looking along +y


def squat_points(n_frames: int = 45, depth: float = 1.0, valgus_m: float = 0.05, x_offset: float = 0.0,
                 scale: float = 1.0) -> dict[str, np.ndarray]:
    """Named 3D points `(T, 3)` of one squat: the canonical joints plus face, hand and mid-hip points."""
    s = np.sin(np.linspace(0.0, np.pi, n_frames)) ** 2 * depth  # 0 standing → 1 bottom → 0
    shank, thigh = 0.43 * scale, 0.45 * scale
    alpha, beta = np.radians(38.0) * s, np.radians(75.0) * s  # shank forward, thigh back
    lean = np.radians(32.0) * s
    pts: dict[str, np.ndarray] = {}
    n = n_frames
    for side, sign in (("left", 1.0), ("right", -1.0)):
        x_foot = sign * 0.10 * scale + x_offset
        ankle = np.column_stack([np.full(n, x_foot), np.zeros(n), np.full(n, 0.08 * scale)])
        knee = ankle + np.column_stack([np.zeros(n), -shank * np.sin(alpha), shank * np.cos(alpha)])
        if side == "right":
            knee[:, 0] += valgus_m * s  # towards the midline (+x for the right knee)
        hip = knee + np.column_stack([np.zeros(n), thigh * np.sin(beta), thigh * np.cos(beta)])
        hip[:, 0] = sign * 0.10 * scale + x_offset
        pts[f"{side}_ankle"], pts[f"{side}_knee"], pts[f"{side}_hip"] = ankle, knee, hip
        pts[f"{side}_heel"] = ankle + [0.0, 0.06 * scale, -0.08 * scale]
        pts[f"{side}_big_toe"] = ankle + [-sign * 0.01 * scale, -0.17 * scale, -0.08 * scale]
        pts[f"{side}_small_toe"] = ankle + [sign * 0.04 * scale, -0.14 * scale, -0.08 * scale]
    mid_hip = 0.5 * (pts["left_hip"] + pts["right_hip"])
    trunk = np.column_stack([np.zeros(n), -np.sin(lean), np.cos(lean)])  # unit vector up the trunk

    def above(length: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        return mid_hip + length * scale * trunk + np.column_stack([np.full(n, dx * scale), np.full(n, dy * scale), np.zeros(n)])

    pts["neck"] = above(0.55)
    pts["nose"] = above(0.70, dy=-0.09)
    pts["head"] = above(0.80)
    pts["mid_hip"] = mid_hip
    pts["spine"] = above(0.275)  # halfway up the trunk (h36m17)
    pts["thorax"] = pts["neck"]  # h36m17's name for the neck
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = above(0.52, dx=sign * 0.19)
        pts[f"{side}_shoulder"] = shoulder
        reach = np.column_stack([np.zeros(n), -0.28 * scale * (0.3 + s), -0.26 * scale * (1.0 - s)])
        pts[f"{side}_elbow"] = shoulder + 0.5 * reach + [sign * 0.03 * scale, 0.0, 0.0]
        pts[f"{side}_wrist"] = shoulder + reach
        for name, (dx, dy, dz) in {"eye": (0.03, -0.02, 0.03), "eye_inner": (0.015, -0.02, 0.03),
                                    "eye_outer": (0.045, -0.015, 0.03), "ear": (0.075, 0.04, 0.02)}.items():
            pts[f"{side}_{name}"] = pts["nose"] + [sign * dx * scale, dy * scale, dz * scale]
        pts[f"mouth_{side}"] = pts["nose"] + [sign * 0.025 * scale, 0.0, -0.04 * scale]
        for name, (dx, dy) in {"pinky": (0.02, -0.06), "index": (-0.01, -0.08), "thumb": (-0.03, -0.05)}.items():
            pts[f"{side}_{name}"] = pts[f"{side}_wrist"] + [sign * dx * scale, dy * scale, -0.03 * scale]
        pts[f"{side}_foot_index"] = pts[f"{side}_big_toe"]
    return pts


def project(points: np.ndarray, camera: np.ndarray = CAMERA) -> np.ndarray:
    """Pinhole view from `camera` looking along +y: pixel x grows with world x, pixel y grows downwards."""
    rel = points - camera
    depth = rel[..., 1]
    u = IMAGE_WIDTH / 2 + FOCAL_PX * rel[..., 0] / depth
    v = IMAGE_HEIGHT / 2 - FOCAL_PX * rel[..., 2] / depth
    return np.stack([u, v], axis=-1)


def squat_3d(n_frames: int = 45, fps: float = 30.0) -> KeypointSequence:
    """Canonical 3D squat (metres, +z up, floor at z = 0; the toes touch the floor)."""
    pts = squat_points(n_frames)
    kp = np.stack([pts[j] for j in CANONICAL_JOINTS], axis=1)
    return KeypointSequence(kp, "canonical", fps, id="squat", athlete_id="sample_athlete", task="bilateral_squat",
                            source="sample")


def squat_2d(skeleton: str, n_frames: int = 45, fps: float = 30.0, normalized: bool = False,
             bystander: bool = False) -> list[KeypointSequence]:
    """The squat seen by a frontal camera in a 2D layout, confidence 0.9; with `bystander`, a second, smaller
    person walking behind (present in the middle third of the clip) follows as a second sequence."""
    joints = SKELETONS[skeleton].joints
    people = [squat_points(n_frames)]
    if bystander:
        far = squat_points(n_frames, depth=0.0, valgus_m=0.0, scale=0.9)
        walk = np.linspace(-1.6, -0.6, n_frames)
        people.append({k: v + np.column_stack([walk, np.full(n_frames, 3.0), np.zeros(n_frames)]) for k, v in far.items()})
    out = []
    for k, pts in enumerate(people):
        kp = project(np.stack([pts[j] for j in joints], axis=1))
        conf = np.full(kp.shape[:2], 0.9)
        if k == 1:  # the bystander is only in the middle third
            absent = np.ones(n_frames, dtype=bool)
            absent[n_frames // 3 : 2 * n_frames // 3] = False
            kp[absent], conf[absent] = np.nan, 0.0
        if normalized:
            kp = kp / np.array([IMAGE_WIDTH, IMAGE_HEIGHT])
        out.append(KeypointSequence(kp, skeleton, fps, confidence=conf, id=f"squat_{skeleton}",
                                    athlete_id="sample_athlete", task="bilateral_squat", source="sample",
                                    meta={"image_width": IMAGE_WIDTH, "image_height": IMAGE_HEIGHT,
                                          "coordinates": "normalized" if normalized else "pixel"}))
    return out
