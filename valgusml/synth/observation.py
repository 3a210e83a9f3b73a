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
from valgusml.synth.config import VIEW_BANDS, GeneratorConfig
from valgusml.synth.estimators import (
    FAMILIES,
    EstimatorFamily,
    far_leg_weight,
    low_pass_in_place,
    pick_family,
    pull_knees_to_line,
)
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
BELOW_ANKLE = np.array([_group_of(j).endswith("_foot") for j in JOINTS])  # heels and toes: what COCO-17 lacks
SMALL_TOE = np.array([j.endswith("_small_toe") for j in JOINTS])  # what MediaPipe's 33 landmarks lack
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


def _population_directions(seed: int = 20211) -> np.ndarray:
    """Fixed unit direction per offset group, mirrored between left and right: the bias of one estimator
    family, not of a dataset. Random within bounds (design choice): hips, knees and ankles err mostly up/down
    and forward/back; their mediolateral bias is small, or the frontal knee angle would be off by far more
    than the few degrees measured (2.4 deg MAE OpenPose, Ino 2024; 5-7 deg MediaPipe, BIOMECH.md)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(OFFSET_GROUPS), 3))
    for k, group in enumerate(OFFSET_GROUPS):
        if group.startswith("right_"):
            continue
        v = rng.standard_normal(3)
        if group.endswith(("_hip", "_knee", "_ankle")):
            v[0] *= 0.25
        out[k] = v / np.linalg.norm(v)
        if group.startswith("left_"):
            out[OFFSET_GROUPS.index("right_" + group[5:])] = out[k] * np.array([-1.0, 1.0, 1.0])
    return out


POPULATION_DIRECTIONS = {name: _population_directions(20211 + f.seed) for name, f in FAMILIES.items()}
LATERAL_GROUPS = np.array([g.endswith(("_knee", "_ankle")) for g in OFFSET_GROUPS])
# Lateral axis (x = subject's left) of each group: + for left groups, - for right, 0 for the rest.
LATERAL_SIGN = np.array([1.0 if g.startswith("left_") else -1.0 if g.startswith("right_") else 0.0 for g in OFFSET_GROUPS])


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


def systematic_offsets(cfg: GeneratorConfig, family: EstimatorFamily, direction: np.ndarray) -> np.ndarray:
    """An athlete's systematic offsets `(groups, 3)` metres under `family`: the athlete's own direction
    (`direction`: unit vector x position in the range) mixed with the family's population direction. Mocap
    offsets lie along each limb's lateral axis (joint width measured wrong), signed by the athlete."""
    lows, highs = offset_magnitudes_m(cfg)
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    magnitude = family.offset_gain * (lows[:, None] + (highs - lows)[:, None] * length)
    own = direction / np.maximum(length, 1e-9)
    population = POPULATION_DIRECTIONS[family.name]
    if family.lateral_offsets:
        population = population.copy()
        population[LATERAL_GROUPS] = 0.0
        population[LATERAL_GROUPS, 0] = LATERAL_SIGN[LATERAL_GROUPS] * np.sign(own[LATERAL_GROUPS, 0] + 1e-12)
    mixed = family.consistency * population + (1.0 - family.consistency) * own
    mixed /= np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-9)
    return mixed * magnitude


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


def ar1_in_place(series: np.ndarray, fps: np.ndarray, time_constant_s: float | np.ndarray) -> np.ndarray:
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


LEG_SIDE = np.array([0 if j.startswith("left_") and _group_of(j) != "upper" else 1 if j.startswith("right_") and _group_of(j) != "upper" else -1 for j in JOINTS])


