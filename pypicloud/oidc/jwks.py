"""The signing keys of OIDC issuers (their JWKS), fetched, cached and refreshed with care.

An issuer's keys come from the ``jwks_uri`` its ``/.well-known/openid-configuration``
names (which must be on the issuer's own origin). They are kept for ``ttl``
seconds; a token signed with a key id not in the cached set triggers a refresh
(keys rotate), but at most one fetch per issuer every ``min_refresh`` seconds,
successful or not, so neither a stream of forged key ids nor a dead issuer turns
into a stream of requests. Fetches have short timeouts and a size bound; an
issuer that cannot be reached only makes minting fail (503), nothing else.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jwt
import urllib3

LOG = logging.getLogger(__name__)
MAX_DOCUMENT = 512 * 1024


class IssuerUnavailable(Exception):
    """The issuer's configuration or keys could not be fetched (or made no sense)."""


@dataclass
class _Entry:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0  # last successful fetch
    attempted_at: float = float("-inf")  # last fetch, successful or not
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class JwksCache:
    """Thread-safe per-issuer key cache."""

    def __init__(self, *, ttl: float = 3600.0, min_refresh: float = 60.0, timeout: float = 5.0):
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False, maxsize=4
        )
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, issuer: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(issuer, _Entry())

    def key(self, issuer: str, kid: str | None) -> jwt.PyJWK | None:
        """The issuer's key ``kid`` (None: not published); IssuerUnavailable when unreachable."""
        entry = self._entry(issuer)
        with entry.lock:
            now = time.monotonic()
            fresh = entry.fetched_at and now - entry.fetched_at < self.ttl
            found = self._pick(entry, kid)
            if found is not None and fresh:
                return found
            if now - entry.attempted_at >= self.min_refresh:
                self._refresh(issuer, entry, now)
                found = self._pick(entry, kid)
            elif not entry.fetched_at:
                raise IssuerUnavailable(entry.error or "issuer keys not fetched yet")
            return found

    @staticmethod
    def _pick(entry: _Entry, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            # A token without a key id is only accepted from an issuer with one key.
            return next(iter(entry.keys.values())) if len(entry.keys) == 1 else None
        return entry.keys.get(kid)

    def _refresh(self, issuer: str, entry: _Entry, now: float) -> None:
        entry.attempted_at = now
        try:
            keys = self._fetch(issuer)
        except IssuerUnavailable as exc:
            entry.error = str(exc)
            LOG.warning("OIDC issuer %s: %s", issuer, exc)
            if not entry.fetched_at:
                raise
            return  # keep serving the keys we had
        entry.keys, entry.fetched_at, entry.error = keys, now, None

    def _get_json(self, url: str) -> dict:
        try:
            response = self._http.request("GET", url, preload_content=False, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise IssuerUnavailable(f"cannot reach {url}: {type(exc).__name__}") from None
        try:
            if response.status != 200:
                raise IssuerUnavailable(f"{url} answered {response.status}")
            body = response.read(MAX_DOCUMENT + 1, decode_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise IssuerUnavailable(f"cannot read {url}: {type(exc).__name__}") from None
        finally:
            response.release_conn()
        if len(body) > MAX_DOCUMENT:
            raise IssuerUnavailable(f"{url} is larger than {MAX_DOCUMENT} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            raise IssuerUnavailable(f"{url} is not JSON") from None
        if not isinstance(document, dict):
            raise IssuerUnavailable(f"{url} is not a JSON object")
        return document

    def _fetch(self, issuer: str) -> dict[str, jwt.PyJWK]:
        config = self._get_json(issuer + "/.well-known/openid-configuration")
        jwks_uri = config.get("jwks_uri")
        if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(issuer):
            raise IssuerUnavailable("its jwks_uri is missing or not on the issuer's own origin")
        document = self._get_json(jwks_uri)
        keys: dict[str, jwt.PyJWK] = {}
        for item in document.get("keys") or []:
            if not isinstance(item, dict) or item.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(item)
            except (jwt.exceptions.PyJWKError, jwt.exceptions.InvalidKeyError, ValueError, TypeError):
                continue  # a key type we cannot use: skip it, keep the others
            keys[str(item.get("kid", ""))] = key
        if not keys:
            raise IssuerUnavailable("its JWKS holds no usable signing key")
        return keys


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port
