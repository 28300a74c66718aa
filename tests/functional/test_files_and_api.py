"""Downloads, the legacy JSON API, pypicloud's REST API and /health (SPEC section 4)."""

from __future__ import annotations

import shutil
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from pypicloud.access.passwords import hash_password

from .helpers import (
    assert_nothing_left,
    auth_headers,
    basic,
    close_app,
    file_record,
    make_sdist,
    make_wheel,
    project_names,
    restart,
    service,
    sha256,
    simple_json,
    stored_path,
    upload,
    upload_dist,
)

WHEEL = make_wheel("demo", "1.0", payload=bytes(range(256)) * 40)
SDIST = make_sdist("demo", "1.0")


def url(filename: str, project: str = "demo") -> str:
    return f"/api/package/{project}/{filename}"


def get(app, path, user="admin", **headers):
    return app.get(path, headers=auth_headers(user, **headers), expect_errors=True)


@pytest.fixture
def demo_app(app):
    for dist in (WHEEL, SDIST):
        upload_dist(app, dist)
    return app


# ---------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dist", [WHEEL, SDIST], ids=["wheel", "sdist"])
def test_download_headers_and_exact_bytes(demo_app, dist):
    filename, data = dist
    response = get(demo_app, url(filename))
    assert response.status_int == 200
    assert response.body == data
    assert int(response.headers["Content-Length"]) == len(data)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{sha256(data)}"'
    assert "Content-Encoding" not in response.headers  # never re-encoded (a .tar.gz stays as is)
    assert response.content_type == "application/octet-stream"
    last_modified = parsedate_to_datetime(response.headers["Last-Modified"])
    record = file_record(demo_app, filename)
    assert abs((last_modified - record.upload_time).total_seconds()) < 1
    cache_control = [p.strip() for p in response.headers["Cache-Control"].split(",")]
    assert "immutable" in cache_control
    max_age = next(int(p.split("=")[1]) for p in cache_control if p.startswith("max-age="))
    assert max_age >= 86400


def test_package_max_age_setting(make_app):
    app = make_app({"pypi.package_max_age": "600"})
    upload_dist(app, WHEEL)
    assert "max-age=600" in get(app, url(WHEEL[0])).headers["Cache-Control"]


@pytest.mark.parametrize(
    "header,start,end",
    [
        ("bytes=10-19", 10, 20),
        ("bytes=0-0", 0, 1),
        ("bytes=100-", 100, None),
        ("bytes=-7", -7, None),
        ("bytes=5-999999999", 5, None),
    ],
)
def test_range_request_is_206_with_exact_bytes(demo_app, header, start, end):
    filename, data = WHEEL
    expected = data[start:end]
    response = get(demo_app, url(filename), Range=header)
    assert response.status_int == 206
    assert response.body == expected
    assert int(response.headers["Content-Length"]) == len(expected)
    first = start if start >= 0 else len(data) + start
    last = first + len(expected) - 1
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    assert response.headers["ETag"] == f'"{sha256(data)}"'


@pytest.mark.parametrize("header", ["bytes=999999-", f"bytes={len(WHEEL[1])}-"])
def test_unsatisfiable_range_is_416(demo_app, header):
    filename, data = WHEEL
    response = get(demo_app, url(filename), Range=header)
    assert response.status_int == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"


def test_if_range_with_current_etag_gives_the_range_else_the_whole_file(demo_app):
    filename, data = WHEEL
    etag = f'"{sha256(data)}"'
    part = get(demo_app, url(filename), Range="bytes=0-9", **{"If-Range": etag})
    assert part.status_int == 206 and part.body == data[:10]
    whole = get(demo_app, url(filename), Range="bytes=0-9", **{"If-Range": '"old"'})
    assert whole.status_int == 200 and whole.body == data


def test_if_none_match_is_304(demo_app):
    filename, data = WHEEL
    etag = get(demo_app, url(filename)).headers["ETag"]
    response = get(demo_app, url(filename), **{"If-None-Match": etag})
    assert response.status_int == 304
    assert response.body == b""
    assert response.headers["ETag"] == etag
    assert get(demo_app, url(filename), **{"If-None-Match": '"nope"'}).status_int == 200


def test_head_download(demo_app):
    filename, data = WHEEL
    response = demo_app.head(url(filename), headers=basic("admin"))
    assert response.status_int == 200
    assert int(response.headers["Content-Length"]) == len(data)
    assert response.body == b""


