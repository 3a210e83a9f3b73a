"""The evaluation app's config: command-line shorthands, and composing it as `valgusml evaluate OVERRIDES` would."""

from __future__ import annotations

from omegaconf import DictConfig

from valgusml.hydra_app import compose
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
