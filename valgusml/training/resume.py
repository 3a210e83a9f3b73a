"""Which checkpoint a run resumes from: `ckpt_path=...`, or for `resume=true` the `last.ckpt` of this task's
latest run, and only that run.

The latest run is the one started last (its checkpoint folder's oldest file: `splits.json`, written at start),
not the newest `last.ckpt` anywhere: a run killed before its first checkpoint has none, and picking another
run's would continue (and register again) a run nobody named. Such a run is refused with a message saying
what happened, and its MLflow run, left RUNNING by the kill, is marked KILLED.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from valgusml.errors import InputError

LAST = "last.ckpt"


def run_checkpoint_dirs(base: Path) -> list[Path]:
    """The checkpoint folders of this task's runs (`runs/STAMP/checkpoints`, `multiruns/STAMP/N/checkpoints`)."""
    return [p for pattern in ("*/*/checkpoints", "*/*/*/checkpoints") for p in base.glob(pattern) if p.is_dir()]


def _started(ckpt_dir: Path) -> float:
    times = [p.stat().st_mtime for p in ckpt_dir.iterdir() if p.is_file()]
    return min(times) if times else ckpt_dir.stat().st_mtime


def find_resume_checkpoint(cfg: DictConfig) -> Path | None:
    """`ckpt_path=...` as given, or for `resume=true` the `last.ckpt` of this task's latest run (see module doc)."""
    if cfg.get("ckpt_path"):
        return Path(cfg.ckpt_path).resolve()
    if not cfg.get("resume"):
        return None
    base = Path(cfg.paths.log_dir) / cfg.task_name
    runs = run_checkpoint_dirs(base)
    if not runs:
        raise InputError(f"resume=true but no run of task {cfg.task_name!r} (no last.ckpt) under {base}; start a "
                         "run first or pass ckpt_path=...")
    latest = max(runs, key=_started)
    if (latest / LAST).is_file():
        return (latest / LAST).resolve()
    from valgusml.runs import tracking

    run = tracking.read_run_file(latest) or {}
    if tracking.owner_state(run) == "running":
        raise InputError(f"resume=true: the latest run ({latest.parent}) is still running (pid {run['pid']}) and has "
                         "no checkpoint yet; nothing to resume")
    marked = _mark_killed(run)
    raise InputError(
        f"resume=true: the latest run of task {cfg.task_name!r} ({latest.parent}) stopped before its first "
        f"checkpoint, so there is nothing of it to resume{marked}; start a new run (resume=false), or continue "
        "another run by naming its checkpoint with ckpt_path=..."
    )


def _mark_killed(run: dict) -> str:
    """Mark the dead run's MLflow record KILLED if it still says RUNNING; a note for the message."""
    if not run.get("run_id") or not run.get("tracking_uri"):
        return ""
    from valgusml.runs import mlflow_run

    try:
        if mlflow_run.mark_dead(run["tracking_uri"], run["run_id"]):
            return f" (its MLflow run {run['run_id']} is now marked KILLED)"
    except Exception:  # noqa: BLE001 - a tracking server that is down must not hide the message above
        return f" (its MLflow run {run['run_id']} could not be marked KILLED)"
    return ""
