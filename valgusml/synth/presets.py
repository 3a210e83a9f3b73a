"""The one path from a preset and overrides to a validated `GeneratorConfig`: `generator_config`.

Presets are the Hydra config group `configs/preset/`: `realistic.yaml` is complete, and the others inherit it
through Hydra's defaults list (`defaults: [realistic, _self_]`) and list only what differs. Hydra composes a
preset the same way for every caller: inside the Hydra apps (`valgusml generate preset=hard`, `data=synthetic`)
and here, by name, for `load_preset`.

Overrides accept dotted paths (`**{"noise.dropout_fraction": 0.1}`), `__` paths (`noise__dropout_fraction=0.1`),
a bare leaf name that is unique across sections (`skeleton="coco17"`, `yaw_deg=(0, 10)`) or a section with a
mapping (`camera={"yaw_deg": [0, 10]}`, which sets those leaves only). A leaf is replaced whole, a mapping-valued
leaf such as `mechanisms.probabilities` too. OmegaConf applies them; the typed conversion and the checks run
once, at the end (`GeneratorConfig.from_dict`): OmegaConf's structured configs cannot type the config's
`(low, high)` tuples, so the schema converts the plain result itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from typing import Any

from valgusml.errors import ConfigError
from valgusml.hydra_app import to_plain
from valgusml.paths import configs_dir
from valgusml.synth.config import SECTIONS, GeneratorConfig

GROUP = "preset"


def preset_names() -> list[str]:
    return sorted(p.stem for p in (configs_dir() / GROUP).glob("*.yaml"))


@cache
def _composed(name: str) -> dict[str, Any]:
    # Hydra's config loader, not `hydra.compose`: the latter needs Hydra's global state, which a running Hydra
    # app (evaluation, a user's own app) already holds for its own config folder.
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(configs_dir())))
    try:
        composed = loader.load_configuration(config_name=None, overrides=[f"+{GROUP}={name}"], run_mode=RunMode.RUN)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"preset {name!r} does not compose: {exc}") from None
    data = OmegaConf.to_container(composed[GROUP], resolve=True)
    if not isinstance(data, dict):
        raise ConfigError(f"{configs_dir() / GROUP / name}.yaml: a preset must be a mapping")
    return data


def preset_dict(name: str) -> dict[str, Any]:
    """The preset `name` as Hydra composes it (its base first, then its own keys): plain data."""
    if not (configs_dir() / GROUP / f"{name}.yaml").is_file():
        raise ConfigError(f"config key 'preset': unknown preset {name!r}; available: {preset_names()}")
    return {"preset": name, **_composed(name)}


@cache
def _leaf_paths() -> dict[str, list[str]]:
    """Leaf name → its dotted paths (for bare-name overrides)."""
    out: dict[str, list[str]] = {}
    for f in fields(GeneratorConfig):
        if f.name in SECTIONS:
            for g in fields(f.default_factory):  # type: ignore[arg-type]
                out.setdefault(g.name, []).append(f"{f.name}.{g.name}")
        else:
            out.setdefault(f.name, []).append(f.name)
    return out


def override_paths(key: str, value: Any) -> list[tuple[str, Any]]:
    """`(dotted path, value)` assignments for one override in any of the accepted forms."""
    path = key.replace("__", ".")
    if "." not in path and path not in SECTIONS:
        candidates = _leaf_paths().get(path, [])
        if len(candidates) > 1:
            raise ConfigError(f"config key {key!r} is ambiguous: say one of {candidates}")
        if candidates:
            path = candidates[0]
    value = to_plain(value)
    if path in SECTIONS and isinstance(value, Mapping):
        return [(f"{path}.{leaf}", v) for leaf, v in value.items()]
    return [(path, value)]


def generator_config(preset: str | Mapping[str, Any] | Any = "realistic", **overrides: Any) -> GeneratorConfig:
    """A validated `GeneratorConfig` from a preset, given by name or as a composed mapping (a Hydra node, a
    dataset's `generator.json` config), with `overrides` applied in order. Every caller goes through here."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = preset_dict(preset) if isinstance(preset, str) else to_plain(preset)
    if not isinstance(base, Mapping):
        raise ConfigError(f"a generator preset must be a name or a mapping, got {base!r}")
    # allow_objects: override values are checked by the schema, not by OmegaConf (numpy numbers, tuples, ...)
    node = OmegaConf.create(dict(base), flags={"allow_objects": True})
    for key, value in overrides.items():
        for path, leaf in override_paths(key, value):
            try:
                OmegaConf.update(node, path, leaf, merge=False, force_add=True)
            except OmegaConfBaseException as exc:
                raise ConfigError(f"config key {path!r}: cannot set it to {leaf!r} ({exc})") from None
    cfg = GeneratorConfig.from_dict(OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]
    if cfg.motion.real_fraction > 0:  # the files, not the schema: checked here, where presets become configs
        from valgusml.synth.recordings import recordings

        recordings(cfg.motion.real_paths)  # ConfigError when the source is unavailable
    return cfg


def load_preset(name: str = "realistic", **overrides: Any) -> GeneratorConfig:
    """A validated `GeneratorConfig` from `configs/preset/NAME.yaml` with `overrides` applied."""
    return generator_config(name, **overrides)

