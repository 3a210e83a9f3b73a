"""Scale-out through existing engines: 2-process DDP on CPU, an Optuna sweep on the joblib launcher sharing
one SQLite MLflow store, and a real `mlflow server` reached through the `logger=mlflow_server` config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.training.conftest import base_overrides, run_training

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _app(args: list[str], cwd: Path, timeout: int = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m valgusml.train ARGS` in a fresh process, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "valgusml.train", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _client(root: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{root}/mlflow.db")


def test_ddp_cpu_two_processes(tmp_path, tiny_dataset, shared_cache):
    args = base_overrides(tmp_path, tiny_dataset, shared_cache) + ["trainer=ddp_cpu", "trainer.max_epochs=1", "logger=csv"]
    proc = _app(args, cwd=tmp_path)
    assert "MEMBER: 2/2" in proc.stderr + proc.stdout  # Lightning's line for the second process joining
    (ckpt_dir,) = {p.parent for p in tmp_path.glob("logs/smoke/runs/*/checkpoints/last.ckpt")}
    import torch

    checkpoint = torch.load(ckpt_dir / "last.ckpt", map_location="cpu", weights_only=True)
    # One epoch of 3 synchronised steps (limit_train_batches=3 per rank, each on its own share of batches).
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == 3
    assert checkpoint["valgusml"]["val_metrics"]["mechanism_macro_f1"] >= 0.0
    assert (ckpt_dir / "metrics.json").is_file() and (ckpt_dir / "splits.json").is_file()


def test_optuna_sweep_on_joblib_shares_one_mlflow_experiment(tmp_path, tiny_dataset, shared_cache):
    args = ["-m", *base_overrides(tmp_path, tiny_dataset, shared_cache)] + [
        "hparams_search=optuna",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        "trainer.max_epochs=1",
    ]
    proc = _app(args, cwd=tmp_path)
    assert "database is locked" not in proc.stderr
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("valgusml")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.params["module.optimizer.lr"] for r in runs}) == 2  # two different trials
    assert all("val/mechanism_macro_f1" in r.data.metrics for r in runs)
    (best,) = tmp_path.glob("logs/smoke/multiruns/*/optimization_results.yaml")
    assert "best_value" in best.read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_server_logger(tmp_path, tiny_dataset, shared_cache, monkeypatch, stop_process):
    port = _free_port()
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [
            str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{server_dir}/server.db",
            "--artifacts-destination", str(server_dir / "artifacts"),
        ],
        cwd=server_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail(f"mlflow server did not start on {uri}")
                time.sleep(0.5)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        overrides = base_overrides(tmp_path, tiny_dataset, shared_cache)
        metrics = run_training(overrides + ["logger=mlflow_server", "trainer.max_epochs=1", "experiment_name=served"])
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        (run,) = client.search_runs([client.get_experiment_by_name("served").experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.metrics["test/mechanism_macro_f1"] == pytest.approx(metrics["test/mechanism_macro_f1"])
        assert {"config.yaml", "splits.json", "checkpoints"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
        assert list((server_dir / "artifacts").rglob("last.ckpt"))  # stored by the server, not locally
        assert not (tmp_path / "mlflow.db").exists()
    finally:
        stop_process(server)
