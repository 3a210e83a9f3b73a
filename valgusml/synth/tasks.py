"""Tasks: per-trial parameters and the healthy movement programme of each task, vectorised over trials and frames.

A programme says what the athlete *intends*: where the feet are (planted balls of the feet, or the flight and
swing paths), the knee flexion of each limb, the load each limb carries, how single-legged that load is, the
trunk and arm posture. Deficits (`mechanisms.py`) then bend this intention, and `kinematics.py` turns it into
joints. Axes: x = subject's left, y = backward (the subject faces -y, towards the camera), z = up, metres.

Every array is `(n, T)` or `(n, T, 2)` (limb axis: left, right) for n trials padded to T frames.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from valgusml.labels import task_family
from valgusml.synth.athletes import FLOAT, LIMB_SIGN, Athlete
from valgusml.synth.config import GeneratorConfig

GRAVITY = 9.81
CHAIN, FREE, GAIT = 0, 1, 2  # how a limb is driven: planted closed chain, held free leg, gait foot path


@dataclass
class Trial:
    athlete: Athlete
    index: int  # trial index within the athlete
    task: str
    fps: float
    n_frames: int
    params: dict[str, float]
    rng: np.random.Generator  # continues into the observation model (camera, noise)
    reps: dict[str, np.ndarray]  # per-rep arrays (MAX_REPS,): start, descent, pause, ascent, depth, rest, gain
    base: str = "analytic"  # or "real:NAME", the recording the motion is built on (`realmotion`)

    @property
    def id(self) -> str:
        return f"{self.athlete.id}-t{self.index:02d}"


MAX_REPS = 8  # reps a clip may hold (the per-rep arrays are this long)

# Per-trial draws within fixed bounds; config-driven bounds are added in `sample_trial`.
FIXED_BOUNDS: dict[str, tuple[float, float]] = {
    "fatigue_draw": (0.0, 1.0),
    "free_hip_flex": (15.0, 45.0),
    "free_knee_flex": (40.0, 95.0),
    "propulsion_s": (0.2, 0.3),
    "jump_flight_s": (0.38, 0.55),
    "second_depth": (35.0, 55.0),
    "box_setback": (0.25, 0.4),
    "gait_phase0": (0.0, 1.0),
    "pelvis_rot_amp": (2.0, 6.0),
    "task_draw": (0.0, 1.0),
    "fps_draw": (0.0, 1.0),
    "arm_draw": (0.0, 1.0),
    "arm_style_draw": (0.0, 1.0),
    "reps_draw": (0.0, 1.0),
    "curve_family": (0.0, 3.0),  # 0 cosine, 1 smoothstep, 2 minimum jerk: the rep's shape in time
    "curve_warp": (0.7, 1.4),  # x ** warp: slow or fast start of each half-rep
    "overground_draw": (0.0, 1.0),
    "pushoff_draw": (0.0, 1.0),
    "sway_hz": (0.15, 0.6),
    "sway_phase": (0.0, 2.0 * math.pi),
    "wobble_hz": (1.0, 3.5),
    "wobble_phase_left": (0.0, 2.0 * math.pi),
    "wobble_phase_right": (0.0, 2.0 * math.pi),
    "real_draw": (0.0, 1.0),
    "real_pick": (0.0, 1.0),
    "real_start": (0.0, 1.0),
}
NORMALS = ("tempo", "depth", "stance", "trunk_lean", "progression_jitter", "weight_shift")
# Per-rep draws: uniforms then normals, MAX_REPS each.
REP_UNIFORMS = ("bottom_pause", "between_pause", "partial", "rest_level")
REP_NORMALS = ("rep_depth", "rep_tempo", "rep_descent", "rep_gain")


def _pick(probabilities: dict[str, float], draw: float) -> str:
    names = list(probabilities)
    cumulative = list(itertools.accumulate(probabilities[t] for t in names))
    return names[min(bisect.bisect_right(cumulative, draw * cumulative[-1]), len(names) - 1)]


def _rep_schedule(cfg: GeneratorConfig, athlete: Athlete, u: dict, z: dict, ru: np.ndarray, rz: np.ndarray) -> tuple[dict, float]:
    """Rep timing of a squat-like clip: per-rep start, descent, bottom pause, ascent, depth factor and the
    level the athlete returns to; returns the per-rep arrays and the clip's natural length (s)."""
    tcfg = cfg.tasks
    lo, hi = tcfg.reps
    n_reps = int(min(MAX_REPS, max(1, math.floor(lo + (hi - lo + 1) * u["reps_draw"]))))
    tempo = athlete.rep_duration_s * math.exp(tcfg.tempo_variation * z["tempo"])
    R = MAX_REPS
    rep_s = np.clip(tempo * np.exp(tcfg.rep_tempo_variation * np.clip(rz[1], -2.5, 2.5)), 1.0, 6.0)
    descent = np.clip(u["descent_fraction"] + 0.05 * rz[2], 0.25, 0.75) * rep_s
    ascent = rep_s - descent
    pause_lo, pause_hi = tcfg.bottom_pause_s
    bottom = pause_lo + (pause_hi - pause_lo) * ru[0]
    between_lo, between_hi = tcfg.between_pause_s
    between = between_lo + (between_hi - between_lo) * ru[1]
    rest = np.where(ru[2] < tcfg.partial_return_probability, 0.05 + 0.15 * ru[3], 0.0)
    used = np.arange(R) < n_reps
    rest[n_reps - 1 :] = 0.0  # the last rep ends standing
    length = descent + bottom + ascent + between
    start = u["standing_before"] + np.concatenate([[0.0], np.cumsum(length)[:-1]])
    start = np.where(used, start, np.inf)
    natural = float(start[n_reps - 1] + descent[n_reps - 1] + bottom[n_reps - 1] + ascent[n_reps - 1]) + u["standing_after"]
    reps = {
        "rep_start": start,
        "rep_descent": descent,
        "rep_pause": bottom,
        "rep_ascent": ascent,
        "rep_depths": 1.0 + tcfg.depth_rep_variation * np.clip(rz[0], -2.5, 2.5),
        "rep_rest": rest,
        "rep_gain": np.exp(cfg.mechanisms.rep_gain_sd * np.clip(rz[3], -2.5, 2.5)),
    }
    return reps, natural


