"""Where the checkout's folders are. `configs/` (the Hydra configs and the generator presets) lives beside the
package, not inside it: the apps that read it run from a checkout (an editable install finds it too)."""

from __future__ import annotations

from pathlib import Path

from valgusml.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def configs_dir() -> Path:
    """The checkout's `configs/` folder; `ConfigError` when this package was installed without one."""
    path = REPO_ROOT / "configs"
    if not path.is_dir():
        raise ConfigError(
            f"no configs/ folder at {path}: the Hydra apps and generator presets need a checkout of valgusml "
            "(git clone, then pip install -e .)"
        )
    return path
