"""Access administration: the rules behind pypicloud 1.x's JSON admin and user API.

The views of ``/admin/user...``, ``/admin/group...``, ``/admin/package/<p>...``,
``/admin/acl.json.gz``, ``/api/user...`` and ``/acct/login``
(:mod:`pypicloud.views.legacy_admin`) only read the request and call one method
here. Every rule is applied here, once: who may do it (admins, as in 1.x:
anonymous callers get 401, other users 403), what an ini backend answers to a
change (403: it is read-only), how 1.x's ``read``/``write`` permission words map
onto our ``r``/``rw`` grants, and the shapes 1.x answered with.

Works on any access backend for reading; changes need an
:class:`~pypicloud.access.editable.EditableAccess` backend.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name

from . import __version__
from . import audit_actions as act
from .access.base import PSEUDO_GROUPS, READ, READ_WRITE, TOKEN_USERNAME, AccessBackend
from .access.editable import AccessConflict, EditableAccess, InvalidAccessData, check_name
from .access.passwords import MAX_PASSWORD_BYTES, hash_password
from .audit_actions import ChangeRecorder
from .errors import AdminGuard, Forbidden, NoSuchUser, PypicloudError, ReadOnlyAccess, Unauthorized
from .events import EventBus
from .models import Identity

# 1.x kept a set of words per grant; we keep "r" or "rw" (write implies read).
PERMISSION_WORDS = {READ: ["read"], READ_WRITE: ["read", "write"]}

# Self-registration limits: at most this many sign-ups wait for an admin (a flood
# of sign-ups fills no database), user names as short as 1.x took them, and a
# password a user chooses is as long as the account page asks for.
MAX_PENDING_USERS = 1000
MAX_SIGNUP_NAME = 100
MIN_SIGNUP_PASSWORD = 8


def _flag(value, name: str) -> bool:
    """A 1.x boolean parameter: JSON true/false or a form's "true"/"false"/"1"/"0"."""
    if isinstance(value, bool):
        return value
    if value is None:
        raise InvalidAccessData(f"Missing parameter {name!r}")
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise InvalidAccessData(f"Parameter {name!r} must be true or false")


def check_signup_password(password: str) -> None:
    """InvalidAccessData unless ``password`` fits the sign-up limits."""
    if len(password) < MIN_SIGNUP_PASSWORD:
        raise InvalidAccessData(f"The password needs at least {MIN_SIGNUP_PASSWORD} characters")
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise InvalidAccessData(f"The password is longer than {MAX_PASSWORD_BYTES} bytes")


def _deny(identity: Identity, what: str) -> PypicloudError:
    if not identity.authenticated:
        return Unauthorized(f"Login required to {what}")
    return Forbidden(f"User {identity.username!r} may not {what}")


