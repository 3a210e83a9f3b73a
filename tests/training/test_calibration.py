"""Presence calibration (`calibrate_presence`): Platt scaling fitted on validation after training, carried by the
checkpoint into the network, the ONNX graph and every scorer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.training.conftest import base_overrides, run_training  # noqa: E402
from valgusml.scoring.calibration import expected_calibration_error  # noqa: E402
from valgusml.training import calibration  # noqa: E402
from valgusml.training.calibration import compose, fit_presence_calibration  # noqa: E402

TINY_MODEL = ["model=tcn", "model.backbone.channels=8", "model.backbone.n_blocks=1", "model.head.hidden=8"]


def _windows(scale: float, shift: float, n: int = 4000, seed: int = 0) -> dict[str, torch.Tensor]:
    """One window per recording, two limbs, whose valgus labels are drawn at sigmoid(scale * logit + shift)."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(0.0, 2.5, size=(n, 2))
    valgus = rng.random((n, 2)) < 1.0 / (1.0 + np.exp(-(scale * logit + shift)))
    logit = torch.as_tensor(logit, dtype=torch.float32)
    return {"valgus_logit": logit, "valgus_probability": torch.sigmoid(logit),
            "valgus": torch.as_tensor(valgus, dtype=torch.long)}


def test_the_fit_finds_the_map_that_made_the_labels_and_lowers_the_ece():
    fitted = fit_presence_calibration(_windows(0.5, -1.0), lambda windows, neutral: windows)
    assert fitted["scale"] == pytest.approx(0.5, abs=0.05)
    assert fitted["shift"] == pytest.approx(-1.0, abs=0.1)
    assert fitted["recordings"] == 4000
    assert fitted["val_ece_before"] > 0.1 > 0.03 > fitted["val_ece_after"]


def test_a_head_already_calibrated_keeps_its_probabilities():
    fitted = fit_presence_calibration(_windows(1.0, 0.0), lambda windows, neutral: windows)
    # No map, or one that noise alone moved next to the identity
    assert fitted is None or (fitted["scale"] == pytest.approx(1.0, abs=0.08)
                              and fitted["shift"] == pytest.approx(0.0, abs=0.08))


def test_too_few_limbs_of_a_class_fit_nothing_and_say_so(caplog):
    windows = _windows(1.0, -6.0, n=200)
    with caplog.at_level(logging.WARNING, logger="valgusml.training.calibration"):
        assert fit_presence_calibration(windows, lambda w, neutral: w) is None
    assert "presence calibration: not fitted; validation holds" in caplog.text
    assert f"(at least {calibration.MIN_LIMBS_PER_CLASS} of each needed)" in caplog.text


def test_free_legs_answered_zero_do_not_count_towards_the_minimum():
    """Single-leg tasks: 25 valgus and 15 other loaded left knees, and 40 free right legs (label 0, answered 0)."""
    logit = torch.cat([torch.linspace(-3, 3, 40)[:, None], torch.full((40, 1), -30.0)], dim=1)
    valgus = torch.zeros((40, 2), dtype=torch.long)
    valgus[15:, 0] = 1
    windows = {"valgus_logit": logit, "valgus_probability": torch.sigmoid(logit), "valgus": valgus}
    loaded = torch.zeros((40, 2), dtype=torch.bool)
    loaded[:, 0] = True
    assert fit_presence_calibration(windows, lambda w, neutral: w) is not None  # free legs counted: 55 others
    assert fit_presence_calibration(windows, lambda w, neutral: {**w, "scored": loaded}) is None


def test_compose_is_the_two_maps_in_turn():
    inner, outer = {"scale": 2.0, "shift": 0.5}, {"scale": 0.25, "shift": -1.0}
    logit = torch.linspace(-5, 5, 11)
    both = compose(outer, inner)
    torch.testing.assert_close(logit * both["scale"] + both["shift"],
                               (logit * inner["scale"] + inner["shift"]) * outer["scale"] + outer["shift"])
    assert compose(outer, None) == outer


def test_the_network_refuses_a_map_that_is_not_one():
    from valgusml.models import ValgusNet
    from valgusml.models.tcn import TCN

    net = ValgusNet(backbone=TCN)
    for bad in ({"scale": 0.0, "shift": 0.0}, {"scale": 1.0, "shift": float("nan")}):
        with pytest.raises(ValueError, match="presence calibration needs a finite scale > 0"):
            net.set_presence_calibration(bad)


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory, tiny_dataset, shared_cache):
    """One epoch of the tiny network with a presence map fitted (the tiny validation split holds fewer valgus
    limbs than the default minimum, so the minimum is lowered), tested and exported."""
    root = tmp_path_factory.mktemp("calibrated")
    overrides = base_overrides(root, tiny_dataset, shared_cache) + TINY_MODEL
    overrides = [o for o in overrides if not o.startswith("export=")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calibration, "MIN_LIMBS_PER_CLASS", 1)
        metrics = run_training(overrides + ["logger=none", "trainer.max_epochs=1", "test=true", "export=true",
                                            f"export_dir={root / 'predictor'}"])
    (best,) = root.glob("logs/smoke/runs/*/checkpoints/best-epoch000.ckpt")
    return best, best.with_name("best-epoch000-calibrated.ckpt"), root / "predictor", metrics


