"""Real 3D motion seen through the project's camera and a pose estimator's error: views the generator did
not write.

`athlete_frame` moves a 3D recording into the generator's world (origin on the floor under the mean mid-hip,
the subject facing -y with their left at +x, +z up); `render` then projects it through the generator's own
pinhole camera (`valgusml.synth.observation.camera_matrices`) at any yaw: 0 in front, ±180 behind, ±90 at the
side. A view from behind mirrors left and right *in the image* (the subject's left appears on the image left);
the keypoints keep their anatomical names, as pose estimators label them.

The generic estimator error (`estimator_error`) is a per-recording joint-centre offset plus AR(1) jitter
correlated over ~0.1 s, in metres before projection, so every view sees the same body error (as a real
estimator on synchronised cameras would not quite, which is the conservative choice for a view-spread
measure). `render_through` films the motion through one of the generator's pose-estimator families instead
(`valgusml.synth.estimators`: its offsets, jitter, dropouts and outliers, the knee's pull towards the hip-ankle
line, smoothing, far-leg occlusion, left/right swaps), as the generator makes its own 2D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from valgusml.errors import ConfigError
from valgusml.features.geometry import frontal_axes
from valgusml.skeleton import canonical_index
from valgusml.synth.observation import AIM_HEIGHT_FRACTION, camera_matrices, observe_points, swap_index

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


@dataclass
class _FilmedAthlete:
    height_m: float
    estimator_offsets_m: np.ndarray  # (offset groups, 3): unit direction x position in the preset's range


@dataclass
class _FilmedTrial:
    """What `observe_points` reads of a generated trial, for a real recording."""

    rng: np.random.Generator
    n_frames: int
    fps: float
    athlete: _FilmedAthlete


def framing_distance_m(world: np.ndarray, yaw_deg: float, view: ViewSpec | None = None,
                       aim_height_m: float = 1.0) -> float:
    """How far from the athlete `view`'s camera (at `yaw_deg`, aimed `aim_height_m` above the floor) must stand
    so that a recording that travels (a walk towards it) stays whole in the frame, as the generator's cameras
    keep walkers in theirs: at least `view.distance_m`, and from the body's nearest point far enough for the floor
    and the top of the body (x 1.1: the head) to lie within 95% of the image height."""
    view = view or ViewSpec(yaw_deg)
    yaw = math.radians(yaw_deg)
    towards = world[..., :2] @ np.array([math.sin(yaw), -math.cos(yaw)])  # every point, along the line to the camera
    top = 1.1 * float(np.nanpercentile(world[..., 2], 99.0))
    nearest = view.focal_px * max(aim_height_m, top - aim_height_m) / (0.95 * 0.5 * view.height)
    return max(view.distance_m, nearest + float(np.nanmax(towards)))


@cache
def _filming_config(family: str) -> Any:
    from valgusml.synth import generator_config
    from valgusml.synth.estimators import FAMILIES

    if family not in FAMILIES:
        raise ConfigError(f"unknown pose-estimator family {family!r}; expected one of {sorted(FAMILIES)}")
    return generator_config("realistic", **{"noise.families": {family: 1.0}, "observation.dims": 2,
                                            "observation.skeleton": "canonical"})


def render_through(world: np.ndarray, fps: float, view: ViewSpec, family: str, seed: int,
                   aim_height_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels `(T, J, 2)` (y down; NaN where the estimator loses a point or it leaves the image) and
    confidence `(T, J)` of canonical world points `(T, J, 3)` filmed by `view`'s camera through the pose-estimator
    `family` (`valgusml.synth.estimators.FAMILIES`) at the realistic preset's error sizes; deterministic in `seed`."""
    from valgusml.synth.athletes import OFFSET_GROUPS

    cfg = _filming_config(family)
    rng = np.random.default_rng(seed)
    # An athlete's own offset directions, drawn as `synth.athletes.sample_athlete` draws them.
    offsets = rng.standard_normal((len(OFFSET_GROUPS), 3))
    offsets /= np.linalg.norm(offsets, axis=1, keepdims=True)
    offsets *= rng.random((len(OFFSET_GROUPS), 1))
    # `observe_points` aims the camera at this share of the athlete's height: the height that aims it where
    # `render` does.
    athlete = _FilmedAthlete(aim_height_m / AIM_HEIGHT_FRACTION, offsets)
    trial = _FilmedTrial(rng, len(world), float(fps), athlete)
    # The estimator's smoothing would carry a gap of the recording on to every later frame: it films the motion
    # bridged over its gaps, and what the recording lacks stays missing.
    missing = ~np.isfinite(world).all(axis=-1)
    points, confidence, swap, _, _ = observe_points(cfg, [trial], _bridged(world)[None], cameras=[view.camera()])
    pixels, confidence = points[0], confidence[0]
    pixels[missing], confidence[missing] = np.nan, 0.0
    if swap[0].any():
        flip = swap_index("canonical")
        pixels[swap[0]] = pixels[swap[0]][:, flip]
        confidence[swap[0]] = confidence[swap[0]][:, flip]
    return pixels, confidence


def _bridged(world: np.ndarray) -> np.ndarray:
    """`(T, J, 3)` float32 with each joint's missing frames filled linearly from its seen ones (held at the
    ends); a joint never seen stays NaN."""
    out = np.asarray(world, dtype=np.float32).copy()
    frames = np.arange(len(out))
    for j in range(out.shape[1]):
        seen = np.isfinite(out[:, j]).all(axis=-1)
        if seen.any() and not seen.all():
            for c in range(3):
                out[~seen, j, c] = np.interp(frames[~seen], frames[seen], out[seen, j, c])
    return out


def check_estimators(names: Sequence[str]) -> None:
    """ConfigError unless every name is `generic` or a pose-estimator family of the generator."""
    from valgusml.synth.estimators import FAMILIES

    unknown = [name for name in names if name != "generic" and name not in FAMILIES]
    if unknown:
        raise ConfigError(f"estimators {unknown} unknown; expected generic or one of {sorted(FAMILIES)}")


def film(world: np.ndarray, fps: float, yaws: Sequence[float], estimator: str = "generic", seed: int = 0,
         jitter_m: float = 0.004) -> list[tuple[np.ndarray, np.ndarray | None, ViewSpec]]:
    """Canonical world points `(T, J, 3)` filmed from each of `yaws` by one estimator with one body error
    (`seed`): per yaw, pixels `(T, J, 2)`, confidence (None for the generic error) and the camera. `generic`:
    `estimator_error` (`seed`, `jitter_m`), drawn once and seen by every view, at the default distance; a
    family: `render_through`, the camera stood back as far as `framing_distance_m` says (an estimator loses what
    leaves the image)."""
    if estimator == "generic":
        noisy = world + estimator_error(world.shape[:2], fps, seed=seed, jitter_m=jitter_m)
        views = [ViewSpec(yaw_deg=yaw) for yaw in yaws]
        return [(render(noisy, view).astype(np.float32), None, view) for view in views]
    out = []
    for yaw in yaws:
        view = ViewSpec(yaw_deg=yaw, distance_m=framing_distance_m(world, yaw))
        out.append((*render_through(world, fps, view, estimator, seed), view))
    return out
