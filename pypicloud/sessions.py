"""Browser sessions for the admin web UI: signed cookies (SPEC section 8).

Only the web UI (routes named ``ui.*``) looks at the session; the upload
endpoint and every other API accept HTTP credentials only. The cookie is
signed with ``session.secret`` (HMAC), HttpOnly, SameSite=Strict, and Secure
when ``session.secure`` is on; it holds the user name and the CSRF token,
nothing else. Several processes (or a restart) recognise each other's cookies
only when they share ``session.secret``.
"""

from __future__ import annotations

import logging
import secrets

from pyramid.session import SignedCookieSessionFactory

from .errors import ConfigError

LOG = logging.getLogger(__name__)
COOKIE_NAME = "ppc_session"


def session_factory_from_settings(settings):
    """A Pyramid session factory from ``session.*`` (pypicloud 1.x's names accepted)."""
    secret = (settings.get_str("session.secret") or settings.get_str("session.validate_key")
              or settings.get_str("session.encrypt_key"))
    if not secret:
        LOG.warning("session.secret is not set: web UI logins end when this process "
                    "restarts and are not shared with other processes")
        secret = secrets.token_urlsafe(32)
    elif len(secret) < 16:
        raise ConfigError("session.secret", None, "at least 16 characters (use a random string)")
    max_age = settings.get_int("session.max_age", 8 * 3600, minimum=60)
    return SignedCookieSessionFactory(
        secret, cookie_name=COOKIE_NAME, salt="pypicloud.session.",
        secure=settings.get_bool("session.secure", False), httponly=True, samesite="Strict",
        max_age=None, timeout=max_age, reissue_time=max_age // 10, path="/")


def includeme(config) -> None:
    config.set_session_factory(session_factory_from_settings(config.registry.ppc_settings))
