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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from valgusml.data.splits import save_split
from valgusml.errors import ConfigError, ValgusMLError, stopped_by_ctrl_c
from valgusml.hydra_app import hydra_entry, hydra_overrides, multirun_job_number
from valgusml.paths import REPO_ROOT
from valgusml.runs import mlflow_run, tracking
from valgusml.training.config import (
    CONFIG_DIR,
    apply_leave_out,
    check_accelerator_available,
    check_config,
    compose_config,
    resolved_config,
)
from valgusml.training.instantiate import (
    build_module,
    instantiate_callbacks,
    instantiate_loggers,
    mlflow_logger_node,
)
from valgusml.training.resume import find_resume_checkpoint, finished_sweep_job, sweep_job

log = logging.getLogger("valgusml.train")


# -- the run ---------------------------------------------------------------------------------------------------


def _is_rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _open_mlflow_run(cfg: DictConfig, logger_cfg: DictConfig, ckpt_dir: Path, resume_from: Path | None, dm: Any) -> str:
    """Create (or reopen, when resuming) the MLflow run and log what defines it: tags, params, config, split."""
    resolved = resolved_config(cfg)
    backbone = cfg.model.get("backbone", {}).get("_target_", "model").split(".")[-1].lower()
    tags = {
        "mlflow.runName": cfg.get("run_name") or f"{cfg.task_name}-{backbone}",
        "task_name": str(cfg.task_name),
        "dataset_fingerprint": dm.fingerprint,
        "dataset": str(dm.root),
        "split_method": dm.split.method,
        **tracking.git_commit(REPO_ROOT),  # the code's commit
        **{str(k): str(v) for k, v in (cfg.get("tags") or {}).items()},
        **({"leave_out": str(cfg.leave_out.name)} if cfg.get("leave_out") else {}),
    }
    tags.update(_command_tags(cfg))
    tags.update(_sweep_tags())
    tags.update({f"env.{name}": version for name, version in tracking.package_versions().items()})
    params = tracking.flatten({k: v for k, v in resolved.items() if k not in ("paths",)})
    params.update({f"data.{k}": v for k, v in dm.summary().items()})
    params.update(_input_hashes(cfg, dm))
    texts = {"environment.txt": tracking.environment_text()}
    diff = tracking.git_diff(REPO_ROOT) if tags.get("git_dirty") == "true" else None
    if diff is not None:
        texts["git_diff.patch"] = diff  # the commit alone is not the code a dirty tree ran
    return mlflow_run.open_run(
        str(logger_cfg.tracking_uri),
        str(logger_cfg.experiment_name),
        logger_cfg.get("artifact_location"),
        ckpt_dir,
        OmegaConf.to_yaml(resolved),
        resume_from=resume_from,
        tags=tags,
        params=params,
        artifacts=[ckpt_dir / "splits.json"],  # saved by `train` before the run opens
        texts=texts,
    )


# MLflow's SQL store keeps tag values up to 8,000 characters.
_MAX_TAG = 8000


def _command_tags(cfg: DictConfig) -> dict[str, str]:
    """`hydra_overrides` and `train_command`: the config alone does not say which experiment file and overrides
    made it, and `valgusml train <the same overrides>` at the run's commit is the shortest way to make it again
    (the logged `config.yaml` holds this machine's absolute paths and run folder)."""
    import shlex

    from hydra.core.hydra_config import HydraConfig

    overrides = " ".join(shlex.quote(o) for o in hydra_overrides(cfg))
    config_name = HydraConfig.get().job.config_name if HydraConfig.initialized() else "train"
    name = "" if config_name in (None, "train") else f"--config-name {shlex.quote(str(config_name))} "
    return {"hydra_overrides": overrides[:_MAX_TAG], "train_command": f"valgusml train {name}{overrides}"[:_MAX_TAG]}