class AccessAdmin(ChangeRecorder):
    """pypicloud 1.x's user, group and grant administration over one access backend."""

    def __init__(self, access: AccessBackend, events: EventBus | None = None, operator: str | None = None):
        self.access = access
        ChangeRecorder.__init__(self, events, operator)

    # Checks ---------------------------------------------------------------
    @staticmethod
    def require_admin(identity: Identity, what: str) -> None:
        # A token never carries admin rights (models.TokenScope), so is_admin is False for it.
        if not identity.is_admin:
            raise _deny(identity, what)

    def editable(self) -> EditableAccess:
        if not isinstance(self.access, EditableAccess):
            raise ReadOnlyAccess(
                f"The access backend ({type(self.access).__name__}) is read-only: edit the ini "
                "file, or move to pypi.auth = sql (ppc-export / ppc-import)"
            )
        return self.access

    # Reading (admins) -------------------------------------------------------
    def users(self, identity: Identity) -> list[dict]:
        """``[{"username", "admin"}]`` for every user."""
        self.require_admin(identity, "list users")
        data = self.access.export_data()
        return [{"username": name, "admin": self.access.is_admin(name)} for name in sorted(data.users)]

    def user(self, identity: Identity, username: str) -> dict | None:
        """``{"username", "admin", "groups"}``, or None for an unknown user (as 1.x)."""
        self.require_admin(identity, "read users")
        if not self.access.user_exists(username):
            return None
        return {
            "username": username,
            "admin": self.access.is_admin(username),
            "groups": sorted(self.access.groups_of(username)),
        }

    def pending_users(self, identity: Identity) -> list[str]:
        """Sign-ups waiting for an admin's approval (they cannot log in yet)."""
        self.require_admin(identity, "list pending users")
        return sorted(self._pending_hashes())

    def name_taken(self, username: str) -> bool:
        """Whether ``username`` is a user or a sign-up waiting for approval."""
        return self.access.user_exists(username) or username in self._pending_hashes()

    def _pending_hashes(self) -> dict[str, str]:
        if isinstance(self.access, EditableAccess):
            return self.access.pending_user_hashes()
        return {}

    def user_permissions(self, identity: Identity, username: str) -> list[dict]:
        """``[{"package", "permissions"}]``: the user's explicit grants."""
        self.require_admin(identity, "read permissions")
        data = self.access.export_data()
        return [
            {"package": project, "permissions": PERMISSION_WORDS[grants["users"][username]]}
            for project, grants in sorted(data.packages.items())
            if username in grants["users"]
        ]

    def groups(self, identity: Identity) -> list[str]:
        self.require_admin(identity, "list groups")
        return sorted(self.access.export_data().groups)

    def group(self, identity: Identity, group: str) -> dict:
        """``{"members", "packages"}``; an unknown group has neither (as 1.x)."""
        self.require_admin(identity, "read groups")
        data = self.access.export_data()
        entry = data.groups.get(group)
        return {
            "members": sorted(entry["members"]) if entry else [],
            "packages": [
                {"package": project, "permissions": PERMISSION_WORDS[grants["groups"][group]]}
                for project, grants in sorted(data.packages.items())
                if group in grants["groups"]
            ],
            "admin": bool(entry and entry["admin"]),
        }

    def package_permissions(self, identity: Identity, project: str) -> dict:
        """``{"user": [{"username", "permissions"}], "group": [{"group", "permissions"}]}``."""
        self.require_admin(identity, "read permissions")
        users, groups = self.access.project_grants(canonicalize_name(project))
        return {
            "user": [{"username": n, "permissions": PERMISSION_WORDS[p]} for n, p in sorted(users.items())],
            "group": [{"group": n, "permissions": PERMISSION_WORDS[p]} for n, p in sorted(groups.items())],
        }

    def acl_dump(self, identity: Identity) -> dict:
        """Everything, in the layout 1.x's ``/admin/acl.json.gz`` and ``ppc-export`` wrote."""
        self.require_admin(identity, "export the access data")
        data = self.access.export_data()
        packages: dict[str, dict] = {"users": {}, "groups": {}}
        for project, grants in sorted(data.packages.items()):
            for kind in ("users", "groups"):
                if grants[kind]:
                    packages[kind][project] = {
                        n: PERMISSION_WORDS[p] for n, p in sorted(grants[kind].items())
                    }
        return {
            "allow_register": self.registration_open(),
            "version": __version__,
            "users": [
                {"username": n, "admin": bool(u["admin"]), "password": u["password_hash"]}
                for n, u in sorted(data.users.items())
            ],
            "groups": {n: sorted(g["members"]) for n, g in sorted(data.groups.items())},
            "packages": packages,
            "pending_users": [
                {"username": n, "password": h} for n, h in sorted(self._pending_hashes().items())
            ],
        }

    # Changing (admins) ------------------------------------------------------
    def create_user(self, identity: Identity, username: str, password: str | None) -> dict:
        self.require_admin(identity, "create users")
        access = self.editable()
        check_name("user", username)
        access.create_user(username, self._hash(password))
        self.record(identity, act.USER_CREATE, user=username, admin=False)
        return {"username": username, "admin": False}

    def approve_user(self, identity: Identity, username: str) -> dict:
        """A pending sign-up becomes a user (not an admin) who can log in with the
        password they signed up with; approving an existing user changes nothing."""
        self.require_admin(identity, "approve users")
        access = self.editable()
        if username in self._pending_hashes():
            access.approve_user(username)
            self.record(identity, act.USER_APPROVE, user=username)
            return {"username": username, "approved": True}
        if not self.access.user_exists(username):
            raise NoSuchUser(f"No such user: {username}")
        return {"username": username}

    def reject_user(self, identity: Identity, username: str) -> dict:
        """Drop a pending sign-up (404 when nobody of that name waits)."""
        self.require_admin(identity, "reject sign-ups")
        access = self.editable()
        if username not in self._pending_hashes():
            raise NoSuchUser(f"No pending sign-up: {username}")
        access.reject_pending_user(username)
        self.record(identity, act.USER_REJECT, user=username)
        return {"rejected": username}

    def delete_user(self, identity: Identity, username: str) -> dict:
        self.require_admin(identity, "delete users")
        access = self.editable()
        if not access.user_exists(username) and username in self._pending_hashes():
            # 1.x's DELETE /admin/user/<name> also removed a pending sign-up.
            access.reject_pending_user(username)
            self.record(identity, act.USER_DELETE, user=username, pending=True)
            return {"deleted": username}
        self._keep_an_admin(identity, username, "delete")
        access.delete_user(username)
        self.record(identity, act.USER_DELETE, user=username)
        return {"deleted": username}

    def set_admin(self, identity: Identity, username: str, admin: bool | str | None) -> dict:
        self.require_admin(identity, "change admins")
        access = self.editable()
        admin = _flag(admin, "admin")
        if not admin:
            self._keep_an_admin(identity, username, "remove the admin rights of")
        access.set_admin(username, admin)
        self.record(identity, act.USER_ADMIN, user=username, admin=admin)
        return {"username": username, "admin": admin}

    def _keep_an_admin(self, identity: Identity, username: str, what: str) -> None:
        """Refuse a change that would leave nobody able to administer the index.

        An admin may not demote or delete themselves here (another admin can); an
        admin through ``auth.admins`` in the ini stays one whatever the database says;
        and the last admin always stays.
        """
        if not self.access.user_exists(username) or not self.access.is_admin(username):
            return
        if username == identity.username:
            raise AdminGuard(f"You may not {what} yourself; ask another admin")
        ini_admins: frozenset[str] = getattr(self.access, "extra_admins", frozenset())
        if username in ini_admins:
            raise AdminGuard(
                f"{username} is an admin through auth.admins in the ini file; edit the ini to change that"
            )
        others = [
            name
            for name in self.access.export_data().users
            if name != username and self.access.is_admin(name)
        ]
        if not others:
            raise AdminGuard(f"{username} is the last admin; make another admin first")

    def set_membership(self, identity: Identity, username: str, group: str, member: bool) -> dict:
        self.require_admin(identity, "change group members")
        self.editable().set_membership(username, group, member)
        self.record(identity, act.MEMBER_ADD if member else act.MEMBER_REMOVE, user=username, group=group)
        return {"username": username, "group": group, "member": member}

    def create_group(self, identity: Identity, group: str) -> dict:
        self.require_admin(identity, "create groups")
        access = self.editable()
        if group in PSEUDO_GROUPS:
            raise InvalidAccessData(f"'{group}' is a reserved name")
        access.create_group(check_name("group", group))
        self.record(identity, act.GROUP_CREATE, group=group, admin=False)
        return {"group": group}

    def delete_group(self, identity: Identity, group: str) -> dict:
        self.require_admin(identity, "delete groups")
        self.editable().delete_group(group)
        self.record(identity, act.GROUP_DELETE, group=group)
        return {"deleted": group}

    def edit_permission(
        self, identity: Identity, project: str, kind: str, name: str, word: str, grant: bool
    ) -> dict:
        """Grant or revoke 1.x's ``read`` or ``write`` on a project.

        Our grants are ``r`` or ``rw`` (write includes read), so: granting
        ``write`` gives ``rw``; granting ``read`` gives ``r`` unless ``rw`` is
        already there; revoking ``write`` leaves ``r``; revoking ``read``
        removes the grant (1.x's "write without read" cannot be expressed).
        """
        self.require_admin(identity, "change permissions")
        access = self.editable()
        if kind not in ("user", "group") or word not in ("read", "write"):
            raise InvalidAccessData("Expected user|group and read|write")
        project = canonicalize_name(project)
        users, groups = access.project_grants(project)
        current = (users if kind == "user" else groups).get(name)
        new: str | None
        if grant:
            new = READ_WRITE if word == "write" or current == READ_WRITE else READ
        elif word == "write":
            new = READ if current else None
        else:
            new = None
        if new != current:
            access.set_grant(project, kind, name, new)
            self.record_grant(identity, project, kind, name, new)
        return {"package": project, kind: name, "permissions": PERMISSION_WORDS[new] if new else []}

    # The caller's own account ---------------------------------------------
    def registration_open(self) -> bool:
        """Whether anybody may sign up now: only on a backend that keeps pending
        users (``pypi.auth = sql``); the switch admins set at run time (1.x's
        ``POST /admin/register``, kept in the database) wins over
        ``pypi.allow_register`` from the ini, which is off unless set."""
        access = self.access
        if not isinstance(access, EditableAccess) or not access.supports_registration:
            return False
        flag = access.registration_flag()
        return getattr(access, "allow_register_default", False) if flag is None else flag

    def register(self, identity: Identity, username: str, password: str | None) -> dict:
        """1.x's self-registration (``PUT /api/user/<name>``): a pending user.

        Refused (403) unless registration is open. The sign-up cannot log in
        until an admin approves it; 409 if the name is a user or already
        pending, 429 when MAX_PENDING_USERS sign-ups wait already. Unlike 1.x,
        the first sign-up never becomes an admin (an anonymous caller never
        gets admin rights).
        """
        if not self.registration_open():
            raise Forbidden(
                "Self-registration is off: an admin creates users (PUT /admin/user/<name> or ppc-access)"
            )
        if identity.token is not None:
            raise Forbidden("An API token cannot sign up")
        username = (username or "").strip()
        check_name("user", username)
        if len(username) > MAX_SIGNUP_NAME:
            raise InvalidAccessData(f"A user name has at most {MAX_SIGNUP_NAME} characters")
        password = password or ""
        check_signup_password(password)
        access = self.editable()
        # Checked before hashing too: a taken name costs no argon2 work.
        if self.name_taken(username):
            raise AccessConflict(f"User {username!r} exists already or waits for approval")
        access.add_pending_user(username, hash_password(password), limit=MAX_PENDING_USERS)
        self.record(identity, act.USER_SIGNUP, user=username)
        return {
            "username": username,
            "pending": True,
            "message": "Signed up; an admin must approve the account before it can log in",
        }

    def set_allow_register(self, identity: Identity, allow: bool | str | None) -> dict:
        """Switch self-registration on or off at run time (kept in the database)."""
        self.require_admin(identity, "change registration")
        allow = _flag(allow, "allow")
        access = self.access
        if not isinstance(access, EditableAccess) or not access.supports_registration:
            if allow:
                raise Forbidden(
                    f"Self-registration needs pypi.auth = sql; the access backend "
                    f"({type(access).__name__}) cannot keep pending users: an "
                    "admin creates users"
                )
            return {"allow_register": False}
        access.set_registration_flag(allow)
        self.record(identity, act.REGISTRATION, allow=allow)
        return {"allow_register": allow}

    def change_password(self, identity: Identity, old: str | None, new: str | None) -> None:
        """The caller's own password; 403 when the old one is wrong (as 1.x)."""
        if identity.username is None:  # anonymous
            raise _deny(identity, "change a password")
        if identity.token is not None:
            raise Forbidden("An API token cannot change its user's password")
        access = self.editable()
        if not old or access.authenticate(identity.username, old) is None:
            raise Forbidden("The old password is not right; nothing was changed")
        access.set_password_hash(identity.username, self._hash(new))
        self.record(identity, act.USER_PASSWORD, user=identity.username)

    def login(self, username: str | None, password: str | None) -> Identity:
        """The identity behind a username and password, or 403 (1.x's ``/acct/login``)."""
        identity = None
        if username and password and username != TOKEN_USERNAME:
            identity = self.access.authenticate(username, password)
        if identity is None:
            raise Forbidden("Wrong user name or password")
        return identity

    @staticmethod
    def _hash(password: str | None) -> str:
        if not password:
            raise InvalidAccessData("The password is empty")
        return hash_password(password)
