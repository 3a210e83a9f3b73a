"""The objects of one training run, built from its config: loggers, callbacks and the LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from valgusml.errors import ConfigError
from valgusml.hydra_app import to_plain


def instantiate_loggers(cfg: DictConfig, run_id: str | None) -> list[Any]:
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        extra = {"run_id": run_id} if "MLFlowLogger" in node._target_ else {}
        loggers.append(hydra.utils.instantiate(node, **extra))
    return loggers


def instantiate_callbacks(cfg: DictConfig, ckpt_dir: Path, logging: bool) -> list[Any]:
    callbacks = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        if not logging and node._target_.endswith("LearningRateMonitor"):
            continue  # it refuses to run without a logger (logger=none, fast_dev_run)
        extra = {"dirpath": str(ckpt_dir)} if node._target_.endswith("ModelCheckpoint") else {}
        try:
            callbacks.append(hydra.utils.instantiate(node, **extra))
        except Exception as exc:
            raise ConfigError(f"callbacks.{name}: {exc}") from None
    return callbacks


def build_module(cfg: DictConfig, dm: Any) -> Any:
    module_cfg = to_plain(cfg.module)
    cls = hydra.utils.get_class(module_cfg.pop("_target_", "valgusml.training.module.ValgusLitModule"))
    weights = dm.class_weights()
    return cls(net=to_plain(cfg.model), preprocess=dict(dm.preprocess), **weights, **module_cfg)


def mlflow_logger_node(cfg: DictConfig) -> DictConfig | None:
    for node in (cfg.get("logger") or {}).values():
        if isinstance(node, DictConfig) and "MLFlowLogger" in str(node.get("_target_", "")):
            return node
    return None
