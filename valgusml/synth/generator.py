"""The generator: athletes → trials → kinematics → labels → observation → sequences and sharded datasets.

Determinism: every random draw comes from a stream keyed by (seed, athlete index, trial index) through
`numpy.random.SeedSequence` spawn keys, and the batched computations work trial by trial (no statistic
crosses trials), so a sequence depends only on the config and its keys. Shard k always holds the same
athletes (fixed by the config and `shard_size`) in the same batches, so a dataset is the same bytes and
fingerprint whatever the number of workers, and a killed run resumes by writing only the shards without a
`.done.json` marker. Workers are spawned processes (safe with threads, same on every platform).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.data.format import completed_shards, dumps, finalize_dataset, open_dataset, write_shard
from valgusml.errors import ConfigError
from valgusml.features.geometry import limb_fppa_deg
from valgusml.labels import DEFICITS, none_label, task_family, validate_limb_label
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth.athletes import FLOAT, Athlete, sample_athlete
from valgusml.synth.config import GeneratorConfig, validate
from valgusml.synth.kinematics import (
    JOINTS,
    build_joints,
    built_joints,
    resolve_knees,
    standing_fppa_reference,
)
from valgusml.synth.mechanisms import apply_mechanisms
from valgusml.synth.observation import (
    AIM_HEIGHT_FRACTION,
    estimator_noise,
    layout_index,
    project,
    sample_camera,
    swap_index,
)
from valgusml.synth.tasks import FREE, Trial, _empty, programme, sample_trial

GENERATOR_VERSION = 2  # bump whenever the same config gives different sequences
BATCH = 64  # trials simulated together: large enough to vectorise, small enough to stay in cache
RESCALE_ROUNDS = 4


@dataclass
class Simulated:
    """Clean motion of one trial (its own frames only) and what the labels need."""

    joints: np.ndarray  # (T, K, 3) world metres, K = `built_joints(emit)` (canonical joints first)
    load: np.ndarray  # (T, 2)
    swivel_parts: np.ndarray  # (T, 2, 5): healthy, then DEFICITS
    reference: np.ndarray  # (1, 20, 3) quiet standing frame
    knee_bend: np.ndarray  # (3, T, 2) direction each knee bends towards (to re-solve it)
    chained: np.ndarray  # (2,) limbs whose knee is solved from hip and ankle (not a held free leg)


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
    p["rep_depths"] = np.array([[t.params[f"rep_depth{k}"] for k in range(4)] for t in trials], dtype=FLOAT)
    ath = [t.athlete for t in trials]
    p["activation"] = np.stack([a.activation for a in ath]).astype(FLOAT)[:, None]
    p["fatigue_sensitivity"] = col([a.fatigue_sensitivity for a in ath])
    p["dorsiflexion_rom"] = limb([a.dorsiflexion_rom_deg for a in ath])
    p["healthy_swivel"] = limb([a.healthy_swivel_deg for a in ath])
    p["structural_valgus"] = limb([a.structural_valgus_deg for a in ath])
    p["foot_progression"] = limb([a.foot_progression_deg + t.params["progression_jitter"] for a, t in zip(ath, trials, strict=True)])
    for name in ("pelvic_drop_deg", "rearfoot_eversion_deg", "navicular_drop_mm"):
        p[name.rsplit("_", 1)[0]] = col([getattr(a, name) for a in ath])
    for name in ath[0].effects:
        p[name.rsplit("_", 1)[0]] = col([a.effects[name] for a in ath])
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
                  m["knee_bend"][:, i, : t.n_frames], chained[i])
        for i, t in enumerate(trials)
    ]


def scale_healthy_swivel(trials: list[Trial], sims: list[Simulated], factors: np.ndarray) -> None:
    """Multiply each limb's healthy swivel by `factors` `(n, 2)` and re-solve the knees, in place: all trials'
    frames in one `resolve_knees` call (the swivel moves nothing else)."""
    lengths = [len(s.joints) for s in sims]
    per_frame = lambda values: np.repeat(np.asarray(values, dtype=FLOAT), lengths, axis=0)  # noqa: E731
    for sim, factor in zip(sims, factors, strict=True):
        sim.swivel_parts[..., 0] *= factor.astype(FLOAT)
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


# -- labels ---------------------------------------------------------------------------------------------------


LEGS = slice(CANONICAL_JOINTS.index("left_hip"), CANONICAL_JOINTS.index("right_ankle") + 1)  # hips, knees, ankles
assert CANONICAL_JOINTS[LEGS] == ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")


def measure_fppa(sims: list[Simulated]) -> list[tuple[np.ndarray, np.ndarray]]:
    """FPPA `(T, 2)` of each trial and `(2,)` of its standing reference, by `valgusml.features.limb_fppa_deg`
    (what `fppa_deg` computes) on a clean frontal view of the lab (x = subject's left, y down: the frontal
    plane the athlete faces); one call for the whole batch (the measure is per frame)."""
    lengths = [len(s.joints) for s in sims]
    ref_start = sum(lengths)
    legs = np.concatenate([s.joints[:, LEGS] for s in sims] + [s.reference[:, LEGS] for s in sims])  # float32, as simulated
    x, y = legs[..., 0], -legs[..., 2]
    fppa = limb_fppa_deg(x[:, 0:2], y[:, 0:2], x[:, 2:4], y[:, 2:4], x[:, 4:6], y[:, 4:6])
    out, start = [], 0
    for k, n in enumerate(lengths):
        out.append((fppa[start : start + n], fppa[ref_start + k]))
        start += n
    return out


def label_trial(
    cfg: GeneratorConfig, trial: Trial, sim: Simulated, fppa: np.ndarray, standing: np.ndarray
) -> tuple[dict, dict, np.ndarray]:
    """Per-limb labels from the motion: FPPA measured on the clean frontal view by `valgusml.features`.

    Returns (labels, measured, unexplained) where `unexplained[limb]` marks a valgus limb whose swivel at the
    peak comes mostly from healthy variation rather than a deficit (the generator then tones it down).
    """
    threshold = cfg.labels.threshold_deg[task_family(trial.task)][trial.athlete.sex]
    loaded = sim.load > cfg.labels.load_threshold  # (T, 2)
    was_loaded = loaded.any(axis=0)
    # The loaded peak; a limb never loaded reports its overall peak (and cannot be valgus).
    peak_frames = np.where(was_loaded, np.argmax(np.where(loaded, fppa, -np.inf), axis=0), np.argmax(fppa, axis=0))
    peaks = fppa[peak_frames, [0, 1]]
    dynamic = peaks - standing
    parts = np.maximum(sim.swivel_parts[peak_frames, [0, 1]], 0.0)  # (2 limbs, healthy + DEFICITS)
    deficit_total = parts[:, 1:].sum(axis=1)
    valgus = was_loaded & (dynamic > threshold)
    unexplained = valgus & ((deficit_total <= parts[:, 0]) | (deficit_total <= 1e-6))
    labels = {}
    for k, limb in enumerate(("left", "right")):
        peak = round(float(peaks[k]), 3)
        if valgus[k] and deficit_total[k] > 1e-6:
            shares = parts[k, 1:] / deficit_total[k]
            labels[limb] = validate_limb_label(limb, {
                "valgus": True,
                "mechanism": DEFICITS[int(np.argmax(shares))],
                "severity_deg": peak,
                "contributions": {m: round(s, 4) for m, s in zip(DEFICITS, shares.tolist(), strict=True) if s > 1e-4},
            })
        else:
            labels[limb] = none_label(peak)
    measured = {
        "fppa_peak_deg": [round(v, 3) for v in peaks.tolist()],
        "fppa_standing_deg": [round(v, 3) for v in standing.tolist()],
        "dynamic_fppa_deg": [round(v, 3) for v in dynamic.tolist()],
        "peak_time_s": [round(f / trial.fps, 4) for f in peak_frames.tolist()],
        "loaded": was_loaded.tolist(),
        "threshold_deg": threshold,
    }
    return labels, measured, unexplained


def simulate_and_label(cfg: GeneratorConfig, trials: list[Trial]) -> list[tuple[Simulated, dict, dict]]:
    """Simulate, label, and tone down healthy swivel where it alone would make a valgus limb."""
    # Batches of similar length share padding; each trial's result does not depend on its batch.
    order = sorted(range(len(trials)), key=lambda i: (trials[i].n_frames, i))
    sims: list[Any] = [None] * len(trials)
    for b in range(0, len(order), BATCH):
        part = order[b : b + BATCH]
        for i, sim in zip(part, simulate(cfg, [trials[i] for i in part], emitted_joints(cfg.observation.skeleton)), strict=True):
            sims[i] = sim
    scale = np.ones((len(trials), 2))
    todo = list(range(len(trials)))
    results: list[Any] = [None] * len(trials)
    for round_ in range(RESCALE_ROUNDS + 1):
        factors: dict[int, np.ndarray] = {}
        for i, (fppa, standing) in zip(todo, measure_fppa([sims[i] for i in todo]), strict=True):
            labels, measured, unexplained = label_trial(cfg, trials[i], sims[i], fppa, standing)
            if unexplained.any() and round_ < RESCALE_ROUNDS:
                factor = np.ones(2)
                for k in np.flatnonzero(unexplained):
                    target = measured["threshold_deg"] - cfg.labels.healthy_margin_deg
                    ratio = target / max(measured["dynamic_fppa_deg"][k], 1e-6)
                    factor[k] = float(np.clip(0.9 * ratio, 0.0, 0.95))
                scale[i] *= factor
                factors[i] = factor
            else:
                measured["healthy_swivel_scale"] = [round(float(s), 4) for s in scale[i]]
                results[i] = (sims[i], labels, measured)
        if not factors:
            break
        todo = list(factors)
        scale_healthy_swivel([trials[i] for i in todo], [sims[i] for i in todo], np.array(list(factors.values())))
    return results


# -- observation ----------------------------------------------------------------------------------------------


def observe(cfg: GeneratorConfig, trials: list[Trial], results: list[tuple[Simulated, dict, dict]]) -> list[KeypointSequence]:
    """Emit a batch of simulated trials as sequences: estimator error, camera, layout."""
    obs = cfg.observation
    index, columns = layout_index(obs.skeleton), layout_columns(obs.skeleton)
    n, K = len(trials), len(index)
    T = max(t.n_frames for t in trials)
    world = np.zeros((n, T, K, 3), dtype=FLOAT)
    for i, (sim, _, _) in enumerate(results):
        np.take(sim.joints, columns, axis=1, out=world[i, : len(sim.joints)])  # only what the layout emits
    cameras = [sample_camera(cfg, t.rng, t.athlete.height_m) for t in trials] if obs.dims == 2 else None
    if cfg.noise.enabled:
        error, confidence, as_nan, swap = estimator_noise(cfg, trials, T, index)
        world += error
    else:
        confidence = np.ones((n, T, K), dtype=np.float32)
        as_nan = swap = None
    if cameras is not None:
        points = project(world, cameras, np.array([AIM_HEIGHT_FRACTION * t.athlete.height_m for t in trials]))
    else:
        points = world
    if as_nan is not None:
        points[as_nan] = np.nan
        confidence[as_nan] = 0.0
    points = points.astype(np.float32, copy=False)
    flip = swap_index(obs.skeleton)
    out = []
    for i, (trial, (_sim, labels, measured)) in enumerate(zip(trials, results, strict=True)):
        kp, conf = points[i, : trial.n_frames], confidence[i, : trial.n_frames]
        swapped = 0
        if swap is not None and swap[i].any():
            rows = swap[i, : trial.n_frames]
            kp[rows] = kp[rows][:, flip]
            conf[rows] = conf[rows][:, flip]
            swapped = int(rows.sum())
        meta = {
            "generator_version": GENERATOR_VERSION,
            "trial": trial.index,
            "athlete": trial.athlete.describe(),
            "measured": measured,
            "camera": cameras[i] if cameras is not None else None,
            "swapped_frames": swapped,
            "units": "pixels" if cameras is not None else "metres",
        }
        out.append(KeypointSequence.trusted(  # valid by construction: see tests/synth/test_generator.py
            keypoints=kp,
            confidence=conf,
            skeleton=obs.skeleton,
            fps=trial.fps,
            id=trial.id,
            athlete_id=trial.athlete.id,
            task=trial.task,
            source=f"synthetic:{cfg.preset}",
            labels=labels,
            meta=meta,
        ))
    return out


def trials_of(cfg: GeneratorConfig, athlete_indices: Iterable[int]) -> list[Trial]:
    out = []
    for index in athlete_indices:
        athlete = sample_athlete(cfg, int(index))
        out.extend(sample_trial(cfg, athlete, k) for k in range(cfg.tasks.trials_per_athlete))
    return out


def generate_sequences(cfg: GeneratorConfig, athlete_indices: Iterable[int]) -> Iterator[KeypointSequence]:
    """Sequences of the given athletes (all their trials, in order), in memory."""
    validate(cfg)
    indices = [int(i) for i in athlete_indices]
    if any(i < 0 for i in indices):
        raise ConfigError(f"athlete indices must be >= 0, got {min(indices)}")
    # Simulate a few athletes at a time; within a batch, trials of similar length share padding.
    per_chunk = max(1, 4 * BATCH // cfg.tasks.trials_per_athlete)
    for start in range(0, len(indices), per_chunk):
        trials = trials_of(cfg, indices[start : start + per_chunk])
        results = simulate_and_label(cfg, trials)
        order = sorted(range(len(trials)), key=lambda i: (trials[i].n_frames, i))
        done: dict[int, KeypointSequence] = {}
        for b in range(0, len(order), BATCH):
            chunk = order[b : b + BATCH]
            for i, seq in zip(chunk, observe(cfg, [trials[i] for i in chunk], [results[i] for i in chunk]), strict=True):
                done[i] = seq
        for i in range(len(trials)):
            yield done.pop(i)


# -- datasets -------------------------------------------------------------------------------------------------

GENERATOR_FILE = "generator.json"


def shard_plan(cfg: GeneratorConfig, shard_size: int) -> list[range]:
    """Athletes of each shard: fixed by the config and `shard_size` (sequences per shard, whole athletes)."""
    per_shard = max(1, shard_size // cfg.tasks.trials_per_athlete)
    return [range(s, min(s + per_shard, cfg.n_athletes)) for s in range(0, cfg.n_athletes, per_shard)]


def _shard_job(cfg_dict: dict, out: str, shard: int, athletes: tuple[int, int]) -> tuple[int, int]:
    cfg = GeneratorConfig.from_dict(cfg_dict)
    seqs = list(generate_sequences(cfg, range(*athletes)))
    write_shard(out, shard, seqs)
    return shard, len(seqs)


def _generator_record(cfg: GeneratorConfig, shard_size: int) -> dict:
    return {"generator_version": GENERATOR_VERSION, "shard_size": shard_size, "config": cfg.to_dict()}


def _diff(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if a == b else path or "(root)"


def _claim_folder(out: Path, record: dict) -> None:
    marker = out / GENERATOR_FILE
    if marker.is_file():
        existing = json.loads(marker.read_text())
        if dumps(existing) != dumps(json.loads(dumps(record))):
            key = _diff(existing, json.loads(dumps(record)))
            raise ConfigError(
                f"{out} holds a dataset generated with a different config (first difference: {key!r}); "
                "use another `out` folder or delete this one"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a generator output folder ({GENERATOR_FILE} missing); "
                          "use an empty or new `out` folder")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(json.loads(dumps(record)), indent=1))


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def generate_dataset(
    cfg: GeneratorConfig,
    out: str | Path,
    workers: int | None = None,
    progress: bool = True,
    shard_size: int = 512,
):
    """Write the dataset of `cfg` to `out` in shards, in parallel, resumably; returns the opened `Dataset`."""
    validate(cfg)
    if shard_size < 1:
        raise ConfigError(f"config key 'shard_size' must be >= 1, got {shard_size}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ConfigError(f"config key 'workers' must be >= 1, got {workers}")
    out = Path(out)
    record = _generator_record(cfg, shard_size)
    _claim_folder(out, record)
    plan = shard_plan(cfg, shard_size)
    done = set(completed_shards(out))
    todo = [(k, (r.start, r.stop)) for k, r in enumerate(plan) if f"{k:05d}" not in done]
    total = cfg.n_athletes * cfg.tasks.trials_per_athlete
    already = sum(len(plan[int(name)]) for name in done if int(name) < len(plan)) * cfg.tasks.trials_per_athlete

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("sequences"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("generate", total=total, completed=already)
        cfg_dict = cfg.to_dict()
        if workers == 1 or len(todo) <= 1:
            for shard, athletes in todo:
                _, count = _shard_job(cfg_dict, str(out), shard, athletes)
                bar.advance(task, count)
        else:
            import multiprocessing
            from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

            # spawn: safe with threads and identical on every platform; at most 2 shards queued per worker
            # keeps memory flat however many shards there are.
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
                pending = set()
                queue = iter(todo)
                for shard, athletes in queue:
                    pending.add(pool.submit(_shard_job, cfg_dict, str(out), shard, athletes))
                    if len(pending) >= 2 * workers:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            bar.advance(task, f.result()[1])
                for f in pending:
                    bar.advance(task, f.result()[1])
    meta = {"generator": record, "n_athletes": cfg.n_athletes, "preset": cfg.preset}
    finalize_dataset(out, meta)
    return open_dataset(out)


def expected_sequences(cfg: GeneratorConfig) -> int:
    return cfg.n_athletes * cfg.tasks.trials_per_athlete


__all__ = ["generate_dataset", "generate_sequences", "label_trial", "shard_plan", "simulate"]
