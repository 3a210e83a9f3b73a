"""What a killed process left behind: a SIGKILL runs no clean-up, so writers name their temporary files and
folders by their process id, and the next writer sweeps those whose process no longer runs (dataset shards,
staging folders, reports, video reads)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether another process with this id runs on this machine (this process: False; it is asking about a
    writer that is not itself)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's (PermissionError), or not knowable here: taken as alive
        return True
    return True


def remove_left_by_dead(paths: Iterable[Path], pid_of: Callable[[str], str], keep_own: bool = False) -> list[Path]:
    """Delete each of `paths` (files or folders) whose writer, the process id `pid_of(name)` gives, no longer
    runs; returns them. A running writer's stay, and names without a pid; this process's own count as left by an
    earlier, failed write of it unless `keep_own` (another of its threads may be using them)."""
    removed = []
    for left in paths:
        pid = pid_of(left.name)
        if pid.isdigit() and not pid_alive(int(pid)) and not (keep_own and int(pid) == os.getpid()):
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)
            removed.append(left)
    return removed
