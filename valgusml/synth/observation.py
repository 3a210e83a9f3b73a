"""Observation model: pose-estimator error, a pinhole camera, and emission in any skeleton layout.

Errors follow BIOMECH.md (Needham 2021; Ino 2024): systematic joint-centre offsets per athlete (hips and knees
30-50 mm, ankles 1-15 mm), jitter correlated in time, feet noisier than hips, bursts of dropouts with low
confidence (some emitted as NaN), and rare bursts of left/right leg swaps. They are applied in world metres,
so 2D and 3D outputs share them; 2D goes through a pinhole camera (yaw, pitch, height, field of view,
resolution) and comes out in pixels with y down.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.signal import lfilter

from valgusml.skeleton import get_skeleton
from valgusml.synth.athletes import OFFSET_GROUPS, uniform
from valgusml.synth.config import GeneratorConfig
from valgusml.synth.kinematics import JOINTS

_FOOT_PARTS = ("heel", "big_toe", "small_toe")


def _group_of(joint: str) -> str:
    for side in ("left", "right"):
        if joint in (f"{side}_hip", f"{side}_knee", f"{side}_ankle"):
            return joint
        if joint in tuple(f"{side}_{p}" for p in _FOOT_PARTS):
            return f"{side}_foot"
    return "upper"


GROUP_INDEX = np.array([OFFSET_GROUPS.index(_group_of(j)) for j in JOINTS])
IS_FOOT = np.array([_group_of(j).endswith("_foot") or j.endswith("_ankle") for j in JOINTS])
_LEG_PARTS = ("hip", "knee", "ankle", *_FOOT_PARTS)


@cache
def layout_index(skeleton: str) -> np.ndarray:
    """For each joint of `skeleton`, its index among the generator's joints: the inverse of the canonical
    mapping (`mediapipe33`'s foot_index is the big toe; mid-hips are the pelvis centre)."""
    skel = get_skeleton(skeleton)
    inverse = {src: canon for canon, src in skel.to_canonical.items() if isinstance(src, str)}
    out = []
    for joint in skel.joints:
        name = inverse.get(joint, joint)
        if name not in JOINTS:
            raise KeyError(f"generator cannot emit joint {joint!r} of skeleton {skeleton!r}")
        out.append(JOINTS.index(name))
    return np.asarray(out)


def _population_directions() -> np.ndarray:
    """Fixed unit direction per offset group, mirrored between left and right (design choice)."""
    rng = np.random.default_rng(20211)  # a constant: the bias of "the" pose estimator, not of a dataset
    out = np.zeros((len(OFFSET_GROUPS), 3))
    for k, group in enumerate(OFFSET_GROUPS):
        if group.startswith("right_"):
            continue
        v = rng.standard_normal(3)
        out[k] = v / np.linalg.norm(v)
        if group.startswith("left_"):
            out[OFFSET_GROUPS.index("right_" + group[5:])] = out[k] * np.array([-1.0, 1.0, 1.0])
    return out


POPULATION_DIRECTIONS = _population_directions()


def offset_magnitudes_m(cfg: GeneratorConfig) -> np.ndarray:
    n = cfg.noise
    ranges = {
        "hip": n.hip_knee_offset_mm, "knee": n.hip_knee_offset_mm, "ankle": n.ankle_offset_mm,
        "foot": n.foot_offset_mm, "upper": n.upper_offset_mm,
    }
    lows, highs = [], []
    for group in OFFSET_GROUPS:
        lo, hi = ranges[group.split("_")[-1]]
        lows.append(lo)
        highs.append(hi)
    return 1e-3 * np.array(lows), 1e-3 * np.array(highs)


def estimator_noise(cfg: GeneratorConfig, trials: list, n_frames: int, joints: np.ndarray):
    """Pose-estimator error for a batch of trials, padded to `n_frames`, for generator joints `joints`.

    Returns world error `(n, T, K, 3)` metres, confidence `(n, T, K)`, NaN mask `(n, T, K)` and left/right
    swap mask `(n, T)`. Random draws come from each trial's own stream, in a fixed order; the heavy work
    (filtering, scattering bursts) is done once for the batch.
    """
    ncfg = cfg.noise
    n, K = len(trials), len(joints)
    lows, highs = offset_magnitudes_m(cfg)
    foot = IS_FOOT[joints]
    white = np.zeros((n, n_frames + 1, K * 3), dtype=np.float32)  # float32: noise needs no more
    confidence = np.empty((n, n_frames, K), dtype=np.float32)
    systematic = np.empty((n, K, 3))
    burst_rows: list[tuple[np.ndarray, ...]] = []
    swap = np.zeros((n, n_frames), dtype=bool)
    burst_lo, burst_hi = ncfg.dropout_burst_s
    group_index = GROUP_INDEX[joints]
    per_athlete: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, trial in enumerate(trials):
        rng, T, fps = trial.rng, trial.n_frames, trial.fps
        direction = trial.athlete.estimator_offsets_m  # (groups, 3): unit direction x fraction in [0, 1]
        key = id(direction)  # an athlete's trials share its offsets: work them out once per batch
        if key not in per_athlete:
            length = np.linalg.norm(direction, axis=1, keepdims=True)
            magnitude = lows[:, None] + (highs - lows)[:, None] * length
            mixed = ncfg.offset_consistency * POPULATION_DIRECTIONS + (1.0 - ncfg.offset_consistency) * direction / np.maximum(length, 1e-9)
            mixed /= np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-9)
            per_athlete[key] = (direction, (mixed * magnitude)[group_index])  # `direction` pins the id
        systematic[i] = per_athlete[key][1]
        rng.standard_normal(dtype=np.float32, out=white[i, : T + 1])  # in place: the same draws, no copy
        confidence[i] = rng.uniform(*ncfg.confidence, size=K)
        mean_burst = max(1.0, 0.5 * (burst_lo + burst_hi) * fps)
        count = int(rng.poisson(ncfg.dropout_fraction * T * K / mean_burst))
        burst_rows.append((
            np.full(count, i),
            rng.integers(K, size=count),
            rng.integers(T, size=count),
            np.maximum(1, np.round(rng.uniform(burst_lo, burst_hi, count) * fps)).astype(int),
            rng.uniform(*ncfg.dropout_confidence, size=count),
            rng.normal(0.0, 0.08, size=(count, 3)),  # a poor guess: several centimetres off
            rng.random(count) < ncfg.dropout_nan_fraction,
            np.full(count, T),
        ))
        if rng.random() < ncfg.swap_probability:
            span = max(1, int(round(uniform(rng, ncfg.swap_burst_s) * fps)))
            start = int(rng.integers(T))
            swap[i, start : min(start + span, T)] = True

    # AR(1) jitter with unit stationary variance, one filter per frame rate; row 0 seeds the filter state.
    jitter = np.empty((n, n_frames, K * 3), dtype=np.float32)
    fps_all = np.array([t.fps for t in trials])
    for fps in np.unique(fps_all):
        rows = np.flatnonzero(fps_all == fps)
        a = float(np.exp(-1.0 / (ncfg.jitter_time_constant_s * fps)))
        jitter[rows] = lfilter([np.sqrt(1.0 - a * a)], [1.0, -a], white[rows, 1:], axis=1,
                               zi=(a * white[rows, :1]))[0]
    jitter = jitter.reshape(n, n_frames, K, 3)
    scale = (1e-3 * ncfg.jitter_mm * np.where(foot, ncfg.foot_noise_factor, 1.0)).astype(np.float32)
    error = systematic[:, None].astype(np.float32) + jitter * scale[None, None, :, None]
    wobble = np.abs(jitter[..., 0]) + np.abs(jitter[..., 1])
    confidence = np.clip(confidence - 0.03 * wobble * np.where(foot, 1.5, 1.0).astype(np.float32), 0.0, 1.0)

    as_nan = np.zeros((n, n_frames, K), dtype=bool)
    trial_of, joint, start, span, conf, guess, nan, limit = (np.concatenate(c) for c in zip(*burst_rows, strict=True))
    if len(trial_of):
        stop = np.minimum(start + span, limit)
        lengths = stop - start
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        b = np.repeat(np.arange(len(start)), lengths)
        frames = start[b] + offsets
        confidence[trial_of[b], frames, joint[b]] = conf[b]
        error[trial_of[b], frames, joint[b]] += guess[b]
        as_nan[trial_of[b], frames, joint[b]] = nan[b]
    return error, confidence, as_nan, swap


