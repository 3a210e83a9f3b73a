"""Scorers: anything with `fit(sequences) -> self` and `predict(sequences) -> ScoreArrays`.

The trained model enters evaluation through the same interface as the baselines: `ExportedModel` wraps an
exported predictor folder (what users run), `CheckpointModel` a Lightning checkpoint (same preprocessing and
window aggregation, run in torch). Both have a no-op `fit`. Baselines live in `valgusml.evaluation.baselines`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from valgusml.errors import ConfigError, InputError, ModelFileError
from valgusml.evaluation.baselines import FeatureModel, FPPARule, MiniRocketModel
from valgusml.scoring.arrays import ScoreArrays
from valgusml.sequence import KeypointSequence

__all__ = [
    "CheckpointModel",
    "Ensemble",
    "ExportedModel",
    "FPPARule",
    "FeatureModel",
    "MiniRocketModel",
    "Scorer",
    "TimedScores",
    "WithMechanismOffsets",
    "fit_and_score",
]


@runtime_checkable
class Scorer(Protocol):
    name: str

    def fit(self, sequences: Sequence[KeypointSequence]) -> Scorer: ...

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays: ...


class ExportedModel:
    """An exported predictor folder (`model.onnx` + `model.json`) scored with `Predictor.predict_batch`."""

    pretrained = True

    def __init__(self, path: str | Path, name: str = "model", batch_size: int = 64, threads: int = 1):
        from valgusml.predictor import Predictor

        self.path = Path(path)
        self.name = name
        self.batch_size = int(batch_size)
        self.predictor = Predictor.load(self.path, threads=threads)
        self.decision_threshold = float(self.predictor.decision_threshold)
        # Its own, chosen at export and already in the probabilities it answers (zeros for older folders).
        self.mechanism_offsets = self.predictor.mechanism_offsets
        self.info = dict(self.predictor.metadata)
        self.undecided = self.predictor.undecided  # where its side views are admitted (`admission_neutral`)
        self.last_warnings: list[list[str]] = []  # the warnings of the recordings `predict` last scored

    def fit(self, sequences: Sequence[KeypointSequence]) -> ExportedModel:
        return self  # already trained

    def at_threshold(self, threshold: float | None) -> ExportedModel:
        """This model answering as its predictor would with `threshold` as its decision threshold (None: side
        views admitted towards its undecided answer whatever the threshold, the answers a threshold is chosen
        on)."""
        other = copy.copy(self)
        if threshold is None:
            other.predictor = self.predictor.threshold_free()
        else:
            other.predictor = copy.copy(self.predictor)
            other.predictor.decision_threshold = other.decision_threshold = float(threshold)
        return other

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        """The predictor's answers as scores; its warnings, one list per recording, stay in `last_warnings`."""
        from valgusml.predictor.results import limb_arrays

        batches, self.last_warnings = [], []
        for start in range(0, max(len(sequences), 1), self.batch_size):  # none: one empty batch, empty scores
            predictions = self.predictor.predict_batch(list(sequences[start : start + self.batch_size]))
            batches.append(ScoreArrays(*limb_arrays(predictions)))
            self.last_warnings += [list(p.warnings) for p in predictions]
        return ScoreArrays.concatenate(batches)


