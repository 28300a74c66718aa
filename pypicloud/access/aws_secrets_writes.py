"""The writes of the Secrets Manager access backend: users, groups, grants, tokens, imports.

Each write reads the newest document, applies itself and stores a new secret
version (:meth:`SecretsManagerWrites._change`, implemented by
:class:`pypicloud.access.aws_secrets_manager.SecretsManagerAccess`). Mixed into it.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable
from datetime import datetime

from packaging.utils import canonicalize_name

from ..models import utcnow
from .aws_secrets_document import TOKEN_PREFIX, _empty, _sha256, _to_list, _token_info
from .base import PSEUDO_GROUPS
from .editable import (
    AccessConflict,
    AccessData,
    EditableAccess,
    InvalidAccessData,
    TokenInfo,
    check_hash,
    check_name,
    check_permission,
)


class SecretsManagerWrites(EditableAccess):
    """Changes to the access document; the class it is mixed into reads and stores it."""

    @abc.abstractmethod
    def _current(self) -> dict:
        """The document as this process knows it (re-read when older than the cache time)."""

    @abc.abstractmethod
    def _change(self, fn: Callable[[dict], None]) -> None:
        """Apply ``fn`` to the newest document and store it (nothing if ``fn`` raises)."""

    @staticmethod
    def _need(doc: dict, kind: str, name: str) -> None:
        if name not in doc["users" if kind == "user" else "groups"]:
            raise AccessConflict(f"No such {kind}: {name!r}")

    def create_user(self, username: str, password_hash: str, *, admin: bool = False) -> None:
        check_name("user", username)
        check_hash(password_hash, username)

        def change(doc):
            if username in doc["users"]:
                raise AccessConflict(f"User {username!r} exists already")
            doc["users"][username] = password_hash
            if admin:
                doc["admins"].append(username)

        self._change(change)

    def set_password_hash(self, username: str, password_hash: str) -> None:
        check_hash(password_hash, username)

        def change(doc):
            self._need(doc, "user", username)
            doc["users"][username] = password_hash

        self._change(change)
        self.forget_credentials(username)

    def set_admin(self, username: str, admin: bool) -> None:
        def change(doc):
            self._need(doc, "user", username)
            doc["admins"] = [a for a in doc["admins"] if a != username] + ([username] if admin else [])

        self._change(change)

    def delete_user(self, username: str) -> None:
        def change(doc):
            self._need(doc, "user", username)
            del doc["users"][username]
            doc["admins"] = [a for a in doc["admins"] if a != username]
            for members in doc["groups"].values():
                if username in members:
                    members.remove(username)
            for entry in doc["packages"].values():
                entry.get("users", {}).pop(username, None)
            doc["tokens"] = {i: t for i, t in doc["tokens"].items() if t["username"] != username}

        self._change(change)
        self.forget_credentials(username)

    def create_group(self, name: str, *, admin: bool = False) -> None:
        check_name("group", name)

        def change(doc):
            if name in doc["groups"]:
                raise AccessConflict(f"Group {name!r} exists already")
            doc["groups"][name] = []
            if admin:
                doc["admin_groups"].append(name)

        self._change(change)

    def delete_group(self, name: str) -> None:
        def change(doc):
            self._need(doc, "group", name)
            del doc["groups"][name]
            doc["admin_groups"] = [g for g in doc["admin_groups"] if g != name]
            for entry in doc["packages"].values():
                entry.get("groups", {}).pop(name, None)

        self._change(change)

    def set_membership(self, username: str, group: str, member: bool) -> None:
        def change(doc):
            self._need(doc, "user", username)
            self._need(doc, "group", group)
            members = [m for m in doc["groups"][group] if m != username]
            doc["groups"][group] = members + ([username] if member else [])

        self._change(change)

    def set_grant(self, project: str, kind: str, name: str, permission: str | None) -> None:
        if permission is not None:
            check_permission(permission)
        if kind not in ("user", "group"):
            raise ValueError(f"kind must be 'user' or 'group', not {kind!r}")
        project = canonicalize_name(project)

        def change(doc):
            if not (kind == "group" and name in PSEUDO_GROUPS):
                self._need(doc, kind, name)
            # Drop the grant under every spelling of the project, then set it once.
            for key, entry in doc["packages"].items():
                if canonicalize_name(key) == project:
                    entry.get(kind + "s", {}).pop(name, None)
            if permission is not None:
                entry = doc["packages"].setdefault(project, {"users": {}, "groups": {}})
                entry.setdefault(kind + "s", {})[name] = _to_list(permission)
            doc["packages"] = {k: v for k, v in doc["packages"].items() if v.get("users") or v.get("groups")}

        self._change(change)

    def create_token(
        self,
        username: str,
        *,
        projects: list[str] | None = None,
        upload: bool = False,
        expires_at: datetime | None = None,
        description: str | None = None,
    ) -> tuple[str, TokenInfo]:
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        names = None if projects is None else sorted({canonicalize_name(p) for p in projects})
        if names is not None and not names:
            raise InvalidAccessData("A token limited to projects needs at least one project")
        row = {
            "secret_sha256": _sha256(secret),
            "username": username,
            "projects": names,
            "upload": upload,
            "description": description,
            "created_at": utcnow().isoformat(),
            "expires_at": expires_at.isoformat() if expires_at else None,
        }

        def change(doc):
            self._need(doc, "user", username)
            doc["tokens"][token_id] = row

        self._change(change)
        return f"{TOKEN_PREFIX}_{token_id}_{secret}", _token_info(token_id, row)

    def tokens(self, username: str | None = None) -> list[TokenInfo]:
        listed = [_token_info(i, t) for i, t in self._current()["tokens"].items()]
        return sorted(
            (t for t in listed if username is None or t.username == username), key=lambda t: t.created_at
        )

    def delete_token(self, token_id: str) -> None:
        def change(doc):
            if doc["tokens"].pop(token_id, None) is None:
                raise AccessConflict(f"No such token: {token_id!r}")

        self._change(change)

    def load(self, data: AccessData, *, replace: bool = False) -> None:
        def change(doc):
            if replace:
                pending = doc.get("pending_users", {})
                doc.clear()
                doc.update(_empty(), pending_users=pending)
            for name, user in data.users.items():
                doc["users"][name] = user["password_hash"]
                doc["admins"] = [a for a in doc["admins"] if a != name] + ([name] if user["admin"] else [])
            for name, group in data.groups.items():
                doc["groups"][name] = list(group["members"])
                doc["admin_groups"] = [g for g in doc["admin_groups"] if g != name] + (
                    [name] if group["admin"] else []
                )
            for project, grants in data.packages.items():
                entry = doc["packages"].setdefault(project, {"users": {}, "groups": {}})
                for user, perm in grants["users"].items():
                    entry.setdefault("users", {})[user] = _to_list(perm)
                for group, perm in grants["groups"].items():
                    entry.setdefault("groups", {})[group] = _to_list(perm)

        self._change(change)
        self.forget_credentials()
