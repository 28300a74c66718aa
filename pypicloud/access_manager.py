"""Access administration for the web UI and the CLI: users, groups, grants and API tokens.

:class:`AccessManager` extends :class:`~pypicloud.access_admin.AccessAdmin` (the
1.x admin API's rules: admin gate, last-admin guard, registration) with the rules
the web UI applied itself before: a user's own password (current one asked for,
a minimum length), API tokens (who may make one for whom, the expiry range, who
may revoke which), and grant validation (``kind`` is ``user`` or ``group``,
``permission`` is ``r``/``w``/``rw``: anything else is a 400, never a 500).

The views and ``ppc-access`` call one method each; none of them touches the
access backend directly. Checking a password goes through ``authenticate``
(the web UI passes its login throttle; the CLI the backend's own check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name

from . import audit_actions as act
from .access.base import AccessBackend
from .access.editable import (
    AccessData,
    EditableAccess,
    InvalidAccessData,
    TokenInfo,
    check_name,
    check_permission,
    token_expiry,
)
from .access.passwords import hash_password
from .access_admin import AccessAdmin
from .errors import Forbidden
from .events import EventBus
from .models import Identity

# Passwords users choose themselves on their account page (admins setting one for
# somebody else, and the CLI, are trusted to know what they do).
MIN_OWN_PASSWORD = 8
GRANT_KINDS = ("user", "group")

Authenticate = Callable[[str, str], Identity | None]


@dataclass(frozen=True)
class AccessOverview:
    """Everything the access page shows an admin."""

    data: AccessData
    groups_of: dict[str, list[str]]
    ini_admins: frozenset[str]
    editable: bool
    backend: str
    tokens: list[TokenInfo]
    default_read: list[str]
    default_write: list[str]
    pending: list[str]
    registration: bool
    allow_register: bool


@dataclass(frozen=True)
class Account:
    """What a user's own account page shows."""

    editable: bool
    tokens: list[TokenInfo] = field(default_factory=list)
    min_password: int = MIN_OWN_PASSWORD


@dataclass(frozen=True)
class NewToken:
    secret: str
    info: TokenInfo


