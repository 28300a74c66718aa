"""Content negotiation of the simple API (PEP 691)."""

from __future__ import annotations

import functools

from webob.acceptparse import create_accept_header

from ..errors import NotAcceptable
from ..simple_api import HTML, JSON, LATEST_HTML, LATEST_JSON, TEXT_HTML

# Offer order breaks ties, and HTML comes first (SPEC section 4): curl, browsers,
# requests-based scripts, zc.buildout and setuptools' PackageIndex send no Accept
# or ``*/*`` and parse HTML. JSON is chosen only when ranked above every HTML type,
# as pip and uv rank it.
_OFFERS = {
    TEXT_HTML: TEXT_HTML,
    HTML: HTML,
    LATEST_HTML: HTML,
    JSON: JSON,
    LATEST_JSON: JSON,
}


def negotiate(request) -> str:
    """The content type to answer with, or NotAcceptable (406)."""
    environ = request.environ
    # Read straight from the environ: this runs on every index page, and WebOb's
    # query-string and header views cost more than the rest of a cached page.
    wanted = request.GET.get("format") if "format=" in environ.get("QUERY_STRING", "") else None
    if wanted:
        if wanted in _OFFERS:
            return _OFFERS[wanted]
        raise NotAcceptable(f"Unsupported format {wanted!r}; use one of " + ", ".join(_OFFERS))
    return negotiate_accept(environ.get("HTTP_ACCEPT"))


def negotiate_accept(accept: str | None) -> str:
    """The content type for an ``Accept`` header value (None: not sent), or NotAcceptable."""
    if accept is None or not accept.strip():
        # No preference stated (an empty header included): what PyPI and 1.x answer.
        return TEXT_HTML
    chosen = _choose(accept)
    if chosen is None:
        raise NotAcceptable("None of the types in Accept is available; use one of " + ", ".join(_OFFERS))
    return chosen


@functools.lru_cache(maxsize=512)
def _choose(accept: str) -> str | None:
    """The answer type for one Accept header value (clients send few distinct ones)."""
    offers = create_accept_header(accept).acceptable_offers(list(_OFFERS))
    return _OFFERS[offers[0][0]] if offers else None
