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

The document codec lives in ``aws_secrets_document.py`` and the writes in
``aws_secrets_writes.py``; this module reads and stores the secret and answers
the checks.
"""

from __future__ import annotations

import copy
import hmac
import json
import threading
import time
from collections.abc import Callable

import boto3
import botocore.config
import botocore.exceptions
from packaging.utils import canonicalize_name

from ..errors import BackendUnavailable, ConfigError
from ..models import Identity, TokenScope, utcnow

# The document codec and the writes live in aws_secrets_document.py and
# aws_secrets_writes.py; their names stay importable from here.
from .aws_secrets_document import TOKEN_PREFIX, _empty, _from_list, _normalise, _sha256, _to_list, _token_info  # noqa: F401
from .aws_secrets_writes import SecretsManagerWrites
from .base import READ_WRITE
from .editable import AccessData
from .passwords import verify_dummy, verify_password

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


class SecretsManagerAccess(SecretsManagerWrites):
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

    def _change(self, fn: Callable[[dict], None]) -> None:
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

    def close(self) -> None:
        self.client.close()


# pypicloud 1.x's class name, for inis that name it with a dotted path.
AWSSecretsManagerAccessBackend = SecretsManagerAccess
