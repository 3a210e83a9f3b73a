"""End-to-end training runs on the tiny session dataset: each model, resume, determinism, MLflow contents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.conftest import base_overrides, run_training
from valgusml.errors import ConfigError, InputError

MODELS = ("tcn", "gru", "transformer", "stgcn")


@pytest.fixture
def overrides(tmp_path, tiny_dataset, shared_cache):
    return base_overrides(tmp_path, tiny_dataset, shared_cache)


@pytest.mark.parametrize("model", MODELS)
def test_fast_dev_run_each_model(model, overrides):
    metrics = run_training(overrides + [f"model={model}", "trainer.fast_dev_run=true", "logger=none"])
    assert 0.0 <= metrics["test/mechanism_macro_f1"] <= 1.0
    assert {"test/valgus_f1", "test/mechanism_accuracy", "test/loss"} <= set(metrics)


@pytest.mark.parametrize("by", ["VALGUSML_ROOT", "working directory"])
def test_run_writes_under_valgusml_root_or_the_working_directory(by, overrides, tmp_path, monkeypatch):
    """`train.run` without `paths.root_dir`, as `valgusml train` takes it: $VALGUSML_ROOT, else the working
    directory (the config's fallback needs Hydra's runtime, which `run` sets as Hydra would)."""
    from valgusml.training.train import run

    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.chdir(root if by == "working directory" else tmp_path)
    if by == "VALGUSML_ROOT":
        monkeypatch.setenv("VALGUSML_ROOT", str(root))
    else:
        monkeypatch.delenv("VALGUSML_ROOT", raising=False)
    _, cfg = run([o for o in overrides if not o.startswith("paths.root_dir")]
                 + ["trainer.fast_dev_run=true", "logger=none", "test=false"])
    assert Path(cfg.paths.output_dir).parent == root / "logs" / "smoke" / "runs"
    assert (Path(cfg.paths.output_dir) / "config.yaml").is_file()


def test_lifted_model_trains_its_lifter_on_the_generators_3d_frames(overrides):
    metrics = run_training(overrides + ["model=tcn_lifted", "trainer.fast_dev_run=true", "logger=none"])
    # the lifter is scored where the label reads the 3D frontal plane (degrees of dynamic FPPA)
    assert 0.0 < metrics["test/frame_fppa_mae_deg"] < 30.0
    assert 0.0 <= metrics["test/valgus_auroc"] <= 1.0


def _mlflow(root: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{root}/mlflow.db")


def test_resume_continues_the_same_mlflow_run(overrides, tmp_path):
    run_training(overrides + ["trainer.max_epochs=1"])
    (ckpt_dir,) = {p.parent for p in tmp_path.glob("logs/smoke/runs/*/checkpoints/last.ckpt")}
    run_id = json.loads((ckpt_dir / "mlflow_run.json").read_text())["run_id"]
    client = _mlflow(tmp_path)
    (first_step,) = [m.step for m in client.get_metric_history(run_id, "val/loss")]

    second = run_training(overrides + ["resume=true", "trainer.max_epochs=2"])
    assert json.loads((ckpt_dir / "mlflow_run.json").read_text())["run_id"] == run_id
    experiment = client.get_experiment_by_name("valgusml")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]  # continued, not a second run
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from"].endswith("last.ckpt")
    for key in run.data.metrics:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), f"{key} logged twice at a step: {steps}"
    val_steps = [m.step for m in client.get_metric_history(run_id, "val/loss")]
    assert len(val_steps) == 2 and val_steps[0] == first_step < val_steps[1]
    assert second["test/mechanism_macro_f1"] == run.data.metrics["test/mechanism_macro_f1"]

    # What a run holds: flattened config params, dataset fingerprint, split, checkpoints, config artifact.
    params = run.data.params
    assert params["module.optimizer.lr"] == "0.003" and params["model._target_"] == "valgusml.models.ValgusNet"
    assert len(run.data.tags["dataset_fingerprint"]) == 64 and run.data.tags["split_method"] == "fractions"
    assert {"train/loss", "val/valgus_auroc", "val/mechanism_macro_f1", "test/valgus_auroc_left"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "splits.json", "checkpoints", "config_resume1.yaml"} <= artifacts
    ckpts = {a.path for a in client.list_artifacts(run_id, "checkpoints")}
    assert "checkpoints/last.ckpt" in ckpts and any(p.startswith("checkpoints/best-") for p in ckpts)
    split = json.loads((ckpt_dir / "splits.json").read_text())
    assert set(split) >= {"train", "val", "test", "dataset_fingerprint", "method"}
    assert split["dataset_fingerprint"] == run.data.tags["dataset_fingerprint"]


def test_checkpoint_holds_what_export_needs(overrides, tmp_path):
    from valgusml.runs.checkpoint import load_for_export

    metrics = run_training(overrides + ["trainer.max_epochs=1", "logger=none"])
    (best,) = tmp_path.glob("logs/smoke/runs/*/checkpoints/best-*.ckpt")
    net, preprocess, info = load_for_export(best)
    assert not net.training and next(net.parameters()).dtype.is_floating_point
    assert preprocess.window == 96 and preprocess.fps == 30.0
    assert set(info) >= {"decision_threshold", "dataset_fingerprint", "mlflow_run_id", "split", "val_metrics", "test_metrics"}
    assert info["test_metrics"]["mechanism_macro_f1"] == pytest.approx(metrics["test/mechanism_macro_f1"])
    assert 0.0 < info["decision_threshold"] < 1.0 and info["val_metrics"]["decision_threshold"] == info["decision_threshold"]
    # `valgusml export CKPT` finds the validation athletes' recordings from the checkpoint alone.
    from valgusml.export.cli import validation_sequences

    dataset_dir = next(o.split("=", 1)[1] for o in overrides if o.startswith("data.dataset_dir="))
    assert Path(info["dataset_dir"]).resolve() == Path(dataset_dir).resolve()
    validation = validation_sequences(info, None)
    assert validation and {seq.athlete_id for seq in validation} == set(info["split"]["val"])


def test_same_seed_deterministic_gives_identical_metrics(overrides):
    args = overrides + ["trainer.max_epochs=1", "trainer.deterministic=true", "logger=none", "seed=7"]
    assert run_training(args) == run_training(args)


def test_bad_configs_fail_before_training(overrides, tmp_path):
    with pytest.raises(ConfigError, match="model/resnet"):
        run_training(overrides + ["model=resnet"])
    with pytest.raises(ConfigError, match="no_such_key"):
        run_training(overrides + ["trainer.no_such_key=1"])
    with pytest.raises(InputError, match="does not exist"):
        run_training(overrides + [f"data.dataset_dir={tmp_path / 'missing'}"])
    with pytest.raises(ConfigError, match="data.dataset_dir=PATH"):
        run_training([o for o in overrides if not o.startswith("data.dataset_dir")])
    with pytest.raises(InputError, match="no last.ckpt"):
        run_training(overrides + ["resume=true"])


def test_the_data_modules_own_checks_are_its_typed_errors(overrides):
    """Raised inside Hydra's instantiate they came wrapped in its InstantiationException (a traceback)."""
    with pytest.raises(ConfigError, match="data.extra_train_repeat must be an integer >= 1, got 0"):
        run_training(overrides + ["logger=none", "data.extra_train_repeat=0"])


