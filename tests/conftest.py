"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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


def _process_running(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for whoever reaps the container's orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:  # gone (or no /proc: then os.kill says)
        if Path("/proc").is_dir():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.fixture
def process_running():
    """Whether a process a test started (or its child) still runs: what every "nothing outlives it" test asks."""
    return _process_running
