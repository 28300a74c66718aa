"""Every action name the audit log records, with what it means (docs/audit.md lists them too).

Names are dotted: a filter ending in a dot (``access.``, ``access.user.``)
selects a whole family. ``detail`` never holds a secret or a password hash.
"""

from __future__ import annotations

from typing import Any

from .events import DELETE, UNYANK, UPLOAD, YANK, Event, EventBus
from .models import Identity

USER_CREATE = "access.user.create"
USER_DELETE = "access.user.delete"
USER_APPROVE = "access.user.approve"
USER_REJECT = "access.user.reject"
USER_ADMIN = "access.user.admin"
USER_PASSWORD = "access.user.password"
USER_SIGNUP = "access.user.signup"
USER_REGISTER = "access.user.register"
GROUP_CREATE = "access.group.create"
GROUP_DELETE = "access.group.delete"
MEMBER_ADD = "access.member.add"
MEMBER_REMOVE = "access.member.remove"
GRANT_SET = "access.grant.set"
GRANT_REMOVE = "access.grant.remove"
REGISTRATION = "access.registration"
ACCESS_IMPORT = "access.import"
TOKEN_CREATE = "token.create"
TOKEN_REVOKE = "token.revoke"
OIDC_MINT = "oidc.mint"
INDEX_REBUILD = "index.rebuild"

#: action -> what happened (shown as the admin page's action suggestions).
ACTIONS: dict[str, str] = {
    UPLOAD: "a file was uploaded",
    DELETE: "a file was deleted",
    YANK: "a file was yanked",
    UNYANK: "a file was un-yanked",
    USER_CREATE: "an admin (or the CLI) created a user",
    USER_DELETE: "a user (or a pending sign-up) was deleted",
    USER_APPROVE: "a pending sign-up was approved",
    USER_REJECT: "a pending sign-up was rejected",
    USER_ADMIN: "a user's admin flag was set or cleared",
    USER_PASSWORD: "a password was changed (by its user, an admin or the CLI)",
    USER_SIGNUP: "somebody signed up and waits for approval",
    USER_REGISTER: "a sign-up token was spent: an approved user was created",
    GROUP_CREATE: "a group was created",
    GROUP_DELETE: "a group was deleted",
    MEMBER_ADD: "a user was added to a group",
    MEMBER_REMOVE: "a user was taken out of a group",
    GRANT_SET: "a project grant was set for a user or group",
    GRANT_REMOVE: "a project grant was removed",
    REGISTRATION: "self-registration was switched on or off",
    ACCESS_IMPORT: "access data was loaded with ppc-import",
    TOKEN_CREATE: "an API token was made",
    TOKEN_REVOKE: "an API token was revoked",
    OIDC_MINT: "a CI job exchanged its OIDC token for an upload token (trusted publishing)",
    INDEX_REBUILD: "an admin rebuilt the index from storage",
}

#: Families a filter can name (a trailing dot selects every action under it).
FAMILIES = ("file.", "access.", "access.user.", "access.group.", "access.member.", "access.grant.", "token.")


class ChangeRecorder:
    """Publishes the access changes of the access administration (AccessAdmin inherits it)."""

    def __init__(self, events: EventBus | None = None, operator: str | None = None):
        # The audit log listens on ``events``; ``operator`` is who acts when no
        # identity is given (the CLI: ``cli:<login>``).
        self.events = events if events is not None else EventBus()
        self.operator = operator

    def record(
        self, identity: Identity | None, action: str, project: str | None = None, **detail: Any
    ) -> None:
        """Publish one change (``detail``: names and flags, never a secret)."""
        actor = identity.username if identity is not None else self.operator
        self.events.publish(Event(action, actor, project=project, detail=detail))

    def record_grant(
        self, identity: Identity | None, project: str, kind: str, name: str, permission: str | None
    ) -> None:
        """A grant set (``permission``) or removed (None)."""
        if permission is None:
            self.record(identity, GRANT_REMOVE, project=project, kind=kind, name=name)
        else:
            self.record(identity, GRANT_SET, project=project, kind=kind, name=name, permission=permission)
