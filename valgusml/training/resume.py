"""Which checkpoint a run resumes from: `ckpt_path=...`, or for `resume=true` the `last.ckpt` of this task's
latest run, and only that run.

The latest run is the one started last (its checkpoint folder's oldest file: `splits.json`, written at start),
not the newest `last.ckpt` anywhere: a run killed before its first checkpoint has none, and picking another
run's would continue (and register again) a run nobody named. Such a run is refused with a message saying
what happened, and its MLflow run, left RUNNING by the kill, is marked KILLED.

A sweep job (`-m`) run again with `resume=true hydra.sweep.dir=<the interrupted sweep's folder>` looks only in
its own folder (`<sweep dir>/<job number>`): a finished job is skipped (its `metrics.json` answers the sweeper),
an interrupted one continues from its `last.ckpt`, one that never reached a checkpoint starts afresh there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    if sweep_job() is not None:
        return _resume_sweep_job(cfg)
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


def sweep_job() -> str | None:
    """`#N` for a job of a multirun (`-m`), None for a single run."""
    from valgusml.hydra_app import multirun_job_number

    number = multirun_job_number()
    return None if number is None else f"#{number}"


def _job_checkpoint_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir) / "checkpoints"


def _resume_sweep_job(cfg: DictConfig) -> Path | None:
    """This sweep job's own `last.ckpt`; None (start afresh in its folder) when it never reached one. Never
    another run's: every job of a sweep would otherwise continue the task's latest run."""
    ckpt_dir = _job_checkpoint_dir(cfg)
    run, _ = _same_job_run(cfg, ckpt_dir)
    if (ckpt_dir / LAST).is_file():
        return (ckpt_dir / LAST).resolve()
    _mark_killed(run)  # a kill before its first checkpoint left it RUNNING
    return None


def finished_sweep_job(cfg: DictConfig) -> dict[str, float] | None:
    """With `resume=true`, a sweep job that already finished in its folder: its metrics (`metrics.json`, whose
    values the sweeper reads again), so that a sweep run again does not train it again. A job whose MLflow run
    is not FINISHED (killed while testing or exporting) is not finished: it continues from its `last.ckpt`."""
    import json

    if not cfg.get("resume") or cfg.get("ckpt_path") or sweep_job() is None:
        return None
    ckpt_dir = _job_checkpoint_dir(cfg)
    if not (ckpt_dir / "metrics.json").is_file():
        return None
    _, record = _same_job_run(cfg, ckpt_dir)
    if record is not None and record.info.status != "FINISHED":
        return None
    return json.loads((ckpt_dir / "metrics.json").read_text())


def _same_job_run(cfg: DictConfig, ckpt_dir: Path) -> tuple[dict, Any]:
    """The run file of the job that ran in `ckpt_dir` before ({} if none) and its MLflow run (None without one),
    once that record says it was this job: the same overrides (`resume=` aside). Job numbers follow the sweep's
    overrides: another command given the same `hydra.sweep.dir` would continue, or skip, a job of different
    settings."""
    import shlex

    from valgusml.hydra_app import hydra_overrides
    from valgusml.runs import tracking

    run = tracking.read_run_file(ckpt_dir) or {}
    if not run.get("run_id") or not run.get("tracking_uri"):
        return run, None
    from mlflow.tracking import MlflowClient

    record = tracking.with_retry(MlflowClient(run["tracking_uri"]).get_run, run["run_id"])
    tags = record.data.tags
    if "hydra_overrides" not in tags:
        return run, record

    def settings(overrides: list[str]) -> list[str]:
        return [o for o in overrides if not o.startswith("resume=")]

    before, now = settings(shlex.split(tags["hydra_overrides"])), settings(hydra_overrides(cfg))
    if before != now:
        was, asked = [o for o in before if o not in now], [o for o in now if o not in before]
        raise InputError(f"resume=true: job {sweep_job()} in {ckpt_dir.parent} ran {' '.join(was) or '(no override)'}"
                         f", not {' '.join(asked) or '(no override)'}; resume a sweep with the command that "
                         "started it, or leave hydra.sweep.dir out to start a new sweep")
    return run, record
