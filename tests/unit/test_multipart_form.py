"""The one-pass upload form reader (pypicloud/multipart_form.py): fields, the spooled
file part, limits, malformed and truncated bodies, and parts split across reads."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from pypicloud.errors import InvalidUpload, UploadTooLarge
from pypicloud.multipart_form import FilePart, read_multipart
from pypicloud.spool import SpooledUpload

B = "xYzBoundary"
CT = f"multipart/form-data; boundary={B}"


def field(name: str, value: bytes, extra: str = "") -> tuple[str, bytes]:
    return f'Content-Disposition: form-data; name="{name}"{extra}', value


def file_part(data: bytes, name: str = "content", filename: str = "demo-1.0-py3-none-any.whl"):
    return (
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream",
        data,
    )


def body(*parts: tuple[str, bytes], end: bool = True) -> bytes:
    out = b""
    for headers, data in parts:
        out += f"--{B}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"
    return out + (f"--{B}--\r\n".encode() if end else b"")


class Trickle(io.RawIOBase):
    """A stream that answers every read with at most ``step`` bytes (parts split across reads)."""

    def __init__(self, data: bytes, step: int):
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._step if size is None or size < 0 else min(size, self._step)
        block = self._data[self._pos : self._pos + size]
        self._pos += len(block)
        return block


def parse(raw: bytes, spool_dir, *, stream=None, limit=None, length=-1, **kw):
    spools: list[SpooledUpload] = []

    def open_spool(seen):
        spools.append(SpooledUpload.writer(limit, str(spool_dir), "blake2_256_digest" in seen))
        return spools[-1]

    form = read_multipart(
        stream if stream is not None else io.BytesIO(raw),
        kw.pop("content_type", CT),
        len(raw) if length == -1 else length,
        open_spool,
        **kw,
    )
    return form


def spooled_bytes(form) -> bytes:
    part = form.get("content")
    assert isinstance(part, FilePart) and part.file is not None
    with open(part.file.path, "rb") as handle:
        return handle.read()


def assert_no_spool(spool_dir) -> None:
    assert os.listdir(spool_dir) == []


def test_fields_and_file_in_one_pass(tmp_path):
    data = os.urandom(300_000)
    raw = body(
        field(":action", b"file_upload"),
        field("name", b"demo"),
        field("classifiers", b"A"),
        field("classifiers", b"B"),
        field("blake2_256_digest", b"x"),
        file_part(data),
    )
    form = parse(raw, tmp_path)
    assert form.get("name") == "demo" and form.get(":action") == "file_upload"
    # Repeated fields: every value kept, the last one is the field's value (as WebOb).
    assert form.getall("classifiers") == ["A", "B"] and form.get("classifiers") == "B"
    part = form.get("content")
    assert part.filename == "demo-1.0-py3-none-any.whl"
    spool = part.file
    assert spooled_bytes(form) == data and spool.size == len(data)
    assert spool.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert spool.md5.hexdigest() == hashlib.md5(data).hexdigest()
    assert spool.blake2.hexdigest() == hashlib.blake2b(data, digest_size=32).hexdigest()
    form.close()
    assert_no_spool(tmp_path)


def test_blake2_is_computed_from_the_file_when_not_announced(tmp_path):
    data = b"abc" * 1000
    form = parse(body(file_part(data)), tmp_path)
    spool = form.get("content").file
    assert spool.blake2.hexdigest() == hashlib.blake2b(data, digest_size=32).hexdigest()
    spool.check_digests({"blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest()})
    with pytest.raises(InvalidUpload, match="blake2_256_digest does not match"):
        spool.check_digests({"blake2_256_digest": "0" * 64})
    form.close()


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_parts_split_across_reads(tmp_path, step):
    # File bytes that look like line breaks and boundaries, split at every offset by small reads.
    data = b"\r\n\r\nA\r\n--" + B.encode()[:-1] + b"\r\n--x\r" + os.urandom(5000) + b"\r\n"
    raw = body(field("name", b"demo\r\nwith a line break"), file_part(data), field("version", b"1.0"))
    form = parse(raw, tmp_path, stream=Trickle(raw, step))
    assert form.get("name") == "demo\r\nwith a line break" and form.get("version") == "1.0"
    assert spooled_bytes(form) == data
    form.close()


def test_empty_and_blank_values(tmp_path):
    raw = body(
        field("summary", b""),
        field("name", b"demo", '; filename=""'),
        file_part(b"", name="content"),
    )
    form = parse(raw, tmp_path)
    assert form.get("summary") == ""
    # A part with an empty filename was bytes in WebOb's form, neither text nor a file.
    assert form.get("name") == b"demo"
    assert spooled_bytes(form) == b""
    form.close()


def test_other_file_parts_are_not_spooled(tmp_path):
    raw = body(file_part(b"signature", name="gpg_signature", filename="x.asc"), file_part(b"wheel"))
    form = parse(raw, tmp_path)
    signature = form.get("gpg_signature")
    assert isinstance(signature, FilePart) and signature.file is None
    assert len(os.listdir(tmp_path)) == 1
    form.close()
    assert_no_spool(tmp_path)


def test_text_decoding_as_webob(tmp_path):
    raw = body(
        field("a", b"d\xffe"),
        field("b", "dé".encode()),
        field("c", b"ZGVtbw==", "\r\nContent-Transfer-Encoding: base64"),
    )
    form = parse(raw, tmp_path)
    # Broken UTF-8 gets replacement characters; base64 is undone.
    assert form.get("a") == "d\ufffde" and form.get("b") == "dé" and form.get("c") == "demo"
    bogus = body(field("a", b"x", "\r\nContent-Type: text/plain; charset=bogus"))
    with pytest.raises(InvalidUpload, match="Malformed upload request body"):
        parse(bogus, tmp_path)


def test_file_over_the_limit_is_413_and_its_spool_removed(tmp_path):
    raw = body(field("name", b"demo"), file_part(b"x" * 5000))
    with pytest.raises(UploadTooLarge, match="larger than the limit of 4096 bytes"):
        parse(raw, tmp_path, limit=4096)
    assert_no_spool(tmp_path)
    form = parse(raw, tmp_path, limit=5000)
    assert spooled_bytes(form) == b"x" * 5000
    form.close()


def test_text_over_its_limit_is_413(tmp_path):
    raw = body(field("description", b"d" * 2000), file_part(b"wheel"))
    with pytest.raises(UploadTooLarge):
        parse(raw, tmp_path, max_text=1000)
    assert_no_spool(tmp_path)


def test_too_many_parts(tmp_path):
    raw = body(*[field(f"f{i}", b"x") for i in range(20)], file_part(b"wheel"))
    with pytest.raises(InvalidUpload, match=r"Too many form parts \(more than 10\)"):
        parse(raw, tmp_path, max_parts=10)
    assert_no_spool(tmp_path)


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (body(field("name", b"demo")), "multipart/form-data"),
        (body(field("name", b"demo")), "multipart/form-data; boundary="),
        (b"--xYzBoundary\r\nnot a header\r\n\r\nx\r\n--xYzBoundary--\r\n", CT),
        (body(("Content-Type: text/plain", b"x")), CT),  # no Content-Disposition
        (body(file_part(b"wheel")).replace(b"\r\n\r\n", b"\r\n" + b"X-A: b\r\n" * 40 + b"\r\n"), CT),
    ],
    ids=["no-boundary", "empty-boundary", "bad-header", "no-disposition", "too-many-headers"],
)
def test_malformed_bodies(tmp_path, raw, content_type):
    with pytest.raises(InvalidUpload, match="Malformed upload request body"):
        parse(raw, tmp_path, content_type=content_type)
    assert_no_spool(tmp_path)


def test_truncated_bodies_keep_what_arrived(tmp_path):
    # Only the closing boundary missing: every part stands.
    form = parse(body(field("name", b"demo"), file_part(b"wheel"), end=False), tmp_path)
    assert form.get("name") == "demo" and spooled_bytes(form) == b"wheel"
    form.close()
    # Cut inside the file: it keeps what arrived (as WebOb's parser did), so the
    # upload fails its digest check later.
    data = os.urandom(10_000)
    raw = body(field("name", b"demo"), file_part(data))
    form = parse(raw[: len(raw) - 500], tmp_path)
    got = spooled_bytes(form)
    assert form.get("name") == "demo" and 0 < len(got) < len(data) and data.startswith(got)
    form.close()
    # A Content-Length shorter than the body: the rest is never read.
    form = parse(raw, tmp_path, length=len(raw) - 500)
    assert spooled_bytes(form) == got
    form.close()
    # An empty body, or one without the announced boundary, is an empty form.
    assert parse(b"", tmp_path).items == []
    assert parse(body(field("name", b"demo")), tmp_path, content_type=CT + "2").items == []
    assert_no_spool(tmp_path)


def test_preamble_and_epilogue_are_ignored(tmp_path):
    raw = b"preamble\r\n" + body(field("name", b"demo")) + b"epilogue"
    assert parse(raw, tmp_path).get("name") == "demo"


@pytest.mark.parametrize("sent", ["C:\\x\\demo-1.0-py3-none-any.whl", "\\\\server\\demo.whl", "a/demo.whl"])
def test_filenames_are_kept_as_sent(tmp_path, sent):
    # The parser's own filename drops a Windows path; WebOb kept it, and the
    # upload rules refuse it as an unsafe name.
    assert "\\" in sent or "/" in sent
    form = parse(body(file_part(b"wheel", filename=sent)), tmp_path)
    assert form.get("content").filename == sent
    form.close()
