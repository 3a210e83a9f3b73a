"""Scores and labels as arrays, and the decision threshold chosen from them (numpy + scikit-learn, no torch).

What training (epoch metrics, the checkpoint's threshold) and evaluation (metrics, baselines, reports) both
need, one layer below both: `ScoreArrays` (what every scorer returns), `LabelArrays` (labels as arrays),
`choose_threshold` (on validation athletes only). `valgusml.scoring.mechanism_offsets` chooses the mechanism
call's offsets on the same athletes (imported from there: it reads the predictor's weighing).
"""

from valgusml.scoring.arrays import LabelArrays, ScoreArrays
from valgusml.scoring.thresholds import DEFAULT_THRESHOLD, RULES, choose_threshold

__all__ = ["DEFAULT_THRESHOLD", "RULES", "LabelArrays", "ScoreArrays", "choose_threshold"]
