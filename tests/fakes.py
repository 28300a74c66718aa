"""In-memory backends of the three families, for fast tests of the rules above them.

``MemoryStorage``, ``MemoryIndex`` and ``MemoryAccess`` keep everything in
Python objects. Each passes its family's contract suite (tests/contract/), so a
test built on them checks the service's rules against backends that behave as
the real ones do, in microseconds and without a disk, a database or a server.

Instances built over one shared store (``MemoryStorage(store=...)``, ...) stand
for several processes or a restart, as the contract suites need. The classes
are also backends by dotted name: ``pypi.storage = tests.fakes.MemoryStorage``
(each ``from_settings`` call starts from an empty store).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, Self

from packaging.utils import canonicalize_name

from pypicloud.access.base import PSEUDO_GROUPS
from pypicloud.access.editable import (
    AccessConflict,
    AccessData,
    EditableAccess,
    InvalidAccessData,
    TokenInfo,
    check_hash,
    check_name,
    check_permission,
)
from pypicloud.access.passwords import verify_dummy, verify_password
from pypicloud.errors import FileNotFound, StorageConflict
from pypicloud.events import Event
from pypicloud.index.base import Intent, MetadataIndex
from pypicloud.index.eventlog import EventQuery
from pypicloud.models import FileRecord, Identity, ProjectSummary, StoredObject, TokenScope, utcnow
from pypicloud.settings import Settings
from pypicloud.storage.base import ReadStream, Storage
from pypicloud.storage.base import check_name as check_segment
from tests.fake_webhooks import MemoryWebhookQueue

CHUNK = 1024 * 1024


# Storage ----------------------------------------------------------------------
@dataclass
class StorageStore:
    """What several MemoryStorage instances share: ``(project, filename) -> (bytes, metadata, time)``."""

    objects: dict[tuple[str, str], tuple[bytes, dict[str, str], datetime]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _BytesReader(ReadStream):
    def __init__(self, data: bytes):
        self._data, self._pos, self._closed = data, 0, False

    def read(self, size: int | None = -1) -> bytes:
        if self._closed:
            return b""
        end = len(self._data) if size is None or size < 0 else self._pos + size
        block = self._data[self._pos : end]
        self._pos += len(block)
        return block

    def close(self) -> None:
        self._closed = True


class MemoryStorage(Storage):
    """Package files in a dict; writes are atomic because the dict entry is set whole."""

    SETTINGS_KEYS = frozenset({"storage.read_only"})

    def __init__(self, store: StorageStore | None = None, read_only: bool = False):
        self.store = store if store is not None else StorageStore()
        self.read_only = read_only

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(read_only=settings.get_bool("storage.read_only", False))

    def _object(self, project: str, filename: str, data: bytes, meta: dict[str, str], when: datetime):
        return StoredObject(project, filename, len(data), dict(meta), self.key_for(project, filename), when)

    def key_for(self, project: str, filename: str) -> str:
        return f"{check_segment(project, 'project name')}/{check_segment(filename)}"

    def location(self) -> tuple[object, ...]:
        # Instances over one store are the same place, like processes on one bucket.
        return ("fake-memory", id(self.store))

    def put(
        self,
        project: str,
        filename: str,
        stream: BinaryIO,
        metadata: dict[str, str],
        *,
        overwrite: bool = False,
    ) -> StoredObject:
        self.check_writable()
        self.key_for(project, filename)
        # Read the whole body first (in chunks, as a real backend streams it):
        # a body that fails midway stores nothing.
        parts = []
        while block := stream.read(CHUNK):
            parts.append(block)
        data, when = b"".join(parts), utcnow()
        with self.store.lock:
            if not overwrite and (project, filename) in self.store.objects:
                raise StorageConflict(f"{project}/{filename} exists already")
            self.store.objects[(project, filename)] = (data, dict(metadata), when)
        return self._object(project, filename, data, metadata, when)

    def _get(self, project: str, filename: str) -> tuple[bytes, dict[str, str], datetime]:
        self.key_for(project, filename)
        with self.store.lock:
            found = self.store.objects.get((project, filename))
        if found is None:
            raise FileNotFound(f"{project}/{filename}")
        return found

    def open(self, project: str, filename: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        data = self._get(project, filename)[0]
        end = len(data) if length is None else offset + length
        return _BytesReader(data[offset:end])  # a ReadStream, as every backend returns

    def stat(self, project: str, filename: str) -> StoredObject | None:
        try:
            data, meta, when = self._get(project, filename)
        except FileNotFound:
            return None
        return self._object(project, filename, data, meta, when)

    def delete(self, project: str, filename: str) -> bool:
        self.check_writable()
        self.key_for(project, filename)
        with self.store.lock:
            return self.store.objects.pop((project, filename), None) is not None

    def copy(
        self,
        project: str,
        filename: str,
        dest_project: str,
        dest_filename: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        self.check_writable()
        self.key_for(dest_project, dest_filename)
        data, meta, _ = self._get(project, filename)
        meta, when = dict(meta if metadata is None else metadata), utcnow()
        with self.store.lock:
            self.store.objects[(dest_project, dest_filename)] = (data, meta, when)
        return self._object(dest_project, dest_filename, data, meta, when)

    def update_metadata(self, project: str, filename: str, metadata: dict[str, str]) -> StoredObject:
        self.check_writable()
        data, _, _ = self._get(project, filename)
        when = utcnow()
        with self.store.lock:
            self.store.objects[(project, filename)] = (data, dict(metadata), when)
        return self._object(project, filename, data, metadata, when)

    def list(self, metadata_for: Callable[[str], bool] | None = None) -> Iterator[StoredObject]:
        with self.store.lock:
            items = list(self.store.objects.items())
        for (project, filename), (data, meta, when) in items:
            wanted = metadata_for is None or metadata_for(filename)
            yield self._object(project, filename, data, meta if wanted else {}, when)

    def check_health(self) -> None:
        """Always usable: the dict is right here."""


# Metadata index ------------------------------------------------------------------
@dataclass
class IndexStore:
    """What several MemoryIndex instances share (one database, many processes)."""

    records: dict[str, FileRecord] = field(default_factory=dict)
    generation: int = 0
    urls: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    local: set[str] = field(default_factory=set)
    counters: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)
    intents: dict[str, Intent] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.RLock = field(default_factory=threading.RLock)
    repair: threading.Lock = field(default_factory=threading.Lock)


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


class MemoryIndex(MemoryWebhookQueue, MetadataIndex):
    """File records in a dict; every change bumps the shared generation counter."""

    def __init__(self, store: IndexStore | None = None):
        self.store = store if store is not None else IndexStore()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls()

    def _bump(self) -> None:
        self.store.generation += 1

    def add(self, record: FileRecord) -> None:
        with self.store.lock:
            self.store.records[record.filename] = record.replace(upload_time=_utc(record.upload_time))
            self._bump()

    def get(self, filename: str) -> FileRecord | None:
        with self.store.lock:
            return self.store.records.get(filename)

    def remove(self, filename: str) -> bool:
        with self.store.lock:
            if self.store.records.pop(filename, None) is None:
                return False
            self._bump()
            return True

    def files(self, project: str) -> list[FileRecord]:
        with self.store.lock:
            return sorted((r for r in self.store.records.values() if r.project == project), key=_filename)

    def projects(self) -> list[ProjectSummary]:
        newest: dict[str, FileRecord] = {}
        with self.store.lock:
            for record in self.store.records.values():
                best = newest.get(record.project)
                if best is None or (record.upload_time, record.filename) > (best.upload_time, best.filename):
                    newest[record.project] = record
        return [
            ProjectSummary(r.project, r.name, r.upload_time, r.summary) for _, r in sorted(newest.items())
        ]

    def set_yanked(self, filename: str, yanked: bool, reason: str | None = None) -> bool:
        with self.store.lock:
            record = self.store.records.get(filename)
            if record is None:
                return False
            self.store.records[filename] = record.replace(
                yanked=yanked, yanked_reason=reason if yanked else None
            )
            self._bump()
            return True

    def generation(self) -> int:
        return self.store.generation

    def all_records(self) -> Iterable[FileRecord]:
        with self.store.lock:
            return list(self.store.records.values())

    def replace_all(self, records: Iterable[FileRecord]) -> None:
        fresh = {r.filename: r.replace(upload_time=_utc(r.upload_time)) for r in records}
        with self.store.lock:
            self.store.records = fresh
            self._bump()

    def count(self) -> int:
        return len(self.store.records)

    def get_url(self, key: str) -> tuple[str, datetime] | None:
        with self.store.lock:
            return self.store.urls.get(key)

    def set_url(self, key: str, url: str, expires_at: datetime) -> None:
        with self.store.lock:
            self.store.urls[key] = (url, _utc(expires_at))

    def check_health(self) -> None:
        """Always usable."""

    def begin_intent(self, op: str, project: str, filename: str) -> str | None:
        with self.store.lock:
            intent_id = f"intent-{next(self.store.ids)}"
            self.store.intents[intent_id] = Intent(intent_id, op, project, filename, utcnow())
        return intent_id

    def end_intent(self, intent_id: str) -> None:
        with self.store.lock:
            self.store.intents.pop(intent_id, None)

    def open_intents(self, older_than: datetime) -> list[Intent]:
        with self.store.lock:
            return [i for i in self.store.intents.values() if i.created <= older_than]

    @contextlib.contextmanager
    def repair_lock(self) -> Iterator[bool]:
        got = self.store.repair.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                self.store.repair.release()

    def mark_local(self, project: str) -> None:
        with self.store.lock:
            self.store.local.add(project)

    def was_local(self, project: str) -> bool:
        return project in self.store.local

    def counter(self, name: str) -> int:
        with self.store.lock:
            value, expires = self.store.counters.get(name, (0, None))
        return 0 if expires is not None and expires <= datetime.now(UTC) else value

    def incr_counter(self, name: str, amount: int = 1, ttl: int | None = None) -> int:
        now = datetime.now(UTC)
        with self.store.lock:
            value = self.counter(name) + amount
            self.store.counters[name] = (value, now + timedelta(seconds=ttl) if ttl is not None else None)
            return value

    def add_event(self, event: Event) -> None:
        with self.store.lock:
            self.store.events.append(event)

    def list_events(self, query: EventQuery) -> list[Event]:
        with self.store.lock:
            newest_first = self.store.events[::-1]
        if query.before is not None:
            ids = [e.id for e in newest_first]
            if query.before not in ids:
                return []
            newest_first = newest_first[ids.index(query.before) + 1 :]
        return [e for e in newest_first if query.matches(e)][: query.limit]

    def prune_events(self, older_than: datetime) -> int:
        with self.store.lock:
            kept = [e for e in self.store.events if e.at >= older_than]
            removed = len(self.store.events) - len(kept)
            self.store.events = kept
        return removed


def _filename(record: FileRecord) -> str:
    return record.filename


# Access ---------------------------------------------------------------------------
@dataclass
class AccessStore:
    """What several MemoryAccess instances share: users, groups, grants and tokens."""

    hashes: dict[str, str] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    groups: dict[str, set[str]] = field(default_factory=dict)
    admin_groups: set[str] = field(default_factory=set)
    # project -> {"users": {name: perm}, "groups": {name: perm}}
    grants: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # token id -> (sha256 of the secret, listing)
    tokens: dict[str, tuple[str, TokenInfo]] = field(default_factory=dict)
    #: Grows with every change: an instance that sees it move forgets its cached
    #: logins, as another process of a database backend does on its next read.
    version: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class MemoryAccess(EditableAccess):
    """An editable access backend in memory: changes are seen by every instance at once."""

    def __init__(self, store: AccessStore | None = None, **policy):
        super().__init__(**policy)
        self.store = store if store is not None else AccessStore()
        # The SQL backend's re-read clock; tests move it back. Memory never goes stale.
        self._checked_at = 0.0
        self._seen = self.store.version

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(**cls.base_kwargs_from_settings(settings))

    # Reading ---------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> Identity | None:
        if self._seen != self.store.version:  # changed by another instance
            self._seen = self.store.version
            self.forget_credentials()
        return super().authenticate(username, password)

    def data_version(self) -> int:
        return self.store.version

    def _verify(self, username: str, password: str) -> bool:
        hashed = self.store.hashes.get(username)
        if hashed is None:
            return verify_dummy(password)
        return verify_password(password, hashed)

    def groups_of(self, username: str) -> set[str]:
        with self.store.lock:
            return {g for g, members in self.store.groups.items() if username in members}

    def is_admin(self, username: str) -> bool:
        if username not in self.store.hashes:
            return False
        return username in self.store.admins or bool(self.groups_of(username) & self.store.admin_groups)

    def user_exists(self, username: str) -> bool:
        return username in self.store.hashes

    def project_grants(self, project: str) -> tuple[dict[str, str], dict[str, str]]:
        with self.store.lock:
            entry = self.store.grants.get(canonicalize_name(project), {})
            return dict(entry.get("users", {})), dict(entry.get("groups", {}))

    def check_health(self) -> None:
        """Always usable."""

    def close(self) -> None:
        """Nothing to release."""

    def export_data(self) -> AccessData:
        data = AccessData()
        with self.store.lock:
            for name, hashed in self.store.hashes.items():
                data.users[name] = {"password_hash": hashed, "admin": name in self.store.admins}
            for name, members in self.store.groups.items():
                data.groups[name] = {"members": sorted(members), "admin": name in self.store.admin_groups}
            for project, entry in self.store.grants.items():
                data.packages[project] = {"users": dict(entry["users"]), "groups": dict(entry["groups"])}
        return data

    def authenticate_token(self, token: str) -> Identity | None:
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != "ppc" or not token_id or not secret:
            return None
        found = self.store.tokens.get(token_id)
        if found is None or not hmac.compare_digest(found[0], _sha256(secret)):
            return None
        info = found[1]
        if info.expires_at is not None and info.expires_at <= utcnow():
            return None
        if not self.user_exists(info.username):
            return None
        owner = self.identity(info.username)
        projects = frozenset(info.projects) if info.projects is not None else None
        scope = TokenScope(token_id, projects, upload=info.upload, owner_admin=owner.is_admin)
        return Identity(info.username, owner.groups, is_admin=False, token=scope)

    # Editing ---------------------------------------------------------------
    def _changed(self) -> None:
        """Called under the lock by every change that went through."""
        self.store.version += 1
        self._seen = self.store.version

    def _need(self, kind: str, name: str) -> None:
        if name not in (self.store.hashes if kind == "user" else self.store.groups):
            raise AccessConflict(f"No such {kind}: {name!r}")

    def create_user(self, username: str, password_hash: str, *, admin: bool = False) -> None:
        check_name("user", username)
        check_hash(password_hash, username)
        with self.store.lock:
            if username in self.store.hashes:
                raise AccessConflict(f"User {username!r} exists already")
            self.store.hashes[username] = password_hash
            if admin:
                self.store.admins.add(username)
            self._changed()

    def set_password_hash(self, username: str, password_hash: str) -> None:
        check_hash(password_hash, username)
        with self.store.lock:
            self._need("user", username)
            self.store.hashes[username] = password_hash
            self._changed()
        self.forget_credentials(username)

    def set_admin(self, username: str, admin: bool) -> None:
        with self.store.lock:
            self._need("user", username)
            (self.store.admins.add if admin else self.store.admins.discard)(username)
            self._changed()

    def delete_user(self, username: str) -> None:
        with self.store.lock:
            self._need("user", username)
            del self.store.hashes[username]
            self.store.admins.discard(username)
            for members in self.store.groups.values():
                members.discard(username)
            for entry in self.store.grants.values():
                entry["users"].pop(username, None)
            self._drop_empty_grants()
            self.store.tokens = {i: t for i, t in self.store.tokens.items() if t[1].username != username}
            self._changed()
        self.forget_credentials(username)

    def create_group(self, name: str, *, admin: bool = False) -> None:
        check_name("group", name)
        with self.store.lock:
            if name in self.store.groups:
                raise AccessConflict(f"Group {name!r} exists already")
            self.store.groups[name] = set()
            if admin:
                self.store.admin_groups.add(name)
            self._changed()

    def delete_group(self, name: str) -> None:
        with self.store.lock:
            self._need("group", name)
            del self.store.groups[name]
            self.store.admin_groups.discard(name)
            for entry in self.store.grants.values():
                entry["groups"].pop(name, None)
            self._drop_empty_grants()
            self._changed()

    def set_membership(self, username: str, group: str, member: bool) -> None:
        with self.store.lock:
            self._need("user", username)
            self._need("group", group)
            members = self.store.groups[group]
            (members.add if member else members.discard)(username)
            self._changed()

    def set_grant(self, project: str, kind: str, name: str, permission: str | None) -> None:
        if permission is not None:
            check_permission(permission)
        if kind not in ("user", "group"):
            raise ValueError(f"kind must be 'user' or 'group', not {kind!r}")
        with self.store.lock:
            if not (kind == "group" and name in PSEUDO_GROUPS):
                self._need(kind, name)
            entry = self.store.grants.setdefault(canonicalize_name(project), {"users": {}, "groups": {}})
            if permission is None:
                entry[kind + "s"].pop(name, None)
            else:
                entry[kind + "s"][name] = permission
            self._drop_empty_grants()
            self._changed()

    def _drop_empty_grants(self) -> None:
        self.store.grants = {p: e for p, e in self.store.grants.items() if e["users"] or e["groups"]}

    def create_token(
        self,
        username: str,
        *,
        projects: list[str] | None = None,
        upload: bool = False,
        expires_at: datetime | None = None,
        description: str | None = None,
    ) -> tuple[str, TokenInfo]:
        names = None if projects is None else tuple(sorted({canonicalize_name(p) for p in projects}))
        if names is not None and not names:
            raise InvalidAccessData("A token limited to projects needs at least one project")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        info = TokenInfo(token_id, username, names, upload, description, utcnow(), expires_at)
        with self.store.lock:
            self._need("user", username)
            self.store.tokens[token_id] = (_sha256(secret), info)
            self._changed()
        return f"ppc_{token_id}_{secret}", info

    def tokens(self, username: str | None = None) -> list[TokenInfo]:
        with self.store.lock:
            listed = [info for _, info in self.store.tokens.values()]
        return sorted((t for t in listed if username in (None, t.username)), key=lambda t: t.created_at)

    def delete_token(self, token_id: str) -> None:
        with self.store.lock:
            if self.store.tokens.pop(token_id, None) is None:
                raise AccessConflict(f"No such token: {token_id!r}")
            self._changed()

    def load(self, data: AccessData, *, replace: bool = False) -> None:
        with self.store.lock:
            if replace:
                fresh = AccessStore()
                skip = ("lock", "version")
                self.store.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in skip})
            for name, user in data.users.items():
                self.store.hashes[name] = user["password_hash"]
                (self.store.admins.add if user["admin"] else self.store.admins.discard)(name)
            for name, group in data.groups.items():
                self.store.groups[name] = set(group["members"])
                (self.store.admin_groups.add if group["admin"] else self.store.admin_groups.discard)(name)
            for project, grants in data.packages.items():
                entry = self.store.grants.setdefault(project, {"users": {}, "groups": {}})
                entry["users"].update(grants["users"])
                entry["groups"].update(grants["groups"])
            self._drop_empty_grants()
            self._changed()
        self.forget_credentials()


__all__ = [
    "AccessStore",
    "IndexStore",
    "MemoryAccess",
    "MemoryIndex",
    "MemoryStorage",
    "StorageStore",
]
