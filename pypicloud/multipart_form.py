"""Upload forms read in one pass: a ``multipart/form-data`` body parsed as it is read.

The request body is read in blocks and handed to the incremental parser of
the ``multipart`` package; the file part (``content``) goes straight into a
spool file (:class:`pypicloud.spool.SpooledUpload`), hashed and size-checked
as it passes, and the other fields are kept as text. Nothing is copied to a
temporary file first and nothing is parsed twice.

The values are what WebOb's form parser (``request.POST``) gave for the same
body, so the upload views read both the same way: the last of repeated fields
wins in :meth:`StreamedForm.get`; a part with a filename is a file (an object
with ``filename`` and ``file``); a part with an empty filename is ``bytes``;
text is UTF-8 with replacement characters, re-decoded with a part's own
``charset`` and undone from a ``Content-Transfer-Encoding`` of base64 or
quoted-printable; a part cut off by the end of the body keeps what arrived. Bodies the
parser cannot read at all are :class:`InvalidUpload` ("Malformed upload request
body"), as WebOb's errors were.

Knows nothing of Pyramid: it takes a readable stream and header values.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import multipart

from .errors import InvalidUpload, UploadTooLarge
from .spool import SpooledUpload

READ_BLOCK = 256 * 1024
MALFORMED = "Malformed upload request body"
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)
_TRANSFER_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "base64": binascii.a2b_base64,
    "quoted-printable": binascii.a2b_qp,
}

#: Makes the spool of the file part; called with the names of the fields read so far.
OpenSpool = Callable[[frozenset[str]], SpooledUpload]


@dataclass
class FilePart:
    """A part sent with a filename. ``file`` is the spool of the upload's file
    field; None for other file parts, whose bytes are counted and dropped."""

    filename: str
    file: SpooledUpload | None


class StreamedForm:
    """The fields of a parsed form, in body order (a small multi-dict)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, object]] = []

    def add(self, key: str, value: object) -> None:
        self.items.append((key, value))

    def get(self, key: str) -> object | None:
        """The last value sent under ``key`` (WebOb's MultiDict does the same)."""
        for name, value in reversed(self.items):
            if name == key:
                return value
        return None

    def getall(self, key: str) -> list[object]:
        return [value for name, value in self.items if name == key]

    def spools(self) -> list[SpooledUpload]:
        return [v.file for _, v in self.items if isinstance(v, FilePart) and v.file is not None]

    def close(self) -> None:
        """Remove every spool file of the form (safe to call more than once)."""
        for spool in self.spools():
            spool.remove()


def boundary_of(content_type: str) -> str | None:
    found = _BOUNDARY.search(content_type or "")
    return (found.group(1) or found.group(2)) if found else None


def decode_text(raw: bytes, charset: str | None, transfer_encoding: str | None) -> str:
    """A text part's value, decoded the way WebOb decoded it."""
    text = raw.decode("utf-8", "replace")
    decoder = _TRANSFER_DECODERS.get(transfer_encoding or "")
    if decoder is not None:
        text = decoder(text.encode("utf-8")).decode("utf-8")
    if charset and charset != "utf8":
        text = text.encode("utf-8").decode(charset)
    return text


def _unquote_keeping_paths(value: str, _filename: bool = False) -> str:
    return multipart.content_disposition_unquote(value, False)


def filename_of(segment: multipart.MultipartSegment) -> str | None:
    """The part's filename exactly as sent: unlike the parser's own, never cut to
    what follows a Windows path (``C:\\x\\f.whl`` stays itself, and is refused)."""
    if segment.filename is None:
        return None
    value = segment.header("Content-Disposition") or ""
    _, options = multipart.parse_options_header(value, unquote=_unquote_keeping_paths)
    return options.get("filename", segment.filename)


