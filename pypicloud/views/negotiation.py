"""Content negotiation of the simple API (PEP 691)."""

from __future__ import annotations

from ..errors import PypicloudError

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"

# Offer order breaks ties: JSON is preferred on equal quality (SPEC section 4).
_OFFERS = {
    JSON: JSON,
    "application/vnd.pypi.simple.latest+json": JSON,
    HTML: HTML,
    "application/vnd.pypi.simple.latest+html": HTML,
    TEXT_HTML: TEXT_HTML,
}


class NotAcceptable(PypicloudError):
    status = 406


def negotiate(request) -> str:
    """The content type to answer with, or NotAcceptable (406)."""
    wanted = request.GET.get("format")
    if wanted:
        if wanted in _OFFERS:
            return _OFFERS[wanted]
        raise NotAcceptable(f"Unsupported format {wanted!r}; use one of " + ", ".join(_OFFERS))
    if "Accept" not in request.headers:
        return JSON
    offers = request.accept.acceptable_offers(list(_OFFERS))
    if not offers:
        raise NotAcceptable("None of the types in Accept is available; use one of "
                            + ", ".join(_OFFERS))
    return _OFFERS[offers[0][0]]
