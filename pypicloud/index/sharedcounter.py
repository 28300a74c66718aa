"""The change counter of a SQLite index, published in shared memory.

Every index page checks the change counter. Asking SQLite for it costs little
CPU, but the sqlite3 module lets go of the GIL around each query and a busy
thread must then win it back from the others: with 8 waitress threads that
hand-off, not the query, halved the throughput of warm pages.

SQLite lives on one host, so the processes that share a SQLite index can also
share memory: a small file beside the database, mapped by every process. A
writer stores the counter there right after its transaction commits; a reader
takes it with a memory read that never leaves the GIL. The database stays the
truth: the index checks the mapped value against it at most once a second (a
writer killed between its commit and its store, or a database replaced under a
running server, is corrected then), and falls back to the query whenever the
mapped value cannot be trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import struct
import threading
import weakref
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

# value, check (value ^ _MAGIC): a reader that sees a half-written pair, or a
# file of zeroes just created, finds the check wrong and asks the database.
_LAYOUT = struct.Struct("<qq")
_MAGIC = 0x7070_6963_6C6F_7564  # "ppicloud"
_SIZE = mmap.PAGESIZE


class SharedCounter:
    """A 64-bit counter in a memory-mapped file, shared by every process on the host."""

    def __init__(self, path: str):
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, _SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        # The fd is kept for the flock that orders writers of different
        # processes; flock does not exclude threads sharing one open file, so a
        # thread lock orders this process's own writers.
        self._fd: int | None = fd
        self._lock = threading.Lock()
        # A forked child shares the parent's open file, and with it the flock:
        # it opens the file anew so that the two exclude each other. The
        # mapping itself is inherited and stays shared.
        ref = weakref.ref(self)

        def reopen_in_child() -> None:
            counter = ref()
            if counter is not None:
                counter._reopen()

        os.register_at_fork(after_in_child=reopen_in_child)

    def _reopen(self) -> None:
        self._lock = threading.Lock()
        if self._fd is None:
            return
        old, self._fd = self._fd, os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        os.close(old)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock:
            fd = self._fd
            if fd is None:
                raise ValueError("the shared counter is closed")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @classmethod
    def beside(cls, database: str) -> SharedCounter | None:
        """The counter file for a SQLite database file, or None if it cannot be made."""
        path = os.path.abspath(database) + ".generation"
        try:
            return cls(path)
        except (OSError, ValueError) as exc:
            log.warning(
                "cannot map %s (%s): every page will ask the database for its change counter", path, exc
            )
            return None

    def read(self) -> int | None:
        """The stored value, or None if there is none yet or it was caught mid-write."""
        value, check = _LAYOUT.unpack_from(self._map, 0)
        return value if check == value ^ _MAGIC else None

    def _store(self, value: int) -> None:
        _LAYOUT.pack_into(self._map, 0, value, value ^ _MAGIC)

    def publish(self, value: int) -> None:
        """Store ``value``, read in a write transaction that has committed, if newer.

        Writers of several processes commit in one order and may publish in
        another; keeping the larger value means a late publisher never moves
        the counter back.
        """
        with self._exclusive():
            current = self.read()
            if current is None or value > current:
                self._store(value)

    def verify(self, read_truth: Callable[[], int]) -> int:
        """Read the counter from the database and store it, even if it is lower.

        It is read under the writers' lock: a writer that committed before the
        read is in the value; one that commits after it publishes its own value
        once this has stored, so the check can lower the counter only when the
        database really went back (it was replaced or rebuilt from scratch).
        """
        with self._exclusive():
            value = read_truth()
            if self.read() != value:
                self._store(value)
            return value

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                self._map.close()
                os.close(self._fd)
                self._fd = None
