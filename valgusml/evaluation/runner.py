"""Score several scorers on one split and gather everything a report needs.

Each scorer is fitted on TRAIN athletes, its decision threshold is chosen on VALIDATION athletes (or, without
validation data, taken from the model itself), and only then is it scored on TEST athletes, with athlete
bootstrap CIs, per-task and per-athlete tables, the confusion matrix, and its fit and predict cost.

The mechanism call's offsets (`valgusml.scoring.mechanism_offsets`) are chosen on the same validation athletes
for every scorer that does not carry its own (an exported predictor carries those of its export), so that the
baselines' calls are tuned as the model's are; the scorer is then wrapped (`WithMechanismOffsets`), and every
later use of it (robustness, other data, the transfer table) calls as its test scores do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from valgusml.errors import InputError
from valgusml.evaluation.baselines._features import clear_cache
from valgusml.evaluation.bootstrap import Estimate, athlete_bootstrap, format_estimate, paired_bootstrap
from valgusml.evaluation.input_warnings import count_warnings
from valgusml.evaluation.metrics import (
    HEADLINE_METRICS,
    LOWER_IS_BETTER,
    compute_metrics,
    grouped_table,
    mechanism_confusion,
    per_athlete_table,
    per_task_table,
)
from valgusml.evaluation.scorers import WithMechanismOffsets, fit_and_score
from valgusml.scoring.arrays import LabelArrays, ScoreArrays
from valgusml.scoring.mechanism_offsets import apply_offsets, choose_mechanism_offsets, offsets_dict
from valgusml.scoring.thresholds import DEFAULT_THRESHOLD, choose_threshold
from valgusml.sequence import KeypointSequence

log = logging.getLogger("valgusml.evaluate")

# The headline metrics each later scorer is compared with the first (the model) on, athlete-paired.
PAIRED_METRICS: tuple[str, ...] = ("valgus_auroc", "valgus_f1", "mechanism_macro_f1", "severity_mae_deg")


@dataclass
class ScorerResult:
    name: str
    threshold: float
    threshold_source: str  # "validation", "model" or "default"
    metrics: dict[str, float]
    estimates: dict[str, Estimate]
    per_task: pd.DataFrame
    per_athlete: pd.DataFrame
    confusion: np.ndarray
    scores: ScoreArrays
    fit_seconds: float
    predict_seconds_per_sequence: float
    scorer: Any = None
    # `{deficit: offset}` of the mechanism call and where they came from ("validation" or "model"); None: the
    # most probable deficit.
    mechanism_offsets: dict[str, float] | None = None
    mechanism_offsets_source: str | None = None
    # Each headline metric minus the first scorer's (the model's) on the same athletes, with the CI of replicates
    # that draw the same athletes for both (`paired_bootstrap`); None for the first scorer itself.
    minus_first: dict[str, Estimate] | None = None
    # `per_task`'s rows by the camera view of each sequence (`camera_views`); None where no view is known.
    per_view: pd.DataFrame | None = None
    # `{warning kind: test recordings}` of a scorer that says what it saw (an exported predictor's warnings,
    # `input_warnings.count_warnings`); None for the others.
    input_warnings: dict[str, int] | None = None


@dataclass
class EvaluationResult:
    labels: LabelArrays
    results: dict[str, ScorerResult]
    info: dict[str, Any] = field(default_factory=dict)
    # (S,) the camera view family of each scored sequence (`camera_views`), None where none is known.
    camera_view: np.ndarray | None = None
    # The transfer table (`valgusml.evaluation.transfer.transfer_table`) and the real-motion and other-data
    # rows behind it, when the evaluation ran them.
    transfer: pd.DataFrame | None = None
    real_motion: pd.DataFrame | None = None
    other_data: pd.DataFrame | None = None

    def comparison_table(self, formatted: bool = True) -> pd.DataFrame:
        """One row per scorer: headline metrics (value [lo, hi] when `formatted`), each scorer's paired difference
        from the first one's in the headline metrics of `PAIRED_METRICS`, threshold, costs."""
        rows = []
        first = next(iter(self.results), None)
        for name, r in self.results.items():
            row: dict[str, Any] = {"scorer": name}
            for metric in HEADLINE_METRICS:
                est = r.estimates[metric]
                if formatted:
                    row[metric] = format_estimate(est)
                else:
                    row.update(est.columns(metric))
            for metric in PAIRED_METRICS if len(self.results) > 1 else ():
                est = (r.minus_first or {}).get(metric)
                if formatted:
                    row[f"{metric} - {first}'s [paired CI]"] = format_estimate(est, signed=True) if est else ""
                elif est is not None:
                    row.update(est.columns(f"{metric}_minus_first"))
            row["threshold"] = round(r.threshold, 4) if formatted else r.threshold
            row["fit_s"] = round(r.fit_seconds, 2) if formatted else r.fit_seconds
            ms = 1000.0 * r.predict_seconds_per_sequence
            row["predict_ms_per_sequence"] = round(ms, 2) if formatted else ms
            rows.append(row)
        return pd.DataFrame(rows)

    def winners(self) -> dict[str, str]:
        """Which scorer has the best point value of each headline metric."""
        out = {}
        for metric in HEADLINE_METRICS:
            values = {n: r.estimates[metric].value for n, r in self.results.items()}
            values = {n: v for n, v in values.items() if np.isfinite(v)}
            if values:
                pick = min if metric in LOWER_IS_BETTER else max
                out[metric] = pick(values, key=values.get)
        return out


