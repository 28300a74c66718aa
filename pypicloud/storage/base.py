"""The storage contract (SPEC section 6).

Storage holds the bytes of every package file plus a small string-to-string
metadata dict written with it; it is the source of truth from which the
metadata index can always be rebuilt. It knows nothing of Pyramid or HTTP: it
answers with streams, plain data and URLs.

Objects are addressed by ``(project, filename)``: the canonical project name and
the file's base name. Both have been checked by the service, and every backend
checks them again with :func:`check_name` so that no name can escape its root.
"""

from __future__ import annotations

import abc
import io
import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Self

from ..errors import InvalidUpload, ReadOnly
from ..models import Redirect, StoredObject

if TYPE_CHECKING:
    from ..settings import Settings
    from .manifest import ManifestEntry

# Metadata keys every backend must round-trip unchanged (values are any str).
METADATA_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: :meth:`Storage.content_token` of a backend whose objects are only ever
#: replaced whole (object stores): the name and a checked sha256 name the bytes.
WHOLE_OBJECTS = "whole-objects"


def check_name(value: str, what: str = "filename") -> str:
    """Return ``value`` if it is one safe path segment, else raise InvalidUpload.

    Refused: empty, ``.``/``..``, a leading dot (reserved for a backend's own
    temp and sidecar files), any slash or backslash, NUL and control characters.
    """
    if (
        not value
        or value in (".", "..")
        or value.startswith(".")
        or "/" in value
        or "\\" in value
        or _CONTROL.search(value)
        or len(value) > 255
    ):
        raise InvalidUpload(f"Invalid {what}: {value!r}")
    return value


class ReadStream(abc.ABC):
    """Base of the file-like objects ``Storage.open`` returns.

    Subclasses implement ``read`` and ``close``; this adds the context-manager
    and chunked-iteration protocol every caller relies on.
    """

    chunk_size = 1024 * 1024

    @abc.abstractmethod
    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative); b"" at the end."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the underlying file or connection; calling it again does nothing."""

    def readable(self) -> bool:
        return True

    def os_file(self) -> BinaryIO | None:
        """The operating-system file this stream reads, when it reads it to its end.

        Then the file is positioned at the stream's first byte and everything
        from there to the end of the file is the stream's content, so a web
        server may send it with ``sendfile`` (through ``wsgi.file_wrapper``);
        whoever takes it closes it instead of the stream. None (the default)
        for a stream that is not such a file: the caller reads the stream.
        """
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.read(self.chunk_size)
            if not block:
                return
            yield block


