"""Access decided by the site's own HTTP service (``pypi.auth = remote``), as in 1.x.

pypicloud 1.x's protocol, unchanged: ``GET <auth.backend_server><path>?<params>``
with HTTP Basic credentials ``auth.user`` / ``auth.password`` when set, answering
JSON:

========================  =====================  ==========================================
key (path default)        parameters             answer
========================  =====================  ==========================================
``auth.uri.verify``       username, password     ``true`` / ``false``
``auth.uri.groups``       username (optional)    the user's group names (all groups without)
``auth.uri.group_members`` group                 user names
``auth.uri.admin``        username               ``true`` / ``false``
``auth.uri.group_permissions`` package           ``{"group": ["read", "write"], ...}``
``auth.uri.user_permissions``  package           ``{"user": ["read"], ...}``
``auth.uri.user_package_permissions`` username   ``[{"package": p, "permissions": [...]}]``
``auth.uri.group_package_permissions`` group     the same, for a group
``auth.uri.user_data``    username (optional)    ``{"username": u, "admin": b, "groups": [...]}`` or null
========================  =====================  ==========================================

Answers except ``verify`` are cached for ``auth.remote.cache_time`` seconds
(permission checks happen on every request); a verified password is cached for
``auth.cache_seconds`` like every backend.
"""

from __future__ import annotations

import json
import threading
import time

import urllib3

from ..errors import BackendUnavailable, ConfigError
from .base import READ, READ_WRITE, AccessBackend

PATHS = {
    "verify": "/verify",
    "groups": "/groups",
    "group_members": "/group_members",
    "admin": "/admin",
    "group_permissions": "/group_permissions",
    "user_permissions": "/user_permissions",
    "user_package_permissions": "/user_package_permissions",
    "group_package_permissions": "/group_package_permissions",
    "user_data": "/user_data",
}


class _Refused(Exception):
    """The service refused pypicloud's own credentials (401/403)."""


def _permission(value) -> str | None:
    """1.x's permission lists (``["read", "write"]``) or strings, as ``r`` / ``rw``."""
    if isinstance(value, str):
        value = [value]
    perms = {str(p).lower() for p in value or ()}
    if "write" in perms or "rw" in perms:
        return READ_WRITE
    if "read" in perms or "r" in perms:
        return READ
    return None


class RemoteAccess(AccessBackend):
    """Users, groups and grants answered by an HTTP service."""

    def __init__(
        self,
        *,
        server: str,
        user: str | None = None,
        password: str | None = None,
        paths: dict[str, str] | None = None,
        cache_time: float = 60,
        timeout: float = 10,
        verify_tls: bool = True,
        **policy,
    ):
        super().__init__(**policy)
        self.server = server.rstrip("/")
        self.paths = {**PATHS, **(paths or {})}
        self.cache_time = cache_time
        headers = {"Accept": "application/json", "User-Agent": "pypicloud"}
        if user is not None:
            headers.update(urllib3.make_headers(basic_auth=f"{user}:{password or ''}"))
        # One pool for every thread (urllib3's PoolManager is thread-safe).
        self.http = urllib3.PoolManager(
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3.Retry(total=2, connect=2, read=0, status=0, backoff_factor=0.1),
            cert_reqs="CERT_REQUIRED" if verify_tls else "CERT_NONE",
            maxsize=16,
        )
        self._cache: dict[tuple, tuple[float, object]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> RemoteAccess:
        server = settings.get_str("auth.backend_server")
        if not server or not server.startswith(("http://", "https://")):
            raise ConfigError("auth.backend_server", server, "the service's http(s):// URL")
        paths = {name: settings.get_str(f"auth.uri.{name}", default) for name, default in PATHS.items()}
        backend = cls(
            server=server,
            user=settings.get_str("auth.user"),
            password=settings.get_str("auth.password"),
            paths=paths,
            cache_time=settings.get_int("auth.remote.cache_time", 60, minimum=0),
            timeout=settings.get_int("auth.remote.timeout", 10, minimum=1),
            verify_tls=settings.get_bool("auth.remote.verify_tls", True),
            **cls.base_kwargs_from_settings(settings),
        )
        try:
            backend._fetch("groups", {})
        except _Refused as exc:
            raise ConfigError(
                "auth.password",
                None,
                f"the service at auth.backend_server refused auth.user / auth.password: {exc}",
            ) from None
        except BackendUnavailable as exc:
            raise ConfigError("auth.backend_server", server, exc.message) from None
        return backend

    # HTTP -------------------------------------------------------------------
    def _fetch(self, name: str, params: dict):
        url = self.server + self.paths[name]
        try:
            response = self.http.request("GET", url, fields=params or None)
        except urllib3.exceptions.HTTPError as exc:
            raise BackendUnavailable(f"The access service is unavailable: {exc}") from None
        if response.status in (401, 403):
            raise _Refused(f"HTTP {response.status} from {url}")
        if response.status != 200:
            raise BackendUnavailable(f"The access service is unavailable: HTTP {response.status} from {url}")
        try:
            return json.loads(response.data or b"null")
        except ValueError:
            raise BackendUnavailable(
                f"The access service answered {url} with something that is not JSON"
            ) from None

    def _get(self, name: str, params: dict):
        """A cached answer (never for ``verify``)."""
        key = (name, tuple(sorted(params.items())))
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            value = self._fetch(name, params)
        except _Refused as exc:
            raise BackendUnavailable(
                f"The access service refused pypicloud's credentials (auth.user): {exc}"
            ) from None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self.cache_time, value)
        return value

    # AccessBackend ----------------------------------------------------------
    def _verify(self, username: str, password: str) -> bool:
        try:
            return self._fetch("verify", {"username": username, "password": password}) is True
        except _Refused as exc:
            raise BackendUnavailable(
                f"The access service refused pypicloud's credentials (auth.user): {exc}"
            ) from None

    def groups_of(self, username: str) -> set[str]:
        return {str(g) for g in self._get("groups", {"username": username}) or ()}

    def is_admin(self, username: str) -> bool:
        return self._get("admin", {"username": username}) is True

    def user_exists(self, username: str) -> bool:
        data = self._get("user_data", {"username": username})
        return isinstance(data, dict) and bool(data)

    def project_grants(self, project: str) -> tuple[dict[str, str], dict[str, str]]:
        grants = []
        for name in ("user_permissions", "group_permissions"):
            answer = self._get(name, {"package": project}) or {}
            grants.append({str(k): p for k, v in answer.items() if (p := _permission(v))})
        return grants[0], grants[1]

    def check_health(self) -> None:
        try:
            self._fetch("groups", {})
        except _Refused as exc:
            raise BackendUnavailable(f"The access service refused pypicloud's credentials: {exc}") from None

    def close(self) -> None:
        self.http.clear()