def _sweep_tags() -> dict[str, str]:
    """A multirun job's `sweep` (its sweep folder: one per `valgusml train -m ...`, so
    `tags.sweep = '...'` finds its runs together) and `sweep_job` (its number there, an Optuna trial's too)."""
    from hydra.core.hydra_config import HydraConfig

    number = multirun_job_number()
    if number is None:
        return {}
    return {"sweep": str(Path(HydraConfig.get().sweep.dir).resolve()), "sweep_job": str(number)}


def _input_hashes(cfg: DictConfig, dm: Any) -> dict[str, Any]:
    """What the run read besides its config and dataset, by content: `init_from`'s weights and the teacher
    folder (a path names whatever file lies there today), and the version of the generator that wrote the data
    (the folder's `generator.json`; a dataset of recordings has none)."""
    from valgusml.paths import resolve_in_checkout
    from valgusml.synth.dataset import generator_record_of

    hashes: dict[str, Any] = {}
    if cfg.get("init_from"):
        hashes["init_from_sha256"] = tracking.file_sha256(resolve_in_checkout(cfg.init_from, "init_from"))
    if cfg.data.get("teacher"):
        from valgusml.training.teacher import resolve_teacher

        hashes["data.teacher_sha256"] = tracking.folder_sha256(resolve_teacher(cfg.data.teacher))
    record = generator_record_of(dm.root)
    if record is not None:
        hashes["data.generator_version"] = record.get("generator_version")
    return hashes


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
    finished = finished_sweep_job(cfg)
    if finished is not None:
        log.info("job %s finished before in %s: not trained again (resume=true)", sweep_job(), cfg.paths.output_dir)
        return finished
    check_accelerator_available(cfg.trainer)
    apply_leave_out(cfg)
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
    threads = job_torch_threads(cfg)
    if threads:
        # On a shared or oversubscribed CPU, fewer intra-op threads can be many times faster (no spin-waiting).
        torch.set_num_threads(threads)
    resume_from = find_resume_checkpoint(cfg)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_dir = resume_from.parent if resume_from is not None else output_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    try:
        dm = hydra.utils.instantiate(cfg.data, _recursive_=False)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ValgusMLError):  # the data module's own check, not Hydra's wrapping of it
            raise exc.__cause__ from None
        raise
    if resume_from is not None and (ckpt_dir / "splits.json").is_file():
        dm.split_config = {"file": str(ckpt_dir / "splits.json")}  # the very athletes of the first attempt
    if _is_rank_zero():
        dm.prepare_data()
    dm.setup("fit")
    log.info("data: %s", dm.summary())

    rank_zero = _is_rank_zero()
    if rank_zero:
        save_split(dm.split, ckpt_dir / "splits.json")
    mlflow_node = mlflow_logger_node(cfg)
    run_id = tracking_uri = None
    if mlflow_node is not None and rank_zero:
        run_id = _open_mlflow_run(cfg, mlflow_node, ckpt_dir, resume_from, dm)
        tracking_uri = str(mlflow_node.tracking_uri)
        log.info("MLflow run %s at %s", run_id, tracking_uri)

    try:
        return _fit_and_finish(cfg, dm, ckpt_dir, resume_from, run_id, tracking_uri)
    except BaseException as exc:
        # A run that dies here must not stay RUNNING in MLflow for ever (a SIGKILL cannot be caught: the next
        # `resume=true` marks that run KILLED, see training/resume.py).
        if run_id is not None:
            # on Ctrl-C Lightning's loggers have closed it FAILED; it was a kill
            mlflow_run.end_run_after(tracking_uri, run_id, exc)
        raise


