"""Upload spooling: a file written to a private, locked temp file while its digests are computed.

The folder is ``pypi.spool_dir`` (None: the system temp folder). A spool file
is locked while its upload runs, so the spool files of a killed process (no
lock) are swept by a later upload and at start-up.

A spool is filled either from a stream (:class:`SpooledUpload` reads it to the
end) or block by block (:meth:`SpooledUpload.writer`, what the streaming form
parser of :mod:`pypicloud.upload_form` feeds while it reads the request body).
Either way the bytes are written once, hashed as they pass, and the size limit
is enforced before a byte over it reaches the disk.

A storage that publishes the spool file itself (the file storage's hard link)
must force its bytes to disk before giving it a name. :meth:`SpooledUpload.sync_soon`
starts that fsync in a background thread as soon as the upload is spooled, so
the disk's wait overlaps the checks, the archive reading and the index work that
come before the publishing; :meth:`SpooledUpload.wait_synced` is what the storage
calls in place of its own fsync.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import tempfile
from concurrent.futures import Future
from typing import BinaryIO

from . import syncs, tempfiles
from .errors import InvalidUpload, UploadTooLarge

CHUNK = 1024 * 1024
SPOOL_PREFIX = "ppc-upload-"
# Buffer of the spool file's writer: the parser hands over slices of its read
# blocks, which are written in large writes.
WRITE_BUFFER = 1024 * 1024
# The spool folder is swept of killed servers' spool files at most once a minute.
_SWEEPS = tempfiles.SweepSchedule()


class SpooledUpload:
    """An upload written to a private temp file while its digests are computed.

    ``sha256`` and ``md5`` are always computed; ``blake2`` (only ever compared
    with a digest the client sent) is computed while spooling when
    ``want_blake2``, else from the file on the first :meth:`check_digests`
    that needs it.
    """

    sha256: hashlib._Hash
    md5: hashlib._Hash
    path: str
    size: int

    def __init__(self, source: BinaryIO, limit: int | None, directory: str | None):
        self._open(limit, directory, want_blake2=True)
        try:
            while True:
                block = source.read(CHUNK)
                if not block:
                    break
                self.write(block)
            self.finish()
        except BaseException:
            self.remove()
            raise

    @classmethod
    def writer(cls, limit: int | None, directory: str | None, want_blake2: bool = True) -> SpooledUpload:
        """An empty spool to be filled by :meth:`write` and closed by :meth:`finish`."""
        spool = cls.__new__(cls)
        spool._open(limit, directory, want_blake2)
        return spool

    def _open(self, limit: int | None, directory: str | None, want_blake2: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self._blake2 = hashlib.blake2b(digest_size=32) if want_blake2 else None
        self._hashes = [d for d in (self.sha256, self.md5, self._blake2) if d is not None]
        self.size = 0
        self._limit = limit
        self._fd: int | None = None
        self._out: io.BufferedWriter | None = None
        self._sync: Future[None] | None = None
        directory = directory or tempfile.gettempdir()
        if _SWEEPS.due(directory):
            tempfiles.sweep(directory, lambda name: name.startswith(SPOOL_PREFIX))
        fd, self.path = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=directory)
        # Locked (and kept open) until removed: the spool file of a killed server
        # is swept by a later upload.
        tempfiles.lock(fd)
        self._fd = fd
        self._out = open(fd, "wb", buffering=WRITE_BUFFER, closefd=False)  # noqa: SIM115

    def write(self, block: bytes | memoryview) -> None:
        """Append ``block``: 413 (nothing written) when it takes the file over the limit."""
        self.size += len(block)
        if self._limit is not None and self.size > self._limit:
            raise UploadTooLarge(f"File is larger than the limit of {self._limit} bytes")
        for digest in self._hashes:
            digest.update(block)
        assert self._out is not None, "write() after finish()"
        self._out.write(block)

    def finish(self) -> None:
        """Flush the written bytes to the file (the spool is complete)."""
        if self._out is not None:
            self._out.close()
            self._out = None

    def sync_soon(self) -> None:
        """Start forcing the spooled bytes to disk in the background (once; after
        :meth:`finish`). For a storage that publishes this very file (see the module)."""
        if self._sync is None and self._fd is not None and self._out is None:
            self._sync = syncs.start(self._fd)

    @property
    def sync_started(self) -> bool:
        return self._sync is not None

    def wait_synced(self) -> None:
        """Return once the spooled bytes are on disk: the fsync :meth:`sync_soon`
        started (its error raised here), or one done now if none was started."""
        assert self._fd is not None and self._out is None, "wait_synced() before finish() or after remove()"
        sync, self._sync = self._sync, None
        if sync is None:
            os.fsync(self._fd)
        else:
            syncs.finish(sync, self._fd)

    @property
    def blake2(self) -> hashlib._Hash:
        if self._blake2 is None:
            digest = hashlib.blake2b(digest_size=32)
            with open(self.path, "rb") as stream:
                while block := stream.read(CHUNK):
                    digest.update(block)
            self._blake2 = digest
        return self._blake2

    def check_digests(self, digests: dict[str, str]) -> None:
        """Compare client-sent digests (twine sends them) with the bytes received."""
        ours = {"sha256_digest": "sha256", "md5_digest": "md5", "blake2_256_digest": "blake2"}
        for field, attribute in ours.items():
            sent = (digests.get(field) or "").strip().lower()
            if sent and not hmac.compare_digest(sent, getattr(self, attribute).hexdigest()):
                raise InvalidUpload(f"{field} does not match the uploaded file")

    def remove(self) -> None:
        """Delete the spool file and release it (safe to call more than once)."""
        if self._out is not None:
            try:
                self._out.close()
            except OSError:
                pass
            self._out = None
        sync, self._sync = self._sync, None
        if sync is not None:
            syncs.settle(sync)  # a running fsync uses the descriptor: closed only after it
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def spooled(content: BinaryIO | SpooledUpload, limit: int | None, directory: str | None) -> SpooledUpload:
    """``content`` itself when the form parser already spooled it, else a spool of it."""
    if isinstance(content, SpooledUpload):
        return content
    return SpooledUpload(content, limit, directory)


def sweep_spool_files(directory: str | None, min_age: float = 5.0) -> int:
    """Remove the spool files of killed processes in ``directory`` (None: the system temp folder)."""
    folder = directory or tempfile.gettempdir()
    return tempfiles.sweep(folder, lambda name: name.startswith(SPOOL_PREFIX), min_age)
