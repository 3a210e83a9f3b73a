"""The training app's config: composed as `valgusml train OVERRIDES` composes it, checked before any work starts,
and turned into plain data for logging."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from valgusml.errors import ConfigError, InputError
from valgusml.hydra_app import compose, config_integer, config_number, to_plain
from valgusml.paths import configs_dir, resolve_in_checkout

log = logging.getLogger(__name__)

CONFIG_DIR = str(configs_dir())


def compose_config(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """Compose the training config as `valgusml train OVERRIDES` would (for tests and `make run`).

    Hydra's own errors (unknown group, key or option) come back as `ConfigError` naming the override.
    """
    return compose(CONFIG_DIR, config_name, list(overrides or []), "training", return_hydra_config=True)


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain data, without Hydra's own section (what is logged and saved)."""
    return {k: to_plain(cfg[k]) for k in cfg if k != "hydra"}


def apply_leave_out(cfg: DictConfig) -> None:
    """With `leave_out=NAME` (configs/leave_out/), merge its `train` generator overrides into the training data's
    generator config in place, so the run's logged config, dataset and fingerprint are those of the data it
    trained on. A run on a dataset folder has no generator to leave a factor out of."""
    left_out = cfg.get("leave_out")
    if not left_out:
        return
    name = left_out.get("name")
    if cfg.data.get("generator") is None:
        raise ConfigError(f"leave_out={name} needs synthetic training data (data=synthetic): it "
                          "removes a factor from the generator config")
    if cfg.get("init_from"):
        # Pretrained weights saw every level; a fine-tuning schedule without them would train a weak network.
        raise ConfigError(f"leave_out={name}: init_from={cfg.init_from} was trained on every level of the factor; "
                          f"train from scratch: experiment=default_scratch leave_out={name} (or init_from=null init_blend=null)")
    if cfg.data.get("extra_train_dirs"):
        # Data the generator did not write (real mocap, filmed views) may hold the left-out level: the shift
        # suite would then score a level the network trained on.
        raise ConfigError(f"leave_out={name}: data.extra_train_dirs={list(cfg.data.extra_train_dirs)} may hold the "
                          "left-out level; train the leave-out run on the generator's data alone "
                          "(data.extra_train_dirs=[])")
    # The preset sets only some of the generator's keys; the left-out factor may name others (struct mode off).
    merged = OmegaConf.merge(OmegaConf.create(to_plain(cfg.data.generator)), to_plain(left_out.train))
    with open_dict(cfg.data):
        cfg.data.generator = merged
        if cfg.data.get("teacher"):
            # A teacher trained on every level would hand the left-out one to the network through its targets.
            log.warning("leave_out=%s: training without data.teacher=%s, which saw every level",
                        name, cfg.data.teacher)
            cfg.data.teacher = None


def check_config(cfg: DictConfig) -> None:
    """Catch what would otherwise fail deep inside training, before any work starts."""
    for key in ("data", "model", "trainer", "module", "paths"):
        if cfg.get(key) is None:
            raise ConfigError(f"config has no {key!r} section")
    if cfg.get("ckpt_path"):
        if not Path(cfg.ckpt_path).is_file():
            raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist")
        from valgusml.errors import ModelFileError
        from valgusml.runs.checkpoint import read_checkpoint

        try:  # a file that is not a training checkpoint fails inside Lightning's loader otherwise
            read_checkpoint(cfg.ckpt_path)
        except ModelFileError as exc:
            raise ConfigError(f"ckpt_path: {exc}") from None
    if cfg.get("init_from"):
        resolve_in_checkout(cfg.init_from, "init_from", noun="weights file or checkpoint")
    blend = cfg.get("init_blend")
    if blend is not None:
        if not cfg.get("init_from"):
            raise ConfigError(f"init_blend={blend} blends the trained weights with init_from's, and init_from is not set")
        from valgusml.training.init_weights import check_blend_share

        check_blend_share(blend)
    data = cfg.data
    if OmegaConf.is_missing(data, "dataset_dir"):
        raise ConfigError("data=folder needs data.dataset_dir=PATH (a dataset folder, e.g. from `valgusml convert`)")
    if data.get("teacher"):
        from valgusml.training.teacher import resolve_teacher

        resolve_teacher(data.teacher)
    if data.get("dataset_dir") and not Path(data.dataset_dir).is_dir():
        raise InputError(
            f"data.dataset_dir={data.dataset_dir} does not exist; make a dataset with `valgusml convert` or "
            "`valgusml generate`, or use data=synthetic"
        )
    config_integer("seed", cfg.get("seed"), 0)
    if cfg.get("torch_threads") is not None:
        config_integer("torch_threads", cfg.torch_threads, 1)
    _check_data(data)
    _check_module(cfg.module)
    _check_trainer(cfg.trainer)
    if cfg.trainer.get("max_epochs") is not None:
        # Lightning reads -1 as "train for ever"; the schedulers' step counts then overflow.
        config_integer("trainer.max_epochs", cfg.trainer.max_epochs, 1)
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


