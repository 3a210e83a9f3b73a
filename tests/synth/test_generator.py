"""Datasets: deterministic bytes whatever the workers, resumable after a kill, refused on a config mismatch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from valgusml import ConfigError
from valgusml.data.format import open_dataset
from valgusml.synth import generate_dataset, generate_sequences, load_preset

REPO = Path(__file__).resolve().parents[2]


def small(**overrides):
    base = {"n_athletes": 6, "tasks.trials_per_athlete": 2}
    base.update(overrides)
    return load_preset("realistic", **base)


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "shards").iterdir()) if not p.name.startswith(".")}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    cfg = small()
    a = generate_dataset(cfg, tmp_path / "a", workers=1, progress=False, shard_size=4)
    b = generate_dataset(cfg, tmp_path / "b", workers=1, progress=False, shard_size=4)
    c = generate_dataset(cfg, tmp_path / "c", workers=2, progress=False, shard_size=4)
    assert len(a) == 12 and len(a.athletes) == 6 and len(a.header["shards"]) == 3
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b") == shard_bytes(tmp_path / "c")
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert a.meta["generator"]["config"]["seed"] == 0  # the full config is recorded
    other = generate_dataset(small(seed=1), tmp_path / "d", workers=1, progress=False, shard_size=4)
    assert other.fingerprint != a.fingerprint


def test_dataset_matches_in_memory_sequences(tmp_path):
    cfg = small(n_athletes=2)
    ds = generate_dataset(cfg, tmp_path / "a", workers=1, progress=False, shard_size=4)
    seqs = list(generate_sequences(cfg, range(2)))
    assert [s.id for s in seqs] == [r["id"] for r in ds.manifest]
    for k, seq in enumerate(seqs):
        stored = ds[k]
        np.testing.assert_array_equal(stored.keypoints, seq.keypoints)
        np.testing.assert_array_equal(stored.confidence, seq.confidence)
        assert stored.labels == seq.labels and stored.task == seq.task and stored.fps == seq.fps


def test_a_dataset_regenerates_from_its_generator_json_whatever_the_key_order(tmp_path):
    """`generator.json` stores its keys sorted; the weights of tasks, views, families and mechanisms are read in
    their canonical order, so the recorded config (and any reordering of it) draws the trials the dataset holds
    (the shift suites regenerate held-out athletes from it)."""
    from valgusml.evaluation.robustness import generator_config_of
    from valgusml.synth import generator_config

    cfg = small(n_athletes=3, **{"tasks.trials_per_athlete": 4})
    ds = generate_dataset(cfg, tmp_path / "a", workers=1, progress=False, shard_size=4)
    recorded = generator_config_of(tmp_path / "a")
    assert list(recorded["tasks"]["probabilities"]) == sorted(cfg.tasks.probabilities)  # as stored
    reversed_weights = json.loads(json.dumps(cfg.to_dict()))
    for section, key in (("tasks", "probabilities"), ("camera", "views"), ("noise", "families"),
                         ("mechanisms", "probabilities"), ("mechanisms", "side_probabilities")):
        reversed_weights[section][key] = dict(reversed(list(reversed_weights[section][key].items())))
    for config in (recorded, reversed_weights):
        again = list(generate_sequences(generator_config(config), range(3)))
        assert [s.id for s in again] == [r["id"] for r in ds.manifest]
        for k, seq in enumerate(again):
            assert ds[k].task == seq.task and ds[k].meta["camera"] == seq.meta["camera"]
            np.testing.assert_array_equal(ds[k].keypoints, seq.keypoints)


SLOW_WRITER = """
import sys, time
import valgusml.synth.dataset as gen
from valgusml.synth import load_preset
original = gen._shard_job
def slow(*args):
    result = original(*args)
    time.sleep(0.4)  # leaves the test time to kill us between shards
    return result
