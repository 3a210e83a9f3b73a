"""Observation model: pose-estimator error, a pinhole camera, and emission in any skeleton layout.

Errors follow BIOMECH.md (Needham 2021; Ino 2024): systematic joint-centre offsets per athlete (hips and knees
30-50 mm, ankles 1-15 mm), jitter correlated in time, feet noisier than hips, bursts of dropouts with low
confidence (some emitted as NaN), and rare bursts of left/right leg swaps. They are applied in world metres,
so 2D and 3D outputs share them; 2D goes through a pinhole camera (yaw, pitch, height, field of view,
resolution) and comes out in pixels with y down.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from valgusml.skeleton import get_skeleton
from valgusml.synth.athletes import OFFSET_GROUPS
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


def standard_normal32(rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
    """Fill float32 `out` with standard normal draws by the Box-Muller transform of `rng.random`.

    numpy's own float32 normal sampler runs ~3x slower than this here, and jitter is most of the generator's
    random numbers. Uniforms are taken from (0, 1] so the logarithm is finite.
    """
    flat = out.reshape(-1)
    half = (flat.size + 1) // 2
    u = rng.random((2, half), dtype=np.float32)
    radius = np.sqrt(-2.0 * np.log(1.0 - u[0]))  # 1 - u is in (0, 1]
    angle = u[1] * np.float32(2.0 * np.pi)
    np.multiply(radius[: flat.size - half], np.sin(angle[: flat.size - half]), out=flat[half:])
    np.multiply(radius, np.cos(angle), out=flat[:half])
    return out


def ar1_in_place(series: np.ndarray, fps: np.ndarray, time_constant_s: float) -> np.ndarray:
    """Turn unit white noise `(n, T, C)` into AR(1) noise with unit stationary variance, in place, per row
    at its own frame rate `fps` `(n,)`; frame 0 is the stationary start. A loop over frames on `(n, C)` slices
    runs several times faster than `scipy.signal.lfilter` along a middle axis, and handles a rate per row."""
    a = np.exp(-1.0 / (time_constant_s * fps)).astype(series.dtype)[:, None]
    series[:, 1:] *= np.sqrt(1.0 - a * a)[:, None]
    step = np.empty_like(series[:, 0])
    for t in range(1, series.shape[1]):
        np.multiply(series[:, t - 1], a, out=step)
        series[:, t] += step
    return series


def estimator_noise(cfg: GeneratorConfig, trials: list, n_frames: int, joints: np.ndarray):
    """Pose-estimator error for a batch of trials, padded to `n_frames`, for generator joints `joints`.

    Returns world error `(n, T, K, 3)` metres (float32), confidence `(n, T, K)`, NaN mask `(n, T, K)` and
    left/right swap mask `(n, T)`. Random draws come from each trial's own stream, in a fixed order; the heavy
    work (filtering, scattering bursts) is done once for the batch.
    """
    ncfg = cfg.noise
    n, K = len(trials), len(joints)
    lows, highs = offset_magnitudes_m(cfg)
    foot = IS_FOOT[joints]
    jitter = np.zeros((n, n_frames, K * 3), dtype=np.float32)  # float32: noise needs no more
    draws = np.empty((n, K))  # per-joint confidence draws
    systematic = np.empty((n, K, 3), dtype=np.float32)
    bursts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (trial, uniforms (5, count), guesses (count, 3))
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
        standard_normal32(rng, jitter[i, :T])
        mean_burst = max(1.0, 0.5 * (burst_lo + burst_hi) * fps)
        count = int(rng.poisson(ncfg.dropout_fraction * T * K / mean_burst))
        # One call for every uniform draw of the trial: K confidences, five per dropout burst, three for a swap.
        u = rng.random(K + 5 * count + 3)
        draws[i] = u[:K]
        bursts.append((i, u[K : K + 5 * count].reshape(5, count), rng.normal(0.0, 0.08, (count, 3))))
        swap_draw, swap_length, swap_start = u[K + 5 * count :]
        if swap_draw < ncfg.swap_probability:
            span = max(1, int(round((ncfg.swap_burst_s[0] + swap_length * np.ptp(ncfg.swap_burst_s)) * fps)))
            start = int(swap_start * T)
            swap[i, start : min(start + span, T)] = True

    ar1_in_place(jitter, np.array([t.fps for t in trials]), ncfg.jitter_time_constant_s)
    xyz = jitter.reshape(n, n_frames, K, 3)  # a view: `error` below is the jitter, scaled in place
    wobble = np.abs(xyz[..., 0]) + np.abs(xyz[..., 1])
    confidence = (ncfg.confidence[0] + np.ptp(ncfg.confidence) * draws).astype(np.float32)[:, None, :]
    confidence = np.clip(confidence - 0.03 * wobble * np.where(foot, 1.5, 1.0).astype(np.float32), 0.0, 1.0)
    # Scaled on the flat (joint x coordinate) axis: broadcasting over a last axis of 3 is much slower.
    jitter *= np.repeat(1e-3 * ncfg.jitter_mm * np.where(foot, ncfg.foot_noise_factor, 1.0), 3).astype(np.float32)
    error = xyz
    error += systematic[:, None]

    as_nan = np.zeros((n, n_frames, K), dtype=bool)
    counts = np.array([b[1].shape[1] for b in bursts])
    if counts.sum():
        trial_of = np.repeat([b[0] for b in bursts], counts)
        u = np.concatenate([b[1] for b in bursts], axis=1)
        guess = np.concatenate([b[2] for b in bursts])
        limit = np.array([t.n_frames for t in trials])[trial_of]
        fps = np.array([t.fps for t in trials])[trial_of]
        joint = np.minimum((u[0] * K).astype(int), K - 1)
        start = np.minimum((u[1] * limit).astype(int), limit - 1)
        span = np.maximum(1, np.round((burst_lo + (burst_hi - burst_lo) * u[2]) * fps)).astype(int)
        conf = ncfg.dropout_confidence[0] + np.ptp(ncfg.dropout_confidence) * u[3]
        nan = u[4] < ncfg.dropout_nan_fraction
        stop = np.minimum(start + span, limit)
        lengths = stop - start
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        b = np.repeat(np.arange(len(start)), lengths)
        frames = start[b] + offsets
        confidence[trial_of[b], frames, joint[b]] = conf[b]
        error[trial_of[b], frames, joint[b]] += guess[b]
        as_nan[trial_of[b], frames, joint[b]] = nan[b]
    return error, confidence, as_nan, swap


AIM_HEIGHT_FRACTION = 0.55  # cameras aim at this fraction of the athlete's height (plus a few cm of jitter)


def sample_camera(cfg: GeneratorConfig, rng: np.random.Generator, height_m: float) -> dict:
    """A camera in front of an athlete `height_m` tall (see `camera_matrices`), from two draws of `rng`."""
    c = cfg.camera
    u = dict(zip(("resolution", "side", "yaw", "hfov", "fill", "pitch", "height"), rng.random(7).tolist(), strict=True))
    aim = rng.normal(0.0, 0.05, 2).tolist()
    between = lambda bounds, draw: bounds[0] + (bounds[1] - bounds[0]) * draw  # noqa: E731
    width, height = c.resolutions[min(int(u["resolution"] * len(c.resolutions)), len(c.resolutions) - 1)]
    yaw = between(c.yaw_deg, u["yaw"]) * (1.0 if u["side"] < 0.5 else -1.0)
    focal = 0.5 * width / math.tan(0.5 * math.radians(between(c.horizontal_fov_deg, u["hfov"])))
    fill, pitch = between(c.fill_fraction, u["fill"]), between(c.pitch_deg, u["pitch"])
    camera_height = between(c.height_m, u["height"])
    # The athlete (x 1.15: room for arms and jumps) fills `fill` of the frame height, seen from the distance
    # that gives; further back if that would put the feet below the frame. The optical axis points at the aim
    # point (`AIM_HEIGHT_FRACTION` of the body height) and is then pitched, so a camera below the aim point or
    # pitched up moves the feet down the image.
    distance = max(1.5, focal * height_m * 1.15 / (fill * height))
    aim_height = AIM_HEIGHT_FRACTION * height_m + aim[1]
    lowest = math.atan(0.47 * height / focal)  # the feet's angle below the axis that still fits, with a margin

    def feet_angle(d: float) -> float:  # feet ~0.2 m in front of the aim point, on the floor
        return math.atan2(aim_height - camera_height, d) + math.radians(pitch) + math.atan2(camera_height, d - 0.2)

    while feet_angle(distance) > lowest and distance < 20.0:
        distance *= 1.05
    return {
        "yaw_deg": yaw,
        "pitch_deg": pitch,
        "height_m": camera_height,
        "focal_px": focal,
        "distance_m": distance,
        "width": int(width),
        "height": int(height),
        "aim_jitter_m": aim,
    }


def camera_matrices(cameras: list[dict], target_z: np.ndarray) -> np.ndarray:
    """Homogeneous 3x4 projection matrix `(n, 3, 4)` (intrinsics x extrinsics, float64) of each camera dict
    from `sample_camera`, aimed at height `target_z` `(n,)` above the athlete's feet; vectorised over cameras.

    The camera stands in front of the athlete (who faces -y), turned by yaw about the vertical through the
    target, then pitched; rows give (x w, y w, w) for pixels x right, y down, principal point at the centre.
    """
    get = lambda key: np.array([c[key] for c in cameras], dtype=float)  # noqa: E731
    yaw, pitch = np.radians(get("yaw_deg")), np.radians(get("pitch_deg"))
    aim = np.array([c["aim_jitter_m"] for c in cameras], dtype=float).reshape(-1, 2)
    target = np.stack([aim[:, 0], np.zeros(len(cameras)), np.asarray(target_z, dtype=float) + aim[:, 1]], -1)
    position = target + get("distance_m")[:, None] * np.stack([np.sin(yaw), -np.cos(yaw), np.zeros_like(yaw)], -1)
    position[:, 2] = get("height_m")
    look = target - position
    look /= np.linalg.norm(look, axis=1, keepdims=True)
    right = np.stack([look[:, 1], -look[:, 0], np.zeros_like(yaw)], -1)  # look x up
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(look, right)
    c, s = np.cos(pitch)[:, None], np.sin(pitch)[:, None]
    look, down = c * look - s * down, s * look + c * down
    focal, cx, cy = get("focal_px")[:, None], 0.5 * get("width")[:, None], 0.5 * get("height")[:, None]
    matrix = np.empty((len(cameras), 3, 4))
    matrix[:, :, :3] = np.stack([focal * right + cx * look, focal * down + cy * look, look], axis=1)
    matrix[:, :, 3] = -np.einsum("nrc,nc->nr", matrix[:, :, :3], position)
    return matrix


def project(points: np.ndarray, cameras: list[dict], target_z: np.ndarray) -> np.ndarray:
    """Pinhole projection of world points `(n, T, K, 3)` through one camera per trial into pixels
    `(n, T, K, 2)`, y down, principal point at the image centre, in the dtype of `points`: one batched
    matmul by `camera_matrices`."""
    n = len(cameras)
    matrix = camera_matrices(cameras, target_z).astype(points.dtype)
    h = np.matmul(points.reshape(n, -1, 3), matrix[:, :, :3].transpose(0, 2, 1))
    # Component by component: numpy broadcasts over a last axis of 2-3 several times slower.
    inverse_depth = np.reciprocal(h[..., 2] + matrix[:, 2, 3, None])
    out = np.empty(h.shape[:-1] + (2,), dtype=points.dtype)
    for c in range(2):
        np.add(h[..., c], matrix[:, c, 3, None], out=out[..., c])
        out[..., c] *= inverse_depth
    return out.reshape(points.shape[:-1] + (2,))


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