def _fit_and_finish(
    cfg: DictConfig, dm: Any, ckpt_dir: Path, resume_from: Path | None, run_id: str | None, tracking_uri: str | None
) -> dict[str, float]:
    module = build_module(cfg, dm)
    module.run_info.update(dm.athletes_source(), mlflow_run_id=run_id, split=dm.split.to_dict(),
                           dataset_dir=str(Path(dm.root).resolve()))
    _init_weights(cfg, module, resume_from)
    loggers = instantiate_loggers(cfg, run_id)
    callbacks = instantiate_callbacks(cfg, ckpt_dir, logging=bool(loggers) and not cfg.trainer.get("fast_dev_run"))
    if str(cfg.trainer.get("strategy") or "auto") != "auto":
        _ddp_entry_point()
    try:
        trainer = hydra.utils.instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, use_distributed_sampler=False
        )
    except Exception as exc:
        raise ConfigError(f"trainer: {exc}") from None

    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None)
    except MisconfigurationException as exc:
        if "could not find the monitored key" not in str(exc):
            raise
        # A monitor (monitor.metric, callbacks.*.monitor) that names no logged metric fails at the first save.
        raise ConfigError(f"a checkpoint callback monitors a metric the run does not log (monitor.metric="
                          f"{cfg.monitor.metric}): {exc}") from None
    checkpoint_cb = _best_checkpoint_callback(trainer)
    best = Path(checkpoint_cb.best_model_path) if checkpoint_cb and checkpoint_cb.best_model_path else None
    # whether the module holds `best`'s weights with their validation windows (the blend validated them)
    validated = False
    if cfg.get("init_blend") is not None and best is not None and best.is_file():
        best, validated = _blend_with_init(cfg, trainer, module, dm, best), True
    if cfg.get("calibrate_presence") and best is not None and best.is_file():
        best = _calibrate_presence(trainer, module, dm, best, validated)
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


def _best_checkpoint_callback(trainer: Any) -> Any:
    """The checkpoint callback that keeps the best by the monitored metric (`callbacks.model_checkpoint`), not
    the one that keeps the latest state (`callbacks.last_checkpoint`, no monitor); None without one."""
    monitored = [cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None)]
    return monitored[0] if monitored else trainer.checkpoint_callback


def _init_weights(cfg: DictConfig, module: Any, resume_from: Path | None) -> None:
    """Start the network from `init_from`'s weights; a resumed run's checkpoint holds its own, which win (its
    provenance still names where the run started)."""
    if not cfg.get("init_from"):
        return
    from valgusml.paths import resolve_in_checkout
    from valgusml.predictor.format import other_training_data, seeds_learnt_from
    from valgusml.training.init_weights import load_initial_weights, read_weights

    if resume_from is not None:
        log.info("init_from=%s not loaded: resuming from %s, whose weights win", cfg.init_from, resume_from)
        path = resolve_in_checkout(cfg.init_from, "init_from")
        source = read_weights(path)[3]
    else:
        path, source = load_initial_weights(module, cfg.init_from)
    module.run_info["init_from"] = {"path": str(cfg.init_from),
                                    "sha256": tracking.file_sha256(path),
                                    "generator_seeds": seeds_learnt_from(source),
                                    "other_training_data": other_training_data(source, own=True)}


@contextmanager
def _unlogged(trainer: Any) -> Iterator[None]:
    """The trainer without its loggers, for the validations after fitting (the blend's, the calibration's):
    they choose the shipped threshold and fill the checkpoint's val metrics, which MLflow gets as `best/val/*`;
    logged, each would add a second point at the last epoch's step to every `val/*` history."""
    loggers = trainer.loggers
    trainer.loggers = []
    try:
        yield
    finally:
        trainer.loggers = loggers


