"""Hydra callbacks for sweeps: prepare shared state once, in the launching process, before any job starts."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def mlflow_targets(logger_cfg: Any) -> list[tuple[str, str, str | None]]:
    """(tracking_uri, experiment_name, artifact_location) of each MLflow logger in a `logger` config node."""
    found = []
    for node in (logger_cfg or {}).values():
        if isinstance(node, dict | DictConfig) and "MLFlowLogger" in str(node.get("_target_", "")):
            if node.get("tracking_uri"):
                found.append((str(node.tracking_uri), str(node.experiment_name), node.get("artifact_location")))
    return found


class PrepareTracking(Callback):
    """Create the MLflow database and experiment before a multirun launches its jobs.

    Parallel jobs (joblib, SLURM) that each find no experiment would all create it, and SQLite stores also run
    their schema migration on first use: both races end in "database is locked" or "already exists" errors.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from valgusml.runs.tracking import ensure_experiment

        for uri, name, artifact_location in mlflow_targets(config.get("logger")):
            ensure_experiment(uri, name, artifact_location)
