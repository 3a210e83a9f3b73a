"""MLflow plumbing for training runs (no Lightning import: Hydra callbacks use it before any job starts).

Default tracking is an embedded SQLite file (`sqlite:///<root>/mlflow.db`, artifacts in `<root>/mlartifacts`);
`logger=mlflow_server` points the same code at a tracking server. Runs are created here, before training,
so the split, config and dataset fingerprint are logged even if training dies, and so that parallel sweep
jobs never race to create the same experiment (SQLite answers such races with "database is locked").
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
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
    """`mlflow.source.git.commit` and `git_dirty` (local changes to tracked files), when `root` is a git checkout;
    else a `git_commit` tag saying why there is none: a run must say it cannot name its code, not stay silent."""
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except FileNotFoundError:
        return {"git_commit": "unavailable: no git executable"}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"git_commit": f"unavailable: {root} is not a git checkout ({type(exc).__name__})"}
    if not commit:
        return {"git_commit": f"unavailable: git named no commit in {root}"}
    return {"mlflow.source.git.commit": commit, "git_dirty": str(bool(dirty)).lower()}


# A dirty tree's patch larger than this is cut (a tracked data file changed, say): the tag still says dirty.
MAX_DIFF_CHARS = 5_000_000


def git_diff(root: str | Path) -> str | None:
    """The tracked files' changes against HEAD (`git diff HEAD`), or None when there are none or no git: with
    the commit, what a dirty tree's run needs to be made again."""
    try:
        diff = _git(root, "diff", "HEAD", "--no-color", "--no-ext-diff")
    except (OSError, subprocess.SubprocessError):
        return None
    if not diff:
        return None
    if len(diff) > MAX_DIFF_CHARS:
        return diff[:MAX_DIFF_CHARS] + f"\n# ... cut at {MAX_DIFF_CHARS} characters of {len(diff)}\n"
    return diff + "\n"


def _git(root: str | Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


# What decides a training run's numbers and bytes (the network's arithmetic, the ONNX export, the split and
# metrics code): tagged `env.<name>` on every run; `environment.txt` lists every installed distribution.
KEY_PACKAGES = ("valgusml", "torch", "lightning", "numpy", "scipy", "scikit-learn", "onnx", "onnxruntime",
                "hydra-core", "mlflow")


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """`{"python": "3.11.7", "torch": "2.13.0+cpu", ...}`; a package that is not installed says so."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def environment_text() -> str:
    """Every installed distribution as a `name==version` line (what `pip freeze` lists, read from the installed
    metadata: no pip subprocess, no network), under a line naming the interpreter and platform."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower(), f"{name}=={dist.version}")
    header = f"# python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}"
    return "\n".join([header, *sorted(found.values(), key=str.lower)]) + "\n"


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def folder_sha256(folder: str | Path) -> str:
    """One sha256 for a folder's files: each file's relative path and sha256, in path order (the same folder
    copied anywhere hashes the same; any changed, added or removed file changes it)."""
    root = Path(folder)
    lines = [f"{p.relative_to(root).as_posix()} {file_sha256(p)}" for p in sorted(root.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


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


def log_metrics(client: Any, run_id: str, values: Mapping[str, float], step: int = 0) -> int:
    """Log the finite `values` to run `run_id` at `step`, one timestamp for all (they are one event), in batches
    of MLflow's per-call limit; returns how many were logged."""
    import math

    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)  # MLflow's timestamps are epoch milliseconds
    items = [Metric(k, float(v), stamp, step) for k, v in values.items() if math.isfinite(v)]
    for start in range(0, len(items), 900):  # MLflow refuses more than 1000 metrics a call
        with_retry(client.log_batch, run_id, metrics=items[start : start + 900])
    return len(items)


def owner() -> dict[str, str]:
    """`{"pid", "host"}` of this process: recorded with a run so that a later process can tell a run still going
    from one that was killed (a SIGKILL leaves its run RUNNING and cannot be caught)."""
    return {"pid": str(os.getpid()), "host": socket.gethostname()}


def owner_state(record: Mapping[str, Any]) -> str:
    """Whether the process that `owner()` recorded in `record` is "running" or "gone"; "unknown" without a pid
    or for another host's."""
    from valgusml.leftovers import pid_alive

    pid, host = str(record.get("pid") or ""), record.get("host")
    if not pid.isdigit() or host != socket.gethostname():
        return "unknown"
    return "running" if pid_alive(int(pid)) else "gone"


def save_run_file(ckpt_dir: str | Path, run_id: str, tracking_uri: str, experiment_id: str) -> Path:
    path = Path(ckpt_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_id": run_id, "tracking_uri": tracking_uri, "experiment_id": experiment_id,
                                **owner()}))
    return path


def read_run_file(ckpt_dir: str | Path) -> dict[str, str] | None:
    path = Path(ckpt_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None
