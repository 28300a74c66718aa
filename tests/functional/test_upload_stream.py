"""Issue 17 items 1 and 2: an upload's body is read in one pass into its spool, and
file storage publishes the spool without copying it.

The bodies are built by hand (WebTest would re-encode a multipart form), shaped
as twine sends them: the text fields first, the file last.
"""

from __future__ import annotations

import os

import pytest
import webob.request

from pypicloud.spool import SpooledUpload

from .helpers import (
    assert_nothing_left,
    assert_rejected,
    auth_headers,
    digests,
    make_wheel,
    service,
    sha256,
    simple_json,
    stored_path,
    twine_fields,
)

BOUNDARY = "----twineBoundary17"


def form_body(fields, filename: str | None, data: bytes | None, *, file_first: bool = False) -> bytes:
    """A multipart body: ``fields`` (name, value) then the ``content`` file part."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields
    ]
    if data is not None:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        file_part = head + data + b"\r\n"
        parts = [file_part, *parts] if file_first else [*parts, file_part]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def post(app, body: bytes, path: str = "/", content_type: str | None = None, user: str = "admin"):
    request = app.RequestClass.blank(path, method="POST", body=body, headers=auth_headers(user))
    request.content_type = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    return app.do_request(request, status="*", expect_errors=True)


def twine_body(filename: str, data: bytes, **changes) -> bytes:
    fields = twine_fields(filename, data)
    fields.update(changes)
    return form_body([(k, v) for k, v in fields.items() if v is not None], filename, data)


@pytest.fixture
def big_wheel():
    # Random bytes do not compress: the wheel is about as large as its payload.
    return make_wheel("big-pkg", "1.0", payload=os.urandom(20 * 1024 * 1024))


@pytest.mark.parametrize("path", ["/", "/simple/", "/pypi"])
def test_a_large_twine_upload_is_stored_whole(app, big_wheel, path):
    filename, data = big_wheel
    response = post(app, twine_body(filename, data), path)
    assert response.status_int == 200, response.text
    record = service(app).index.get(filename)
    assert record.sha256 == sha256(data) and record.size == len(data)
    files = simple_json(app, "/simple/big-pkg/").json["files"]
    assert [f["filename"] for f in files] == [filename]
    download = app.get(files[0]["url"], headers=auth_headers("admin"))
    assert sha256(download.body) == sha256(data)


def test_the_upload_path_never_parses_the_body_with_webob(app, monkeypatch):
    def refuse(_request):
        raise AssertionError("request.POST on the upload path")

    monkeypatch.setattr(webob.request.BaseRequest, "POST", property(refuse))
    filename, data = make_wheel("demo", "1.0")
    assert post(app, twine_body(filename, data)).status_int == 200
    # pypicloud 1.x's REST upload too.
    filename, data = make_wheel("demo", "1.1")
    response = post(app, form_body([], filename, data), f"/api/package/demo/{filename}")
    assert response.status_int == 200, response.text


def test_file_storage_publishes_the_spool_itself(app, monkeypatch):
    """The stored file is the inode the spool wrote: its bytes were never copied."""
    spooled: list[int] = []
    finish = SpooledUpload.finish

    def record_inode(self):
        finish(self)
        spooled.append(os.stat(self.path).st_ino)

    monkeypatch.setattr(SpooledUpload, "finish", record_inode)
    filename, data = make_wheel("demo", "1.0", payload=os.urandom(100_000))
    assert post(app, twine_body(filename, data)).status_int == 200
    stored = stored_path(app, "demo", filename)
    assert spooled == [os.stat(stored).st_ino]
    assert stored.read_bytes() == data
    assert os.stat(stored).st_nlink == 1  # the spool's own name is gone


def test_digests_after_the_file_are_checked_too(app, tmp_path):
    filename, data = make_wheel("demo", "1.0")
    fields = [(k, v) for k, v in twine_fields(filename, data).items() if not k.endswith("_digest")]
    good = digests(data)
    body = form_body([*fields, *good.items()], filename, data, file_first=True)
    assert post(app, body).status_int == 200
    filename, data = make_wheel("demo", "1.1")
    fields = [(k, v) for k, v in twine_fields(filename, data).items() if not k.endswith("_digest")]
    body = form_body([*fields, ("blake2_256_digest", "0" * 64)], filename, data, file_first=True)
    assert_rejected(post(app, body), 400, "blake2_256_digest does not match")
    assert_nothing_left(app, tmp_path, None, filename)


def _cut(body: bytes) -> bytes:
    return body[: len(body) - 5000]


REJECTIONS = [
    # (what, body builder, content type, status, reason)
    ("truncated", lambda f, d: _cut(twine_body(f, d)), None, 400, "sha256_digest does not match"),
    ("no boundary", lambda f, d: twine_body(f, d), "multipart/form-data", 400, "malformed upload"),
    ("bad part header", lambda f, d: b"--" + BOUNDARY.encode() + b"\r\nbad\r\n\r\n", None, 400, "malformed"),
    ("no content", lambda f, d: form_body(twine_fields(f, d).items(), f, None), None, 400, "content"),
    ("too large", lambda f, d: twine_body(f, d + b"\0" * 9000), None, 413, "larger than the limit"),
    ("digest", lambda f, d: twine_body(f, d, sha256_digest="0" * 64), None, 400, "sha256_digest"),
    ("bad archive", lambda f, d: twine_body(f, b"not a zip" * 100), None, 400, ""),
    ("empty file", lambda f, d: twine_body(f, b""), None, 400, "is empty"),
    ("windows path", lambda f, d: twine_body("C:\\x\\" + f, d), None, 400, "filename"),
    (
        "too many parts",
        lambda f, d: form_body([(f"x{i}", "1") for i in range(1200)], f, d),
        None,
        400,
        "too many form parts",
    ),
]


@pytest.mark.parametrize(
    ("build", "content_type", "status", "reason"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_rejected_bodies_leave_nothing_behind(make_app, tmp_path, build, content_type, status, reason):
    app = make_app({"pypi.max_upload_size": "8K"})
    filename, data = make_wheel("demo", "1.0", payload=os.urandom(6000))
    assert len(data) < 8 * 1024
    response = post(app, build(filename, data), content_type=content_type)
    assert_rejected(response, status, *([reason] if reason else []))
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_a_damaged_metadata_companion_is_not_served(app):
    """The PEP 658 companion is not forced to disk: one a crash left damaged is
    answered as missing, never served with bytes that do not match its sha256."""
    filename, data = make_wheel("demo", "1.0")
    assert post(app, twine_body(filename, data)).status_int == 200
    files = simple_json(app, "/simple/demo/").json["files"]
    url = files[0]["url"]
    good = app.get(url + ".metadata", headers=auth_headers("admin"))
    assert good.status_int == 200 and b"Name: demo" in good.body
    companion = stored_path(app, "demo", filename + ".metadata")
    companion.write_bytes(b"")  # what a crash before writeback leaves
    damaged = app.get(url + ".metadata", headers=auth_headers("admin"), expect_errors=True)
    assert damaged.status_int == 404
    # The wheel itself is still there.
    assert sha256(app.get(url, headers=auth_headers("admin")).body) == sha256(data)