def _check_data(data: DictConfig) -> None:
    """The data section's sizes, split and extra folders (the data module would truncate, or fail in numpy)."""
    from valgusml.data.splits import METHODS

    if data.get("generator") is not None:
        config_integer("data.n_athletes", data.get("n_athletes"), 1)
        config_integer("data.generator_seed", data.get("generator_seed"), 0)
        from valgusml.synth import generator_config

        try:  # the generator names its keys from its own root; here they sit under data.generator
            generator_config(to_plain(data.generator), n_athletes=int(data.n_athletes), seed=int(data.generator_seed))
        except ConfigError as exc:
            raise ConfigError(f"data.generator: {exc}") from None
    for key in ("batch_size", "eval_batch_size"):
        if key in data:
            config_integer(f"data.{key}", data.get(key), 1)
    split = data.get("split") or {}
    method = split.get("method", "fractions")
    if method not in METHODS:
        raise ConfigError(f"data.split.method must be one of {METHODS}, got {method!r}")
    fractions = {}
    for key in ("val_fraction", "test_fraction"):
        if split.get(key) is not None:
            fractions[key] = config_number(f"data.split.{key}", split.get(key))
            if not 0.0 <= fractions[key] < 1.0:
                raise ConfigError(f"data.split.{key} must be in [0, 1), got {split.get(key)!r}")
    if method == "fractions" and sum(fractions.values()) >= 1.0:
        raise ConfigError(f"data.split.val_fraction + data.split.test_fraction must be < 1 (training keeps the rest), "
                          f"got {split.get('val_fraction')} + {split.get('test_fraction')}")
    if method == "group_kfold":
        config_integer("data.split.n_folds", split.get("n_folds"), 2)
        config_integer("data.split.fold", split.get("fold"), 0)
        if split.fold >= split.n_folds:
            raise ConfigError(f"data.split.fold must be in [0, {split.n_folds - 1}] (data.split.n_folds={split.n_folds}), "
                              f"got {split.fold}")
    for folder in data.get("extra_train_dirs") or []:
        if not (Path(str(folder)) / "dataset.json").is_file():
            raise ConfigError(f"data.extra_train_dirs: {folder} is not a dataset folder (no dataset.json); make one "
                              "with `valgusml convert` or `valgusml generate`")


def _accelerator_kinds(accelerator: Any) -> tuple[list[str], list[str]]:
    """`(the registry names trainer.accelerator stands for, every registered name)`; "gpu" is Lightning's alias
    of whichever GPU kind a machine has."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    known = sorted(AcceleratorRegistry.available_accelerators())
    return ([name for name in ("cuda", "mps") if name in known] if accelerator == "gpu" else [accelerator]), known


def check_accelerator_available(trainer: DictConfig) -> None:
    """This machine has the accelerator the config names (Lightning says so only after the data is generated
    and prepared, in several lines, or with a pip hint for an accelerator the machine has no use for). Apart
    from `check_config`: a GPU recipe is a valid config on a machine without a GPU."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    accelerator = trainer.get("accelerator", "auto")
    if accelerator == "auto":
        return
    kinds, known = _accelerator_kinds(accelerator)
    if not any(AcceleratorRegistry[k]["accelerator"].is_available() for k in kinds):
        usable = [k for k in known if AcceleratorRegistry[k]["accelerator"].is_available()]
        raise ConfigError(f"trainer.accelerator={accelerator}: this machine has none (usable here: {usable}); "
                          "train with trainer=cpu, or trainer.accelerator=auto")


def _check_trainer(trainer: DictConfig) -> None:
    """The accelerator's name and the device count, which Lightning checks only once the data is prepared."""
    accelerator = trainer.get("accelerator", "auto")
    kinds, known = _accelerator_kinds(accelerator)
    if accelerator != "auto" and not all(isinstance(k, str) and k in known for k in kinds):
        raise ConfigError(f"trainer.accelerator must be one of {['auto', 'gpu', *known]}, got {accelerator!r}")
    devices = trainer.get("devices", "auto")
    if devices in ("auto", -1, "-1"):
        return
    listed = list(devices) if OmegaConf.is_list(devices) else None
    if listed is not None:
        if not listed or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in listed):
            raise ConfigError(f"trainer.devices as a list names device indices (integers >= 0), got {listed}")
        return
    config_integer("trainer.devices", devices, 1)


def _check_module(module: DictConfig) -> None:
    """The optimiser's learning rate and the schedule's name (torch and Lightning would raise mid-set-up)."""
    from valgusml.training.module import SCHEDULERS

    optimizer = module.get("optimizer") or {}
    if "lr" in optimizer:
        lr = config_number("module.optimizer.lr", optimizer.get("lr"))
        if lr < 0:  # a negative rate climbs the loss; 0 keeps the start's weights (validated and exported as they are)
            raise ConfigError(f"module.optimizer.lr must be >= 0, got {optimizer.get('lr')!r}")
    name = (module.get("scheduler") or {}).get("name", "none")
    if name not in SCHEDULERS:
        raise ConfigError(f"module.scheduler.name must be one of {SCHEDULERS}, got {name!r}")
