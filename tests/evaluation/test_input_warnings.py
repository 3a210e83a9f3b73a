"""valgusml.evaluation.input_warnings: what the predictor said about a scored set, counted by kind."""

from __future__ import annotations

import numpy as np

from valgusml.evaluation.input_warnings import count_warnings, warning_kind
from valgusml.evaluation.runner import evaluate_scorers
from valgusml.scoring.arrays import ScoreArrays


def test_kinds_drop_the_particulars():
    assert warning_kind("resampled from 60 fps to 30 fps") == "resampled from # fps to # fps"
    assert warning_kind("missing joints: nose, neck") == "missing joints"
    assert warning_kind("a rolled camera: the legs lean 15 deg clockwise") == "a rolled camera"
    assert warning_kind("side view (camera ~59 deg from the front): the knee's ...") == \
        "side view (camera ~# deg from the front)"
    assert warning_kind("implausible scale: the body spans 1.5e-06 units") == "implausible scale"


def test_counts_are_recordings_most_frequent_first():
    said = [["missing joints: nose", "missing joints: neck", "resampled from 60 fps to 30 fps"],
            ["resampled from 25 fps to 30 fps"], [], ["a rolled camera: the legs lean 20 deg"]]
    assert count_warnings(said) == {"resampled from # fps to # fps": 2, "a rolled camera": 1, "missing joints": 1}
    assert list(count_warnings(said)) == ["resampled from # fps to # fps", "a rolled camera", "missing joints"]


class _Saying:
    """A trained scorer that says something about every other recording, as an exported predictor does."""

    pretrained = True
    decision_threshold = 0.5

    def fit(self, sequences):
        return self

    def predict(self, sequences):
        n = len(sequences)
        self.last_warnings = [["upper body never seen (nose, neck, shoulders): ..."] if i % 2 else [] for i in range(n)]
        probability = np.tile([0.2, 0.7], (n, 1))
        mechanism = np.zeros((n, 2, 5))
        mechanism[..., 0] = 1.0
        return ScoreArrays(probability, mechanism, np.full((n, 2), 5.0))


def test_an_evaluation_keeps_what_the_model_said_about_its_test_recordings(tiny_sequences, tiny_test_sequences):
    result = evaluate_scorers({"model": _Saying()}, [], [], tiny_test_sequences, n_boot=10)
    n_said = len(tiny_test_sequences) // 2
    assert result.results["model"].input_warnings == {"upper body never seen (nose, neck, shoulders)": n_said}
