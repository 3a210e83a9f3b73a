"""Per-deficit offsets of the mechanism call, chosen on VALIDATION athletes only, as the presence threshold is.

A limb called valgus is given the deficit whose log-probability plus its offset is largest. Without offsets
that is the most probable deficit: the call that maximises accuracy, not the macro-F1 a mechanism call is
judged by, and a head distilled from a teacher keeps the teacher's leanings (make run's network over-calls
limited dorsiflexion). The offsets are applied to the probabilities themselves (`weigh_deficits`: each
deficit's probability times exp(offset), renormalised among the deficits), so the reported distribution and
the call stay one: the call is still its argmax, and P(none) and P(valgus) do not move.

`choose_mechanism_offsets` averages a coordinate search for the best macro-F1 over athlete-bootstrap replicates
of the validation athletes: one search on all of them moves an offset by 0.3-0.5 between replicates, and the
mean of twenty transferred better to another generator's athletes (docs/experiments.md: mechanism offsets
chosen on validation). Like `choose_threshold`, it takes validation scores and labels and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from valgusml.errors import InputError
from valgusml.labels import DEFICITS, MECHANISM_UNKNOWN, MECHANISMS
from valgusml.predictor.results import offsets_array, weigh_deficits
from valgusml.scoring.arrays import LabelArrays, ScoreArrays, athlete_weights

OFFSET_GRID = np.round(np.linspace(-1.5, 1.5, 31), 2)  # log-odds; 1.5 multiplies a deficit's odds by 4.5
N_SWEEPS = 3
N_REPLICATES = 20


def offsets_dict(offsets: Mapping[str, float] | np.ndarray) -> dict[str, float]:
    """`{deficit: offset}`, as `model.json` and reports hold them."""
    return {name: round(float(value), 4) for name, value in zip(DEFICITS, offsets_array(offsets), strict=True)}


def apply_offsets(scores: ScoreArrays, offsets: Mapping[str, float] | np.ndarray | None) -> ScoreArrays:
    """`scores` with the mechanism probabilities weighed by `offsets` (presence, severity and angle unchanged)."""
    return dataclasses.replace(scores, mechanism_probabilities=weigh_deficits(scores.mechanism_probabilities, offsets))


def macro_f1(truth: np.ndarray, call: np.ndarray, n_classes: int = len(MECHANISMS),
             weights: np.ndarray | None = None) -> float:
    """scikit-learn's `f1_score(average="macro", zero_division=0)`: the mean F1 of the classes in the truth or
    the calls, from one bincount (the search below scores thousands of candidate offsets); `weights` count
    each limb that many times (a bootstrap replicate's draws)."""
    cells = np.bincount(truth * n_classes + call, weights=weights, minlength=n_classes * n_classes)
    confusion = cells.reshape(n_classes, n_classes)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    seen = (support + predicted) > 0
    f1 = 2.0 * np.diag(confusion)[seen] / (support + predicted)[seen]
    return float(f1.mean()) if seen.any() else float("nan")


def _search(log_deficits: np.ndarray, called: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Coordinate search over `OFFSET_GRID` for the offsets of the best weighted macro-F1; ties keep the offset
    nearest zero (the grid is tried nearest-zero first and only a strict gain moves it)."""
    offsets = np.zeros(log_deficits.shape[-1])
    order = OFFSET_GRID[np.argsort(np.abs(OFFSET_GRID), kind="stable")]

    def score(candidate: np.ndarray) -> float:
        call = np.where(called, 1 + np.argmax(log_deficits + candidate, axis=-1), 0)
        return macro_f1(truth, call, weights=weights)

    best = score(offsets)
    for _ in range(N_SWEEPS):
        for k in range(len(offsets)):
            for value in order:
                candidate = offsets.copy()
                candidate[k] = value
                value_score = score(candidate)
                if value_score > best + 1e-12:
                    best, offsets = value_score, candidate
    return offsets


def choose_mechanism_offsets(
    val_scores: ScoreArrays, val_labels: LabelArrays, threshold: float, *, n_replicates: int = N_REPLICATES,
    seed: int = 0,
) -> np.ndarray | None:
    """`(4,)` offsets (`DEFICITS` order, summing to 0) for the mechanism call at `threshold`: the mean, over
    `n_replicates` athlete-bootstrap replicates of the validation athletes (`athlete_weights`, the evaluation's
    CIs' resampling), of the offsets of the best macro-F1. None when validation holds fewer than two deficits
    with a known label: nothing to weigh one against another."""
    if len(val_scores) != len(val_labels):
        raise InputError(f"validation scores ({len(val_scores)}) and labels ({len(val_labels)}) do not match")
    truth = np.asarray(val_labels.mechanism, dtype=np.int64)
    known = truth != MECHANISM_UNKNOWN  # (N, 2): rule-labelled limbs carry no mechanism
    if len(np.unique(truth[known & (truth > 0)])) < 2:
        return None
    log_deficits = np.log(np.clip(val_scores.mechanism_probabilities[..., 1:], 1e-12, None))[known]
    called = (val_scores.valgus_probability >= threshold)[known]
    # Both limbs of a recording share its athlete's draws.
    limb_weights = np.repeat(athlete_weights(val_labels.athlete_id, n_replicates, seed)[..., None], 2, axis=2)
    found = [_search(log_deficits, called, truth[known], weights[known]) for weights in limb_weights]
    mean = np.mean(found, axis=0)
    # The call reads the offsets' differences only; centred, each says how a deficit stands against the rest.
    return mean - mean.mean()
