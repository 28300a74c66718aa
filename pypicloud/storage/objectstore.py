"""Pieces shared by the object-store backends (S3, GCS, Azure Blob).

Key layout (pypicloud 1.x's, S3's)::

    <prefix>[<hash>/]<project>/<filename>

so a bucket or container filled by pypicloud 1.x keeps working, and
:class:`KeyLayout.parse` skips every name that does not fit it.
"""

from __future__ import annotations

import base64
import binascii
import email.quoprimime
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, NoReturn

from ..errors import ConfigError, InvalidUpload
from ..models import StoredObject
from .base import METADATA_KEY, WHOLE_OBJECTS, ReadStream, Storage, check_name

_HASH_SEGMENT = re.compile(r"^[0-9a-f]{4}$")
_ENCODED_WORD = re.compile(r"^=\?utf-8\?([bq])\?(.*)\?=$", re.IGNORECASE | re.DOTALL)


# Metadata encoding --------------------------------------------------------
def encode_metadata_value(value: str) -> str:
    """An ASCII form of ``value`` that :func:`decode_metadata_value` reverses exactly."""
    plain = (
        value != ""
        and all(" " <= ch <= "~" for ch in value)
        and value == value.strip()
        and "  " not in value
        and not _ENCODED_WORD.match(value)
    )
    if plain:
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_metadata_value(value: str) -> str:
    match = _ENCODED_WORD.match(value)
    if not match:
        return value
    kind, payload = match.group(1).lower(), match.group(2)
    try:
        if kind == "b":
            return base64.b64decode(payload, validate=True).decode("utf-8")
        return email.quoprimime.header_decode(payload).encode("latin-1").decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        return value


def check_metadata(metadata: dict[str, str]) -> None:
    """Refuse (InvalidUpload) a key outside ``[a-z0-9_-]`` or a value that is not a string."""
    for key, value in metadata.items():
        if not isinstance(key, str) or not METADATA_KEY.match(key):
            raise InvalidUpload(f"Invalid metadata key {key!r}: lowercase letters, digits, '-' and '_' only")
        if not isinstance(value, str):
            raise InvalidUpload(f"Metadata value of {key!r} must be a string")


def check_metadata_size(size: int, limit: int, service: str) -> None:
    """Refuse (InvalidUpload) encoded metadata of ``size`` bytes over the service's ``limit``."""
    if size > limit:
        raise InvalidUpload(f"Metadata is too large for {service}: {size} bytes encoded (limit {limit})")


def key_hash(filename: str) -> str:
    """The 4-hex-character segment put before ``project/filename`` (pypicloud 1.x layout)."""
    return hashlib.md5(filename.encode("utf-8"), usedforsecurity=False).hexdigest()[:4]


def check_range(offset: int, length: int | None) -> None:
    """Refuse a negative ``offset`` or ``length`` of a ranged read (ValueError)."""
    if offset < 0 or (length is not None and length < 0):
        raise ValueError("offset and length must not be negative")


def expiry_settings(settings, max_expiry: int | None = None, why: str = "") -> tuple[int, int]:
    """``storage.expire_after`` (at most ``max_expiry``, ``why``) and a shorter ``storage.buffer_time``."""
    expire_after = settings.get_int("storage.expire_after", 86400, minimum=1)
    if max_expiry is not None and expire_after > max_expiry:
        raise ConfigError("storage.expire_after", str(expire_after), why)
    buffer_time = settings.get_int("storage.buffer_time", 600, minimum=0)
    if buffer_time >= expire_after:
        raise ConfigError(
            "storage.buffer_time",
            str(buffer_time),
            f"must be less than storage.expire_after ({expire_after})",
        )
    return expire_after, buffer_time


def require_sdk(settings, missing: BaseException | None, what: str, hint: str) -> None:
    """ConfigError on ``pypi.storage`` when the backend's SDK (its extra) did not import."""
    if missing is not None:
        raise ConfigError(
            "pypi.storage", settings.get_str("pypi.storage"), f"{what} is not installed; {hint}"
        )


