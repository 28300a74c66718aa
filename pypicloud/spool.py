"""Upload spooling: a file copied to a private, locked temp file while its digests are computed.

The folder is ``pypi.spool_dir`` (None: the system temp folder). A spool file
is locked while its upload runs, so the spool files of a killed process (no
lock) are swept by a later upload and at start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from typing import BinaryIO

from . import tempfiles
from .errors import InvalidUpload, UploadTooLarge

CHUNK = 1024 * 1024
SPOOL_PREFIX = "ppc-upload-"


class SpooledUpload:
    """An upload copied to a private temp file while its digests are computed."""

    def __init__(self, source: BinaryIO, limit: int | None, directory: str | None):
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.blake2 = hashlib.blake2b(digest_size=32)
        self.size = 0
        directory = directory or tempfile.gettempdir()
        tempfiles.sweep(directory, lambda name: name.startswith(SPOOL_PREFIX))
        fd, self.path = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=directory)
        # Locked (and kept open) until removed: the spool file of a killed server
        # is swept by a later upload.
        tempfiles.lock(fd)
        self._fd = fd
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                while True:
                    block = source.read(CHUNK)
                    if not block:
                        break
                    self.size += len(block)
                    if limit is not None and self.size > limit:
                        raise UploadTooLarge(f"File is larger than the limit of {limit} bytes")
                    for digest in (self.sha256, self.md5, self.blake2):
                        digest.update(block)
                    out.write(block)
        except BaseException:
            self.remove()
            raise

    def check_digests(self, digests: dict[str, str]) -> None:
        """Compare client-sent digests (twine sends them) with the bytes received."""
        ours = {"sha256_digest": self.sha256, "md5_digest": self.md5, "blake2_256_digest": self.blake2}
        for field, digest in ours.items():
            sent = (digests.get(field) or "").strip().lower()
            if sent and not hmac.compare_digest(sent, digest.hexdigest()):
                raise InvalidUpload(f"{field} does not match the uploaded file")

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sweep_spool_files(directory: str | None, min_age: float = 5.0) -> int:
    """Remove the spool files of killed processes in ``directory`` (None: the system temp folder)."""
    folder = directory or tempfile.gettempdir()
    return tempfiles.sweep(folder, lambda name: name.startswith(SPOOL_PREFIX), min_age)
