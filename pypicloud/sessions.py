"""Browser sessions for the admin web UI: signed cookies (SPEC section 8).

Only the web UI (routes named ``ui.*``) looks at the session; the upload
endpoint and every other API accept HTTP credentials only. The cookie is
signed with ``session.secret`` (HMAC), HttpOnly, SameSite=Strict, and Secure
when ``session.secure`` is on; it holds the user name and the CSRF token,
nothing else. Several processes (or a restart) recognise each other's cookies
only when they share ``session.secret``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from pyramid.session import SignedCookieSessionFactory

from .errors import ConfigError

LOG = logging.getLogger(__name__)
COOKIE_NAME = "ppc_session"


def session_factory_from_settings(settings):
    """A Pyramid session factory from ``session.*`` (pypicloud 1.x's names accepted)."""
    secret = settings.get_str("session.secret")
    if secret and len(secret) < 16:
        raise ConfigError("session.secret", None, "at least 16 characters (use a random string)")
    if not secret:
        secret = _secret_from_1x_keys(settings)
    if not secret:
        LOG.warning("session.secret is not set: web UI logins end when this process "
                    "restarts and are not shared with other processes")
        secret = secrets.token_urlsafe(32)
    max_age = settings.get_int("session.max_age", 8 * 3600, minimum=60)
    return SignedCookieSessionFactory(
        secret, cookie_name=COOKIE_NAME, salt="pypicloud.session.",
        secure=settings.get_bool("session.secure", False), httponly=True, samesite="Strict",
        max_age=None, timeout=max_age, reissue_time=max_age // 10, path="/")


def _secret_from_1x_keys(settings) -> str | None:
    """The session secret of an ini that only has 1.x's ``session.validate_key``
    / ``session.encrypt_key``: derived from both, so every process with the same
    ini agrees. Any value starts (1.x took any, its docker examples ship
    ``replaceme``); a short or placeholder one is warned about, not refused."""
    keys = [k for k in ("session.validate_key", "session.encrypt_key") if settings.get_str(k)]
    if not keys:
        return None
    values = [settings.get_str(k) for k in keys]
    if max(len(v) for v in values) < 16 or any(v.lower() == "replaceme" for v in values):
        LOG.warning("%s is weak (shorter than 16 characters or a placeholder): anyone who "
                    "guesses it can forge web UI logins; set session.secret to a long random "
                    "string", " / ".join(keys))
    material = "\0".join(f"{k}={v}" for k, v in zip(keys, values))
    return hashlib.sha256(b"pypicloud 1.x session keys\0" + material.encode("utf-8")).hexdigest()


def includeme(config) -> None:
    config.set_session_factory(session_factory_from_settings(config.registry.ppc_settings))
