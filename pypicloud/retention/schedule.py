"""``retention.schedule``: the server applies the policies every interval, in one
process at a time however many share the index.

Each tick takes a lease for the current interval (the time divided by the
interval: a slot) with :meth:`MetadataIndex.incr_counter`, which every shared
index backend increments atomically: the process whose increment returns 1
runs the policies for that slot, every other process skips it. Processes need
no clock agreement beyond the interval's length; a slot is run once even when
their threads tick at different moments. The counter expires after two slots.

The thread waits on an event, so :meth:`RetentionSchedule.stop` ends it at
once. After a fork the child has no thread (Python does not copy threads) and
its schedule object is stopped: with ``gunicorn --preload`` the master process
keeps running the schedule, the workers never do.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from .config import RetentionConfig
from .run import RunReport, run

LOG = logging.getLogger(__name__)

_SCHEDULES: weakref.WeakSet[RetentionSchedule] = weakref.WeakSet()


class RetentionSchedule:
    """A daemon thread that calls :meth:`tick` every ``config.schedule`` seconds."""

    def __init__(self, service, config: RetentionConfig, clock: Callable[[], float] = time.time):
        if config.schedule is None:
            raise ValueError("retention.schedule is off")
        self.service, self.config, self.interval, self.clock = service, config, config.schedule, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        _SCHEDULES.add(self)

    def lease(self) -> bool:
        """Take this slot's lease: True for exactly one caller per slot among all processes."""
        slot = int(self.clock() // self.interval)
        name = f"retention.lease.{self.interval}.{slot}"
        return self.service.index.incr_counter(name, 1, ttl=2 * self.interval) == 1

    def tick(self) -> RunReport | None:
        """Run the policies if this process wins the current slot (None: another did, or it failed)."""
        if os.getpid() != self._pid:
            return None
        try:
            if not self.lease():
                return None
            return run(self.service, self.config)
        except Exception as exc:  # a backend outage: the next slot tries again
            LOG.warning("scheduled retention run failed: %s", exc)
            return None

    def start(self) -> None:
        """Start the thread (its first tick comes one interval from now)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="ppc-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """End the thread (waits for a run under way, up to ``timeout`` seconds)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def _after_fork(self) -> None:
        # The thread was not copied; the child's copy of this object stays stopped.
        self._stop = threading.Event()
        self._stop.set()
        self._thread = None


def _after_fork_in_child() -> None:
    for schedule in list(_SCHEDULES):
        schedule._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
