"""Root-relative keypoints put back on the ground: the body's own motion rebuilt from its planted foot.

A monocular 3D lifter (MediaPipe's world landmarks, VideoPose3D, MotionBERT) writes every frame with the hips'
centre at the origin. The pose is there, the body's motion is not: a squat's descent shows as the feet rising
towards the pelvis, a walk's travel as the feet sliding back and forth. The model and the rule read the motion
(which foot is planted, how far the pelvis drops, where the stances are), so the task, the scored phase and the
standing reference all go wrong: the shipped 3D squat's valgus right knee read 1.00 in world coordinates and
0.04 root-relative.

The motion is rebuilt as a person moves: the lower foot stays where it is while it carries the body. Each run
of frames with one foot lower holds that foot's centre (mean of its seen ankle, heel and toe points) at one
place, and the body is translated around it; when the other foot takes over, it is held from where it is at
that moment, so the body never jumps. What cannot come back: a flight phase (no foot carries the body; a jump
reads as if the feet stayed on the ground) and the drift of a planted foot's own jitter, which the body takes
on instead.
"""

from __future__ import annotations

import numpy as np

from valgusml.features.phases import foot_centres
from valgusml.labels import LIMBS
from valgusml.skeleton import canonical_index

_LEG = tuple((canonical_index(f"{side}_hip"), canonical_index(f"{side}_ankle")) for side in LIMBS)
# The other foot takes over once it is this much lower (a share of the hip-to-ankle length): without the margin,
# double support's jitter hands the body from foot to foot at every frame.
HANDOVER_MARGIN = 0.03


def _leg_length(keypoints: np.ndarray) -> float:
    lengths = [np.linalg.norm(keypoints[:, hip] - keypoints[:, ankle], axis=-1) for hip, ankle in _LEG]
    finite = np.concatenate(lengths)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if len(finite) else float("nan")


def planted_foot_offsets(keypoints: np.ndarray) -> np.ndarray:
    """`(T, C)` translation that, added to each frame of canonical `(T, J, C)` keypoints (3D +z up, or 2D image
    y down), holds the lower foot still while it is the lower one (see the module docstring). Zero where no
    foot is seen until one is; a frame without a seen foot keeps the translation before it."""
    kp = np.asarray(keypoints, dtype=np.float64)
    n_frames, dims = len(kp), kp.shape[-1]
    centres = foot_centres(kp)
    height = centres[..., 2] if dims == 3 else -centres[..., 1]  # (T, 2): larger is higher
    margin = HANDOVER_MARGIN * _leg_length(kp)
    offsets = np.zeros((n_frames, dims))
    foot, anchor = -1, None
    for t in range(n_frames):
        seen = np.isfinite(height[t])
        if not seen.any():
            offsets[t] = offsets[t - 1] if t else 0.0
            continue
        other = 1 - foot
        if foot < 0 or not seen[foot] or (seen[other] and height[t, other] < height[t, foot] - margin):
            foot = int(np.nanargmin(np.where(seen, height[t], np.inf)))
            # the new foot is held where it is now, as the body stood a frame ago: no jump at the handover
            anchor = centres[t, foot] + (offsets[t - 1] if t else 0.0)
        offsets[t] = anchor - centres[t, foot]
    return offsets


def ground(keypoints: np.ndarray) -> np.ndarray:
    """`keypoints` with `planted_foot_offsets` added to every joint of each frame, in the input's dtype."""
    return (keypoints.astype(np.float64) + planted_foot_offsets(keypoints)[:, None, :]).astype(keypoints.dtype)


__all__ = ["HANDOVER_MARGIN", "ground", "planted_foot_offsets"]