def test_download_permissions_and_404s(make_app):
    app = make_app({"pypi.default_read": ""})
    upload_dist(app, make_wheel("alice-pkg", "1.0"), user="alice")
    filename = "alice_pkg-1.0-py3-none-any.whl"
    assert get(app, url(filename, "alice-pkg"), user="alice").status_int == 200
    anonymous = get(app, url(filename, "alice-pkg"), user=None)
    assert anonymous.status_int == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert get(app, url(filename, "alice-pkg"), user="bob").status_int == 403
    assert get(app, url("alice_pkg-9.9-py3-none-any.whl", "alice-pkg")).status_int == 404
    assert get(app, url(filename, "other")).status_int == 404  # a file of another project
    assert get(app, url("nothing-1.0.tar.gz", "nothing")).status_int == 404


def test_non_canonical_download_url_redirects(demo_app):
    response = get(demo_app, url(WHEEL[0], "DEMO"))
    assert response.status_int == 301
    assert response.headers["Location"].endswith(url(WHEEL[0]))


def test_downloads_survive_a_restart(demo_app):
    fresh = restart(demo_app)
    try:
        assert get(fresh, url(WHEEL[0])).body == WHEEL[1]
    finally:
        close_app(fresh)


def test_a_delete_through_another_process_is_seen_by_warm_downloads(demo_app):
    """Records are cached per change counter: a change made elsewhere ends the cache."""
    other = restart(demo_app)  # a second process on the same storage and index
    try:
        metadata_url = url(WHEEL[0]) + ".metadata"
        assert get(demo_app, url(WHEEL[0])).status_int == 200  # warm the record cache
        assert get(demo_app, metadata_url).status_int == 200
        response = other.delete(url(WHEEL[0]), headers=auth_headers("admin"))
        assert response.status_int == 200
        assert get(demo_app, url(WHEEL[0])).status_int == 404
        assert get(demo_app, metadata_url).status_int == 404
        upload_dist(other, WHEEL)  # and back again, through the other process
        assert get(demo_app, url(WHEEL[0])).body == WHEEL[1]
    finally:
        close_app(other)


# ---------------------------------------------------------------------------
# Legacy JSON API
# ---------------------------------------------------------------------------
@pytest.fixture
def released_app(app):
    """demo 1.0 (wheel + sdist), 1.1 (sdist), 2.0rc1 (wheel)."""
    for dist in (
        WHEEL,
        SDIST,
        make_sdist("demo", "1.1", summary="Release 1.1"),
        make_wheel("demo", "2.0rc1", summary="Pre-release"),
    ):
        upload_dist(app, dist)
    return app


def test_project_json(released_app):
    response = get(released_app, "/pypi/demo/json")
    assert response.status_int == 200
    doc = response.json
    info = doc["info"]
    assert info["name"] == "demo"
    assert info["version"] == "1.1"  # newest final release, not the pre-release
    assert info["summary"] == "Release 1.1"
    assert set(doc["releases"]) == {"1.0", "1.1", "2.0rc1"}
    assert sorted(f["filename"] for f in doc["releases"]["1.0"]) == sorted([WHEEL[0], SDIST[0]])
    assert [f["filename"] for f in doc["urls"]] == ["demo-1.1.tar.gz"]
    for files in doc["releases"].values():
        for entry in files:
            record = file_record(released_app, entry["filename"])
            assert entry["digests"]["sha256"] == record.sha256
            assert entry["digests"]["md5"] == record.md5 == entry["md5_digest"]
            assert entry["size"] == record.size
            assert entry["yanked"] is False
            assert entry["packagetype"] in ("bdist_wheel", "sdist")
            assert entry["upload_time_iso_8601"].endswith("Z")
            # /packages/<p>/<f> since issue 11: the URL index pages link (same view).
            assert entry["url"].endswith(f"/packages/demo/{entry['filename']}")
    wheel = next(f for f in doc["releases"]["1.0"] if f["filename"] == WHEEL[0])
    assert wheel["packagetype"] == "bdist_wheel"
    assert wheel["requires_python"] == ">=3.8"
    # The URL in the document downloads the file.
    assert get(released_app, wheel["url"].split("localhost", 1)[1]).body == WHEEL[1]


def test_version_json(released_app):
    doc = get(released_app, "/pypi/demo/1.0/json").json
    assert doc["info"]["version"] == "1.0"
    assert sorted(f["filename"] for f in doc["urls"]) == sorted([WHEEL[0], SDIST[0]])
    assert "releases" not in doc or doc["releases"] in ({}, None)
    pre = get(released_app, "/pypi/demo/2.0rc1/json").json
    assert pre["info"]["version"] == "2.0rc1"
    # Any spelling that normalises to a stored version finds it.
    assert get(released_app, "/pypi/demo/2.0RC1/json").json["info"]["version"] == "2.0rc1"


