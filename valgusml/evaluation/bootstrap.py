"""95% confidence intervals that resample ATHLETES, not sequences.

Trials of one athlete are not independent (same body, same deficit), so a CI that resamples sequences is too
narrow. Each replicate draws athletes with replacement and keeps all of a drawn athlete's sequences; an athlete
drawn twice counts twice. That is the same as weighting each sequence by how often its athlete was drawn, so
all replicates are a weight matrix `W (B, N)` and every metric below is computed for all replicates at once
with matrix products (no Python loop over replicates). With unit weights these functions equal the
scikit-learn point estimates of `valgusml.evaluation.metrics` (tested).

CIs are percentile intervals; replicates where a metric is undefined (e.g. no positive limb drawn for AUROC)
are skipped, and the number kept is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from valgusml.evaluation.metrics import HEADLINE_METRICS, compute_metrics
from valgusml.labels import MECHANISMS
from valgusml.scoring.arrays import LabelArrays, ScoreArrays, athlete_weights
from valgusml.scoring.calibration import ECE_BINS, ece_bin_index

N_CLASSES = len(MECHANISMS)


@dataclass(frozen=True)
class Estimate:
    """A headline figure: point value (scikit-learn on the full set) and its bootstrap percentile CI."""

    value: float
    lo: float
    hi: float
    n_valid: int  # replicates where the metric was defined

    def __str__(self) -> str:
        return format_estimate(self)

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n_valid": self.n_valid}

    def columns(self, key: str) -> dict[str, float]:
        """The estimate as a table row's `key`, `key_lo` and `key_hi` columns."""
        return {key: self.value, f"{key}_lo": self.lo, f"{key}_hi": self.hi}

    @classmethod
    def from_columns(cls, row: Mapping[str, Any], key: str) -> Estimate:
        """The estimate a row's `key`, `key_lo` and `key_hi` columns hold (NaN where a column is absent; the
        replicate count is not a column)."""
        nan = float("nan")
        return cls(row.get(key, nan), row.get(f"{key}_lo", nan), row.get(f"{key}_hi", nan), 0)


