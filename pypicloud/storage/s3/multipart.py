"""Writes that must not replace an object: ``If-None-Match: *`` uploads.

``put(..., overwrite=False)`` is a conditional write: ``If-None-Match: *`` on
PutObject (bodies up to ``multipart_threshold``) or on CompleteMultipartUpload
(larger bodies, streamed in parts of ``multipart_chunksize`` with a few parts
in flight). S3 makes the object visible only on completion and refuses it with
412 when the name exists, so of two concurrent uploads exactly one wins
(StorageConflict for the other). boto3's transfer manager cannot send
``If-None-Match``, hence this bounded multipart writer of our own; it aborts
the multipart upload when the stream fails, leaving no object.
"""

from __future__ import annotations

import collections
import logging
from typing import BinaryIO

import botocore.exceptions as bexc

from ...errors import StorageConflict
from ..objectstore import read_full
from .errors import is_precondition_failure, translate_errors

LOG = logging.getLogger(__name__)


class CountingReader:
    """A read-only, non-seekable view of a stream that counts the bytes read."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


class ConditionalUpload:
    """One conditional upload of ``key`` by ``storage`` (an S3Storage); :meth:`run` sends it."""

    def __init__(self, storage, key: str, filename: str, args: dict):
        self.storage = storage
        self.client = storage.client
        self.bucket = storage.bucket
        self.key = key
        self.filename = filename
        self.args = args

    def _refused(self, exc: bexc.ClientError) -> None:
        if is_precondition_failure(exc):
            raise StorageConflict(f"{self.filename} is already stored") from None

    def run(self, stream: BinaryIO) -> int:
        """Upload the stream; returns the size written. StorageConflict when the name is taken."""
        # The first block decides: one PutObject, or a multipart upload. It is
        # kept in a list so the multipart writer can take it over (no other
        # reference keeps it alive while later parts are read).
        head = [read_full(stream, self.storage.multipart_threshold + 1)]
        if len(head[0]) > self.storage.multipart_threshold:
            return self._multipart(head, stream)
        with translate_errors(self.storage, "uploading " + self.filename):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=head[0], IfNoneMatch="*", **self.args
                )
            except bexc.ClientError as exc:
                self._refused(exc)
                raise
        return len(head[0])

    def part_size(self, number: int) -> int:
        # Grow parts as the upload goes on so 10,000 parts reach terabytes.
        return self.storage.multipart_chunksize * (1 + (number - 1) // 1000)

    def _send(self, upload_id: str, number: int, body: bytes) -> dict:
        with translate_errors(self.storage, "uploading " + self.filename):
            part = self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=body
            )
        return {"ETag": part["ETag"], "PartNumber": number}

    def _send_parts(self, upload_id: str, head: list[bytes], stream, in_flight: collections.deque) -> tuple:
        """Read and send every part, at most ``max_concurrency`` in flight; (parts, total size)."""
        pool, limit = self.storage.upload_pool(), self.storage.max_concurrency
        parts: list[dict] = []
        total = 0
        pending = head.pop()
        number = 1
        while pending:
            size = self.part_size(number)
            body, pending = pending[:size], pending[size:]
            if len(body) < size:
                body += read_full(stream, size - len(body))
            if not body:
                break
            total += len(body)
            if len(in_flight) >= limit:
                parts.append(in_flight.popleft().result())
            in_flight.append(pool.submit(self._send, upload_id, number, body))
            del body
            number += 1
            if not pending:
                pending = read_full(stream, self.part_size(number))
        while in_flight:
            parts.append(in_flight.popleft().result())
        return parts, total

    def _complete(self, upload_id: str, parts: list[dict]) -> None:
        with translate_errors(self.storage, "completing the upload of " + self.filename):
            try:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                )
            except bexc.ClientError as exc:
                self._refused(exc)
                raise

    def _abort(self, upload_id: str, in_flight: collections.deque) -> None:
        # Parts still being sent would outlive an abort: wait for them.
        for future in in_flight:
            try:
                future.result()
            except Exception:
                pass
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception:  # best effort; a lifecycle rule cleans up the rest
            LOG.warning("Could not abort multipart upload %s of %s", upload_id, self.key)

    def _multipart(self, head: list[bytes], stream) -> int:
        with translate_errors(self.storage, "starting the upload of " + self.filename):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.args)[
                "UploadId"
            ]
        in_flight: collections.deque = collections.deque()
        completed = False
        try:
            parts, total = self._send_parts(upload_id, head, stream, in_flight)
            self._complete(upload_id, parts)
            completed = True
        finally:
            if not completed:
                self._abort(upload_id, in_flight)
        return total
