"""Soft targets from a teacher: an exported predictor folder (e.g. `data/pretrained/tcn_gpu_ensemble`) read on
the training windows, for knowledge distillation (`data.teacher`, `module.loss_weights.distill_*`).

The small network `make run` affords errs the same way whatever its seed, while a wide one trained longer errs
by chance and its seeds' mean reads data no generator seed of theirs wrote better than any of them
(docs/experiments.md: five GPU trainings averaged). A teacher's probabilities carry that reading, and its
uncertainty, into the small network's training at the price of one pass over the training windows. The teacher
sees exactly the arrays the student does (`valgusml.preprocess` prepares both), before augmentation; the mirror
swaps its per-limb targets with the labels, and the other augmentations leave them, as they leave the labels.

A teacher must not have trained on the student's validation or test athletes: the shipped GPU predictors were
trained on generator seed 1's athletes, none of which is in a generator seed 0 dataset. A teacher whose
`model.json` names the run's own dataset or generator seed is named in a warning.

The pass costs as long as an epoch or two of a CPU training (about 45 s for `make run`'s windows on one
thread), so its result is kept under the data cache (`<cache_dir>/teacher/`), keyed by the teacher's
`model.json` (which holds its weights' sha256) and the bytes of the windows it read: a sweep or a rerun on the
same data and split reads it back; any other teacher, window or preprocessing misses the key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from valgusml.data.format import remove_stale_siblings
from valgusml.errors import ConfigError
from valgusml.labels import LIMBS, MECHANISMS

log = logging.getLogger(__name__)

TEACHER_TARGETS = ("teacher_valgus", "teacher_mechanism")


def resolve_teacher(folder: str | Path) -> Path:
    """The teacher's folder: as given (absolute, or relative to the working directory), else relative to the
    checkout (the shipped `data/pretrained/...` from anywhere); `ConfigError` when neither exists."""
    from valgusml.paths import resolve_in_checkout

    return resolve_in_checkout(folder, "data.teacher", folder=True, noun="predictor folder")


def teacher_targets(folder: str | Path, joints: np.ndarray, measures: np.ndarray, mask: np.ndarray,
                    threads: int = 1, cache_dir: str | Path | None = None,
                    run_info: dict | None = None) -> dict[str, np.ndarray]:
    """`{"teacher_valgus": (N, 2), "teacher_mechanism": (N, 2, 5)}` float32: the teacher's probabilities for
    prepared windows `joints (N, W, 20, 3)`, `measures (N, W, F)`, `mask (N, W)`; kept under `cache_dir` (None:
    not kept) and read back from there for the same teacher and windows. `run_info` (`dataset_fingerprint`,
    `generator_seed` of the training data) is checked against the athletes the teacher trained on."""
    from valgusml.predictor import Predictor
    from valgusml.predictor.format import META_FILE
    from valgusml.training.init_weights import warn_of_shared_athletes

    resolved = resolve_teacher(folder)
    teacher = Predictor.load(resolved, threads=threads)
    warn_of_shared_athletes(f"data.teacher={folder}", teacher.metadata, run_info or {})
    window, n_measures = teacher.metadata["window"], teacher.metadata["inputs"]["measures"][2]
    if joints.shape[1] != window or measures.shape[2] != n_measures:
        raise ConfigError(
            f"data.teacher {folder}: it reads windows of {window} frames and {n_measures} measures, the training "
            f"windows have {joints.shape[1]} and {measures.shape[2]}; a teacher must share data.preprocess"
        )
    cached = None
    if cache_dir is not None:
        cached = cache_file(cache_dir, (resolved / META_FILE).read_bytes(), joints, measures, mask)
        found = read_cached(cached, len(joints))
        if found is not None:
            log.info("data.teacher %s: probabilities of %d training windows read from %s", folder, len(joints), cached)
            return found
    valgus, mechanism = teacher.run_windows(joints, measures, mask)[:2]
    if not (np.isfinite(valgus).all() and np.isfinite(mechanism).all()):
        raise ConfigError(f"data.teacher {folder}: the teacher gave non-finite probabilities")
    out = {"teacher_valgus": valgus.astype(np.float32), "teacher_mechanism": mechanism.astype(np.float32)}
    if cached is not None:
        write_cached(cached, out)
    return out


def bound_by_labels(soft: dict[str, np.ndarray], valgus: np.ndarray, mechanism: np.ndarray) -> dict[str, np.ndarray]:
    """The teacher's probabilities moved towards the labels just far enough that each label's class keeps at
    least half the probability: the teacher may soften a label, never overturn it (`data.teacher_bounded`).

    Each distribution p becomes (1 - s) p + s onehot(label), with the least s in [0, 1] that gives the label's
    class 0.5; the other classes keep their proportions. Presence uses `valgus (N, 2)` 0/1; the mechanism
    `mechanism (N, 2)`, whose unknown entries (`MECHANISM_UNKNOWN`, rule-labelled data) keep the teacher's.

    Why: a teacher learns the shortcuts of the data it was trained on. The shipped GPU ensemble called 85% of
    healthy limbs walking on the midline valgus (the rule on their knees says none), a cue generator v14 gave
    only to deficits; unbounded, it teaches that to the student through data that no longer carry it."""
    out = dict(soft)
    presence = soft["teacher_valgus"].astype(np.float64)
    label = valgus.astype(np.float64)
    # for presence the move is a clip at 0.5 on the label's side
    out["teacher_valgus"] = np.where(label > 0.5, np.maximum(presence, 0.5), np.minimum(presence, 0.5)).astype(np.float32)
    distribution = soft["teacher_mechanism"].astype(np.float64)
    known = mechanism >= 0
    onehot = np.zeros_like(distribution)
    np.put_along_axis(onehot, np.where(known, mechanism, 0)[..., None].astype(np.int64), 1.0, axis=-1)
    p_label = (distribution * onehot).sum(-1)
    share = np.clip((0.5 - p_label) / np.maximum(1.0 - p_label, 1e-12), 0.0, 1.0) * known
    out["teacher_mechanism"] = ((1.0 - share[..., None]) * distribution + share[..., None] * onehot).astype(np.float32)
    return out


def cache_file(cache_dir: str | Path, teacher_meta: bytes, *windows: np.ndarray) -> Path:
    """`<cache_dir>/teacher/<key>.npz`, the key a sha256 of the teacher's `model.json` and of each window
    array's dtype, shape and bytes."""
    digest = hashlib.sha256(teacher_meta)
    for array in windows:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)
    return Path(cache_dir) / "teacher" / f"{digest.hexdigest()[:32]}.npz"


def read_cached(path: Path, n_windows: int) -> dict[str, np.ndarray] | None:
    """The kept targets, or None when there are none or the file is not whole (then they are computed again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as kept:
            out = {name: np.asarray(kept[name], dtype=np.float32) for name in TEACHER_TARGETS}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        log.warning("data.teacher: ignoring the unreadable cache file %s (%s)", path, exc)
        return None
    shapes_fit = (out["teacher_valgus"].shape == (n_windows, len(LIMBS))
                  and out["teacher_mechanism"].shape == (n_windows, len(LIMBS), len(MECHANISMS)))
    if not shapes_fit or not all(np.isfinite(v).all() for v in out.values()):
        log.warning("data.teacher: ignoring the cache file %s, which does not fit these windows", path)
        return None
    return out


def write_cached(path: Path, targets: dict[str, np.ndarray]) -> None:
    """Written whole or not at all: a partial file beside it, renamed once complete, removed if writing fails.
    Partial files that killed writers left behind are removed too (a live writer's stay)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with open(partial, "wb") as handle:
            np.savez(handle, **targets)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    remove_stale_siblings(path, ".partial-")
