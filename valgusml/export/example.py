"""A small, deterministic squat recording in any supported skeleton (numpy only).

Used as the MLflow model's input example, by the tests and by the benchmark: it passes every input check
(hips, knees, ankles and feet present) without needing the synthetic generator or a data set.
"""

from __future__ import annotations

import numpy as np

from valgusml.skeleton import get_skeleton

# Standing pose in image units (x to the viewer's right, y down), subject facing the camera: the subject's
# left side appears on the viewer's right (+x). Heights are fractions of body height from the top of the head.
_HEIGHT = {
    "nose": 0.06, "eye": 0.05, "ear": 0.06, "mouth": 0.08, "head": 0.0, "neck": 0.15, "shoulder": 0.18,
    "elbow": 0.38, "wrist": 0.52, "pinky": 0.56, "index": 0.57, "thumb": 0.55, "hip": 0.52, "mid_hip": 0.52,
    "knee": 0.73, "ankle": 0.95, "heel": 0.97, "big_toe": 0.99, "small_toe": 0.99, "foot_index": 0.99,
}
_HALF_WIDTH = {
    "eye": 0.02, "ear": 0.04, "mouth": 0.02, "shoulder": 0.11, "elbow": 0.13, "wrist": 0.14, "pinky": 0.14,
    "index": 0.14, "thumb": 0.13, "hip": 0.08, "knee": 0.08, "ankle": 0.08, "heel": 0.08, "big_toe": 0.07,
    "small_toe": 0.11, "foot_index": 0.07,
}


def _part(joint: str) -> tuple[float, str]:
    for side, sign in (("left_", 1.0), ("right_", -1.0)):
        if joint.startswith(side):
            part = joint[len(side):]
            return sign, part.split("_")[0] if part.startswith(("eye", "mouth")) else part
    if joint.startswith("mouth"):
        return (1.0 if joint.endswith("left") else -1.0), "mouth"
    return 0.0, joint


def example_keypoints(
    skeleton: str = "halpe26",
    seconds: float = 3.0,
    fps: float = 60.0,
    valgus: float = 0.0,
    height_px: float = 600.0,
    seed: int = 0,
) -> np.ndarray:
    """`(T, J, 2)` float32 image keypoints of one bilateral squat; `valgus` (0-1) draws the knees inwards."""
    skel = get_skeleton(skeleton)
    rng = np.random.default_rng(seed)
    n = max(2, int(round(seconds * fps)))
    phase = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # 0 standing → 1 bottom → 0
    out = np.zeros((n, skel.n_joints, 2), np.float32)
    for k, joint in enumerate(skel.joints):
        sign, part = _part(joint)
        height = _HEIGHT.get(part, 0.3)
        x = sign * _HALF_WIDTH.get(part, 0.0)
        y = np.full(n, height)
        if part in ("knee",):
            x = x - sign * valgus * 0.05 * phase  # medial = towards the midline
        if height < 0.9:  # everything above the ankles sinks with the squat
            y = y + 0.12 * phase * (height / 0.73 if height < 0.73 else 1.0)
        out[:, k, 0] = 400.0 + height_px * x
        out[:, k, 1] = 50.0 + height_px * y
    out += rng.normal(0.0, 0.6, out.shape).astype(np.float32)
    return out