def test_a_run_that_diverges_says_so(overrides):
    """A divergence shows after the first epoch as NaN probabilities (was an error about `valgus_probability`
    from the scoring code, or scikit-learn's "Input contains NaN")."""
    from valgusml.errors import ValgusMLError

    with pytest.raises(ValgusMLError, match="training diverged.*module.optimizer.lr"):
        run_training(overrides + ["trainer.max_epochs=1", "logger=none", "test=false", "module.optimizer.lr=1e6"])


def test_a_monitor_of_an_unlogged_metric_is_a_config_error(overrides):
    """Lightning's checkpoint callback finds it at its first save (was its MisconfigurationException traceback)."""
    with pytest.raises(ConfigError, match="monitor.metric=val/nonsense.*val/mechanism_macro_f1"):
        run_training(overrides + ["trainer.max_epochs=1", "logger=none", "test=false", "monitor.metric=val/nonsense"])


def test_the_runs_predictor_takes_its_threshold_from_the_validation_athletes_recordings(overrides, tmp_path):
    """A training that exports hands its validation recordings to the exporter, which chooses the threshold
    on them as the predictor answers; the checkpoint's own is kept beside it."""
    from valgusml.data import open_dataset
    from valgusml.export.folder import validation_threshold
    from valgusml.labels import DEFICITS
    from valgusml.predictor import Predictor

    export_dir = tmp_path / "predictor"
    run_training([o for o in overrides if o != "export=false"]
                 + ["trainer.max_epochs=1", "logger=none", f"export_dir={export_dir}"])
    (ckpt_dir,) = {p.parent for p in tmp_path.glob("logs/smoke/runs/*/checkpoints/last.ckpt")}
    split = json.loads((ckpt_dir / "splits.json").read_text())
    dataset = open_dataset(next(o.split("=", 1)[1] for o in overrides if o.startswith("data.dataset_dir=")))
    validation = [dataset[int(i)] for i in dataset.indices_of(split["val"])]
    meta = json.loads((export_dir / "model.json").read_text())
    source = meta["metrics"]["decision_threshold_from"]
    assert source["rule"] == "f1 on validation athletes" and source["sequences"] == len(validation)
    assert meta["decision_threshold"] == pytest.approx(validation_threshold(Predictor.load(export_dir), validation))
    assert source["checkpoint_threshold"] == pytest.approx(meta["metrics"]["val"]["decision_threshold"])
    # Training combines its validation windows by the predictor's own rule, so it chose the same threshold ...
    assert source["checkpoint_threshold"] == pytest.approx(meta["decision_threshold"], abs=1e-4)
    # ... and the same mechanism offsets, on the same athletes' resamples.
    offsets = meta["metrics"]["mechanism_offsets_from"]
    assert offsets["sequences"] == len(validation) and set(meta["mechanism_offsets"]) == set(DEFICITS)
    assert offsets["checkpoint_offsets"] == pytest.approx(meta["mechanism_offsets"], abs=0.02)


