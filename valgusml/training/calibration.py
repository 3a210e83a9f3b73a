"""Platt scaling of the presence call, fitted on the validation athletes once training has chosen its weights.

Trained with `valgus_pos_weight` (and a teacher's soft targets), the network overstates valgus at mid range:
`make run`'s model answered 0.53 on average where 35% of the held-out limbs were valgus (ECE 0.112, against
0.067 for features + gradient boosting). An affine map of the presence logit, `scale * logit + shift`, fitted
by log loss on the validation athletes' recordings as the predictor answers them (worst scored segment, side
views admitted towards the head's undecided answer, free legs 0), puts each probability where the observed
rate is. Training then chooses the decision threshold and the mechanism offsets again, on the calibrated
answers.

Unreadable views are pulled towards where the mapped head answers when it is undecided (logit 0 maps to
sigmoid(shift): `valgusml.features.view.undecided_probability`), not towards 0.5. Pulled to 0.5 in the
calibrated scale, they sat above most negatives: make run's threshold rose from the equivalent of 0.59 to 0.74
on the head's own scale, walking AUROC fell 0.655 -> 0.597 held out and real-motion agreement 0.932 -> 0.919.
Mapped with the head, the admission ranks and calls as it did, and only the scale of the answers changes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import log_loss

from valgusml.scoring.calibration import expected_calibration_error

log = logging.getLogger(__name__)

# Fewer validation limbs of either class than this and two parameters would be fitted to noise: no map.
MIN_LIMBS_PER_CLASS = 20
_PROBABILITY_FLOOR = 1e-7  # log loss of a limb answered exactly 0 or 1 (a free leg) stays finite


def compose(outer: Mapping[str, float], inner: Mapping[str, float] | None) -> dict[str, float]:
    """The map `outer(inner(logit))` as one `{"scale", "shift"}` (a network already calibrated, fitted again)."""
    if inner is None:
        return {"scale": float(outer["scale"]), "shift": float(outer["shift"])}
    return {"scale": float(outer["scale"] * inner["scale"]),
            "shift": float(outer["scale"] * inner["shift"] + outer["shift"])}


def _log_loss(probability: np.ndarray, valgus: np.ndarray) -> float:
    return float(log_loss(valgus, np.clip(probability, _PROBABILITY_FLOOR, 1.0 - _PROBABILITY_FLOOR), labels=[0, 1]))


def fit_presence_calibration(
    windows: Mapping[str, torch.Tensor],
    per_recording: Callable[..., Mapping[str, torch.Tensor]],
    undecided_logit: float = 0.0,
) -> dict[str, float] | None:
    """`{"scale", "shift", "recordings", "val_ece_before", "val_ece_after"}` minimising the log loss of the
    recordings' presence probabilities, or None when the validation split holds too few limbs of a class.

    `windows`: a split's window outputs with their `valgus_logit` (as `ValgusModule` keeps them for
    validation); `per_recording(windows, neutral)`: one row per recording by the predictor's rule, side views
    admitted towards `neutral` (`ValgusModule.per_recording`); `undecided_logit`: the logit the network answers
    where its head is undecided (0, or the shift of a map it already has). The map is applied per window,
    before the recordings are combined, as the network applies it (`ValgusNet.set_presence_calibration`), and
    side views are admitted towards the mapped undecided answer, as the predictor admits them: the fit sees what
    the predictor answers, and the calls a threshold makes stay those of the head's own probabilities.
    """
    logits = windows["valgus_logit"].double()
    rows = per_recording(dict(windows), neutral=expit(undecided_logit))
    valgus = rows["valgus"].double().numpy()
    labelled = np.isfinite(valgus)
    # A free leg is answered 0 whatever the map: it neither moves the fit nor counts as evidence for it.
    read = labelled & (rows["scored"].numpy() if "scored" in rows else True)
    positives, negatives = int((valgus[read] == 1).sum()), int((valgus[read] == 0).sum())
    if min(positives, negatives) < MIN_LIMBS_PER_CLASS:
        log.warning("presence calibration: not fitted; validation holds %d valgus and %d other loaded limbs (at "
                    "least %d of each needed)", positives, negatives, MIN_LIMBS_PER_CLASS)
        return None
    target = valgus[labelled]

    def answers(log_scale: float, shift: float) -> np.ndarray:
        scale = math.exp(log_scale)
        mapped = torch.sigmoid(logits * scale + shift).to(windows["valgus_probability"].dtype)
        combined = per_recording({**windows, "valgus_probability": mapped}, neutral=expit(scale * undecided_logit + shift))
        return combined["valgus_probability"].double().numpy()[labelled]

    before = answers(0.0, 0.0)
    fit = minimize(lambda x: _log_loss(answers(x[0], x[1]), target), x0=np.zeros(2), method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 400})
    after = answers(fit.x[0], fit.x[1])
    if not _log_loss(after, target) < _log_loss(before, target):
        log.info("presence calibration: the head's own probabilities fit validation best; no map")
        return None
    return {"scale": float(math.exp(fit.x[0])), "shift": float(fit.x[1]), "recordings": int(len(valgus)),
            "val_ece_before": expected_calibration_error(target, before),
            "val_ece_after": expected_calibration_error(target, after)}