def test_json_latest_skips_a_fully_yanked_release(released_app):
    released_app.post(url("demo-1.1.tar.gz") + "/yank", params={"reason": "broken"}, headers=basic("admin"))
    doc = get(released_app, "/pypi/demo/json").json
    assert doc["info"]["version"] == "1.0"
    yanked = doc["releases"]["1.1"][0]
    assert yanked["yanked"] is True and yanked["yanked_reason"] == "broken"
    one_one = get(released_app, "/pypi/demo/1.1/json").json
    assert one_one["info"]["yanked"] is True


def test_json_api_only_prereleases(app):
    upload_dist(app, make_wheel("demo", "0.1a1"))
    upload_dist(app, make_wheel("demo", "0.1b2"))
    assert get(app, "/pypi/demo/json").json["info"]["version"] == "0.1b2"


def test_json_api_404s_and_redirects(released_app):
    assert get(released_app, "/pypi/nope/json").status_int == 404
    assert get(released_app, "/pypi/demo/9.9/json").status_int == 404
    assert get(released_app, "/pypi/demo/not a version/json").status_int == 404
    redirect = get(released_app, "/pypi/DEMO/json")
    assert redirect.status_int == 301 and redirect.headers["Location"].endswith("/pypi/demo/json")
    redirect = get(released_app, "/pypi/Demo/1.0/json")
    assert redirect.status_int == 301 and redirect.headers["Location"].endswith("/pypi/demo/1.0/json")


def test_json_api_permissions(make_app):
    app = make_app({"pypi.default_read": ""})
    upload_dist(app, make_wheel("alice-pkg", "1.0"), user="alice")
    assert get(app, "/pypi/alice-pkg/json", user="alice").status_int == 200
    assert get(app, "/pypi/alice-pkg/json", user=None).status_int == 401
    assert get(app, "/pypi/alice-pkg/json", user="bob").status_int == 403
    assert get(app, "/pypi/alice-pkg/1.0/json", user="bob").status_int == 403


# ---------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------
def test_rest_list_packages_and_files(demo_app):
    upload_dist(demo_app, make_wheel("alice-pkg", "1.0"), user="alice")
    listing = get(demo_app, "/api/package/")
    assert listing.status_int == 200
    assert sorted(listing.json["packages"]) == ["alice-pkg", "demo"]
    assert get(demo_app, "/api/package").status_int == 301
    files = get(demo_app, "/api/package/demo/").json["packages"]
    assert sorted(f["filename"] for f in files) == sorted([WHEEL[0], SDIST[0]])
    wheel = next(f for f in files if f["filename"] == WHEEL[0])
    assert wheel["sha256"] == sha256(WHEEL[1]) and wheel["size"] == len(WHEEL[1])
    assert wheel["version"] == "1.0" and wheel["uploader"] == "admin"
    # pypicloud 1.x's shapes (issue 11): the URL carries its digest, the time is epoch seconds.
    assert wheel["url"].endswith(url(WHEEL[0]) + "#sha256=" + sha256(WHEEL[1]))
    assert isinstance(wheel["last_modified"], int)
    unknown = get(demo_app, "/api/package/nope/")
    assert unknown.status_int == 200 and unknown.json == {"packages": [], "write": True}


def test_rest_listing_permissions(make_app):
    app = make_app({"pypi.default_read": ""})
    upload_dist(app, make_wheel("alice-pkg", "1.0"), user="alice")
    upload_dist(app, WHEEL)
    assert sorted(get(app, "/api/package/", user="alice").json["packages"]) == ["alice-pkg"]
    assert get(app, "/api/package/", user="bob").json["packages"] == []
    assert get(app, "/api/package/alice-pkg/", user="bob").status_int == 403
    assert get(app, "/api/package/alice-pkg/", user=None).status_int == 401


