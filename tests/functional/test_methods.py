"""A path that exists answers 405 with ``Allow`` for a method it does not take (RFC 9110)."""

from __future__ import annotations

import pytest

from .helpers import auth_headers, make_wheel, upload_dist


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("PUT", "/simple/", "GET, HEAD, POST"),
        ("DELETE", "/simple/demo/", "GET, HEAD"),
        ("DELETE", "/health", "GET, HEAD"),
        ("POST", "/pypi/demo/json", "GET, HEAD"),
        ("PUT", "/api/package/demo/demo-1.0-py3-none-any.whl", "DELETE, GET, HEAD, POST"),
    ],
)
def test_wrong_method_is_405_with_allow_and_changes_nothing(app, method, path, allow):
    wheel = make_wheel("demo", "1.0")
    upload_dist(app, wheel)
    response = app.request(path, method=method, headers=auth_headers("admin"), expect_errors=True)
    assert response.status_int == 405
    assert response.headers["Allow"] == allow
    assert f"Method {method} is not allowed" in response.text
    # Nothing happened to the file.
    assert app.get(f"/api/package/demo/{wheel[0]}", headers=auth_headers("admin")).body == wheel[1]


def test_unknown_path_is_still_404(app):
    assert app.request("/no/such/path", method="PUT", expect_errors=True).status_int == 404
