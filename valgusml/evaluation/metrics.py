"""Point estimates of every evaluation metric, computed with scikit-learn.

Presence of valgus is scored per limb (left, right) and pooled over both limbs (the headline); the mechanism is
a 5-class problem over `MECHANISMS` per limb ("none" included, so a missed valgus counts against the mechanism
too); severity is the mean absolute error in degrees over limbs whose label has a severity.

The mechanism call follows the rule of the labels and the predictor: `none` when P(valgus) is below the
decision threshold (chosen on validation), else the most probable deficit (`ScoreArrays.decide_mechanism`).

Metric names are flat strings (`valgus_auroc`, `valgus_left_f1`, `mechanism_macro_f1`, ...) so that they map
1:1 onto MLflow metric keys and onto the bootstrap in `valgusml.evaluation.bootstrap`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from valgusml.errors import InputError
from valgusml.labels import LIMBS, MECHANISM_UNKNOWN, MECHANISMS
from valgusml.scoring.arrays import LabelArrays, ScoreArrays
from valgusml.scoring.calibration import expected_calibration_error

# The figures a report leads with; each gets a 95% athlete-bootstrap CI.
HEADLINE_METRICS: tuple[str, ...] = (
    "valgus_auroc",
    "valgus_auroc_clear",  # over the limbs the rule calls clear of its threshold (NaN where none is recorded)
    "valgus_average_precision",
    "valgus_f1",
    "valgus_sensitivity",
    "valgus_specificity",
    "valgus_brier",
    "valgus_ece",
    "mechanism_accuracy",
    "mechanism_balanced_accuracy",
    "mechanism_macro_f1",
    "severity_mae_deg",
)

# Which way is better, for tables and the comparison ranking.
LOWER_IS_BETTER = frozenset({"valgus_brier", "valgus_ece", "severity_mae_deg"})


def _check(labels: LabelArrays, scores: ScoreArrays) -> None:
    if len(labels) != len(scores):
        raise InputError(f"{len(labels)} labelled sequences but {len(scores)} scored ones")


def _both_classes(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def presence_metrics(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> dict[str, float]:
    """AUROC, AP, F1, sensitivity, specificity at `threshold`, Brier and ECE of one binary problem."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_prob = np.asarray(y_prob, dtype=np.float64).ravel()
    y_pred = (y_prob >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    nan = float("nan")
    return {
        "auroc": float(roc_auc_score(y_true, y_prob)) if _both_classes(y_true) else nan,
        "average_precision": float(average_precision_score(y_true, y_prob)) if y_true.any() else nan,
        "f1": float(f1_score(y_true, y_pred, zero_division=0.0)),
        "sensitivity": float(tp / (tp + fn)) if tp + fn else nan,
        "specificity": float(tn / (tn + fp)) if tn + fp else nan,
        "brier": float(brier_score_loss(y_true, y_prob)) if len(y_true) else nan,
        "ece": expected_calibration_error(y_true, y_prob),
        "prevalence": float(y_true.mean()) if len(y_true) else nan,
    }


def mechanism_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1 and per-class precision/recall over MECHANISMS.

    Macro-F1 averages the classes that occur in the truth or the predictions (scikit-learn's default), so a
    class absent from a small test set neither helps nor hurts.
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    known = y_true != MECHANISM_UNKNOWN  # limbs labelled by the presence rule have no mechanism to score
    y_true, y_pred = y_true[known], y_pred[known]
    if not len(y_true):
        return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "macro_f1": float("nan")} | {
            f"{kind}_{name}": float("nan") for kind in ("precision", "recall") for name in MECHANISMS
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balanced accuracy warns when a predicted class is absent from truth
        out = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0.0)),
        }
    all_classes = np.arange(len(MECHANISMS))
    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=all_classes, zero_division=0.0
    )
    predicted = np.bincount(y_pred, minlength=len(MECHANISMS))
    for k, name in enumerate(MECHANISMS):
        # A class never predicted has no precision and one never present has no recall: NaN, not a fake 0.
        out[f"precision_{name}"] = float(precision[k]) if predicted[k] else float("nan")
        out[f"recall_{name}"] = float(recall[k]) if support[k] else float("nan")
    return out


def mechanism_confusion(labels: LabelArrays, scores: ScoreArrays, threshold: float) -> np.ndarray:
    """5×5 confusion matrix (rows truth, columns prediction) over MECHANISMS, pooling both limbs."""
    _check(labels, scores)
    predicted = scores.decide_mechanism(threshold).ravel()
    truth = labels.mechanism.ravel()
    known = truth != MECHANISM_UNKNOWN
    if not known.any():  # rule-labelled data only: no mechanism to count (scikit-learn refuses empty input)
        return np.zeros((len(MECHANISMS), len(MECHANISMS)), dtype=np.int64)
    return confusion_matrix(truth[known], predicted[known], labels=np.arange(len(MECHANISMS)))


