"""Access data as a document, and the contract of backends that can change it.

Every backend can *export* its users, groups, admins and grants as one JSON
document (``ppc-export``); an editable backend (the database one) can *import*
such a document (``ppc-import``) and change single entries (``ppc-access``, and
later the admin UI). The document is how a team moves from the ini file to the
database, and how access data is backed up.

Document format (version 1)::

    {"version": 1,
     "users": {"alice": {"password_hash": "$argon2id$...", "admin": true}},
     "groups": {"dev": {"members": ["alice", "bob"], "admin": false}},
     "packages": {"my-lib": {"users": {"bob": "rw"}, "groups": {"dev": "r"}}}}

Password hashes travel as they are (any format ``ppc-gen-password`` or pypicloud
1.x wrote); plain-text passwords never appear in it.
"""

from __future__ import annotations

import abc
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.utils import canonicalize_name

# The exceptions live in pypicloud.errors; still importable from here.
from ..errors import AccessConflict as AccessConflict
from ..errors import InvalidAccessData
from ..errors import PendingQueueFull as PendingQueueFull
from ..models import utcnow
from ..upstream import UPSTREAM_UPLOADER
from .base import PERMISSIONS, PSEUDO_GROUPS, TOKEN_USERNAME, AccessBackend
from .passwords import CONTEXT

FORMAT_VERSION = 1

# Names end up in ini keys, HTTP Basic credentials and URLs: printable, no
# whitespace, no ":" (it would split a Basic credential), bounded length.
_NAME = re.compile(r"^[^\s:/\\]{1,255}$")


# Ten years: long enough for any CI secret, short enough to stay a real date.
MAX_TOKEN_DAYS = 3650


def token_expiry(days: int) -> datetime | None:
    """When a token made now for ``days`` days expires; 0 means never. Out of range: 400."""
    if days < 0 or days > MAX_TOKEN_DAYS:
        raise InvalidAccessData(f"Days until expiry must be between 0 (never) and {MAX_TOKEN_DAYS}")
    return utcnow() + timedelta(days=days) if days else None


def check_name(kind: str, name: str) -> str:
    """``name`` if it may name a user or group, else InvalidAccessData."""
    if (
        not isinstance(name, str)
        or not _NAME.match(name)
        or any(unicodedata.category(c).startswith("C") for c in name)
    ):
        raise InvalidAccessData(
            f"Invalid {kind} name {name!r}: 1-255 printable characters, no spaces, ':', '/' or '\\'"
        )
    if name == TOKEN_USERNAME:
        raise InvalidAccessData(f"{name!r} is reserved for API tokens")
    if name == UPSTREAM_UPLOADER:
        raise InvalidAccessData(f"{name!r} is reserved: it marks files cached from upstream")
    if kind == "group" and name in PSEUDO_GROUPS:
        raise InvalidAccessData(f"{name!r} is a built-in group and cannot be defined")
    return name


def check_permission(permission: str) -> str:
    if permission not in PERMISSIONS:
        raise InvalidAccessData(f"Invalid permission {permission!r}: r, w or rw")
    return permission


def check_hash(password_hash: object, username: str) -> str:
    if not isinstance(password_hash, str) or CONTEXT.identify(password_hash, required=False) is None:
        raise InvalidAccessData(
            f"User {username!r}: not a password hash ppc-gen-password or pypicloud 1.x could have made"
        )
    return password_hash


@dataclass(frozen=True)
class TokenInfo:
    """An API token as listed: everything but its secret."""

    token_id: str
    username: str
    projects: tuple[str, ...] | None  # None: every project the user may use
    upload: bool
    description: str | None
    created_at: datetime
    expires_at: datetime | None


@dataclass
class AccessData:
    """Users, groups and grants, as exported and imported."""

    users: dict[str, dict] = field(default_factory=dict)  # name -> {password_hash, admin}
    groups: dict[str, dict] = field(default_factory=dict)  # name -> {members, admin}
    packages: dict[str, dict] = field(default_factory=dict)  # project -> {users, groups}

    def to_json(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "users": {n: dict(u) for n, u in sorted(self.users.items())},
            "groups": {
                n: {"members": sorted(g["members"]), "admin": g["admin"]}
                for n, g in sorted(self.groups.items())
            },
            "packages": {
                p: {"users": dict(sorted(g["users"].items())), "groups": dict(sorted(g["groups"].items()))}
                for p, g in sorted(self.packages.items())
            },
        }

    @classmethod
    def from_json(cls, doc) -> AccessData:
        """Validate a document completely before anything is written."""
        from .v1 import document_from_1x, is_1x_document

        if is_1x_document(doc):
            doc = document_from_1x(doc)  # pypicloud 1.x's ppc-export output
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise InvalidAccessData(f"Not a pypicloud access document of version {FORMAT_VERSION}")
        data = cls()
        for name, user in _mapping(doc, "users").items():
            data.users[name] = _user_from_json(name, user)
        for name, group in _mapping(doc, "groups").items():
            data.groups[name] = _group_from_json(name, group, data.users)
        for project, grants in _mapping(doc, "packages").items():
            entry = data.packages.setdefault(canonicalize_name(project), {"users": {}, "groups": {}})
            _grants_from_json(project, grants, entry, data)
        return data


def _user_from_json(name: str, user: object) -> dict:
    check_name("user", name)
    if not isinstance(user, dict):
        raise InvalidAccessData(f"User {name!r}: expected an object")
    return {
        "password_hash": check_hash(user.get("password_hash"), name),
        "admin": bool(user.get("admin", False)),
    }


