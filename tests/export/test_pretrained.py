"""The shipped pretrained predictors (`data/pretrained/tcn_gpu`, trained on a GPU, `tcn_gpu_ensemble`, the
mean of five such trainings, and `tcn_student`, the default network pretrained on a GPU from that mean;
docs/experiments.md says how) load with numpy + onnxruntime and answer the shipped samples."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import valgusml
from valgusml import Predictor

PRETRAINED = Path(__file__).resolve().parents[2] / "data" / "pretrained" / "tcn_gpu"
ENSEMBLE = PRETRAINED.with_name("tcn_gpu_ensemble")
STUDENT = PRETRAINED.with_name("tcn_student")
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
STUDENT_SEEDS = [2, 3, 4, 5, 6, 9, 14, 16]  # generator seeds whose athletes the shipped start learnt from (README)


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


def test_the_shipped_ensemble_is_five_gpu_trainings_with_a_threshold_chosen_for_their_mean():
    predictor = Predictor.load(ENSEMBLE)
    meta = predictor.metadata
    members = meta["architecture"]["members"]
    assert meta["architecture"]["net"] == "mean of members" and len(members) == 5
    assert len({m["sha256"] for m in members}) == 5
    assert all(m["architecture"]["config"]["backbone"]["channels"] == 128 for m in members)
    # Seed 0 is the single shipped predictor.
    assert members[0]["sha256"] == Predictor.load(PRETRAINED).metadata["model"]["sha256"]
    assert meta["metrics"]["decision_threshold_from"]["rule"] == "f1 on validation athletes"
    assert meta["dataset_fingerprint"] == Predictor.load(PRETRAINED).metadata["dataset_fingerprint"]


@pytest.mark.parametrize("name", ["squat_halpe26.json", "squat_openpose", "squat_mediapipe.csv", "squat.npz", "squat.trc"])
def test_the_shipped_ensemble_agrees_with_the_samples_labels(name):
    """The right knee collapses at depth (labels.csv, by the rule on the 3D motion), the left does not: the
    ensemble calls both right in the halpe26, BODY_25 and MediaPipe layouts (its small toes placed by the
    preprocessing) and in 3D (the TRC sample names no task: its reps are found from the motion)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prediction = Predictor.load(ENSEMBLE).predict(valgusml.io.read(SAMPLES / name))
    assert prediction.limbs["right"].valgus is True and prediction.limbs["left"].valgus is False


def test_the_shipped_student_is_the_default_network_and_its_weights_fit_the_default_recipe():
    """`make run` starts from `tcn_student/weights.pt` (experiment=default, init_from): the weights must fit the
    recipe's network and preprocessing exactly, and come from athletes none of make run's data holds."""
    import torch

    from valgusml.hydra_app import to_plain
    from valgusml.predictor.format import seeds_learnt_from
    from valgusml.training.config import compose_config
    from valgusml.training.init_weights import read_weights, weights_config
    from valgusml.training.windows import preprocess_config

    cfg = compose_config(["experiment=default"])
    assert (Path(__file__).resolve().parents[2] / cfg.init_from) == STUDENT / "weights.pt"
    state, model, preprocess, source = read_weights(STUDENT / "weights.pt")
    # The same network: the recipe only adds what changes its evaluation, not its weights (the mirror mean).
    assert weights_config(model) == weights_config(to_plain(cfg.model)) and cfg.model.mirror_average
    assert preprocess == preprocess_config(to_plain(cfg.data.preprocess)).to_dict()
    assert all(isinstance(v, torch.Tensor) and torch.isfinite(v.float()).all() for v in state.values())
    # Athletes of generator seed 2 (the GPU pretraining, experiment=student_gpu) and of the seeds it was trained
    # on further (experiment=student_cpu), none of them make run's seed 0 or the teacher's seed 1.
    learnt_from = seeds_learnt_from(source)
    assert learnt_from == STUDENT_SEEDS
    assert compose_config(["experiment=student_gpu"]).data.generator_seed == learnt_from[0]
    assert source["generator_seed"] == learnt_from[-1]
    assert cfg.data.generator_seed not in learnt_from
    # The folders say so too, and the teacher's seed is neither make run's nor the start's.
    assert seeds_learnt_from(Predictor.load(STUDENT).metadata) == STUDENT_SEEDS
    assert Predictor.load(ENSEMBLE).metadata["generator_seed"] == 1 != cfg.data.generator_seed
    assert 1 not in learnt_from
    # `experiment=student_cpu` run as is trains the shipped start further on athletes new to it.
    assert compose_config(["experiment=student_cpu"]).data.generator_seed not in learnt_from
    meta = Predictor.load(STUDENT).metadata
    assert source["dataset_fingerprint"] == meta["dataset_fingerprint"]
    assert source["dataset_fingerprint"] != Predictor.load(ENSEMBLE).metadata["dataset_fingerprint"]
    assert meta["architecture"]["config"] == model


@pytest.mark.parametrize("name", ["squat_halpe26.json", "squat_openpose", "squat_mediapipe.csv", "squat.npz"])
def test_the_shipped_student_agrees_with_the_samples_labels(name):
    """As the ensemble it learnt from: right knee valgus, left not, in every layout with feet and in 3D."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prediction = Predictor.load(STUDENT).predict(valgusml.io.read(SAMPLES / name))
    assert prediction.limbs["right"].valgus is True and prediction.limbs["left"].valgus is False
