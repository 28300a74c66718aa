"""Failed-login throttling (issue 12): per user name and per client address.

Every failed password or token check counts against the user name (tokens: not
against ``__token__``, or one attacker would lock out every token) and against
the client's address. When either has failed more than its limit within the
last window (``auth.throttle_window`` seconds, counted as the current and the
previous window), further attempts are answered ``429 Too Many Requests`` with
``Retry-After`` *before* any password is hashed, so guessing is slow and the
hash cannot be used to burn CPU. The counts live in the metadata index, so all
processes sharing it (PostgreSQL, Redis, one SQLite file) share them.
"""

from __future__ import annotations

import hashlib
import logging
import time

from .access.base import TOKEN_USERNAME
from .errors import BackendUnavailable, TooManyAttempts
from .models import Identity

LOG = logging.getLogger(__name__)


class LoginThrottle:
    """Counts failures in the shared index and refuses callers over the limits."""

    def __init__(self, index, *, per_user: int = 10, per_address: int = 50, window: int = 300):
        self.index = index
        self.per_user = per_user
        self.per_address = per_address
        self.window = window

    @classmethod
    def from_settings(cls, settings, index) -> LoginThrottle:
        return cls(
            index,
            per_user=settings.get_int("auth.throttle_user", 10, minimum=0),
            per_address=settings.get_int("auth.throttle_address", 50, minimum=0),
            window=settings.get_int("auth.throttle_window", 300, minimum=1),
        )

    def _keys(self, username: str | None, address: str | None) -> list[tuple[str, int]]:
        keys = []
        if username and username != TOKEN_USERNAME and self.per_user:
            keys.append(("u:" + username, self.per_user))
        if address and self.per_address:
            keys.append(("a:" + address, self.per_address))
        return keys

    def _name(self, key: str, slot: int) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return f"login-fail:{digest}:{slot}"

    def check(self, username: str | None, address: str | None) -> None:
        """Raise :class:`TooManyAttempts` when the user or the address is over its limit."""
        keys = self._keys(username, address)
        if not keys:
            return
        now = time.time()
        slot = int(now // self.window)
        for key, limit in keys:
            current = self.index.counter(self._name(key, slot))
            previous = self.index.counter(self._name(key, slot - 1))
            if current + previous >= limit:
                # The previous window's failures drop out when this one ends.
                wait = (slot + 1) * self.window - now
                if current >= limit:
                    wait += self.window
                raise TooManyAttempts("Too many failed logins; try again later", max(1, int(wait) + 1))

    def failed(self, username: str | None, address: str | None) -> None:
        """Count one failed attempt."""
        slot = int(time.time() // self.window)
        for key, _ in self._keys(username, address):
            self.index.incr_counter(self._name(key, slot), ttl=2 * self.window + 60)


def authenticate(request, username: str, password: str) -> Identity | None:
    """``access.authenticate`` behind the throttle: 429 when over a limit, failures counted."""
    return check_credentials(request.registry.services, request.client_addr, username, password)


def check_credentials(services, address: str | None, username: str, password: str) -> Identity | None:
    """:func:`authenticate` without a request (the fast lane has none): ``services`` is the
    app's :class:`pypicloud.app.AppServices`, ``address`` the client's (as WebOb's ``client_addr``)."""
    throttle: LoginThrottle | None = services.login_throttle
    access = services.service.access
    if throttle is not None and (username == TOKEN_USERNAME or access.credentials.hit(username, password)):
        # A token or a recently verified password costs no hash: while it is
        # right it is answered even when the address is throttled, so users
        # sharing a proxy or NAT address with an attacker are not locked out.
        identity = access.authenticate(username, password)
        if identity is not None:
            return identity
    if throttle is not None:
        try:
            throttle.check(username, address)
        except BackendUnavailable:
            # The index is down: logins still work (the password cap bounds
            # the hash), so /health and the API can report the outage.
            throttle = None
    identity = access.authenticate(username, password)
    if identity is None and throttle is not None:
        LOG.info("failed login for %r from %s", username, address)
        try:
            throttle.failed(username, address)
        except BackendUnavailable:
            pass
    return identity
