"""Cross-site writes are refused; upload clients and same-origin requests pass (crosssite.py)."""

from __future__ import annotations

import pytest

from .helpers import assert_nothing_left, assert_rejected, auth_headers, make_wheel, upload, upload_dist

WHEEL = make_wheel("demo", "1.0")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
    ],
    ids=["other-origin", "null-origin", "lookalike", "fetch-cross-site", "fetch-same-site", "fetch-wins"],
)
def test_cross_site_upload_is_refused_and_stores_nothing(app, tmp_path, headers):
    response = upload(app, *WHEEL, headers=headers)
    assert_rejected(response, 403, "Cross-site request refused")
    assert_nothing_left(app, tmp_path, "demo", WHEEL[0])


def test_cross_site_delete_and_rebuild_are_refused(app):
    upload_dist(app, WHEEL)
    evil = auth_headers("admin", Origin="https://evil.example")
    response = app.delete(f"/api/package/demo/{WHEEL[0]}", headers=evil, expect_errors=True)
    assert_rejected(response, 403, "Cross-site")
    assert_rejected(app.post("/admin/rebuild", headers=evil, expect_errors=True), 403, "Cross-site")
    assert app.get(f"/api/package/demo/{WHEEL[0]}", headers=auth_headers("admin")).body == WHEEL[1]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # twine, uv, poetry, pdm
        {"Origin": "http://localhost"},  # a same-origin page
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "none"},  # typed by the user
    ],
    ids=["client", "same-origin", "fetch-same-origin", "fetch-none"],
)
def test_clients_and_same_origin_pages_may_upload(app, headers):
    assert upload(app, *WHEEL, headers=headers).status_int == 200


def test_cross_site_reads_are_not_affected(app):
    upload_dist(app, WHEEL)
    headers = auth_headers("admin", Origin="https://elsewhere.example", **{"Sec-Fetch-Site": "cross-site"})
    assert app.get("/simple/demo/", headers=headers).status_int == 200
