"""Access data kept as one JSON document in AWS Secrets Manager (``pypi.auth = aws_secrets_manager``).

pypicloud 1.x's backend and document, which stay readable both ways::

    {"users": {"alice": "<password hash>"},
     "groups": {"dev": ["alice", "bob"]},
     "admins": ["alice"],
     "packages": {"my-lib": {"users": {"bob": ["read", "write"]},
                             "groups": {"dev": ["read"]}}}}

New keys this version adds (1.x ignores them): ``admin_groups`` (groups whose
members are admins) and ``tokens`` (API tokens: a SHA-256 of the secret only).

Each process keeps the document in memory and asks Secrets Manager for it again
at most every ``auth.secret_cache_seconds``; its own changes are seen at once.
A change reads the newest document, applies itself and writes a new secret
version. Secrets Manager has no conditional write, so two processes changing
the access data in the same instant can lose one change (the last write wins):
make changes through one process at a time (``ppc-access``, the admin UI).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import datetime

import boto3
import botocore.config
import botocore.exceptions
from packaging.utils import canonicalize_name

from ..errors import BackendUnavailable, ConfigError
from ..models import Identity, TokenScope, utcnow
from .base import PSEUDO_GROUPS, READ, READ_WRITE
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
from .passwords import verify_dummy, verify_password

TOKEN_PREFIX = "ppc"
_NETWORK_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionError,
)
_OUTAGE_CODES = {"InternalServiceError", "ThrottlingException", "ServiceUnavailable"}
_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _to_list(permission: str) -> list[str]:
    return ["read", "write"] if permission == READ_WRITE else ["read"]


def _from_list(value) -> str | None:
    if isinstance(value, str):
        value = [value]
    perms = set(value or ())
    return READ_WRITE if "write" in perms else READ if "read" in perms else None


def _empty() -> dict:
    return {"users": {}, "groups": {}, "admins": [], "admin_groups": [], "packages": {}, "tokens": {}}


def _normalise(doc) -> dict:
    if not isinstance(doc, dict):
        raise BackendUnavailable("The access secret does not hold a JSON object")
    for key, value in _empty().items():
        doc.setdefault(key, value)
    return doc


def _token_info(token_id: str, row: dict) -> TokenInfo:
    return TokenInfo(
        token_id,
        row["username"],
        tuple(row["projects"]) if row.get("projects") is not None else None,
        bool(row.get("upload")),
        row.get("description"),
        datetime.fromisoformat(row["created_at"]),
        datetime.fromisoformat(row["expires_at"]) if row.get("expires_at") else None,
    )


class SecretsManagerAccess(EditableAccess):
    """Users, groups, grants and tokens in one Secrets Manager secret, editable."""

    def __init__(
        self,
        *,
        secret_id: str,
        kms_key_id: str | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile_name: str | None = None,
        check_seconds: float = 30,
        admins=(),
        **policy,
    ):
        super().__init__(**policy)
        self.secret_id, self.kms_key_id = secret_id, kms_key_id
        session = boto3.session.Session(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            region_name=region_name,
            profile_name=profile_name,
        )
        self.client = session.client(
            "secretsmanager",
            endpoint_url=endpoint_url,
            config=botocore.config.Config(
                connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"}
            ),
        )
        self.check_seconds = check_seconds
        self.extra_admins = frozenset(admins)
        self._doc: dict | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> SecretsManagerAccess:
        secret_id = settings.get_str("auth.secret_id")
        if not secret_id:
            raise ConfigError("auth.secret_id", None, "the name or ARN of the secret")
        if "auth.region" in settings and "auth.region_name" not in settings:
            raise ConfigError("auth.region", settings.get_str("auth.region"), "the key is auth.region_name")
        kwargs = {
            k: settings.get_str(f"auth.{k}")
            for k in (
                "region_name",
                "endpoint_url",
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
                "profile_name",
            )
        }
        try:
            backend = cls(
                secret_id=secret_id,
                kms_key_id=settings.get_str("auth.kms_key_id"),
                check_seconds=settings.get_int("auth.secret_cache_seconds", 30, minimum=0),
                admins=settings.get_list("auth.admins"),
                **kwargs,
                **cls.base_kwargs_from_settings(settings),
            )
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigError("auth.profile_name", kwargs["profile_name"], str(exc)) from None
        if backend.client.meta.region_name is None:
            raise ConfigError("auth.region_name", None, "the secret's AWS region")
        try:
            backend._doc = backend._fetch()
        except botocore.exceptions.NoCredentialsError:
            raise ConfigError("auth.aws_access_key_id", None, "no AWS credentials found") from None
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _CREDENTIAL_CODES or status == 403:
                raise ConfigError(
                    "auth.aws_access_key_id", None, f"Secrets Manager refused the credentials: {exc}"
                ) from None
            raise ConfigError("auth.secret_id", secret_id, f"cannot read the secret: {exc}") from None
        except BackendUnavailable as exc:
            raise ConfigError(
                "auth.endpoint_url" if kwargs["endpoint_url"] else "auth.region_name",
                kwargs["endpoint_url"] or kwargs["region_name"],
                exc.message,
            ) from None
        return backend

    # The document ---------------------------------------------------------
    def _fetch(self) -> dict:
        """The newest document; an empty one if the secret does not exist yet."""
        try:
            answer = self.client.get_secret_value(SecretId=self.secret_id)
        except _NETWORK_ERRORS as exc:
            raise BackendUnavailable(f"Secrets Manager is unavailable: {exc}") from None
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                return _empty()
            if code in _OUTAGE_CODES:
                raise BackendUnavailable(f"Secrets Manager is unavailable: {exc}") from None
            raise
        try:
            return _normalise(json.loads(answer.get("SecretString") or "{}"))
        except ValueError:
            raise BackendUnavailable("The access secret does not hold valid JSON") from None

    def _store(self, doc: dict) -> None:
        text = json.dumps(doc, sort_keys=True)
        try:
            try:
                self.client.put_secret_value(SecretId=self.secret_id, SecretString=text)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
                extra = {"KmsKeyId": self.kms_key_id} if self.kms_key_id else {}
                self.client.create_secret(Name=self.secret_id, SecretString=text, **extra)
        except _NETWORK_ERRORS as exc:
            raise BackendUnavailable(f"Secrets Manager is unavailable: {exc}") from None

    def _current(self) -> dict:
        now = time.monotonic()
        if self._doc is not None and now - self._checked_at < self.check_seconds:
            return self._doc
        with self._lock:
            if self._doc is not None and now - self._checked_at < self.check_seconds:
                return self._doc
            fresh = self._fetch()
            if self._doc is not None and fresh != self._doc:
                self.forget_credentials()  # a password or user may have changed
            self._doc, self._checked_at = fresh, now
            return fresh

    def _change(self, fn) -> None:
        """Apply ``fn`` to the newest document and store it (nothing if ``fn`` raises)."""
        with self._lock:
            doc = copy.deepcopy(self._fetch())
            fn(doc)
            self._store(doc)
            self._doc, self._checked_at = doc, time.monotonic()

    # Reading --------------------------------------------------------------
    def _verify(self, username: str, password: str) -> bool:
        hashed = self._current()["users"].get(username)
        if hashed is None:
            return verify_dummy(password)
        return verify_password(password, hashed)

    def authenticate(self, username: str, password: str):
        self._current()  # a changed document clears the login cache first
        return super().authenticate(username, password)

    def groups_of(self, username: str) -> set[str]:
        return {g for g, members in self._current()["groups"].items() if username in members}

    def is_admin(self, username: str) -> bool:
        doc = self._current()
        if username in doc["admins"] or username in self.extra_admins:
            return True
        mine = self.groups_of(username)
        return bool(mine & (set(doc["admin_groups"]) | self.extra_admins))

    def user_exists(self, username: str) -> bool:
        return username in self._current()["users"]

    def project_grants(self, project: str) -> tuple[dict[str, str], dict[str, str]]:
        users: dict[str, str] = {}
        groups: dict[str, str] = {}
        for name, entry in self._current()["packages"].items():
            if canonicalize_name(name) != project:
                continue
            for user, perms in entry.get("users", {}).items():
                if (perm := _from_list(perms)) and users.get(user) != READ_WRITE:
                    users[user] = perm
            for group, perms in entry.get("groups", {}).items():
                if (perm := _from_list(perms)) and groups.get(group) != READ_WRITE:
                    groups[group] = perm
        return users, groups

    def check_health(self) -> None:
        self._fetch()

    def export_data(self) -> AccessData:
        doc = self._current()
        data = AccessData()
        for name, hashed in doc["users"].items():
            data.users[name] = {"password_hash": hashed, "admin": name in doc["admins"]}
        for name, members in doc["groups"].items():
            data.groups[name] = {
                "members": sorted(m for m in members if m in doc["users"]),
                "admin": name in doc["admin_groups"],
            }
        for name in doc["packages"]:
            users, groups = self.project_grants(canonicalize_name(name))
            if users or groups:
                data.packages[canonicalize_name(name)] = {"users": users, "groups": groups}
        return data

    def authenticate_token(self, token: str) -> Identity | None:
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            return None
        row = self._current()["tokens"].get(token_id)
        expected = row["secret_sha256"] if row else None
        if not hmac.compare_digest(expected or "-" * 64, _sha256(secret)) or row is None:
            return None
        info = _token_info(token_id, row)
        if info.expires_at is not None and info.expires_at <= utcnow():
            return None
        if not self.user_exists(info.username):
            return None
        owner = self.identity(info.username)
        scope = TokenScope(
            token_id,
            frozenset(info.projects) if info.projects is not None else None,
            upload=info.upload,
            owner_admin=owner.is_admin,
        )
        return Identity(info.username, owner.groups, is_admin=False, token=scope)

    # Editing --------------------------------------------------------------
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

    def close(self) -> None:
        self.client.close()


# pypicloud 1.x's class name, for inis that name it with a dotted path.
AWSSecretsManagerAccessBackend = SecretsManagerAccess
