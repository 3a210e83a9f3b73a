"""One training run's MLflow record: opened (or reopened on resume) before training, completed after it.

The run is created before training starts, so its config, split and dataset fingerprint are logged even if
training dies; a resumed run reopens the same MLflow run (from `mlflow_run.json` beside the checkpoints, or
the run id the checkpoint holds). No torch import unless a checkpoint must be read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from valgusml.runs import tracking

log = logging.getLogger("valgusml.runs")


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def previous_run(resume_from: Path | None) -> dict[str, str] | None:
    """The run a resumed training continues: its run file beside the checkpoint, else the checkpoint's run id."""
    if resume_from is None:
        return None
    previous = tracking.read_run_file(resume_from.parent)
    if previous is None:
        from valgusml.runs.checkpoint import read_checkpoint

        run_id = (read_checkpoint(resume_from).get("valgusml") or {}).get("mlflow_run_id")
        previous = {"run_id": run_id} if run_id else None
    return previous


def open_run(
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str | None,
    run_dir: Path,
    config_yaml: str,
    *,
    resume_from: Path | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    artifacts: Iterable[Path] = (),
    texts: Mapping[str, str] | None = None,
) -> str:
    """Create the run (tags, params, `config.yaml`, `artifacts`, and `texts` as files named by their keys), or
    reopen the resumed one (its config is logged again as `config_resumeN.yaml`). Writes the run file into
    `run_dir`; returns the run id."""
    experiment_id = tracking.ensure_experiment(tracking_uri, experiment_name, artifact_location)
    client = _client(tracking_uri)
    previous = previous_run(resume_from)
    if previous is not None:
        run_id = previous["run_id"]
        tracking.with_retry(client.update_run, run_id, status="RUNNING")
        tracking.with_retry(client.set_tag, run_id, "resumed_from", str(resume_from))
        n = len([a for a in tracking.with_retry(client.list_artifacts, run_id) if a.path.startswith("config")])
        tracking.with_retry(client.log_text, run_id, config_yaml, f"config_resume{n}.yaml")
    else:
        run = tracking.with_retry(client.create_run, experiment_id, tags=dict(tags or {}))
        run_id = run.info.run_id
        tracking.log_params(client, run_id, dict(params or {}))
        tracking.with_retry(client.log_text, run_id, config_yaml, "config.yaml")
        for path in artifacts:
            tracking.with_retry(client.log_artifact, run_id, str(path))
        for name, text in (texts or {}).items():
            tracking.with_retry(client.log_text, run_id, text, name)
    tracking.save_run_file(run_dir, run_id, tracking_uri, experiment_id)
    return run_id


def log_outputs(
    tracking_uri: str,
    run_id: str,
    checkpoints: Iterable[Path],
    best: Path | None,
    export_dir: Path | None,
) -> None:
    """Checkpoints (and metrics file) under `checkpoints/`, the best one's path as a tag, the predictor folder."""
    client = _client(tracking_uri)
    for path in checkpoints:
        tracking.with_retry(client.log_artifact, run_id, str(path), "checkpoints")
    if best is not None:
        tracking.with_retry(client.set_tag, run_id, "best_checkpoint", str(best))
    if export_dir is not None:
        tracking.with_retry(client.log_artifacts, run_id, str(export_dir), "predictor")


def end_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    """Close the run: FINISHED, or FAILED / KILLED when training raised or was interrupted."""
    tracking.with_retry(_client(tracking_uri).set_terminated, run_id, status)


def end_run_after(tracking_uri: str, run_id: str, exc: BaseException) -> None:
    """Close a run whose process is leaving on `exc`, so that it never stays RUNNING: KILLED for Ctrl-C
    (`errors.stopped_by_ctrl_c`), FAILED for anything else. Failing to record that is logged, not raised: the
    error that ends the run is what the user must see."""
    from valgusml.errors import stopped_by_ctrl_c

    status = "KILLED" if stopped_by_ctrl_c(exc) else "FAILED"
    try:
        end_run(tracking_uri, run_id, status)
    except Exception:  # noqa: BLE001
        log.warning("could not mark MLflow run %s %s", run_id, status)


def mark_dead(tracking_uri: str, run_id: str) -> bool:
    """A run whose process died without closing it (killed): RUNNING → KILLED. True when it was marked."""
    client = _client(tracking_uri)
    if tracking.with_retry(client.get_run, run_id).info.status != "RUNNING":
        return False
    tracking.with_retry(client.set_terminated, run_id, "KILLED")
    return True
