"""The generator: athletes → trials → simulation → labels → observation → sequences, in memory.

Determinism: every random draw comes from a stream keyed by (seed, athlete index, trial index) through
`numpy.random.SeedSequence` spawn keys, and the batched computations work trial by trial (no statistic
crosses trials), so a sequence depends only on the config and its keys. Writing datasets to disk is
`valgusml.synth.dataset`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from valgusml.errors import ConfigError
from valgusml.sequence import KeypointSequence
from valgusml.synth.athletes import FLOAT, sample_athlete
from valgusml.synth.config import GeneratorConfig, validate
from valgusml.synth.labelling import simulate_and_label
from valgusml.synth.observation import (
    AIM_HEIGHT_FRACTION,
    estimator_noise,
    layout_index,
    project,
    sample_camera,
    swap_index,
)
from valgusml.synth.simulation import BATCH, Simulated, layout_columns
from valgusml.synth.tasks import Trial, sample_trial

GENERATOR_VERSION = 2  # bump whenever the same config gives different sequences


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
    return checked_sequences(validate(cfg), athlete_indices)


def checked_sequences(cfg: GeneratorConfig, athlete_indices: Iterable[int]) -> Iterator[KeypointSequence]:
    """`generate_sequences` for a config already validated (a dataset's shards: checked once, up front)."""
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
