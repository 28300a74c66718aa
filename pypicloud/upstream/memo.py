"""The upstream client's memory of project pages (bounded, with a lifetime)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .pages import UpstreamProject


class PageMemo:
    """Upstream pages by project, each kept ``ttl`` seconds; thread-safe.

    Bounded twice, least recently used first out: at most ``max_entries``
    pages, and at most ``max_files`` file entries over all pages (a page of a
    project with thousands of files weighs as much as thousands of small pages).
    """

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 1024,
        max_files: int = 250_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_files = max_files
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, UpstreamProject | None]] = OrderedDict()
        self._files = 0

    @staticmethod
    def _weight(value: UpstreamProject | None) -> int:
        return 1 + (len(value.files) if value is not None else 0)

    _MISS = object()

    def get(self, key: str):
        """The remembered value (an UpstreamProject, or None for "upstream has no such
        project"), or ``PageMemo._MISS``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return self._MISS
            if entry[0] <= self.clock():
                del self._entries[key]
                self._files -= self._weight(entry[1])
                return self._MISS
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, value: UpstreamProject | None) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._files -= self._weight(old[1])
            self._entries[key] = (self.clock() + self.ttl, value)
            self._files += self._weight(value)
            # The newest page always stays, even alone over the file bound.
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries or self._files > self.max_files
            ):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._files -= self._weight(dropped)

    def __len__(self) -> int:
        return len(self._entries)
