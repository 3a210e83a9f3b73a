"""The shipped pretrained predictor (`data/pretrained/tcn_gpu`, trained on a GPU; README says how) loads with
numpy + onnxruntime and answers the shipped samples as the exported default does."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import valgusml
from valgusml import Predictor

PRETRAINED = Path(__file__).resolve().parents[2] / "data" / "pretrained" / "tcn_gpu"
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def test_the_pretrained_predictor_loads_and_says_where_it_came_from():
    predictor = Predictor.load(PRETRAINED)
    meta = predictor.metadata
    assert meta["architecture"]["backbone"] == "TCN"
    assert meta["architecture"]["config"]["backbone"]["channels"] == 128
    assert meta["architecture"]["config"]["backbone"]["n_blocks"] == 6
    assert meta["metrics"]["test"]["valgus_auroc"] > 0.9  # its own held-out athletes (generator seed 1)
    assert 0.0 < predictor.decision_threshold < 1.0


@pytest.mark.parametrize("name", ["squat.npz", "squat_halpe26.json"])
def test_the_pretrained_predictor_answers_the_samples(name):
    predictor = Predictor.load(PRETRAINED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the importers' notes on the sample (bystander, frame rate)
        sequence = valgusml.io.read(SAMPLES / name)
    prediction = predictor.predict(sequence)
    for limb in ("left", "right"):
        assert 0.0 <= prediction.limbs[limb].valgus_probability <= 1.0
    assert prediction.limbs["left"].valgus is False  # the sample's left knee stays straight
    if name.endswith(".npz"):  # 3D: presence from the measured angle, as with any export
        assert prediction.limbs["right"].valgus is True
        assert prediction.view["presence_from"] == {"left": "measured", "right": "measured"}
