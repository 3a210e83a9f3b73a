"""Clean 3D motion of a batch of trials: each athlete's geometry and deficit parameters → joint trajectories
(`simulate`), and the rescaling of the healthy knee swivel that keeps healthy limbs below their threshold."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth.athletes import FLOAT, Athlete
from valgusml.synth.config import GeneratorConfig
from valgusml.synth.kinematics import (
    JOINTS,
    build_joints,
    built_joints,
    resolve_knees,
    standing_fppa_reference,
)
from valgusml.synth.mechanisms import apply_mechanisms
from valgusml.synth.observation import (
    layout_index,
)
from valgusml.synth.tasks import FREE, Trial, _empty, programme

BATCH = 64  # trials simulated together: large enough to vectorise, small enough to stay in cache
FRAME_BUDGET = 64 * 360  # padded frames per batch: long clips go in smaller batches


def length_batches(trials: list[Trial], indices: list[int]) -> list[list[int]]:
    """`indices` sorted by clip length and cut into batches of at most `BATCH` trials and `FRAME_BUDGET`
    padded frames: clips last 2-20 s at 25-120 fps, and a fixed count per batch padded every short clip to
    the longest (+58% frames). Each trial's result does not depend on its batch."""
    order = sorted(indices, key=lambda i: (trials[i].n_frames, i))
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < BATCH and (len(out[-1]) + 1) * trials[i].n_frames <= FRAME_BUDGET:
            out[-1].append(i)
        else:
            out.append([i])
    return out


@dataclass
class Simulated:
    """Clean motion of one trial (its own frames only) and what the labels need."""

    joints: np.ndarray  # (T, K, 3) world metres, K = `built_joints(emit)` (canonical joints first)
    load: np.ndarray  # (T, 2)
    swivel_parts: np.ndarray  # (T, 2, 5): healthy, then DEFICITS
    reference: np.ndarray  # (1, 20, 3) quiet standing frame
    knee_bend: np.ndarray  # (3, T, 2) direction each knee bends towards (to re-solve it)
    chained: np.ndarray  # (2,) limbs whose knee is solved from hip and ankle (not a held free leg)
    scored: np.ndarray  # (T, 2) frames of the phase the label scores (a drop jump's landing; else all)
    healthy_swivel_scale: list[float] | None = None  # set by labelling: analysis only, never in seq.meta
    frame_targets: np.ndarray | None = None  # (T, C) set by labelling: `valgusml.data.frame_targets`


# -- arrays from trials ---------------------------------------------------------------------------------------


def _geometry(athletes: list[Athlete], cfg: GeneratorConfig) -> dict[str, np.ndarray]:
    keys = ("thigh", "shank", "foot", "ankle_height", "hip_width", "shoulder_width", "trunk", "upper_arm", "forearm", "height")
    g = {k: np.array([[a.seg[k]] for a in athletes], dtype=FLOAT) for k in keys}
    g["ball_ahead"] = 0.5 * g["foot"]
    g["box_height"] = np.full_like(g["foot"], cfg.tasks.box_height_m)
    g["hip_stand"] = g["ankle_height"] + 0.985 * (g["thigh"] + g["shank"])
    return g


def _params(trials: list[Trial]) -> dict[str, np.ndarray]:
    col = lambda values: np.asarray(values, dtype=FLOAT)[:, None]  # noqa: E731
    limb = lambda values: np.asarray(values, dtype=FLOAT)[:, None, :]  # noqa: E731
    p = {k: col([t.params[k] for t in trials]) for k in trials[0].params}
    for key in trials[0].reps:  # per-rep arrays (n, MAX_REPS); rep starts stay float64 (inf = no such rep)
        p[key] = np.array([t.reps[key] for t in trials], dtype=np.float64 if key == "rep_start" else FLOAT)
    ath = [t.athlete for t in trials]
    p["activation"] = np.stack([a.activation for a in ath]).astype(FLOAT)[:, None]
    p["fatigue_sensitivity"] = col([a.fatigue_sensitivity for a in ath])
    p["dorsiflexion_rom"] = limb([a.dorsiflexion_rom_deg for a in ath])
    p["healthy_swivel"] = limb([a.healthy_swivel_deg for a in ath])
    p["structural_valgus"] = limb([a.structural_valgus_deg for a in ath])
    # In-toeing athletes turn their feet in when they walk or run, and their knees by `in_toeing_knee_share` of
    # that turn: the knee bend direction follows half the foot progression plus the knee track, so the track
    # adds the share less that half (share 1: the knees turn as far as the feet; 0: they keep their course).
    in_toe = [a.in_toeing_for(t.task) for a, t in zip(ath, trials, strict=True)]
    p["knee_track"] = limb([a.knee_track_deg - (a.in_toeing_knee_share - 0.5) * turn
                            for a, turn in zip(ath, in_toe, strict=True)])
    p["foot_progression"] = limb([a.foot_progression_deg + t.params["progression_jitter"] - turn
                                  for a, t, turn in zip(ath, trials, in_toe, strict=True)])
    for name in ("pelvic_drop_deg", "rearfoot_eversion_deg", "navicular_drop_mm"):
        p[name.rsplit("_", 1)[0]] = col([getattr(a, name) for a in ath])
    for name in ath[0].effects:
        p[name.rsplit("_", 1)[0]] = col([a.effects[name] for a in ath])
    p["drive_onset"] = np.array([a.drive_onset for a in ath], dtype=FLOAT)[:, None, None, :]  # (n, 1, 1, 5)
    p["drive_exponent"] = np.array([a.drive_exponent for a in ath], dtype=FLOAT)[:, None, None, :]
    for name in ("adductor_start_fraction", "pronation_static_fraction", "dorsiflexion_margin_deg", "hip_compensation",
                 "trunk_lean_toward_deg"):
        p[name] = col([getattr(a, name) for a in ath])
    return p