def sample_trial(cfg: GeneratorConfig, athlete: Athlete, index: int) -> Trial:
    """Trial `index` of `athlete`: task, clip structure, timing and style, from the stream (seed, athlete, trial).

    Scalar draws come from a few vectorised calls (uniforms over every bound, standard normals, per-rep
    blocks): a few microseconds instead of one call per parameter.
    """
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(athlete.index, index + 1)))
    tcfg, ocfg = cfg.tasks, cfg.observation
    bounds = {
        **FIXED_BOUNDS,
        "step_height": tcfg.step_height_m,
        "contact_to_peak": tcfg.contact_to_peak_s,
        "walking_speed": tcfg.walking_speed_m_s,
        "running_speed": tcfg.running_speed_m_s,
        "walking_stride": tcfg.walking_stride_s,
        "running_stride": tcfg.running_stride_s,
        "standing_before": tcfg.standing_before_s,
        "standing_after": tcfg.standing_after_s,
        "descent_fraction": tcfg.descent_fraction,
        "gait_duration": tcfg.gait_duration_s,
        "sway_mm": tcfg.sway_mm,
        "knee_wobble": tcfg.knee_wobble_deg,
        "fatigue_rate": tcfg.fatigue_rate,
        "pushoff_valgus": tcfg.pushoff_valgus_deg,
    }
    u = {name: lo + (hi - lo) * draw for (name, (lo, hi)), draw in zip(bounds.items(), rng.random(len(bounds)).tolist(), strict=True)}
    z = dict(zip(NORMALS, rng.standard_normal(len(NORMALS)).tolist(), strict=True))
    ru = rng.random((len(REP_UNIFORMS), MAX_REPS))
    rz = rng.standard_normal((len(REP_NORMALS), MAX_REPS))

    task = _pick(tcfg.probabilities, u["task_draw"])
    fps = float(ocfg.fps_choices[min(int(u["fps_draw"] * len(ocfg.fps_choices)), len(ocfg.fps_choices) - 1)])
    family = task_family(task)
    base_depth = {
        "bilateral_squat": athlete.squat_depth_deg,
        "single_leg_squat": athlete.single_leg_depth_deg,
        "lateral_step_down": athlete.single_leg_depth_deg * 0.85,
        "drop_vertical_jump": athlete.landing_depth_deg,
    }.get(family, 0.0)
    gait = "running" if task == "running" else "walking"
    reps, natural = _rep_schedule(cfg, athlete, u, z, ru, rz)
    if family == "drop_vertical_jump":
        fall = math.sqrt(2.0 * tcfg.box_height_m / GRAVITY)
        natural = (u["standing_before"] + fall + u["contact_to_peak"] + u["propulsion_s"] + u["jump_flight_s"]
                   + 0.15 + 0.5 + u["standing_after"])
        reps["rep_start"][1:] = np.inf
    elif family in ("walking", "running"):
        natural = u["gait_duration"]
    duration = min(max(natural, ocfg.duration_s[0]), ocfg.duration_s[1])
    real_index, real_start = -1, 0.0
    if cfg.motion.real_fraction > 0 and u["real_draw"] < cfg.motion.real_fraction:
        real_index, real_start, duration, athlete = _real_base(cfg, athlete, task, u, duration)
    n_frames = max(2, int(round(duration * fps)))
    pushoff = u["pushoff_draw"] < tcfg.pushoff_valgus_probability and family == "drop_vertical_jump"
    params: dict[str, float] = {
        "t_off": u["standing_before"],  # drop jump: leaves the box
        "depth": base_depth * math.exp(0.04 * z["depth"]),
        "fatigue0": u["fatigue_draw"] * 0.6 + 0.4 * index / max(1, tcfg.trials_per_athlete - 1),
        "fatigue_rate": u["fatigue_rate"] / max(duration, 1e-3),
        **{k: u[k] for k in ("free_hip_flex", "free_knee_flex", "step_height", "contact_to_peak",
                             "propulsion_s", "jump_flight_s", "second_depth", "box_setback", "gait_phase0",
                             "pelvis_rot_amp", "curve_warp", "sway_hz", "sway_phase", "wobble_hz",
                             "wobble_phase_left", "wobble_phase_right")},
        "curve_family": float(min(int(u["curve_family"]), 2)),
        "speed": u[f"{gait}_speed"],
        "stride_s": u[f"{gait}_stride"],
        "overground": float(u["overground_draw"] < tcfg.overground_probability),
        "duration": duration,
        "trunk_lean": athlete.trunk_lean_deg + z["trunk_lean"],
        "arm_style": float(athlete.arm_style if u["arm_draw"] < 0.8 else min(int(3 * u["arm_style_draw"]), 2)),
        "stance_ratio": athlete.stance_width_ratio * math.exp(0.05 * z["stance"]),
        "step_width_ratio": athlete.gait_step_width_ratio + 0.05 * z["stance"],
        "progression_jitter": 1.5 * z["progression_jitter"],
        "weight_shift": float(np.clip(tcfg.weight_shift_sd * z["weight_shift"], -0.25, 0.25)),
        "sway_m": 1e-3 * u["sway_mm"],
        "knee_wobble": u["knee_wobble"],
        "pushoff_valgus": u["pushoff_valgus"] if pushoff else 0.0,
        "real_index": float(real_index),  # >= 0: the base motion is this real recording (`realmotion`)
        "real_start": real_start,
    }
    base = "analytic" if real_index < 0 else "real:" + _recording_name(cfg, real_index)
    return Trial(athlete, index, task, fps, n_frames, params, rng, reps, base)


