"""Who is asking: HTTP Basic credentials checked by the access backend.

The security policy only establishes the identity; what that identity may do
is decided by the service (:class:`pypicloud.service.PackageIndex`), once.
Wrong credentials count as no credentials (pypicloud 1.x's rule): a page
anonymous callers may read is served, anything else answers 401.
"""

from __future__ import annotations

import base64
import binascii

from pyramid.security import Allowed

from . import throttle
from .errors import Unauthorized
from .models import ANONYMOUS, Identity
from .sessions import SESSION_USER, still_valid

# Where the identity of a request is kept once decided (also read by the request log).
IDENTITY_KEY = "ppc.identity"


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic dXNlcjpwdw==`` -> ("user", "pw"); None when absent; ValueError when malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise ValueError("malformed Basic credentials")
    return username, password


def credentials_identity(services, address: str | None, username: str, password: str) -> Identity:
    """Who Basic credentials stand for, behind the login throttle (one check for the
    security policy and the fast lane, so both count failures alike). Wrong or stale
    credentials count as none, as in pypicloud 1.x: a pip config with an old password
    keeps reading what anonymous callers may read; anything more still answers 401."""
    identity = throttle.check_credentials(services, address, username, password)
    return ANONYMOUS if identity is None else identity


def browser_navigation(request) -> bool:
    """A browser opening a page (every current browser sends ``Sec-Fetch-Dest: document``)."""
    return request.method in ("GET", "HEAD") and request.headers.get("Sec-Fetch-Dest") == "document"


def uses_session(request) -> bool:
    """Only the web UI's routes (``ui.*``) know the browser session, and ``/`` when a
    browser opens it (the web UI's home page is served there, views/compat.py)."""
    route = request.matched_route
    if route is None:
        return False
    return route.name.startswith("ui.") or (route.name == "upload.root" and browser_navigation(request))


def session_identity(request) -> Identity:
    """The logged-in web UI user, checked against the access data on every request."""
    username = request.session.get(SESSION_USER)
    access = request.registry.services.service.access
    if not username or not access.user_exists(username):
        return ANONYMOUS  # logged out, or the user was deleted meanwhile
    if not still_valid(request, username):
        return ANONYMOUS  # logged out elsewhere, password changed, or too old
    return access.identity(username)


class BasicAuthPolicy:
    """Pyramid security policy: identity from the Authorization header.

    The web UI's routes fall back to the browser session (signed cookie) when
    no Authorization header is sent; every other route ignores the session.
    """

    def identity(self, request) -> Identity:
        # Pyramid asks the policy on every ``request.identity``: decide once per
        # request, so a wrong password counts once towards throttling and costs once.
        cached = request.environ.get(IDENTITY_KEY)
        if cached is None:
            cached = request.environ[IDENTITY_KEY] = self._identity(request)
        return cached

    def _identity(self, request) -> Identity:
        try:
            credentials = parse_basic(request.headers.get("Authorization"))
        except ValueError:
            raise Unauthorized("Malformed Authorization header") from None
        if credentials is None:
            return session_identity(request) if uses_session(request) else ANONYMOUS
        return credentials_identity(request.registry.services, request.client_addr, *credentials)

    def authenticated_userid(self, request) -> str | None:
        return request.identity.username

    def permits(self, request, context, permission):
        # Rules live in the service; views need no Pyramid permissions.
        return Allowed("checked by the service")

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def includeme(config) -> None:
    config.set_security_policy(BasicAuthPolicy())
