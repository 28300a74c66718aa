"""fsyncs started in the background, so the disk's wait overlaps a request's other work.

An upload needs its file's bytes on disk before the file gets its name, and the
folder's entry on disk before the answer; both waits are for the disk alone (an
fsync holds no GIL). :func:`start` hands the fsync of an open descriptor to one of
a few threads and :func:`finish` waits for it where the order requires, so the
order is kept while the wait overlaps whatever the request does in between. A
sync no thread has taken up yet when it is needed is done by the caller itself:
a busy pool makes the overlap smaller, never the wait longer.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

THREADS = 8
_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """The process's fsync threads (a forked child makes its own)."""
    global _pool
    pid = os.getpid()
    with _pool_lock:
        if _pool is None or _pool[0] != pid:
            _pool = (pid, ThreadPoolExecutor(THREADS, thread_name_prefix="ppc-fsync"))
        return _pool[1]


def start(fd: int) -> Future[None]:
    """Start forcing the open file (or folder) ``fd`` to disk; keep ``fd`` open until
    :func:`finish` or :func:`settle` returned."""
    return _threads().submit(os.fsync, fd)


def finish(sync: Future[None], fd: int) -> None:
    """Return once ``fd`` is on disk: the started fsync (its OSError raised here),
    or one done now if no thread took it up yet."""
    if sync.cancel():
        os.fsync(fd)
    else:
        sync.result()


def settle(sync: Future[None]) -> None:
    """Wait for a started fsync whatever its outcome (before its descriptor is closed)."""
    if not sync.cancel():
        try:
            sync.result()
        except OSError:
            pass
