"""The access-control contract (SPEC sections 3 and 8).

An access backend answers "who is this?" (users, passwords, groups, admins) and
"what may they do with this project?" (per-project grants). The permission
rules themselves live here, once, so every backend applies them identically.

Pseudo-groups: ``everyone`` covers every caller, anonymous included;
``authenticated`` covers every logged-in user. Both may appear wherever a group
name may: the defaults, the overwrite/delete groups and per-project grants.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

from packaging.utils import canonicalize_name

from ..caching import BoundedLRU
from ..models import Identity
from .passwords import MAX_PASSWORD_BYTES

if TYPE_CHECKING:
    from ..settings import Settings
    from .editable import AccessData

EVERYONE = "everyone"
AUTHENTICATED = "authenticated"
PSEUDO_GROUPS = frozenset({EVERYONE, AUTHENTICATED})
# What an anonymous caller counts as (one set, not one per permission check).
ANONYMOUS_PRINCIPALS = frozenset({EVERYONE})

# The user name that says "the password is an API token" (as twine and uv send it).
TOKEN_USERNAME = "__token__"

READ = "r"
WRITE = "w"
READ_WRITE = "rw"
# The values a grant may hold: 1.x kept read and write as separate flags, so a
# write-only grant ("w") exists in 1.x data and keeps its meaning.
PERMISSIONS = (READ, READ_WRITE, WRITE)


def _now() -> float:
    """The clock the credential cache uses (monotonic; a hook for tests)."""
    return time.monotonic()


class CredentialCache:
    """Remembers recently verified credentials so a slow hash runs once per login.

    Keys are an HMAC of ``username NUL password`` under a random per-process key,
    so the password itself is never kept and a memory dump yields nothing that
    can be checked offline without that key. Values are expiry times. Bounded
    (least recently used entries go first) and safe to share between threads.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        # digest -> (expiry, user name): the name is kept beside the expiry so
        # forget() can drop a user's entries after a password change or deletion.
        self._entries: BoundedLRU[bytes, tuple[float, str]] = BoundedLRU(max_entries)

    def _digest(self, username: str, password: str) -> bytes:
        message = username.encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def hit(self, username: str, password: str) -> bool:
        """True when these credentials were verified less than ``ttl`` ago."""
        if self.ttl <= 0:
            return False
        digest = self._digest(username, password)
        return self._entries.get(digest, valid=lambda entry: entry[0] > _now()) is not None

    def add(self, username: str, password: str) -> None:
        """Remember credentials that were just verified."""
        if self.ttl <= 0:
            return
        self._entries.put(self._digest(username, password), (_now() + self.ttl, username))

    def forget(self, username: str | None = None) -> None:
        """Drop one user's entries, or all of them."""
        if username is None:
            self._entries.clear()
        else:
            self._entries.discard_if(lambda _digest, entry: entry[1] == username)

    def __len__(self) -> int:
        return len(self._entries)


