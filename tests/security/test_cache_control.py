"""Item 2: files of projects anonymous users cannot read must not be cacheable by shared caches.

RFC 9111 section 3.5: ``public`` lets a CDN or caching proxy keep the answer to
a request that carried credentials and hand it to anyone.
"""

from __future__ import annotations

from tests.functional.helpers import JSON_TYPE, auth_headers, make_wheel, upload_dist

WHEEL = make_wheel("secret-proj", "1.0", payload=b"SECRET = 1\n")
URL = f"/api/package/secret-proj/{WHEEL[0]}"


def directives(response) -> set[str]:
    return {d.strip().split("=")[0] for d in response.headers["Cache-Control"].split(",")}


def test_private_download_metadata_and_page_are_private(app):
    upload_dist(app, WHEEL)
    assert app.get(URL, expect_errors=True).status_int == 401  # anonymous: refused
    for path in (URL, URL + ".metadata", "/simple/secret-proj/", "/simple/"):
        response = app.get(path, headers=auth_headers("admin", Accept=JSON_TYPE))
        assert response.status_int == 200, path
        assert "private" in directives(response), (path, response.headers["Cache-Control"])
        assert "public" not in directives(response), path
        assert "Authorization" in response.headers.get("Vary", ""), path
    # A revalidation answer (304) must not turn it public either.
    etag = app.get(URL, headers=auth_headers("admin")).headers["ETag"]
    again = app.get(URL, headers=auth_headers("admin", **{"If-None-Match": etag}), status=304)
    assert "public" not in directives(again)


def test_anonymous_readable_files_stay_public_and_immutable(make_app):
    app = make_app({"pypi.default_read": "everyone"})
    upload_dist(app, WHEEL)
    response = app.get(URL)
    assert {"public", "immutable"} <= directives(response)
    assert "private" not in directives(response)