class _Reader:
    """The state of one parse: the current part and what it collects."""

    def __init__(self, open_spool: OpenSpool, file_field: str, max_parts: int, max_text: int | None):
        self.form = StreamedForm()
        self.open_spool = open_spool
        self.file_field = file_field
        self.max_parts = max_parts
        self.max_text = max_text
        self.parts = 0
        self.text_size = 0
        self.segment: multipart.MultipartSegment | None = None
        self.filename: str | None = None
        self.chunks: list[bytes] = []
        self.spool: SpooledUpload | None = None

    def dispatch(self, event: multipart.MultipartSegment | bytes | None) -> None:
        """One parser event: a part's headers, a block of its body, or its end (None)."""
        if isinstance(event, multipart.MultipartSegment):
            self.start(event)
        elif event is None:
            self.end()
        else:
            self.data(event)

    def start(self, segment: multipart.MultipartSegment) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise InvalidUpload(f"Too many form parts (more than {self.max_parts})")
        self.segment, self.chunks = segment, []
        self.filename = filename_of(segment)
        if self.filename and segment.name == self.file_field:
            seen = frozenset(name for name, _ in self.form.items)
            self.spool = self.open_spool(seen)
            self.form.add(segment.name, FilePart(self.filename, self.spool))

    def data(self, chunk: bytes) -> None:
        if self.spool is not None:
            self.spool.write(chunk)
            return
        self.text_size += len(chunk)
        if self.max_text is not None and self.text_size > self.max_text:
            raise UploadTooLarge(f"Upload is larger than the limit of {self.max_text} bytes")
        if not self.filename:
            self.chunks.append(bytes(chunk))

    def end(self) -> None:
        segment = self.segment
        assert segment is not None
        if self.spool is not None:
            self.spool.finish()
        elif self.filename:
            self.form.add(segment.name, FilePart(self.filename, None))
        else:
            raw = b"".join(self.chunks)
            if self.filename == "":
                self.form.add(segment.name, raw)
            else:
                encoding = segment.header("Content-Transfer-Encoding")
                self.form.add(segment.name, decode_text(raw, segment.charset, encoding))
        self.segment, self.chunks, self.spool, self.filename = None, [], None, None

    def cut_off(self) -> None:
        """The body ended inside a part: it keeps what arrived (as WebOb had it),
        so a cut file fails its digest or archive check."""
        if self.segment is not None:
            self.end()


def read_multipart(
    stream: BinaryIO,
    content_type: str,
    content_length: int | None,
    open_spool: OpenSpool,
    *,
    file_field: str = "content",
    max_parts: int = 1000,
    max_text: int | None = None,
) -> StreamedForm:
    """Parse a ``multipart/form-data`` body from ``stream`` in one pass.

    ``content_length``: how many bytes the body has (None: read to the end).
    ``max_text``: the most bytes of all parts but the file field together
    (413 over it). Raises InvalidUpload for a body that is not a form, and
    removes whatever it spooled when it raises.
    """
    boundary = boundary_of(content_type)
    if not boundary:
        raise InvalidUpload(MALFORMED)
    reader = _Reader(open_spool, file_field, max_parts, max_text)
    try:
        _parse(stream, boundary, content_length, reader)
    except BaseException:
        reader.form.close()
        if reader.spool is not None:
            reader.spool.remove()
        raise
    return reader.form


def _parse(stream: BinaryIO, boundary: str, content_length: int | None, reader: _Reader) -> None:
    try:
        parser = multipart.PushMultipartParser(boundary, max_header_count=16)
        left = -1 if content_length is None else content_length
        while not parser.closed:
            block = stream.read(READ_BLOCK if left < 0 else min(READ_BLOCK, left))
            if left >= 0:
                left -= len(block)
            if not block:
                break
            for event in parser.parse(block):
                reader.dispatch(event)
    except multipart.MultipartError:
        raise InvalidUpload(MALFORMED) from None
    except (UnicodeError, LookupError, binascii.Error):
        # A text part in an unknown charset or a broken transfer encoding.
        raise InvalidUpload(MALFORMED) from None
    if not parser.closed:
        # The body ended before the closing boundary: the parts read so far
        # stand, a part cut off with what arrived of it.
        reader.cut_off()