def resolve_threshold(scorer: Any, val_scores: ScoreArrays | None, val_labels: LabelArrays | None,
                      rule: str) -> tuple[float, str]:
    """The validation-chosen threshold when there is labelled validation data with both classes; else the
    trained model's stored threshold (itself chosen on its validation athletes); else 0.5."""
    if val_scores is not None and val_labels is not None and len(np.unique(val_labels.valgus)) == 2:
        return choose_threshold(val_scores, val_labels, rule=rule), "validation"
    stored = getattr(scorer, "decision_threshold", None)
    if stored is not None:
        return float(stored), "model"
    return DEFAULT_THRESHOLD, "default"


def threshold_free(scorer: Any) -> Any:
    """The scorer whose answers a threshold is chosen on: a trained model's side views admitted towards its
    undecided answer (`Predictor.threshold_free`, as training chooses its threshold), not towards its own
    threshold's neutral."""
    at_threshold = getattr(scorer, "at_threshold", None)
    return scorer if at_threshold is None else at_threshold(None)


def at_chosen_threshold(scorer: Any, threshold: float, test: Sequence[KeypointSequence],
                        test_scores: ScoreArrays) -> tuple[Any, ScoreArrays]:
    """`(scorer, test scores)` answering as the scorer would with `threshold` as its own. A trained model pulls
    side views towards its threshold's neutral (`valgusml.features.view.admission_neutral`) and reads measured
    3D against it; scored at its stored threshold and called at a lower re-chosen one, its side views would be
    called valgus. Rescored only where the answers can change: the side views' neutral moved, or the test holds
    3D recordings (their measured presence is placed on the threshold)."""
    from valgusml.features.view import admission_neutral

    stored = getattr(scorer, "decision_threshold", None)
    if getattr(scorer, "at_threshold", None) is None or stored is None or threshold == stored:
        return scorer, test_scores
    scorer = scorer.at_threshold(threshold)
    undecided = getattr(scorer, "undecided", 0.5)
    if (admission_neutral(threshold, undecided) == admission_neutral(stored, undecided)
            and all(seq.dims == 2 for seq in test)):
        return scorer, test_scores  # the same answers: every 2D side view pulled to the same neutral
    return scorer, scorer.predict(test)


def resolve_mechanism_offsets(scorer: Any, val_scores: ScoreArrays | None, val_labels: LabelArrays | None,
                              threshold: float) -> tuple[Any, np.ndarray | None, str | None]:
    """`(scorer, offsets, source)`: a scorer's own offsets (an exported predictor's, already in what it
    answers: "model"), else those chosen on its validation scores at `threshold` ("validation"), with the
    scorer wrapped to apply them; else `(scorer, None, None)`."""
    own = getattr(scorer, "mechanism_offsets", None)
    if own is not None:
        return (scorer, own, "model") if np.any(own) else (scorer, None, None)
    if val_scores is None or val_labels is None:
        return scorer, None, None
    chosen = choose_mechanism_offsets(val_scores, val_labels, threshold)
    if chosen is None:
        return scorer, None, None
    return WithMechanismOffsets(scorer, chosen), chosen, "validation"


def score_result(
    name: str,
    labels: LabelArrays,
    scores: ScoreArrays,
    threshold: float,
    threshold_source: str = "validation",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    fit_seconds: float = 0.0,
    predict_seconds_per_sequence: float = 0.0,
    scorer: Any = None,
) -> ScorerResult:
    return ScorerResult(
        name=name,
        threshold=threshold,
        threshold_source=threshold_source,
        metrics=compute_metrics(labels, scores, threshold),
        estimates=athlete_bootstrap(labels, scores, threshold, n_boot=n_boot, seed=seed, level=level),
        per_task=per_task_table(labels, scores, threshold),
        per_athlete=per_athlete_table(labels, scores, threshold),
        confusion=mechanism_confusion(labels, scores, threshold),
        scores=scores,
        fit_seconds=fit_seconds,
        predict_seconds_per_sequence=predict_seconds_per_sequence,
        scorer=scorer,
    )


