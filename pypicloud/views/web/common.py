"""What every page and form of the web UI shares: rendering, login gates, CSRF, redirects."""

from __future__ import annotations

from urllib.parse import urlencode

from pyramid.csrf import check_csrf_token, get_csrf_token
from pyramid.httpexceptions import HTTPFound
from pyramid.renderers import render_to_response

from ... import flashes
from ...access.editable import InvalidAccessData
from ...errors import Forbidden

# Pages with forms and user data: never framed by another site, scripts only
# from this server (the copy buttons' script), no inline script at all.
CSP = "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def page(request, template: str, status: int = 200, **values):
    """Render ``admin/<template>`` with the navigation's context and this session's messages."""
    waiting, secret = flashes.pop(request)
    context = {
        "identity": request.identity,
        "csrf_token": get_csrf_token(request),
        "flashes": waiting.get("info", []) + values.pop("flashes", []),
        "errors": waiting.get("error", []) + values.pop("errors", []),
        "new_token": values.pop("new_token", None) or secret,
    }
    context.update(values)
    response = render_to_response(f"admin/{template}", context, request=request)
    response.status_int = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def access_admin(request):
    """The access manager (:class:`pypicloud.access_manager.AccessManager`) of this app."""
    return request.services.access_admin


def reader(request):
    """Who browses: a logged-in user, or anonymous (what they may read decides what they see)."""
    identity = request.identity
    if identity.token is not None:
        raise Forbidden("API tokens cannot use the web UI; log in with a password")
    return identity


def require_user(request):
    """A logged-in user's identity; anonymous callers go to the login page."""
    identity = reader(request)
    if not identity.authenticated:
        # After logging in, come back to a page: a form posted with an expired
        # session returns to the page the form was on, never to a GET of its POST URL.
        back = request.path_qs if request.method in ("GET", "HEAD") else referring_page(request)
        raise login_redirect(request, back)
    return identity


def require_admin(request):
    """The admin's identity; anonymous callers go to the login page, others get 403."""
    identity = require_user(request)
    if not identity.is_admin:
        raise Forbidden(f"User {identity.username!r} may not use the admin pages")
    return identity


def login_redirect(request, back: str | None = None) -> HTTPFound:
    """To the login page, coming back to ``back`` (default: this page) afterwards."""
    query = urlencode({"next": request.path_qs if back is None else back})
    return HTTPFound(location=f"{request.route_path('ui.login')}?{query}")


def referring_page(request) -> str:
    referer = request.referer or ""
    prefix = request.host_url + "/admin"
    if referer.startswith(prefix) and "/admin/do/" not in referer:
        return referer[len(request.host_url) :]
    return request.route_path("ui.home")


def check_csrf(request) -> None:
    # Pyramid compares in constant time with the token kept in the session.
    if not check_csrf_token(request, token="csrf_token", header=None, raises=False):
        raise Forbidden("The form's CSRF token is missing or out of date; reload the page and try again")


def csrf_ok(request) -> bool:
    return check_csrf_token(request, token="csrf_token", header=None, raises=False)


def safe_next(request) -> str:
    target = request.POST.get("next") or request.params.get("next") or ""
    # Only paths of the UI itself: never an absolute or scheme-relative URL,
    # nothing a Location header cannot carry (CR/LF and other controls).
    if target.startswith("/admin") and not target.startswith("//") and target.isprintable():
        return target
    return request.route_path("ui.home")


def field(request, name: str) -> str:
    value = request.POST.get(name, "").strip()
    if not value:
        raise InvalidAccessData(f"The field {name!r} is required")
    return value


def page_number(request) -> int:
    try:
        return int(request.params.get("page", "1"))
    except ValueError:
        return 1
