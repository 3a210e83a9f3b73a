"""Window arrays of a whole dataset: preprocessed ONCE, cached on disk as plain .npy, plus per-sequence labels
and what the predictor's rule needs to combine a recording's windows (`SEQUENCE_ARRAYS`: its inferred view, the
limbs its task loads and its scored segments), so validation and test read as the exported predictor answers.

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
from valgusml.data.format import Dataset, remove_stale_siblings
from valgusml.errors import ConfigError, InputError
from valgusml.hydra_app import to_plain
from valgusml.labels import LIMBS, mechanism_index

# 2: 2D rear views mirrored into the front view (preprocess); 3: scored_frames per window; 4: frame_targets;
# 5: frame_targets with the lifted 3D measures; 6: and the view's yaw; 7: small toes a layout lacks placed;
# 8: SEQUENCE_ARRAYS; 9: a single-leg task's stance foot in contact on its own step (step-down segments);
# 10: heels and toes placed for a recording without any (noise.no_feet_fraction); 11: leg_seen; 12: confidence
# under any learnt scale rescaled (preprocess.CONFIDENCE_LEVEL_MIN); 13: leg_seen in float64, as the predictor
# compares it (a float32 share of exactly 0.35 sat under LEG_SEEN_MIN in training and not in the predictor)
CACHE_FORMAT = 13
WINDOW_ARRAYS = ("joints", "measures", "mask", "frame_targets", "scored_frames", "sequence_index", "window_start_s")
# One row per sequence (view_*, scored_limbs) or per scored segment (segment_*; segment_sequence says whose).
SEQUENCE_ARRAYS = ("view_facing", "view_yaw_deg", "view_frontal_visibility", "scored_limbs", "leg_seen",
                   "segment_sequence", "segment_start", "segment_end", "segment_kind", "segment_limbs")
FACINGS = ("front", "rear", "side")
SEGMENT_KINDS = ("rep", "landing", "push_off", "stance")


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


def target_windows(targets: np.ndarray | None, fps_in: float, n_windows: int, cfg) -> np.ndarray:
    """A sequence's `(T, C)` per-frame targets (`valgusml.data.frame_targets`) cut into the windows `prepare`
    makes of it: resampled to `cfg.fps` the way `preprocess.resample` moves the keypoints (linear in time) and
    windowed with the same starts. `(n_windows, W, C)`, NaN where there is no target (padding, no targets)."""
    from valgusml.data.frame_targets import FRAME_TARGET_COLUMNS
    from valgusml.preprocess import resampled_length, window_starts

    out = np.full((n_windows, cfg.window, len(FRAME_TARGET_COLUMNS)), np.nan, dtype=np.float32)
    if targets is None:
        return out
    n_out = resampled_length(len(targets), fps_in, cfg.fps)
    position = np.arange(n_out) * (fps_in / cfg.fps)
    source = np.arange(len(targets))
    resampled = np.column_stack([np.interp(position, source, column) for column in targets.T])
    starts = window_starts(n_out, cfg.window, cfg.stride)
    if len(starts) != n_windows:
        raise InputError(f"per-frame targets give {len(starts)} windows where the keypoints give {n_windows}")
    for k, start in enumerate(starts):
        part = resampled[start : start + cfg.window]
        out[k, : len(part)] = part
    return out


def prepare_dataset(
    dataset: Dataset, preprocess: dict[str, Any], cache_root: str | Path | None, chunk: int = 1024
) -> dict[str, np.ndarray]:
    """Window arrays of EVERY sequence of the dataset (sequence_index = dataset index) and its `SEQUENCE_ARRAYS`
    (`decode_recordings` reads them), cached as .npy; `frame_targets` from the dataset's per-frame targets, all
    NaN where it has none.

    With a cache, each chunk of `chunk` sequences goes to disk as it is made and the arrays are joined on
    disk, so memory holds one chunk's arrays at most (3,000 athletes' windows are ~5 GB); an interrupted
    preparation starts again at its first missing chunk. The arrays come back memory-mapped, read-only: a split
    copies its own rows and the rest stay on disk."""
    pp = preprocess_config(preprocess)
    if cache_root is None:
        parts = [_prepare_chunk(dataset, pp, start, chunk) for start in range(0, len(dataset), chunk)]
        return {k: np.concatenate([part[k] for part in parts]) for k in WINDOW_ARRAYS + SEQUENCE_ARRAYS}
    target = prepared_cache_dir(cache_root, dataset, pp.to_dict())
    if (target / "done.json").is_file():
        return _load_prepared(target)
    chunks = target.with_name(f".{target.name}.chunks-{chunk}")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    remove_stale_siblings(target, ".tmp-")  # a killed join: as large as the cache, never completed or read
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        folders = _write_chunks(dataset, pp, chunk, chunks)
        tmp.mkdir(parents=True)
        _join_chunks(folders, tmp)
    except FileNotFoundError:
        # Another process preparing the same data (a parallel sweep) finished first and removed the chunks.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "done.json").is_file():
            raise
        return _load_prepared(target)
    info = {"dataset": str(dataset.root), "fingerprint": dataset.fingerprint, "preprocess": pp.to_dict()}
    (tmp / "done.json").write_text(json.dumps(info, indent=1))
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(chunks, ignore_errors=True)
    return _load_prepared(target)


def _write_chunks(dataset: Dataset, pp: Any, chunk: int, chunks: Path) -> list[Path]:
    """Each chunk's arrays as a folder of .npy files under `chunks`, named by its first sequence and renamed
    into place whole: a chunk folder is complete, and any process that makes it makes the same bytes, so one
    already there (an interrupted or a parallel preparation) is kept."""
    chunks.mkdir(parents=True, exist_ok=True)
    folders = []
    for start in range(0, len(dataset), chunk):
        folder = chunks / f"{start:09d}"
        if not folder.is_dir():
            part = chunks / f".{start:09d}.tmp-{os.getpid()}"
            shutil.rmtree(part, ignore_errors=True)  # this process's own, left by an interruption
            part.mkdir()
            for k, value in _prepare_chunk(dataset, pp, start, chunk).items():
                np.save(part / f"{k}.npy", value, allow_pickle=False)
            try:
                os.replace(part, folder)
            except OSError:  # made meanwhile by another process
                shutil.rmtree(part, ignore_errors=True)
        folders.append(folder)
    return folders


def _join_chunks(folders: list[Path], out: Path) -> None:
    """Each array's chunks, in order, into one .npy under `out`, through a file-backed array: memory never
    holds a whole array."""
    for k in WINDOW_ARRAYS + SEQUENCE_ARRAYS:
        pieces = [np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False) for folder in folders]
        joined = np.lib.format.open_memmap(out / f"{k}.npy", mode="w+", dtype=pieces[0].dtype,
                                           shape=(sum(len(piece) for piece in pieces), *pieces[0].shape[1:]))
        offset = 0
        for piece in pieces:
            joined[offset : offset + len(piece)] = piece
            offset += len(piece)
        joined.flush()
        del joined, pieces


def _prepare_chunk(dataset: Dataset, pp: Any, start: int, chunk: int) -> dict[str, np.ndarray]:
    """`prepare_dataset`'s arrays of sequences `[start, start + chunk)`, `sequence_index` counted from 0 for the
    whole dataset."""
    from valgusml.data.frame_targets import read_frame_targets
    from valgusml.preprocess import prepare_many

    stop = min(len(dataset), start + chunk)
    seqs = [dataset[i] for i in range(start, stop)]
    try:
        prepared = prepare_many(seqs, pp)
    except InputError as exc:
        raise InputError(f"{dataset.root}: sequences {start}-{stop - 1}: {exc}") from None
    per_frame = read_frame_targets(dataset.root, [seq.id for seq in seqs])
    counts = np.bincount(prepared.sequence_index, minlength=len(seqs))
    targets = []
    for seq, n_windows in zip(seqs, counts.tolist(), strict=True):
        found = per_frame.get(seq.id)
        if found is not None and len(found) != seq.n_frames:
            found = None  # not this sequence's targets (a stale file): train without them
        targets.append(target_windows(found, seq.fps, n_windows, pp))
    out = {k: getattr(prepared, k) for k in WINDOW_ARRAYS if k != "frame_targets"}
    out["sequence_index"] = out["sequence_index"] + start
    out["frame_targets"] = np.concatenate(targets)
    out.update(encode_recordings(prepared, start))
    return out


def _load_prepared(folder: Path) -> dict[str, np.ndarray]:
    return {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in WINDOW_ARRAYS + SEQUENCE_ARRAYS}


def encode_recordings(prepared: Any, first_index: int = 0) -> dict[str, np.ndarray]:
    """`SEQUENCE_ARRAYS` of a `ModelInput`'s recordings (numbered from `first_index`)."""
    views, limbs = prepared.views, prepared.scored_limbs
    segments = [(first_index + i, seg) for i, found in enumerate(prepared.segments) for seg in found]
    return {
        "view_facing": np.array([FACINGS.index(v.facing) for v in views], dtype=np.int8),
        "view_yaw_deg": np.array([v.yaw_deg for v in views], dtype=np.float64),
        "view_frontal_visibility": np.array([v.frontal_visibility for v in views], dtype=np.float64),
        "scored_limbs": np.array([[limb in scored for limb in LIMBS] for scored in limbs], dtype=bool).reshape(-1, 2),
        "leg_seen": np.array(prepared.leg_seen, dtype=np.float64).reshape(-1, 2),
        "segment_sequence": np.array([i for i, _ in segments], dtype=np.int64),
        "segment_start": np.array([seg.start for _, seg in segments], dtype=np.int64),
        "segment_end": np.array([seg.end for _, seg in segments], dtype=np.int64),
        "segment_kind": np.array([SEGMENT_KINDS.index(seg.kind) for _, seg in segments], dtype=np.int8),
        "segment_limbs": np.array([[limb in seg.limbs for limb in LIMBS] for _, seg in segments],
                                  dtype=bool).reshape(-1, 2),
    }


