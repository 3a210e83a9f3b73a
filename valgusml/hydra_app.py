"""What every Hydra app of valgusml shares: config nodes as plain data, and the `main(argv)` entry.

Imports nothing of valgusml; hydra and omegaconf (training extras) are imported only when used, so the
modules that import this stay light.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any


def to_plain(value: Any) -> Any:
    """DictConfig/ListConfig → plain containers, resolved (hyper-parameters, hashes and logged params must not
    hold OmegaConf nodes); anything else is returned as it is."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with hydra, a training dependency
        return value
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def hydra_entry(
    task: Callable[[Any], Any],
    config_dir: str,
    config_name: str,
    translate: Callable[[list[str]], list[str]] | None = None,
) -> Callable[[list[str] | None], int]:
    """`main(argv=None) -> 0`: run `task(cfg)` as a Hydra app over `config_dir/config_name.yaml`.

    `argv` replaces the command line (the `valgusml` CLI passes what follows its subcommand); `translate`, if
    given, rewrites the arguments (from `argv` or the command line) before Hydra reads them. Hydra's own stack
    traces stay short unless HYDRA_FULL_ERROR is set.
    """
    import hydra

    hydra_main = hydra.main(version_base="1.3", config_path=config_dir, config_name=config_name)(task)

    def main(argv: list[str] | None = None) -> int:
        if translate is not None:
            argv = translate(list(sys.argv[1:] if argv is None else argv))
        if argv is not None:
            sys.argv = [sys.argv[0] if sys.argv else f"valgusml {config_name}", *argv]
        os.environ.setdefault("HYDRA_FULL_ERROR", "0")
        hydra_main()
        return 0

    return main
