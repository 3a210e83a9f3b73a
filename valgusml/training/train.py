"""`valgusml train` / `python -m valgusml.train`: the Hydra training app.

    valgusml train experiment=smoke
    valgusml train model=stgcn trainer.max_epochs=30
    valgusml train -m hparams_search=optuna
    valgusml train -m hydra/launcher=joblib module.optimizer.lr=1e-3,3e-3
    valgusml train resume=true                       # continue the latest run of this task, same MLflow run

One run: compose config → check it → data (generate / cache / split by athlete) → MLflow run (config, split,
fingerprint, git commit) → fit with best/last checkpoints → test on held-out athletes with the best
checkpoint → checkpoints, metrics and exported predictor logged to the run. `train(cfg)` returns the metrics;
the Hydra entry returns `cfg.optimized_metric` for sweepers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from valgusml.errors import ConfigError, InputError

log = logging.getLogger("valgusml.train")
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
LAST = "last.ckpt"


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


# -- configuration ---------------------------------------------------------------------------------------------


def compose_config(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """Compose the training config as `valgusml train OVERRIDES` would (for tests and `make run`).

    Hydra's own errors (unknown group, key or option) come back as `ConfigError` naming the override.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides or []), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad training config ({' '.join(overrides or [])}): {exc}") from None


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain data, without Hydra's own section (what is logged and saved)."""
    return {k: _plain(cfg[k]) for k in cfg if k != "hydra"}


def check_config(cfg: DictConfig) -> None:
    """Catch what would otherwise fail deep inside training, before any work starts."""
    for key in ("data", "model", "trainer", "module", "paths"):
        if cfg.get(key) is None:
            raise ConfigError(f"config has no {key!r} section")
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist")
    data = cfg.data
    if OmegaConf.is_missing(data, "dataset_dir"):
        raise ConfigError("data=folder needs data.dataset_dir=PATH (a dataset folder, e.g. from `valgusml convert`)")
    if data.get("dataset_dir") and not Path(data.dataset_dir).is_dir():
        raise InputError(
            f"data.dataset_dir={data.dataset_dir} does not exist; make a dataset with `valgusml convert` or "
            "`valgusml generate`, or use data=synthetic"
        )
    monitor = cfg.get("monitor") or {}
    if monitor.get("mode") not in ("min", "max"):
        raise ConfigError(f"monitor.mode must be 'min' or 'max', got {monitor.get('mode')!r}")
    for key in cfg:
        if key == "hydra":
            continue
        try:  # every interpolation and mandatory value (`???`), now rather than mid-run
            node = cfg[key]
            if isinstance(node, DictConfig):
                OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
        except Exception as exc:
            raise ConfigError(f"config key {key!r} does not resolve: {exc}") from None


# -- resume ----------------------------------------------------------------------------------------------------


def find_resume_checkpoint(cfg: DictConfig) -> Path | None:
    """`ckpt_path=...` as given, or for `resume=true` the newest `last.ckpt` among this task's runs."""
    if cfg.get("ckpt_path"):
        return Path(cfg.ckpt_path).resolve()
    if not cfg.get("resume"):
        return None
    base = Path(cfg.paths.log_dir) / cfg.task_name
    candidates = [p for p in base.glob(f"*/*/checkpoints/{LAST}") if p.is_file()]
    candidates += [p for p in base.glob(f"*/*/*/checkpoints/{LAST}") if p.is_file()]
    if not candidates:
        raise InputError(f"resume=true but no {LAST} under {base}; start a run first or pass ckpt_path=...")
    return max(candidates, key=lambda p: p.stat().st_mtime).resolve()


# -- the run ---------------------------------------------------------------------------------------------------


