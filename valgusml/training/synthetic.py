"""Synthetic training data on first use: the generator's output for one config, generated once per config.

The folder name hashes the generator config, size, seed and the generator's version, so a changed config or
generator never reuses (nor refuses) an older set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from valgusml.hydra_app import to_plain
from valgusml.training.windows import config_hash


def synthetic_dataset_dir(data_dir: str | Path, generator: dict[str, Any], n_athletes: int, seed: int) -> Path:
    """Where the synthetic set of this generator config lives: `<data_dir>/synthetic-<config hash>` (the hash
    covers the generator's version: a new generator never reuses, nor refuses, an older one's folder)."""
    from valgusml.synth.generator import GENERATOR_VERSION

    key = {"generator": to_plain(generator), "n_athletes": int(n_athletes), "seed": int(seed),
           "generator_version": GENERATOR_VERSION}
    return Path(data_dir) / f"synthetic-{config_hash(key)}"


def ensure_synthetic(
    data_dir: str | Path, generator: dict[str, Any], n_athletes: int, seed: int, workers: int | None = None
) -> Path:
    """Generate the synthetic set unless it is already there (the generator resumes a partial one).

    One process generates a folder at a time: the parallel jobs of a multirun (`hydra/launcher=joblib`) that need
    the same set wait for the first, then find it written, instead of writing the same files at once.
    """
    out = synthetic_dataset_dir(data_dir, generator, n_athletes, seed)
    if (out / "dataset.json").is_file():
        return out
    from valgusml.synth import generate_dataset, generator_config

    with _exclusive(out.with_name(f".{out.name}.lock")):
        if not (out / "dataset.json").is_file():  # else another job wrote it while this one waited
            generate_dataset(generator_config(generator, n_athletes=int(n_athletes), seed=int(seed)), out,
                             workers=workers)
    return out


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (created if missing) for the block; a no-op without `fcntl`."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