def _group_from_json(name: str, group: object, users: dict) -> dict:
    check_name("group", name)
    members = group.get("members", []) if isinstance(group, dict) else None
    if not isinstance(members, list):
        raise InvalidAccessData(f"Group {name!r}: expected members as a list")
    for member in members:
        if member not in users:
            raise InvalidAccessData(f"Group {name!r}: unknown user {member!r}")
    return {"members": sorted(set(members)), "admin": bool(group.get("admin", False))}


def _grants_from_json(project: str, grants: object, entry: dict, data: AccessData) -> None:
    """Check one project's grants against the users and groups of ``data``; add them to ``entry``."""
    if not isinstance(grants, dict):
        raise InvalidAccessData(f"Package {project!r}: expected an object")
    for user, perm in _mapping(grants, "users").items():
        if user not in data.users:
            raise InvalidAccessData(f"Package {project!r}: unknown user {user!r}")
        entry["users"][user] = check_permission(perm)
    for group, perm in _mapping(grants, "groups").items():
        if group not in data.groups and group not in PSEUDO_GROUPS:
            raise InvalidAccessData(f"Package {project!r}: unknown group {group!r}")
        entry["groups"][group] = check_permission(perm)


def _mapping(doc: dict, key: str) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise InvalidAccessData(f"{key!r} must be an object")
    return value


class EditableAccess(AccessBackend):
    """An access backend whose data can be changed while the server runs.

    Every change is visible to this process at once and to every other process
    sharing the store within a second; a password change or deletion also ends
    cached logins of that user.
    """

    @abc.abstractmethod
    def create_user(self, username: str, password_hash: str, *, admin: bool = False) -> None:
        """Add a user with an already hashed password. AccessConflict if the name is taken."""

    @abc.abstractmethod
    def set_password_hash(self, username: str, password_hash: str) -> None:
        """Replace a user's password hash. AccessConflict for an unknown user."""

    @abc.abstractmethod
    def set_admin(self, username: str, admin: bool) -> None:
        """Make a user an admin or not. AccessConflict for an unknown user."""

    @abc.abstractmethod
    def delete_user(self, username: str) -> None:
        """Remove a user, their memberships and grants. AccessConflict if unknown."""

    @abc.abstractmethod
    def create_group(self, name: str, *, admin: bool = False) -> None:
        """Add an empty group (admin: its members are admins). AccessConflict if it exists."""

    @abc.abstractmethod
    def delete_group(self, name: str) -> None:
        """Remove a group, its memberships and grants. AccessConflict if unknown."""

    @abc.abstractmethod
    def set_membership(self, username: str, group: str, member: bool) -> None:
        """Add a user to a group or take them out. AccessConflict if either is unknown."""

    @abc.abstractmethod
    def set_grant(self, project: str, kind: str, name: str, permission: str | None) -> None:
        """Grant ``r``/``rw`` on a project to a user or group (``kind``), or revoke (None).

        Group grants may name the pseudo-groups ``everyone`` and ``authenticated``.
        AccessConflict if the user or group is unknown.
        """

    @abc.abstractmethod
    def create_token(
        self,
        username: str,
        *,
        projects: list[str] | None = None,
        upload: bool = False,
        expires_at: datetime | None = None,
        description: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """Make an API token for a user: ``(the token, its listing)``.

        The token is returned only here; the backend keeps a hash of it.
        ``projects`` limits it to those projects (None: all the user may use);
        ``upload`` lets it upload, else it only reads. AccessConflict for an
        unknown user.
        """

    @abc.abstractmethod
    def tokens(self, username: str | None = None) -> list[TokenInfo]:
        """The tokens of one user, or of everyone, oldest first."""

    @abc.abstractmethod
    def delete_token(self, token_id: str) -> None:
        """Revoke a token. AccessConflict if there is no such token."""

    @abc.abstractmethod
    def load(self, data: AccessData, *, replace: bool = False) -> None:
        """Write a validated document in one transaction.

        Without ``replace``, entries are added or updated and nothing else is
        touched; with it, the store ends up holding exactly the document.
        """

    # Self-registration (pypicloud 1.x's pending users). Optional: a backend that
    # can keep sign-ups waiting for an admin sets ``supports_registration`` and
    # overrides these; the others keep registration off.
    supports_registration = False

    def registration_flag(self) -> bool | None:
        """The run-time "registration allowed" switch kept in the store (1.x's
        ``POST /admin/register``), or None when it was never set."""
        return None

    def set_registration_flag(self, allow: bool) -> None:
        """Keep the run-time registration switch in the store."""
        raise NotImplementedError

    def pending_user_hashes(self) -> dict[str, str]:
        """Sign-ups waiting for an admin: user name -> password hash."""
        return {}

    def add_pending_user(self, username: str, password_hash: str, *, limit: int) -> None:
        """Queue a sign-up. AccessConflict if the name is a user or already pending;
        PendingQueueFull when ``limit`` sign-ups are already waiting."""
        raise NotImplementedError

    def approve_user(self, username: str) -> None:
        """Turn a pending sign-up into a user (not an admin). AccessConflict if not pending."""
        raise NotImplementedError

    def reject_pending_user(self, username: str) -> None:
        """Drop a pending sign-up. AccessConflict if not pending."""
        raise NotImplementedError
