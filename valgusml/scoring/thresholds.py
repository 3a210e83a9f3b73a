"""Decision threshold for valgus presence, chosen on VALIDATION athletes only.

The function takes validation scores and labels and nothing else, so test labels cannot leak into it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from valgusml.errors import ConfigError, InputError
from valgusml.scoring.arrays import LabelArrays, ScoreArrays

RULES = ("f1", "youden")
DEFAULT_THRESHOLD = 0.5


def choose_threshold(val_scores, val_labels, rule: str = "f1") -> float:
    """Threshold on valgus probability maximising F1 (`rule="f1"`) or Youden's J = sens + spec - 1
    (`rule="youden"`) on validation data. Accepts `ScoreArrays`/`LabelArrays` or plain arrays of matching
    shape. Falls back to 0.5 when validation has a single class (no threshold can be learned from it).
    """
    if rule not in RULES:
        raise ConfigError(f"threshold rule {rule!r} is not one of {RULES}")
    prob = val_scores.valgus_probability if isinstance(val_scores, ScoreArrays) else val_scores
    truth = val_labels.valgus if isinstance(val_labels, LabelArrays) else val_labels
    prob = np.asarray(prob, dtype=np.float64).ravel()
    truth = np.asarray(truth).astype(np.int64).ravel()
    if prob.shape != truth.shape:
        raise InputError(f"validation scores {prob.shape} and labels {truth.shape} do not match")
    if len(np.unique(truth)) < 2:
        return DEFAULT_THRESHOLD
    if rule == "youden":
        fpr, tpr, thresholds = roc_curve(truth, prob)
        best = int(np.argmax(tpr - fpr))
        return float(np.clip(thresholds[best], 0.0, 1.0))
    precision, recall, thresholds = precision_recall_curve(truth, prob)
    # The last precision/recall pair has no threshold (recall 0); F1 of the rest, ties → the lowest threshold.
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])