def estimator_noise(cfg: GeneratorConfig, trials: list, n_frames: int, joints: np.ndarray, families: list[EstimatorFamily],
                    yaws: list[float] | None):
    """Pose-estimator error for a batch of trials, padded to `n_frames`, for generator joints `joints`, each
    trial under its family; `yaws` (camera yaw per trial, or None for 3D output) sets far-leg occlusion.

    Returns world error `(n, T, K, 3)` metres (float32), confidence `(n, T, K)`, NaN mask `(n, T, K)` and
    left/right swap mask `(n, T)` (the base swap bursts; view- and crossing-tied swaps come later, in the
    image). Random draws come from each trial's own stream, in a fixed order; the heavy work (filtering,
    scattering bursts) is done once for the batch.
    """
    ncfg = cfg.noise
    n, K = len(trials), len(joints)
    foot = IS_FOOT[joints]
    # Joints a trial's estimator does not report at all (its layout lacks them): NaN in every frame.
    unreported = np.zeros((n, K), dtype=bool)
    side = LEG_SIDE[joints]
    jitter = np.zeros((n, n_frames, K * 3), dtype=np.float32)  # float32: noise needs no more
    draws = np.empty((n, K))  # per-joint confidence draws
    systematic = np.empty((n, K, 3), dtype=np.float32)
    scale = np.empty((n, K), dtype=np.float32)  # jitter sd per joint, metres
    conf_lo, conf_hi, occlusion = np.empty(n), np.empty(n), np.zeros((n, K), dtype=np.float32)
    bursts: list[tuple[int, np.ndarray, np.ndarray, float]] = []  # (trial, uniforms (5, count), guesses, nan share)
    outliers: list[tuple[int, np.ndarray, np.ndarray]] = []
    swap = np.zeros((n, n_frames), dtype=bool)
    burst_lo, burst_hi = ncfg.dropout_burst_s
    group_index = GROUP_INDEX[joints]
    per_athlete: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for i, (trial, family) in enumerate(zip(trials, families, strict=True)):
        rng, T, fps = trial.rng, trial.n_frames, trial.fps
        direction = trial.athlete.estimator_offsets_m  # (groups, 3): unit direction x fraction in [0, 1]
        key = (id(direction), family.name)  # an athlete's trials share its offsets: work them out once per batch
        if key not in per_athlete:
            per_athlete[key] = (direction, systematic_offsets(cfg, family, direction)[group_index])  # `direction` pins the id
        systematic[i] = per_athlete[key][1]
        far = far_leg_weight(yaws[i]) if yaws is not None else (0.0, 0.0)
        occlusion[i] = np.where(side == 0, far[0], np.where(side == 1, far[1], 0.0))
        scale[i] = 1e-3 * ncfg.jitter_mm * family.jitter_gain * np.where(foot, ncfg.foot_noise_factor * family.foot_gain, 1.0)
        scale[i] *= 1.0 + family.occlusion_noise * occlusion[i]
        conf_lo[i], conf_hi[i] = family.confidence
        standard_normal32(rng, jitter[i, :T])
        mean_burst = max(1.0, 0.5 * (burst_lo + burst_hi) * fps)
        count = int(rng.poisson(family.dropout_gain * ncfg.dropout_fraction * T * K / mean_burst))
        n_out = int(rng.poisson(family.outlier_rate * T * K))
        # One call for every uniform draw of the trial: K confidences, five per dropout burst, three for a swap,
        # two per outlier.
        u = rng.random(K + 5 * count + 3 + 2 * n_out)
        draws[i] = u[:K]
        nan_share = ncfg.dropout_nan_fraction if family.nan_share is None else family.nan_share
        bursts.append((i, u[K : K + 5 * count].reshape(5, count), rng.normal(0.0, 0.08, (count, 3)), nan_share))
        swap_draw, swap_length, swap_start = u[K + 5 * count : K + 5 * count + 3]
        if swap_draw < ncfg.swap_probability * family.swap_gain:
            span = max(1, int(round((ncfg.swap_burst_s[0] + swap_length * np.ptp(ncfg.swap_burst_s)) * fps)))
            start = int(swap_start * T)
            swap[i, start : min(start + span, T)] = True
        # Each drawn only when above 0: at 0 the trial's random stream is untouched.
        if ncfg.no_feet_fraction > 0 and rng.random() < ncfg.no_feet_fraction:
            unreported[i] |= BELOW_ANKLE[joints]
        if ncfg.no_small_toe_fraction > 0 and rng.random() < ncfg.no_small_toe_fraction:
            unreported[i] |= SMALL_TOE[joints]
        if n_out:
            where = u[K + 5 * count + 3 :].reshape(2, n_out)
            jump = rng.normal(0.0, 1e-3 * family.outlier_mm, (n_out, 3))
            outliers.append((i, np.stack([np.minimum((where[0] * T).astype(int), T - 1),
                                          np.minimum((where[1] * K).astype(int), K - 1)]), jump))

    ar1_in_place(jitter, np.array([t.fps for t in trials]), np.array([f.jitter_time_constant_s for f in families]))
    xyz = jitter.reshape(n, n_frames, K, 3)  # a view: `error` below is the jitter, scaled in place
    wobble = np.abs(xyz[..., 0]) + np.abs(xyz[..., 1])
    confidence = (conf_lo[:, None] + (conf_hi - conf_lo)[:, None] * draws).astype(np.float32)[:, None, :]
    drop = np.array([f.occlusion_drop for f in families], dtype=np.float32)[:, None] * occlusion
    # At least 0.01 where a point is reported: confidence 0 means "missing" (a NaN point), by contract.
    coupling = np.where(conf_hi > conf_lo, 0.03, 0.0).astype(np.float32)[:, None, None]  # mocap: none
    confidence = np.clip(confidence - drop[:, None] - coupling * wobble * np.where(foot, 1.5, 1.0).astype(np.float32), 0.01, 1.0)
    # Scaled on the flat (joint x coordinate) axis: broadcasting over a last axis of 3 is much slower.
    jitter *= np.repeat(scale, 3, axis=1)[:, None, :]
    error = xyz
    error += systematic[:, None]
    for i, (frames, joint), jump in ((o[0], o[1], o[2]) for o in outliers):
        error[i, frames, joint] += jump.astype(np.float32)

    as_nan = np.zeros((n, n_frames, K), dtype=bool)
    counts = np.array([b[1].shape[1] for b in bursts])
    if counts.sum():
        trial_of = np.repeat([b[0] for b in bursts], counts)
        u = np.concatenate([b[1] for b in bursts], axis=1)
        guess = np.concatenate([b[2] for b in bursts])
        nan_share = np.repeat([b[3] for b in bursts], counts)
        limit = np.array([t.n_frames for t in trials])[trial_of]
        fps = np.array([t.fps for t in trials])[trial_of]
        joint = np.minimum((u[0] * K).astype(int), K - 1)
        start = np.minimum((u[1] * limit).astype(int), limit - 1)
        span = np.maximum(1, np.round((burst_lo + (burst_hi - burst_lo) * u[2]) * fps)).astype(int)
        conf = np.maximum(ncfg.dropout_confidence[0] + np.ptp(ncfg.dropout_confidence) * u[3], 0.01)
        nan = u[4] < nan_share
        stop = np.minimum(start + span, limit)
        lengths = stop - start
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        b = np.repeat(np.arange(len(start)), lengths)
        frames = start[b] + offsets
        confidence[trial_of[b], frames, joint[b]] = conf[b]
        error[trial_of[b], frames, joint[b]] += guess[b]
        as_nan[trial_of[b], frames, joint[b]] = nan[b]
    as_nan |= unreported[:, None, :]
    return error, confidence, as_nan, swap


