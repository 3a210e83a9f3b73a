"""Mechanism offsets: chosen on validation athletes for macro-F1, applied to the probabilities themselves."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from sklearn.metrics import f1_score

from valgusml.errors import InputError
from valgusml.labels import DEFICITS, MECHANISM_INDEX, MECHANISM_UNKNOWN
from valgusml.predictor.results import combine_mechanisms, offsets_array, weigh_deficits
from valgusml.scoring.arrays import LabelArrays, ScoreArrays
from valgusml.scoring.mechanism_offsets import apply_offsets, choose_mechanism_offsets, macro_f1, offsets_dict

DORSIFLEXION = MECHANISM_INDEX["limited_dorsiflexion"]


def leaning_head(n_athletes: int, seed: int, lean: float = 1.0, per_athlete: int = 4):
    """Labelled limbs and a mechanism head that reads the deficit with noise and leans towards limited
    dorsiflexion by `lean` (log-odds), as a head distilled from a teacher with that leaning would."""
    rng = np.random.default_rng(seed)
    n = n_athletes * per_athlete
    truth = rng.integers(0, 5, (n, 2))
    valgus = (truth > 0).astype(np.int64)
    logits = rng.normal(0.0, 1.0, (n, 2, 5))
    logits[np.arange(n)[:, None], np.arange(2)[None], truth] += 1.5
    logits[..., DORSIFLEXION] += lean
    head = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    presence = np.clip(np.where(valgus == 1, 0.8, 0.2) + rng.normal(0.0, 0.1, (n, 2)), 0.0, 1.0)
    scores = ScoreArrays(presence, combine_mechanisms(presence, head), np.full((n, 2), np.nan))
    athletes = np.repeat([f"a{i}" for i in range(n_athletes)], per_athlete)
    labels = LabelArrays(valgus, truth, np.full((n, 2), np.nan), athletes, np.full(n, "walking"),
                         np.arange(n).astype(str))
    return scores, labels


def mechanism_f1(scores: ScoreArrays, labels: LabelArrays, threshold: float = 0.5) -> float:
    known = labels.mechanism.ravel() != MECHANISM_UNKNOWN
    return f1_score(labels.mechanism.ravel()[known], scores.decide_mechanism(threshold).ravel()[known],
                    average="macro", zero_division=0.0)


def test_macro_f1_is_scikit_learns():
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth, call = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
        call[rng.random(300) < 0.5] = 0  # classes absent from the calls, as a strict threshold leaves them
        truth[truth == 3] = 0
        assert macro_f1(truth, call) == pytest.approx(f1_score(truth, call, average="macro", zero_division=0.0))


def test_weighing_moves_the_deficits_only_and_keeps_their_sum():
    combined = combine_mechanisms(np.array([0.8, 0.3]), np.array([[0.1, 0.3, 0.3, 0.2, 0.1], [0.5, 0, 0, 0.5, 0]]))
    weighed = weigh_deficits(combined, {"hip_weakness": np.log(2.0), "limited_dorsiflexion": -1.0})
    np.testing.assert_allclose(weighed[:, 0], combined[:, 0])  # P(none) = 1 - P(valgus) stays
    np.testing.assert_allclose(weighed.sum(-1), 1.0)
    # Hip weakness doubled against adductor overactivity (equal before), dorsiflexion divided by e.
    assert weighed[0, 1] == pytest.approx(2 * weighed[0, 2])
    assert weighed[0, 4] / weighed[0, 3] == pytest.approx(np.exp(-1.0) * combined[0, 4] / combined[0, 3])
    np.testing.assert_allclose(weighed[1], combined[1])  # only pronation has mass: nothing to move it against
    assert weigh_deficits(combined, None) is not None
    np.testing.assert_array_equal(weigh_deficits(combined, np.zeros(4)), combined)


def test_offsets_are_named_deficits_with_finite_values():
    assert offsets_array(None).tolist() == [0.0] * 4
    assert offsets_array({"pronation": 0.5}).tolist() == [0.0, 0.0, 0.5, 0.0]
    assert list(offsets_dict(np.array([0.1, -0.2, 0.0, -1.15]))) == list(DEFICITS)
    with pytest.raises(InputError, match="flat_feet"):
        offsets_array({"flat_feet": 1.0})
    with pytest.raises(InputError, match="finite"):
        offsets_array(np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(InputError, match="one per deficit"):
        offsets_array(np.zeros(5))


def test_offsets_chosen_on_validation_undo_a_leaning_head_on_new_athletes():
    val_scores, val_labels = leaning_head(60, seed=1)
    offsets = choose_mechanism_offsets(val_scores, val_labels, 0.5)
    assert offsets is not None and offsets.shape == (4,) and offsets.sum() == pytest.approx(0.0)
    others = np.delete(offsets, DORSIFLEXION - 1)
    assert offsets[DORSIFLEXION - 1] < others.min() - 0.5  # the leaning is taken back ...
    assert np.ptp(others) < 0.3  # ... and the other deficits keep their standing
    test_scores, test_labels = leaning_head(60, seed=2)
    before, after = mechanism_f1(test_scores, test_labels), mechanism_f1(apply_offsets(test_scores, offsets), test_labels)
    assert after > before + 0.03
    # A head without a leaning keeps offsets near zero and loses nothing on new athletes.
    fair_val, fair_val_labels = leaning_head(60, seed=1, lean=0.0)
    fair = choose_mechanism_offsets(fair_val, fair_val_labels, 0.5)
    assert np.abs(fair).max() < 0.5
    fair_test, fair_test_labels = leaning_head(60, seed=2, lean=0.0)
    assert mechanism_f1(apply_offsets(fair_test, fair), fair_test_labels) > mechanism_f1(fair_test, fair_test_labels) - 0.02
    # Presence and severity are not touched; the same validation gives the same offsets.
    np.testing.assert_array_equal(apply_offsets(test_scores, offsets).valgus_probability, test_scores.valgus_probability)
    np.testing.assert_array_equal(choose_mechanism_offsets(val_scores, val_labels, 0.5), offsets)


def test_no_offsets_without_two_known_deficits():
    scores, labels = leaning_head(10, seed=0)
    rule_labelled = LabelArrays(labels.valgus, np.full_like(labels.mechanism, MECHANISM_UNKNOWN), labels.severity_deg,
                                labels.athlete_id, labels.task, labels.sequence_id)
    assert choose_mechanism_offsets(scores, rule_labelled, 0.5) is None
    one_deficit = np.where(labels.mechanism > 0, MECHANISM_INDEX["pronation"], 0)
    assert choose_mechanism_offsets(scores, LabelArrays(labels.valgus, one_deficit, labels.severity_deg,
                                                        labels.athlete_id, labels.task, labels.sequence_id), 0.5) is None
    with pytest.raises(InputError, match="do not match"):
        choose_mechanism_offsets(scores.take(np.arange(5)), labels, 0.5)


class LeaningScorer:
    """Reads each limb's labelled deficit with noise, leaning towards limited dorsiflexion (a stand-in for a
    network distilled from a teacher with that leaning); presence is read right."""

    pretrained = True
    name = "leaning"

    def fit(self, sequences):
        return self

    def predict(self, sequences):
        labels = LabelArrays.from_sequences(list(sequences))
        rng = np.random.default_rng(zlib.crc32("|".join(s.id for s in sequences).encode()))
        truth = np.where(labels.mechanism < 0, 0, labels.mechanism)
        logits = rng.normal(0.0, 1.0, (len(sequences), 2, 5))
        logits[np.arange(len(sequences))[:, None], np.arange(2)[None], truth] += 1.5
        logits[..., DORSIFLEXION] += 1.5
        presence = np.where(labels.valgus == 1, 0.9, 0.1)
        head = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        return ScoreArrays(presence, combine_mechanisms(presence, head), np.full((len(sequences), 2), np.nan))


def test_the_evaluation_chooses_each_scorers_offsets_on_validation_and_keeps_using_them(tmp_path):
    """A scorer without offsets of its own gets them from the validation athletes; its test scores and every
    later call of it (robustness, other data, the transfer table read `result.scorer`) are weighed alike; a
    scorer with its own (an exported predictor's) keeps them."""
    from valgusml.evaluation.report import write_report
    from valgusml.evaluation.runner import evaluate_scorers

    from .conftest import make_sequences

    val, test = make_sequences(30, 2, seed=1), make_sequences(30, 2, seed=2)
    own = LeaningScorer()
    own.mechanism_offsets = np.array([0.0, 0.0, 0.0, -0.25])
    result = evaluate_scorers({"leaning": LeaningScorer(), "own": own}, [], val, test, n_boot=20)
    chosen = result.results["leaning"]
    assert chosen.mechanism_offsets_source == "validation"
    assert chosen.mechanism_offsets["limited_dorsiflexion"] == min(chosen.mechanism_offsets.values())
    np.testing.assert_allclose(chosen.scorer.predict(test).mechanism_probabilities, chosen.scores.mechanism_probabilities)
    raw = LeaningScorer().predict(test)
    assert not np.allclose(raw.mechanism_probabilities, chosen.scores.mechanism_probabilities)
    labels = LabelArrays.from_sequences(test)
    assert chosen.metrics["mechanism_macro_f1"] > mechanism_f1(raw, labels, chosen.threshold)
    kept = result.results["own"]
    assert kept.mechanism_offsets_source == "model" and kept.mechanism_offsets["limited_dorsiflexion"] == -0.25
    np.testing.assert_allclose(kept.scores.mechanism_probabilities, raw.mechanism_probabilities)  # already its own
    write_report(result, tmp_path)
    assert "mechanism offsets" in (tmp_path / "report.html").read_text()
