"""What every way of writing a predictor folder shares, without torch: the export's error, the parity inputs
and tolerances, the decision threshold and the mechanism offsets chosen on validation recordings as the
predictor answers them, and the atomic swap of a finished folder into place (`valgusml.export.onnx` writes a
network's folder, `valgusml.export.ensemble` the mean of several folders)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.data.format import swap_in
from valgusml.errors import ValgusMLError
from valgusml.predictor.format import META_FILE
from valgusml.skeleton import CANONICAL_JOINTS

PARITY_TOLERANCE = 1e-4  # max |Δ| of probabilities, torch vs onnxruntime
SEVERITY_TOLERANCE_DEG = 1e-2
N_RANDOM_PARITY_WINDOWS = 8  # always added: exercise padding masks and missing joints


class ExportError(ValgusMLError):
    """The network could not be exported, or the exported model does not reproduce it."""


def validation_threshold(predictor: Any, sequences: Sequence[Any], rule: str = "f1") -> float | None:
    """The `rule`-best presence threshold (`valgusml.scoring.thresholds`) of a loaded `Predictor` on labelled
    recordings, each limb scored as the predictor answers it (its worst rep, side views admitted towards its
    undecided answer: `Predictor.threshold_free`, a single-leg task's free leg 0); limbs without a label or a probability are
    left out. None when the rest do not hold both classes: no threshold can be learnt from them."""
    from valgusml.predictor.results import limb_arrays
    from valgusml.scoring.arrays import LabelArrays
    from valgusml.scoring.thresholds import choose_threshold

    probability = limb_arrays(predictor.threshold_free().predict_batch(list(sequences)))[0]
    truth = LabelArrays.from_sequences(list(sequences)).valgus.astype(float)
    known = np.isfinite(probability) & np.isfinite(truth)
    if len(np.unique(truth[known])) < 2:
        return None
    return choose_threshold(probability[known], truth[known], rule=rule)


def add_mechanism_offsets(folder: str | Path, sequences: Sequence[Any] | None,
                          checkpoint_offsets: Any = None) -> dict[str, float] | None:
    """Choose the mechanism call's offsets (`valgusml.scoring.mechanism_offsets`) on labelled validation
    recordings as the folder's predictor answers them, at its threshold, and write them into its `model.json`
    (`mechanism_offsets`, and where they came from in `metrics.mechanism_offsets_from`). Without recordings, or
    with fewer than two deficits among their labels, the checkpoint's (chosen on its validation windows) are
    written when given, else none. Returns what was written."""
    from valgusml.predictor import Predictor
    from valgusml.predictor.format import read_metadata, with_mechanism_offsets, write_metadata
    from valgusml.predictor.results import limb_arrays
    from valgusml.scoring.arrays import LabelArrays, ScoreArrays
    from valgusml.scoring.mechanism_offsets import N_REPLICATES, choose_mechanism_offsets, offsets_dict

    stored = None if checkpoint_offsets is None else offsets_dict(checkpoint_offsets)
    chosen = None
    if sequences:
        predictor = Predictor.load(folder)
        if predictor.mechanism_offsets.any():
            raise ExportError(f"{folder}: already holds mechanism offsets; they are chosen on the network's own call")
        scores = ScoreArrays(*limb_arrays(predictor.predict_batch(list(sequences))))
        chosen = choose_mechanism_offsets(scores, LabelArrays.from_sequences(list(sequences)),
                                          predictor.decision_threshold)
    if chosen is not None:
        offsets = offsets_dict(chosen)
        source = {"rule": f"macro-F1 on validation athletes, mean of {N_REPLICATES} athlete-bootstrap replicates",
                  "sequences": len(sequences), "checkpoint_offsets": stored}
    elif stored is not None:
        offsets, source = stored, {"rule": "the checkpoint's (its validation windows)"}
    else:
        return None
    write_metadata(folder, with_mechanism_offsets(read_metadata(folder), offsets, source))
    return offsets


def random_windows(n: int, window: int, n_measures: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Plausible-shaped windows: a standing figure with jitter, some joints missing, some frames padded."""
    rng = np.random.default_rng(seed)
    base = np.zeros((len(CANONICAL_JOINTS), 2), np.float32)
    for k, joint in enumerate(CANONICAL_JOINTS):
        side = -1.0 if joint.startswith("left_") else (1.0 if joint.startswith("right_") else 0.0)
        height = {"nose": 0.0, "neck": 0.15, "shoulder": 0.18, "elbow": 0.45, "wrist": 0.7, "hip": 0.9,
                  "knee": 1.35, "ankle": 1.8, "heel": 1.85, "big_toe": 1.88, "small_toe": 1.87}
        part = joint.split("_", 1)[1] if side else joint
        base[k] = (side * (0.2 if part in ("shoulder", "elbow", "wrist") else 0.12), height[part])
    xy = base[None, None] * 300 + 500 + rng.normal(0, 5, (n, window, len(CANONICAL_JOINTS), 2)).astype(np.float32)
    conf = rng.uniform(0.3, 1.0, (n, window, len(CANONICAL_JOINTS))).astype(np.float32)
    conf[rng.random(conf.shape) < 0.05] = 0.0
    xy[conf == 0] = 0.0
    mask = np.ones((n, window), np.float32)
    for i in range(n):
        mask[i, rng.integers(window // 2, window + 1):] = 0.0
    joints = np.concatenate([xy, conf[..., None]], axis=-1) * mask[..., None, None]
    measures = rng.normal(0, 5, (n, window, n_measures)).astype(np.float32) * mask[..., None]
    return joints.astype(np.float32), measures.astype(np.float32), mask


def max_abs_diff(expected: np.ndarray, got: np.ndarray) -> float:
    """Max |expected - got|; an output that is NaN in one and not in the other (the frontal angle of a window
    without load) differs infinitely, NaN in both does not differ."""
    expected, got = expected.astype(np.float64), got.astype(np.float64)
    if (np.isnan(expected) != np.isnan(got)).any():
        return float("inf")
    both = ~np.isnan(expected)
    return float(np.max(np.abs(expected[both] - got[both]), initial=0.0))


def replace_dir(src: Path, dst: Path) -> None:
    """Put the finished `src` (built in `data.format.staging_dir`) in place as `dst` (`swap_in`); an existing
    `dst` that is not a predictor folder is refused."""
    if dst.exists() and not (dst / META_FILE).exists() and any(dst.iterdir()):
        raise ExportError(f"{dst} exists and is not a predictor folder; refusing to replace it")
    src.chmod(0o755)  # the predictor folder is an ordinary shareable folder, whatever the umask
    swap_in(src, dst)
