"""The predictor and `valgusml predict` run with torch (and every training dependency) blocked from import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def test_predictor_without_torch(exported):
    probe = Path(__file__).with_name("_torch_free_probe.py")
    sample = SAMPLES / "squat_halpe26.json"
    proc = subprocess.run(
        [sys.executable, str(probe), str(exported), str(sample)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    cli_record, summary = json.loads(lines[-2]), json.loads(lines[-1])
    assert cli_record["file"] == str(sample) and 0 <= cli_record["valgus_probability"] <= 1
    assert summary["cli"] == 0 and 0 <= summary["valgus_probability"] <= 1
    # Nothing even tried to import torch & co. (a swallowed ImportError would hide a torch dependency).
    assert summary["blocked_attempts"] == [] and summary["loaded"] == []
