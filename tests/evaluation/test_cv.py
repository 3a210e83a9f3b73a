"""Cross-validation over athletes: the fold overrides compose with the training config, and a parent MLflow run
summarises fold runs as mean ± sd and adopts them."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.errors import ConfigError, InputError
from valgusml.evaluation.cv import aggregate_cv, fold_overrides
from valgusml.runs.tracking import ensure_experiment


def test_fold_overrides_compose_with_the_training_app():
    from valgusml.training.train import compose_config

    overrides = fold_overrides(3, "g1", ["experiment=cv_fold"])
    assert overrides[0] == "-m" and "data.split.fold=0,1,2" in overrides
    # one fold of the sweep, as Hydra would compose it
    single = [o if not o.startswith("data.split.fold=") else "data.split.fold=2" for o in overrides[1:]]
    cfg = compose_config(single)
    assert cfg.data.split.method == "group_kfold"
    assert cfg.data.split.n_folds == 3 and cfg.data.split.fold == 2
    assert cfg.tags.cv_group == "g1" and cfg.tags.recipe == "cv_fold"
    with pytest.raises(ConfigError):
        fold_overrides(1, "g")


def test_parent_run_holds_mean_and_sd_and_adopts_folds(mlflow_uri):
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri
    client = MlflowClient(uri)
    experiment = ensure_experiment(uri, "cv-test")
    aurocs = [0.7, 0.8, 0.9]
    fold_ids = []
    for fold, auroc in enumerate(aurocs):
        run = client.create_run(experiment, tags={"cv_group": "g1", "task_name": "cv"})
        client.log_param(run.info.run_id, "data.split.fold", fold)
        client.log_metric(run.info.run_id, "test/valgus_auroc", auroc)
        client.log_metric(run.info.run_id, "test/mechanism_macro_f1", 0.5)
        client.log_metric(run.info.run_id, "val/valgus_auroc", 0.99)  # not a test metric: not summarised
        client.set_terminated(run.info.run_id)
        fold_ids.append(run.info.run_id)
    client.create_run(experiment, tags={"cv_group": "other"})
    parent, table = aggregate_cv("g1", uri, "cv-test")
    assert list(table["fold"]) == ["0", "1", "2", "mean", "sd"]
    assert table.iloc[3]["valgus_auroc"] == pytest.approx(0.8)
    assert table.iloc[4]["valgus_auroc"] == pytest.approx(np.std(aurocs, ddof=1))
    assert "val/valgus_auroc" not in table.columns
    metrics = client.get_run(parent).data.metrics
    assert metrics["cv/valgus_auroc_mean"] == pytest.approx(0.8)
    assert metrics["cv/mechanism_macro_f1_sd"] == pytest.approx(0.0)
    for run_id in fold_ids:
        assert client.get_run(run_id).data.tags["mlflow.parentRunId"] == parent
    assert [a.path for a in client.list_artifacts(parent)] == ["cv.csv"]
    with pytest.raises(InputError):
        aggregate_cv("missing", uri, "cv-test")


def test_a_fold_run_twice_is_refused(mlflow_uri):
    """Folds 0 and 1 again under the same group (a sweep restarted with --group): the mean would count them twice."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    experiment = ensure_experiment(mlflow_uri, "cv-twice")
    for fold, auroc in ((0, 0.7), (1, 0.8), (2, 0.9), (0, 0.7), (1, 0.8)):
        run = client.create_run(experiment, tags={"cv_group": "g2", "task_name": "cv"})
        client.log_param(run.info.run_id, "data.split.fold", fold)
        client.log_metric(run.info.run_id, "test/valgus_auroc", auroc)
        client.set_terminated(run.info.run_id)
    with pytest.raises(InputError, match="several runs of one fold"):
        aggregate_cv("g2", mlflow_uri, "cv-twice")


def test_a_failed_or_missing_fold_is_refused(mlflow_uri):
    """A fold that failed has no test metrics: the mean would skip it while it still counted among the folds; a
    fold never run left its athletes untested."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    experiment = ensure_experiment(mlflow_uri, "cv-incomplete")

    def fold_run(group, fold, status="FINISHED", auroc=0.8):
        run = client.create_run(experiment, tags={"cv_group": group, "task_name": "cv"})
        client.log_param(run.info.run_id, "data.split.fold", fold)
        client.log_param(run.info.run_id, "data.split.n_folds", 3)
        if auroc is not None:
            client.log_metric(run.info.run_id, "test/valgus_auroc", auroc)
        client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    fold_run("failed", 0), fold_run("failed", 1)
    failed = fold_run("failed", 2, status="FAILED", auroc=None)
    with pytest.raises(InputError, match=rf"fold 2 \(run {failed}, FAILED\) has no test metrics"):
        aggregate_cv("failed", mlflow_uri, "cv-incomplete")
    fold_run("missing", 0), fold_run("missing", 2)
    with pytest.raises(InputError, match=r"folds \[1\] of 3 have no run"):
        aggregate_cv("missing", mlflow_uri, "cv-incomplete")
    fold_run("missing", 1)
    _, table = aggregate_cv("missing", mlflow_uri, "cv-incomplete")
    assert list(table["fold"]) == ["0", "1", "2", "mean", "sd"]


def test_the_summary_reads_the_store_the_folds_log_to(tmp_path, monkeypatch):
    """The summary looked in <cwd>/mlflow.db whatever paths.root_dir the folds were given, and failed ("no runs
    tagged cv_group") after every fold had trained; it now resolves the store as training does."""
    from valgusml.evaluation.cv import fold_tracking_uri
    from valgusml.training.train import compose_config

    monkeypatch.delenv("VALGUSML_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    elsewhere = tmp_path / "elsewhere"
    assert fold_tracking_uri(["experiment=cv_fold"], cwd=tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    for overrides in (["experiment=cv_fold", f"paths.root_dir={elsewhere}"],
                      ["experiment=cv_fold", "logger.mlflow.tracking_uri=sqlite:////tmp/x.db"]):
        assert fold_tracking_uri(overrides, cwd=tmp_path) == compose_config(overrides).logger.mlflow.tracking_uri
    assert fold_tracking_uri([f"paths.root_dir={elsewhere}"]) == f"sqlite:///{elsewhere}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert fold_tracking_uri(["logger=mlflow_server"]) == "http://mlflow.example:5000"


def test_failed_folds_are_one_line_not_a_traceback(monkeypatch, capsys):
    import subprocess

    from valgusml.evaluation import cv

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    assert cv.main(["--folds", "2", "--", "experiment=cv_fold"]) == 1
    assert "InputError: the folds' training exited with status 1" in capsys.readouterr().err
