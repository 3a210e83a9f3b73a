"""A video read killed outright (SIGKILL runs no clean-up) leaves its temporary folder; the next read sweeps those
whose process is gone, and keeps a running one's (as `data.format.staging_dir` does for killed writers)."""

from __future__ import annotations

import os
import tempfile

import pytest

from valgusml.errors import InputError
from valgusml.io import video


def test_the_next_read_sweeps_a_killed_reads_folder_only(tmp_path, monkeypatch, dead_pid):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = tmp_path / f"{video.WORK_PREFIX}{dead_pid}.k1ll3d_x"
    (killed / "pass0").mkdir(parents=True)
    (killed / "pass0" / "landmarks.f64").write_bytes(b"\0" * 64)
    running = tmp_path / f"{video.WORK_PREFIX}{os.getppid()}.running"  # the parent of this test: alive
    running.mkdir()
    mine = tmp_path / f"{video.WORK_PREFIX}{os.getpid()}.mythread"  # another thread of this process may read
    mine.mkdir()
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read: the pass is stubbed")
    used = []

    def stub_pass(path, model_complexity, masks, progress, work):
        used.append(work)
        raise InputError(f"{path}: stub")

    monkeypatch.setattr(video, "backend", lambda: "subprocess")
    monkeypatch.setattr(video, "_run_pass", stub_pass)
    with pytest.raises(InputError, match="stub"):
        video.read_video(clip)
    assert not killed.exists()
    assert running.is_dir() and mine.is_dir()
    assert used[0].name.startswith(f"{video.WORK_PREFIX}{os.getpid()}.")  # named so that it can be swept in turn
    assert not used[0].exists()  # an ordinary failure still cleans up its own
