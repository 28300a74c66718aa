"""Downloads and ``.metadata`` files on the warm path (issue 17 item 3).

A warm download or PEP 658 metadata request asks the index nothing (the file
record is cached per change counter; reading the counter of a SQLite index is
a memory read), and a download of a whole file from file storage is handed to
the server's ``wsgi.file_wrapper`` with the storage's own open file, so a server
such as waitress sends it without the app copying it in chunks. Ranges and
storage without local files keep being served from the storage stream.
"""

from __future__ import annotations

import hashlib
import http.client
import os

import pytest
import webob
from waitress.buffers import ReadOnlyFileBasedBuffer
from webtest.http import StopableWSGIServer

from pypicloud.index.sql import SQLIndex
from pypicloud.mapped_file import MIN_SIZE, MappedFile
from tests.fixtures.s3 import s3_settings

from .helpers import auth_headers, make_wheel, service, upload_dist

# Every MetadataIndex method that asks the database something (generation() is
# the change counter, a memory read on SQLite, and is not counted).
QUERIES = (
    "get",
    "files",
    "projects",
    "all_records",
    "count",
    "get_url",
    "set_url",
    "add",
    "remove",
    "set_yanked",
    "replace_all",
    "was_local",
    "counter",
)


class CountingIndex(SQLIndex):
    """A SQLite index that counts its queries (``pypi.db`` names it: chosen at construction)."""

    calls: list[str]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []


def _counting(name):
    def method(self, *args, **kwargs):
        self.calls.append(name)
        return getattr(SQLIndex, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in QUERIES:
    setattr(CountingIndex, _name, _counting(_name))

PAYLOAD = bytes(range(256)) * 40
WHEEL = make_wheel("demo", "1.0", payload=PAYLOAD)
URL = f"/api/package/demo/{WHEEL[0]}"


class Wrapper:
    """A ``wsgi.file_wrapper`` as PEP 3333 describes it: iterates the file in blocks."""

    def __init__(self, fileobj, block_size=8192):
        self.file = fileobj
        self.block_size = block_size

    def __iter__(self):
        while block := self.file.read(self.block_size):
            yield block

    def close(self):
        self.file.close()


@pytest.fixture
def demo_app(app):
    upload_dist(app, WHEEL)
    return app


def call(test_app, path: str, **headers: str):
    """``(status, headers, app_iter)`` of the app for a GET with a file wrapper in the environ."""
    request = webob.Request.blank(path, headers=auth_headers("admin", **headers))
    request.environ["wsgi.file_wrapper"] = Wrapper
    return request.call_application(test_app.app)


def test_warm_download_and_metadata_ask_the_index_nothing(make_app):
    test_app = make_app({"pypi.db": f"{__name__}.CountingIndex"})
    upload_dist(test_app, WHEEL)
    index = service(test_app).index
    assert isinstance(index, CountingIndex)
    headers = auth_headers("admin")
    for path in (URL, URL + ".metadata"):
        test_app.get(path, headers=headers, status=200)  # warm
    index.calls.clear()
    for _ in range(3):
        assert test_app.get(URL, headers=headers, status=200).body == WHEEL[1]
        assert b"Name: demo" in test_app.get(URL + ".metadata", headers=headers, status=200).body
        test_app.get(URL, headers=auth_headers("admin", Range="bytes=10-19"), status=206)
    assert index.calls == []
    # A change is still seen on the next request.
    test_app.delete(URL, headers=headers, status=200)
    test_app.get(URL, headers=headers, status=404)
    test_app.get(URL + ".metadata", headers=headers, status=404)


def test_whole_file_goes_to_the_servers_file_wrapper(demo_app):
    status, headers, app_iter = call(demo_app, URL)
    assert status.startswith("200")
    assert isinstance(app_iter, Wrapper)
    assert dict(headers)["Content-Length"] == str(len(WHEEL[1]))
    try:
        assert b"".join(app_iter) == WHEEL[1]
    finally:
        app_iter.close()


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 10), ("bytes=100-", 100, None), ("bytes=-50", -50, None), ("bytes=5-5", 5, 6)],
)
def test_ranges_with_a_file_wrapper_give_the_exact_bytes(demo_app, header, start, end):
    data = WHEEL[1]
    response = demo_app.get(
        URL, headers=auth_headers("admin", Range=header), extra_environ={"wsgi.file_wrapper": Wrapper}
    )
    assert response.status_int == 206
    assert response.body == data[start:end]
    first = start % len(data)
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(response.body) - 1}/{len(data)}"