def sample_camera(cfg: GeneratorConfig, rng: np.random.Generator, height_m: float) -> dict:
    c = cfg.camera
    width, height = c.resolutions[rng.integers(len(c.resolutions))]
    yaw = uniform(rng, c.yaw_deg) * (1.0 if rng.random() < 0.5 else -1.0)
    hfov = np.radians(uniform(rng, c.horizontal_fov_deg))
    focal = 0.5 * width / np.tan(0.5 * hfov)
    fill = uniform(rng, c.fill_fraction)
    distance = max(1.5, focal * height_m * 1.15 / (fill * height))  # 1.15: room for arms and jumps
    return {
        "yaw_deg": yaw,
        "pitch_deg": uniform(rng, c.pitch_deg),
        "height_m": uniform(rng, c.height_m),
        "focal_px": float(focal),
        "distance_m": float(distance),
        "width": int(width),
        "height": int(height),
        "aim_jitter_m": rng.normal(0.0, 0.05, 2).tolist(),
    }


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`np.cross` of two 3-vectors with its exact arithmetic (products, then one subtraction), without its
    per-call overhead (it dominates for single vectors)."""
    a0, a1, a2 = a.tolist()
    b0, b1, b2 = b.tolist()
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def camera_axes(camera: dict, target_z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Position and unit axes (look, right, down) of a camera dict from `sample_camera`."""
    yaw = np.radians(camera["yaw_deg"])
    target = np.array([camera["aim_jitter_m"][0], 0.0, target_z + camera["aim_jitter_m"][1]])
    # In front of the athlete (who faces -y), turned by yaw about the vertical through the target.
    position = target + camera["distance_m"] * np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    position[2] = camera["height_m"]
    look = target - position
    look /= np.linalg.norm(look)
    right = _cross(look, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = _cross(look, right)
    pitch = np.radians(camera["pitch_deg"])
    look, down = np.cos(pitch) * look - np.sin(pitch) * down, np.sin(pitch) * look + np.cos(pitch) * down
    return position, look, right, down


def project(points: np.ndarray, cameras: list[dict], target_z: np.ndarray) -> np.ndarray:
    """Pinhole projection of world points `(n, T, K, 3)` through one camera per trial into pixels
    `(n, T, K, 2)`, y down, principal point at the image centre."""
    axes = [camera_axes(c, z) for c, z in zip(cameras, target_z, strict=True)]
    position, look, right, down = (np.stack(a) for a in zip(*axes, strict=True))
    f = np.array([c["focal_px"] for c in cameras])[:, None, None]
    rel = points - position[:, None, None, :]
    depth = np.einsum("ntkc,nc->ntk", rel, look)
    out = np.empty(points.shape[:-1] + (2,))
    out[..., 0] = f * np.einsum("ntkc,nc->ntk", rel, right) / depth + 0.5 * np.array([c["width"] for c in cameras])[:, None, None]
    out[..., 1] = f * np.einsum("ntkc,nc->ntk", rel, down) / depth + 0.5 * np.array([c["height"] for c in cameras])[:, None, None]
    return out


@cache
def swap_index(skeleton: str) -> np.ndarray:
    """For a layout, the index each joint takes when the estimator swaps the left and right leg."""
    skel = get_skeleton(skeleton)
    out = []
    for joint in skel.joints:
        side, _, part = joint.partition("_")
        if side in ("left", "right") and part in (*_LEG_PARTS, "foot_index"):
            other = ("right_" if side == "left" else "left_") + part
            out.append(skel.joints.index(other) if other in skel.joints else skel.joints.index(joint))
        else:
            out.append(skel.joints.index(joint))
    return np.asarray(out)
