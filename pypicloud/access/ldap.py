"""Users (and optionally groups) from an LDAP directory (``pypi.auth = ldap``).

pypicloud 1.x's ``auth.ldap.*`` keys keep their meaning:

- a user is found by ``user_dn_format`` (``uid={username},ou=people,...``, one
  lookup of that entry) or by ``user_search_filter`` under ``base_dn``
  (``(uid={username})``), read with the service account ``service_dn`` /
  ``service_password`` (or anonymously);
- a password is checked by binding as the user's DN with it;
- an admin has one of ``admin_value`` in the attribute ``admin_field``, or is a
  member of the group entry ``admin_group_dn``;
- with ``fallback = config`` groups and per-project grants come from the ini
  (``group.*``, ``package.*``), as in 1.x.

New here: groups can come from the directory too (``group_base_dn``: every
entry under it whose ``group_filter`` matches the user is a group named by its
``group_name_attr``). Names typed by a user are escaped before they go into a
filter or a DN.

Lookups are cached for ``cache_time`` seconds (user entry, admin flag, groups);
a verified password for ``auth.cache_seconds`` like every backend.
Every lookup opens its own connection (ldap3 connections are not shared
between threads), so a directory restart never leaves a broken connection.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ..errors import BackendUnavailable, ConfigError
from .base import AccessBackend
from .config import ConfigAccess
from .passwords import verify_dummy

LOG = logging.getLogger(__name__)

DEFAULT_GROUP_FILTER = "(|(member={dn})(uniqueMember={dn})(memberUid={username}))"


@dataclass(frozen=True)
class LdapUser:
    username: str
    dn: str
    is_admin: bool
    groups: frozenset[str]


def _ldap3():
    try:
        import ldap3
    except ImportError:  # the optional extra is not installed
        raise ConfigError(
            "pypi.auth", "ldap", "needs the ldap3 package: pip install 'pypicloud[ldap]'"
        ) from None
    return ldap3


class LDAPAccess(AccessBackend):
    """Access control against an LDAP directory (read-only)."""

    def __init__(
        self,
        *,
        url: str,
        service_dn: str | None = None,
        service_password: str = "",
        base_dn: str | None = None,
        user_search_filter: str | None = None,
        user_dn_format: str | None = None,
        admin_field: str | None = None,
        admin_value=(),
        admin_group_dn: str | None = None,
        group_base_dn: str | None = None,
        group_filter: str = DEFAULT_GROUP_FILTER,
        group_name_attr: str = "cn",
        cache_time: float = 300,
        ignore_cert: bool = False,
        ignore_referrals: bool = False,
        ignore_multiple_results: bool = False,
        timeout: float = 10,
        fallback: ConfigAccess | None = None,
        admins=(),
        **policy,
    ):
        super().__init__(**policy)
        ldap3 = _ldap3()
        self._ldap3 = ldap3
        if user_dn_format is None and (base_dn is None or user_search_filter is None):
            raise ConfigError(
                "auth.ldap.user_dn_format",
                None,
                "set it, or both auth.ldap.base_dn and auth.ldap.user_search_filter",
            )
        self.service_dn, self.service_password = service_dn, service_password
        self.base_dn, self.user_search_filter = base_dn, user_search_filter
        self.user_dn_format = user_dn_format
        self.admin_field, self.admin_values = admin_field, frozenset(admin_value)
        self.admin_group_dn = admin_group_dn
        self.group_base_dn, self.group_filter = group_base_dn, group_filter
        self.group_name_attr = group_name_attr
        self.cache_time = cache_time
        self.ignore_multiple_results = ignore_multiple_results
        self.ignore_referrals = ignore_referrals
        self.timeout = timeout
        self.fallback = fallback
        self.extra_admins = frozenset(admins)
        tls = None
        if url.lower().startswith("ldaps://"):
            import ssl

            tls = ldap3.Tls(validate=ssl.CERT_NONE if ignore_cert else ssl.CERT_REQUIRED)
        self.url, self._tls = url, tls
        self._cache: dict[str, tuple[float, LdapUser | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> LDAPAccess:
        _ldap3()
        url = settings.get_str("auth.ldap.url")
        if not url:
            raise ConfigError("auth.ldap.url", None, "the directory's ldap:// or ldaps:// URL")
        fallback = settings.get_str("auth.ldap.fallback")
        if fallback not in (None, "", "none", "config"):
            raise ConfigError("auth.ldap.fallback", fallback, "config or none")
        kwargs = cls.base_kwargs_from_settings(settings)
        backend = cls(
            url=url,
            service_dn=settings.get_str("auth.ldap.service_dn"),
            service_password=settings.get_str("auth.ldap.service_password", ""),
            base_dn=settings.get_str("auth.ldap.base_dn"),
            user_search_filter=settings.get_str("auth.ldap.user_search_filter"),
            user_dn_format=settings.get_str("auth.ldap.user_dn_format"),
            admin_field=settings.get_str("auth.ldap.admin_field"),
            admin_value=settings.get_list("auth.ldap.admin_value", ()),
            admin_group_dn=settings.get_str("auth.ldap.admin_group_dn"),
            group_base_dn=settings.get_str("auth.ldap.group_base_dn"),
            group_filter=settings.get_str("auth.ldap.group_filter", DEFAULT_GROUP_FILTER),
            group_name_attr=settings.get_str("auth.ldap.group_name_attr", "cn"),
            cache_time=settings.get_int("auth.ldap.cache_time", 300, minimum=0),
            ignore_cert=settings.get_bool("auth.ldap.ignore_cert", False),
            ignore_referrals=settings.get_bool("auth.ldap.ignore_referrals", False),
            ignore_multiple_results=settings.get_bool("auth.ldap.ignore_multiple_results", False),
            timeout=settings.get_int("auth.ldap.timeout", 10, minimum=1),
            fallback=ConfigAccess.from_settings(settings) if fallback == "config" else None,
            admins=settings.get_list("auth.admins"),
            **kwargs,
        )
        backend._check_service_account()
        return backend

    # Connections ----------------------------------------------------------
    def _connect(self, dn: str | None, password: str | None):
        """A bound connection, or None when the directory refused the credentials."""
        ldap3 = self._ldap3
        # A Server per connection: ldap3 marks a Server that failed once as
        # unusable for a while, which would outlast a short directory outage.
        server = ldap3.Server(self.url, tls=self._tls, connect_timeout=self.timeout, get_info=ldap3.NONE)
        conn = ldap3.Connection(
            server,
            user=dn,
            password=password,
            authentication=ldap3.SIMPLE if dn else ldap3.ANONYMOUS,
            receive_timeout=self.timeout,
            auto_referrals=not self.ignore_referrals,
            raise_exceptions=False,
            read_only=True,
        )
        try:
            if not conn.bind():
                conn.unbind()
                return None
        except ldap3.core.exceptions.LDAPException as exc:
            raise BackendUnavailable(f"The LDAP directory is unavailable: {exc}") from None
        return conn

    def _service(self):
        conn = self._connect(self.service_dn, self.service_password if self.service_dn else None)
        if conn is None:
            raise BackendUnavailable("The LDAP directory refused the service account (auth.ldap.service_dn)")
        return conn

    def _check_service_account(self) -> None:
        try:
            conn = self._connect(self.service_dn, self.service_password if self.service_dn else None)
        except BackendUnavailable as exc:
            raise ConfigError(
                "auth.ldap.url", self.url, f"cannot reach the directory: {exc.message}"
            ) from None
        if conn is None:
            raise ConfigError(
                "auth.ldap.service_password",
                None,
                f"the directory refused auth.ldap.service_dn = {self.service_dn!r} with this password",
            )
        conn.unbind()

    def _search(self, conn, base: str, scope, search_filter: str, attributes) -> list:
        ldap3 = self._ldap3
        try:
            conn.search(base, search_filter, search_scope=scope, attributes=attributes)
        except ldap3.core.exceptions.LDAPException as exc:
            raise BackendUnavailable(f"The LDAP directory is unavailable: {exc}") from None
        code = conn.result.get("result", 0) if conn.result else 0
        if code == 32:  # noSuchObject: the base (or the user's own DN) is not there
            return []
        if code not in (0, 4):  # 4: size limit exceeded still returns entries
            raise BackendUnavailable(f"The LDAP directory is unavailable: {conn.result}")
        return [e for e in conn.response or [] if e.get("type") == "searchResEntry"]

    # Lookups --------------------------------------------------------------
    def _lookup(self, username: str) -> LdapUser | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(username)
        if hit is not None and hit[0] > now:
            return hit[1]
        user = self._fetch(username)
        with self._lock:
            self._cache[username] = (now + self.cache_time, user)
        return user

    def _fetch(self, username: str) -> LdapUser | None:
        conn = self._service()
        try:
            entry = self._find_user(conn, username)
            if entry is None:
                return None
            dn = entry["dn"]
            is_admin = self._is_admin(conn, entry)
            return LdapUser(username, dn, is_admin, self._groups_of(conn, dn, username))
        finally:
            conn.unbind()

    def _find_user(self, conn, username: str) -> dict | None:
        """The user's entry (with the admin attribute), or None: unknown, or not one entry."""
        ldap3 = self._ldap3
        from ldap3.utils.conv import escape_filter_chars
        from ldap3.utils.dn import escape_rdn

        attributes = [self.admin_field] if self.admin_field else []
        if self.user_dn_format is not None:
            dn = self.user_dn_format.format(username=escape_rdn(username))
            entries = self._search(conn, dn, ldap3.BASE, "(objectClass=*)", attributes)
        else:
            # __init__ requires both when there is no user_dn_format.
            assert self.user_search_filter is not None and self.base_dn is not None
            search_filter = self.user_search_filter.format(username=escape_filter_chars(username))
            entries = self._search(conn, self.base_dn, ldap3.SUBTREE, search_filter, attributes)
        if not entries:
            return None
        if len(entries) > 1:
            found = [e["dn"] for e in entries]
            if not self.ignore_multiple_results:
                # Which one would be the user is a guess: refuse the login.
                LOG.warning(
                    "LDAP: %d entries for user %r (%s); refusing the login "
                    "(auth.ldap.ignore_multiple_results = true takes the first)",
                    len(found),
                    username,
                    found,
                )
                return None
            LOG.warning("LDAP: %d entries for user %r; using %s", len(found), username, found[0])
        return entries[0]

    def _is_admin(self, conn, entry: dict) -> bool:
        """By the admin attribute's values, else by membership of the admin group."""
        from ldap3.utils.conv import escape_filter_chars

        if self.admin_field:
            values = entry.get("attributes", {}).get(self.admin_field, [])
            if isinstance(values, (str, bytes)):
                values = [values]
            values = {v.decode() if isinstance(v, bytes) else str(v) for v in values}
            if values & self.admin_values:
                return True
        if not self.admin_group_dn:
            return False
        dn = escape_filter_chars(entry["dn"])
        member = f"(|(member={dn})(uniqueMember={dn}))"
        return bool(self._search(conn, self.admin_group_dn, self._ldap3.BASE, member, []))

    def _groups_of(self, conn, dn: str, username: str) -> frozenset[str]:
        """The names of the groups under ``auth.ldap.group_base_dn`` that hold the user."""
        if not self.group_base_dn:
            return frozenset()
        from ldap3.utils.conv import escape_filter_chars

        group_filter = self.group_filter.format(
            dn=escape_filter_chars(dn), username=escape_filter_chars(username)
        )
        found_groups = self._search(
            conn, self.group_base_dn, self._ldap3.SUBTREE, group_filter, [self.group_name_attr]
        )
        names = set()
        for entry in found_groups:
            value = entry.get("attributes", {}).get(self.group_name_attr)
            if isinstance(value, list):
                value = value[0] if value else None
            if value:
                names.add(str(value))
        return frozenset(names)

    # AccessBackend --------------------------------------------------------
    def _verify(self, username: str, password: str) -> bool:
        user = self._lookup(username)
        if user is None:
            # Take some time for an unknown name too (a bind is not free either).
            return verify_dummy(password)
        conn = self._connect(user.dn, password)
        if conn is None:
            return False
        conn.unbind()
        return True

    def groups_of(self, username: str) -> set[str]:
        user = self._lookup(username)
        if user is None:
            return set()
        groups = set(user.groups)
        if self.fallback is not None:
            groups |= self.fallback.groups_of(username)
        return groups

    def is_admin(self, username: str) -> bool:
        user = self._lookup(username)
        if user is None:
            return False
        if user.is_admin or username in self.extra_admins:
            return True
        if self.groups_of(username) & self.extra_admins:
            return True
        return self.fallback is not None and self.fallback.is_admin(username)

    def user_exists(self, username: str) -> bool:
        return self._lookup(username) is not None

    def project_grants(self, project: str) -> tuple[dict[str, str], dict[str, str]]:
        if self.fallback is None:
            return {}, {}
        return self.fallback.project_grants(project)

    def check_health(self) -> None:
        self._service().unbind()

    def forget_credentials(self, username: str | None = None) -> None:
        super().forget_credentials(username)
        with self._lock:
            if username is None:
                self._cache.clear()
            else:
                self._cache.pop(username, None)
