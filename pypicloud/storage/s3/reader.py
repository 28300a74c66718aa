"""The file-like object :meth:`S3Storage.open <pypicloud.storage.s3.S3Storage.open>` returns."""

from __future__ import annotations

from ..objectstore import BodyReader
from .errors import read_error


class S3Reader(BodyReader):
    """The body of a GET: a binary, closeable, iterable file-like object.

    Read errors (connection lost, read timeout) become BackendUnavailable.
    """

    def __init__(self, body=None):
        super().__init__(body, read_error)

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - best effort at garbage collection
            pass
