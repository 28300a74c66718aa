"""Small thread-safe building blocks shared by the service and the upstream client."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class _Run:
    """One run of :meth:`SingleFlight.run`: its outcome, once ``done`` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """Concurrent calls for one key share one run of the work: its result or its error.

    Callers that come while a run for their key is under way wait for it and get
    what it gave, a failure included: with a stalled upstream every waiting
    request then costs one timeout, not one per request queued before it (as
    with a plain per-key lock, where each waiter would try again in turn).
    Nothing is kept after a run: the next caller runs the work again.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._runs: dict[str, _Run] = {}

    def run(self, key: str, work: Callable[[], T]) -> T:
        with self._guard:
            current = self._runs.get(key)
            leading = current is None
            if current is None:
                current = self._runs[key] = _Run()
        if not leading:
            current.done.wait()
            if current.error is not None:
                raise current.error
            return cast(T, current.value)
        try:
            current.value = work()
            return cast(T, current.value)
        except BaseException as exc:
            current.error = exc
            raise
        finally:
            with self._guard:
                del self._runs[key]
            current.done.set()
