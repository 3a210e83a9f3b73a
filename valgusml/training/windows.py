"""Window arrays of a whole dataset: preprocessed ONCE, cached on disk as plain .npy, plus per-sequence labels.

The cache is keyed by dataset fingerprint + preprocessing config (`prepared_cache_dir`), so a changed dataset or
config never reuses stale windows, and parallel jobs may fill it at once (the first to finish wins).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.canonical_json import dumps
from valgusml.data.format import Dataset
from valgusml.errors import ConfigError, InputError
from valgusml.hydra_app import to_plain
from valgusml.labels import LIMBS, mechanism_index

CACHE_FORMAT = 3  # 2: 2D rear views mirrored into the front view (preprocess); 3: scored_frames per window
WINDOW_ARRAYS = ("joints", "measures", "mask", "scored_frames", "sequence_index", "window_start_s")


def config_hash(value: Any, length: int = 12) -> str:
    return hashlib.sha256(dumps(to_plain(value)).encode()).hexdigest()[:length]


def preprocess_config(preprocess: dict[str, Any] | None):
    from valgusml.preprocess import PreprocessConfig

    try:
        return PreprocessConfig.from_dict(to_plain(preprocess) or {})
    except TypeError as exc:
        raise ConfigError(f"data.preprocess: {exc}") from None


def training_windows(scored_frames: np.ndarray, sequence_index: np.ndarray, per_sequence: int | None) -> np.ndarray:
    """Rows of the windows to train on: a sequence's label describes its scored phase (reps, landing), so its
    windows that hold none of it (standing before and after, a push-off) are left out; of the rest, the
    `per_sequence` holding most of it (all when None). A sequence with no scored window keeps all of its own.
    Sorted, deterministic."""
    rows = np.arange(len(sequence_index))
    order = np.lexsort((rows, -scored_frames, sequence_index))  # by sequence, most scored frames first
    seq_sorted = sequence_index[order]
    first = np.r_[True, seq_sorted[1:] != seq_sorted[:-1]]
    rank = rows - np.maximum.accumulate(np.where(first, rows, 0))  # position within its sequence
    has_scored = np.zeros(int(sequence_index.max()) + 1 if len(rows) else 0, dtype=bool)
    np.logical_or.at(has_scored, sequence_index, scored_frames > 0)
    keep = (scored_frames[order] > 0) | ~has_scored[seq_sorted]
    if per_sequence is not None:
        keep &= rank < int(per_sequence)
    return np.sort(order[keep])


def prepared_cache_dir(cache_root: str | Path, dataset: Dataset, preprocess: dict[str, Any]) -> Path:
    key = {"fingerprint": dataset.fingerprint, "preprocess": preprocess, "format": CACHE_FORMAT}
    return Path(cache_root) / "prepared" / f"{dataset.fingerprint[:16]}-{config_hash(key)}"


def prepare_dataset(
    dataset: Dataset, preprocess: dict[str, Any], cache_root: str | Path | None, chunk: int = 1024
) -> dict[str, np.ndarray]:
    """Window arrays of EVERY sequence of the dataset (sequence_index = dataset index), cached as .npy."""
    from valgusml.preprocess import prepare_many

    pp = preprocess_config(preprocess)
    target = prepared_cache_dir(cache_root, dataset, pp.to_dict()) if cache_root is not None else None
    if target is not None and (target / "done.json").is_file():
        return {k: np.load(target / f"{k}.npy", allow_pickle=False) for k in WINDOW_ARRAYS}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in WINDOW_ARRAYS}
    for start in range(0, len(dataset), chunk):
        stop = min(len(dataset), start + chunk)
        try:
            prepared = prepare_many([dataset[i] for i in range(start, stop)], pp)
        except InputError as exc:
            raise InputError(f"{dataset.root}: sequences {start}-{stop - 1}: {exc}") from None
        for k in WINDOW_ARRAYS:
            value = getattr(prepared, k)
            parts[k].append(value + start if k == "sequence_index" else value)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    if target is not None:
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for k, v in arrays.items():
            np.save(tmp / f"{k}.npy", v, allow_pickle=False)
        info = {"dataset": str(dataset.root), "fingerprint": dataset.fingerprint, "preprocess": pp.to_dict()}
        (tmp / "done.json").write_text(json.dumps(info, indent=1))
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return arrays


def sequence_labels(dataset: Dataset) -> dict[str, np.ndarray]:
    """Per-sequence label arrays from the manifest: valgus (S, 2) float, mechanism (S, 2) long, severity_deg (S, 2)
    (NaN where unknown). The names are the batch keys `BatchAugment`'s mirror swaps between limbs."""
    n = len(dataset)
    valgus = np.zeros((n, 2), np.float32)
    mechanism = np.zeros((n, 2), np.int64)
    severity = np.full((n, 2), np.nan, np.float32)
    for i, record in enumerate(dataset.manifest):
        labels = record.get("labels")
        if not labels:
            raise InputError(f"{dataset.root}: sequence {record.get('id')!r} has no labels; training needs them")
        for k, limb in enumerate(LIMBS):
            label = labels[limb]
            valgus[i, k] = float(bool(label["valgus"]))
            mechanism[i, k] = mechanism_index(label["mechanism"])
            value = label.get("severity_deg")
            severity[i, k] = np.nan if value is None else float(value)
    return {"valgus": valgus, "mechanism": mechanism, "severity_deg": severity}
