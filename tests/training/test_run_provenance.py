"""What a training run's MLflow record holds to be made again elsewhere: the command (overrides), the code (commit,
dirty flag, the patch of a dirty tree, or why there is none), the environment, and the inputs by content."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.training.conftest import base_overrides, run_training
from valgusml.paths import REPO_ROOT
from valgusml.runs import tracking


def test_a_run_records_its_command_environment_and_generator_version(tmp_path, tiny_dataset, shared_cache):
    from mlflow.tracking import MlflowClient

    overrides = base_overrides(tmp_path, tiny_dataset, shared_cache) + ["trainer.fast_dev_run=true", "seed=3"]
    run_training(overrides)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("valgusml").experiment_id])
    tags, params = run.data.tags, run.data.params

    # the command: every override, in order, so `valgusml train <them>` at the commit composes the same config
    assert tags["hydra_overrides"].split(" ") == overrides
    assert tags["train_command"] == "valgusml train " + " ".join(overrides)
    # the code: a commit and dirty flag from this checkout, or a tag saying why there is none
    assert "mlflow.source.git.commit" in tags or tags["git_commit"].startswith("unavailable")
    # the environment: the versions that decide the numbers as tags, every distribution in an artifact
    for name in ("torch", "lightning", "numpy", "onnxruntime", "mlflow"):
        assert tags[f"env.{name}"] == metadata.version(name)
    environment = Path(client.download_artifacts(run.info.run_id, "environment.txt", str(tmp_path / "dl")))
    assert f"torch=={metadata.version('torch')}" in environment.read_text().splitlines()
    # the data's generator, which its fingerprint alone does not name
    written = json.loads((tiny_dataset / "generator.json").read_text())["generator_version"]
    assert params["data.generator_version"] == str(written)


def test_init_from_and_the_teacher_are_recorded_by_content():
    from valgusml.training.config import compose_config
    from valgusml.training.train import _input_hashes

    cfg = compose_config(["experiment=default"])  # the shipped start and teacher, as make run reads them
    hashes = _input_hashes(cfg, SimpleNamespace(root="/nowhere"))
    weights = REPO_ROOT / cfg.init_from
    assert hashes["init_from_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    teacher = REPO_ROOT / cfg.data.teacher
    assert hashes["data.teacher_sha256"] == tracking.folder_sha256(teacher)
    assert "data.generator_version" not in hashes  # no generator.json there


def test_a_folder_hash_follows_its_files_not_where_it_lies(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    (a / "model.onnx").write_bytes(b"weights")
    (a / "sub" / "model.json").write_text("{}")
    shutil.copytree(a, b)
    assert tracking.folder_sha256(a) == tracking.folder_sha256(b)
    (b / "model.onnx").write_bytes(b"weights2")
    assert tracking.folder_sha256(a) != tracking.folder_sha256(b)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_dirty_tree_gives_its_patch_and_a_folder_without_git_says_so(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q")
    (repo / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-q", "-m", "one")
    assert tracking.git_commit(repo)["git_dirty"] == "false" and tracking.git_diff(repo) is None
    (repo / "code.py").write_text("x = 2\n")
    assert tracking.git_commit(repo)["git_dirty"] == "true"
    assert "+x = 2" in tracking.git_diff(repo)

    not_a_checkout = tmp_path / "plain"
    not_a_checkout.mkdir()
    assert tracking.git_commit(not_a_checkout)["git_commit"].startswith("unavailable")
    assert tracking.git_diff(not_a_checkout) is None


def test_no_git_executable_is_said_in_a_tag(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(tracking.subprocess, "run", no_git)
    assert tracking.git_commit(REPO_ROOT) == {"git_commit": "unavailable: no git executable"}


def test_metrics_are_logged_finite_in_batches_mlflow_accepts_with_one_timestamp(tmp_path):
    """cv's summary logged only its first 900 metrics; evaluation and training each stamped their own."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("e", artifact_location=str(tmp_path / "art"))).info.run_id
    values = {f"m/{i:04d}": float(i) for i in range(1950)} | {"m/nan": float("nan"), "m/inf": float("inf")}
    assert tracking.log_metrics(client, run_id, values, step=3) == 1950
    logged = client.get_run(run_id).data.metrics
    assert len(logged) == 1950 and logged["m/1949"] == 1949.0 and "m/nan" not in logged
    history = [client.get_metric_history(run_id, key)[0] for key in ("m/0000", "m/0900", "m/1949")]
    assert {m.step for m in history} == {3} and len({m.timestamp for m in history}) == 1
