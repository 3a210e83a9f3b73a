"""The evaluation app's config: command-line shorthands, and composing it as `valgusml evaluate OVERRIDES` would."""

from __future__ import annotations

from omegaconf import DictConfig

from valgusml.errors import ConfigError
from valgusml.hydra_app import compose, config_integer, config_number
from valgusml.paths import configs_dir

CONFIG_DIR = str(configs_dir())


def translate_overrides(overrides: list[str]) -> list[str]:
    """Command-line shorthands. `model=DIR` → `predictor=DIR`: `configs/model/` is the training app's network
    group, so Hydra would read `model=...` as a choice of that group. `robustness=true|false` →
    `robustness.enabled=...` (robustness is a section)."""
    out = []
    for o in overrides:
        if o.startswith("model="):
            o = "predictor=" + o.split("=", 1)[1]
        elif o.startswith("robustness=") and o.split("=", 1)[1].lower() in ("true", "false"):
            o = "robustness.enabled=" + o.split("=", 1)[1].lower()
        out.append(o)
    return out


def compose_eval_config(overrides: list[str] | None = None) -> DictConfig:
    """The config `valgusml evaluate OVERRIDES` would run with (for `make run` and tests)."""
    return compose(CONFIG_DIR, "eval", translate_overrides(list(overrides or [])), "evaluation")


def check_eval_config(cfg: DictConfig) -> None:
    """Catch, before any scoring, the values that would fail deep inside numpy (a negative replicate count, a
    CI level of 95) or be silently ignored (a threshold rule used only when validation holds both classes, a
    cap of 0 athletes read as no cap)."""
    from valgusml.scoring.thresholds import RULES

    if cfg.get("threshold_rule") not in RULES:
        raise ConfigError(f"threshold_rule must be one of {RULES}, got {cfg.get('threshold_rule')!r}")
    bootstrap = cfg.get("bootstrap") or {}
    config_integer("bootstrap.n_boot", bootstrap.get("n_boot"), 1)
    config_integer("bootstrap.seed", bootstrap.get("seed"), 0)
    level = bootstrap.get("level")
    if not 0 < config_number("bootstrap.level", level) < 1:
        raise ConfigError(f"bootstrap.level must be a fraction in (0, 1) (0.95 for 95% CIs), got {level!r}")
    if cfg.get("max_athletes") is not None:
        config_integer("max_athletes", cfg.max_athletes, 1)
    robustness = cfg.get("robustness") or {}
    for key in ("n_boot", "max_athletes", "trials_per_athlete"):
        if key in robustness:
            config_integer(f"robustness.{key}", robustness.get(key), 1)