def test_training_fits_the_map_on_validation_and_tests_and_exports_the_calibrated_checkpoint(calibrated_run):
    _, calibrated_ckpt, predictor_dir, metrics = calibrated_run
    info = torch.load(calibrated_ckpt, map_location="cpu", weights_only=True)["valgusml"]
    fitted = info["presence_calibration"]
    assert fitted["scale"] > 0 and np.isfinite(fitted["shift"]) and fitted["recordings"] > 0
    assert fitted["val_ece_after"] < fitted["val_ece_before"]
    # Validated again: threshold, val metrics and the test that follows are the calibrated answers'.
    assert info["val_metrics"]["decision_threshold"] == pytest.approx(info["decision_threshold"])
    assert metrics["val/valgus_ece"] == pytest.approx(info["val_metrics"]["valgus_ece"])
    assert metrics["test/decision_threshold"] == pytest.approx(info["decision_threshold"], abs=1e-4)
    exported = json.loads((predictor_dir / "model.json").read_text())
    assert exported["checkpoint"].endswith("best-epoch000-calibrated.ckpt")
    assert exported["presence_calibration"] == pytest.approx(fitted)
    # Side views are pulled where the mapped head answers when undecided, as the checkpoint's own scorer pulls them
    assert exported["presence_undecided"] == pytest.approx(1.0 / (1.0 + np.exp(-fitted["shift"])))


def test_the_map_is_in_every_forward_of_the_calibrated_checkpoint_and_in_the_onnx_graph(calibrated_run,
                                                                                       tiny_dataset):
    from valgusml.data import open_dataset
    from valgusml.evaluation.scorers import CheckpointModel, ExportedModel
    from valgusml.preprocess import prepare_many
    from valgusml.runs.checkpoint import load_for_export

    raw_ckpt, calibrated_ckpt, predictor_dir, _ = calibrated_run
    sequences = [open_dataset(tiny_dataset)[i] for i in range(6)]
    raw, preprocess, _ = load_for_export(raw_ckpt)
    calibrated, _, info = load_for_export(calibrated_ckpt)
    model_input = prepare_many(sequences, preprocess)
    arrays = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
              for a in (model_input.joints, model_input.measures, model_input.mask)]
    with torch.inference_mode():
        raw_logit, calibrated_logit = raw(*arrays)["valgus_logit"], calibrated(*arrays)["valgus_logit"]
    fitted = info["presence_calibration"]
    torch.testing.assert_close(calibrated_logit, raw_logit * fitted["scale"] + fitted["shift"], atol=1e-5, rtol=1e-5)
    # The exported predictor answers what the calibrated checkpoint answers.
    from_torch = CheckpointModel(calibrated_ckpt).predict(sequences).valgus_probability
    from_onnx = ExportedModel(predictor_dir).predict(sequences).valgus_probability
    np.testing.assert_allclose(from_onnx, from_torch, atol=1e-5)
    assert not np.allclose(CheckpointModel(raw_ckpt).predict(sequences).valgus_probability, from_torch, atol=1e-3)


def test_side_views_are_admitted_towards_the_undecided_answer_never_over_a_lower_threshold():
    from valgusml.features.view import admission_neutral, undecided_probability

    assert undecided_probability(None) == 0.5
    undecided = undecided_probability({"scale": 1.5, "shift": -1.5})
    assert undecided == pytest.approx(1.0 / (1.0 + np.exp(1.5)))
    assert admission_neutral(None, undecided) == undecided
    assert admission_neutral(0.4, undecided) == undecided  # a threshold above it: pulled to the undecided answer
    assert admission_neutral(0.1, undecided) == pytest.approx(0.1 - 1e-4)  # below it: just under the threshold


def test_the_training_ece_is_the_reports():
    rng = np.random.default_rng(1)
    prob, truth = rng.random(500), rng.random(500) < 0.3
    from valgusml.training.metrics import split_metrics

    metrics = split_metrics(torch.as_tensor(prob.reshape(-1, 2)), torch.full((250, 2, 5), 0.2), torch.zeros(250, 2),
                            torch.as_tensor(truth.reshape(-1, 2)).long(), torch.zeros(250, 2, dtype=torch.long),
                            torch.full((250, 2), float("nan")), threshold=0.5)
    assert metrics["valgus_ece"] == pytest.approx(expected_calibration_error(truth, prob), abs=1e-6)


