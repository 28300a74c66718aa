"""pypicloud 1.x's access document in AWS Secrets Manager: reading and writing its parts.

The document format is described in :mod:`pypicloud.access.aws_secrets_manager`.
Grants are 1.x's permission lists (``["read", "write"]``), tokens keep only a
SHA-256 of their secret, and a missing key reads as empty.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from ..errors import BackendUnavailable
from .base import READ, READ_WRITE
from .editable import TokenInfo

TOKEN_PREFIX = "ppc"


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
