"""MLflow plumbing for training runs (no Lightning import: Hydra callbacks use it before any job starts).

Default tracking is an embedded SQLite file (`sqlite:///<root>/mlflow.db`, artifacts in `<root>/mlartifacts`);
`logger=mlflow_server` points the same code at a tracking server. Runs are created here, before training,
so the split, config and dataset fingerprint are logged even if training dies, and so that parallel sweep
jobs never race to create the same experiment (SQLite answers such races with "database is locked").
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
RUN_FILE = "mlflow_run.json"
_TRANSIENT = ("database is locked", "database table is locked", "unable to open database", "busy")


def with_retry(fn: Callable[..., T], *args: Any, attempts: int = 12, **kwargs: Any) -> T:
    """Call `fn`, retrying with jittered back-off while SQLite reports a lock held by a parallel job."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # sqlalchemy OperationalError arrives wrapped in MlflowException
            if attempt == attempts - 1 or not any(t in str(exc).lower() for t in _TRANSIENT):
                raise
            time.sleep(min(5.0, 0.1 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def artifact_uri(location: str | None) -> str | None:
    """Experiment artifact location: plain paths become absolute file URIs; URIs pass through."""
    if not location:
        return None
    if "://" in str(location):
        return str(location)
    return Path(location).expanduser().resolve().as_uri()


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None = None) -> str:
    """Id of experiment `name`, created if missing; safe against parallel creators (and creates the DB).

    With a SQLite store and no artifact location, artifacts go to `mlartifacts/` beside the database file:
    MLflow's own default is `./mlruns` under whatever the working directory happens to be.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        db_dir = Path(tracking_uri[len("sqlite:///") :]).parent
        db_dir.mkdir(parents=True, exist_ok=True)
        artifact_location = artifact_location or str(db_dir / "mlartifacts")
    client = with_retry(MlflowClient, tracking_uri)
    experiment = with_retry(client.get_experiment_by_name, name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            with_retry(client.restore_experiment, experiment.experiment_id)
        return experiment.experiment_id
    try:
        return with_retry(client.create_experiment, name, artifact_location=artifact_uri(artifact_location))
    except MlflowException:
        experiment = with_retry(client.get_experiment_by_name, name)  # another job created it meanwhile
        if experiment is None:
            raise
        return experiment.experiment_id


def git_commit(root: str | Path) -> dict[str, str]:
    """`mlflow.source.git.commit` (and whether the tree had local changes), when `root` is a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"mlflow.source.git.commit": commit, "git_dirty": str(bool(dirty)).lower()} if commit else {}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def log_params(client: Any, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k[:250], str(v)[:6000]) for k, v in sorted(params.items())]
    for start in range(0, len(items), 100):  # MLflow's per-call limit
        with_retry(client.log_batch, run_id, params=items[start : start + 100])


def save_run_file(ckpt_dir: str | Path, run_id: str, tracking_uri: str, experiment_id: str) -> Path:
    path = Path(ckpt_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid and host: a later `resume=true` tells a run still going from one that was killed.
    path.write_text(json.dumps({"run_id": run_id, "tracking_uri": tracking_uri, "experiment_id": experiment_id,
                                "pid": os.getpid(), "host": socket.gethostname()}))
    return path


def read_run_file(ckpt_dir: str | Path) -> dict[str, str] | None:
    path = Path(ckpt_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None
