"""Shared fixtures of the training tests: one tiny labelled dataset per session, and composed configs.

The dataset comes from the real generator (`valgusml.synth`, `realistic` preset, 40 athletes: ~2 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lightning")

N_ATHLETES = 40  # the realistic preset needs ~40 athletes before every mechanism is in training


def make_tiny_dataset(root: Path) -> Path:
    """`N_ATHLETES` athletes of the realistic preset, 8 recordings each."""
    from valgusml.synth import generate_dataset, load_preset

    generate_dataset(load_preset("realistic", n_athletes=N_ATHLETES, seed=0), root, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def base_overrides(root: Path, dataset: Path, cache: Path) -> list[str]:
    """Tiny, quick runs: the session dataset, no progress bar, no export, everything under `root`."""
    return [
        "experiment=smoke",
        "data=folder",
        f"data.dataset_dir={dataset}",
        f"paths.root_dir={root}",
        f"paths.cache_dir={cache}",
        "callbacks.rich_progress_bar=null",
        "trainer.enable_progress_bar=false",
        "trainer.limit_train_batches=3",
        "data.batch_size=16",
        "data.eval_batch_size=64",
        "export=false",
        "torch_threads=1",  # robust to a busy machine: 2 spinning threads on 2 shared cores crawl
    ]


def run_training(overrides: list[str]) -> dict[str, float]:
    """Compose like `valgusml train OVERRIDES` and run `train(cfg)` in this process."""
    from valgusml.training.train import run

    return run(overrides)[0]
