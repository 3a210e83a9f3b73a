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