class Storage(abc.ABC):
    """Abstract base of every storage backend.

    Subclasses take plain keyword arguments in ``__init__`` (so tests can build
    them without an ini file) and read the ini in :meth:`from_settings`. One
    instance is shared by every request thread, so it must be thread-safe.
    """

    #: When true, every write raises :class:`ReadOnly` (``storage.read_only``).
    read_only: bool = False

    #: Whether :meth:`download_url` gives clients URLs to fetch the bytes from
    #: (then the service caches them in the index); False: the server streams
    #: every file itself. A subclass that overrides ``download_url`` without
    #: setting this gets True.
    hands_out_urls: ClassVar[bool] = False

    #: Every ``storage.*`` setting the backend reads (``storage.metadata.<name>``
    #: besides). With this backend chosen, start-up reports any other
    #: ``storage.*`` key as a probable typo; a third-party backend lists its own.
    SETTINGS_KEYS: ClassVar[frozenset[str]] = frozenset({"storage.read_only"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "hands_out_urls" not in cls.__dict__ and "download_url" in cls.__dict__:
            cls.hands_out_urls = True

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the backend from a :class:`pypicloud.settings.Settings`.

        Validate every ``storage.*`` option here and raise ConfigError naming
        the key for a bad one; contact the service if needed to fail start-up
        early (missing bucket, bad credentials).
        """

    def check_writable(self) -> None:
        """Raise :class:`ReadOnly` when the backend is read-only (call it first in every write)."""
        if self.read_only:
            raise ReadOnly("Storage is read-only (storage.read_only = true)")

    @abc.abstractmethod
    def put(
        self,
        project: str,
        filename: str,
        stream: BinaryIO,
        metadata: dict[str, str],
        *,
        overwrite: bool = False,
    ) -> StoredObject:
        """Store the bytes read from ``stream`` (until EOF) with ``metadata``.

        Atomic: readers see either no object or the whole new one, never a
        partial one, even if the process dies midway. ``stream`` may be large:
        it is read in chunks, never whole into memory.

        With ``overwrite`` false and an object already stored under the name,
        raise :class:`StorageConflict` and leave the existing object untouched;
        of two concurrent puts of one name exactly one succeeds.
        Raises :class:`ReadOnly` when read-only and BackendUnavailable when the
        service cannot be reached. Returns what was stored.
        """

    def put_file(
        self,
        project: str,
        filename: str,
        path: str,
        metadata: dict[str, str],
        *,
        overwrite: bool = False,
        synced: Callable[[], None] | None = None,
        companion: tuple[str, bytes, dict[str, str]] | None = None,
    ) -> StoredObject:
        """Store the finished local file at ``path`` with ``metadata``: :meth:`put`'s
        contract (atomic, StorageConflict unless ``overwrite``), for a file on disk.

        ``path`` is the upload's spool file: complete, never written again, and
        removed by the caller afterwards (removing its name must not affect what
        was stored). A backend that can take the file over without copying its
        bytes does so (the file storage links it when both are on one file
        system); the default reads it into :meth:`put`, which for an object
        store sends it in bounded parts read from the file.

        ``synced``: returns once the bytes at ``path`` are on disk (the caller
        started that fsync early, see :meth:`publishes_in_place`); a backend that
        publishes the file itself calls it instead of its own fsync, before the
        name is given. Others ignore it.

        ``companion``: ``(filename, data, metadata)`` of a file derived from this
        one, stored by :meth:`put_companion` once this one is (never when it is
        not); a backend may overlap it with its own wait for the disk.
        """
        with open(path, "rb") as stream:
            stored = self.put(project, filename, stream, metadata, overwrite=overwrite)
        if companion is not None:
            self.put_companion(project, *companion)
        return stored

    def publishes_in_place(self, path: str) -> bool:
        """Whether :meth:`put_file` of the local file at ``path`` would publish that
        very file (no copy) after forcing its bytes to disk: then the caller may
        start the fsync early and hand :meth:`put_file` the wait (``synced``).
        The default: no (the bytes are copied or sent elsewhere)."""
        return False

    def put_companion(
        self, project: str, filename: str, data: bytes, metadata: dict[str, str]
    ) -> StoredObject:
        """Store (replacing) a small file derived from a stored one: a PEP 658
        ``.metadata`` file, written right after its distribution file.

        Atomic like :meth:`put`, but need not be forced to disk: the index
        holds its sha256 (readers check it) and a rebuild recreates a lost one
        from the archive. Nor need ``metadata`` be kept: nothing reads a
        companion's metadata (its distribution file's names its sha256), so a
        backend that keeps metadata in a file of its own (file storage) skips
        it. The default is :meth:`put` with ``overwrite``.
        """
        return self.put(project, filename, io.BytesIO(data), metadata, overwrite=True)

    @abc.abstractmethod
    def open(self, project: str, filename: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        """Open the object for reading, from byte ``offset``, at most ``length`` bytes.

        Returns a binary file-like object the caller closes (usable as a
        context manager). Raises FileNotFound when there is no such object.
        """

    @abc.abstractmethod
    def stat(self, project: str, filename: str) -> StoredObject | None:
        """Tell whether the object exists: its size and metadata, or None."""

    def content_token(self, project: str, filename: str) -> Hashable | None:
        """A cheap value that changes whenever the bytes under the name may have
        changed, for a caller that keeps bytes it has checked against a sha256 it
        knows (the ``.metadata`` cache, :mod:`pypicloud.metadata_files`).

        It must cost no more than a ``stat`` (never a request to a remote
        service). None: the backend cannot tell so cheaply, or the object is not
        there; the caller then reads the object every time (the default).
        """
        return None

    @abc.abstractmethod
    def delete(self, project: str, filename: str) -> bool:
        """Remove the object and its metadata. Returns False if it was not there."""

    @abc.abstractmethod
    def copy(
        self,
        project: str,
        filename: str,
        dest_project: str,
        dest_filename: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Copy an object to a new name (overwriting it).

        The copy keeps the source's metadata unless ``metadata`` is given, which
        then replaces it. Raises FileNotFound when the source is missing.
        """

    @abc.abstractmethod
    def update_metadata(self, project: str, filename: str, metadata: dict[str, str]) -> StoredObject:
        """Replace the metadata of a stored object, leaving its bytes as they are."""

    @abc.abstractmethod
    def list(self, metadata_for: Callable[[str], bool] | None = None) -> Iterator[StoredObject]:
        """Yield every stored object with its metadata, in no particular order.

        ``metadata_for(filename)`` returning False says the caller does not
        need that object's metadata: the backend may yield it with ``{}`` and
        save a round trip per object (object stores list sizes but not metadata).

        Never yields a backend's temp files, partial uploads or sidecars. Used for
        index rebuilds and migrations, so it must scale to many thousands of
        objects without one sequential round trip per object.
        """

    def list_reusing(
        self, known: Mapping[str, str], metadata_for: Callable[[str], bool] | None = None
    ) -> Iterator[StoredObject]:
        """:meth:`list` for a caller that already holds some objects' metadata.

        ``known`` maps an object's key (:meth:`key_for`) to the
        :attr:`StoredObject.tag` it was read with. An object listed with that
        very tag again may be yielded with the tag and no metadata (``{}``): it
        has not been written since, so the caller keeps what it knows (a
        rebuild keeps its index row). The default ignores ``known`` and lists
        everything with its metadata, which is always right; a backend whose
        listing shows tags but not metadata (S3) saves a request per object.
        """
        return self.list(metadata_for)

    def read_manifest(self) -> dict[str, ManifestEntry] | None:
        """The manifest last written by :meth:`write_manifest` (object key to
        entry, see :mod:`pypicloud.storage.manifest`), or None.

        None when the backend keeps no manifest (the default: a backend whose
        listing carries the metadata, or whose metadata is local, gains
        nothing from one), when none was written, or when the stored one
        cannot be read or does not parse (then with a warning, never an
        exception). The caller trusts an entry only for an object that storage
        lists with exactly the entry's tag.
        """
        return None

    def write_manifest(self, entries: Mapping[str, ManifestEntry]) -> bool:
        """Replace the manifest with ``entries`` (object key to entry): atomically,
        so a reader sees the old manifest or the whole new one.

        Kept under a reserved name (:data:`~pypicloud.storage.manifest.MANIFEST_NAME`
        below the backend's prefix) that :meth:`list` never yields. Returns
        False when the backend keeps no manifest (the default) or is
        read-only; errors of the service raise as for any write.
        """
        return False

    @abc.abstractmethod
    def check_health(self) -> None:
        """Raise an exception with a clear message if storage is not usable now."""

    def download_url(self, project: str, filename: str, expires_in: int) -> Redirect | None:
        """A URL the client can fetch the bytes from directly, or None to stream them.

        ``expires_in`` is the wanted lifetime of a signed URL in seconds. The
        default (None) makes the server stream the file itself.
        """
        return None

    def url_lifetime(self) -> tuple[int, int] | None:
        """``(expire_after, buffer_time)`` of the URLs :meth:`download_url` signs, or None.

        ``expire_after`` is the lifetime asked for a new URL; a cached URL is
        reused while more than ``buffer_time`` seconds of it are left. None:
        the backend signs no expiring URLs (the default).
        """
        return None

    def location(self) -> tuple[object, ...] | None:
        """What makes two backends the same place (kind, endpoint, bucket, prefix ...).

        Two configurations with equal locations store into the same objects
        (``ppc-migrate`` refuses to copy a storage onto itself). None when the
        backend cannot tell (the default).
        """
        return None

    def key_for(self, project: str, filename: str) -> str:
        """The backend's own name for the object (a path or an object key)."""
        return f"{project}/{filename}"

    def close(self) -> None:
        """Release connections and threads (at shutdown and in tests)."""
