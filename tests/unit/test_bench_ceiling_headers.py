"""The in-memory ceiling's page with an index's headers (benchmarks.ceiling): the same
body, and the header names pypicloud's project page is sent with, in the same order."""

from __future__ import annotations

import os

from webtest import TestApp

from benchmarks.ceiling import CeilingIndex
from pypicloud.read_headers import page_headers


def test_a_page_asked_with_the_marker_header_carries_an_index_s_headers(tmp_path):
    os.makedirs(tmp_path / "demo")
    (tmp_path / "demo" / "demo-1.0-py3-none-any.whl").write_bytes(b"not really a wheel")
    app = TestApp(CeilingIndex(str(tmp_path)))

    plain = app.get("/simple/demo/", headers={"Accept": "text/html"})
    full = app.get("/simple/demo/", headers={"Accept": "text/html", "X-Ceiling-Headers": "index"})
    again = app.get("/simple/demo/", headers={"Accept": "text/html", "X-Ceiling-Headers": "index"})

    assert plain.body == full.body and b"demo-1.0-py3-none-any.whl" in full.body
    assert [name for name, _ in plain.headerlist] == ["Content-Type", "Content-Length"]
    # pypicloud's page headers (read_headers.page_headers), then what the fast lane adds
    ours = [name for name, _ in page_headers(_Page(), 4, "max-age=0")]
    expected = ours + ["Content-Length", "X-Request-ID", "X-Content-Type-Options"]
    assert [name for name, _ in full.headerlist] == expected
    assert full.headers["ETag"] == again.headers["ETag"]  # made once per page
    assert full.headers["X-Request-ID"] != again.headers["X-Request-ID"]


class _Page:
    content_type = "text/html"
    etag = '"x"'
