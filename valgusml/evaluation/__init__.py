"""Evaluation on held-out athletes: metrics with athlete-bootstrap CIs, baselines, robustness, CV, report.

Light to import (numpy, pandas, scikit-learn); torch, aeon, matplotlib and MLflow load only where used.
"""

from valgusml.evaluation.bootstrap import Estimate, athlete_bootstrap
from valgusml.evaluation.metrics import HEADLINE_METRICS, compute_metrics, per_athlete_table, per_task_table
from valgusml.scoring.arrays import LabelArrays, ScoreArrays
from valgusml.scoring.thresholds import choose_threshold

__all__ = [
    "HEADLINE_METRICS",
    "Estimate",
    "LabelArrays",
    "ScoreArrays",
    "athlete_bootstrap",
    "choose_threshold",
    "compute_metrics",
    "per_athlete_table",
    "per_task_table",
]
