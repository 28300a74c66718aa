"""Refuse state-changing requests that a browser sends on behalf of another site.

Every write endpoint takes HTTP Basic credentials, and a browser that has them
cached (someone who once opened the index in it) attaches them to any request,
including a form another site posts to ``/admin/rebuild`` or ``/``. Upload
clients (twine, uv, poetry, pdm) send neither ``Origin`` nor ``Sec-Fetch-Site``;
browsers send at least one of them on every cross-site POST. So a request that
is not GET/HEAD/OPTIONS is refused with 403 when

- ``Sec-Fetch-Site`` says ``cross-site`` or ``same-site`` (another site, or a
  sibling subdomain that may host other people's content), or
- ``Origin`` is present and is not this server's own origin (``null`` included).

Same-origin pages (a future browser UI) and every non-browser client pass.
"""

from __future__ import annotations

from pyramid.tweens import EXCVIEW

from .errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def foreign_reason(request) -> str | None:
    """Why this request looks sent by another site's page, or None."""
    if request.method in SAFE_METHODS:
        return None
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site in _FOREIGN_FETCH_SITES:
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is not None and origin.strip().rstrip("/").lower() != request.host_url.lower():
        return f"Origin {origin.strip()[:100]!r} is not {request.host_url}"
    return None


def refuse_foreign_state_change(request) -> None:
    """403 for a GET/HEAD that changes state (a pypicloud 1.x URL) when a browser sends it for
    another site: the same test as for POST, plus a foreign ``Referer`` (older browsers send
    neither ``Sec-Fetch-Site`` nor ``Origin`` on a cross-site GET)."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    reason = f"Sec-Fetch-Site: {fetch_site}" if fetch_site in _FOREIGN_FETCH_SITES else None
    origin = request.headers.get("Origin")
    if (
        reason is None
        and origin is not None
        and origin.strip().rstrip("/").lower() != request.host_url.lower()
    ):
        reason = f"Origin {origin.strip()[:100]!r} is not {request.host_url}"
    referer = request.headers.get("Referer")
    if reason is None and referer and not (referer.lower() + "/").startswith(request.host_url.lower() + "/"):
        reason = f"Referer is not {request.host_url}"
    if reason is not None:
        raise Forbidden(
            f"Cross-site request refused ({reason}); scripts and same-origin pages are not affected"
        )


def cross_site_guard(handler, registry):
    """Pyramid tween: 403 for cross-site state-changing requests (under the exception view)."""

    def tween(request):
        reason = foreign_reason(request)
        if reason is not None:
            raise Forbidden(
                f"Cross-site request refused ({reason}); "
                "upload clients and same-origin pages are not affected"
            )
        return handler(request)

    return tween


def includeme(config) -> None:
    config.add_tween("pypicloud.crosssite.cross_site_guard", under=EXCVIEW)
