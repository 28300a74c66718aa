"""Plain data shared by the service, the backends and the views."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: PEP 658: a distribution's core metadata lives beside it, under its name plus
#: this suffix (stored so, served so, and looked for so on an upstream index).
METADATA_SUFFIX = ".metadata"


def metadata_name(filename: str) -> str:
    """The name of the PEP 658 metadata file of distribution ``filename``."""
    return filename + METADATA_SUFFIX


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to whole microseconds."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class FileRecord:
    """One stored distribution file, as the metadata index keeps it (SPEC section 7).

    ``project`` is the canonical (PEP 503) name; ``name`` is the display name the
    uploader used. ``key`` is the storage key the backend files it under.
    ``storage_tag`` is the backend's tag of the object this row was read from
    (:attr:`StoredObject.tag`; "" when unknown): while storage lists the same
    tag, a rebuild keeps the row without asking storage for the metadata. It
    is bookkeeping, not part of what the record says, so equality ignores it.
    """

    project: str
    name: str
    version: str
    filename: str
    size: int
    sha256: str
    md5: str = ""
    requires_python: str | None = None
    summary: str | None = None
    upload_time: datetime = field(default_factory=utcnow)
    uploader: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    metadata_sha256: str | None = None
    key: str = ""
    storage_tag: str = field(default="", compare=False)

    def replace(self, **changes: Any) -> FileRecord:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ProjectSummary:
    """One row of the project list."""

    project: str
    name: str
    last_modified: datetime
    summary: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """What storage knows of one stored object: its size and the metadata written with it.

    ``tag`` changes whenever the object is written (its bytes or its metadata):
    two listings showing the same tag show the same object with the same
    metadata. "" when the backend cannot tell (then nothing is reused by it).
    """

    project: str
    filename: str
    size: int
    metadata: dict[str, str]
    key: str = ""
    last_modified: datetime | None = None
    tag: str = ""


@dataclass(frozen=True)
class Redirect:
    """Storage's answer 'fetch the bytes from this URL'."""

    url: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TokenScope:
    """What an API token may do on behalf of its user (SPEC section 8).

    ``projects``: canonical names it is limited to, or None for every project
    its user may use; ``upload``: False for a read-only token. ``owner_admin``:
    the user is an admin, so the token reaches every project (still within its
    own limits; a token never gets admin-only actions).
    """

    token_id: str
    projects: frozenset[str] | None = None
    upload: bool = False
    owner_admin: bool = False


@dataclass(frozen=True)
class Identity:
    """Who is asking: a user name (None when anonymous) and the groups they belong to.

    ``token`` is set when the caller logged in with an API token instead of a
    password: the user's rights, narrowed to the token's scope.
    """

    username: str | None
    groups: frozenset[str] = frozenset()
    is_admin: bool = False
    token: TokenScope | None = None

    @property
    def authenticated(self) -> bool:
        return self.username is not None


ANONYMOUS = Identity(None)