def _is_rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _setup_mlflow(
    cfg: DictConfig, logger_cfg: DictConfig, ckpt_dir: Path, resume_from: Path | None, dm: Any
) -> tuple[str, str]:
    """Create (or reopen, when resuming) the MLflow run and log what defines it. Returns (run_id, uri)."""
    from mlflow.tracking import MlflowClient

    from valgusml.data.splits import save_split
    from valgusml.runs import tracking

    uri = str(logger_cfg.tracking_uri)
    experiment_id = tracking.ensure_experiment(uri, str(logger_cfg.experiment_name), logger_cfg.get("artifact_location"))
    client = MlflowClient(uri)
    previous = tracking.read_run_file(resume_from.parent) if resume_from is not None else None
    if previous is None and resume_from is not None:
        from valgusml.runs.checkpoint import read_checkpoint

        run_id = (read_checkpoint(resume_from).get("valgusml") or {}).get("mlflow_run_id")
        previous = {"run_id": run_id} if run_id else None
    resolved = resolved_config(cfg)
    if previous is not None:
        run_id = previous["run_id"]
        tracking.with_retry(client.update_run, run_id, status="RUNNING")
        tracking.with_retry(client.set_tag, run_id, "resumed_from", str(resume_from))
        n = len([a for a in tracking.with_retry(client.list_artifacts, run_id) if a.path.startswith("config")])
        tracking.with_retry(client.log_text, run_id, OmegaConf.to_yaml(resolved), f"config_resume{n}.yaml")
    else:
        tags = {
            "mlflow.runName": cfg.get("run_name") or f"{cfg.task_name}-{cfg.model.get('backbone', {}).get('_target_', 'model').split('.')[-1].lower()}",
            "task_name": str(cfg.task_name),
            "dataset_fingerprint": dm.fingerprint,
            "dataset": str(dm.root),
            "split_method": dm.split.method,
            **tracking.git_commit(Path(__file__).resolve().parents[2]),  # the code's commit
            **{str(k): str(v) for k, v in (cfg.get("tags") or {}).items()},
        }
        run = tracking.with_retry(client.create_run, experiment_id, tags=tags)
        run_id = run.info.run_id
        params = tracking.flatten({k: v for k, v in resolved.items() if k not in ("paths",)})
        params.update({f"data.{k}": v for k, v in dm.summary().items()})
        tracking.log_params(client, run_id, params)
        tracking.with_retry(client.log_text, run_id, OmegaConf.to_yaml(resolved), "config.yaml")
        tracking.with_retry(client.log_artifact, run_id, str(save_split(dm.split, ckpt_dir / "splits.json")))
    tracking.save_run_file(ckpt_dir, run_id, uri, experiment_id)
    return run_id, uri


def _instantiate_loggers(cfg: DictConfig, run_id: str | None) -> list[Any]:
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        extra = {"run_id": run_id} if "MLFlowLogger" in node._target_ else {}
        loggers.append(hydra.utils.instantiate(node, **extra))
    return loggers


def _instantiate_callbacks(cfg: DictConfig, ckpt_dir: Path, logging: bool) -> list[Any]:
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
    module_cfg = _plain(cfg.module)
    cls = hydra.utils.get_class(module_cfg.pop("_target_", "valgusml.training.module.ValgusLitModule"))
    weights = dm.class_weights()
    return cls(net=_plain(cfg.model), preprocess=dict(dm.preprocess), **weights, **module_cfg)


def _mlflow_logger_node(cfg: DictConfig) -> DictConfig | None:
    for node in (cfg.get("logger") or {}).values():
        if isinstance(node, DictConfig) and "MLFlowLogger" in str(node.get("_target_", "")):
            return node
    return None


