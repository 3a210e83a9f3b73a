"""The training app's config: composed as `valgusml train OVERRIDES` composes it, checked before any work starts,
and turned into plain data for logging."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from valgusml.errors import ConfigError, InputError
from valgusml.hydra_app import compose, to_plain
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
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist")
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
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and (isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1):
        # Lightning reads -1 as "train for ever"; the schedulers' step counts then overflow.
        raise ConfigError(f"trainer.max_epochs must be an integer >= 1, got {max_epochs!r}")
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
