"""Hydra app behind `valgusml generate`: compose `configs/generate.yaml` + a preset, generate, optionally report.

    valgusml generate preset=realistic n_athletes=40 seed=0 out=data/NAME
    valgusml generate preset=clean n_athletes=10 out=data/clean10 preset.noise.enabled=false report=true
    valgusml generate observation.duration_s=[2,8] out=data/short    # = preset.observation.duration_s=[2,8]

Hydra runs in the current directory (no `outputs/` folder, no change of working directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from valgusml.errors import ConfigError
from valgusml.hydra_app import config_integer, hydra_entry, split_override
from valgusml.paths import configs_dir
from valgusml.synth.config import SECTIONS, GeneratorConfig
from valgusml.synth.presets import generator_config, preset_names

CONFIG_PATH = str(configs_dir())
# The top-level keys of configs/generate.yaml (besides `preset` and `hydra`).
APP_KEYS = ("n_athletes", "seed", "out", "workers", "shard_size", "progress", "report")


def generate_overrides(overrides: list[str]) -> list[str]:
    """The command line as Hydra must read it, or a `ConfigError` naming the first key it cannot set.

    A generator section may be named without `preset.` (`observation.duration_s=[2,8]`); the preset's
    `n_athletes` and `seed` are the top-level keys (the preset's own are not read). A generator key is set with
    `++`, so that a misspelt one reaches the schema's check (one line naming it) instead of Hydra's traceback-like
    struct error; a top-level key the app does not read is refused here, where Hydra's `+key=` would add it and
    the run would ignore it.
    """
    # a preset of another config folder (`--config-dir`, `hydra.searchpath`) is Hydra's to find
    own_presets = not any(o.startswith(("--config-dir", "-cd", "hydra.searchpath")) for o in overrides)
    out = []
    for override in overrides:
        prefix, key, rest = split_override(override)
        if override.startswith("-") or not rest or "/" in key or key.startswith("hydra."):
            out.append(override)  # flags (--help, --cfg job), group choices of Hydra's own, `~key`
            continue
        head = key.split(".", 1)[0]
        if head in SECTIONS:
            key, head = f"preset.{key}", "preset"
        if key in ("preset.n_athletes", "preset.seed"):
            key = head = key.split(".", 1)[1]
        if key == "preset":
            name = rest[1:]
            if own_presets and name not in preset_names():
                raise ConfigError(f"config key 'preset': unknown preset {name!r}; available: {preset_names()}")
        elif head == "preset":
            prefix = prefix or "++"
        elif head not in APP_KEYS or key != head:
            raise ConfigError(f"unknown config key {key!r}: set one of {list(APP_KEYS)}, `preset=NAME` or a "
                              f"generator key (`preset.SECTION.KEY=` or `SECTION.KEY=`, SECTION one of {list(SECTIONS)})")
        out.append(f"{prefix}{key}{rest}")
    return out


def _checked_overrides(overrides: list[str]) -> list[str]:
    """`generate_overrides`, its `ConfigError` one line on stderr (exit status 2) before Hydra starts."""
    try:
        return generate_overrides(overrides)
    except ConfigError as exc:
        print(f"valgusml generate: {exc}", file=sys.stderr)
        sys.exit(2)


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):  # a word would be truthy: `report=maybe` wrote a report
        raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
    return value


def _out_folder(value: object) -> Path:
    if not isinstance(value, str) or not value.strip():  # `out=null` would write into ./None
        raise ConfigError(f"config key 'out' must be a folder path, got {value!r}")
    return Path(value)


def build_config(cfg: DictConfig) -> GeneratorConfig:
    """The validated generator config from the composed Hydra config (preset + top-level size and seed)."""
    return generator_config(cfg.preset, n_athletes=cfg.n_athletes, seed=cfg.seed)


def run(cfg: DictConfig) -> Path:
    from valgusml.synth.dataset import generate_dataset

    gen = build_config(cfg)
    out = _out_folder(cfg.out)
    workers = None if cfg.workers is None else config_integer("config key 'workers'", cfg.workers, 1)
    shard_size = config_integer("config key 'shard_size'", cfg.shard_size, 1)
    report = _flag("report", cfg.report)
    ds = generate_dataset(gen, out, workers=workers, progress=_flag("progress", cfg.progress), shard_size=shard_size)
    print(f"wrote {len(ds)} sequences of {len(ds.athletes)} athletes to {out} (fingerprint {ds.fingerprint[:16]})")
    if report:
        from valgusml.synth.validation import write_report

        written = write_report(out, out / "report")
        print(f"validation report: {written}")
    return out


def _generate(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except ConfigError as exc:
        print(f"valgusml generate: {exc}", file=sys.stderr)
        sys.exit(2)


# Entry point for `valgusml generate`; `main(argv)` takes Hydra overrides (defaults to sys.argv[1:]).
main = hydra_entry(_generate, CONFIG_PATH, "generate", translate=_checked_overrides)


if __name__ == "__main__":
    sys.exit(main())