def _ddp_entry_point() -> None:
    """Lightning's DDP launcher re-runs `python -m <__main__ module>`; from the `valgusml` console script
    there is none, so point it at this app's module entry."""
    import importlib.util

    import __main__

    if getattr(__main__, "__spec__", None) is None and not str(getattr(__main__, "__file__", "")).endswith(".py"):
        __main__.__spec__ = importlib.util.find_spec("valgusml.train")


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, test and (optionally) export one run. Returns val metrics (best checkpoint) and test metrics."""
    import lightning as L
    import torch

    check_config(cfg)
    # Lightning attaches its own console handler and also propagates to the root logger (Hydra's, or
    # make run's): every line would print twice. Keep the root's, which also writes the run's log file.
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "Tip:" not in record.getMessage()  # advertising printed at every fit
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
    # splits.json and mlflow_run.json sit beside the checkpoints on purpose (resume finds them there).
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    L.seed_everything(int(cfg.seed), workers=True)
    torch.set_float32_matmul_precision("high")
    if cfg.get("torch_threads"):
        # On a shared or oversubscribed CPU, fewer intra-op threads can be many times faster (no spin-waiting).
        torch.set_num_threads(int(cfg.torch_threads))
    resume_from = find_resume_checkpoint(cfg)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_dir = resume_from.parent if resume_from is not None else output_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    dm = hydra.utils.instantiate(cfg.data, _recursive_=False)
    if resume_from is not None and (ckpt_dir / "splits.json").is_file():
        dm.split_config = {"file": str(ckpt_dir / "splits.json")}  # the very athletes of the first attempt
    if _is_rank_zero():
        dm.prepare_data()
    dm.setup("fit")
    log.info("data: %s", dm.summary())

    rank_zero = _is_rank_zero()
    if rank_zero:
        from valgusml.data.splits import save_split

        save_split(dm.split, ckpt_dir / "splits.json")
    mlflow_node = _mlflow_logger_node(cfg)
    run_id = tracking_uri = None
    if mlflow_node is not None and rank_zero:
        run_id, tracking_uri = _setup_mlflow(cfg, mlflow_node, ckpt_dir, resume_from, dm)
        log.info("MLflow run %s at %s", run_id, tracking_uri)

    module = build_module(cfg, dm)
    module.run_info.update(dataset_fingerprint=dm.fingerprint, mlflow_run_id=run_id, split=dm.split.to_dict())
    loggers = _instantiate_loggers(cfg, run_id)
    callbacks = _instantiate_callbacks(cfg, ckpt_dir, logging=bool(loggers) and not cfg.trainer.get("fast_dev_run"))
    if str(cfg.trainer.get("strategy") or "auto") != "auto":
        _ddp_entry_point()
    try:
        trainer = hydra.utils.instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, use_distributed_sampler=False
        )
    except Exception as exc:
        raise ConfigError(f"trainer: {exc}") from None

    trainer.fit(module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None)
    checkpoint_cb = trainer.checkpoint_callback
    best = Path(checkpoint_cb.best_model_path) if checkpoint_cb and checkpoint_cb.best_model_path else None
    val_metrics = dict(module.val_metrics)
    if best is not None and best.is_file():
        from valgusml.runs.checkpoint import read_checkpoint

        val_metrics = dict((read_checkpoint(best).get("valgusml") or {}).get("val_metrics") or val_metrics)
    metrics = {f"val/{k}": v for k, v in val_metrics.items()}

    if cfg.get("test"):
        trainer.test(module, datamodule=dm, ckpt_path=str(best) if best is not None and best.is_file() else None)
        metrics.update({f"test/{k}": v for k, v in module.test_metrics.items()})
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.global_rank == 0:
        _finish(cfg, trainer, module, dm, best, ckpt_dir, run_id, tracking_uri, metrics)
    return metrics


def _finish(
    cfg: DictConfig,
    trainer: Any,
    module: Any,
    dm: Any,
    best: Path | None,
    ckpt_dir: Path,
    run_id: str | None,
    tracking_uri: str | None,
    metrics: dict[str, float],
) -> None:
    from valgusml.runs.checkpoint import update_info
    from valgusml.training import hooks

    if best is not None and best.is_file() and module.test_metrics:
        update_info(best, test_metrics=dict(module.test_metrics))
    (ckpt_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    export_dir = None
    if cfg.get("export") and best is not None and best.is_file():
        export_dir = hooks.export(best, Path(cfg.export_dir), dm)
    if run_id is not None:
        from mlflow.tracking import MlflowClient

        from valgusml.runs.tracking import with_retry

        client = MlflowClient(tracking_uri)
        for path in sorted(ckpt_dir.glob("*.ckpt")) + [ckpt_dir / "metrics.json"]:
            with_retry(client.log_artifact, run_id, str(path), "checkpoints")
        if best is not None:
            with_retry(client.set_tag, run_id, "best_checkpoint", str(best))
        if export_dir is not None:
            with_retry(client.log_artifacts, run_id, str(export_dir), "predictor")
        hooks.after_training(run_id, best, export_dir, tracking_uri=tracking_uri)
        with_retry(client.set_terminated, run_id, "FINISHED")
    summary = {"checkpoint": str(best) if best else None, "export_dir": str(export_dir) if export_dir else None}
    log.info("finished: %s %s", summary, {k: round(v, 4) for k, v in metrics.items()})


# -- entry points ----------------------------------------------------------------------------------------------


def run(overrides: list[str] | None = None) -> tuple[dict[str, float], DictConfig]:
    """One run in this process, as `valgusml train OVERRIDES` would do it (no multirun): for `make run` and
    tests. Returns (metrics, config); the run folder is `cfg.paths.output_dir`."""
    import datetime as dt

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    cfg = compose_config(overrides)
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    output_dir = Path(cfg.paths.log_dir) / str(cfg.task_name) / "runs" / stamp
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.name = "train"
    HydraConfig().set_config(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved_config(cfg)))
    return train(cfg), cfg



@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    value = metrics.get(str(cfg.get("optimized_metric")))
    return None if value is None else float(value)


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0] if sys.argv else "valgusml train", *argv]
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    _hydra_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
