"""Rendered index pages, kept in memory until the index's change counter moves.

Every process keeps its own copy, but validity is decided by the shared change
counter, so an upload through any process invalidates every copy on the next
request (SPEC section 2, scaled out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str
    etag: str


class PageCache:
    """A thread-safe, bounded LRU map from a key to (generation, value).

    A value is returned only while the change counter still has the value it
    was stored under. Used for rendered pages and for file records.
    """

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()

    def get(self, key: Hashable, generation: int) -> Any:
        with self._lock:
            entry = self._pages.get(key)
            if entry is None or entry[0] != generation:
                return None
            self._pages.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, generation: int, value: Any) -> None:
        with self._lock:
            self._pages[key] = (generation, value)
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