@pytest.mark.filterwarnings("ignore:The dirpath has changed")
def test_a_fit_continued_from_the_calibrated_checkpoint_trains_the_heads_own_logit(calibrated_run, tmp_path,
                                                                                   tiny_dataset, shared_cache):
    """`ckpt_path=<best>-calibrated.ckpt` with more epochs: the map fitted to the old weights is dropped when
    training starts, so the loss and every new checkpoint are the head's own (a new map is fitted at the end)."""
    import shutil

    _, calibrated_ckpt, _, _ = calibrated_run
    ckpt_dir = tmp_path / "checkpoints"  # a copy: the continued fit writes beside the checkpoint it starts from
    ckpt_dir.mkdir()
    start = Path(shutil.copy2(calibrated_ckpt, ckpt_dir))
    shutil.copy2(calibrated_ckpt.with_name("splits.json"), ckpt_dir)
    seen: list[object] = []
    from valgusml.training.module import ValgusLitModule

    original = ValgusLitModule.training_step

    def training_step(self, *args, **kwargs):
        seen.append(self.bare_net.presence_calibration)
        return original(self, *args, **kwargs)

    overrides = base_overrides(tmp_path, tiny_dataset, shared_cache) + TINY_MODEL
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ValgusLitModule, "training_step", training_step)
        run_training(overrides + ["logger=none", f"ckpt_path={start}", "trainer.max_epochs=2",
                                  "calibrate_presence=false", "test=false"])
    assert seen and all(calibration is None for calibration in seen)
    last = torch.load(ckpt_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1 and last["valgusml"]["presence_calibration"] is None


def test_the_log_names_the_map_the_calibrated_checkpoint_answers(tmp_path, monkeypatch, caplog):
    """Fitted on top of a map the chosen checkpoint already had, the log gives the two composed."""
    from valgusml.training import train

    class Net:
        presence_calibration = {"scale": 2.0, "shift": 1.0}

    class Module:
        bare_net, val_windows, per_recording = Net(), {}, None
        val_metrics, decision_threshold, presence_calibration = {"decision_threshold": 0.5}, 0.4, None

        def calibrate_presence(self, calibration):
            self.presence_calibration = calibration

    class Trainer:
        loggers: list = []

        def validate(self, *args, **kwargs):
            pass

        def save_checkpoint(self, path):
            Path(path).write_text("")

    fitted = {"scale": 0.5, "shift": -1.0, "recordings": 30, "val_ece_before": 0.2, "val_ece_after": 0.05}
    monkeypatch.setattr(calibration, "fit_presence_calibration", lambda *args, **kwargs: dict(fitted))
    module = Module()
    with caplog.at_level(logging.INFO, logger="valgusml.train"):
        out = train._calibrate_presence(Trainer(), module, None, tmp_path / "best-epoch003.ckpt")
    assert out.name == "best-epoch003-calibrated.ckpt"
    assert module.presence_calibration["scale"] == 1.0 and module.presence_calibration["shift"] == -0.5
    assert "answers sigmoid(1.000 * logit -0.500), fitted on 30 validation recordings" in caplog.text


@pytest.mark.parametrize("validated", [False, True])
def test_a_blend_validated_just_before_is_not_validated_again(validated, tmp_path, monkeypatch):
    """After `init_blend` the module holds the blended weights and their validation windows: the fit reads them,
    and only the calibrated answers are validated. Otherwise the chosen checkpoint is loaded and validated first."""
    from valgusml.training import train

    class Module:
        bare_net = type("Net", (), {"presence_calibration": None})()
        val_windows, per_recording, val_metrics, decision_threshold, presence_calibration = {}, None, {}, 0.4, None

        def calibrate_presence(self, calibration):
            self.presence_calibration = calibration

    class Trainer:
        loggers: list = []
        calls: list = []

        def validate(self, *args, **kwargs):
            self.calls.append(kwargs.get("ckpt_path"))

        def save_checkpoint(self, path):
            Path(path).write_text("")

    fitted = {"scale": 0.5, "shift": -1.0, "recordings": 30, "val_ece_before": 0.2, "val_ece_after": 0.05}
    monkeypatch.setattr(calibration, "fit_presence_calibration", lambda *args, **kwargs: dict(fitted))
    trainer, best = Trainer(), tmp_path / "best-epoch003-blend0.5.ckpt"
    train._calibrate_presence(trainer, Module(), None, best, validated)
    assert trainer.calls == ([None] if validated else [str(best), None])
