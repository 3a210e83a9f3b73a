"""Expected calibration error of presence probabilities (numpy): one definition for training's epoch metrics
and the evaluation report (its figure, its bootstrap and its reliability diagram)."""

from __future__ import annotations

import numpy as np

ECE_BINS = 10


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE with `n_bins` equal-width bins: sum over bins of (bin share) * |mean predicted - observed rate|."""
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_prob = np.asarray(y_prob, dtype=np.float64).ravel()
    if len(y_true) == 0:
        return float("nan")
    bins = ece_bin_index(y_prob, n_bins)
    prob_sum = np.bincount(bins, weights=y_prob, minlength=n_bins)
    true_sum = np.bincount(bins, weights=y_true, minlength=n_bins)
    return float(np.abs(prob_sum - true_sum).sum() / len(y_true))


def ece_bin_index(y_prob: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Bin of each probability; 1.0 falls in the last bin."""
    return np.minimum((np.asarray(y_prob) * n_bins).astype(np.int64), n_bins - 1)
