"""The change counter of a PostgreSQL or Redis index, pushed to every process.

Every index page checks the change counter, and a server database answers that
with a round trip. Both servers can push instead: a writer announces the new
value when it commits (PostgreSQL ``NOTIFY`` in the write transaction, Redis
``PUBLISH`` right after the ``EXEC``), and every process keeps one dedicated
connection listening for it in a daemon thread. A warm page then reads the
counter from memory.

The counter in memory is trusted only while the listener can vouch for it:

- The listener subscribes first and reads the counter afterwards, and only then
  trusts it. A change committed before the subscription was active is in the value
  it read; every later one arrives as a notification.
- Whenever the connection fails, or is being re-established, nothing is trusted:
  :meth:`PushedCounter.current` returns None and the caller asks the database,
  one round trip per page as before, until the listener is back and has read the
  counter again.
- Once a second the listener reads the counter over its own connection. This
  proves the connection alive and corrects the value should a notification ever
  have been lost (a writer of an older version, a database restored to an older
  state). Each such read vouches for the value for one more check interval plus a
  grace second, no longer: if the next read does not come back in time (a
  connection that died without closing, a listener thread starved of CPU), pages
  ask the database until it does.
- A write through this process moves the value at once after its commit, for
  every index object of the same database in this process (read your writes
  without waiting for the notification to come back).

Threads start lazily on the first read, so a server that forks its workers
after loading the app (gunicorn ``--preload``) starts one listener per worker;
a fork drops the parent's listener state in the child without closing the
parent's connection.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Hashable, Iterable

log = logging.getLogger(__name__)

# How often the listener re-reads the counter over its own connection, and how
# late that read may be before the value in memory is no longer trusted.
CHECK_SECONDS = 1.0
GRACE_SECONDS = 1.0
# Reconnection back-off: first delay, doubled after each failure up to the last.
RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 5.0
# How long close() waits for the listener thread to end.
JOIN_SECONDS = 5.0

_REGISTRY: dict[Hashable, weakref.WeakSet[PushedCounter]] = {}
_REGISTRY_LOCK = threading.Lock()


class PushedCounter(abc.ABC):
    """A change counter kept current in memory by a listener thread.

    ``key`` names the counter (database and schema, or Redis server and key
    prefix): index objects of one process with the same key share what their
    own writes announce. Subclasses implement the connection (methods starting
    with ``_``), which only the listener thread touches.
    """

    def __init__(
        self, key: Hashable, check_seconds: float = CHECK_SECONDS, grace_seconds: float = GRACE_SECONDS
    ):
        self.key = key
        self.check_seconds = check_seconds
        self.grace_seconds = grace_seconds
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        # (value, trusted until): one attribute, so a reader never sees half an update.
        # None: not vouched for, ask the database.
        self._state: tuple[int | None, float] = (None, 0.0)
        self._seq = 0  # writes announced, to tell whether one came during a check
        self._announced = -1  # the largest value announced since the check began
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake: tuple[int, int] | None = None
        self._closed = False
        self.connection_id: object = None  # the server's id of the listening session
        with _REGISTRY_LOCK:
            _REGISTRY.setdefault(key, weakref.WeakSet()).add(self)
        ref = weakref.ref(self)

        def after_fork() -> None:
            counter = ref()
            if counter is not None:
                counter._after_fork()

        os.register_at_fork(after_in_child=after_fork)

    # Request threads ------------------------------------------------------
    def current(self) -> int | None:
        """The counter, or None when the caller must ask the database this time."""
        value, until = self._state
        if value is not None and time.monotonic() < until:
            return value
        if self._thread is None and not self._closed:
            self._start()
        return None

    @property
    def live(self) -> bool:
        """True while the listener vouches for the value in memory."""
        value, until = self._state
        return value is not None and time.monotonic() < until

    def announce(self, value: int) -> None:
        """A write of this process committed ``value``: every counter of the same key moves."""
        with _REGISTRY_LOCK:
            counters = list(_REGISTRY.get(self.key, ()))
        for counter in counters:
            counter._advance(value)

    def close(self) -> None:
        """Stop the listener thread and close its connection."""
        self._closed = True
        self._stop.set()
        with _REGISTRY_LOCK:
            group = _REGISTRY.get(self.key)
            if group is not None:
                group.discard(self)
                if not group:
                    del _REGISTRY[self.key]
        with self._start_lock:
            thread, wake = self._thread, self._wake
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake[1], b"x")
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_SECONDS)
        with self._start_lock:
            if self._wake is not None and not (thread is not None and thread.is_alive()):
                for fd in self._wake:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self._wake = None

    # State ------------------------------------------------------------------
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._closed:
                return
            self._wake = os.pipe()
            thread = threading.Thread(
                target=self._run, args=(self._wake[0],), name="ppc-index-listener", daemon=True
            )
            self._thread = thread
            thread.start()

    def _advance(self, value: int) -> None:
        with self._lock:
            self._seq += 1
            if value > self._announced:
                self._announced = value
            current, until = self._state
            if current is not None and value > current:
                self._state = (value, until)

    def _distrust(self) -> None:
        with self._lock:
            self._state = (None, 0.0)

    def _check(self) -> None:
        """Read the counter over the listener's connection and trust it from here on."""
        with self._lock:
            before = self._state[0]
            seq, self._announced = self._seq, -1
        truth = self._read_truth()
        with self._lock:
            if self._seq != seq:  # a write of this process committed during the read
                truth = max(truth, self._announced)
            self._state = (truth, time.monotonic() + self.check_seconds + self.grace_seconds)
        if before is not None and truth != before:
            # A notification still on its way, or lost. Repeated after every change,
            # they do not arrive at all (a pooler in transaction mode): db.listen = false.
            log.info("index change counter corrected from %d to %d by the periodic check", before, truth)

    def _after_fork(self) -> None:
        # The child has no listener thread; the connection and the pipe are the
        # parent's and must be neither used nor closed here.
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._state = (None, 0.0)
        wake, self._wake = self._wake, None
        for fd in wake or ():
            with contextlib.suppress(OSError):
                os.close(fd)  # this process's copies only: the parent's pipe stays open
        self._forget()
        if self._closed:
            self._stop.set()

    # Listener thread --------------------------------------------------------
    def _run(self, wake: int) -> None:
        delay = RETRY_FIRST_SECONDS
        failing = False
        while not self._stop.is_set():
            try:
                self._subscribe()
                self._check()
                if failing:
                    log.info("index change listener is back: warm pages read the counter from memory")
                failing, delay = False, RETRY_FIRST_SECONDS
                self._follow(wake)
            except Exception as exc:  # any failure: pages ask the database until we are back
                if not self._stop.is_set():
                    # One warning per outage, not one per retry.
                    log.log(
                        logging.DEBUG if failing else logging.WARNING,
                        "index change listener lost (%s: %s); every page asks the database until it is back",
                        type(exc).__name__,
                        exc,
                    )
                    failing = True
            finally:
                self._distrust()
                with contextlib.suppress(Exception):
                    self._disconnect()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    def _follow(self, wake: int) -> None:
        due = time.monotonic() + self.check_seconds
        while not self._stop.is_set():
            self._apply(self._drain())
            remaining = due - time.monotonic()
            if remaining <= 0:
                self._check()
                due = time.monotonic() + self.check_seconds
                continue
            ready, _, _ = select.select([self._fileno(), wake], [], [], remaining)
            if wake in ready:
                return

    def _apply(self, payloads: Iterable[str]) -> None:
        for payload in payloads:
            try:
                value = int(payload)
            except ValueError:
                log.warning("index change notification with payload %r: reading the counter", payload)
                self._check()
                continue
            self._advance(value)

    # The connection (listener thread only) ----------------------------------
    @abc.abstractmethod
    def _subscribe(self) -> None:
        """Open the dedicated connection and subscribe; return once the server confirmed it."""

    @abc.abstractmethod
    def _read_truth(self) -> int:
        """The counter from the database, by a round trip that proves the subscription alive."""

    @abc.abstractmethod
    def _drain(self) -> list[str]:
        """Payloads received so far, without blocking; raise if the connection is lost."""

    @abc.abstractmethod
    def _fileno(self) -> int:
        """The connection's socket, to wait on."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close the connection (it is not used again)."""

    @abc.abstractmethod
    def _forget(self) -> None:
        """After a fork, in the child: drop the connection without closing it."""
