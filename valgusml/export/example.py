"""A small, deterministic squat recording in any supported skeleton (numpy only).

Used as the MLflow model's input example, by the tests and by the benchmark: it passes every input check
(hips, knees, ankles and feet present) without needing the synthetic generator or a data set. The motion is
the one behind `data/samples/` (`valgusml.io.samples`), seen by the same frontal camera.
"""

from __future__ import annotations

import numpy as np

from valgusml.io.samples import project, squat_points
from valgusml.skeleton import get_skeleton

MAX_VALGUS_M = 0.05  # medial drift of the right knee at the bottom of the squat when valgus=1


def example_keypoints(
    skeleton: str = "halpe26",
    seconds: float = 3.0,
    fps: float = 60.0,
    valgus: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """`(T, J, 2)` float32 image keypoints (pixels, y down) of one bilateral squat; `valgus` (0-1) draws the
    right knee inwards at depth; `seed` draws sub-pixel jitter so that several examples differ."""
    joints = get_skeleton(skeleton).joints
    n_frames = max(2, int(round(seconds * fps)))
    points = squat_points(n_frames, valgus_m=MAX_VALGUS_M * valgus)
    keypoints = project(np.stack([points[j] for j in joints], axis=1))
    keypoints += np.random.default_rng(seed).normal(0.0, 0.6, keypoints.shape)
    return keypoints.astype(np.float32)
