"""Hydra app behind `valgusml generate`: compose `configs/generate.yaml` + a preset, generate, optionally report.

    valgusml generate preset=realistic n_athletes=40 seed=0 out=data/NAME
    valgusml generate preset=clean n_athletes=10 out=data/clean10 preset.noise.enabled=false report=true

Hydra runs in the current directory (no `outputs/` folder, no change of working directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from valgusml.errors import ConfigError
from valgusml.hydra_app import hydra_entry
from valgusml.paths import configs_dir
from valgusml.synth.config import GeneratorConfig
from valgusml.synth.presets import generator_config

CONFIG_PATH = str(configs_dir())


def build_config(cfg: DictConfig) -> GeneratorConfig:
    """The validated generator config from the composed Hydra config (preset + top-level size and seed)."""
    return generator_config(cfg.preset, n_athletes=cfg.n_athletes, seed=cfg.seed)


def run(cfg: DictConfig) -> Path:
    from valgusml.synth.dataset import generate_dataset

    gen = build_config(cfg)
    out = Path(str(cfg.out))
    ds = generate_dataset(gen, out, workers=cfg.workers, progress=bool(cfg.progress), shard_size=int(cfg.shard_size))
    print(f"wrote {len(ds)} sequences of {len(ds.athletes)} athletes to {out} (fingerprint {ds.fingerprint[:16]})")
    if cfg.report:
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
main = hydra_entry(_generate, CONFIG_PATH, "generate")


if __name__ == "__main__":
    sys.exit(main())