def _blend_with_init(cfg: DictConfig, trainer: Any, module: Any, dm: Any, best: Path) -> Path:
    """`init_blend`: the best checkpoint's network blended with its `init_from` start
    (`init_weights.blend_with_initial`), validated again (the blend's own decision threshold and val metrics) and
    saved beside it as `<best>-blend<share>.ckpt`, which the test, the export and MLflow then use."""
    from valgusml.runs.checkpoint import net_state_dict, read_checkpoint
    from valgusml.training.init_weights import blend_with_initial

    kept = float(cfg.init_blend)
    checkpoint = read_checkpoint(best)
    before = (checkpoint.get("valgusml") or {}).get("val_metrics") or {}
    blend_with_initial(module, net_state_dict(checkpoint["state_dict"]), cfg.init_from, kept)
    module.run_info["init_from"] = {**module.run_info["init_from"], "blend": kept}
    with _unlogged(trainer):
        trainer.validate(module, datamodule=dm, verbose=False)
    blended = best.with_name(f"{best.stem}-blend{kept:g}.ckpt")
    trainer.save_checkpoint(blended)
    monitored = str(cfg.monitor.metric).removeprefix("val/")
    log.info("init_blend=%g: %s keeps that share of its fine-tuned weights, the rest %s's; %s %.4f -> %.4f",
             kept, blended.name, cfg.init_from, cfg.monitor.metric,
             before.get(monitored, float("nan")), module.val_metrics.get(monitored, float("nan")))
    return blended


def _calibrate_presence(trainer: Any, module: Any, dm: Any, best: Path, validated: bool = False) -> Path:
    """`calibrate_presence`: the chosen checkpoint's presence logit mapped by Platt scaling fitted on its
    validation answers (`valgusml.training.calibration`), validated again (threshold and mechanism offsets chosen
    on the calibrated answers) and saved beside it as `<best>-calibrated.ckpt`, which the test, the export and
    MLflow then use. `best` itself where validation cannot fit a map. `validated`: the module already holds
    `best`'s weights and their validation windows (the blend's pass), so they are not loaded and run again."""
    from valgusml.training.calibration import compose, fit_presence_calibration

    if not validated:
        with _unlogged(trainer):
            trainer.validate(module, datamodule=dm, ckpt_path=str(best), verbose=False)
    current = module.bare_net.presence_calibration  # best's own map, if it has one: the fit goes on top
    fitted = fit_presence_calibration(module.val_windows, module.per_recording,
                                      undecided_logit=current["shift"] if current else 0.0)
    if fitted is None:
        return best
    before = dict(module.val_metrics)
    module.calibrate_presence({**fitted, **compose(fitted, current)})
    with _unlogged(trainer):
        trainer.validate(module, datamodule=dm, verbose=False)
    calibrated = best.with_name(f"{best.stem}-calibrated.ckpt")
    trainer.save_checkpoint(calibrated)
    answers = module.presence_calibration  # the head's logit to what the checkpoint answers: best's map and the fit
    log.info("calibrate_presence: %s answers sigmoid(%.3f * logit %+.3f), fitted on %d validation recordings: "
             "validation ECE %.3f -> %.3f, decision threshold %.3f -> %.3f", calibrated.name, answers["scale"],
             answers["shift"], fitted["recordings"], fitted["val_ece_before"], fitted["val_ece_after"],
             before.get("decision_threshold", float("nan")), module.decision_threshold)
    return calibrated


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
        checkpoints = sorted(ckpt_dir.glob("*.ckpt")) + [ckpt_dir / "metrics.json"]
        mlflow_run.log_outputs(tracking_uri, run_id, checkpoints, best, export_dir)
        _log_best_val_metrics(tracking_uri, run_id, metrics, step=trainer.global_step)
        hooks.after_training(run_id, best, export_dir, tracking_uri=tracking_uri)
        mlflow_run.end_run(tracking_uri, run_id)
    summary = {"checkpoint": str(best) if best else None, "export_dir": str(export_dir) if export_dir else None}
    log.info("finished: %s %s", summary, {k: round(v, 4) for k, v in metrics.items()})


def _log_best_val_metrics(tracking_uri: str, run_id: str, metrics: dict[str, float], step: int) -> None:
    """The selected checkpoint's validation metrics as `best/val/*`: what a sweep optimises
    (`optimized_metric`) and the run ships. `val/*` are per epoch, and their latest value is the last epoch's.
    At the run's last step: a resumed run finishes again, and never logs a (key, step) twice."""
    from mlflow.tracking import MlflowClient

    best = {f"best/{k}": v for k, v in metrics.items() if k.startswith("val/")}
    if best:
        tracking.log_metrics(MlflowClient(tracking_uri), run_id, best, step)