def worst_mechanism_f1(labels: LabelArrays, scores: ScoreArrays, threshold: float) -> tuple[float, str] | None:
    """`(F1, class)` of the class (`none` or a deficit, among those in the truth) the mechanism call reads worst:
    a macro-F1 hides one deficit that another generator draws otherwise. None with no known mechanism."""
    confusion = mechanism_confusion(labels, scores, threshold)
    present = np.flatnonzero(confusion.sum(axis=1))
    if not len(present):
        return None
    f1 = 2 * np.diag(confusion)[present] / (confusion.sum(axis=1)[present] + confusion.sum(axis=0)[present])
    worst = int(np.argmin(f1))
    return float(f1[worst]), MECHANISMS[present[worst]]


def severity_mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    return float(np.abs(y_true[ok] - y_pred[ok]).mean()) if ok.any() else float("nan")


def compute_metrics(labels: LabelArrays, scores: ScoreArrays, threshold: float) -> dict[str, float]:
    """Every metric of one scorer on one set, as a flat dict (pooled limbs, then per limb)."""
    _check(labels, scores)
    out: dict[str, float] = {}
    for key, value in presence_metrics(labels.valgus, scores.valgus_probability, threshold).items():
        out[f"valgus_{key}"] = value
    for k, limb in enumerate(LIMBS):
        for key, value in presence_metrics(labels.valgus[:, k], scores.valgus_probability[:, k], threshold).items():
            out[f"valgus_{limb}_{key}"] = value
    for key, value in mechanism_metrics(labels.mechanism, scores.decide_mechanism(threshold)).items():
        out[f"mechanism_{key}"] = value
    out["severity_mae_deg"] = severity_mae(labels.severity_deg, scores.severity_deg)
    # Presence ranked over the limbs the rule calls beyond its own measurement error: how much of what is
    # missed sits within a few degrees of the threshold, where the label itself would not repeat.
    clear = labels.clear_of_threshold()
    out["valgus_auroc_clear"] = (float(roc_auc_score(labels.valgus[clear], scores.valgus_probability[clear]))
                                 if _both_classes(labels.valgus[clear]) else float("nan"))
    out["valgus_clear_share"] = labels.clear_share()
    out["threshold"] = float(threshold)
    out["n_sequences"] = float(len(labels))
    out["n_athletes"] = float(len(np.unique(labels.athlete_id)))
    return out


GROUP_COLUMNS: tuple[str, ...] = (
    "n_sequences",
    "n_athletes",
    "valgus_prevalence",
    "valgus_auroc",
    "valgus_auroc_clear",
    "valgus_f1",
    "valgus_sensitivity",
    "valgus_specificity",
    "mechanism_accuracy",
    "mechanism_macro_f1",
    "severity_mae_deg",
)


def grouped_table(
    labels: LabelArrays, scores: ScoreArrays, threshold: float, by: np.ndarray, name: str
) -> pd.DataFrame:
    """One row of `GROUP_COLUMNS` per distinct value of `by` (a per-sequence key such as task or athlete)."""
    _check(labels, scores)
    rows = []
    for key in sorted(set(np.asarray(by).tolist())):
        idx = np.flatnonzero(np.asarray(by) == key)
        metrics = compute_metrics(labels.take(idx), scores.take(idx), threshold)
        rows.append({name: key, **{c: metrics[c] for c in GROUP_COLUMNS}})
    frame = pd.DataFrame(rows, columns=[name, *GROUP_COLUMNS])
    return frame.astype({"n_sequences": int, "n_athletes": int})


def per_task_table(labels: LabelArrays, scores: ScoreArrays, threshold: float) -> pd.DataFrame:
    return grouped_table(labels, scores, threshold, labels.task, "task")


def worst_task_auroc(labels: LabelArrays, scores: ScoreArrays, threshold: float) -> tuple[float, str] | None:
    """`(AUROC, task)` of the task whose presence is read worst: a set's mean hides a task it cannot read.
    None when no task holds both classes."""
    by_task = per_task_table(labels, scores, threshold).dropna(subset=["valgus_auroc"])
    if not len(by_task):
        return None
    worst = by_task.loc[by_task["valgus_auroc"].idxmin()]
    return float(worst["valgus_auroc"]), str(worst["task"])


def per_athlete_table(labels: LabelArrays, scores: ScoreArrays, threshold: float) -> pd.DataFrame:
    """Per held-out athlete: how often the model is right on their sequences (AUROC is NaN for an athlete with
    one class only, which is common: an athlete's limbs are usually either all valgus or all not)."""
    table = grouped_table(labels, scores, threshold, labels.athlete_id, "athlete_id")
    pred_valgus = (scores.valgus_probability >= threshold).astype(np.int64)
    presence_acc = [
        float((pred_valgus[labels.athlete_id == a] == labels.valgus[labels.athlete_id == a]).mean())
        for a in table["athlete_id"]
    ]
    table.insert(3, "valgus_accuracy", presence_acc)
    return table


MetricFn = Callable[[LabelArrays, ScoreArrays, float], dict[str, float]]