def reraise(exc: BaseException, wrapped: BaseException | None) -> NoReturn:
    """Raise ``wrapped`` (from ``exc``), or ``exc`` itself when there is nothing to wrap it in."""
    if wrapped is None:
        raise exc
    raise wrapped from exc


class KeyLayout:
    """Object names for ``(project, filename)`` under a prefix, with or without a hash segment."""

    def __init__(self, prefix: str = "", prepend_hash: bool = True):
        self.prefix = prefix or ""
        self.prepend_hash = prepend_hash

    def key(self, project: str, filename: str) -> str:
        check_name(project, "project name")
        check_name(filename)
        if self.prepend_hash:
            return f"{self.prefix}{key_hash(filename)}/{project}/{filename}"
        return f"{self.prefix}{project}/{filename}"

    def parse(self, key: str) -> tuple[str, str] | None:
        """``(project, filename)`` for one of our names, None for anything else."""
        if not key.startswith(self.prefix):
            return None
        parts = key[len(self.prefix) :].split("/")
        digest = None
        if self.prepend_hash:
            if len(parts) != 3 or not _HASH_SEGMENT.match(parts[0]):
                return None
            digest, project, filename = parts
        elif len(parts) == 2:
            project, filename = parts
        else:
            return None
        try:
            check_name(project, "project name")
            check_name(filename)
        except InvalidUpload:
            return None
        if digest is not None and digest != key_hash(filename):
            return None
        return project, filename


