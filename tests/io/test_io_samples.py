"""data/samples/ is what scripts/make_samples.py writes: regenerate into a temporary folder and compare."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

import valgusml.io as vio

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_samples.py"


def test_samples_are_up_to_date(samples_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("make_samples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.make_samples(tmp_path)
    assert {p.name for p in written} == {p.name for p in samples_dir.iterdir() if not p.name.startswith(".")}
    assert (tmp_path / "labels.csv").read_text() == (samples_dir / "labels.csv").read_text()
    for path in written:
        if path.name == "labels.csv":
            continue
        fresh, stored = vio.read(path), vio.read(samples_dir / path.name)
        np.testing.assert_array_equal(fresh.keypoints, stored.keypoints)
        np.testing.assert_array_equal(fresh.confidence, stored.confidence)
        assert (fresh.fps, fresh.skeleton, fresh.labels) == (stored.fps, stored.skeleton, stored.labels)