gen._shard_job = slow
cfg = load_preset("realistic", n_athletes=6, **{"tasks.trials_per_athlete": 2})
gen.generate_dataset(cfg, sys.argv[1], workers=1, progress=False, shard_size=2)
"""


def test_resume_after_kill_redoes_only_missing_shards(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(out)], cwd=REPO)
    try:
        deadline = time.time() + 40
        while time.time() < deadline and len(list((out / "shards").glob("*.done.json"))) < 2:
            time.sleep(0.02)
            assert proc.poll() is None, "writer finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.done.json")}
    assert 2 <= len(done) < 6 and not (out / "dataset.json").exists()

    cfg = small()
    resumed = generate_dataset(cfg, out, workers=1, progress=False, shard_size=2)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.done.json") if p.name in done} == done
    fresh = generate_dataset(cfg, tmp_path / "fresh", workers=1, progress=False, shard_size=2)
    assert shard_bytes(out) == shard_bytes(tmp_path / "fresh")
    assert resumed.fingerprint == fresh.fingerprint and len(resumed) == 12


POOLED_WRITER = """
import sys
from valgusml.synth import generate_dataset, load_preset
cfg = load_preset("realistic", n_athletes=300, **{"tasks.trials_per_athlete": 2})
generate_dataset(cfg, sys.argv[1], workers=2, progress=False, shard_size=2)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker pids from /proc (Linux)")
def test_workers_exit_when_the_generator_is_killed(tmp_path, process_running):
    """A SIGKILLed generator cannot shut its pool down: its spawned workers must notice and exit, not wait for
    work for ever (holding its stdout and stderr open)."""
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", POOLED_WRITER, str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list((out / "shards").glob("*.done.json")):
            time.sleep(0.05)
            assert proc.poll() is None, "generator ended before it could be killed"
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        workers = [int(pid) for pid in children
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 5
        while time.time() < deadline and any(map(process_running, workers)):
            time.sleep(0.1)
        assert not [pid for pid in workers if process_running(pid)], "workers outlived the killed generator"
    finally:
        proc.kill()
        proc.wait()
        for pid in workers:
            if process_running(pid):
                os.kill(pid, signal.SIGKILL)


def test_config_mismatch_is_refused(tmp_path):
    out = tmp_path / "ds"
    generate_dataset(small(n_athletes=2), out, workers=1, progress=False, shard_size=4)
    with pytest.raises(ConfigError, match="different config.*n_athletes"):
        generate_dataset(small(n_athletes=3), out, workers=1, progress=False, shard_size=4)
    with pytest.raises(ConfigError, match="shard_size"):
        generate_dataset(small(n_athletes=2), out, workers=1, progress=False, shard_size=2)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a generator output folder"):
        generate_dataset(small(n_athletes=2), tmp_path / "other", workers=1, progress=False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "generator.json").write_text("{half a record")  # was a JSONDecodeError traceback
    with pytest.raises(ConfigError, match="broken/generator.json cannot be read as the generator's record"):
        generate_dataset(small(n_athletes=2), tmp_path / "broken", workers=1, progress=False)
    # Rerunning a finished dataset with the same config is a no-op that reopens it.
    again = generate_dataset(small(n_athletes=2), out, workers=1, progress=False, shard_size=4)
    assert again.fingerprint == open_dataset(out).fingerprint
    assert json.loads((out / "generator.json").read_text())["shard_size"] == 4


def test_cli_writes_a_dataset_without_littering(tmp_path):
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "valgusml.cli", "generate", "preset=clean", "n_athletes=2", "seed=3",
         f"out={out}", "workers=1", "progress=false", "preset.tasks.trials_per_athlete=2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    ds = open_dataset(out)
    assert len(ds) == 4 and ds.dims == 3 and ds.skeleton == "canonical"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli"]  # no outputs/, no app.log
    bad = subprocess.run(
        [sys.executable, "-m", "valgusml.cli", "generate", f"out={tmp_path / 'bad'}", "preset.camera.yaw_deg=[30,10]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "camera.yaw_deg" in bad.stderr and not (tmp_path / "bad").exists()
