"""Sweeps (`valgusml train -m ...`): a failing job, a resumed sweep, the optimised metric, and the MLflow
records that tie a sweep's runs together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from valgusml.errors import ConfigError, InputError
from valgusml.hydra_app import hydra_entry
from valgusml.training import resume
from valgusml.training import train as train_module
from valgusml.training.config import compose_config
from valgusml.training.hydra_callbacks import set_hydra_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hydra_config(monkeypatch):
    """Set Hydra's config as a job would find it; unset again after the test."""
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)

    def set_job(cfg, num=0, overrides=(), sweeper=None):
        with open_dict(cfg):
            cfg.hydra.mode = "MULTIRUN"
            cfg.hydra.job.num = num
            cfg.hydra.overrides.task = list(overrides)
            if sweeper is not None:
                cfg.hydra.sweeper = {"_target_": sweeper}
        set_hydra_config(cfg)
        return cfg

    yield set_job
    HydraConfig.instance().cfg = None


def _job_config(root: Path, sweep_dir: Path, num: int, overrides=("seed=0",)):
    cfg = compose_config(["experiment=smoke", "logger=none", f"paths.root_dir={root}", "resume=true", *overrides])
    with open_dict(cfg):
        cfg.hydra.sweep.dir = str(sweep_dir)
        cfg.hydra.runtime.output_dir = str(sweep_dir / str(num))
    return cfg


def test_a_failing_job_fails_alone_and_the_sweep_goes_on(tmp_path, capsys):
    """A valgusml error in one job used to exit the whole sweep (SystemExit), and with the joblib launcher to
    kill its worker: the other jobs never ran."""
    (tmp_path / "app.yaml").write_text(f"x: 0\nhydra:\n  sweep:\n    dir: {tmp_path / 'sweep'}\n")
    ran = []

    def task(cfg):
        ran.append(cfg.x)
        if cfg.x == 1:
            raise ConfigError("x must not be 1")
        return float(cfg.x)

    main = hydra_entry(task, str(tmp_path), "app")
    with pytest.raises(SystemExit) as stopped:
        main(["-m", "x=1,2"])
    assert stopped.value.code == 1
    assert ran == [1, 2]
    err = capsys.readouterr().err
    assert f"job #0 ({tmp_path / 'sweep' / '0'}): ConfigError: x must not be 1" in err
    assert "Traceback" not in err


def test_resume_true_in_a_sweep_job_continues_its_own_run(tmp_path, hydra_config):
    """Every job of a sweep run with resume=true continued the task's latest run, one run for them all."""
    sweep = tmp_path / "logs" / "smoke" / "multiruns" / "S"
    own = sweep / "1" / "checkpoints"
    own.mkdir(parents=True)
    (own / "last.ckpt").write_bytes(b"")
    other = tmp_path / "logs" / "smoke" / "runs" / "later" / "checkpoints"  # started after: the "latest run"
    other.mkdir(parents=True)
    (other / "last.ckpt").write_bytes(b"")
    hydra_config(_job_config(tmp_path, sweep, 1))
    assert resume.find_resume_checkpoint(_job_config(tmp_path, sweep, 1)) == (own / "last.ckpt").resolve()
    hydra_config(_job_config(tmp_path, sweep, 2))  # never reached a checkpoint: starts afresh in its folder
    assert resume.find_resume_checkpoint(_job_config(tmp_path, sweep, 2)) is None


def test_a_finished_sweep_job_is_not_trained_again(tmp_path, hydra_config):
    sweep = tmp_path / "logs" / "smoke" / "multiruns" / "S"
    (sweep / "0" / "checkpoints").mkdir(parents=True)
    metrics = {"val/mechanism_macro_f1": 0.5}
    (sweep / "0" / "checkpoints" / "metrics.json").write_text(json.dumps(metrics))
    cfg = hydra_config(_job_config(tmp_path, sweep, 0))
    assert train_module.train(cfg) == metrics  # returns at once: no data is generated
    assert not (tmp_path / "data").exists()


def test_resuming_a_sweep_with_other_settings_is_refused(tmp_path, hydra_config):
    from valgusml.runs import tracking

    sweep = tmp_path / "sweep"
    ckpt_dir = sweep / "0" / "checkpoints"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from mlflow.tracking import MlflowClient

    experiment = tracking.ensure_experiment(uri, "valgusml", str(tmp_path / "mlartifacts"))
    run = MlflowClient(uri).create_run(experiment, tags={"hydra_overrides": "experiment=smoke seed=2"})
    MlflowClient(uri).set_terminated(run.info.run_id, "FINISHED")
    tracking.save_run_file(ckpt_dir, run.info.run_id, uri, experiment)
    (ckpt_dir / "metrics.json").write_text("{}")
    cfg = hydra_config(_job_config(tmp_path, sweep, 0, ("seed=3",)), overrides=["experiment=smoke", "seed=3",
                                                                                 "resume=true"])
    with pytest.raises(InputError, match="job #0 .* ran seed=2, not seed=3"):
        resume.finished_sweep_job(cfg)


