"""Per-frame training targets beside a generated dataset: what a lifter learns from the generator's 3D motion.

The label is a rule on the clean 3D frontal plane (dynamic FPPA over the loaded scored phase against a
threshold). From 2D keypoints that plane is seen through a camera at some yaw, and the 2D FPPA of a flexed knee
moves by tens of degrees with a few degrees of yaw. The generator knows the 3D answer for every frame, so it
writes it beside the shards, one `<dataset>/frame_targets/NNNNN.npz` per shard (sequence id → `(T, C)` float16,
columns `FRAME_TARGET_COLUMNS`): a model can learn the camera's geometry (2D → 3D frontal-plane angle) densely,
frame by frame, instead of only a class per clip.

Beside the label's angle and loaded flag, the targets carry the 3D values of the frame measures the mechanisms
show in (`LIFTED_MEASURES`: hip adduction, rearfoot eversion, foot progression, shank tilt, knee flexion, pelvic
obliquity, frontal trunk lean; `valgusml.features.frame_measures` on the clean 3D joints). A mechanism read
from 2D measures learns whatever the generator's cameras and estimators do to them; one whose features are
trained to recover the 3D values learns the body's signs. Datasets written before these columns (`(T, 4)`)
read back with them NaN, so their measure losses are masked.

The last column is the camera's view: the sine of its yaw in the front view the model reads (rear views are
mirrored into the front view, `valgusml.features.view.front_view_yaw_deg`), NaN for 3D output. A few degrees
of yaw shift both flexed knees the same way in the image, where a collapse moves them towards each other; a
model told the yaw can keep the two apart. Files written before generator v14 read back with it NaN.

These files are training targets, never model inputs (the predictor cannot see them); datasets without them
(converted real recordings) train with the per-frame losses masked. They are not covered by the dataset's
fingerprint: a target file that is missing or does not match its sequence's length is reported and skipped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from valgusml.errors import FormatError
from valgusml.features import FRAME_MEASURE_INDEX, FRAME_MEASURE_MIRROR, FRAME_MEASURES, LIFTED_MEASURES

FRAME_TARGETS_DIR = "frame_targets"
# The label's own columns; files written before generator v12 hold only these.
LABEL_COLUMNS = ("left_dynamic_fppa_deg", "right_dynamic_fppa_deg", "left_loaded", "right_loaded")
VIEW_COLUMNS = ("view_sin_yaw",)
FRAME_TARGET_COLUMNS = LABEL_COLUMNS + tuple(f"measure_3d_{name}" for name in LIFTED_MEASURES) + VIEW_COLUMNS
LIFTED_MEASURE_START = len(LABEL_COLUMNS)  # first column of the lifted measures
VIEW_COLUMN = FRAME_TARGET_COLUMNS.index("view_sin_yaw")
# Widths of the files earlier generator versions wrote (v8-v11: the label's columns; v12-v13: + the measures).
LEGACY_WIDTHS = (len(LABEL_COLUMNS), VIEW_COLUMN)


def _mirror() -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Column permutation and sign that swap the limbs (left/right mirror): FPPA and the per-limb measures are
    signed medial-positive on both sides; the bilateral measures change sign as `FRAME_MEASURE_MIRROR` says, and
    so does the view's yaw (a mirrored image is seen from the other side)."""
    index = [1, 0, 3, 2]
    sign = [1.0] * len(LABEL_COLUMNS)
    for name in LIFTED_MEASURES:
        source, column_sign = FRAME_MEASURE_MIRROR[FRAME_MEASURE_INDEX[name]]
        index.append(LIFTED_MEASURE_START + LIFTED_MEASURES.index(FRAME_MEASURES[source]))
        sign.append(column_sign)
    index.append(VIEW_COLUMN)
    sign.append(-1.0)
    return tuple(index), tuple(sign)


FRAME_TARGET_MIRROR, FRAME_TARGET_MIRROR_SIGN = _mirror()


def frame_targets_path(root: str | Path, shard: int) -> Path:
    return Path(root) / FRAME_TARGETS_DIR / f"{shard:05d}.npz"


def write_frame_targets(root: str | Path, shard: int, targets: Mapping[str, np.ndarray | None]) -> Path:
    """Write shard `shard`'s targets atomically (sequence id → `(T, C)`; None entries are left out)."""
    path = frame_targets_path(root, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    arrays = {sid: np.asarray(t, dtype=np.float16) for sid, t in targets.items() if t is not None}
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return path


def read_frame_targets(root: str | Path, ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every sequence's `(T, C)` float32 targets of a dataset, by id (the columns a legacy file lacks NaN), or
    only those of sequences `ids`; empty when the dataset has none."""
    wanted = None if ids is None else set(ids)
    folder = Path(root) / FRAME_TARGETS_DIR
    out: dict[str, np.ndarray] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                for sid in data.files if wanted is None else wanted.intersection(data.files):
                    value = data[sid]
                    if value.ndim != 2 or value.shape[1] not in (*LEGACY_WIDTHS, len(FRAME_TARGET_COLUMNS)):
                        raise FormatError(f"{path}: targets of {sid!r} have shape {value.shape}, "
                                          f"expected (T, {len(FRAME_TARGET_COLUMNS)})")
                    full = np.full((len(value), len(FRAME_TARGET_COLUMNS)), np.nan, dtype=np.float32)
                    full[:, : value.shape[1]] = value
                    out[sid] = full
        except (OSError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable per-frame targets, skipped ({exc})", stacklevel=2)
    return out