# -- entry points ----------------------------------------------------------------------------------------------


def run(overrides: list[str] | None = None) -> tuple[dict[str, float], DictConfig]:
    """One run in this process, as `valgusml train OVERRIDES` would do it (no multirun): for `make run` and
    tests. Returns (metrics, config); the run folder is `cfg.paths.output_dir`."""
    import datetime as dt

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    cfg = compose_config(overrides)
    with open_dict(cfg):
        # as Hydra sets them for `valgusml train`: `paths.root_dir` falls back to the working directory (its
        # `oc.env` default is resolved even where $VALGUSML_ROOT is set)
        cfg.hydra.runtime.cwd = os.getcwd()
        cfg.hydra.job.name = "train"
    HydraConfig().set_config(cfg)
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    output_dir = Path(cfg.paths.log_dir) / str(cfg.task_name) / "runs" / stamp
    with read_write(cfg.hydra), open_dict(cfg):  # set_config made Hydra's node read-only
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig().set_config(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(resolved_config(cfg)))
    return train(cfg), cfg


def _train_app(cfg: DictConfig) -> float | None:
    """The Hydra task: one run; returns `cfg.optimized_metric` for sweepers."""
    try:
        metrics = train(cfg)
    except BaseException as exc:
        if stopped_by_ctrl_c(exc) and sweep_job() is not None:
            _say_how_to_resume_sweep()
        raise
    value = metrics.get(str(cfg.get("optimized_metric")))
    if value is None and _sweeper_optimizes():
        # Optuna would fail the trial as "Return value must be float-castable", run every other trial, and end
        # with "No trials are completed yet".
        raise ConfigError(f"optimized_metric={cfg.get('optimized_metric')} is not a metric this run reports "
                          f"(it reports {sorted(metrics)})")
    return None if value is None else float(value)


def _say_how_to_resume_sweep() -> None:
    """A Ctrl-C'd sweep: how to go on without training its finished jobs again (`resume.py`)."""
    import shlex

    from hydra.core.hydra_config import HydraConfig

    sweep_dir = shlex.quote(str(Path(HydraConfig.get().sweep.dir).resolve()))
    print(f"valgusml train: sweep stopped in job {sweep_job()}; go on with the same command and resume=true "
          f"hydra.sweep.dir={sweep_dir} (finished jobs are not trained again)", file=sys.stderr)


def job_torch_threads(cfg: DictConfig) -> int | None:
    """`torch_threads`; unset, for a job of a local parallel sweep (`hydra/launcher=joblib`), the cores shared
    among the jobs running at once: each job's default, a thread per core, would oversubscribe the CPU as many
    times as jobs run (joblib's `n_jobs`: -1 one per core, -2 all but one, ...). None: torch's default."""
    if cfg.get("torch_threads"):
        return int(cfg.torch_threads)
    if multirun_job_number() is None:
        return None
    from hydra.core.hydra_config import HydraConfig

    launcher = OmegaConf.select(HydraConfig.get(), "launcher") or {}
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    from valgusml.synth.dataset import default_workers

    cores = default_workers()  # the cores this process may use (the generator's own count)
    n_jobs = int(launcher.get("n_jobs") or -1)
    at_once = n_jobs if n_jobs >= 1 else max(1, cores + 1 + n_jobs)
    threads = max(1, cores // min(at_once, cores))
    log.info("torch_threads unset in a joblib sweep of %d jobs at once on %d cores: %d thread(s) per job",
             at_once, cores, threads)
    return threads


def _sweeper_optimizes() -> bool:
    """Whether this job's sweeper reads the value the job returns (Optuna's does; Hydra's basic one does not)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return False
    target = str(OmegaConf.select(HydraConfig.get(), "sweeper._target_", default="") or "")
    return bool(target) and not target.endswith("BasicSweeper")


main = hydra_entry(_train_app, CONFIG_DIR, "train")


if __name__ == "__main__":
    sys.exit(main())