class CheckpointModel:
    """A training checkpoint run in torch with the predictor's preprocessing and window aggregation."""

    pretrained = True

    def __init__(self, path: str | Path, name: str = "model", batch_size: int = 256):
        from valgusml.features.view import undecided_probability
        from valgusml.predictor.results import offsets_array
        from valgusml.runs.checkpoint import load_for_export

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"checkpoint {self.path} does not exist")
        self.name = name
        self.batch_size = int(batch_size)
        self.net, self.preprocess, self.info = load_for_export(self.path)
        self.undecided = undecided_probability(self.info.get("presence_calibration"))
        self.decision_threshold = float(self.info.get("decision_threshold", 0.5))
        # As its exported folder would weigh its mechanism call without validation recordings; None for
        # checkpoints without them (the evaluation then chooses them on its validation athletes).
        offsets = self.info.get("mechanism_offsets")
        self.mechanism_offsets = None if offsets is None else offsets_array(offsets)

    def fit(self, sequences: Sequence[KeypointSequence]) -> CheckpointModel:
        return self

    def at_threshold(self, threshold: float | None) -> CheckpointModel:
        """This checkpoint answering as its exported predictor would with `threshold` as its decision threshold
        (None: side views admitted towards its undecided answer, the answers a threshold is chosen on)."""
        other = copy.copy(self)
        other.decision_threshold = None if threshold is None else float(threshold)
        return other

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        import torch

        from valgusml.features.view import admission_neutral
        from valgusml.models.net import frontal_angle
        from valgusml.predictor import combine_mechanisms
        from valgusml.predictor.results import weigh_deficits
        from valgusml.preprocess import aggregate_model_input, prepare_many

        if not sequences:
            raise InputError("CheckpointModel.predict got no sequences")
        model_input = prepare_many(sequences, self.preprocess)
        outs: dict[str, list[np.ndarray]] = {"valgus_probability": [], "mechanism_probabilities": [], "severity_deg": [],
                                             "frontal_fppa_deg": []}
        with torch.inference_mode():
            for start in range(0, len(model_input), self.batch_size):
                sl = slice(start, start + self.batch_size)
                out = self.net(
                    torch.from_numpy(np.ascontiguousarray(model_input.joints[sl], dtype=np.float32)),
                    torch.from_numpy(np.ascontiguousarray(model_input.measures[sl], dtype=np.float32)),
                    torch.from_numpy(np.ascontiguousarray(model_input.mask[sl], dtype=np.float32)),
                )
                outs["valgus_probability"].append(torch.sigmoid(out["valgus_logit"]).double().numpy())
                outs["mechanism_probabilities"].append(torch.softmax(out["mechanism_logits"], -1).double().numpy())
                outs["severity_deg"].append(out["severity_deg"].double().numpy())
                outs["frontal_fppa_deg"].append(frontal_angle(out).double().numpy())
        per_window = {k: np.concatenate(v) for k, v in outs.items()}
        # Side views admitted as the exported predictor of this checkpoint admits them (its threshold's neutral).
        neutral = admission_neutral(self.decision_threshold, self.undecided)
        combined, _ = aggregate_model_input(per_window, model_input, self.preprocess.fps, neutral)
        prob = np.clip(combined["valgus_probability"], 0.0, 1.0)
        # The same consistent distribution the exported predictor reports (P(none) = 1 - P(valgus)).
        mech = weigh_deficits(combine_mechanisms(prob, combined["mechanism_probabilities"]), self.mechanism_offsets)
        return ScoreArrays(prob, mech, combined["severity_deg"], combined["frontal_fppa_deg"])