def test_rest_delete_permissions(demo_app, tmp_path):
    filename = WHEEL[0]
    anonymous = demo_app.delete(url(filename), expect_errors=True)
    assert anonymous.status_int == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert demo_app.delete(url(filename), headers=basic("bob"), expect_errors=True).status_int == 403
    assert (
        demo_app.delete(url(filename), headers=basic("admin", "wrong"), expect_errors=True).status_int == 401
    )
    assert stored_path(demo_app, "demo", filename).read_bytes() == WHEEL[1]
    assert file_record(demo_app, filename) is not None

    response = demo_app.delete(url(filename), headers=basic("admin"))
    assert response.status_int == 200
    assert response.json["deleted"] == filename
    assert not stored_path(demo_app, "demo", filename).exists()
    assert_nothing_left(demo_app, tmp_path, "demo", filename)
    assert get(demo_app, url(filename)).status_int == 404
    assert get(demo_app, url(filename + ".metadata")).status_int == 404
    # A file that is not there: 400, as pypicloud 1.x answered (issue 11).
    again = demo_app.delete(url(filename), headers=basic("admin"), expect_errors=True)
    assert again.status_int == 400 and again.json["message"] == f"Could not find {filename}"


def test_deleting_the_last_file_removes_the_project(demo_app, tmp_path):
    for filename, _ in (WHEEL, SDIST):
        demo_app.delete(url(filename), headers=basic("admin"))
    assert "demo" not in project_names(demo_app)
    assert get(demo_app, "/simple/demo/").status_int == 404
    assert_nothing_left(demo_app, tmp_path, "demo", SDIST[0])


def test_writer_may_delete_own_project_files(app):
    dist = make_wheel("alice-pkg", "1.0")
    upload_dist(app, dist, user="alice")
    assert app.delete(url(dist[0], "alice-pkg"), headers=basic("bob"), expect_errors=True).status_int == 403
    assert app.delete(url(dist[0], "alice-pkg"), headers=basic("alice")).status_int == 200
    assert file_record(app, dist[0]) is None


def test_allow_delete_false(make_app):
    app = make_app({"pypi.allow_delete": "false"})
    dist = make_wheel("alice-pkg", "1.0")
    upload_dist(app, dist, user="alice")
    assert app.delete(url(dist[0], "alice-pkg"), headers=basic("alice"), expect_errors=True).status_int == 403
    assert file_record(app, dist[0]) is not None
    assert app.delete(url(dist[0], "alice-pkg"), headers=basic("admin")).status_int == 200


def test_rest_delete_project(demo_app, tmp_path):
    assert demo_app.delete("/api/package/demo/", headers=basic("bob"), expect_errors=True).status_int == 403
    response = demo_app.delete("/api/package/demo/", headers=basic("admin"))
    assert sorted(response.json["deleted"]) == sorted([WHEEL[0], SDIST[0]])
    assert_nothing_left(demo_app, tmp_path, "demo", WHEEL[0])
    assert demo_app.delete("/api/package/demo/", headers=basic("admin"), expect_errors=True).status_int == 404


def test_rest_yank_and_unyank_permissions(app):
    dist = make_wheel("alice-pkg", "1.0")
    upload_dist(app, dist, user="alice")
    yank_url = url(dist[0], "alice-pkg") + "/yank"
    assert app.post(yank_url, expect_errors=True).status_int == 401
    assert app.post(yank_url, headers=basic("bob"), expect_errors=True).status_int == 403
    response = app.post(yank_url, params={"reason": "oops"}, headers=basic("alice"))
    assert response.json["yanked"] is True and response.json["yanked_reason"] == "oops"
    assert file_record(app, dist[0]).yanked is True
    assert app.delete(yank_url, headers=basic("bob"), expect_errors=True).status_int == 403
    assert app.delete(yank_url, expect_errors=True).status_int == 401
    response = app.delete(yank_url, headers=basic("alice"))
    assert response.json["yanked"] is False and response.json["yanked_reason"] is None
    assert file_record(app, dist[0]).yanked is False
    assert (
        app.post(
            url("alice_pkg-9.0-py3-none-any.whl", "alice-pkg") + "/yank",
            headers=basic("alice"),
            expect_errors=True,
        ).status_int
        == 404
    )


def test_yank_with_bad_json_is_400(demo_app):
    response = demo_app.post(
        url(WHEEL[0]) + "/yank",
        params=b"{not json",
        headers={**basic("admin"), "Content-Type": "application/json"},
        expect_errors=True,
    )
    assert response.status_int == 400
    response = demo_app.post_json(
        url(WHEEL[0]) + "/yank", {"reason": 5}, headers=basic("admin"), expect_errors=True
    )
    assert response.status_int == 400


# ---------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------
def test_health_ok(app):
    response = app.get("/health", headers=auth_headers("admin"))
    assert response.status_int == 200
    assert response.content_type == "application/json"
    doc = response.json
    assert doc["status"] == "ok"
    for part in ("storage", "index", "access"):
        assert doc[part]["ok"] is True, doc
    assert doc["storage"]["backend"] == "FileStorage"
    assert "no-store" in response.headers["Cache-Control"]
    assert app.head("/health").status_int == 200