def parse_days(text: str | int | None, default: int = 90) -> int:
    """The expiry form field as days: blank is the default, a non-number a 400."""
    if isinstance(text, int):
        return text
    text = (text or "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidAccessData("Days until expiry must be a number") from None


class AccessManager(AccessAdmin):
    """Every access change the web UI and the CLI make, with its rules."""

    def __init__(self, access: AccessBackend, events: EventBus | None = None, operator: str | None = None):
        super().__init__(access, events, operator)

    @property
    def is_editable(self) -> bool:
        return isinstance(self.access, EditableAccess)

    # Pages ------------------------------------------------------------------
    def overview(self, identity: Identity) -> AccessOverview:
        self.require_admin(identity, "use the admin pages")
        access = self.access
        data = access.export_data()
        groups_of: dict[str, list[str]] = {}
        for group, info in data.groups.items():
            for member in info["members"]:
                groups_of.setdefault(member, []).append(group)
        editable = self.is_editable
        return AccessOverview(
            data=data,
            groups_of=groups_of,
            ini_admins=frozenset(getattr(access, "extra_admins", frozenset())),
            editable=editable,
            backend=type(access).__name__,
            tokens=self.editable().tokens() if editable else [],
            default_read=sorted(access.default_read),
            default_write=sorted(access.default_write),
            pending=self.pending_users(identity),
            registration=bool(getattr(access, "supports_registration", False)),
            allow_register=self.registration_open(),
        )

    def account(self, identity: Identity) -> Account:
        self._require_user(identity)
        if not self.is_editable:
            return Account(editable=False)
        return Account(editable=True, tokens=self.editable().tokens(identity.username))

    @staticmethod
    def _require_user(identity: Identity) -> None:
        if not identity.authenticated or identity.token is not None:
            raise Forbidden("Log in with a password to manage your account")

    # Users and groups (admins) ----------------------------------------------
    def add_user(self, identity: Identity, username: str, password: str, *, admin: bool = False) -> None:
        self.require_admin(identity, "create users")
        access = self.editable()
        access.create_user(
            check_name("user", _required(username, "username")), self._hash(password), admin=admin
        )
        self.record(identity, act.USER_CREATE, user=username.strip(), admin=admin)

    def set_password(self, identity: Identity, username: str, password: str) -> None:
        """An admin sets somebody's password (no length rule: the admin knows what they do)."""
        self.require_admin(identity, "set passwords")
        self.editable().set_password_hash(_required(username, "username"), self._hash(password))
        self.record(identity, act.USER_PASSWORD, user=username.strip())

    def add_group(self, identity: Identity, group: str, *, admin: bool = False) -> None:
        self.require_admin(identity, "create groups")
        access = self.editable()
        check_name("group", _required(group, "group"))
        access.create_group(group, admin=admin)
        self.record(identity, act.GROUP_CREATE, group=group, admin=admin)

    # Grants (admins) ------------------------------------------------------------
    def set_grant(
        self, identity: Identity | None, project: str, kind: str, name: str, permission: str | None
    ) -> str:
        """Grant ``permission`` (None: revoke) on ``project``; the canonical project name.

        ``identity`` None is the operator at the CLI.
        """
        if identity is not None:
            self.require_admin(identity, "change permissions")
        access = self.editable()
        project = canonicalize_name(_required(project, "project"))
        if kind not in GRANT_KINDS:
            raise InvalidAccessData(f"Invalid grant kind {kind!r}: user or group")
        _required(name, "name")
        if permission is not None:
            check_permission(permission)
        users, groups = access.project_grants(project)
        current = (users if kind == "user" else groups).get(name)
        access.set_grant(project, kind, name, permission)
        if permission != current:  # revoking a grant nobody had changes nothing
            self.record_grant(identity, project, kind, name, permission)
        return project

    # One's own password and tokens ---------------------------------------------
    def change_own_password(
        self,
        identity: Identity,
        current: str,
        new: str,
        repeat: str,
        authenticate: Authenticate | None = None,
    ) -> None:
        """The caller's own password: the current one must be right, the new one long enough."""
        self._require_user(identity)
        access = self.editable()
        check = authenticate or access.authenticate
        if not current or check(identity.username, current) is None:
            raise InvalidAccessData("Your current password is not right; nothing was changed")
        if len(new or "") < MIN_OWN_PASSWORD:
            raise InvalidAccessData(f"The new password needs at least {MIN_OWN_PASSWORD} characters")
        if new != repeat:
            raise InvalidAccessData("The two new passwords are not the same")
        access.set_password_hash(identity.username, hash_password(new))
        self.record(identity, act.USER_PASSWORD, user=identity.username)

    def create_token(
        self,
        identity: Identity | None,
        username: str,
        *,
        projects: list[str] | None = None,
        upload: bool = False,
        expires_days: str | int | None = None,
        description: str | None = None,
    ) -> NewToken:
        """A new API token for ``username``: users make their own, admins anyone's.

        ``identity`` None is the operator at the CLI (trusted like an admin).
        Expiry: 0 (never) to MAX_TOKEN_DAYS days, else a 400.
        """
        username = (username or "").strip()
        if identity is not None:
            self._require_user(identity)
            if username != identity.username:
                self.require_admin(identity, "make tokens for other users")
        access = self.editable()
        _required(username, "username")
        expires_at = token_expiry(parse_days(expires_days))
        secret, info = access.create_token(
            username,
            projects=[canonicalize_name(p) for p in projects] if projects else None,
            upload=upload,
            expires_at=expires_at,
            description=(description or "").strip() or None,
        )
        self.record(
            identity,
            act.TOKEN_CREATE,
            token_id=info.token_id,
            user=info.username,
            projects=list(info.projects) if info.projects is not None else None,
            upload=info.upload,
            expires_at=info.expires_at.isoformat() if info.expires_at else None,
        )
        return NewToken(secret, info)

    def revoke_token(self, identity: Identity | None, token_id: str) -> None:
        """Admins (and the CLI) revoke any token; users only their own."""
        access = self.editable()
        token_id = _required(token_id, "token_id")
        if identity is not None and not identity.is_admin:
            self._require_user(identity)
            # Somebody else's token id is "not yours", whatever it is: nothing is told.
            if token_id not in {t.token_id for t in access.tokens(identity.username)}:
                raise Forbidden(f"You have no token {token_id!r}")
        access.delete_token(token_id)
        self.record(identity, act.TOKEN_REVOKE, token_id=token_id)


def _required(value: str | None, name: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidAccessData(f"The field {name!r} is required")
    return value