def test_a_range_inside_the_file_is_not_handed_to_the_wrapper(demo_app):
    status, headers, app_iter = call(demo_app, URL, Range="bytes=0-9")
    try:
        assert status.startswith("206")
        assert not isinstance(app_iter, Wrapper)  # the wrapper would send to the end of the file
        assert b"".join(app_iter) == WHEEL[1][:10]
    finally:
        app_iter.close()


def test_unsatisfiable_range_with_a_file_wrapper_is_416(demo_app):
    response = demo_app.get(
        URL,
        headers=auth_headers("admin", Range="bytes=999999-"),
        extra_environ={"wsgi.file_wrapper": Wrapper},
        status=416,
    )
    assert response.headers["Content-Range"] == f"bytes */{len(WHEEL[1])}"


def test_storage_without_local_files_keeps_streaming(make_app):
    test_app = make_app({"pypi.storage": "memory", "storage.dir": None})
    upload_dist(test_app, WHEEL)
    status, _, app_iter = call(test_app, URL)
    try:
        assert status.startswith("200")
        assert not isinstance(app_iter, Wrapper)
        assert b"".join(app_iter) == WHEEL[1]
    finally:
        app_iter.close()


def test_a_multi_megabyte_download_through_waitress(make_app):
    payload = os.urandom(6 * 1024 * 1024)  # incompressible: the wheel stays this large
    filename, data = make_wheel("big", "1.0", payload=payload)
    test_app = make_app()
    upload_dist(test_app, (filename, data))
    seen = []

    def app(environ, start_response):  # notes what waitress is handed back
        app_iter = test_app.app(environ, start_response)
        seen.append(type(app_iter))
        return app_iter

    # webtest's waitress server in a thread, with a shutdown that stops its loop cleanly.
    server = StopableWSGIServer.create(app, host="127.0.0.1", threads=2)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.adj.port, timeout=30)
        conn.request("GET", f"/api/package/big/{filename}", headers=auth_headers("admin"))
        response = conn.getresponse()
        body = response.read()
        conn.close()
    finally:
        server.shutdown()
        server.runner.join(10)
    assert response.status == 200
    assert seen == [ReadOnlyFileBasedBuffer]  # waitress's own file wrapper
    assert len(body) == len(data) > 5 * 1024 * 1024
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_warm_redirect_to_s3_asks_the_index_nothing(make_app, moto_server, s3_bucket):
    """The signed URL is read from the index's shared cache once, then from memory."""
    test_app = make_app(
        s3_settings(moto_server, s3_bucket, prefix="pkgs/")
        | {"storage.dir": None, "pypi.db": f"{__name__}.CountingIndex"}
    )
    upload_dist(test_app, WHEEL)
    headers = auth_headers("admin")
    first = test_app.get(URL, headers=headers, status=302).headers["Location"]
    index = service(test_app).index
    index.calls.clear()
    for _ in range(3):
        assert test_app.get(URL, headers=headers, status=302).headers["Location"] == first
        assert b"Name: demo" in test_app.get(URL + ".metadata", headers=headers, status=200).body
    assert index.calls == []
    # Another process (a new app on the same index) hands out the same URL.
    other = make_app(test_app.ppc_settings)
    assert other.get(URL, headers=headers, status=302).headers["Location"] == first


def test_a_large_file_goes_to_the_wrapper_as_its_mapping(app):
    """Files of at least ``MIN_SIZE`` bytes are handed over mapped (pypicloud/mapped_file.py)."""
    payload = os.urandom(MIN_SIZE * 2)
    filename, data = make_wheel("large", "1.0", payload=payload)
    upload_dist(app, (filename, data))
    status, _, app_iter = call(app, f"/api/package/large/{filename}")
    try:
        assert status.startswith("200")
        assert isinstance(app_iter, Wrapper)
        assert isinstance(app_iter.file, MappedFile)
        assert b"".join(app_iter) == data
    finally:
        app_iter.close()
