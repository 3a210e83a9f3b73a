"""`valgusml train -m ...` as the README gives it: no `paths.root_dir`, so every path hangs on
`${hydra:runtime.cwd}`, which Hydra resolves only once a job starts; and parallel jobs that need the same
synthetic set, not yet generated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig

from valgusml.training.hydra_callbacks import PrepareTracking
from valgusml.training.train import compose_config

REPO = Path(__file__).resolve().parents[2]


def test_sweep_dir_resolves_in_the_launching_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VALGUSML_ROOT", raising=False)
    cfg = compose_config(["experiment=smoke", "logger=none"])
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # a multirun's launching process, before any job
    with pytest.raises(Exception, match="HydraConfig was not set"):
        str(cfg.hydra.sweep.dir)
    PrepareTracking().on_multirun_start(config=cfg)
    assert Path(str(cfg.hydra.sweep.dir)).parent == tmp_path / "logs" / "smoke" / "multiruns"
    cfg.hydra.sweep.subdir = "0"  # and the master config's hydra node is left writable, as Hydra left it


@pytest.mark.slow
def test_parallel_multirun_from_a_bare_folder(tmp_path):
    """Two joblib jobs from a folder with no data: one generates the set, the other waits and reuses it."""
    args = [
        "-m", "model=tcn,gru", "hydra/launcher=joblib", "experiment=smoke", "test=false", "export=false",
        "trainer.max_epochs=1", "trainer.limit_train_batches=3", "callbacks.rich_progress_bar=null",
        "trainer.enable_progress_bar=false", "torch_threads=1",
    ]
    env = {k: v for k, v in os.environ.items() if k != "VALGUSML_ROOT"}
    proc = subprocess.run(
        [sys.executable, "-m", "valgusml.train", *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert len(list(tmp_path.glob("logs/smoke/multiruns/*/[01]/checkpoints/best-epoch*.ckpt"))) == 2
    (dataset,) = tmp_path.glob("data/synthetic-*")
    assert (dataset / "dataset.json").is_file()
