"""Run callables in threads, released together: the one thread helper of the tests.

Race tests need every contender to start at the same moment, every outcome
(return value or exception) reported to the test thread, and a bound on how
long they may take, so a deadlock fails the test instead of hanging the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def run_together(calls: Sequence[Callable[[], T]], *, timeout: float = 60) -> list[T | BaseException]:
    """Call each of ``calls`` in its own thread, all released by one barrier.

    Returns, in the order of ``calls``, what each returned or the exception it
    raised. Fails (AssertionError) when a thread is still running ``timeout``
    seconds after the start.
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list[T | BaseException] = [RuntimeError("never ran")] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout)
            outcomes[i] = calls[i]()
        except BaseException as exc:  # handed to the test thread, never lost in this one
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout}s: {stuck}"
    return outcomes


def errors_of(outcomes: Sequence[object]) -> list[BaseException]:
    """The exceptions among ``run_together``'s outcomes."""
    return [o for o in outcomes if isinstance(o, BaseException)]


def run_all(calls: Sequence[Callable[[], T]], *, timeout: float = 60) -> list[T]:
    """``run_together``, failing the test if any call raised; returns the results."""
    outcomes = run_together(calls, timeout=timeout)
    for outcome in outcomes:
        assert not isinstance(outcome, BaseException), outcome
    return [o for o in outcomes if not isinstance(o, BaseException)]