def format_estimate(est: Estimate, digits: int = 3, signed: bool = False) -> str:
    """"value [lo, hi]"; `signed`: with + on positive numbers, for differences."""
    if not np.isfinite(est.value):
        return "n/a"
    form = f"{'+' if signed else ''}.{digits}f"
    if not (np.isfinite(est.lo) and np.isfinite(est.hi)):
        return f"{est.value:{form}}"
    return f"{est.value:{form}} [{est.lo:{form}}, {est.hi:{form}}]"


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_auroc(w: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUROC for each row of weights `w (B, n)`; ties count one half (as scikit-learn's trapezoids do)."""
    order = np.argsort(p, kind="mergesort")
    p_sorted, y_sorted, w_sorted = p[order], y[order].astype(np.float64), w[:, order]
    starts = np.flatnonzero(np.r_[True, np.diff(p_sorted) != 0])
    pos = np.add.reduceat(w_sorted * y_sorted, starts, axis=1)  # (B, U) positive weight per distinct score
    neg = np.add.reduceat(w_sorted * (1 - y_sorted), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    pairs = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return _safe_div(pairs, pos.sum(axis=1) * neg.sum(axis=1))


def weighted_average_precision(w: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Average precision (step-wise, scikit-learn's definition) for each row of weights."""
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted, w_sorted = p[order], y[order].astype(np.float64), w[:, order]
    starts = np.flatnonzero(np.r_[True, np.diff(p_sorted) != 0])
    tp = np.cumsum(np.add.reduceat(w_sorted * y_sorted, starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(w_sorted * (1 - y_sorted), starts, axis=1), axis=1)
    total_pos = tp[:, -1:]
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, np.broadcast_to(total_pos, tp.shape))
    recall_step = np.diff(np.concatenate([np.zeros_like(recall[:, :1]), recall], axis=1), axis=1)
    ap = np.nansum(recall_step * np.nan_to_num(precision), axis=1)
    return np.where(total_pos[:, 0] > 0, ap, np.nan)


def weighted_presence(w: np.ndarray, y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    y = y.astype(np.float64)
    pred = (p >= threshold).astype(np.float64)
    tp = w @ (y * pred)
    fn = w @ (y * (1 - pred))
    fp = w @ ((1 - y) * pred)
    tn = w @ ((1 - y) * (1 - pred))
    total = w.sum(axis=1)
    bins = ece_bin_index(p, ECE_BINS)
    onehot = np.eye(ECE_BINS)[bins]  # (n, K)
    gap = w @ (onehot * p[:, None]) - w @ (onehot * y[:, None])  # (B, K) predicted minus observed, per bin
    return {
        "auroc": weighted_auroc(w, y, p),
        "average_precision": weighted_average_precision(w, y, p),
        "f1": np.where(total > 0, _safe_div(2 * tp, 2 * tp + fp + fn), np.nan),
        "sensitivity": _safe_div(tp, tp + fn),
        "specificity": _safe_div(tn, tn + fp),
        "brier": _safe_div(w @ (p - y) ** 2, total),
        "ece": _safe_div(np.abs(gap).sum(axis=1), total),
    }


def weighted_mechanism(w: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro-F1 from per-replicate confusion matrices `(B, 5, 5)`; limbs of
    unknown mechanism (`MECHANISM_UNKNOWN`) count for nothing."""
    known = y_true >= 0
    w, y_true, y_pred = w[:, known], y_true[known], y_pred[known]
    cell = np.eye(N_CLASSES * N_CLASSES)[y_true * N_CLASSES + y_pred]  # (n, 25)
    cm = (w @ cell).reshape(len(w), N_CLASSES, N_CLASSES)
    true_count = cm.sum(axis=2)
    pred_count = cm.sum(axis=1)
    diag = np.diagonal(cm, axis1=1, axis2=2)
    total = true_count.sum(axis=1)
    recall = _safe_div(diag, true_count)
    # balanced accuracy: mean recall over classes present in the (resampled) truth
    present = true_count > 0
    balanced = _safe_div(np.where(present, np.nan_to_num(recall), 0).sum(axis=1), present.sum(axis=1))
    # macro-F1 over classes present in truth or predictions, F1 = 2 tp / (true + predicted)
    seen = present | (pred_count > 0)
    f1 = _safe_div(2 * diag, true_count + pred_count)
    macro = _safe_div(np.where(seen, np.nan_to_num(f1), 0).sum(axis=1), seen.sum(axis=1))
    return {"accuracy": _safe_div(diag.sum(axis=1), total), "balanced_accuracy": balanced, "macro_f1": macro}


def bootstrap_replicates(
    labels: LabelArrays, scores: ScoreArrays, threshold: float, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Headline metrics for every row of per-sequence weights `(B, N)`, limbs pooled."""
    w_limb = np.repeat(weights, 2, axis=1)  # (B, 2N): both limbs of a sequence share its weight
    out = {
        f"valgus_{k}": v
        for k, v in weighted_presence(
            w_limb, labels.valgus.ravel(), scores.valgus_probability.ravel(), threshold
        ).items()
    }
    out.update(
        {
            f"mechanism_{k}": v
            for k, v in weighted_mechanism(
                w_limb, labels.mechanism.ravel(), scores.decide_mechanism(threshold).ravel()
            ).items()
        }
    )
    clear = labels.clear_of_threshold().ravel()
    out["valgus_auroc_clear"] = (weighted_auroc(w_limb[:, clear], labels.valgus.ravel()[clear],
                                                scores.valgus_probability.ravel()[clear])
                                 if clear.any() else np.full(len(weights), np.nan))
    err = np.abs(labels.severity_deg.ravel() - scores.severity_deg.ravel())
    ok = np.isfinite(err)
    out["severity_mae_deg"] = _safe_div(w_limb[:, ok] @ err[ok], w_limb[:, ok].sum(axis=1))
    return out


def athlete_bootstrap(
    labels: LabelArrays,
    scores: ScoreArrays,
    threshold: float,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    metrics: tuple[str, ...] = HEADLINE_METRICS,
) -> dict[str, Estimate]:
    """Headline metrics as `Estimate(value, lo, hi)`: value from scikit-learn on all sequences, CI from
    `n_boot` athlete-resampled replicates (seeded: the same call gives the same CI)."""
    point = compute_metrics(labels, scores, threshold)
    weights = athlete_weights(labels.athlete_id, n_boot, seed)
    reps = bootstrap_replicates(labels, scores, threshold, weights)
    return {name: percentile_estimate(point[name], reps[name], level) for name in metrics}


def percentile_estimate(value: float, replicates: np.ndarray, level: float) -> Estimate:
    """`value` with the percentile interval of its finite `replicates` (none: NaN bounds, 0 kept)."""
    kept = replicates[np.isfinite(replicates)]
    if len(kept) == 0:
        return Estimate(float(value), float("nan"), float("nan"), 0)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(kept, [alpha, 1.0 - alpha])
    return Estimate(float(value), float(lo), float(hi), len(kept))


def paired_bootstrap(
    labels: LabelArrays,
    scores: ScoreArrays,
    threshold: float,
    reference: ScoreArrays,
    reference_threshold: float,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    metrics: tuple[str, ...] = HEADLINE_METRICS,
) -> dict[str, Estimate]:
    """Each metric of `scores` minus the same metric of `reference` on the same sequences, as `Estimate`: the
    value from scikit-learn, the CI from replicates that draw the same athletes for both. Two scorers' own CIs
    overlap even where one is better on nearly every athlete; the paired difference's CI says whether it is."""
    point, point_reference = compute_metrics(labels, scores, threshold), compute_metrics(labels, reference,
                                                                                          reference_threshold)
    weights = athlete_weights(labels.athlete_id, n_boot, seed)
    reps = bootstrap_replicates(labels, scores, threshold, weights)
    reps_reference = bootstrap_replicates(labels, reference, reference_threshold, weights)
    return {name: percentile_estimate(point[name] - point_reference[name], reps[name] - reps_reference[name], level)
            for name in metrics}
