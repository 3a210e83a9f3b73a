"""The clinical baseline: peak FPPA against a cut-off, and a small rule set for the mechanism.

All cues are the clinical summary measures of `valgusml.features.measures` (taken over the frames where the
limb is loaded), read in the limb's own view (`own_*`; see `_features`).

Presence: a limb is called valgus when its peak FPPA (`peak_fppa_deg`) exceeds a threshold fitted on the
training limbs (the cut maximising Youden's J). The probability is
a logistic calibration of the margin `peak FPPA - threshold` (slope fitted on train, no intercept, so the
probability is 0.5 exactly at the clinical cut-off).

Severity: the peak FPPA itself, linearly calibrated on train (labels are peak frontal-plane angles, which the
2D pose estimate measures with bias). A limb with no measurable FPPA (a single-leg task's free leg is never
loaded) gets the median severity of such training limbs: its severity error counts, as every other scorer's does
on every limb, instead of the rule being scored on the limbs it can measure only.

Mechanism: four cues, each the clinical sign of one deficit (BIOMECH.md):
  - hip_weakness:               contralateral pelvic drop at peak load (`pelvic_drop_deg`) is LARGE;
  - pronation:                  the foot rolls in: ankle medial to the forefoot (`foot_roll_in`) is LARGE;
  - limited_dorsiflexion:       the squat is SHALLOW (`peak_knee_flexion_deg` small) and the heel rises EARLY
                                (`heel_rise_onset_s` small or negative); the cue is the mean of the two
                                standardised margins;
  - adductor_tfl_overactivity:  knees drawn together (`min_knee_ankle_separation_ratio` small) and the hip
                                adducted (`peak_hip_adduction_deg` large), counted in bilateral tasks only
                                (in one-sided tasks the cue can only abstain or vote against).
Each cue's threshold is fitted on the training limbs that have valgus (the cut best separating that deficit
from the other deficits, by balanced accuracy) and its margin is standardised by the training spread. The
mechanism of a valgus limb is the cue with the largest margin; the mechanism probabilities are a softmax over
the margins, scaled by P(valgus), with P(none) = 1 - P(valgus). Missing cues (no feet: coco17) abstain.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_curve

from valgusml.errors import InputError
from valgusml.evaluation.baselines._features import (
    limb_targets,
    summary_feature_names,
    summary_matrix,
)
from valgusml.labels import MECHANISM_INDEX, MECHANISMS
from valgusml.scoring.arrays import ScoreArrays
from valgusml.sequence import KeypointSequence

_NAMES = {name: i for i, name in enumerate(summary_feature_names())}

# mechanism → list of (summary feature, direction): +1 = larger means that mechanism, -1 = smaller.
CUES: dict[str, tuple[tuple[str, float], ...]] = {
    "hip_weakness": (("own_pelvic_drop_deg", 1.0),),
    "pronation": (("own_foot_roll_in", 1.0),),
    "limited_dorsiflexion": (("own_peak_knee_flexion_deg", -1.0), ("own_heel_rise_onset_s", -1.0)),
    "adductor_tfl_overactivity": (("min_knee_ankle_separation_ratio", -1.0), ("own_peak_hip_adduction_deg", 1.0)),
}
PEAK_FPPA = "own_peak_fppa_deg"


@dataclass
class _Cut:
    threshold: float
    scale: float


def _youden_cut(values: np.ndarray, positive: np.ndarray) -> float:
    ok = np.isfinite(values)
    if ok.sum() < 2 or len(np.unique(positive[ok])) < 2:
        return float(np.nanmedian(values)) if ok.any() else 0.0
    fpr, tpr, thresholds = roc_curve(positive[ok], values[ok])
    best = int(np.argmax(tpr - fpr))
    cut = float(thresholds[best])
    return cut if np.isfinite(cut) else float(np.nanmax(values[ok]))


class FPPARule:
    """Clinical FPPA cut-off + mechanism rules; `fit(sequences)` learns every threshold on train only."""

    name = "fppa_rule"

    def __init__(self, softmax_temperature: float = 1.0):
        self.softmax_temperature = float(softmax_temperature)

    def fit(self, sequences: Sequence[KeypointSequence]) -> FPPARule:
        features, context = summary_matrix(sequences)
        valgus, mechanism, severity = limb_targets(sequences)
        peak = features[:, _NAMES[PEAK_FPPA]]
        if not np.isfinite(peak).any():
            raise InputError("FPPARule.fit: no training limb has a measurable FPPA (hips, knees, ankles missing)")
        self.threshold_deg_ = _youden_cut(peak, valgus)
        margin = np.nan_to_num(peak - self.threshold_deg_)
        if len(np.unique(valgus)) == 2:
            self.calibration_ = LogisticRegression(fit_intercept=False, C=1e4).fit(margin[:, None], valgus)
        else:
            self.calibration_ = None
        ok = np.isfinite(peak) & np.isfinite(severity)
        # Severity = a + b * peak FPPA; with too few points the identity (b=1, a=0) is the clinical reading.
        self.severity_fit_ = tuple(np.polyfit(peak[ok], severity[ok], 1)) if ok.sum() >= 3 else (1.0, 0.0)
        # Left NaN, an unmeasurable limb would drop out of the severity MAE for this scorer alone (27% of make
        # run's held-out limbs, easier ones), and the rule's MAE would be read on other limbs than the model's.
        labelled = np.isfinite(severity)
        unmeasured = labelled & ~np.isfinite(peak)
        pool = severity[unmeasured] if unmeasured.any() else severity[labelled]
        self.severity_unmeasured_ = float(np.median(pool)) if len(pool) else float("nan")
        self.cuts_: dict[str, list[_Cut]] = {}
        affected = (valgus == 1) & (mechanism >= 0)  # the mechanism cues learn from limbs whose mechanism is known
        for mech, cues in CUES.items():
            target = mechanism[affected] == MECHANISM_INDEX[mech]
            cuts = []
            for feature, direction in cues:
                values = direction * features[affected, _NAMES[feature]]
                spread = np.nanstd(values) if np.isfinite(values).sum() > 1 else 1.0
                cuts.append(_Cut(_youden_cut(values, target.astype(int)), float(spread) if spread > 0 else 1.0))
            self.cuts_[mech] = cuts
        counts = np.bincount(mechanism[affected], minlength=len(MECHANISMS))[1:]
        self.default_mechanism_ = MECHANISMS[1 + int(np.argmax(counts))] if counts.any() else MECHANISMS[1]
        return self

    def _margins(self, features: np.ndarray, context: list[tuple[str, str]]) -> np.ndarray:
        """`(rows, 4)` standardised cue margins in the order of MECHANISMS[1:] (0 = abstain)."""
        out = np.zeros((len(features), len(MECHANISMS) - 1))
        for k, mech in enumerate(MECHANISMS[1:]):
            parts = []
            for (feature, direction), cut in zip(CUES[mech], self.cuts_[mech], strict=True):
                parts.append((direction * features[:, _NAMES[feature]] - cut.threshold) / cut.scale)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # both parts missing: the cue abstains (0)
                value = np.nanmean(np.column_stack(parts), axis=1) if len(parts) > 1 else parts[0]
            out[:, k] = np.nan_to_num(value, nan=0.0)
        adductor = MECHANISMS[1:].index("adductor_tfl_overactivity")
        one_sided = np.array([stance != "both" for _, stance in context])
        out[one_sided, adductor] = np.minimum(out[one_sided, adductor], 0.0)
        # The most common deficit on train wins ties among abstaining cues, by a hair.
        out[:, MECHANISMS[1:].index(self.default_mechanism_)] += 1e-6
        return out

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        features, context = summary_matrix(sequences)
        peak = features[:, _NAMES[PEAK_FPPA]]
        margin = np.nan_to_num(peak - self.threshold_deg_)  # unmeasurable FPPA → at the cut-off, p = 0.5
        if self.calibration_ is not None:
            prob = self.calibration_.predict_proba(margin[:, None])[:, 1]
        else:
            prob = (margin > 0).astype(np.float64)
        logits = self._margins(features, context) / self.softmax_temperature
        deficits = np.exp(logits - logits.max(axis=1, keepdims=True))
        deficits /= deficits.sum(axis=1, keepdims=True)
        mech = np.concatenate([(1 - prob)[:, None], prob[:, None] * deficits], axis=1)
        slope, intercept = self.severity_fit_
        severity = np.where(np.isfinite(peak), slope * peak + intercept, self.severity_unmeasured_)
        n = len(sequences)
        return ScoreArrays(prob.reshape(n, 2), mech.reshape(n, 2, len(MECHANISMS)), severity.reshape(n, 2))
