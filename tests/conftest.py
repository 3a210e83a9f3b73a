"""Fixtures shared by every test folder."""

from __future__ import annotations

import subprocess

import pytest


def _stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Terminate a server started by a test; kill it if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def stop_process():
    return _stop_process


@pytest.fixture
def dead_pid() -> int:
    """The id of a process that has exited: what a killed writer's leftovers are named by."""
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)