AIM_HEIGHT_FRACTION = 0.55  # cameras aim at this fraction of the athlete's height (plus a few cm of jitter)


def sample_yaw(cfg: GeneratorConfig, view_draw: float, yaw_draw: float, sign_draw: float) -> tuple[float, str]:
    """Signed yaw (deg) and its view family: a family by `camera.views` weight among those whose band meets
    `camera.yaw_deg`, then uniform within band and bounds."""
    lo, hi = cfg.camera.yaw_deg
    spans = {v: (max(lo, b_lo), min(hi, b_hi)) for v, (b_lo, b_hi) in VIEW_BANDS.items()}
    names = [v for v, w in cfg.camera.views.items() if w > 0 and spans[v][0] <= spans[v][1]]
    cumulative = np.cumsum([cfg.camera.views[v] for v in names])
    view = names[min(int(np.searchsorted(cumulative, view_draw * cumulative[-1], side="right")), len(names) - 1)]
    a, b = spans[view]
    return (a + (b - a) * yaw_draw) * (1.0 if sign_draw < 0.5 else -1.0), view


def sample_camera(cfg: GeneratorConfig, rng: np.random.Generator, height_m: float, travel_m: float = 0.0) -> dict:
    """A camera around an athlete `height_m` tall (see `camera_matrices`), from three draws of `rng`;
    `travel_m`: how far the athlete walks through the scene (the camera stays clear of the path)."""
    c = cfg.camera
    names = ("resolution", "side", "yaw", "hfov", "fill", "pitch", "height", "view", "lens", "k1")
    u = dict(zip(names, rng.random(len(names)).tolist(), strict=True))
    aim = rng.normal(0.0, 0.05, 2).tolist()
    between = lambda bounds, draw: bounds[0] + (bounds[1] - bounds[0]) * draw  # noqa: E731
    width, height = c.resolutions[min(int(u["resolution"] * len(c.resolutions)), len(c.resolutions) - 1)]
    yaw, view = sample_yaw(cfg, u["view"], u["yaw"], u["side"])
    focal = 0.5 * width / math.tan(0.5 * math.radians(between(c.horizontal_fov_deg, u["hfov"])))
    fill, pitch = between(c.fill_fraction, u["fill"]), between(c.pitch_deg, u["pitch"])
    camera_height = between(c.height_m, u["height"])
    # The athlete (x 1.15: room for arms and jumps) fills `fill` of the frame height, seen from the distance
    # that gives; further back if that would put the feet below the frame. The optical axis points at the aim
    # point (`AIM_HEIGHT_FRACTION` of the body height) and is then pitched, so a camera below the aim point or
    # pitched up moves the feet down the image.
    distance = max(1.5, focal * height_m * 1.15 / (fill * height))
    # An athlete walking towards or away from the camera must not reach it.
    distance = max(distance, abs(math.cos(math.radians(yaw))) * 0.5 * travel_m + 2.5)
    aim_height = AIM_HEIGHT_FRACTION * height_m + aim[1]
    lowest = math.atan(0.47 * height / focal)  # the feet's angle below the axis that still fits, with a margin

    def feet_angle(d: float) -> float:  # feet ~0.2 m in front of the aim point, on the floor
        return math.atan2(aim_height - camera_height, d) + math.radians(pitch) + math.atan2(camera_height, d - 0.2)

    while feet_angle(distance) > lowest and distance < 20.0:
        distance *= 1.05
    k1 = between(c.distortion_k1, u["k1"]) if u["lens"] < c.distortion_probability else 0.0
    return {
        "yaw_deg": yaw,
        "view": view,
        # the optical axis' angle below the horizontal (looking down > 0), and the tilt beyond aiming
        "pitch_deg": math.degrees(math.atan2(camera_height - aim_height, distance)) - pitch,
        "pitch_offset_deg": pitch,
        "height_m": camera_height,
        "focal_px": focal,
        "distance_m": distance,
        "width": int(width),
        "height": int(height),
        "aim_jitter_m": aim,
        "distortion_k1": k1,
    }