def _real_base(cfg: GeneratorConfig, athlete: Athlete, task: str, u: dict, duration: float) -> tuple[int, float, float, Athlete]:
    """A real recording of `task` to use as the base motion (index, start s, duration s, the athlete with the
    recorded body's height), or (-1, 0, the clip's own duration, athlete) when none fits."""
    from valgusml.synth.recordings import recordings, usable

    threshold = cfg.labels.threshold_deg[task_family(task)][athlete.sex]
    recs = recordings(cfg.motion.real_paths)
    pool = [k for k, r in enumerate(recs) if r.task == task_family(task) and usable(r, threshold, cfg.labels.healthy_margin_deg)]
    if not pool:
        return -1, 0.0, duration, athlete
    index = pool[min(int(u["real_pick"] * len(pool)), len(pool) - 1)]
    rec = recs[index]
    length = (len(rec.joints) - 1) / rec.fps
    duration = min(length, cfg.observation.duration_s[1])
    return index, u["real_start"] * (length - duration), duration, dataclasses.replace(athlete, height_m=rec.height_m)


def _recording_name(cfg: GeneratorConfig, index: int) -> str:
    from valgusml.synth.recordings import recordings

    return recordings(cfg.motion.real_paths)[index].name


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ease(x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """0 → 1 over x in [0, 1] along the trial's curve family (cosine, smoothstep or minimum jerk), warped."""
    x = np.clip(x, 0.0, 1.0) ** p["curve_warp"]
    family = p["curve_family"]
    cosine = 0.5 * (1.0 - np.cos(np.pi * x))
    smooth = x * x * (3.0 - 2.0 * x)
    jerk = x * x * x * (10.0 + x * (-15.0 + 6.0 * x))
    return np.where(family == 0, cosine, np.where(family == 1, smooth, jerk))


def _rep_profile(t: np.ndarray, p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth `(n, T)` as a fraction of the athlete's depth (0 standing, ~1 at a rep's bottom: the rep's own
    depth factor), the rep index (-1 before the first) and the rep's signature gain."""
    rep = (t[..., None] >= p["rep_start"][:, None, :]).sum(axis=-1) - 1
    k = np.maximum(rep, 0)
    take = lambda key: np.take_along_axis(p[key], k, axis=1)  # noqa: E731
    u = t - take("rep_start")
    descent, pause, ascent = take("rep_descent"), take("rep_pause"), take("rep_ascent")
    peak, rest = take("rep_depths"), take("rep_rest")
    before = np.where(k > 0, np.take_along_axis(p["rep_rest"], np.maximum(k - 1, 0), axis=1), 0.0)
    down = before + (peak - before) * _ease(u / descent, p)
    up = peak + (rest - peak) * _ease((u - descent - pause) / ascent, p)
    level = np.where(u < descent, down, np.where(u < descent + pause, peak, up))
    level = np.where(rep >= 0, level, 0.0).astype(FLOAT)
    return level, rep, take("rep_gain").astype(FLOAT)


def _empty(n: int, T: int) -> dict[str, np.ndarray]:
    z2 = np.zeros((n, T, 2), dtype=FLOAT)
    return {
        "kind": np.zeros((n, 2), dtype=int),
        "planted": np.ones((n, T, 2), dtype=bool),  # ball of the foot fixed on its support
        "ball": np.zeros((n, T, 2, 3), dtype=FLOAT),
        "theta": z2.copy(),
        "beta_ratio": np.full((n, 1, 1), 0.42, dtype=FLOAT),
        "free_hip_flex": z2.copy(),
        "rho": z2.copy(),
        "weight": np.full((n, T, 2), 0.5, dtype=FLOAT),
        "load": z2.copy(),
        "unilateral": z2.copy(),
        "depth": np.zeros((n, T), dtype=FLOAT),
        "pelvis_x": np.zeros((n, T), dtype=FLOAT),
        "pelvis_z": np.full((n, T), np.nan, dtype=FLOAT),
        "pelvis_rot": np.zeros((n, T), dtype=FLOAT),
        "trunk_fwd": np.zeros((n, T), dtype=FLOAT),
        "arm_flex": z2.copy(),
        "elbow_flex": np.full((n, T, 2), 15.0, dtype=FLOAT),
        "fatigue": np.zeros((n, T), dtype=FLOAT),
        "hip_task_factor": np.ones((n, 1), dtype=FLOAT),
        "deficit_swivel_factor": np.ones((n, 1), dtype=FLOAT),  # the deficits' knee swivel in this task
        "pelvis_y": np.zeros((n, T), dtype=FLOAT),
        "scored": np.ones((n, T, 2), dtype=bool),  # the phase the label scores (drop jump: the landing)
        "gain": np.ones((n, T), dtype=FLOAT),  # this rep's signature gain
        "pushoff": z2.copy(),  # drop-jump push-off valgus (deg), not scored
        "trunk_sway": np.zeros((n, T), dtype=FLOAT),
        "early_heel_rise": z2.copy(),  # gait: extra heel rise of a heel-off in mid-stance (limited dorsiflexion)
        "wobble": z2.copy(),
        "stance_reach": np.full((n, T, 2), STANCE_REACH, dtype=FLOAT),  # planted hip-ankle reach / leg length
        "landing": np.zeros((n, T, 2), dtype=bool),  # walking: a swing foot in its last half (`build_joints`)
    }


def limbs_of(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.stack([left, right], axis=-1).astype(FLOAT)


def _fatigue(t: np.ndarray, p: dict[str, np.ndarray], rep: np.ndarray | None = None) -> np.ndarray:
    """Fatigue grows within a clip (per second at the trial's rate) and a little with every rep."""
    grown = p["fatigue0"] + p["fatigue_rate"] * t
    if rep is not None:
        grown = grown + 0.05 * np.maximum(rep, 0)
    return np.clip(grown, 0.0, 1.5).astype(FLOAT)


def _arms(m: dict[str, np.ndarray], p: dict[str, np.ndarray], depth: np.ndarray) -> None:
    style = p["arm_style"]
    forward = np.where(style == 0, 20.0 + 70.0 * depth, np.where(style == 1, FLOAT(-10.0), FLOAT(75.0)))
    m["arm_flex"] = np.repeat(forward[..., None], 2, axis=2)
    elbow = np.where(style == 1, FLOAT(100.0), np.where(style == 2, FLOAT(130.0), FLOAT(10.0)))
    m["elbow_flex"] = np.repeat(elbow[..., None] * np.ones_like(depth)[..., None], 2, axis=2)


def _planted(m: dict[str, np.ndarray], g: dict[str, np.ndarray], half_width: np.ndarray, z: float | np.ndarray = 0.0) -> None:
    """Balls of both feet planted at +-half_width, a foot's ankle-to-ball length ahead of y=0."""
    m["ball"][..., 0] = half_width[..., None] * LIMB_SIGN
    m["ball"][..., 1] = -g["ball_ahead"][..., None]
    m["ball"][..., 2] = z


def bilateral_squat(t, p, g, task):
    n, T = t.shape
    m = _empty(n, T)
    level, rep, m["gain"] = _rep_profile(t, p)
    depth = np.minimum(level, 1.0)
    theta = 6.0 + level * p["depth"]
    m["theta"] = np.repeat(theta[..., None], 2, axis=2)
    _planted(m, g, 0.5 * p["stance_ratio"] * g["hip_width"])
    # Asymmetric loading: one limb carries more (weight_shift > 0: the left), the pelvis shifts over it.
    shift = p["weight_shift"]
    m["load"] = np.clip(limbs_of(depth * (1.0 + shift), depth * (1.0 - shift)), 0.0, 1.0)
    m["weight"] = limbs_of(np.broadcast_to(0.5 + shift, (n, T)), np.broadcast_to(0.5 - shift, (n, T)))
    m["pelvis_x"] = 0.1 * shift * depth
    m["unilateral"] = 0.25 * m["load"]
    m["depth"] = depth
    m["trunk_fwd"] = p["trunk_lean"] + 0.3 * theta
    m["fatigue"] = _fatigue(t, p, rep)
    m["hip_task_factor"] = np.full((n, 1), 0.25, dtype=FLOAT)
    _arms(m, p, depth)
    return m


def _single_leg(t, p, g, task, *, step: bool):
    n, T = t.shape
    m = _empty(n, T)
    stance = 0 if task.endswith("_left") else 1
    free = 1 - stance
    level, rep, m["gain"] = _rep_profile(t, p)
    depth = np.minimum(level, 1.0)
    theta = 6.0 + level * p["depth"]
    m["kind"][:, free] = FREE
    m["theta"][..., stance] = theta
    m["weight"][..., stance], m["weight"][..., free] = 1.0, 0.0
    half = 0.5 * g["hip_width"] * 0.85
    m["ball"][..., stance, 0] = half * LIMB_SIGN[stance]
    m["ball"][..., stance, 1] = -g["ball_ahead"]
    m["ball"][..., stance, 2] = p["step_height"] if step else 0.0
    m["load"][..., stance] = 0.45 + 0.55 * depth
    m["unilateral"][..., stance] = m["load"][..., stance]
    m["depth"] = depth
    m["pelvis_x"] = (half * LIMB_SIGN[stance] - 0.5 * g["hip_width"] * LIMB_SIGN[stance] * 0.9) * np.ones_like(t)
    if step:
        # The free leg hangs beside the step, nearly straight, reaching for the floor.
        m["free_hip_flex"][..., free] = 8.0 + 10.0 * depth
        m["theta"][..., free] = 8.0 + 4.0 * depth
        m["rho"][..., free] = 10.0
        m["beta_ratio"] = np.full((n, 1, 1), 0.45, dtype=FLOAT)
    else:
        m["free_hip_flex"][..., free] = p["free_hip_flex"] * np.ones_like(t)
        m["theta"][..., free] = p["free_knee_flex"] * np.ones_like(t)
        m["rho"][..., free] = 25.0
        m["beta_ratio"] = np.full((n, 1, 1), 0.40, dtype=FLOAT)
    m["trunk_fwd"] = p["trunk_lean"] + 0.25 * theta
    m["fatigue"] = _fatigue(t, p, rep)
    _arms(m, p, depth)
    return m


def single_leg_squat(t, p, g, task):
    return _single_leg(t, p, g, task, step=False)


def lateral_step_down(t, p, g, task):
    return _single_leg(t, p, g, task, step=True)


def drop_vertical_jump(t, p, g, task):
    """Stand on a box, drop, land on both feet (contact to peak flexion 0.1-0.2 s), jump up, land again.

    The label scores the landing only (initial contact to peak knee flexion, `scored`), as the clinical test
    does; some athletes' knees also cave in during the push-off as the heels rise (`pushoff`, any class)."""
    n, T = t.shape
    m = _empty(n, T)
    box = g["box_height"]
    fall = np.sqrt(2.0 * box / GRAVITY)
    t_land = p["t_off"] + fall
    t_peak = t_land + p["contact_to_peak"]
    t_takeoff = t_peak + p["propulsion_s"]
    t_land2 = t_takeoff + p["jump_flight_s"]
    t_peak2 = t_land2 + 0.15
    t_stand = t_peak2 + 0.5
    v0 = 0.5 * GRAVITY * p["jump_flight_s"]
    z = np.where(t < p["t_off"], box, 0.0)
    falling = (t >= p["t_off"]) & (t < t_land)
    z = np.where(falling, box - 0.5 * GRAVITY * (t - p["t_off"]) ** 2, z)
    flying = (t >= t_takeoff) & (t < t_land2)
    z = np.where(flying, v0 * (t - t_takeoff) - 0.5 * GRAVITY * (t - t_takeoff) ** 2, z)
    y = p["box_setback"] * (1.0 - smoothstep((t - p["t_off"]) / fall))
    peak = p["depth"] * p["rep_depths"][:, :1]
    theta = np.full_like(t, 8.0)
    theta = np.where(falling, 8.0 + 12.0 * smoothstep((t - p["t_off"]) / fall), theta)
    landing = (t >= t_land) & (t < t_takeoff)
    down = 20.0 + (peak - 20.0) * smoothstep((t - t_land) / p["contact_to_peak"])
    up = peak + (10.0 - peak) * smoothstep((t - t_peak) / p["propulsion_s"])
    theta = np.where(landing, np.where(t < t_peak, down, up), theta)
    theta = np.where(flying, 10.0 + 10.0 * smoothstep((t - t_takeoff) / p["jump_flight_s"]), theta)
    after = t >= t_land2
    second = np.where(
        t < t_peak2,
        20.0 + (p["second_depth"] - 20.0) * smoothstep((t - t_land2) / 0.15),
        p["second_depth"] + (8.0 - p["second_depth"]) * smoothstep((t - t_peak2) / (t_stand - t_peak2)),
    )
    theta = np.where(after, second, theta)
    airborne = falling | flying
    m["planted"] = np.repeat(~airborne[..., None], 2, axis=2)
    contact_load = np.where(landing | after, np.clip((theta - 10.0) / (peak - 10.0), 0.0, 1.0), 0.0)
    m["theta"] = np.repeat(theta[..., None], 2, axis=2)
    _planted(m, g, 0.5 * p["stance_ratio"] * g["hip_width"])
    m["ball"][..., 1] += y[..., None]
    m["ball"][..., 2] = z[..., None]
    pushing = landing & (t >= t_peak)
    heel_up = smoothstep((t - t_peak) / p["propulsion_s"])
    rho = np.where(airborne, 30.0 * smoothstep(np.minimum(t - p["t_off"], t_land - t) / 0.06), 0.0)
    rho = np.where(pushing, 27.0 * heel_up, rho)
    rho = np.where(flying, 30.0 * smoothstep(np.minimum((t - t_takeoff) / 0.06 + 0.8, (t_land2 - t) / 0.06)), rho)
    m["rho"] = np.repeat(rho[..., None], 2, axis=2)
    m["pushoff"] = np.repeat((p["pushoff_valgus"] * np.where(pushing, np.sin(np.pi * heel_up), 0.0))[..., None], 2, axis=2)
    m["scored"] = np.repeat(((t >= t_land) & (t <= t_peak))[..., None], 2, axis=2)
    m["load"] = np.repeat(contact_load[..., None], 2, axis=2)
    m["unilateral"] = 0.5 * m["load"]
    m["depth"] = np.clip((theta - 8.0) / (peak - 8.0), 0.0, 1.0)
    m["trunk_fwd"] = p["trunk_lean"] + 0.35 * theta
    m["fatigue"] = _fatigue(t, p)
    m["hip_task_factor"] = np.full((n, 1), 0.5, dtype=FLOAT)
    m["beta_ratio"] = np.full((n, 1, 1), 0.45, dtype=FLOAT)
    _arms(m, p, np.zeros_like(t))
    m["arm_flex"] = np.repeat((np.where(airborne, 120.0, 10.0 + 50.0 * contact_load))[..., None], 2, axis=2)
    m["elbow_flex"] = np.full((n, T, 2), 20.0, dtype=FLOAT)
    return m


# A walking knee is nearly straight, so a medial swivel about the hip-ankle axis barely moves it in the frontal
# plane: at the shared deficit sizes few walking limbs reach the gait threshold (4-5 deg), and a model cannot learn
# gait valgus. Real gait: a hip rotation pattern does reach it, in the loading response: OpenCap subject 4's toe-in
# walk reads 6-7 deg of dynamic FPPA there (knee ~24 deg) against 1-3 deg for his normal walk. Walking deficits
# swivel this much more, so that they do too (31% of walking limbs valgus in `realistic`; 26% in v15).
WALKING_DEFICIT_SWIVEL = 1.5

# How far a planted leg reaches, as a share of thigh + shank: the pelvis sits no higher than its stance legs
# allow. 0.985 leaves the knee bent ~20 deg, the height of a squat's or a run's stance.
STANCE_REACH = 0.985
# A walking stance knee straightens to a few degrees in mid-stance and bends in the loading response, more at
# higher speed (gait norms: ~15-20 deg at 1.3 m/s). With the squat's reach the synthetic
# walkers stood on 19-31 deg knees all through stance, where OpenCap's real walks (`../shared/realdata`) straighten
# to 4-11 deg: a crouch the model learnt as what walking looks like.
WALK_MIDSTANCE_KNEE_DEG = 5.0
WALK_LOADING_KNEE_DEG = (12.0, 24.0)  # at walking_speed_m_s's default range (1.0 to 1.6 m/s), linear in speed


def walking_stance_reach(u_stance: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Reach of a walking stance leg through its stance (`u_stance` 0 → 1), as a share of thigh + shank: the
    hip-ankle distance that leaves the knee bent `WALK_MIDSTANCE_KNEE_DEG`, more in the loading response (first 40%
    of stance). For equal segments, reach = cos(knee / 2)."""
    lo, hi = WALK_LOADING_KNEE_DEG
    loading = np.clip(lo + (hi - lo) * (speed - 1.0) / 0.6, lo, hi)
    bump = np.sin(np.pi * np.clip(u_stance / 0.4, 0.0, 1.0))
    knee = WALK_MIDSTANCE_KNEE_DEG + (loading - WALK_MIDSTANCE_KNEE_DEG) * bump
    return np.cos(np.radians(0.5 * knee))


def walking_stance_load(u_stance: np.ndarray) -> np.ndarray:
    """Load on a walking stance leg through its stance (`u_stance` 0 → 1): the ground reaction's two humps, in
    the loading response and in terminal stance, ~0.75 of them between. A single hump at mid-stance put the
    label's loaded frames (`LabelConfig.load_threshold`) on the straight mid-stance knee only, where a real
    toe-in walk (OpenCap subject 4) peaks in the loading response."""
    humps = np.sin(np.pi * u_stance) + 0.3 * np.sin(3.0 * np.pi * u_stance)
    return 0.75 * np.clip(humps, 0.0, None) / 0.92  # 0.92: the humps' peak


def _gait(t, p, g, task, *, running: bool):
    """Gait on a treadmill (stance balls move backward with the belt, planted on it; swing feet arc forward)
    or overground (`overground`: the whole body travels forward at the belt's speed, so stance feet stay put
    in the world and the athlete walks through the scene, centred on the origin at mid-clip)."""
    n, T = t.shape
    m = _empty(n, T)
    stance_fraction = 0.38 if running else 0.62
    stride = p["stride_s"]
    phase0 = p["gait_phase0"]
    m["kind"][:] = GAIT
    # Distance the belt carries a stance foot (the ankle travels less than the body: heel-to-toe roll).
    belt = 0.7 * p["speed"] * stride * stance_fraction
    clearance = 0.22 if running else 0.10
    half = 0.5 * g["hip_width"] * (p["step_width_ratio"] - (0.2 if running else 0.0))
    pelvis_z = np.zeros_like(t)
    travel = p["overground"] * belt / (stride * stance_fraction) * (t - 0.5 * p["duration"])  # forward = -y
    for limb in (0, 1):
        phi = np.mod(t / stride + phase0 + 0.5 * limb, 1.0)
        in_stance = phi < stance_fraction
        u_stance = phi / stance_fraction
        u_swing = (phi - stance_fraction) / (1.0 - stance_fraction)
        y_stance = -0.5 * belt + belt * u_stance
        y_swing = 0.5 * belt - belt * smoothstep(u_swing)
        m["ball"][..., limb, 0] = half * LIMB_SIGN[limb]
        m["ball"][..., limb, 1] = np.where(in_stance, y_stance, y_swing) - g["ball_ahead"] * 0.5 - travel
        # A walking foot sets down at rest (sin^2: no vertical speed at contact), so the pelvis over a straight leading
        # leg does not follow it down at ~0.75 m/s; a running foot lands moving.
        lift = np.sin(np.pi * u_swing)
        m["ball"][..., limb, 2] = np.where(in_stance, 0.0, clearance * (lift if running else lift**2))
        m["planted"][..., limb] = in_stance
        if not running:
            m["stance_reach"][..., limb] = walking_stance_reach(u_stance, p["speed"])
            m["landing"][..., limb] = ~in_stance & (u_swing > 0.5)
        bump = np.where(in_stance, np.sin(np.pi * u_stance), 0.0)
        m["load"][..., limb] = bump if running else np.where(in_stance, walking_stance_load(u_stance), 0.0)
        m["unilateral"][..., limb] = m["load"][..., limb]
        heel_rise = 35.0 * smoothstep((u_stance - 0.55) / 0.45) if not running else 25.0 * smoothstep((u_stance - 0.5) / 0.5)
        m["rho"][..., limb] = np.where(in_stance, heel_rise, 25.0 * (1.0 - smoothstep(u_swing)))
        # A calf too tight to let the shank roll over the foot lifts the heel from mid-stance (limited
        # dorsiflexion applies this share of it).
        early = 35.0 * smoothstep((u_stance - 0.25) / 0.5) if not running else 25.0 * smoothstep((u_stance - 0.2) / 0.5)
        m["early_heel_rise"][..., limb] = np.where(in_stance, np.maximum(early - heel_rise, 0.0), 0.0)
        m["arm_flex"][..., 1 - limb] = (35.0 if running else 18.0) * (np.cos(2 * np.pi * phi) * -1.0)
        m["elbow_flex"][..., 1 - limb] = 85.0 if running else 20.0
        pelvis_z = pelvis_z + np.where(in_stance, bump, 0.0)
        m["pelvis_x"] = m["pelvis_x"] + 0.015 * LIMB_SIGN[limb] * bump
    m["weight"] = np.full((n, T, 2), 0.5, dtype=FLOAT)
    if running:  # a runner sinks into the stance leg
        m["pelvis_z"] = g["hip_stand"] - 0.05 - 0.035 * (np.clip(pelvis_z, 0.0, 1.0) - 0.5)
    else:  # a walker's pelvis rides as high as the stance legs reach: highest in mid-stance, lowest in double support
        m["pelvis_z"] = np.broadcast_to(g["ankle_height"] + g["thigh"] + g["shank"], t.shape).astype(FLOAT)
    m["pelvis_rot"] = p["pelvis_rot_amp"] * np.sin(2 * np.pi * (t / stride + phase0))
    m["depth"] = np.max(m["load"], axis=2)
    m["trunk_fwd"] = p["trunk_lean"] * 0.5 + (8.0 if running else 2.0)
    m["pelvis_y"] = -travel
    m["fatigue"] = _fatigue(t, p)
    m["hip_task_factor"] = np.full((n, 1), 0.8 if running else 0.5, dtype=FLOAT)
    if not running:
        m["deficit_swivel_factor"] = np.full((n, 1), WALKING_DEFICIT_SWIVEL, dtype=FLOAT)
    return m


def walking(t, p, g, task):
    return _gait(t, p, g, task, running=False)


def running(t, p, g, task):
    return _gait(t, p, g, task, running=True)


PROGRAMMES = {
    "bilateral_squat": bilateral_squat,
    "single_leg_squat": single_leg_squat,
    "lateral_step_down": lateral_step_down,
    "drop_vertical_jump": drop_vertical_jump,
    "walking": walking,
    "running": running,
}


def programme(task: str, t: np.ndarray, p: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> dict[str, Any]:
    """The task's programme plus what varies within every clip whatever the task: slow lateral sway of the
    pelvis and trunk, and a knee wobble (deg, applied under load by the mechanisms)."""
    m = PROGRAMMES[task_family(task)](t, p, g, task)
    sway = np.sin(2.0 * np.pi * p["sway_hz"] * t + p["sway_phase"]).astype(FLOAT)
    m["pelvis_x"] = m["pelvis_x"] + p["sway_m"] * sway
    m["trunk_sway"] = 1.5 * sway
    omega = 2.0 * np.pi * p["wobble_hz"] * t
    m["wobble"] = (p["knee_wobble"][..., None] * limbs_of(np.sin(omega + p["wobble_phase_left"]),
                                                          np.sin(1.3 * omega + p["wobble_phase_right"]))).astype(FLOAT)
    return m