def evaluate_scorers(
    scorers: Mapping[str, Any],
    train: Sequence[KeypointSequence],
    val: Sequence[KeypointSequence],
    test: Sequence[KeypointSequence],
    *,
    threshold_rule: str = "f1",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    info: dict[str, Any] | None = None,
    share_features: bool = False,
) -> EvaluationResult:
    """Fit every scorer on `train`, pick its threshold on `val`, score it on `test`.

    With `share_features`, the feature baselines reuse the summary features the first of them computed
    (faster; their fit and predict times then leave out that shared extraction, which the report says).
    """
    if not test:
        raise InputError("no test sequences to evaluate on (is the held-out split empty?)")
    test_labels = LabelArrays.from_sequences(test)
    val_labels = LabelArrays.from_sequences(val) if val else None
    results: dict[str, ScorerResult] = {}
    for name, scorer in scorers.items():
        if not getattr(scorer, "pretrained", False) and not train:
            log.warning("skipping %s: it needs training athletes and this evaluation has none", name)
            continue
        log.info("scoring %s", name)
        if not share_features:
            clear_cache()  # honest timings: no scorer profits from features another one computed
        timed = fit_and_score(scorer, train, {"test": test})
        val_scores = threshold_free(scorer).predict(val) if val else None
        threshold, source = resolve_threshold(scorer, val_scores, val_labels, threshold_rule)
        scorer, test_scores = at_chosen_threshold(scorer, threshold, test, timed.scores["test"])
        said = getattr(scorer, "last_warnings", None)  # the test recordings': `predict` read them last
        scorer, offsets, offsets_source = resolve_mechanism_offsets(scorer, val_scores, val_labels, threshold)
        if offsets_source == "validation":
            test_scores = apply_offsets(test_scores, offsets)
        results[name] = score_result(
            name,
            test_labels,
            test_scores,
            threshold,
            source,
            n_boot=n_boot,
            seed=seed,
            level=level,
            fit_seconds=timed.fit_seconds,
            predict_seconds_per_sequence=timed.predict_seconds_per_sequence,
            scorer=scorer,
        )
        if offsets is not None:
            results[name].mechanism_offsets = offsets_dict(offsets)
            results[name].mechanism_offsets_source = offsets_source
        if said is not None and len(said) == len(test):
            results[name].input_warnings = count_warnings(said)
    pair_with_first(results, test_labels, n_boot=n_boot, seed=seed, level=level)
    views = camera_views(test)
    if views is not None:
        for r in results.values():
            r.per_view = grouped_table(test_labels, r.scores, r.threshold, views, "camera_view")
    info = dict(info or {})
    info.setdefault("n_test_sequences", len(test))
    info.setdefault("n_test_athletes", len(np.unique(test_labels.athlete_id)))
    info.setdefault("n_val_athletes", len(np.unique(val_labels.athlete_id)) if val_labels is not None else 0)
    info.setdefault("n_train_athletes", len({s.athlete_id for s in train}))
    info.setdefault("threshold_rule", threshold_rule)
    info.setdefault("n_boot", n_boot)
    info.setdefault("bootstrap_seed", seed)  # what every later interval of the report draws with
    info.setdefault("ci_level", level)
    return EvaluationResult(labels=test_labels, results=results, info=info, camera_view=views)


def camera_views(sequences: Sequence[KeypointSequence]) -> np.ndarray | None:
    """(S,) each sequence's camera view family as the generator records it (`meta["camera"]["view"]`: front,
    oblique, rear, side), "3D" for 3D input, "unknown" for 2D without one; None when no sequence has one. The
    presence call reads the frontal plane, which a side view hides: a mean over views hides how each is read."""
    views = np.array([
        "3D" if seq.dims == 3 else str((seq.meta.get("camera") or {}).get("view") or "unknown") for seq in sequences
    ])
    return None if set(views.tolist()) <= {"unknown", "3D"} else views


def pair_with_first(results: Mapping[str, ScorerResult], labels: LabelArrays, *, n_boot: int, seed: int,
                    level: float) -> None:
    """Set every later scorer's `minus_first`. Two scorers' own CIs overlap even where one is better on nearly
    every athlete; whether a baseline is really behind the model is read from the paired difference."""
    first = next(iter(results.values()), None)
    for r in list(results.values())[1:]:
        r.minus_first = paired_bootstrap(labels, r.scores, r.threshold, first.scores, first.threshold,
                                         n_boot=n_boot, seed=seed, level=level, metrics=PAIRED_METRICS)
