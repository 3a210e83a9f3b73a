"""Real 3D motion seen through the project's camera and a pose estimator's error: views the generator did
not write.

`athlete_frame` moves a 3D recording into the generator's world (origin on the floor under the mean mid-hip,
the subject facing -y with their left at +x, +z up); `render` then projects it through the generator's own
pinhole camera (`valgusml.synth.observation.camera_matrices`) at any yaw: 0 in front, ±180 behind, ±90 at the
side. A view from behind mirrors left and right *in the image* (the subject's left appears on the image left);
the keypoints keep their anatomical names, as pose estimators label them.

Estimator error is a per-recording joint-centre offset plus AR(1) jitter correlated over ~0.1 s, in metres
before projection, so every view sees the same body error (as a real estimator on synchronised cameras would
not quite, which is the conservative choice for a view-spread measure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from valgusml.features.geometry import frontal_axes
from valgusml.skeleton import canonical_index
from valgusml.synth.observation import camera_matrices

_HIPS = [canonical_index("left_hip"), canonical_index("right_hip")]


@dataclass(frozen=True)
class ViewSpec:
    """A camera: yaw (degrees, 0 = in front), distance (m), height (m), focal length (px), image size."""

    yaw_deg: float
    distance_m: float = 3.5
    height_m: float = 1.0
    focal_px: float = 1400.0
    width: int = 1920
    height: int = 1080
    pitch_deg: float = 0.0

    def camera(self) -> dict:
        return {
            "yaw_deg": self.yaw_deg,
            "pitch_deg": self.pitch_deg,
            "height_m": self.height_m,
            "focal_px": self.focal_px,
            "distance_m": self.distance_m,
            "width": self.width,
            "height": self.height,
            "aim_jitter_m": [0.0, 0.0],
        }


def view_family(yaw_deg: float) -> str:
    """front (|yaw| < 50), rear (|yaw| > 130) or side."""
    a = abs(((yaw_deg + 180.0) % 360.0) - 180.0)
    return "front" if a < 50.0 else ("rear" if a > 130.0 else "side")


def athlete_frame(keypoints3d: np.ndarray) -> np.ndarray:
    """Canonical 3D keypoints `(T, J, 3)` (+z up) in the generator's world: the subject's median left along +x,
    facing -y, the floor at z = 0 and the mean mid-hip above the origin."""
    kp = np.asarray(keypoints3d, dtype=np.float64)
    left, forward = frontal_axes(kp)
    left, forward = left[0], forward[0]
    if not np.isfinite(left).all():
        raise ValueError("no frame shows both hips: the subject's frontal plane is unknown")
    # rows: new x = left, new y = -forward, new z = up
    rotation = np.stack([left, -forward, np.array([0.0, 0.0, 1.0])])
    out = kp @ rotation.T
    pelvis = np.nanmean(out[:, _HIPS, :2].reshape(-1, 2), axis=0)
    out[..., 0] -= pelvis[0]
    out[..., 1] -= pelvis[1]
    out[..., 2] -= np.nanpercentile(out[..., 2], 1.0)
    return out


def estimator_error(shape: tuple[int, int], fps: float, seed: int, jitter_m: float = 0.004,
                    offset_m: float = 0.02, time_constant_s: float = 0.1) -> np.ndarray:
    """`(T, J, 3)` metres: a fixed offset per joint (`offset_m` rms) plus AR(1) jitter (`jitter_m` rms)."""
    rng = np.random.default_rng(seed)
    n_frames, n_joints = shape
    offset = rng.normal(0.0, offset_m / math.sqrt(3.0), (1, n_joints, 3))
    rho = math.exp(-1.0 / (fps * time_constant_s))
    innovation = rng.normal(0.0, jitter_m / math.sqrt(3.0) * math.sqrt(1.0 - rho * rho), (n_frames, n_joints, 3))
    jitter = np.empty_like(innovation)
    jitter[0] = innovation[0] / math.sqrt(1.0 - rho * rho)
    for t in range(1, n_frames):
        jitter[t] = rho * jitter[t - 1] + innovation[t]
    return offset + jitter


def render(world: np.ndarray, view: ViewSpec, aim_height_m: float = 1.0) -> np.ndarray:
    """Pixels `(T, J, 2)` (y down) of world points `(T, J, 3)` seen by `view`'s camera, aimed at
    `aim_height_m` above the floor over the origin."""
    matrix = camera_matrices([view.camera()], np.array([aim_height_m]))[0]
    h = world @ matrix[:, :3].T + matrix[:, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        return h[..., :2] / h[..., 2:3]