def read_full(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; fewer only at EOF."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        block = stream.read(left)
        if not block:
            break
        parts.append(block)
        left -= len(block)
    return b"".join(parts)


class BodyReader(ReadStream):
    """A non-seekable file-like object over a download body that has ``read(size)``.

    ``wrap_error`` turns an exception raised while reading into the one to
    raise (BackendUnavailable for a lost connection), or returns None to let
    it through.
    """

    def __init__(self, body=None, wrap_error=None):
        self._body = body
        self._wrap_error = wrap_error
        self.closed = False

    def seekable(self) -> bool:
        return False

    def _read_body(self, size: int) -> bytes:
        try:
            return self._body.read() if size < 0 else self._body.read(size)
        except Exception as exc:
            reraise(exc, self._wrap_error(exc) if self._wrap_error else None)

    def read(self, size: int | None = -1) -> bytes:
        if self._body is None or self.closed:
            return b""
        return self._read_body(-1 if size is None else size)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._body is not None:
                self._body.close()


class ChunkReader(ReadStream):
    """A file-like object over an iterator of byte chunks (a streamed download).

    ``wrap_error`` turns an exception raised while reading into the one to
    raise (BackendUnavailable for a lost connection), or returns None to let
    it through.
    """

    def __init__(self, chunks: Iterator[bytes] | None, closer=None, wrap_error=None):
        self._chunks = chunks
        self._buffer = b""
        self._closer = closer
        self._wrap_error = wrap_error
        self.closed = False

    def seekable(self) -> bool:
        return False

    def _next(self) -> bytes:
        # read() answers b"" itself when there is no body, so there is one here.
        assert self._chunks is not None
        try:
            return next(self._chunks, b"")
        except Exception as exc:
            reraise(exc, self._wrap_error(exc) if self._wrap_error else None)

    def read(self, size: int | None = -1) -> bytes:
        if self._chunks is None or self.closed:
            return b""
        if size is None or size < 0:
            parts = [self._buffer]
            self._buffer = b""
            while True:
                block = self._next()
                if not block:
                    break
                parts.append(block)
            return b"".join(parts)
        while len(self._buffer) < size:
            block = self._next()
            if not block:
                break
            self._buffer += block
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._buffer = b""
            if self._closer is not None:
                try:
                    self._closer()
                except Exception:  # best effort: the connection is dropped anyway
                    pass


def signed_until(expires_in: int) -> datetime:
    """When a URL signed now for ``expires_in`` seconds stops working (UTC, whole seconds)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=int(expires_in))


class ObjectStore(Storage):
    """What the GCS and Azure backends share: keys, metadata encoding, listing.

    A subclass sets ``self.layout`` (a :class:`KeyLayout`), ``SERVICE`` (its
    name in messages) and ``MAX_METADATA_BYTES``, and overrides
    :meth:`_encode_name` / :meth:`_decode_name` where the service restricts
    metadata names.
    """

    SERVICE = "the object store"
    #: The service's limit on metadata: names plus values, encoded.
    MAX_METADATA_BYTES = 8192
    layout: KeyLayout
    #: The layout's key prefix, set by the subclass with ``layout`` (for ``repr``).
    prefix: str
    #: Signed URLs' lifetime and the time a cached one must have left (seconds), set by the subclass.
    expire_after: int
    buffer_time: int

    def __repr__(self) -> str:
        where = ", ".join(f"{k}={v!r}" for k, v in self._describe().items())
        return f"<{type(self).__name__} {where} prefix={self.prefix!r}>"

    def url_lifetime(self) -> tuple[int, int] | None:
        return (self.expire_after, self.buffer_time)

    def _describe(self) -> dict[str, str]:
        """Where the files are (bucket, container), for ``repr``."""
        return {}

    def _refuse_create(self, setting: str, name: str, kind: str) -> ConfigError:
        """The error for a missing bucket/container that we may not create."""
        why = "storage.read_only = true" if self.read_only else "storage.create_bucket = false"
        return ConfigError(setting, name, f"the {kind} does not exist and {why}: create it first")

    def key_for(self, project: str, filename: str) -> str:
        return self.layout.key(project, filename)

    def content_token(self, project, filename):
        # Objects are replaced whole and a request per call would cost what the
        # caller saves (base.WHOLE_OBJECTS, pypicloud/metadata_files.py).
        return WHOLE_OBJECTS

    def _copy_keys(self, project, filename, dest_project, dest_filename, metadata):
        """What a copy checks first: writable; source key, destination key, encoded metadata.

        The metadata is None when the copy keeps the source's.
        """
        self.check_writable()
        return (
            self.key_for(project, filename),
            self.key_for(dest_project, dest_filename),
            None if metadata is None else self._encode_metadata(metadata),
        )

    @staticmethod
    def _encode_name(name: str) -> str:
        """The metadata name as stored (unchanged unless the service restricts names)."""
        return name

    @staticmethod
    def _decode_name(name: str) -> str:
        """Reverses :meth:`_encode_name`."""
        return name

    @classmethod
    def _encode_metadata(cls, metadata: dict[str, str]) -> dict[str, str]:
        """Checked and encoded metadata; InvalidUpload for a bad key/value or too much."""
        check_metadata(metadata)
        encoded = {cls._encode_name(k): encode_metadata_value(v) for k, v in metadata.items()}
        check_metadata_size(
            sum(len(k) + len(v) for k, v in encoded.items()), cls.MAX_METADATA_BYTES, cls.SERVICE
        )
        return encoded

    @classmethod
    def _decode_metadata(cls, raw: dict[str, str] | None) -> dict[str, str]:
        # A None value is a deleted key (what a GCS metadata patch sends for removal).
        return {
            cls._decode_name(k): decode_metadata_value(v) for k, v in (raw or {}).items() if v is not None
        }

    def _listed(self, name: str, size, raw_metadata, last_modified, metadata_for) -> StoredObject | None:
        """One listing entry as a StoredObject; None for a name that is not ours.

        Metadata is decoded only when ``metadata_for`` (if given) wants it.
        """
        parsed = self.layout.parse(name)
        if parsed is None:
            return None
        project, filename = parsed
        metadata = (
            {}
            if metadata_for is not None and not metadata_for(filename)
            else self._decode_metadata(raw_metadata)
        )
        return StoredObject(
            project=project,
            filename=filename,
            size=int(size or 0),
            metadata=metadata,
            key=name,
            last_modified=last_modified,
        )
