"""Rendered index pages, kept in memory until the index's change counter moves.

Every process keeps its own copy, but validity is decided by the shared change
counter, so an upload through any process invalidates every copy on the next
request (SPEC section 2, scaled out).
"""

from __future__ import annotations

from dataclasses import dataclass

# The cache itself is built on the one bounded LRU map (pypicloud/caching.py).
from .caching import PageCache

__all__ = ["Page", "PageCache"]


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str
    etag: str
