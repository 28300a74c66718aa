"""Browser sessions for the admin web UI: signed cookies (SPEC section 8).

Only the web UI (routes named ``ui.*``) looks at the session; the upload
endpoint and every other API accept HTTP credentials only. The cookie is
signed with ``session.secret`` (HMAC), HttpOnly, SameSite=Strict, and Secure
when ``session.secure`` is on; it holds the user name, the CSRF token and the
session's stamp, nothing else. Several processes (or a restart) recognise each
other's cookies only when they share ``session.secret``.

A copied cookie must not outlive what it stands for, so the stamp is checked
on every request (:func:`still_valid`): the user's session generation (a
counter in the metadata index, shared by every process using it, bumped by
logging out, which ends all the user's sessions), a digest of the user's
password hash (a password change or a re-created user ends older sessions) and
the login time (``session.lifetime``: an absolute limit, however busy the
session).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

from pyramid.session import SignedCookieSessionFactory

from .errors import ConfigError

LOG = logging.getLogger(__name__)
COOKIE_NAME = "ppc_session"
SESSION_USER = "user"
SESSION_STAMP = "stamp"
SESSION_SINCE = "since"


def _generation_name(username: str) -> str:
    return "session:" + hashlib.sha256(username.encode("utf-8")).hexdigest()


def _stamp(registry, username: str) -> list:
    service = registry.services.service
    return [
        service.index.counter(_generation_name(username)),
        service.access.password_fingerprint(username) or "",
    ]


def start(request, username: str) -> None:
    """Log ``username`` in on this (fresh) session."""
    request.session[SESSION_USER] = username
    request.session[SESSION_STAMP] = _stamp(request.registry, username)
    request.session[SESSION_SINCE] = int(time.time())


def still_valid(request, username: str) -> bool:
    """False when the session was ended elsewhere, its password changed, or it is too old."""
    since = request.session.get(SESSION_SINCE)
    lifetime = request.registry.services.session_lifetime
    if not isinstance(since, int) or not 0 <= time.time() - since <= lifetime:
        return False
    return request.session.get(SESSION_STAMP) == _stamp(request.registry, username)


def end_all(registry, username: str) -> None:
    """End every web session of ``username``, in every process sharing the index."""
    registry.services.service.index.incr_counter(_generation_name(username))


def session_factory_from_settings(settings):
    """A Pyramid session factory from ``session.*`` (pypicloud 1.x's names accepted)."""
    secret = settings.get_str("session.secret")
    if secret and len(secret) < 16:
        raise ConfigError("session.secret", None, "at least 16 characters (use a random string)")
    if not secret:
        secret = _secret_from_1x_keys(settings)
    if not secret:
        LOG.warning(
            "session.secret is not set: web UI logins end when this process "
            "restarts and are not shared with other processes"
        )
        secret = secrets.token_urlsafe(32)
    max_age = settings.get_int("session.max_age", 8 * 3600, minimum=60)
    return SignedCookieSessionFactory(
        secret,
        cookie_name=COOKIE_NAME,
        salt="pypicloud.session.",
        secure=settings.get_bool("session.secure", False),
        httponly=True,
        samesite="Strict",
        max_age=None,
        timeout=max_age,
        reissue_time=max_age // 10,
        path="/",
    )


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
        LOG.warning(
            "%s is weak (shorter than 16 characters or a placeholder): anyone who "
            "guesses it can forge web UI logins; set session.secret to a long random "
            "string",
            " / ".join(keys),
        )
    material = "\0".join(f"{k}={v}" for k, v in zip(keys, values))
    return hashlib.sha256(b"pypicloud 1.x session keys\0" + material.encode("utf-8")).hexdigest()


def includeme(config) -> None:
    settings = config.registry.services.settings
    config.set_session_factory(session_factory_from_settings(settings))
    # session.lifetime is read once by the composition root (AppServices.session_lifetime).
