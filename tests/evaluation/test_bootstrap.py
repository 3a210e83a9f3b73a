"""The athlete bootstrap: equals scikit-learn at unit weights, resamples athletes (not sequences), shrinks with
more athletes, is seeded; thresholds never see test labels."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.evaluation.bootstrap import (
    Estimate,
    athlete_bootstrap,
    athlete_weights,
    bootstrap_replicates,
    format_estimate,
    paired_bootstrap,
)
from valgusml.evaluation.metrics import HEADLINE_METRICS, compute_metrics
from valgusml.scoring.arrays import LabelArrays, ScoreArrays


def synthetic_scores(n_athletes, per_athlete, seed=0, counts=None):
    """Per-athlete random effects so sequences of one athlete are correlated, as in real data."""
    rng = np.random.default_rng(seed)
    counts = counts if counts is not None else [per_athlete] * n_athletes
    athlete = np.repeat([f"a{i:03d}" for i in range(n_athletes)], counts)
    n = len(athlete)
    effect = np.repeat(rng.normal(0, 1.0, n_athletes), counts)[:, None]
    valgus = rng.integers(0, 2, (n, 2))
    logit = 1.2 * (2 * valgus - 1) + effect + rng.normal(0, 0.8, (n, 2))
    prob = np.round(1 / (1 + np.exp(-logit)), 3)
    mechanism = np.where(valgus == 1, rng.integers(1, 5, (n, 2)), 0)
    mech_prob = rng.random((n, 2, 5))
    right = rng.random((n, 2)) < 0.7
    mech_prob[np.arange(n)[:, None], np.arange(2)[None], np.where(right, mechanism, (mechanism % 4) + 1)] += 2.0
    severity = rng.normal(12, 4, (n, 2))
    margin = (2 * valgus - 1) * rng.uniform(0, 10, (n, 2))  # the rule's angle past its threshold, on the label's side
    labels = LabelArrays(valgus, mechanism, severity, athlete, np.array(["bilateral_squat"] * n),
                         np.arange(n).astype(str), margin)
    scores = ScoreArrays(prob, mech_prob, severity + rng.normal(0, 2, (n, 2)))
    return labels, scores


def test_unit_weights_reproduce_sklearn_point_estimates():
    labels, scores = synthetic_scores(30, 6)
    point = compute_metrics(labels, scores, 0.45)
    reps = bootstrap_replicates(labels, scores, 0.45, np.ones((1, len(labels))))
    for name in HEADLINE_METRICS:
        assert reps[name][0] == pytest.approx(point[name], abs=1e-9), name


def test_integer_weights_equal_physically_duplicated_athletes():
    labels, scores = synthetic_scores(12, 4, seed=3)
    weights = athlete_weights(labels.athlete_id, 5, seed=1)
    reps = bootstrap_replicates(labels, scores, 0.5, weights)
    for b in range(5):
        index = np.repeat(np.arange(len(labels)), weights[b].astype(int))  # the replicate, materialised
        point = compute_metrics(labels.take(index), scores.take(index), 0.5)
        for name in ("valgus_auroc", "valgus_auroc_clear", "valgus_average_precision", "valgus_f1", "mechanism_macro_f1",
                     "mechanism_balanced_accuracy", "valgus_ece", "severity_mae_deg"):
            assert reps[name][b] == pytest.approx(point[name], abs=1e-9), (name, b)


def test_weights_move_whole_athletes_together():
    athlete = np.array(["a", "a", "a", "b", "c", "c"])
    weights = athlete_weights(athlete, 200, seed=0)
    assert weights.shape == (200, 6)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 1] == weights[:, 2]).all()
    assert (weights[:, 4] == weights[:, 5]).all()
    # each replicate draws 3 athletes: the weights of the distinct athletes sum to 3
    assert (weights[:, [0, 3, 4]].sum(axis=1) == 3).all()


def test_ci_resamples_athletes_not_sequences():
    """Athlete A: 99 sequences, all right. Athlete B: 1 sequence, wrong. Resampling athletes, a quarter of the
    replicates hold only B (accuracy 0); resampling sequences, the accuracy would stay near 0.99."""
    n = 100
    athlete = np.array(["A"] * 99 + ["B"])
    valgus = np.ones((n, 2), dtype=int)
    valgus[-1] = 0
    prob = np.full((n, 2), 0.9)  # B's limbs are called valgus: wrong
    mechanism = np.where(valgus == 1, 1, 0)
    mech_prob = np.zeros((n, 2, 5))
    mech_prob[..., 1] = 1.0
    labels = LabelArrays(valgus, mechanism, np.full((n, 2), 10.0), athlete, np.array(["t"] * n), np.arange(n).astype(str))
    scores = ScoreArrays(prob, mech_prob, np.full((n, 2), 10.0))
    est = athlete_bootstrap(labels, scores, 0.5, n_boot=400, seed=0)["mechanism_accuracy"]
    assert est.value == pytest.approx(0.99)
    assert est.lo == 0.0  # only possible when whole athletes are drawn
    assert est.hi == 1.0


def test_ci_shrinks_with_more_athletes():
    few = athlete_bootstrap(*synthetic_scores(8, 6, seed=0), 0.5, n_boot=500, seed=0)
    many = athlete_bootstrap(*synthetic_scores(128, 6, seed=0), 0.5, n_boot=500, seed=0)
    for name in ("valgus_auroc", "valgus_f1", "mechanism_macro_f1", "severity_mae_deg"):
        width_few = few[name].hi - few[name].lo
        width_many = many[name].hi - many[name].lo
        assert width_many < 0.5 * width_few, name
        assert many[name].lo <= many[name].value <= many[name].hi


def test_bootstrap_is_seeded():
    labels, scores = synthetic_scores(20, 3, seed=5)
    a = athlete_bootstrap(labels, scores, 0.5, n_boot=200, seed=7)
    b = athlete_bootstrap(labels, scores, 0.5, n_boot=200, seed=7)
    c = athlete_bootstrap(labels, scores, 0.5, n_boot=200, seed=8)
    assert a == b
    assert a["valgus_auroc"].lo != c["valgus_auroc"].lo
    assert str(a["valgus_auroc"]).count("[") == 1  # "value [lo, hi]"


def test_paired_difference_is_exact_at_its_point_and_narrower_than_either_ci():
    """A scorer nudged towards the truth on every limb: its difference from the original is the difference of
    the scikit-learn figures; the paired CI, drawing the same athletes for both, lies above zero and is far
    narrower than either scorer's own CI (which overlap); a scorer paired with itself differs by exactly 0."""
    labels, scores = synthetic_scores(40, 4, seed=3)
    logit = np.log(scores.valgus_probability / (1 - scores.valgus_probability))
    better_probability = 1 / (1 + np.exp(-(logit + 0.4 * (2 * labels.valgus - 1))))
    better = ScoreArrays(better_probability, scores.mechanism_probabilities, scores.severity_deg)
    paired = paired_bootstrap(labels, better, 0.5, scores, 0.5, n_boot=400, seed=1)
    own, own_better = (athlete_bootstrap(labels, s, 0.5, n_boot=400, seed=1) for s in (scores, better))
    auroc = paired["valgus_auroc"]
    expected = (compute_metrics(labels, better, 0.5)["valgus_auroc"]
                - compute_metrics(labels, scores, 0.5)["valgus_auroc"])
    assert auroc.value == pytest.approx(expected) and auroc.value > 0
    assert 0 < auroc.lo <= auroc.value <= auroc.hi
    assert own_better["valgus_auroc"].lo < own["valgus_auroc"].hi  # the unpaired CIs overlap
    assert auroc.hi - auroc.lo < 0.5 * (own["valgus_auroc"].hi - own["valgus_auroc"].lo)
    assert paired["mechanism_macro_f1"].value == pytest.approx(
        compute_metrics(labels, better, 0.5)["mechanism_macro_f1"] - compute_metrics(labels, scores, 0.5)["mechanism_macro_f1"])
    same = paired_bootstrap(labels, scores, 0.5, scores, 0.5, n_boot=100, seed=0)
    assert all((e.value, e.lo, e.hi) == (0.0, 0.0, 0.0) for e in same.values())
    assert paired_bootstrap(labels, better, 0.5, scores, 0.5, n_boot=400, seed=1) == paired  # seeded
    assert format_estimate(auroc, signed=True).startswith("+") and format_estimate(auroc, signed=True).count("+") == 3
    # a row's three columns carry it and give it back; a missing one reads NaN
    row = auroc.columns("gain")
    assert list(row) == ["gain", "gain_lo", "gain_hi"] and row["gain_lo"] == auroc.lo
    assert Estimate.from_columns(row, "gain") == Estimate(auroc.value, auroc.lo, auroc.hi, 0)
    assert np.isnan(Estimate.from_columns({}, "gain").value)
