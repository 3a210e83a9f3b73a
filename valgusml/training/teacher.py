"""Soft targets from a teacher: an exported predictor folder (e.g. `data/pretrained/tcn_gpu_ensemble`) read on
the training windows, for knowledge distillation (`data.teacher`, `module.loss_weights.distill_*`).

The small network `make run` affords errs the same way whatever its seed, while a wide one trained longer errs
by chance and its seeds' mean reads data no generator seed of theirs wrote better than any of them (README,
Transfer). A teacher's probabilities carry that reading, and its uncertainty, into the small network's training
at the price of one pass over the training windows. The teacher sees exactly the arrays the student does
(`valgusml.preprocess` prepares both), before augmentation; the mirror swaps its per-limb targets with the
labels, and the other augmentations leave them, as they leave the labels.

A teacher must not have trained on the student's validation or test athletes: the shipped GPU predictors were
trained on generator seed 1's athletes, none of which is in a generator seed 0 dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from valgusml.errors import ConfigError

TEACHER_TARGETS = ("teacher_valgus", "teacher_mechanism")


def resolve_teacher(folder: str | Path) -> Path:
    """The teacher's folder: as given (absolute, or relative to the working directory), else relative to the
    checkout (the shipped `data/pretrained/...` from anywhere); `ConfigError` when neither exists."""
    from valgusml.paths import resolve_in_checkout

    return resolve_in_checkout(folder, "data.teacher", folder=True, noun="predictor folder")


def teacher_targets(folder: str | Path, joints: np.ndarray, measures: np.ndarray, mask: np.ndarray,
                    threads: int = 1) -> dict[str, np.ndarray]:
    """`{"teacher_valgus": (N, 2), "teacher_mechanism": (N, 2, 5)}` float32: the teacher's probabilities for
    prepared windows `joints (N, W, 20, 3)`, `measures (N, W, F)`, `mask (N, W)`."""
    from valgusml.predictor import Predictor

    teacher = Predictor.load(resolve_teacher(folder), threads=threads)
    window, n_measures = teacher.metadata["window"], teacher.metadata["inputs"]["measures"][2]
    if joints.shape[1] != window or measures.shape[2] != n_measures:
        raise ConfigError(
            f"data.teacher {folder}: it reads windows of {window} frames and {n_measures} measures, the training "
            f"windows have {joints.shape[1]} and {measures.shape[2]}; a teacher must share data.preprocess"
        )
    valgus, mechanism = teacher.run_windows(joints, measures, mask)[:2]
    if not (np.isfinite(valgus).all() and np.isfinite(mechanism).all()):
        raise ConfigError(f"data.teacher {folder}: the teacher gave non-finite probabilities")
    return {"teacher_valgus": valgus.astype(np.float32), "teacher_mechanism": mechanism.astype(np.float32)}