class AccessBackend(abc.ABC):
    """Abstract base of every access backend.

    Subclasses take plain keyword arguments in ``__init__`` (so tests can build
    them without an ini file), pass the policy keywords below on to this class,
    and read the ini in :meth:`from_settings`. One instance is shared by every
    request thread, so it must be thread-safe.

    Policy keywords (see :meth:`base_kwargs_from_settings` for the ini keys):
    ``default_read`` / ``default_write`` are the groups that may read / write
    every project; ``allow_overwrite`` (or membership in
    ``allow_overwrite_groups``) lets writers replace an existing file;
    ``allow_delete`` lets writers delete, restricted to ``allow_delete_groups``
    when that is not empty; ``cache_seconds`` is how long a verified password
    is trusted without hashing it again (0 turns the cache off).
    """

    def __init__(
        self,
        *,
        default_read: Iterable[str] = (AUTHENTICATED,),
        default_write: Iterable[str] = (),
        allow_overwrite: bool = False,
        allow_overwrite_groups: Iterable[str] = (),
        allow_delete: bool = True,
        allow_delete_groups: Iterable[str] = (),
        cache_seconds: float = 300,
    ):
        self.default_read = frozenset(default_read)
        self.default_write = frozenset(default_write)
        self.allow_overwrite = allow_overwrite
        self.allow_overwrite_groups = frozenset(allow_overwrite_groups)
        self.allow_delete = allow_delete
        self.allow_delete_groups = frozenset(allow_delete_groups)
        self.credentials = CredentialCache(cache_seconds)

    # ------------------------------------------------------------------
    # What a backend writer implements
    # ------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the backend from a :class:`pypicloud.settings.Settings`.

        Call ``cls.base_kwargs_from_settings(settings)`` for the policy keywords
        and add the backend's own. Validate every option here and raise
        ConfigError naming the key for a bad one, so a broken ini stops start-up
        instead of failing on the first request.
        """

    @abc.abstractmethod
    def _verify(self, username: str, password: str) -> bool:
        """The slow check: True when ``password`` is ``username``'s password.

        Called by :meth:`authenticate` only when the credentials are not in the
        cache. Return False (do not raise) for an unknown user or a wrong or
        unverifiable password; spend about as long for an unknown user as for a
        known one (see ``passwords.verify_dummy``). Raise BackendUnavailable
        only when the user store cannot be reached.
        """

    @abc.abstractmethod
    def groups_of(self, username: str) -> set[str]:
        """The names of the real groups ``username`` belongs to (never the pseudo-groups).

        An empty set for an unknown user.
        """

    @abc.abstractmethod
    def is_admin(self, username: str) -> bool:
        """True when ``username`` is an admin (may do everything everywhere)."""

    @abc.abstractmethod
    def user_exists(self, username: str) -> bool:
        """True when ``username`` is a known user."""

    @abc.abstractmethod
    def project_grants(self, project: str) -> tuple[dict[str, str], dict[str, str]]:
        """The explicit grants on one project: ``(users, groups)``.

        ``project`` is a canonical (PEP 503) name. Each dict maps a user or
        group name to ``"r"`` (read) or ``"rw"`` (read and write). Group names
        may include the pseudo-groups ``everyone`` and ``authenticated``. Two
        empty dicts when the project has no grants: the defaults then apply
        alone. Called on every permission check, so make it cheap (an indexed
        lookup or an in-memory dict).
        """

    @abc.abstractmethod
    def check_health(self) -> None:
        """Raise an exception with a clear message if the backend is not usable now.

        Must not change anything; cheap enough for a load balancer to call often.
        """

    def export_data(self) -> AccessData:
        """Every user, group and grant as an ``editable.AccessData`` (``ppc-export``).

        Backends that cannot list their users (a remote directory) keep this
        default, which says so.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot export its data")

    # ------------------------------------------------------------------
    # Authentication
    # ------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> Identity | None:
        """The caller's identity when the credentials are right, else None.

        A success is remembered for ``cache_seconds`` so repeated requests with
        the same credentials skip the slow hash; failures are never remembered,
        so a wrong password is always checked in full.
        """
        if username == TOKEN_USERNAME:
            return self.authenticate_token(password) if password else None
        # A NUL in the name would make "name NUL password" ambiguous in the
        # cache key; no real user name contains one.
        if not username or not password or "\0" in username:
            return None
        if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
            return None  # never hashed: old schemes cost more the longer the password
        if not self.credentials.hit(username, password):
            if not self._verify(username, password):
                return None
            self.credentials.add(username, password)
        return self.identity(username)

    def authenticate_token(self, token: str) -> Identity | None:
        """The identity behind an API token (sent as the password of user ``__token__``).

        None for an unknown, revoked or expired token. Backends without tokens
        (the ini) keep this default: no token is ever valid.
        """
        return None

    def forget_credentials(self, username: str | None = None) -> None:
        """Stop trusting cached logins of ``username`` (or of everyone).

        Writable backends call this after a password change or a deletion.
        It affects this process only; other processes forget within
        ``cache_seconds``.
        """
        self.credentials.forget(username)

    def identity(self, username: str) -> Identity:
        """The identity of a known user: their groups and admin flag."""
        return Identity(username, frozenset(self.groups_of(username)), self.is_admin(username))

    # ------------------------------------------------------------------
    # Authorisation
    # ------------------------------------------------------------------
    @staticmethod
    def principals(identity: Identity) -> frozenset[str]:
        """The group names the caller counts as a member of, pseudo-groups included."""
        if not identity.authenticated:
            # An anonymous identity never carries groups; ignore any it was given.
            return ANONYMOUS_PRINCIPALS
        return identity.groups | PSEUDO_GROUPS

    def permission(self, identity: Identity, project: str) -> str:
        """``"rw"``, ``"r"``, ``"w"`` or ``""``: what the caller may do with ``project``.

        As in pypicloud 1.x (1.3.12 ``allowed_permissions()``): a project with
        any grant (user or group, even one naming nobody who exists) is governed
        by its grants alone, and ``default_read``/``default_write`` apply only
        to projects without grants. Read and write are separate rights, as in
        1.x: ``default_write`` or a ``w`` grant without read lets a caller
        upload but not list. An API token gets its user's permission, narrowed
        to the token's projects and to read when it is a read-only token.
        """
        token = identity.token
        if token is None:
            if identity.authenticated and identity.is_admin:
                return READ_WRITE
            return self._granted(identity, project)
        if token.projects is not None and canonicalize_name(project) not in token.projects:
            return ""
        permission = READ_WRITE if token.owner_admin else self._granted(identity, project)
        if not token.upload:
            return READ if READ in permission else ""
        return permission

    def _granted(self, identity: Identity, project: str) -> str:
        """The permission from the project's grants, or from the defaults when it
        has none (no admin rights)."""
        principals = self.principals(identity)
        users, groups = self.project_grants(canonicalize_name(project))
        if users or groups:
            granted = [groups[g] for g in principals if g in groups]
            if identity.username is not None and identity.username in users:
                granted.append(users[identity.username])
            read = any(READ in perm for perm in granted)
            write = any(WRITE in perm for perm in granted)
        else:
            read = bool(principals & self.default_read)
            write = bool(principals & self.default_write)
        return (READ if read else "") + (WRITE if write else "")

    def can_read(self, identity: Identity, project: str) -> bool:
        return READ in self.permission(identity, project)

    def data_version(self) -> int:
        """A number that changes whenever users, groups or grants change (0: they never do).

        Part of the key of cached pages whose content depends on permissions.
        """
        return 0

    def password_fingerprint(self, username: str) -> str | None:
        """A short digest of the user's stored password hash, or None (unknown user).

        Web UI sessions carry it: a password change (a new hash, a new salt)
        or a user deleted and created again ends every older session, even
        when the change was made with the command-line tools.
        """
        return None

    def anonymous_may_write(self) -> bool:
        """Could an anonymous caller write to any project at all?

        Lets an upload from an anonymous caller be refused before its body is
        parsed. Backends that hold their grants in memory answer exactly; this
        default only says no when it is sure.
        """
        return True

    def can_write(self, identity: Identity, project: str) -> bool:
        return WRITE in self.permission(identity, project)

    def can_overwrite(self, identity: Identity, project: str) -> bool:
        """Replace an existing file: writers, when overwriting is allowed for them.

        Admins too are bound by ``allow_overwrite``: a released file is
        immutable (downloads are served with ``Cache-Control: immutable``), so
        replacing one must be switched on deliberately.
        """
        if not self.can_write(identity, project):
            return False
        return self.allow_overwrite or bool(self.principals(identity) & self.allow_overwrite_groups)

    def can_delete(self, identity: Identity, project: str) -> bool:
        """Delete files: writers, when deletes are on, limited to the delete groups if any.

        With no ``allow_delete_groups`` only logged-in writers may delete (the
        1.x default "delete for authenticated users who may write"), so
        ``default_write = everyone`` does not let anonymous callers delete.
        """
        if identity.token is not None:
            return False  # tokens read and upload; deleting takes a password
        if identity.authenticated and identity.is_admin:
            return True
        if not self.allow_delete or not self.can_write(identity, project):
            return False
        if not self.allow_delete_groups:
            return identity.authenticated
        return bool(self.principals(identity) & self.allow_delete_groups)

    # ------------------------------------------------------------------
    # Settings
    # ------------------------------------------------------------------
    @staticmethod
    def base_kwargs_from_settings(settings: Settings) -> dict[str, Any]:
        """The policy keywords of :meth:`__init__` read from the ini."""

        def groups(key: str, default: tuple[str, ...]) -> list[str]:
            # Settings.get_list treats an empty value as missing, but an
            # explicit "pypi.default_read =" must mean "nobody", as in 1.x.
            if key in settings:
                return settings.get_list(key, ())
            return list(default)

        return {
            "default_read": groups("pypi.default_read", (AUTHENTICATED,)),
            "default_write": groups("pypi.default_write", ()),
            "allow_overwrite": settings.get_bool("pypi.allow_overwrite", False),
            "allow_overwrite_groups": groups("pypi.allow_overwrite_groups", ()),
            "allow_delete": settings.get_bool("pypi.allow_delete", True),
            "allow_delete_groups": groups("pypi.allow_delete_groups", ()),
            "cache_seconds": settings.get_int("auth.cache_seconds", 300, minimum=0),
        }
