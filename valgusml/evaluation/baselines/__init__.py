"""Baselines scored on the same split as the model, each with `fit(sequences) -> self` and
`predict(sequences) -> ScoreArrays`."""

from valgusml.evaluation.baselines.feature_model import FeatureModel
from valgusml.evaluation.baselines.fppa_rule import FPPARule
from valgusml.evaluation.baselines.minirocket import MiniRocketModel

__all__ = ["FPPARule", "FeatureModel", "MiniRocketModel"]