def test_a_missing_optimized_metric_fails_an_optuna_trial(tmp_path, hydra_config, monkeypatch):
    """Optuna failed each trial as "Return value must be float-castable", ran them all, then ended in a traceback
    ("No trials are completed yet")."""
    monkeypatch.setattr(train_module, "train", lambda cfg: {"val/mechanism_macro_f1": 0.5})
    cfg = _job_config(tmp_path, tmp_path / "sweep", 0, ("optimized_metric=val/mechanism_f1",))
    hydra_config(cfg, sweeper="hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper")
    with pytest.raises(ConfigError, match=r"optimized_metric=val/mechanism_f1 .*val/mechanism_macro_f1"):
        train_module._train_app(cfg)
    # Hydra's basic sweeper reads no value: a run without the metric is not a failure there.
    hydra_config(cfg, sweeper="hydra._internal.core_plugins.basic_sweeper.BasicSweeper")
    assert train_module._train_app(cfg) is None


@pytest.mark.slow
def test_a_sweeps_runs_are_tagged_together_with_the_optimised_value(tmp_path):
    """Runs of one sweep had nothing in common in MLflow but their task name, and `val/*` hold the last epoch's
    values, not the selected checkpoint's that the sweeper optimised."""
    from mlflow.tracking import MlflowClient

    args = ["-m", "seed=0,1", "experiment=smoke", "data.n_athletes=40", "test=false", "export=false",
            "trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2",
            "callbacks.rich_progress_bar=null", "trainer.enable_progress_bar=false", "torch_threads=1",
            f"paths.root_dir={tmp_path}"]
    env = {k: v for k, v in os.environ.items() if k != "VALGUSML_ROOT"}
    proc = subprocess.run([sys.executable, "-m", "valgusml.train", *args], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    (sweep,) = (tmp_path / "logs" / "smoke" / "multiruns").iterdir()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("valgusml").experiment_id],
                              filter_string=f"tags.sweep = '{sweep}'")
    assert sorted(r.data.tags["sweep_job"] for r in runs) == ["0", "1"]
    for run in runs:
        metrics = json.loads((sweep / run.data.tags["sweep_job"] / "checkpoints" / "metrics.json").read_text())
        assert run.data.metrics["best/val/mechanism_macro_f1"] == pytest.approx(metrics["val/mechanism_macro_f1"])


def test_ctrl_c_in_a_sweep_says_how_to_go_on(tmp_path, hydra_config, monkeypatch, capsys):
    """The training's Ctrl-C line said "the same command and resume=true", which in a sweep made every job continue
    the task's latest run: a sweep is resumed in its own folder."""
    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted)
    sweep = tmp_path / "sweep"
    cfg = hydra_config(_job_config(tmp_path, sweep, 1), num=1)
    with pytest.raises(KeyboardInterrupt):
        train_module._train_app(cfg)
    assert f"stopped in job #1; go on with the same command and resume=true hydra.sweep.dir={sweep}" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("n_jobs,cores,expected", [(-1, 2, 1), (2, 8, 4), (-2, 8, 1), (1, 8, 8), (16, 4, 1)])
def test_a_joblib_sweep_shares_the_cores_among_its_jobs(n_jobs, cores, expected, monkeypatch):
    """Unset, torch_threads was torch's default in every job of a joblib sweep: a thread per core each, so two
    jobs on two cores ran four spinning threads (make run's own recipe sets 1 for this reason)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from valgusml.training import train as train_module
    from valgusml.training.config import CONFIG_DIR

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"],
                      return_hydra_config=True)
    def as_job(mode):
        with open_dict(cfg):
            OmegaConf.set_readonly(cfg.hydra, False)
            cfg.hydra.mode, cfg.hydra.job.num = mode, 0
        HydraConfig.instance().set_config(cfg)

    try:
        as_job(RunMode.MULTIRUN)
        assert train_module.job_torch_threads(cfg) == expected
        cfg.torch_threads = 3
        assert train_module.job_torch_threads(cfg) == 3  # the user's own wins
        cfg.torch_threads = None
        as_job(RunMode.RUN)
        assert train_module.job_torch_threads(cfg) is None  # a single run keeps torch's default
    finally:
        HydraConfig.instance().cfg = None
