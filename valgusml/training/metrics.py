"""Held-out metrics computed once per epoch from all predictions of a split (torchmetrics functional).

Per-sequence, per-limb: presence AUROC (each limb, their mean, and both limbs pooled as the evaluation report
pools them), F1 at the decision threshold, presence ECE (both limbs pooled, the report's 10 bins), mechanism macro-F1 over MECHANISMS, severity MAE in degrees (limbs
with a finite severity label only).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_f1_score,
    multiclass_f1_score,
)

from valgusml.labels import LIMBS, MECHANISM_UNKNOWN, MECHANISMS
from valgusml.scoring.arrays import ScoreArrays
from valgusml.scoring.calibration import expected_calibration_error
from valgusml.scoring.mechanism_offsets import apply_offsets


def split_metrics(
    valgus_probability: torch.Tensor,  # (N, 2)
    mechanism_probabilities: torch.Tensor,  # (N, 2, 5)
    severity_deg: torch.Tensor,  # (N, 2)
    valgus: torch.Tensor,  # (N, 2) {0, 1}
    mechanism: torch.Tensor,  # (N, 2) long
    severity_target: torch.Tensor,  # (N, 2) float, NaN where unknown
    threshold: float,
    mechanism_offsets: np.ndarray | None = None,  # (4,) per deficit, chosen on validation; None: none
) -> dict[str, float]:
    out: dict[str, float] = {}
    valgus_int = valgus.long()
    aurocs = []
    for k, limb in enumerate(LIMBS):
        if valgus_int[:, k].min() == valgus_int[:, k].max():
            continue  # AUROC undefined with one class; never report a fake number
        value = float(binary_auroc(valgus_probability[:, k].float(), valgus_int[:, k]))
        out[f"valgus_auroc_{limb}"] = value
        aurocs.append(value)
    if aurocs:
        out["valgus_auroc"] = float(np.mean(aurocs))
    # Both limbs as one set of calls, as the evaluation report scores them.
    pooled_probability, pooled = valgus_probability.flatten().float(), valgus_int.flatten()
    if pooled.min() != pooled.max():
        out["valgus_auroc_pooled"] = float(binary_auroc(pooled_probability, pooled))
    out["valgus_f1"] = float(binary_f1_score(pooled_probability, pooled, threshold=threshold))
    out["valgus_ece"] = expected_calibration_error(pooled.numpy(), pooled_probability.numpy())
    # The call the predictor and the evaluation make: `none` below the validation threshold, else the most
    # probable deficit once weighed by the offsets. Checkpoints are selected on this, so training optimises
    # what ships.
    scores = apply_offsets(ScoreArrays(valgus_probability.float().numpy(), mechanism_probabilities.float().numpy(),
                                       severity_deg.float().numpy()), mechanism_offsets)
    predicted = torch.from_numpy(scores.decide_mechanism(threshold)).flatten()
    truth = mechanism.flatten()
    known = truth != MECHANISM_UNKNOWN  # rule-labelled limbs have no mechanism to score
    if known.any():
        out["mechanism_macro_f1"] = float(
            multiclass_f1_score(predicted[known], truth[known], num_classes=len(MECHANISMS), average="macro")
        )
        out["mechanism_accuracy"] = float((predicted[known] == truth[known]).float().mean())
    known = torch.isfinite(severity_target)
    if known.any():
        out["severity_mae_deg"] = float((severity_deg[known].float() - severity_target[known]).abs().mean())
    return out
