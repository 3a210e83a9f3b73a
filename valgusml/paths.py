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


def relative_to_checkout(path: str | Path | None) -> str | None:
    """`path` relative to the checkout when it lies inside it, else as given: what an exported folder records of
    where it came from (the run's checkpoint) must not name one machine's folders, and `find_in_checkout`
    finds it again from any working directory of any clone."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def find_in_checkout(path: str | Path, *, folder: bool = False) -> Path | None:
    """`path` as given (absolute, or relative to the working directory), else relative to the checkout, so what
    the checkout ships (`data/pretrained/...`) or names relative to itself is found from any working directory;
    None when neither is a folder (`folder=True`) or a file."""
    exists = Path.is_dir if folder else Path.is_file
    return next((candidate for candidate in (Path(path), REPO_ROOT / path) if exists(candidate)), None)


def resolve_in_checkout(path: str | Path, what: str, *, folder: bool = False, noun: str | None = None) -> Path:
    """`find_in_checkout`, with a `ConfigError` naming `what` (the config key) when nothing is there; `noun`
    says what was sought."""
    found = find_in_checkout(path, folder=folder)
    if found is not None:
        return found
    noun = noun or ("folder" if folder else "file")
    raise ConfigError(f"{what}={path}: no such {noun} (here or in the checkout {REPO_ROOT})")
