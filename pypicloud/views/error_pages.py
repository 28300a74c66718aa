"""Error answers a browser can read: an HTML page with the site's navigation.

Installers, uploaders and scripts keep the plain-text body (with the reason in the
status line too): only a client that ranks ``text/html`` first, as browsers do,
gets a page. pip and uv list ``text/html`` last, at a tiny quality, so they never do.
"""

from __future__ import annotations

from pyramid.csrf import get_csrf_token
from pyramid.renderers import render_to_response

from ..security import session_identity

# A browser's Accept starts with text/html at quality 1; installers give it 0.01.
_MIN_HTML_QUALITY = 0.5


def wants_html(request) -> bool:
    """True when the client prefers an HTML page (a browser) over plain text."""
    header = request.headers.get("Accept")
    if not header or "text/html" not in header:
        return False
    try:
        best = request.accept.best_match(["text/plain", "text/html"])
        quality = request.accept.quality("text/html") or 0
    except Exception:  # a malformed Accept header: plain text, never an error of its own
        return False
    return best == "text/html" and quality >= _MIN_HTML_QUALITY


def _who(request):
    """The caller for the navigation bar; nobody when that cannot be told (a backend is down)."""
    try:
        identity = request.identity
        if identity is not None and not identity.authenticated:
            # Only the UI's own routes log in by cookie; for showing the navigation
            # on an error page anywhere, the browser's session is enough.
            identity = session_identity(request)
    except Exception:
        return None
    if identity is None or not identity.authenticated or identity.token is not None:
        return None
    return identity


def error_page(request, status: int, title: str, message: str):
    """The HTML page for an error, or None when it cannot be rendered (then plain text is sent)."""
    identity = _who(request)
    try:
        token = get_csrf_token(request) if identity is not None else ""
        response = render_to_response(
            "admin/error.html",
            {
                "identity": identity,
                "csrf_token": token,
                "flashes": [],
                "errors": [],
                "status": status,
                "title": title,
                "message": message,
            },
            request=request,
        )
    except Exception:
        return None
    response.status_int = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    )
    return response