def camera_matrices(cameras: list[dict], target_z: np.ndarray) -> np.ndarray:
    """Homogeneous 3x4 projection matrix `(n, 3, 4)` (intrinsics x extrinsics, float64) of each camera dict
    from `sample_camera`, aimed at height `target_z` `(n,)` above the athlete's feet; vectorised over cameras.

    The camera stands around the athlete (who faces -y), turned by yaw about the vertical through the
    target (0 in front, 180 behind), then pitched; rows give (x w, y w, w) for pixels x right, y down,
    principal point at the centre. From behind, the athlete's left is on the image's left.
    """
    get = lambda key: np.array([c[key] for c in cameras], dtype=float)  # noqa: E731
    yaw = np.radians(get("yaw_deg"))
    pitch = np.radians([c.get("pitch_offset_deg", c["pitch_deg"]) for c in cameras])
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
    matmul by `camera_matrices`; then radial lens distortion where a camera has it."""
    n = len(cameras)
    matrix = camera_matrices(cameras, target_z).astype(points.dtype)
    # Component by component on whole planes: numpy's batched matmul slows down badly on long batches, and
    # broadcasting over a last axis of 2-3 runs several times slower.
    flat = points.reshape(n, -1, 3)
    x, y, z = (np.ascontiguousarray(flat[..., c]) for c in range(3))
    rows = [x * matrix[:, r, 0, None] + y * matrix[:, r, 1, None] + z * matrix[:, r, 2, None] + matrix[:, r, 3, None]
            for r in range(3)]
    inverse_depth = np.reciprocal(rows[2])
    out = np.empty(flat.shape[:-1] + (2,), dtype=points.dtype)
    for c in range(2):
        np.multiply(rows[c], inverse_depth, out=out[..., c])
    for i, cam in enumerate(cameras):
        k1 = cam.get("distortion_k1", 0.0)
        if k1:  # radial: r' = r (1 + k1 r^2) on coordinates normalised by the focal length
            f = np.float32(cam["focal_px"])
            x = (out[i, :, 0] - np.float32(0.5 * cam["width"])) / f
            y = (out[i, :, 1] - np.float32(0.5 * cam["height"])) / f
            gain = 1.0 + np.float32(k1) * (x * x + y * y)
            out[i, :, 0] = np.float32(0.5 * cam["width"]) + x * gain * f
            out[i, :, 1] = np.float32(0.5 * cam["height"]) + y * gain * f
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


def _layout_positions(skeleton: str, part: str) -> tuple[int, int] | None:
    names = [JOINTS[k] for k in layout_index(skeleton)]
    try:
        return names.index(f"left_{part}"), names.index(f"right_{part}")
    except ValueError:
        return None


def _swap_burst(rows: np.ndarray, centre: int, span: int) -> None:
    rows[max(0, centre - span // 2) : max(0, centre - span // 2) + span] = True


def observe_points(
    cfg: GeneratorConfig, trials: list, world: np.ndarray, cameras: list[dict] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, list]:
    """What a pose estimator reports for the clean layout joints `world` `(n, T, K, 3)` of a batch (float32,
    padded): points `(n, T, K, D)` (pixels or metres), confidence `(n, T, K)`, left/right swap rows `(n, T)`,
    the cameras (or None) and the estimator family of each trial. `cameras` (2D only): one camera dict per
    trial to film it with, instead of drawing them (the real-motion suite's fixed views).

    Order: family and camera draws; world error (offsets, jitter, occlusion, outliers, dropouts); projection
    (lens distortion); the family's pull of the knee towards the hip-ankle line, pixel jitter and smoothing
    (lag); points outside the image are lost (athletes entering and leaving the frame); swaps tied to views
    and to legs crossing in the image.
    """
    obs, ncfg = cfg.observation, cfg.noise
    index = layout_index(obs.skeleton)
    n, T, K = world.shape[:3]
    families = [pick_family(ncfg.families, float(t.rng.random())) for t in trials]
    if obs.dims != 2:
        cameras = None
    elif cameras is None:
        cameras = [sample_camera(cfg, t.rng, t.athlete.height_m, travel_m(t)) for t in trials]
    yaws = [c["yaw_deg"] for c in cameras] if cameras is not None else None
    fps = np.array([t.fps for t in trials])
    if ncfg.enabled:
        error, confidence, as_nan, swap = estimator_noise(cfg, trials, T, index, families, yaws)
        world += error
    else:
        confidence = np.ones((n, T, K), dtype=np.float32)
        as_nan, swap = np.zeros((n, T, K), dtype=bool), np.zeros((n, T), dtype=bool)
    points = project(world, cameras, np.array([AIM_HEIGHT_FRACTION * t.athlete.height_m for t in trials])) if cameras else world
    legs = [_layout_positions(obs.skeleton, part) for part in ("hip", "knee", "ankle")]
    if ncfg.enabled:
        if all(legs):
            pull_knees_to_line(points, *legs, np.array([f.knee_pull for f in families]))
        if cameras is not None:
            # Pixel-level error: coordinates snapped to the family's grid (heatmap resolution), an error of
            # sd `pixel_jitter_px` whatever the athlete's size in the image; no random draws needed.
            # Row by row: a family without a grid (mocap) must not switch it off for the rest of the batch.
            grid = np.array([f.pixel_jitter_px * math.sqrt(12.0) for f in families], dtype=np.float32)
            snapped = np.flatnonzero(grid > 0)
            if snapped.size == n:
                g = grid[:, None, None, None]
                np.multiply(np.round(points / g), g, out=points)
            elif snapped.size:
                g = grid[snapped, None, None, None]
                points[snapped] = np.round(points[snapped] / g) * g
        low_pass_in_place(points, fps, np.array([f.smoothing_s for f in families]))
    if cameras is not None:
        width = np.array([c["width"] for c in cameras], dtype=np.float32)[:, None, None]
        height = np.array([c["height"] for c in cameras], dtype=np.float32)[:, None, None]
        outside = (points[..., 0] < 0) | (points[..., 0] >= width) | (points[..., 1] < 0) | (points[..., 1] >= height)
        as_nan |= outside
    if ncfg.enabled and cameras is not None and legs[1] is not None:
        knees = legs[1]
        gap = np.abs(points[:, :, knees[0], 0] - points[:, :, knees[1], 0])
        leg_px = np.abs(points[:, :, legs[0][0], 1] - points[:, :, legs[2][0], 1]) if legs[0] and legs[2] else np.full_like(gap, 1e9)
        crossing = gap < 0.12 * np.nan_to_num(leg_px, nan=1e9)
        lo, hi = ncfg.swap_burst_s
        for i, (trial, family, cam) in enumerate(zip(trials, families, cameras, strict=True)):
            u = trial.rng.random(5)
            span = max(1, int(round((lo + (hi - lo) * u[4]) * trial.fps)))
            view = abs(math.sin(math.radians(cam["yaw_deg"]))) + float(abs(cam["yaw_deg"]) > 115.0)
            if u[0] < family.view_swap_gain * view * ncfg.swap_probability / 0.03:
                _swap_burst(swap[i], int(u[1] * trial.n_frames), span)
            frames = np.flatnonzero(crossing[i, : trial.n_frames])
            if frames.size and u[2] < family.crossing_swap * ncfg.swap_probability / 0.03:
                _swap_burst(swap[i], int(frames[min(int(u[3] * frames.size), frames.size - 1)]), span)
    swap[:, :] &= np.arange(T)[None, :] < np.array([t.n_frames for t in trials])[:, None]
    np.copyto(points, np.float32(np.nan), where=as_nan[..., None])
    np.copyto(confidence, np.float32(0.0), where=as_nan)
    return points.astype(np.float32, copy=False), confidence, swap, cameras, families


def travel_m(trial) -> float:
    """How far an overground walker or runner travels during the clip (0 in place)."""
    p = trial.params
    return 0.7 * p["speed"] * p["duration"] * p["overground"] if trial.task in ("walking", "running") else 0.0
