"""The legacy JSON API (``/pypi/<project>/json``) of projects known upstream (SPEC sections 4, 9).

Renovate and Dependabot ask this API for the versions of every dependency, also
the ones this server mirrors: in ``cache`` mode the document lists upstream's
releases with links here (pull-through), in ``redirect`` mode the client is sent
to upstream's own JSON API.
"""

from __future__ import annotations

import pytest

from .helpers import auth_headers, file_record, sha256
from .test_fallback import PROJECT, SDIST, WHEEL, WHEEL_2, get, our_url, settings, stored_names


@pytest.fixture
def upstream(fake_upstream):
    fake_upstream.add("Remote.Pkg", WHEEL)
    fake_upstream.add("Remote.Pkg", SDIST)
    return fake_upstream


def test_cache_mode_lists_upstream_releases_with_links_here(make_app, upstream):
    upstream.add("Remote.Pkg", WHEEL_2, requires_python=">=3.9", upload_time="2026-11-30T10:00:00.000000Z")
    app = make_app(settings(upstream))
    response = get(app, f"/pypi/{PROJECT}/json", accept=None)
    assert response.status_int == 200, response.text
    doc = response.json
    assert doc["info"]["version"] == "2.0"
    assert doc["info"]["requires_python"] == ">=3.9"
    assert set(doc["releases"]) == {"1.0", "2.0"}
    files = {f["filename"]: f for files in doc["releases"].values() for f in files}
    assert set(files) == {WHEEL[0], SDIST[0], WHEEL_2[0]}
    for filename, data in (WHEEL, SDIST, WHEEL_2):
        assert files[filename]["url"] == our_url(filename)
        assert files[filename]["digests"]["sha256"] == sha256(data)
    assert files[WHEEL_2[0]]["upload_time_iso_8601"] == "2026-11-30T10:00:00.000000Z"
    assert [f["filename"] for f in doc["urls"]] == [WHEEL_2[0]]
    # Listing fetched nothing but the page; the link pulls the file through.
    assert stored_names(app) == []
    assert upstream.count("/files/") == 0
    download = get(app, files[WHEEL[0]]["url"].replace("http://localhost", ""), accept=None)
    assert download.status_int == 200 and download.body == WHEEL[1]
    assert file_record(app, WHEEL[0]) is not None


def test_one_version_of_an_upstream_project(make_app, upstream):
    app = make_app(settings(upstream))
    doc = get(app, f"/pypi/{PROJECT}/1.0/json", accept=None).json
    assert doc["info"]["version"] == "1.0" and "releases" not in doc
    assert {f["filename"] for f in doc["urls"]} == {WHEEL[0], SDIST[0]}
    missing = get(app, f"/pypi/{PROJECT}/9.9/json", accept=None)
    assert missing.status_int == 404 and "No version 9.9" in missing.text


def test_local_and_upstream_files_together(make_app, upstream):
    app = make_app(settings(upstream))
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}", accept=None).status_int == 200
    doc = get(app, f"/pypi/{PROJECT}/json", accept=None).json
    files = {f["filename"]: f for f in doc["releases"]["1.0"]}
    assert set(files) == {WHEEL[0], SDIST[0]}
    assert files[WHEEL[0]]["digests"]["md5"]  # stored here: all digests known
    assert "md5" not in files[SDIST[0]]["digests"]


def test_redirect_mode_sends_clients_to_upstreams_json_api(make_app, upstream):
    app = make_app(settings(upstream, mode="redirect"))
    response = get(app, f"/pypi/{PROJECT}/json", accept=None)
    assert response.status_int == 302
    assert response.location == f"{upstream.root}/pypi/{PROJECT}/json"
    response = get(app, f"/pypi/{PROJECT}/1.0/json", accept=None)
    assert response.location == f"{upstream.root}/pypi/{PROJECT}/1.0/json"
    assert upstream.paths() == []  # the server itself asked upstream nothing


def test_redirect_mode_without_a_known_json_api_lists_upstream_links(make_app, upstream):
    """An upstream whose simple index is not at <root>/simple/: the document is built here
    from upstream's project page, every link pointing at upstream itself."""
    app = make_app(settings(upstream, mode="redirect", pypi__fallback_base_url=upstream.root + "/mirror/"))
    response = get(app, f"/pypi/{PROJECT}/json", accept=None)
    assert response.status_int == 200, response.text
    files = {f["filename"]: f for f in response.json["releases"]["1.0"]}
    assert files[WHEEL[0]]["url"] == f"{upstream.root}/files/{WHEEL[0]}"
    assert files[SDIST[0]]["digests"] == {"sha256": sha256(SDIST[1])}
    assert upstream.paths() == [f"/mirror/{PROJECT}/"]
    assert stored_names(app) == []


def test_credentials_of_the_upstream_url_never_reach_the_client(make_app, upstream):
    base = upstream.url.replace("http://", "http://mirror:s3cret@")
    app = make_app(settings(upstream, mode="redirect", pypi__fallback_base_url=base))
    response = get(app, f"/pypi/{PROJECT}/json", accept=None)
    assert response.status_int == 302 and "s3cret" not in response.location
    assert response.location == f"{upstream.root}/pypi/{PROJECT}/json"


def test_disallowed_unknown_and_unreadable_projects(make_app, upstream):
    app = make_app(settings(upstream, pypi__disallow_fallback="Remote_Pkg"))
    assert get(app, f"/pypi/{PROJECT}/json", accept=None).status_int == 404
    app = make_app(settings(upstream))
    assert get(app, "/pypi/not-anywhere/json", accept=None).status_int == 404
    before = len(upstream.paths())
    anonymous = app.get(f"/pypi/{PROJECT}/json", expect_errors=True)
    assert anonymous.status_int == 401 and "WWW-Authenticate" in anonymous.headers
    assert len(upstream.paths()) == before  # read permission is checked before upstream is asked
    assert app.get(f"/pypi/{PROJECT}/json", headers=auth_headers("alice")).status_int == 200
