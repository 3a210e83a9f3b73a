"""Video read interrupted (Ctrl-C): the worker in the video environment is stopped, nothing is left behind, and the
user gets one line, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.viz.conftest import VIDEO_DIR, needs_video_env, needs_videos
from valgusml.io import video

REPO = Path(__file__).resolve().parents[2]
# Stands in for `valgusml.io.video_worker`: says where it runs, reports progress once, then works for a minute.
SLOW_WORKER = """
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
print("progress 1 100", flush=True)
time.sleep(60)
"""


def test_an_interrupted_read_stops_its_worker(tmp_path, monkeypatch, process_running):
    (tmp_path / "slow_worker.py").write_text(SLOW_WORKER)
    monkeypatch.setenv(video.VIDEO_PYTHON_ENV, sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    pid_file = tmp_path / "pid"

    def interrupted(done: int, total: int | None) -> None:
        raise KeyboardInterrupt  # Ctrl-C reaching this process while the worker runs

    started = time.time()
    with pytest.raises(KeyboardInterrupt):
        video.run_in_video_env("slow_worker", [str(pid_file)], tmp_path / "clip.mp4", "test", interrupted)
    pid = int(pid_file.read_text())
    try:
        assert not process_running(pid), "the video worker outlived the interrupted read"
        assert time.time() - started < 20
    finally:
        if process_running(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_ctrl_c_while_the_worker_starts_stops_it(tmp_path, monkeypatch):
    """Ctrl-C landing after the worker's fork, before `Popen` returns (a loaded machine widens that moment): the
    read still holds the worker, and stops it."""
    (tmp_path / "slow_worker.py").write_text(SLOW_WORKER)
    monkeypatch.setenv(video.VIDEO_PYTHON_ENV, sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    def popen_then_ctrl_c(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGINT)
        return started[-1]

    monkeypatch.setattr(video.subprocess, "Popen", popen_then_ctrl_c)
    # pytest-xdist's workers ignore SIGINT; a user's shell leaves Python's own handler in place
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            video.run_in_video_env("slow_worker", [str(tmp_path / "pid")], tmp_path / "clip.mp4", "test")
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert started[0].poll() is not None, "the video worker outlived a Ctrl-C during its start"
    finally:
        started[0].kill()
        started[0].wait()


@pytest.mark.realdata
@needs_video_env
@needs_videos
def test_ctrl_c_on_predict_of_a_video_says_so_and_leaves_nothing(tmp_path, tiny_predictor_dir, process_running):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "valgusml.cli", "predict", str(tiny_predictor_dir), str(VIDEO_DIR / "sports2d_demo.mp4")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # pytest-xdist's workers ignore SIGINT, and a child started so would ignore the Ctrl-C sent to it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    workers: list[int] = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not workers:  # the worker runs: Ctrl-C now
            time.sleep(0.05)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            workers = [int(c) for c in children if b"video_worker" in Path(f"/proc/{c}/cmdline").read_bytes()]
            assert proc.poll() is None, "predict ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == "valgusml predict: interrupted (Ctrl-C)" and out == ""
    assert not [pid for pid in workers if process_running(pid)]
    time.sleep(1)  # a worker left running would recreate its temporary folder here
    assert not list(scratch.glob("valgusml-video-*"))
