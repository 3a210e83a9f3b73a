"""Metrics on hand-made predictions whose values are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.errors import ConfigError, InputError
from valgusml.evaluation.metrics import (
    compute_metrics,
    expected_calibration_error,
    mechanism_confusion,
    per_athlete_table,
    per_task_table,
    worst_mechanism_f1,
    worst_task_auroc,
)
from valgusml.labels import MECHANISM_INDEX, MECHANISM_UNKNOWN
from valgusml.scoring.arrays import LabelArrays, ScoreArrays
from valgusml.scoring.thresholds import choose_threshold


def _one_hot(names):
    out = np.full((len(names), 2, 5), 0.05)
    for i, pair in enumerate(names):
        for k, name in enumerate(pair):
            out[i, k, MECHANISM_INDEX[name]] = 0.8
    return out


@pytest.fixture
def hand_made():
    labels = LabelArrays(
        valgus=np.array([[1, 1], [0, 0]]),
        mechanism=np.array([[MECHANISM_INDEX["hip_weakness"], MECHANISM_INDEX["pronation"]], [0, 0]]),
        severity_deg=np.array([[20.0, 18.0], [5.0, 6.0]]),
        athlete_id=np.array(["a", "b"]),
        task=np.array(["bilateral_squat", "single_leg_squat_left"]),
        sequence_id=np.array(["s0", "s1"]),
    )
    scores = ScoreArrays(
        valgus_probability=np.array([[0.9, 0.4], [0.6, 0.1]]),
        mechanism_probabilities=_one_hot([("hip_weakness", "pronation"), ("pronation", "none")]),
        severity_deg=np.array([[22.0, 15.0], [5.0, 10.0]]),
    )
    return labels, scores


def test_presence_metrics_match_hand_computed_values(hand_made):
    m = compute_metrics(*hand_made, threshold=0.5)
    # limbs pooled: y = 1 1 0 0, p = .9 .4 .6 .1
    assert m["valgus_auroc"] == pytest.approx(3 / 4)  # 3 of 4 positive/negative pairs ranked right
    assert m["valgus_average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert m["valgus_sensitivity"] == pytest.approx(0.5)
    assert m["valgus_specificity"] == pytest.approx(0.5)
    assert m["valgus_f1"] == pytest.approx(0.5)
    assert m["valgus_brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    assert m["valgus_ece"] == pytest.approx((0.1 + 0.6 + 0.4 + 0.1) / 4 + 0.05)  # one sample per bin: mean |p - y|
    # per limb: left y = 1 0, p = .9 .6: perfectly ranked; right y = 1 0, p = .4 .1
    assert m["valgus_left_auroc"] == 1.0 and m["valgus_right_auroc"] == 1.0
    assert m["valgus_right_sensitivity"] == 0.0  # .4 is below the threshold
    assert m["n_athletes"] == 2 and m["n_sequences"] == 2


def test_ece_is_mean_abs_gap_with_one_sample_per_bin():
    assert expected_calibration_error(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.6, 0.1])) == pytest.approx(1.4 / 4)
    # two samples in one bin average before the gap is taken: |0.25 - 0.5| = 0.25
    assert expected_calibration_error(np.array([1, 0]), np.array([0.25, 0.25])) == pytest.approx(0.25)


def test_mechanism_metrics_follow_the_threshold_rule(hand_made):
    labels, scores = hand_made
    m = compute_metrics(labels, scores, threshold=0.5)
    # truth: hip, pronation, none, none; called: hip, none (p=.4 < .5), pronation (p=.6), none
    assert m["mechanism_accuracy"] == pytest.approx(0.5)
    assert m["mechanism_balanced_accuracy"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m["mechanism_macro_f1"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m["mechanism_precision_hip_weakness"] == 1.0
    assert m["mechanism_recall_pronation"] == 0.0
    assert np.isnan(m["mechanism_recall_limited_dorsiflexion"])  # never in the truth: no recall, not 0
    cm = mechanism_confusion(labels, scores, 0.5)
    assert cm.sum() == 4 and cm[0, 0] == 1 and cm[0, 3] == 1 and cm[3, 0] == 1 and cm[1, 1] == 1
    assert m["severity_mae_deg"] == pytest.approx((2 + 3 + 0 + 4) / 4)


def test_the_class_and_the_task_read_worst_are_named(hand_made):
    labels, scores = hand_made
    # truth: hip, pronation, none, none; called: hip, none, pronation, none -> F1 hip 1, none 0.5, pronation 0;
    # limited dorsiflexion and adductor overactivity are in no truth and are not scored
    assert worst_mechanism_f1(labels, scores, 0.5) == (0.0, "pronation")
    assert worst_mechanism_f1(labels, scores, 0.3)[1] == "none"  # .4 called: pronation right, none 1/2 -> 2/3
    assert worst_task_auroc(labels, scores, 0.5) is None  # each task has one class only: no AUROC
    walking = LabelArrays(
        valgus=np.array([[1, 0], [1, 0], [1, 0]]),
        mechanism=np.array([[1, 0], [1, 0], [1, 0]]),
        severity_deg=np.full((3, 2), 10.0),
        athlete_id=np.array(["a", "b", "c"]),
        task=np.array(["bilateral_squat", "walking", "walking"]),
        sequence_id=np.array(["s0", "s1", "s2"]),
    )
    ranked = ScoreArrays(
        valgus_probability=np.array([[0.9, 0.1], [0.6, 0.7], [0.8, 0.2]]),  # walking: 3 of 4 pairs right
        mechanism_probabilities=_one_hot([("hip_weakness", "none")] * 3),
        severity_deg=np.full((3, 2), 10.0),
    )
    assert worst_task_auroc(walking, ranked, 0.5) == (pytest.approx(0.75), "walking")
    unknown = LabelArrays(**{**walking.__dict__, "mechanism": np.full((3, 2), MECHANISM_UNKNOWN)})
    assert worst_mechanism_f1(unknown, ranked, 0.5) is None  # rule-labelled data: no mechanism to read
    assert mechanism_confusion(unknown, ranked, 0.5).shape == (5, 5)  # all zero, where scikit-learn raised


def test_tables_per_task_and_athlete(hand_made):
    labels, scores = hand_made
    tasks = per_task_table(labels, scores, 0.5)
    assert list(tasks["task"]) == ["bilateral_squat", "single_leg_squat_left"]
    assert tasks.set_index("task").loc["bilateral_squat", "valgus_sensitivity"] == 0.5
    athletes = per_athlete_table(labels, scores, 0.5)
    assert list(athletes["athlete_id"]) == ["a", "b"]
    assert list(athletes["valgus_accuracy"]) == [0.5, 0.5]
    assert list(athletes["n_sequences"]) == [1, 1]


def test_threshold_rules_on_validation_scores():
    truth = np.array([0, 0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.2, 0.35, 0.3, 0.8, 0.9])
    assert choose_threshold(prob, truth, rule="f1") == pytest.approx(0.3)  # F1 = 6/7 with all positives caught
    # Youden: at 0.3 J = 1 - 2/4, at 0.8 J = 2/3 - 0
    truth_y = np.array([0, 0, 0, 0, 1, 1, 1])
    prob_y = np.array([0.1, 0.2, 0.35, 0.4, 0.3, 0.8, 0.9])
    assert choose_threshold(prob_y, truth_y, rule="youden") == pytest.approx(0.8)
    assert choose_threshold(prob, np.zeros(6), rule="f1") == 0.5  # one class: nothing to learn
    with pytest.raises(ConfigError):
        choose_threshold(prob, truth, rule="accuracy")
    with pytest.raises(InputError):
        choose_threshold(prob, truth[:3])


def test_score_arrays_validation():
    with pytest.raises(InputError, match="valgus_probability"):
        ScoreArrays(np.full((2, 2), 1.5), np.ones((2, 2, 5)), np.zeros((2, 2)))
    with pytest.raises(InputError, match="mechanism_probabilities"):
        ScoreArrays(np.zeros((2, 2)), np.ones((2, 2, 4)), np.zeros((2, 2)))
    s = ScoreArrays(np.zeros((1, 2)), np.ones((1, 2, 5)), np.zeros((1, 2)))
    assert np.allclose(s.mechanism_probabilities.sum(-1), 1.0)
