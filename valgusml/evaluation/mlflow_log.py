"""The evaluation's MLflow run: a child of the training run when that run is in the store, else a run of its own,
holding the headline metrics (value and CI bounds per scorer) and the report folder."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from valgusml.evaluation.runner import EvaluationResult
from valgusml.evaluation.sources import mlflow_client
from valgusml.runs import mlflow_run, tracking

log = logging.getLogger("valgusml.evaluate")


def log_evaluation(cfg: DictConfig, result: Any, report_dir: Path, origin: dict[str, Any]) -> str | None:
    """A child run of the training run when it exists in this store, else a run of its own."""
    try:
        client = mlflow_client(cfg)
        parent = origin.get("training_run_id")
        experiment_id = None
        if parent:
            try:
                experiment_id = client.get_run(parent).info.experiment_id
            except Exception:
                parent = None
        if experiment_id is None:
            experiment_id = tracking.ensure_experiment(str(cfg.mlflow.tracking_uri), str(cfg.mlflow.experiment_name))
        try:
            mark_killed_evaluations(client, str(cfg.mlflow.tracking_uri), experiment_id)
        except Exception as exc:  # noqa: BLE001 - tidying earlier runs must not cost this one its record
            log.warning("could not look for killed evaluation runs in MLflow (%s)", exc)
        # pid and host: a later evaluation tells a run still going from one that was killed (SIGKILL)
        tags = {"mlflow.runName": cfg.mlflow.get("run_name") or "evaluate", "task_name": "evaluate",
                "dataset_fingerprint": str(result.info.get("dataset_fingerprint")),
                **tracking.owner()}
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        try:
            for key in ("model", "dataset", "split"):
                client.log_param(run_id, key, str(result.info.get(key))[:500])
            client.log_param(run_id, "baselines", ",".join(n for n in result.results if n != "model"))
            client.log_param(run_id, "threshold_rule", str(cfg.threshold_rule))
            log_report_to_mlflow(result, report_dir, run_id, str(cfg.mlflow.tracking_uri))
        except BaseException as exc:
            mlflow_run.end_run_after(str(cfg.mlflow.tracking_uri), run_id, exc)
            raise
        client.set_terminated(run_id, "FINISHED")
        log.info("evaluation logged to MLflow run %s%s", run_id, f" (child of {parent})" if parent else "")
        return run_id
    except Exception as exc:  # tracking is a side channel: never lose the report because of it
        log.warning("MLflow logging failed (%s); the report is still at %s", exc, report_dir)
        return None


def mark_killed_evaluations(client: Any, tracking_uri: str, experiment_id: str) -> list[str]:
    """Mark KILLED the evaluation runs of `experiment_id` left RUNNING by a process of this host that is gone (a
    SIGKILL cannot be caught); returns their ids. Runs of other hosts, or without a pid, are left as they are."""
    running = client.search_runs([experiment_id], "tags.task_name = 'evaluate' and attributes.status = 'RUNNING'")
    marked = []
    for run in running:
        if tracking.owner_state(run.data.tags) == "gone":
            if mlflow_run.mark_dead(tracking_uri, run.info.run_id):
                log.info("MLflow run %s of an evaluation that was killed is now marked KILLED", run.info.run_id)
                marked.append(run.info.run_id)
    return marked


def log_report_to_mlflow(result: EvaluationResult, report_dir: str | Path, run_id: str, tracking_uri: str | None,
                         prefix: str = "eval") -> None:
    """Headline metrics (value and CI bounds per scorer) and the whole report folder, into run `run_id`."""
    from mlflow.tracking import MlflowClient

    metrics: dict[str, float] = {}
    for name, r in result.results.items():
        estimates = {**r.estimates, **{f"{metric}_minus_first": est for metric, est in (r.minus_first or {}).items()}}
        for metric, est in estimates.items():
            for suffix, value in (("", est.value), ("_lo", est.lo), ("_hi", est.hi)):
                metrics[f"{prefix}/{name}/{metric}{suffix}"] = value
        metrics[f"{prefix}/{name}/threshold"] = r.threshold
        for deficit, offset in (r.mechanism_offsets or {}).items():
            metrics[f"{prefix}/{name}/mechanism_offset/{deficit}"] = offset
        for row in ([] if r.per_view is None else r.per_view.to_dict("records")):
            for metric in ("valgus_auroc", "mechanism_macro_f1"):  # runs compared by how each view is read
                metrics[f"{prefix}/{name}/view/{row['camera_view']}/{metric}"] = row[metric]
    if result.transfer is not None:
        for row in result.transfer.to_dict("records"):
            for column, value in row.items():
                if isinstance(value, (int, float)) and column != "scorer":
                    key = re.sub(r"[^0-9A-Za-z_/.-]+", "_", column).strip("_")
                    metrics[f"{prefix}/{row['scorer']}/transfer/{key}"] = value
    client = MlflowClient(tracking_uri)
    tracking.log_metrics(client, run_id, metrics)
    client.log_artifacts(run_id, str(report_dir), "report")
