"""The upstream client's memory of project pages (bounded, with a lifetime)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..caching import BoundedLRU
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
        # Entries are (expiry, page or None); a page weighs 1 plus its files.
        self._entries: BoundedLRU[str, tuple[float, UpstreamProject | None]] = BoundedLRU(
            max_entries, max_weight=max_files, weight=lambda entry: self._weight(entry[1])
        )

    @staticmethod
    def _weight(value: UpstreamProject | None) -> int:
        return 1 + (len(value.files) if value is not None else 0)

    _MISS = object()

    def get(self, key: str) -> UpstreamProject | None | object:
        """The remembered value (an UpstreamProject, or None for "upstream has no such
        project"), or ``PageMemo._MISS``."""
        entry = self._entries.get(key, valid=lambda e: e[0] > self.clock())
        return self._MISS if entry is None else entry[1]

    def put(self, key: str, value: UpstreamProject | None) -> None:
        if self.ttl <= 0:
            return
        self._entries.put(key, (self.clock() + self.ttl, value))

    @property
    def _files(self) -> int:
        """File entries over all remembered pages (each page counts one more)."""
        return self._entries.weight

    def __len__(self) -> int:
        return len(self._entries)
