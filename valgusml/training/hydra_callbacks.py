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


def set_hydra_config(config: DictConfig) -> None:
    """Make `${hydra:...}` resolvable in the launching process of a multirun.

    Hydra sets its config per job only, so until the first job starts `${hydra:runtime.cwd}` fails to resolve,
    and with it `paths.root_dir`'s default and every path built on it (`hydra.sweep.dir`, the MLflow store):
    `valgusml train -m ...` stopped with "HydraConfig was not set" unless `paths.root_dir` was given. Each job
    still sets its own config (`hydra.core.utils.run_job`).
    """
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    HydraConfig.instance().set_config(config)
    OmegaConf.set_readonly(config.hydra, None)  # set_config made it read-only; leave it as Hydra composed it


class PrepareTracking(Callback):
    """Prepare a multirun in its launching process: its Hydra config (`set_hydra_config`), then the MLflow
    database and experiment before any job starts.

    Parallel jobs (joblib, SLURM) that each find no experiment would all create it, and SQLite stores also run
    their schema migration on first use: both races end in "database is locked" or "already exists" errors.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from valgusml.runs.tracking import ensure_experiment

        set_hydra_config(config)
        for uri, name, artifact_location in mlflow_targets(config.get("logger")):
            ensure_experiment(uri, name, artifact_location)