class Ensemble:
    """Soft voting over other scorers of the same evaluation: the weighted mean of their valgus and mechanism
    probabilities (renormalised), and of the severities they estimate. Its decision threshold is chosen on the
    validation athletes like any baseline's (the members' probabilities need not share a scale).

    `members` name scorers of the evaluation (`"model"`, `"features_hgb"`, ...); `bind` hands them over, and they
    must come before the ensemble, which only predicts: it fits nothing itself.
    """

    pretrained = True  # nothing to fit: the members are fitted by the evaluation, before it

    def __init__(self, members: Sequence[str] = ("model", "features_hgb"), weights: Sequence[float] | None = None,
                 name: str = "ensemble"):
        self.members = [str(m) for m in members]
        if len(self.members) < 2 or len(set(self.members)) != len(self.members):
            raise ConfigError(f"Ensemble needs two or more different members, got {self.members}")
        w = np.ones(len(self.members)) if weights is None else np.asarray(list(weights), dtype=np.float64)
        if w.shape != (len(self.members),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"Ensemble weights {list(weights or [])} do not fit members {self.members} "
                              "(one non-negative weight each, not all 0)")
        self.weights = w / w.sum()
        self.name = name
        self.scorers: dict[str, Any] = {}

    def bind(self, scorers: Mapping[str, Any]) -> Ensemble:
        """Take the member scorers from the evaluation's `scorers` (in which they come before this one)."""
        names = list(scorers)
        missing = [m for m in self.members if m not in scorers]
        if missing:
            raise ConfigError(f"{self.name}: members {missing} are not among the evaluation's scorers {names} "
                              "(add them to `baselines`)")
        mine = names.index(self.name) if self.name in names else len(names)
        late = [m for m in self.members if names.index(m) > mine]
        if late:
            raise ConfigError(f"{self.name}: members {late} come after it in `baselines`; list them first")
        self.scorers = {m: scorers[m] for m in self.members}
        thresholds = [getattr(scorers[m], "decision_threshold", None) for m in self.members]
        if all(t is not None for t in thresholds):
            self.decision_threshold = float(np.dot(self.weights, thresholds))
        return self

    def fit(self, sequences: Sequence[KeypointSequence]) -> Ensemble:
        if not self.scorers:
            raise ConfigError(f"{self.name}: no members bound (call bind(scorers) first)")
        return self

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        if not self.scorers:
            raise ConfigError(f"{self.name}: no members bound (call bind(scorers) first)")
        scores = [self.scorers[m].predict(sequences) for m in self.members]
        w = self.weights
        prob = sum(wk * s.valgus_probability for wk, s in zip(w, scores, strict=True))
        mech = sum(wk * s.mechanism_probabilities for wk, s in zip(w, scores, strict=True))
        severity = np.stack([s.severity_deg for s in scores])  # NaN where a member does not estimate it
        known = np.isfinite(severity)
        weight = w[:, None, None] * known
        with np.errstate(invalid="ignore"):
            severity = (np.where(known, severity, 0.0) * weight).sum(0) / weight.sum(0)
        return ScoreArrays(np.clip(prob, 0.0, 1.0), mech / mech.sum(-1, keepdims=True), severity)


class WithMechanismOffsets:
    """A fitted scorer whose mechanism probabilities are weighed by `offsets` (`(4,)`, chosen on validation:
    `valgusml.evaluation.runner`)."""

    pretrained = True  # fitted already, with the offsets chosen on its answers

    def __init__(self, scorer: Any, offsets: np.ndarray):
        from valgusml.predictor.results import offsets_array

        self.scorer = scorer
        self.name = getattr(scorer, "name", type(scorer).__name__)
        self.mechanism_offsets = offsets_array(offsets)

    def fit(self, sequences: Sequence[KeypointSequence]) -> WithMechanismOffsets:
        return self

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        from valgusml.scoring.mechanism_offsets import apply_offsets

        return apply_offsets(self.scorer.predict(sequences), self.mechanism_offsets)


@dataclass
class TimedScores:
    """A fitted scorer's predictions on the evaluation sets, with what fitting and predicting cost."""

    name: str
    scorer: Any
    scores: dict[str, ScoreArrays]  # split name → scores
    fit_seconds: float
    predict_seconds_per_sequence: float


def fit_and_score(
    scorer: Any, train: Sequence[KeypointSequence], evaluate_on: dict[str, Sequence[KeypointSequence]]
) -> TimedScores:
    """Fit on `train` (a no-op for trained models), predict every set in `evaluate_on`, time both."""
    start = time.perf_counter()
    scorer.fit(train)
    fit_seconds = time.perf_counter() - start
    scores, n, predict_seconds = {}, 0, 0.0
    for split_name, sequences in evaluate_on.items():
        if not sequences:
            continue
        start = time.perf_counter()
        scores[split_name] = scorer.predict(sequences)
        predict_seconds += time.perf_counter() - start
        n += len(sequences)
    return TimedScores(
        name=getattr(scorer, "name", type(scorer).__name__),
        scorer=scorer,
        scores=scores,
        fit_seconds=fit_seconds,
        predict_seconds_per_sequence=predict_seconds / max(n, 1),
    )
