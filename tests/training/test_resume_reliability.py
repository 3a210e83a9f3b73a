"""`resume=true` continues only the run it names, and dead runs do not stay RUNNING in MLflow (issue 13)."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.training.conftest import base_overrides, run_training
from valgusml.errors import ConfigError, InputError


@pytest.fixture
def overrides(tmp_path, tiny_dataset, shared_cache):
    return base_overrides(tmp_path, tiny_dataset, shared_cache)


def _client(root):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{root}/mlflow.db")


def test_resume_after_a_kill_before_the_first_checkpoint_refuses(overrides, tmp_path):
    run_training(overrides + ["trainer.max_epochs=1"])
    (finished_dir,) = {p.parent for p in tmp_path.glob("logs/smoke/runs/*/checkpoints/last.ckpt")}
    finished = json.loads((finished_dir / "mlflow_run.json").read_text())
    client = _client(tmp_path)
    history = [m.step for m in client.get_metric_history(finished["run_id"], "val/loss")]

    # A second run killed (SIGKILL) right after its MLflow run opened: run file and split, no checkpoint.
    killed_dir = tmp_path / "logs" / "smoke" / "runs" / "9999-killed" / "checkpoints"
    killed_dir.mkdir(parents=True)
    killed = client.create_run(finished["experiment_id"]).info.run_id
    time.sleep(0.05)  # started after the finished run
    (killed_dir / "splits.json").write_text((finished_dir / "splits.json").read_text())
    (killed_dir / "mlflow_run.json").write_text(json.dumps({
        **finished, "run_id": killed, "pid": 2**22 + 12345, "host": os.uname().nodename}))

    with pytest.raises(InputError, match=r"stopped before its first checkpoint.*now marked KILLED"):
        run_training(overrides + ["resume=true", "trainer.max_epochs=2"])
    assert client.get_run(killed).info.status == "KILLED"
    assert client.get_run(finished["run_id"]).info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(finished["run_id"], "val/loss")] == history  # untouched


def test_a_run_that_fails_is_marked_failed(overrides, tmp_path, monkeypatch):
    import valgusml.training.train as train_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(train_module, "build_module", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run_training(overrides + ["trainer.max_epochs=1"])
    (run_file,) = tmp_path.glob("logs/smoke/runs/*/checkpoints/mlflow_run.json")
    run_id = json.loads(run_file.read_text())["run_id"]
    assert _client(tmp_path).get_run(run_id).info.status == "FAILED"


def test_a_run_stopped_by_ctrl_c_is_marked_killed(overrides, tmp_path, monkeypatch):
    """Lightning turns Ctrl-C into `sys.exit(1)` after its loggers close the run FAILED; it was a kill."""
    import signal

    import valgusml.training.train as train_module

    build = train_module.build_module

    def interrupted_module(*args, **kwargs):
        module = build(*args, **kwargs)

        def ctrl_c(*_args, **_kwargs):
            raise KeyboardInterrupt

        module.training_step = ctrl_c
        return module

    monkeypatch.setattr(train_module, "build_module", interrupted_module)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            run_training(overrides + ["trainer.max_epochs=1"])
    finally:
        signal.signal(signal.SIGINT, sigint)  # Lightning ignores further Ctrl-C while it shuts down
    (run_file,) = tmp_path.glob("logs/smoke/runs/*/checkpoints/mlflow_run.json")
    run_id = json.loads(run_file.read_text())["run_id"]
    assert _client(tmp_path).get_run(run_id).info.status == "KILLED"


@pytest.mark.parametrize("value", ["-1", "0", "1.5"])
def test_max_epochs_below_one_is_a_config_error(overrides, value):
    with pytest.raises(ConfigError, match=rf"trainer.max_epochs must be an integer >= 1, got {value}"):
        run_training(overrides + [f"trainer.max_epochs={value}"])


def test_last_ckpt_is_the_latest_state_even_when_the_monitored_metric_did_not_improve(overrides, tmp_path):
    """`resume=true` continues from last.ckpt: it must be the latest validated state, not the best one, or a run
    interrupted after a check that did not improve would lose the epochs since its best (Lightning's
    `save_last` writes last.ckpt only when the best changes)."""
    import torch

    # Ranked by the lowest epoch, the second epoch can never be the best: the best stays at epoch 0.
    run_training(overrides + ["trainer.max_epochs=2", "monitor.metric=epoch", "monitor.mode=min", "logger=none"])
    (ckpt_dir,) = {p.parent for p in tmp_path.glob("logs/smoke/runs/*/checkpoints/last.ckpt")}
    assert sorted(p.name for p in ckpt_dir.glob("*.ckpt")) == ["best-epoch000.ckpt", "last.ckpt"]
    last = torch.load(ckpt_dir / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1 and last["global_step"] == 2 * 3  # limit_train_batches=3 per epoch


def test_the_train_command_says_in_one_line_that_ctrl_c_kept_its_last_checkpoint(monkeypatch, capsys):
    """Lightning ends a Ctrl-C'd fit with sys.exit(1) from its KeyboardInterrupt handler: the command says what was
    kept and exits 130 as the other commands do; any other exit goes on as it was."""
    import sys

    import valgusml.training.train as train_module
    from valgusml.cli import EXIT_INTERRUPTED
    from valgusml.cli import main as cli_main

    def lightning_ctrl_c(_argv):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.exit(1)

    monkeypatch.setattr(train_module, "main", lightning_ctrl_c)
    assert cli_main(["train", "experiment=smoke"]) == EXIT_INTERRUPTED
    assert "valgusml train: interrupted (Ctrl-C); its last.ckpt is kept" in capsys.readouterr().err

    monkeypatch.setattr(train_module, "main", lambda _argv: sys.exit(3))
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "experiment=smoke"])
    assert exit_info.value.code == 3
