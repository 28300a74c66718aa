"""Users, groups and grants written in the ini file (``pypi.auth = config``).

The ini format of pypicloud 1.x::

    user.alice = <hash from ppc-gen-password>
    group.dev = alice bob
    auth.admins = alice ops          # user names and/or group names
    package.my-lib.user.bob = rw
    package.my-lib.group.dev = r

Read-only: changing anything means editing the ini and restarting. Everything
is parsed once at start-up into dicts, so every lookup is a dict access.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from packaging.utils import canonicalize_name

from ..errors import ConfigError
from ..upstream import UPSTREAM_UPLOADER
from .base import PSEUDO_GROUPS, READ, READ_WRITE, WRITE, AccessBackend
from .editable import AccessData
from .passwords import CONTEXT, needs_rehash, typical_hash, verify_dummy, verify_password

LOG = logging.getLogger(__name__)

# package.<project>.(user|group).<name>: project and user names may both contain
# dots, so the split is at the first ".user." / ".group." (project names with
# such a segment are far rarer than dotted user names like "john.doe").
_GRANT_KEY = re.compile(r"^(?P<project>.+?)\.(?P<kind>user|group)\.(?P<name>.+)$")

Grants = tuple[dict[str, str], dict[str, str]]


def _stronger(a: str | None, b: str) -> str:
    """Both grants together (two spellings of one project name both granted)."""
    both = (a or "") + b
    return (READ if READ in both else "") + (WRITE if WRITE in both else "")


def parse_grant(value: str) -> str | None:
    """A grant value as 1.x read it: ``r``, ``w``, ``rw`` (either order), the
    words ``read``/``write``, or empty. None when it is none of these.

    An empty grant gives nothing, but like any grant it makes the project's
    grants replace the defaults (1.x did the same)."""
    value = value.strip().lower()
    parts = set(value.split()) if len(value) > 2 else set(value)
    words = {"read": READ, "write": WRITE, READ: READ, WRITE: WRITE}
    if not parts <= set(words) or (len(value) <= 2 and len(parts) != len(value)):
        return None
    perms = {words[p] for p in parts}
    return (READ if READ in perms else "") + (WRITE if WRITE in perms else "")


class ConfigAccess(AccessBackend):
    """Access control from ``user.*``, ``group.*``, ``auth.admins`` and ``package.*`` keys."""

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        groups: Mapping[str, Iterable[str]] | None = None,
        admins: Iterable[str] = (),
        grants: Mapping[str, Grants] | None = None,
        **policy,
    ):
        """``users`` maps names to password hashes, ``groups`` group names to
        members, ``admins`` lists user and/or group names, ``grants`` maps project
        names to ``(user grants, group grants)``; ``policy`` goes to AccessBackend.
        """
        super().__init__(**policy)
        self.users = dict(users or {})
        self._typical: str | None | Literal[False] = False  # made on first use (parsing costs)
        self._rehash_logged: set[str] = set()
        self.groups = {name: frozenset(members) for name, members in (groups or {}).items()}
        self.admins = frozenset(admins)
        # Invert once: "which groups is alice in?" is asked on every login.
        self._groups_of: dict[str, set[str]] = {}
        for group, members in self.groups.items():
            for member in members:
                self._groups_of.setdefault(member, set()).add(group)
        self.grants: dict[str, Grants] = {}
        for project, (user_grants, group_grants) in (grants or {}).items():
            users_, groups_ = self.grants.setdefault(canonicalize_name(project), ({}, {}))
            # Two spellings of one project (My_Lib, my-lib) merge; the stronger grant wins.
            for name, perm in user_grants.items():
                users_[name] = _stronger(users_.get(name), perm)
            for name, perm in group_grants.items():
                groups_[name] = _stronger(groups_.get(name), perm)

    @classmethod
    def from_settings(cls, settings) -> ConfigAccess:
        return cls(
            users=_read_users(settings),
            groups=_read_groups(settings),
            admins=settings.get_list("auth.admins"),
            grants=_read_grants(settings),
            **cls.base_kwargs_from_settings(settings),
        )

    # AccessBackend ------------------------------------------------------
    def _verify(self, username: str, password: str) -> bool:
        hashed = self.users.get(username)
        if hashed is None:
            if self._typical is False:
                self._typical = typical_hash(self.users.values())
            return verify_dummy(password, self._typical)
        if not verify_password(password, hashed):
            return False
        if needs_rehash(hashed) and username not in self._rehash_logged:
            # The ini cannot be rewritten from here: tell the admin how.
            self._rehash_logged.add(username)
            LOG.warning(
                "user.%s in the ini has an old-format password hash; replace that "
                "line's value with the output of `ppc-gen-password` (argon2id)",
                username,
            )
        return True

    def groups_of(self, username: str) -> set[str]:
        return set(self._groups_of.get(username, ()))

    def is_admin(self, username: str) -> bool:
        if username in self.admins:
            return True
        return bool(self._groups_of.get(username, set()) & self.admins)

    def user_exists(self, username: str) -> bool:
        return username in self.users

    def project_grants(self, project: str) -> Grants:
        users, groups = self.grants.get(project, ({}, {}))
        # Copies, so a caller cannot change the configuration by accident.
        return dict(users), dict(groups)

    def check_health(self) -> None:
        """Nothing to reach: the configuration is in memory."""

    def password_fingerprint(self, username: str) -> str | None:
        hashed = self.users.get(username)
        return hashlib.sha256(hashed.encode()).hexdigest()[:16] if hashed else None

    def anonymous_may_write(self) -> bool:
        return "everyone" in self.default_write or any(
            groups.get("everyone") == READ_WRITE for _, groups in self.grants.values()
        )

    def export_data(self) -> AccessData:
        """The ini's access data. Names the ini mentions but never defines (a group
        member or grantee without a ``user.*`` line, an undefined group) are left
        out: they cannot log in or be checked anyway."""
        data = AccessData()
        for name, hashed in self.users.items():
            data.users[name] = {"password_hash": hashed, "admin": name in self.admins}
        for name, members in self.groups.items():
            data.groups[name] = {
                "members": sorted(m for m in members if m in self.users),
                "admin": name in self.admins,
            }
        for project, (users, groups) in self.grants.items():
            users = {u: p for u, p in users.items() if u in self.users}
            groups = {g: p for g, p in groups.items() if g in self.groups or g in PSEUDO_GROUPS}
            if users or groups:
                data.packages[project] = {"users": users, "groups": groups}
        return data


def _read_users(settings) -> dict[str, str]:
    users = {}
    for name, value in settings.with_prefix("user.").items():
        key, hashed = f"user.{name}", value.strip()
        if name == UPSTREAM_UPLOADER:
            # It marks files cached from upstream; a real user so named would
            # make projects look pulled through (and upstream mixed in).
            raise ConfigError(key, None, f"{UPSTREAM_UPLOADER!r} is reserved for the upstream cache")
        # Do not echo the value: it may be a plain-text password put there by mistake.
        if not hashed or CONTEXT.identify(hashed, required=False) is None:
            raise ConfigError(key, None, "a password hash made by ppc-gen-password")
        users[name] = hashed
    return users


def _read_groups(settings) -> dict[str, list[str]]:
    groups = {}
    for name in settings.with_prefix("group."):
        key = f"group.{name}"
        if name in PSEUDO_GROUPS:
            raise ConfigError(key, None, f"{name!r} is a built-in group and cannot be defined")
        groups[name] = settings.get_list(key)
    return groups


def _read_grants(settings) -> dict[str, Grants]:
    grants: dict[str, Grants] = {}
    for rest, value in settings.with_prefix("package.").items():
        key = f"package.{rest}"
        match = _GRANT_KEY.match(rest)
        if not match:
            raise ConfigError(key, value, "package.<project>.user.<name> or package.<project>.group.<name>")
        perm = parse_grant(value)
        if perm is None:
            raise ConfigError(key, value, "r, w or rw (or empty: no access)")
        users, groups = grants.setdefault(match["project"], ({}, {}))
        target = users if match["kind"] == "user" else groups
        target[match["name"]] = perm
    return grants
