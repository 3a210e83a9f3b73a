"""Per-frame training targets beside a generated dataset: what a lifter learns from the generator's 3D motion.

The label is a rule on the clean 3D frontal plane (dynamic FPPA over the loaded scored phase against a
threshold). From 2D keypoints that plane is seen through a camera at some yaw, and the 2D FPPA of a flexed knee
moves by tens of degrees with a few degrees of yaw. The generator knows the 3D answer for every frame, so it
writes it beside the shards, one `<dataset>/frame_targets/NNNNN.npz` per shard (sequence id → `(T, 4)` float16,
columns `FRAME_TARGET_COLUMNS`): a model can learn the camera's geometry (2D → 3D frontal-plane angle) densely,
frame by frame, instead of only a class per clip.

These files are training targets, never model inputs (the predictor cannot see them); datasets without them
(converted real recordings) train with the per-frame losses masked. They are not covered by the dataset's
fingerprint: a target file that is missing or does not match its sequence's length is reported and skipped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from valgusml.errors import FormatError

FRAME_TARGETS_DIR = "frame_targets"
FRAME_TARGET_COLUMNS = (
    "left_dynamic_fppa_deg",
    "right_dynamic_fppa_deg",
    "left_loaded",
    "right_loaded",
)
# Column permutation that swaps the limbs (left/right mirror): FPPA is signed medial-positive on both sides.
FRAME_TARGET_MIRROR = (1, 0, 3, 2)


def frame_targets_path(root: str | Path, shard: int) -> Path:
    return Path(root) / FRAME_TARGETS_DIR / f"{shard:05d}.npz"


def write_frame_targets(root: str | Path, shard: int, targets: Mapping[str, np.ndarray | None]) -> Path:
    """Write shard `shard`'s targets atomically (sequence id → `(T, 4)`; None entries are left out)."""
    path = frame_targets_path(root, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    arrays = {sid: np.asarray(t, dtype=np.float16) for sid, t in targets.items() if t is not None}
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return path


def read_frame_targets(root: str | Path) -> dict[str, np.ndarray]:
    """Every sequence's `(T, 4)` float32 targets of a dataset, by id; empty when the dataset has none."""
    folder = Path(root) / FRAME_TARGETS_DIR
    out: dict[str, np.ndarray] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                for sid in data.files:
                    value = data[sid]
                    if value.ndim != 2 or value.shape[1] != len(FRAME_TARGET_COLUMNS):
                        raise FormatError(f"{path}: targets of {sid!r} have shape {value.shape}, "
                                          f"expected (T, {len(FRAME_TARGET_COLUMNS)})")
                    out[sid] = value.astype(np.float32)
        except (OSError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable per-frame targets, skipped ({exc})", stacklevel=2)
    return out
