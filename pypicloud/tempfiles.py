"""Temp files that clean up after writers killed mid-write.

A writer holds an exclusive ``flock`` on its temp file for as long as it uses
it; the kernel drops the lock when the process dies. So a temp file that nobody
holds locked (and that is not brand new: it may have been created a moment ago
and not be locked yet) is garbage left by a crash, and can be removed.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable


def lock(fd: int) -> None:
    """Mark an open temp file as in use (until it is closed)."""
    fcntl.flock(fd, fcntl.LOCK_EX)


def sweep(folder: str, is_temp: Callable[[str], bool], min_age: float = 60.0) -> int:
    """Remove unlocked temp files older than ``min_age`` seconds. Returns how many."""
    now = time.time()
    removed = 0
    try:
        entries = [e for e in os.scandir(folder) if is_temp(e.name)]
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if now - entry.stat().st_mtime < min_age:
                continue
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
            removed += 1
        except (BlockingIOError, FileNotFoundError):
            pass
        finally:
            os.close(fd)
    return removed


class SweepSchedule:
    """When a folder is next worth sweeping: at most once per ``every`` seconds.

    A sweep lists the whole folder, and a temp file is only garbage once it is
    ``min_age`` (60 s) old, so listing a busy folder on every write only costs:
    the first write to a folder sweeps it, later ones only after ``every``
    seconds. Thread-safe; one per storage (or spool folder) and process.
    """

    def __init__(self, every: float = 60.0):
        self.every = every
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, folder: str) -> bool:
        """True (and the folder counts as swept now) when it was not swept lately."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(folder)
            if last is not None and now - last < self.every:
                return False
            if len(self._last) > 100_000:  # bounded: forget, at worst sweep again
                self._last.clear()
            self._last[folder] = now
            return True
