"""Every baseline fits and predicts on tiny data, through the one scorer interface; thresholds come from
validation only."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.evaluation.baselines import FeatureModel, FPPARule, MiniRocketModel
from valgusml.evaluation.baselines._features import LIMB_VIEW_NAMES, limb_summary, summary_feature_names
from valgusml.evaluation.runner import evaluate_scorers
from valgusml.labels import none_label
from valgusml.scoring.arrays import LabelArrays, ScoreArrays

from .conftest import make_sequences


def _check_scores(scores: ScoreArrays, n: int) -> None:
    assert scores.valgus_probability.shape == (n, 2)
    assert scores.mechanism_probabilities.shape == (n, 2, 5)
    assert scores.severity_deg.shape == (n, 2)
    assert np.allclose(scores.mechanism_probabilities.sum(-1), 1.0)
    assert ((scores.valgus_probability >= 0) & (scores.valgus_probability <= 1)).all()


def _auroc(labels: LabelArrays, scores: ScoreArrays) -> float:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels.valgus.ravel(), scores.valgus_probability.ravel())


def test_limb_views_are_mirrors(tiny_sequences):
    seq = tiny_sequences[0]  # athlete a00: hip weakness on the left
    summary = limb_summary(seq)
    assert summary.shape == (2, len(summary_feature_names()))
    own_fppa = summary_feature_names().index("own_fppa_deg_p95")
    other_fppa = summary_feature_names().index("other_fppa_deg_p95")
    assert summary[0, own_fppa] == pytest.approx(summary[1, other_fppa])
    assert summary[0, own_fppa] > summary[1, own_fppa] + 5  # the affected left knee caves in
    assert "own_fppa_deg" in LIMB_VIEW_NAMES and "pelvic_obliquity_deg" in LIMB_VIEW_NAMES


@pytest.mark.parametrize("make", [FPPARule, lambda: FeatureModel("hgb", max_iter=30), lambda: FeatureModel("logreg")])
def test_baseline_fits_and_predicts(make, tiny_sequences, tiny_test_sequences):
    model = make().fit(tiny_sequences)
    scores = model.predict(tiny_test_sequences)
    _check_scores(scores, len(tiny_test_sequences))
    labels = LabelArrays.from_sequences(tiny_test_sequences)
    assert _auroc(labels, scores) > 0.9  # the stand-in data has a clear valgus signal
    called = scores.decide_mechanism(0.5)
    assert (called[labels.valgus == 1] == labels.mechanism[labels.valgus == 1]).mean() >= 0.6


@pytest.mark.parametrize("make", [FPPARule, lambda: FeatureModel("hgb", max_iter=30)])
def test_baselines_fit_when_some_valgus_limbs_have_no_known_mechanism(make, tiny_sequences, tiny_test_sequences):
    """Knee-alone valgus (generator) and rule-labelled real motion: presence known, mechanism unknown. The
    mechanism part learns from the known ones only; presence from all."""
    unknown = 0
    sequences = []
    for seq in tiny_sequences:
        labels = {limb: dict(label) for limb, label in seq.labels.items()}
        for label in labels.values():
            if label["valgus"] and unknown % 3 == 0:
                label.update(mechanism=None, contributions={})
            unknown += label["valgus"]
        sequences.append(seq.replace(labels=labels))
    assert any(label["mechanism"] is None for seq in sequences for label in seq.labels.values())
    scores = make().fit(sequences).predict(tiny_test_sequences)
    _check_scores(scores, len(tiny_test_sequences))
    assert _auroc(LabelArrays.from_sequences(tiny_test_sequences), scores) > 0.9


def test_fppa_rule_threshold_is_a_clinical_angle(tiny_sequences):
    rule = FPPARule().fit(tiny_sequences)
    assert 5.0 < rule.threshold_deg_ < 40.0
    assert set(rule.cuts_) == {"hip_weakness", "pronation", "limited_dorsiflexion", "adductor_tfl_overactivity"}


def test_fppa_rule_gives_every_labelled_limb_a_severity(tiny_sequences, tiny_test_sequences):
    """A single-leg task's free leg has no loaded frame, so no peak FPPA: its severity is the median of such
    training limbs', not NaN, so the rule's severity MAE is read on the same limbs as every other scorer's."""
    def one_leg(seqs):
        return [s.replace(task="single_leg_squat_left") if i % 3 == 0 else s for i, s in enumerate(seqs)]

    train, test = one_leg(tiny_sequences), one_leg(tiny_test_sequences)
    rule = FPPARule().fit(train)
    scores = rule.predict(test)
    labels = LabelArrays.from_sequences(test)
    assert np.isfinite(scores.severity_deg[np.isfinite(labels.severity_deg)]).all()
    free = scores.severity_deg[::3, 1]  # the right leg of the single-leg squats
    train_free = LabelArrays.from_sequences(train).severity_deg[::3, 1]
    assert np.allclose(free, np.median(train_free))


