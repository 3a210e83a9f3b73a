"""valgusml.limits and the bounds preprocessing checks before it allocates (issue 13, defect 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valgusml import limits
from valgusml.errors import ConfigError, InputError
from valgusml.export.example import example_keypoints
from valgusml.preprocess import PreprocessConfig, prepare, resampled_length
from valgusml.sequence import KeypointSequence

REPO = Path(__file__).resolve().parents[1]
CFG = PreprocessConfig(fps=30.0, window=32, stride=16, min_valid_frames=4)


def squat(fps: float, n_frames: int = 60) -> KeypointSequence:
    kp = example_keypoints("halpe26", seconds=n_frames / 30.0, fps=30.0)
    return KeypointSequence(kp[:n_frames], "halpe26", fps)


@pytest.mark.parametrize("fps", [1e-6, 1e-3, 0.5])
def test_tiny_frame_rate_is_refused_before_resampling(fps):
    with pytest.raises(InputError, match=rf"fps {fps:g} is outside \[1, 10000\]"):
        prepare(squat(fps), CFG)


@pytest.mark.parametrize("fps, message", [(True, "fps must be a number, got True"),
                                          (np.True_, "fps must be a number, got np.True_"),
                                          (10**400, "fps must be finite and > 0")], ids=["bool", "numpy_bool", "huge_int"])
def test_a_boolean_or_overflowing_frame_rate_is_refused(fps, message):
    with pytest.raises(InputError, match=message):
        limits.current().check_fps(fps, "clip.json: ")


def test_long_recording_is_refused_by_duration():
    with limits.override(max_duration_s=1.5), pytest.raises(InputError, match=r"last 2 s, beyond the limit of 1.5 s"):
        prepare(squat(30.0, 60), CFG)
    assert len(prepare(squat(30.0, 60), CFG)) >= 1  # outside the block the default applies again


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VALGUSML_MIN_FPS", "0.01")
    assert limits.current().min_fps == 0.01
    monkeypatch.setenv("VALGUSML_MAX_FRAMES", "many")
    with pytest.raises(ConfigError, match="VALGUSML_MAX_FRAMES='many'"):
        limits.current()
    with pytest.raises(ConfigError, match="unknown limits"), limits.override(max_frame=3):
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fps=st.floats(min_value=1e-9, max_value=1e7, allow_nan=False),
    n_frames=st.integers(min_value=12, max_value=90),
)
def test_any_frame_rate_is_refused_or_bounded(fps, n_frames):
    """Whatever the frame rate, preprocessing either refuses it with InputError or makes at most the windows
    the limits allow; it never allocates in proportion to 1/fps."""
    lim = limits.current()
    try:
        out = prepare(squat(fps, n_frames), CFG)
    except InputError as exc:
        assert "fps" in str(exc) or "too short" in str(exc) or "limit" in str(exc)
        assert not (lim.min_fps <= fps <= lim.max_fps) or "too short" in str(exc) or "limit" in str(exc)
        return
    assert lim.min_fps <= fps <= lim.max_fps
    n_out = resampled_length(n_frames, fps, CFG.fps)
    assert n_out <= lim.max_frames and n_out / CFG.fps <= lim.max_duration_s + 1 / CFG.fps
    assert len(out) <= n_out // CFG.stride + 2


_MEMORY_PROBE = """
import resource, sys, io, zipfile
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import numpy as np
import valgusml.io
from valgusml.errors import InputError
from valgusml.export.example import example_keypoints
from valgusml.preprocess import PreprocessConfig, prepare
from valgusml.sequence import KeypointSequence

kp = example_keypoints("halpe26", seconds=2.0, fps=30.0)
for fps in (1e-6, 1e-3):
    try:
        prepare(KeypointSequence(kp, "halpe26", fps), PreprocessConfig(fps=30.0, window=32, stride=16))
        sys.exit(f"fps={{fps}} was accepted")
    except InputError as exc:
        print("refused", fps, exc)

path = sys.argv[1]
buf = io.BytesIO()
np.lib.format.write_array_header_1_0(buf, {{"descr": "<f4", "fortran_order": False, "shape": (10**9, 20, 3)}})
with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("keypoints.npy", buf.getvalue() + bytes(64))
try:
    valgusml.io.read(path)
    sys.exit("a header claiming (1e9, 20, 3) was accepted")
except InputError as exc:
    print("refused", exc)
"""


def test_bounds_hold_under_a_memory_limit(tmp_path):
    """With the address space capped (resource.setrlimit, in a subprocess), the inputs that used to allocate
    gigabytes end in InputError, not MemoryError or a kill."""
    limit = 1_500 * 2**20
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(_MEMORY_PROBE.format(limit=limit)))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "claims.npz")],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("refused") == 3


def test_resampled_length_matches_resample():
    from valgusml.preprocess import resample

    xy = np.zeros((17, 2, 2), np.float32)
    conf = np.ones((17, 2), np.float32)
    for fps_in in (7.0, 29.97, 30.0, 61.0):
        out, _, _ = resample(xy, conf, fps_in, 30.0, 0.25)
        assert len(out) == resampled_length(17, fps_in, 30.0)
