"""The web UI's project list: search over names and summaries, sorting, and pages.

Pure functions of the :class:`~pypicloud.models.ProjectSummary` rows the caller may
read. Ten thousand rows filter, sort and slice in a few milliseconds, so the list is
served from the index's project rows without a query of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .models import ProjectSummary

PER_PAGE = 50
SORTS = ("name", "updated")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _words(query: str) -> list[str]:
    # "Acme utils", "acme_utils" and "acme-utils" all mean the words acme and utils.
    return [w for w in re.split(r"[\s\-_.]+", query.lower()) if w]


def matches(summary: ProjectSummary, words: list[str]) -> bool:
    """Every word appears in the project's name or in its summary."""
    haystack = f"{summary.project} {summary.name.lower()} {(summary.summary or '').lower()}"
    return all(word in haystack for word in words)


@dataclass(frozen=True)
class ProjectList:
    """One page of the project list and what the page links need."""

    items: list[ProjectSummary]
    total: int
    page: int
    pages: int
    query: str
    sort: str


def browse(
    rows: list[ProjectSummary],
    *,
    query: str = "",
    sort: str = "name",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ProjectList:
    """Filter by ``query``, order by name (A-Z) or last upload (newest first), cut out page ``page``."""
    words = _words(query)
    found = [row for row in rows if matches(row, words)] if words else list(rows)
    sort = sort if sort in SORTS else "name"
    if sort == "updated":
        found.sort(key=lambda r: (r.last_modified or _EPOCH, r.project), reverse=True)
    else:
        found.sort(key=lambda r: r.project)
    pages = max(1, -(-len(found) // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return ProjectList(found[start : start + per_page], len(found), page, pages, query, sort)
