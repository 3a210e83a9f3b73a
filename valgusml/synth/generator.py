"""The generator: athletes → trials → simulation → labels → observation → sequences, in memory.

Determinism: every random draw comes from a stream keyed by (seed, athlete index, trial index) through
`numpy.random.SeedSequence` spawn keys, and the batched computations work trial by trial (no statistic
crosses trials), so a sequence depends only on the config and its keys. Writing datasets to disk is
`valgusml.synth.dataset`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from valgusml.errors import ConfigError
from valgusml.features.view import front_view_yaw_deg
from valgusml.sequence import KeypointSequence
from valgusml.synth.athletes import FLOAT, sample_athlete
from valgusml.synth.config import GeneratorConfig, validate
from valgusml.synth.labelling import simulate_and_label
from valgusml.synth.observation import observe_points, swap_index
from valgusml.synth.simulation import BATCH, Simulated, layout_columns, length_batches
from valgusml.synth.tasks import Trial, sample_trial

GENERATOR_VERSION = 17  # 17: per-frame targets read the 3D rearfoot angle in the foot's own frontal plane, pitch included (a push-off's heel rising over the ankle read up to 150 deg), and a rebuilt real walk's (`motion.real_paths`) scored stances leave out its swing (a foot moving forward past the pelvis); the presets' sequences are v16's; 16: walking stance legs reach phase by phase (knee ~5 deg in mid-stance, 12-24 in the loading response; was 19-31 all stance), walking load has the ground reaction's two humps (was one at mid-stance), walking deficits swivel 1.5x (was 2x), a walking swing foot sets down at rest and holds the pelvis down over its last half of swing (the pelvis dropped 2-4 cm in a frame at heel strike), knee IK keeps bone lengths with the structural offset; 15: gait step width drawn per athlete (healthy narrow walkers), adductor gait narrowing 0.8 (was 1.2), the pelvic-drop hard negative; 14: per-frame targets carry the camera's front-view yaw (sequences as v13's); 13: probability mappings read in their canonical order, so a config reloaded from generator.json (keys sorted) draws the trials the dataset holds (the presets' sequences are unchanged); 12: per-frame targets carry the 3D values of the mechanism measures (sequences as v11's); 11: knee-alone valgus athletes (mechanism unknown; off in the presets, whose sequences are v10's); 8: per-frame targets beside the shards; 9: walking deficits swivel 2x; 10: pixel grid per trial (a mocap trial no longer switches it off for its batch); bump whenever the same config gives different sequences


def observe(cfg: GeneratorConfig, trials: list[Trial], results: list[tuple[Simulated, dict, dict]]) -> list[KeypointSequence]:
    """Emit a batch of simulated trials as sequences: estimator family, camera, layout (`observe_points`)."""
    obs = cfg.observation
    columns = layout_columns(obs.skeleton)
    n, K = len(trials), len(columns)
    T = max(t.n_frames for t in trials)
    world = np.zeros((n, T, K, 3), dtype=FLOAT)
    for i, (sim, _, _) in enumerate(results):
        np.take(sim.joints, columns, axis=1, out=world[i, : len(sim.joints)])  # only what the layout emits
    points, confidence, swap, cameras, families = observe_points(cfg, trials, world)
    flip = swap_index(obs.skeleton)
    out = []
    for i, (trial, (_sim, labels, measured)) in enumerate(zip(trials, results, strict=True)):
        kp, conf = points[i, : trial.n_frames], confidence[i, : trial.n_frames]
        rows = swap[i, : trial.n_frames]
        if rows.any():
            kp[rows] = kp[rows][:, flip]
            conf[rows] = conf[rows][:, flip]
        meta = {
            "generator_version": GENERATOR_VERSION,
            "trial": trial.index,
            "athlete": trial.athlete.observable(),  # no deficit profile: that is `analysis_row`
            "measured": measured,
            "camera": cameras[i] if cameras is not None else None,
            "estimator": families[i].name if cfg.noise.enabled else "none",
            "base_motion": "real" if trial.base != "analytic" else "analytic",
            "swapped_frames": int(rows.sum()),
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


def with_view(targets: np.ndarray, camera: dict | None) -> np.ndarray:
    """The simulation's per-frame targets with the view column appended: the sine of the camera's yaw in the
    front view the model reads (`front_view_yaw_deg`), the same on every frame; NaN for 3D output."""
    yaw = front_view_yaw_deg(camera["yaw_deg"]) if camera is not None else math.nan
    view = np.full((len(targets), 1), math.sin(math.radians(yaw)), dtype=targets.dtype)
    return np.concatenate([targets, view], axis=1)


def trials_of(cfg: GeneratorConfig, athlete_indices: Iterable[int]) -> list[Trial]:
    out = []
    for index in athlete_indices:
        athlete = sample_athlete(cfg, int(index))
        out.extend(sample_trial(cfg, athlete, k) for k in range(cfg.tasks.trials_per_athlete))
    return out


def analysis_row(trial: Trial, sim: Simulated) -> dict:
    """What was sampled for one sequence (see `valgusml.synth.analysis`): kept out of the sequence itself."""
    return {
        "id": trial.id,
        "athlete_id": trial.athlete.id,
        "task": trial.task,
        "athlete": trial.athlete.profile(),
        "trial": {"healthy_swivel_scale": sim.healthy_swivel_scale, "base_motion": trial.base},
    }


def generate_sequences(cfg: GeneratorConfig, athlete_indices: Iterable[int]) -> Iterator[KeypointSequence]:
    """Sequences of the given athletes (all their trials, in order), in memory."""
    return (seq for seq, _ in checked_sequences(validate(cfg), athlete_indices))


def generate_with_analysis(cfg: GeneratorConfig, athlete_indices: Iterable[int]) -> Iterator[tuple[KeypointSequence, dict]]:
    """`generate_sequences`, each sequence with its analysis row (the sampled answers, for analysis only)."""
    return checked_sequences(validate(cfg), athlete_indices)


def checked_sequences(cfg: GeneratorConfig, athlete_indices: Iterable[int]) -> Iterator[tuple[KeypointSequence, dict]]:
    """(sequence, analysis row) pairs for a config already validated (a dataset's shards: checked once)."""
    return ((seq, row) for seq, row, _ in sequences_with_targets(cfg, athlete_indices))


def sequences_with_targets(
    cfg: GeneratorConfig, athlete_indices: Iterable[int]
) -> Iterator[tuple[KeypointSequence, dict, np.ndarray]]:
    """`checked_sequences` with each sequence's `(T, C)` per-frame targets (`valgusml.data.frame_targets`)."""
    indices = [int(i) for i in athlete_indices]
    if any(i < 0 for i in indices):
        raise ConfigError(f"athlete indices must be >= 0, got {min(indices)}")
    # Simulate a few athletes at a time; within a batch, trials of similar length share padding.
    per_chunk = max(1, 4 * BATCH // cfg.tasks.trials_per_athlete)
    for start in range(0, len(indices), per_chunk):
        trials = trials_of(cfg, indices[start : start + per_chunk])
        results = simulate_and_label(cfg, trials)
        done: dict[int, KeypointSequence] = {}
        for chunk in length_batches(trials, list(range(len(trials)))):
            for i, seq in zip(chunk, observe(cfg, [trials[i] for i in chunk], [results[i] for i in chunk]), strict=True):
                done[i] = seq
        for i in range(len(trials)):
            seq = done.pop(i)
            yield seq, analysis_row(trials[i], results[i][0]), with_view(results[i][0].frame_targets, seq.meta["camera"])
