"""The upstream index of the fallback modes (docs/fallback.md).

Parts, each usable alone:

- :mod:`.policy`: :class:`FallbackPolicy`, what the ini says (``pypi.fallback``,
  ``pypi.always_show_upstream``, ``pypi.disallow_fallback``, ``pypi.cache_update``).
  The rules that use it live in :class:`pypicloud.service.PackageIndex`.
- :mod:`.urls`: the base URL's checks and the addresses of pages (pure).
- :mod:`.pages`: a PEP 691 JSON or PEP 503 HTML project page turned into
  :class:`UpstreamFile` entries (pure functions, no I/O).
- :mod:`.client`: :class:`UpstreamClient`, the HTTP side. Fetches project pages
  (kept in memory for ``page_ttl`` seconds, bounded and thread-safe, see
  :mod:`.memo`), streams files and PEP 658 metadata files, with connect/read
  timeouts so a slow upstream never holds a worker for long.

This module composes them from the ini (:func:`fallback_from_settings`) and
keeps every name that ``pypicloud.upstream`` offered before it became a package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..concurrency import SingleFlight
from ..errors import UpstreamError, UpstreamUnavailable
from ..simple_api import HTML as HTML_TYPE
from ..simple_api import JSON as JSON_TYPE
from .client import (
    ACCEPT,
    BODY_DEADLINE_TIMEOUTS,
    CHUNK,
    DEFAULT_PAGE_TTL,
    DEFAULT_TIMEOUT,
    MAX_PAGE_SIZE,
    MAX_REDIRECTS,
    MIN_BODY_SECONDS,
    USER_AGENT,
    UpstreamClient,
)
from .memo import PageMemo
from .pages import (
    UpstreamFile,
    UpstreamProject,
    distributions_of,
    parse_html_page,
    parse_json_page,
    parse_project_page,
)
from .policy import (
    MAX_TIMEOUT,
    MODES,
    UPSTREAM_UPLOADER,
    FallbackPolicy,
    policy_from_settings,
    timeout_from_settings,
)
from .urls import check_base_url, json_api_url, project_url, simple_index_url, split_credentials

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "ACCEPT",
    "BODY_DEADLINE_TIMEOUTS",
    "CHUNK",
    "DEFAULT_PAGE_TTL",
    "DEFAULT_TIMEOUT",
    "HTML_TYPE",
    "JSON_TYPE",
    "MAX_PAGE_SIZE",
    "MAX_REDIRECTS",
    "MAX_TIMEOUT",
    "MIN_BODY_SECONDS",
    "MODES",
    "UPSTREAM_UPLOADER",
    "USER_AGENT",
    "FallbackPolicy",
    "PageMemo",
    "SingleFlight",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamFile",
    "UpstreamProject",
    "UpstreamUnavailable",
    "check_base_url",
    "default_upstream_url",
    "distributions_of",
    "fallback_from_settings",
    "json_api_url",
    "parse_html_page",
    "parse_json_page",
    "parse_project_page",
    "project_url",
    "simple_index_url",
    "split_credentials",
]


def default_upstream_url() -> str | None:
    """The public index pip installs from by default, as pip itself names it.

    pypicloud 1.x fell back to that index when ``pypi.fallback`` was set and
    no URL was given, so a 1.x ini with ``pypi.fallback = redirect`` and no
    URL starts with the same meaning. pip knows the address; asking it keeps a
    second copy out of this code. None when pip is not importable (the setting
    is then required).
    """
    try:
        from pip._internal.models.index import PyPI
    except Exception:  # pip absent or its internals moved
        return None
    url = getattr(PyPI, "simple_url", None)
    return url + "/" if isinstance(url, str) and not url.endswith("/") else url


def fallback_from_settings(settings: Settings) -> tuple[FallbackPolicy, UpstreamClient | None]:
    """The policy and (unless the mode is ``none``) the client, from the ini."""
    policy = policy_from_settings(settings)
    if policy.mode == "none":
        return policy, None
    base_url = settings.get_str("pypi.fallback_base_url") or default_upstream_url()
    base_url = check_base_url("pypi.fallback_base_url", base_url)
    timeout = timeout_from_settings(settings, DEFAULT_TIMEOUT)
    ttl = settings.get_int("pypi.fallback_page_ttl", int(DEFAULT_PAGE_TTL), minimum=0)
    return policy, UpstreamClient(
        base_url,
        timeout=timeout,
        page_ttl=float(ttl),
        allow_private=settings.get_bool("pypi.fallback_allow_private", False),
    )