def test_health_needs_no_login_even_when_reading_does(make_app):
    app = make_app({"pypi.default_read": ""})
    assert app.get("/health").status_int == 200


def _storage_dir(app) -> Path:
    return Path(app.ppc_settings["storage.dir"])


def test_health_503_when_storage_dir_is_removed(demo_app):
    root = _storage_dir(demo_app)
    shutil.rmtree(root)
    response = demo_app.get("/health", headers=auth_headers("admin"), expect_errors=True)
    assert response.status_int == 503
    doc = response.json
    assert doc["status"] != "ok"
    assert doc["storage"]["ok"] is False
    assert str(root) in doc["storage"]["error"]
    assert doc["index"]["ok"] is True and doc["access"]["ok"] is True
    root.mkdir()
    assert demo_app.get("/health").status_int == 200


def test_health_503_when_storage_dir_is_replaced_by_a_file(demo_app):
    root = _storage_dir(demo_app)
    shutil.rmtree(root)
    root.write_text("not a directory")
    response = demo_app.get("/health", headers=auth_headers("admin"), expect_errors=True)
    assert response.status_int == 503
    assert response.json["storage"]["ok"] is False
    assert "storage" in response.json["storage"]["error"]


def test_upload_with_storage_unusable_fails_and_indexes_nothing(demo_app, tmp_path):
    root = _storage_dir(demo_app)
    shutil.rmtree(root)
    root.write_text("not a directory")
    filename, data = make_wheel("demo", "3.0")
    response = upload(demo_app, filename, data)
    assert response.status_int >= 500, response.status
    assert file_record(demo_app, filename) is None
    # Once the directory is back, the same upload goes through.
    root.unlink()
    root.mkdir()
    upload(demo_app, filename, data, status=200)
    assert get(demo_app, url(filename)).body == data


# ---------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------
def test_wrong_password_counts_as_anonymous_as_in_1x(make_app):
    # Changed by issue 10 (was 401 everywhere): pypicloud 1.x treated wrong or
    # stale credentials as none, so old pip configs keep reading public pages.
    app = make_app({"pypi.default_read": "everyone", "package.private.user.alice": "rw"})
    upload_dist(app, WHEEL)
    upload_dist(app, make_wheel("private", "1.0"))
    for path in ("/simple/", "/simple/demo/", url(WHEEL[0]), "/pypi/demo/json", "/api/package/"):
        response = app.get(path, headers=basic("bob", "not-bobs-password"), expect_errors=True)
        assert response.status_int == 200, path
        assert b"private" not in response.body, path
    # Where anonymous callers may not read, it is still 401 asking for a login.
    response = app.get("/simple/private/", headers=basic("alice", "not-alices-password"), expect_errors=True)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    unknown_user = app.get(
        "/simple/private/",
        headers={"Authorization": "Basic bWFsbG9yeTp4"},  # mallory:x
        expect_errors=True,
    )
    assert unknown_user.status_int == 401


def test_default_argon2id_hash_logs_in(make_app):
    hashed = hash_password("carol-password")
    assert hashed.startswith("$argon2id$")
    app = make_app({"user.carol": hashed})
    upload_dist(app, WHEEL)
    import base64

    good = {"Authorization": "Basic " + base64.b64encode(b"carol:carol-password").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"carol:wrong").decode()}
    assert app.get("/simple/demo/", headers=good).status_int == 200
    assert app.get("/simple/demo/", headers=good).status_int == 200  # cached verification
    assert app.get("/simple/demo/", headers=bad, expect_errors=True).status_int == 401


def test_index_rebuilt_from_storage_at_start_up_when_empty(demo_app, tmp_path):
    """Storage is the source of truth: a lost index is rebuilt at start-up."""
    before = simple_json(demo_app, "/simple/demo/").json["files"]
    close_app(demo_app)
    Path(demo_app.ppc_settings["db.url"].removeprefix("sqlite:///")).unlink()
    for suffix in ("-wal", "-shm"):
        Path(demo_app.ppc_settings["db.url"].removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    fresh = restart(demo_app)
    try:
        after = simple_json(fresh, "/simple/demo/").json["files"]
        strip = lambda files: sorted(
            (
                f["filename"],
                f["hashes"]["sha256"],
                f["size"],  # noqa: E731
                f["requires-python"],
                bool(f["core-metadata"]),
            )
            for f in files
        )
        assert strip(after) == strip(before)
        assert service(fresh).index.count() == 2
    finally:
        close_app(fresh)