@cache
def emitted_joints(skeleton: str) -> frozenset[str]:
    """Generator joints read downstream for `skeleton`: its layout's joints and the canonical ones (labels)."""
    return frozenset(CANONICAL_JOINTS) | {JOINTS[k] for k in layout_index(skeleton)}


@cache
def layout_columns(skeleton: str) -> np.ndarray:
    """For each joint of `skeleton`, its column in the joints simulated for it (`built_joints`)."""
    built = built_joints(emitted_joints(skeleton))
    return np.array([built.index(JOINTS[k]) for k in layout_index(skeleton)])


def simulate(cfg: GeneratorConfig, trials: list[Trial], emit: frozenset[str] | None = None) -> list[Simulated]:
    """Clean 3D motion of `trials`, vectorised over trials (padded to the longest) and frames; `emit` limits
    the face and hand points built (see `build_joints`; default: all joints)."""
    n = len(trials)
    T = max(t.n_frames for t in trials)
    fps = np.array([t.fps for t in trials])
    time = (np.arange(T)[None, :] / fps[:, None]).astype(FLOAT)
    p = _params(trials)
    g = _geometry([t.athlete for t in trials], cfg)
    m = _empty(n, T)
    tasks = np.array([t.task for t in trials])
    for task in dict.fromkeys(tasks.tolist()):
        idx = np.flatnonzero(tasks == task)
        sub = programme(task, time[idx], {k: v[idx] for k, v in p.items()}, {k: v[idx] for k, v in g.items()})
        for key, value in sub.items():
            m[key][idx] = value
    apply_mechanisms(cfg, m, p)
    joints = build_joints(m, g, p, emit)
    reference = standing_fppa_reference(g, p)
    chained = m["kind"] != FREE
    return [
        Simulated(joints[i, : t.n_frames], m["load"][i, : t.n_frames], m["swivel_parts"][i, : t.n_frames], reference[i],
                  m["knee_bend"][:, i, : t.n_frames], chained[i], m["scored"][i, : t.n_frames])
        for i, t in enumerate(trials)
    ]


def scale_swivel(trials: list[Trial], sims: list[Simulated], healthy: np.ndarray, deficit: np.ndarray) -> None:
    """Multiply each limb's healthy swivel by `healthy` `(n, 2)` and its deficits' swivel by `deficit` `(n, 2)`,
    and re-solve the knees, in place: all trials' frames in one `resolve_knees` call (the swivel moves nothing
    else)."""
    lengths = [len(s.joints) for s in sims]
    per_frame = lambda values: np.repeat(np.asarray(values, dtype=FLOAT), lengths, axis=0)  # noqa: E731
    for sim, healthy_factor, deficit_factor in zip(sims, healthy, deficit, strict=True):
        sim.swivel_parts[..., 0] *= healthy_factor.astype(FLOAT)
        sim.swivel_parts[..., 1:] *= deficit_factor.astype(FLOAT)[:, None]
    joints = np.concatenate([s.joints for s in sims])
    resolve_knees(
        joints,
        per_frame([s.chained for s in sims]),
        np.concatenate([s.knee_bend for s in sims], axis=1),
        per_frame([[t.athlete.seg["thigh"]] for t in trials]),
        per_frame([[t.athlete.seg["shank"]] for t in trials]),
        np.concatenate([s.swivel_parts.sum(axis=-1) for s in sims]),
        per_frame([t.athlete.structural_valgus_deg for t in trials]),
    )
    start = 0
    for sim, n in zip(sims, lengths, strict=True):
        sim.joints[:] = joints[start : start + n]
        start += n