@pytest.mark.slow
def test_minirocket_fits_and_predicts(tiny_sequences, tiny_test_sequences):
    # Tiny: MiniRocket's minimum of 84 kernels and short windows. aeon's numba compile (~35 s CPU) happens
    # once per environment: aeon caches it (in its package folder, or NUMBA_CACHE_DIR when set).
    model = MiniRocketModel(num_kernels=84, channels="both", preprocess={"window": 32, "stride": 16})
    scores = model.fit(tiny_sequences).predict(tiny_test_sequences)
    _check_scores(scores, len(tiny_test_sequences))
    assert _auroc(LabelArrays.from_sequences(tiny_test_sequences), scores) > 0.8


def _poisoned(sequences):
    """The same recordings with every label turned around (valgus ↔ none)."""
    flipped = []
    for seq in sequences:
        labels = {}
        for limb, label in seq.labels.items():
            labels[limb] = (
                none_label(severity_deg=0.0) if label["valgus"]
                else {"valgus": True, "mechanism": "hip_weakness", "severity_deg": 30.0}
            )
        flipped.append(seq.replace(labels=labels))
    return flipped


def test_threshold_is_chosen_on_validation_only(tiny_sequences):
    train, val, test = tiny_sequences[:15], tiny_sequences[15:24], make_sequences(5, 2, seed=4)
    clean = evaluate_scorers({"fppa_rule": FPPARule()}, train, val, test, n_boot=50)
    poisoned = evaluate_scorers({"fppa_rule": FPPARule()}, train, val, _poisoned(test), n_boot=50)
    a, b = clean.results["fppa_rule"], poisoned.results["fppa_rule"]
    assert a.threshold_source == "validation"
    assert a.threshold == b.threshold  # test labels never reach the threshold
    assert a.metrics["valgus_auroc"] > 0.9 > 0.1 > b.metrics["valgus_auroc"]  # ... but they are what is scored
    # poisoning validation does move it
    moved = evaluate_scorers({"fppa_rule": FPPARule()}, train, _poisoned(val), test, n_boot=50)
    assert moved.results["fppa_rule"].threshold != a.threshold


def test_nan_percentiles_match_numpy():
    import warnings

    from valgusml.evaluation.baselines._features import nan_percentiles

    x = np.random.default_rng(0).normal(size=(2, 40, 6))
    x[0, :15, 2] = np.nan
    x[1, :, 3] = np.nan  # a measure the skeleton cannot give
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = [np.nanpercentile(x, q, axis=-2) for q in (5, 50, 95)]
    for got, want in zip(nan_percentiles(x, [5, 50, 95]), expected, strict=True):
        np.testing.assert_allclose(got, want, equal_nan=True)


class _Fixed:
    """A scorer that answers the same arrays whatever it is given."""

    def __init__(self, prob, mech, severity, threshold=0.5):
        from valgusml.scoring.arrays import ScoreArrays

        self.scores = ScoreArrays(np.asarray(prob, float), np.asarray(mech, float), np.asarray(severity, float))
        self.decision_threshold = threshold

    def predict(self, sequences):
        return self.scores


def test_ensemble_is_the_weighted_mean_of_its_members():
    from valgusml.errors import ConfigError
    from valgusml.evaluation.scorers import Ensemble

    mech_a = np.tile([0.2, 0.8, 0.0, 0.0, 0.0], (1, 2, 1))
    mech_b = np.tile([0.6, 0.0, 0.4, 0.0, 0.0], (1, 2, 1))
    a = _Fixed([[0.9, 0.1]], mech_a, [[20.0, 4.0]], threshold=0.7)
    b = _Fixed([[0.3, 0.5]], mech_b, [[np.nan, np.nan]], threshold=0.3)  # b does not estimate severity
    ensemble = Ensemble(members=["a", "b"], weights=[3, 1]).bind({"a": a, "b": b, "ensemble": None})
    scores = ensemble.fit([]).predict([])
    np.testing.assert_allclose(scores.valgus_probability, [[0.75, 0.2]])
    np.testing.assert_allclose(scores.mechanism_probabilities[0, 0], [0.3, 0.6, 0.1, 0.0, 0.0])
    np.testing.assert_allclose(scores.severity_deg, [[20.0, 4.0]])  # the members that estimate it
    assert ensemble.decision_threshold == pytest.approx(0.6)  # without validation data: the weighted thresholds
    with pytest.raises(ConfigError, match="not among"):
        Ensemble(members=["a", "c"]).bind({"a": a, "ensemble": None})
    with pytest.raises(ConfigError, match="come after it"):
        Ensemble(members=["a", "b"]).bind({"a": a, "ensemble": None, "b": b})
    with pytest.raises(ConfigError, match="two or more"):
        Ensemble(members=["a"])
    with pytest.raises(ConfigError, match="weights"):
        Ensemble(members=["a", "b"], weights=[1, -1])
    with pytest.raises(ConfigError, match="no members bound"):
        Ensemble(members=["a", "b"]).predict([])
