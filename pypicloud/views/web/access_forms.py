"""The web UI's forms for users, groups, grants and API tokens, and one's own account.

Each handler reads the form and makes one call to the access manager
(:mod:`pypicloud.access_manager`), where every rule lives; it returns the
message to show and the page to go to (see :mod:`.actions`). A new token's
secret is kept for the next page in a one-time slot on the server and shown
there once: reloading that page neither shows it again nor makes a second token.
"""

from __future__ import annotations

from functools import partial

from ... import flashes, sessions, throttle
from ...errors import Forbidden
from .common import access_admin, field


def _current_password_ok(request, identity) -> None:
    # A token outlives the session, so a session alone (a stolen cookie) is not
    # enough to make one: the current password is asked for again.
    if throttle.authenticate(request, identity.username, request.POST.get("current_password", "")) is None:
        raise Forbidden("Enter your current password to create a token")


def _add_token(request, identity, *, own: bool):
    _current_password_ok(request, identity)
    username = identity.username if own else request.POST.get("username", "").strip()
    made = access_admin(request).create_token(
        identity,
        username,
        projects=request.POST.get("projects", "").replace(",", " ").split() or None,
        upload=request.POST.get("upload") == "1",
        expires_days=request.POST.get("expires_days", ""),
        description=request.POST.get("description", ""),
    )
    flashes.flash_secret(request, {"username": made.info.username, "secret": made.secret})
    message = f"Token {made.info.token_id} created for {made.info.username}"
    return message, "ui.account" if own else "ui.access", {}


def _change_own_password(request, identity):
    access_admin(request).change_own_password(
        identity,
        request.POST.get("current", ""),
        request.POST.get("password", ""),
        request.POST.get("repeat", ""),
        authenticate=partial(throttle.authenticate, request),
    )
    # Every other session ends; this one goes on with a new stamp.
    sessions.end_all(request.registry, identity.username)
    sessions.start(request, identity.username)
    return "Your password was changed", "ui.account", {}


def _revoke_token(route: str):
    def run(request, identity):
        token_id = field(request, "token_id")
        access_admin(request).revoke_token(identity, token_id)
        return f"Token {token_id} revoked", route, {}

    return run


def _admin(change):
    """An access-page form: the change's message, then back to the access page."""

    def run(request, identity):
        return change(request, identity, access_admin(request)), "ui.access", {}

    return run


def _flag(request, name: str) -> bool:
    return request.POST.get(name) == "1"


def _add_user(request, identity, admin):
    name = request.POST.get("username", "").strip()
    admin.add_user(identity, name, request.POST.get("password", ""), admin=_flag(request, "admin"))
    return f"User {name} added"


def _set_password(request, identity, admin):
    name = field(request, "username")
    admin.set_password(identity, name, request.POST.get("password", ""))
    sessions.end_all(request.registry, name)
    return f"Password of {name} changed"


def _set_admin(request, identity, admin):
    name, make = field(request, "username"), _flag(request, "admin")
    admin.set_admin(identity, name, make)
    return f"{name} {'is now' if make else 'is no longer'} an admin"


def _delete_user(request, identity, admin):
    name = field(request, "username")
    admin.delete_user(identity, name)
    sessions.end_all(request.registry, name)
    return f"User {name} deleted"


def _add_group(request, identity, admin):
    group = field(request, "group")
    admin.add_group(identity, group, admin=_flag(request, "admin"))
    return f"Group {group} added"


def _delete_group(request, identity, admin):
    group = field(request, "group")
    admin.delete_group(identity, group)
    return f"Group {group} deleted"


def _membership(member: bool):
    def change(request, identity, admin):
        name, group = field(request, "username"), field(request, "group")
        admin.set_membership(identity, name, group, member)
        return f"{name} {'added to' if member else 'removed from'} {group}"

    return change


def _grant(request, identity, admin):
    kind, name, permission = (field(request, k) for k in ("kind", "name", "permission"))
    project = admin.set_grant(identity, field(request, "project"), kind, name, permission)
    return f"Granted {permission} on {project} to {kind} {name}"


def _revoke(request, identity, admin):
    kind, name = field(request, "kind"), field(request, "name")
    project = admin.set_grant(identity, field(request, "project"), kind, name, None)
    return f"Revoked {kind} {name} on {project}"


def _approve_user(request, identity, admin):
    name = field(request, "username")
    admin.approve_user(identity, name)
    return f"Sign-up of {name} approved: {name} can log in now"


def _reject_user(request, identity, admin):
    name = field(request, "username")
    admin.reject_user(identity, name)
    return f"Sign-up of {name} rejected"


def _allow_register(request, identity, admin):
    allow = _flag(request, "allow")
    admin.set_allow_register(identity, allow)
    return f"Self-registration is now {'on' if allow else 'off'}"


ACTIONS = {
    "change-password": _change_own_password,
    "add-own-token": partial(_add_token, own=True),
    "revoke-own-token": _revoke_token("ui.account"),
    "add-token": partial(_add_token, own=False),
    "delete-token": _revoke_token("ui.access"),
    "add-user": _admin(_add_user),
    "set-password": _admin(_set_password),
    "set-admin": _admin(_set_admin),
    "delete-user": _admin(_delete_user),
    "add-group": _admin(_add_group),
    "delete-group": _admin(_delete_group),
    "add-member": _admin(_membership(True)),
    "remove-member": _admin(_membership(False)),
    "grant": _admin(_grant),
    "revoke": _admin(_revoke),
    "approve-user": _admin(_approve_user),
    "reject-user": _admin(_reject_user),
    "allow-register": _admin(_allow_register),
}
# One's own account: any logged-in user (the rest are admins' forms).
USER_ACTIONS = frozenset({"change-password", "add-own-token", "revoke-own-token"})
