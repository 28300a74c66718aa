"""Upstream URLs: the base URL's checks, credentials, and the addresses of pages.

Pure functions over strings; nothing here does I/O.
"""

from __future__ import annotations

import base64
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import canonicalize_name

from ..errors import ConfigError


def check_base_url(key: str, value: str | None) -> str:
    """An http(s) URL with a host, or ConfigError naming ``key`` (and not its credentials)."""
    example = "the simple index of the upstream, e.g. https://upstream.example/simple/"
    if not value:
        raise ConfigError(key, None, "required when pypi.fallback is not none: " + example)
    if not _http_url(value):
        raise ConfigError(key, _without_credentials(value), "an http:// or https:// URL: " + example)
    return value


def _without_credentials(url: str) -> str:
    """``url`` with its ``user:password@`` shown as ``***@`` (for messages).

    The user name goes too: some indexes take a token as the user name alone.
    """
    scheme, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rsplit('@', 1)[1]}{rest[len(authority) :]}"


def simple_index_url(base_url: str) -> str:
    """The simple index under ``base_url``.

    A URL without a path (``https://upstream.example``) means that host's
    ``/simple/``, as pypicloud 1.x's ``pypi.fallback_base_url`` did.
    """
    if urlsplit(base_url).path in ("", "/"):
        return base_url.rstrip("/") + "/simple/"
    return base_url


def split_credentials(url: str) -> tuple[str, str | None]:
    """``(url without user:password@, Basic authorization value or None)``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=host).geturl(), "Basic " + base64.b64encode(token.encode("utf-8")).decode(
        "ascii"
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def project_url(base_url: str, project: str) -> str:
    """``<base>/<canonical name>/`` (PEP 503: one canonical URL per project)."""
    return base_url.rstrip("/") + "/" + canonicalize_name(project) + "/"


def json_api_url(base_url: str, project: str) -> str | None:
    """The legacy JSON API URL of ``project`` on an upstream whose simple index is at
    ``<root>/simple/``: ``<root>/pypi/<canonical name>/json``. None for an upstream whose
    simple index lives elsewhere (no JSON API at a known address)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/simple"):
        return None
    root = path[: -len("simple")]
    return parts._replace(
        path=f"{root}pypi/{canonicalize_name(project)}/json", query="", fragment=""
    ).geturl()


def _http_url(url: str) -> bool:
    """An absolute http(s) URL with a host and a valid port (urllib3 can ask it)."""
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _resolve(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base``, without fragment; None for an http(s)
    URL it cannot be (``urljoin`` raises on some, e.g. a broken ``[IPv6]`` host)."""
    try:
        url = urldefrag(urljoin(base, href))[0]
    except ValueError:
        return None
    return url if _http_url(url) else None
