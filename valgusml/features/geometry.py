"""Geometry shared by every measure: frontal-plane views of 2D/3D keypoints and the FPPA.

All functions take canonical keypoints `(T, J, 2|3)` (see `valgusml.skeleton`) and return NaN where a needed
joint is missing, never raise on missing data.
"""

from __future__ import annotations

import numpy as np

from valgusml.labels import LIMBS
from valgusml.skeleton import canonical_index

UP = np.array([0.0, 0.0, 1.0])


def _joint(keypoints: np.ndarray, name: str) -> np.ndarray:
    return keypoints[:, canonical_index(name)].astype(np.float64)


def frontal_axes(keypoints3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame unit vectors `(T, 3)`: the subject's left (horizontal, from the hips) and forward.

    The direction is smoothed over the whole recording (median) so a single bad frame cannot flip the view.
    """
    left = _joint(keypoints3d, "left_hip") - _joint(keypoints3d, "right_hip")
    left[:, 2] = 0.0
    finite = np.isfinite(left).all(axis=1)
    if not finite.any():
        return np.full_like(left, np.nan), np.full_like(left, np.nan)
    left_dir = np.median(left[finite], axis=0)
    left_dir /= np.linalg.norm(left_dir) + 1e-12
    forward = np.cross(left_dir, UP)
    n = len(keypoints3d)
    return np.tile(left_dir, (n, 1)), np.tile(forward, (n, 1))


def frontal_projection(keypoints3d: np.ndarray) -> np.ndarray:
    """Orthographic front view of 3D keypoints as image-like 2D `(T, J, 2)`: x = subject's left, y = down.

    Seen from the front, the subject's left appears on the viewer's right, as in a video of a person facing
    the camera, so 2D features apply unchanged.
    """
    left_dir, _ = frontal_axes(keypoints3d)
    x = np.einsum("tjc,tc->tj", keypoints3d.astype(np.float64), left_dir)
    y = -keypoints3d[..., 2].astype(np.float64)
    return np.stack([x, y], axis=-1)


def as_frontal_2d(keypoints: np.ndarray) -> np.ndarray:
    """2D keypoints pass through; 3D ones are projected on the subject's frontal plane."""
    return keypoints.astype(np.float64) if keypoints.shape[-1] == 2 else frontal_projection(keypoints)


def fppa_deg(keypoints: np.ndarray) -> np.ndarray:
    """Frontal plane projection angle per limb over time, `(T, 2)` for (left, right), in degrees.

    The angle between the thigh (hip→knee) and shank (knee→ankle) in the frontal view, positive when the knee
    lies medial to the hip–ankle line (towards the other hip), negative for varus. Only the hips, knees and
    ankles are read.
    """
    kp = keypoints if keypoints.shape[-1] == 2 else frontal_projection(keypoints)
    x, y = {}, {}
    for part in ("hip", "knee", "ankle"):
        points = np.stack([_joint(kp, f"{side}_{part}") for side in LIMBS], axis=1)  # (T, 2 limbs, 2)
        x[part], y[part] = points[..., 0], points[..., 1]
    return limb_fppa_deg(x["hip"], y["hip"], x["knee"], y["knee"], x["ankle"], y["ankle"])


def limb_fppa_deg(hip_x, hip_y, knee_x, knee_y, ankle_x, ankle_y) -> np.ndarray:
    """`fppa_deg` from frontal-view coordinates, each `(T, 2)` for the (left, right) limb: the form callers
    that already hold coordinates use (per-frame measures, the generator's labels)."""
    medial_x, medial_y = hip_x[:, ::-1] - hip_x, hip_y[:, ::-1] - hip_y  # towards the other hip
    thigh_x, thigh_y = knee_x - hip_x, knee_y - hip_y
    shank_x, shank_y = ankle_x - knee_x, ankle_y - knee_y
    line_x, line_y = ankle_x - hip_x, ankle_y - hip_y
    # atan2 of the 2D cross and dot products: the unsigned angle, accurate near 0 where arccos is not.
    angle = np.degrees(np.arctan2(np.abs(thigh_x * shank_y - thigh_y * shank_x), thigh_x * shank_x + thigh_y * shank_y))
    # Medial when the knee and the other hip lie on the same side of the hip-ankle line.
    knee_side = line_x * thigh_y - line_y * thigh_x
    medial_side = line_x * medial_y - line_y * medial_x
    sign = np.sign(knee_side * medial_side)
    sign[sign == 0] = 1.0
    return sign * angle
