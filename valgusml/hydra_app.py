"""What every Hydra app of valgusml shares: config nodes as plain data, composing a config without running the
app, and the `main(argv)` entry.

Imports only `valgusml.errors`; hydra and omegaconf (training extras) are imported when used, so the modules
that import this stay light.
"""

from __future__ import annotations

import logging
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


def config_integer(key: str, value: Any, minimum: int) -> int:
    """`value` of config `key` (named as the user types it) when it is an integer >= `minimum`, else a
    `ConfigError`: Python's `int()` would cut 2.5 to 2, and 'abc' or -1 would fail deep inside the run."""
    from valgusml.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def config_number(key: str, value: Any) -> float:
    """`value` of config `key` as a float when it is a finite number, else a `ConfigError` (a word, a bool, NaN)."""
    import math

    from valgusml.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def hydra_entry(
    task: Callable[[Any], Any],
    config_dir: str,
    config_name: str,
    translate: Callable[[list[str]], list[str]] | None = None,
) -> Callable[[list[str] | None], int]:
    """`main(argv=None) -> 0`: run `task(cfg)` as a Hydra app over `config_dir/config_name.yaml`.

    `argv` replaces the command line (the `valgusml` CLI passes what follows its subcommand); `translate`, if
    given, rewrites the arguments (from `argv` or the command line) before Hydra reads them. Hydra's own stack
    traces stay short unless HYDRA_FULL_ERROR is set; a valgusml error (`valgusml.errors.ValgusMLError`: a bad
    value, file or folder the user gave) is one line on stderr and exit status 1, not a traceback; in a
    multirun it fails its job alone (`JobFailed`), and the sweep goes on.
    """
    import functools

    import hydra

    from valgusml.errors import ValgusMLError

    @functools.wraps(task)
    def reported(cfg: Any) -> Any:
        try:
            return task(cfg)
        except ValgusMLError as exc:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            command = sys.argv[0] if sys.argv and sys.argv[0].startswith("valgusml") else f"valgusml {config_name}"
            job = _multirun_job()
            if job is not None:
                # SystemExit would end the whole sweep (and kill a joblib worker mid-job): fail this job alone,
                # as Hydra fails a job that raises; the sweeper goes on and stops with the first failure's line.
                message = f"{command}: job {job}: {type(exc).__name__}: {exc}"
                logging.getLogger("valgusml").error(message)
                raise __getattr__("JobFailed")(message) from None
            # Raised inside the job, Hydra would print the traceback; SystemExit passes through it.
            print(f"{command}: {type(exc).__name__}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None

    hydra_main = hydra.main(version_base="1.3", config_path=config_dir, config_name=config_name)(reported)

    def main(argv: list[str] | None = None) -> int:
        if translate is not None:
            argv = translate(list(sys.argv[1:] if argv is None else argv))
        if argv is not None:
            sys.argv = [sys.argv[0] if sys.argv else f"valgusml {config_name}", *argv]
        os.environ.setdefault("HYDRA_FULL_ERROR", "0")
        try:
            hydra_main()
        except ValueError as exc:
            # Hydra's own refusal of its command line (`-m` with `--cfg`, two of `--info`...): a usage error,
            # raised before any job, which would otherwise arrive as a traceback.
            if "can be specified" not in str(exc) or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"{sys.argv[0]}: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        return 0

    return main


def multirun_job_number() -> int | None:
    """This job's number in a multirun (`-m`: a sweep's job, an Optuna trial), None for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return int(HydraConfig.get().job.num)


def split_override(override: str) -> tuple[str, str, str]:
    """`(prefix, key, rest)` of one command-line override: `+preset.a.b=1` → `("+", "preset.a.b", "=1")`."""
    prefix = override[: len(override) - len(override.lstrip("+~"))]
    key, sep, value = override[len(prefix):].partition("=")
    return prefix, key, sep + value


def hydra_overrides(cfg: Any) -> list[str]:
    """The overrides a config was composed from (the command line's, a sweep job's, or `compose`'s)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if HydraConfig.initialized():
        return list(HydraConfig.get().overrides.task)
    return list(OmegaConf.select(cfg, "hydra.overrides.task", default=None) or [])


def _multirun_job() -> str | None:
    """`#N (its folder)` for a job of a multirun, None for a single run."""
    from hydra.core.hydra_config import HydraConfig

    number = multirun_job_number()
    return None if number is None else f"#{number} ({HydraConfig.get().runtime.output_dir})"


def __getattr__(name: str) -> Any:
    """`JobFailed`, made on first use (this module must not import hydra as it loads): a sweep job's valgusml
    error, a `CompactHydraException` so that Hydra prints its one line, not a traceback. A module attribute, so
    that a joblib worker's failure pickles back to the launching process."""
    if name != "JobFailed":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from hydra.errors import CompactHydraException

    job_failed = globals().get("_JobFailed")
    if job_failed is None:
        job_failed = globals()["_JobFailed"] = type("JobFailed", (CompactHydraException,), {"__module__": __name__})
    return job_failed


def compose(config_dir: str, config_name: str, overrides: list[str], what: str, return_hydra_config: bool = False) -> Any:
    """The config an app would run with for `overrides` (for `make run` and tests), without running the app.

    Hydra's own errors (unknown group, key or option) come back as `ConfigError` naming the overrides.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from valgusml.errors import ConfigError

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad {what} config ({' '.join(overrides)}): {exc}") from None
    finally:
        GlobalHydra.instance().clear()