def decode_recordings(arrays: dict[str, np.ndarray], indices: np.ndarray) -> dict[str, list]:
    """`{"segments", "views", "scored_limbs", "leg_seen"}` of the dataset sequences `indices`, in that order:
    what `valgusml.preprocess.aggregate_recordings` reads."""
    from valgusml.features.phases import Segment
    from valgusml.features.view import View

    by_sequence: dict[int, list] = {}
    owner = arrays["segment_sequence"]
    for k in np.flatnonzero(np.isin(owner, indices)):
        limbs = tuple(limb for limb, on in zip(LIMBS, arrays["segment_limbs"][k], strict=True) if on)
        by_sequence.setdefault(int(owner[k]), []).append(Segment(
            int(arrays["segment_start"][k]), int(arrays["segment_end"][k]),
            SEGMENT_KINDS[int(arrays["segment_kind"][k])], limbs))
    return {
        "segments": [by_sequence.get(int(i), []) for i in indices],
        "views": [View(FACINGS[int(arrays["view_facing"][i])], float(arrays["view_yaw_deg"][i]),
                       float(arrays["view_frontal_visibility"][i])) for i in indices],
        "scored_limbs": [tuple(limb for limb, on in zip(LIMBS, arrays["scored_limbs"][i], strict=True) if on)
                         for i in indices],
        "leg_seen": [np.asarray(arrays["leg_seen"][i], dtype=np.float64) for i in indices],
    }


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