def test_the_training_loops_test_metrics_are_the_exported_predictors(overrides, tmp_path):
    """MLflow's test/* metrics read as the folder answers (worst scored segment, side views admitted, a free leg
    0): the exported predictor scores the same test recordings alike at the checkpoint's threshold."""
    from valgusml.data import open_dataset
    from valgusml.evaluation.metrics import compute_metrics
    from valgusml.evaluation.transfer import PredictorScorer
    from valgusml.predictor import Predictor
    from valgusml.scoring.arrays import LabelArrays

    export_dir = tmp_path / "predictor"
    metrics = run_training([o for o in overrides if o != "export=false"]
                           + ["trainer.max_epochs=1", "logger=none", f"export_dir={export_dir}"])
    (ckpt_dir,) = {p.parent for p in tmp_path.glob("logs/smoke/runs/*/checkpoints/last.ckpt")}
    split = json.loads((ckpt_dir / "splits.json").read_text())
    dataset = open_dataset(next(o.split("=", 1)[1] for o in overrides if o.startswith("data.dataset_dir=")))
    test = [dataset[int(i)] for i in dataset.indices_of(split["test"])]
    folder = Predictor.load(export_dir)
    answered = compute_metrics(LabelArrays.from_sequences(test), PredictorScorer(folder).predict(test),
                               metrics["test/decision_threshold"])
    # (test/valgus_auroc is the mean of the limbs' AUROCs; test/valgus_auroc_pooled pools them as the evaluation)
    for ours, theirs in (("valgus_auroc_left", "valgus_left_auroc"), ("valgus_auroc_right", "valgus_right_auroc"),
                         ("valgus_auroc_pooled", "valgus_auroc"),
                         ("valgus_f1", "valgus_f1"), ("mechanism_macro_f1", "mechanism_macro_f1"),
                         ("severity_mae_deg", "severity_mae_deg")):
        assert metrics[f"test/{ours}"] == pytest.approx(answered[theirs], abs=2e-3), ours
