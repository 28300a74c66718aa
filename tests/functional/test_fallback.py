"""Upstream fallback through the real WSGI app (SPEC sections 3 and 9).

The upstream is a real HTTP server on 127.0.0.1 (tests/fixtures/upstream.py)
that counts the requests it gets; the app talks to it over the network like to
any index.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import threading
import time
from pathlib import Path

import pytest

from pypicloud.errors import ConfigError
from pypicloud.upstream import UPSTREAM_UPLOADER
from tests.fixtures.upstream import wheel_metadata

from .helpers import (
    HTML_TYPE,
    JSON_TYPE,
    auth_headers,
    close_app,
    file_record,
    leftover_temp_files,
    make_sdist,
    make_wheel,
    restart,
    service,
    sha256,
    storage_files,
    upload_dist,
)

PROJECT = "remote-pkg"
WHEEL = make_wheel("Remote.Pkg", "1.0", payload=b"REMOTE = 1\n" * 500)
SDIST = make_sdist("Remote.Pkg", "1.0")
WHEEL_2 = make_wheel("Remote.Pkg", "2.0", requires_python=">=3.9")
LOCAL_WHEEL = make_wheel("Remote.Pkg", "0.1", payload=b"LOCAL = 1\n")
# Incompressible, so the wheel is as large as its payload.
BIG_WHEEL = make_wheel(
    "Remote.Pkg", "3.0", payload=b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(400))
)


def settings(upstream, mode: str = "cache", **extra: str) -> dict[str, str]:
    values = {"pypi.fallback": mode, "pypi.fallback_base_url": upstream.url, "pypi.fallback_timeout": "5"}
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return values


def get(app, path: str, user: str | None = "admin", accept: str | None = JSON_TYPE, **headers):
    if accept:
        headers["Accept"] = accept
    return app.get(path, headers=auth_headers(user, **headers), expect_errors=True)


def page_files(app, user: str | None = "admin", project: str = PROJECT) -> dict[str, dict]:
    response = get(app, f"/simple/{project}/", user)
    assert response.status_int == 200, (response.status, response.text)
    return {f["filename"]: f for f in response.json["files"]}


def our_url(filename: str, project: str = PROJECT) -> str:
    # What index pages link since issue 11 (the same view as /api/package/<p>/<f>).
    return f"http://localhost/packages/{project}/{filename}"


def storage_root(app) -> Path:
    return Path(app.ppc_settings["storage.dir"])


def stored_names(app) -> list[str]:
    return sorted(p.name for p in storage_files(storage_root(app)))


def assert_clear_5xx(response, *parts: str) -> None:
    """A 502/503 that says what happened, in the body and the status line, without a traceback."""
    assert response.status_int in (502, 503), (response.status, response.text)
    assert "Traceback" not in response.text and "Internal server error" not in response.text
    for part in parts:
        assert part.lower() in response.text.lower(), (part, response.text)
        assert part.lower() in response.status.lower(), (part, response.status)


def assert_nothing_stored(app, filename: str) -> None:
    root = storage_root(app)
    assert filename not in stored_names(app)
    assert filename + ".metadata" not in stored_names(app)
    assert file_record(app, filename) is None
    assert not leftover_temp_files(root)
    spool = Path(tempfile.gettempdir())
    assert not [p for p in spool.iterdir() if p.name.startswith("ppc-")]


@pytest.fixture
def upstream(fake_upstream):
    fake_upstream.add("Remote.Pkg", WHEEL)
    fake_upstream.add("Remote.Pkg", SDIST)
    return fake_upstream


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["redirect", "cache"])
# No URL at all now means the public index, as in 1.x (issue 10): unit-tested in
# tests/unit/test_upstream.py.
@pytest.mark.parametrize("url", ["ftp://upstream.example/simple/", "not a url"])
def test_fallback_without_a_usable_base_url_stops_start_up(make_app, mode, url):
    overrides = {"pypi.fallback": mode}
    if url:
        overrides["pypi.fallback_base_url"] = url
    with pytest.raises(ConfigError) as info:
        make_app(overrides)
    assert info.value.key == "pypi.fallback_base_url"
    assert "pypi.fallback_base_url" in str(info.value)


def test_bad_fallback_mode_names_the_key_and_the_choices(make_app):
    with pytest.raises(ConfigError, match=r"pypi\.fallback.*none, redirect, cache"):
        make_app({"pypi.fallback": "mirror"})


# ---------------------------------------------------------------------------
# none
# ---------------------------------------------------------------------------
def test_none_serves_local_projects_only_and_never_asks_upstream(make_app, upstream):
    app = make_app({"pypi.fallback": "none", "pypi.fallback_base_url": upstream.url})
    assert get(app, f"/simple/{PROJECT}/").status_int == 404
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").status_int == 404
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}.metadata").status_int == 404
    assert upstream.requests == []


# ---------------------------------------------------------------------------
# redirect
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("accept", [JSON_TYPE, HTML_TYPE, "text/html", None])
def test_redirect_sends_unknown_projects_to_the_upstream_page(make_app, upstream, accept):
    app = make_app(settings(upstream, "redirect"))
    response = get(app, f"/simple/{PROJECT}/", accept=accept)
    assert response.status_int in (302, 303), response.status
    assert response.headers["Location"] == upstream.url + PROJECT + "/"
    # The same Location for every format: the client negotiates with upstream itself.
    assert "Accept" in response.headers["Vary"]
    # A non-canonical name is first sent to our canonical URL (PEP 503).
    response = get(app, "/simple/Remote_Pkg/", accept=accept)
    assert response.status_int == 301
    assert response.headers["Location"].endswith(f"/simple/{PROJECT}/")
    assert upstream.requests == []  # a redirect needs no upstream request


def test_redirect_leaves_local_projects_alone(make_app, upstream):
    app = make_app(settings(upstream, "redirect"))
    upload_dist(app, LOCAL_WHEEL)
    assert list(page_files(app)) == [LOCAL_WHEEL[0]]
    assert upstream.requests == []


def test_redirect_applies_read_rules_and_disallow_list(make_app, upstream):
    app = make_app(settings(upstream, "redirect", pypi__disallow_fallback="Remote_Pkg"))
    assert get(app, f"/simple/{PROJECT}/").status_int == 404
    other = get(app, "/simple/other-pkg/", user=None)
    assert other.status_int == 401  # default_read = authenticated
    assert other.headers["WWW-Authenticate"].startswith("Basic")
    assert get(app, "/simple/other-pkg/", user="bob").status_int == 302
    assert upstream.requests == []


def test_redirect_with_always_show_upstream_links_upstream_files(make_app, upstream):
    app = make_app(settings(upstream, "redirect", pypi__always_show_upstream="true"))
    upload_dist(app, LOCAL_WHEEL)
    files = page_files(app)
    assert set(files) == {LOCAL_WHEEL[0], WHEEL[0], SDIST[0]}
    assert files[LOCAL_WHEEL[0]]["url"] == our_url(LOCAL_WHEEL[0])
    assert files[WHEEL[0]]["url"] == f"{upstream.root}/files/{WHEEL[0]}"
    assert files[WHEEL[0]]["hashes"] == {"sha256": sha256(WHEEL[1])}
    # Nothing is cached in redirect mode: a download is sent upstream.
    response = get(app, f"/api/package/{PROJECT}/{WHEEL[0]}")
    assert response.status_int == 302
    assert response.headers["Location"] == f"{upstream.root}/files/{WHEEL[0]}"
    assert stored_names(app) == [LOCAL_WHEEL[0], LOCAL_WHEEL[0] + ".metadata"]


# ---------------------------------------------------------------------------
# cache: pages
# ---------------------------------------------------------------------------
def test_cache_page_lists_upstream_files_at_our_urls(make_app, upstream):
    upstream.add("Remote.Pkg", WHEEL_2, yanked="broken build")
    app = make_app(settings(upstream))
    response = get(app, f"/simple/{PROJECT}/")
    assert response.status_int == 200
    assert response.content_type == JSON_TYPE
    doc = response.json
    assert doc["name"] == PROJECT and doc["versions"] == ["1.0", "2.0"]
    assert doc["meta"]["api-version"] == "1.1"
    files = {f["filename"]: f for f in doc["files"]}
    assert set(files) == {WHEEL[0], SDIST[0], WHEEL_2[0]}
    wheel = files[WHEEL[0]]
    assert wheel["url"] == our_url(WHEEL[0])
    assert wheel["hashes"] == {"sha256": sha256(WHEEL[1])}
    assert wheel["requires-python"] == ">=3.8"
    assert wheel["core-metadata"] == {"sha256": sha256(wheel_metadata(WHEEL[1]))}
    assert wheel["size"] == len(WHEEL[1])
    assert wheel["yanked"] is False
    assert files[WHEEL_2[0]]["yanked"] == "broken build"
    assert files[SDIST[0]]["core-metadata"] is False

    html = get(app, f"/simple/{PROJECT}/", accept=HTML_TYPE)
    assert html.status_int == 200
    assert f'href="{our_url(WHEEL[0])}#sha256={sha256(WHEEL[1])}"' in html.text
    assert 'data-requires-python="&gt;=3.8"' in html.text
    assert 'data-yanked="broken build"' in html.text
    assert f'data-core-metadata="sha256={sha256(wheel_metadata(WHEEL[1]))}"' in html.text
    assert upstream.url not in html.text and upstream.root not in html.text
    # Both formats came from one upstream fetch (the page is remembered a short while).
    assert upstream.count("/simple/") == 1
    assert stored_names(app) == []


def test_cache_page_etag_and_non_canonical_name(make_app, upstream):
    app = make_app(settings(upstream))
    first = get(app, f"/simple/{PROJECT}/")
    again = get(app, f"/simple/{PROJECT}/", **{"If-None-Match": first.headers["ETag"]})
    assert again.status_int == 304
    assert get(app, "/simple/Remote.Pkg/").status_int == 301
    assert upstream.count("/simple/") == 1


def test_html_only_upstream(make_app, upstream):
    upstream.fmt = "html"
    app = make_app(settings(upstream))
    files = page_files(app)
    assert files[WHEEL[0]]["hashes"] == {"sha256": sha256(WHEEL[1])}
    assert files[WHEEL[0]]["requires-python"] == ">=3.8"
    assert "size" not in files[WHEEL[0]]  # an HTML page gives no size ...
    assert get(app, f"/simple/{PROJECT}/").json["meta"]["api-version"] == "1.0"  # ... so 1.0
    response = get(app, f"/api/package/{PROJECT}/{WHEEL[0]}")
    assert response.status_int == 200 and response.body == WHEEL[1]


def test_project_unknown_upstream_too_is_404(make_app, upstream):
    app = make_app(settings(upstream))
    response = get(app, "/simple/nowhere-pkg/")
    assert response.status_int == 404
    assert get(app, "/api/package/nowhere-pkg/nowhere_pkg-1.0.tar.gz").status_int == 404


# ---------------------------------------------------------------------------
# cache: downloads
# ---------------------------------------------------------------------------
def test_first_download_fetches_verifies_stores_then_serves_locally(make_app, upstream):
    app = make_app(settings(upstream))
    path = f"/api/package/{PROJECT}/{WHEEL[0]}"
    response = get(app, path, accept=None)
    assert response.status_int == 200
    assert response.body == WHEEL[1]
    assert response.headers["ETag"] == f'"{sha256(WHEEL[1])}"'
    assert upstream.count("/files/") == 1

    record = file_record(app, WHEEL[0])
    assert record.uploader == UPSTREAM_UPLOADER
    assert (record.project, record.name, record.version) == (PROJECT, "Remote.Pkg", "1.0")
    assert record.sha256 == sha256(WHEEL[1])
    assert record.upload_time.isoformat().startswith("2024-05-06T07:08:09")
    stored = storage_root(app) / PROJECT / WHEEL[0]
    assert stored.read_bytes() == WHEEL[1]

    # Every later download is local: upstream sees no more file requests.
    for _ in range(2):
        assert get(app, path, accept=None).body == WHEEL[1]
    ranged = get(app, path, accept=None, Range="bytes=0-9")
    assert ranged.status_int == 206 and ranged.body == WHEEL[1][:10]
    assert upstream.count("/files/") == 1

    # The PEP 658 file of the cached wheel is ours now, like an uploaded one's.
    meta = get(app, path + ".metadata", accept=None)
    assert meta.status_int == 200 and meta.body == wheel_metadata(WHEEL[1])
    assert upstream.count("/files/") == 1
    assert record.metadata_sha256 == sha256(wheel_metadata(WHEEL[1]))

    # The project page still follows upstream (every file of it came from there);
    # the cached file keeps the same URL and hash.
    files = page_files(app)
    assert set(files) == {WHEEL[0], SDIST[0]}
    assert files[WHEEL[0]]["url"] == our_url(WHEEL[0])
    assert files[WHEEL[0]]["hashes"] == {"sha256": sha256(WHEEL[1])}

    # It survives a restart, and the API lists it with its uploader.
    fresh = restart(app)
    try:
        listed = fresh.get(f"/api/package/{PROJECT}/", headers=auth_headers("admin")).json
        assert [(p["filename"], p["uploader"]) for p in listed["packages"]] == [(WHEEL[0], UPSTREAM_UPLOADER)]
    finally:
        close_app(fresh)


def test_sdist_is_cached_too(make_app, upstream):
    app = make_app(settings(upstream))
    response = get(app, f"/api/package/{PROJECT}/{SDIST[0]}", user="bob", accept=None)
    assert response.status_int == 200 and response.body == SDIST[1]
    assert file_record(app, SDIST[0]).uploader == UPSTREAM_UPLOADER


def test_metadata_before_download_is_passed_on_and_verified(make_app, upstream):
    app = make_app(settings(upstream))
    response = get(app, f"/api/package/{PROJECT}/{WHEEL[0]}.metadata", accept=None)
    assert response.status_int == 200
    assert response.body == wheel_metadata(WHEEL[1])
    assert stored_names(app) == []  # nothing stored for a metadata file
    assert get(app, f"/api/package/{PROJECT}/{SDIST[0]}.metadata").status_int == 404


def test_metadata_hash_mismatch_is_refused(make_app, upstream):
    upstream.add("Remote.Pkg", WHEEL_2, metadata_hash="0" * 64)
    app = make_app(settings(upstream))
    response = get(app, f"/api/package/{PROJECT}/{WHEEL_2[0]}.metadata", accept=None)
    assert_clear_5xx(response, "sha256")
    assert stored_names(app) == []


def test_hash_mismatch_stores_nothing(make_app, upstream):
    upstream.add("Remote.Pkg", WHEEL_2, sha256="0" * 64)
    app = make_app(settings(upstream))
    response = get(app, f"/api/package/{PROJECT}/{WHEEL_2[0]}", accept=None)
    assert_clear_5xx(response, "sha256", "not stored")
    assert response.status_int == 502
    assert upstream.hits(f"/files/{WHEEL_2[0]}") == 1
    assert_nothing_stored(app, WHEEL_2[0])
    # Asked again, it is fetched again and refused again: never served.
    assert get(app, f"/api/package/{PROJECT}/{WHEEL_2[0]}", accept=None).status_int == 502
    assert_nothing_stored(app, WHEEL_2[0])


def test_file_without_sha256_is_not_listed_and_not_fetched(make_app, upstream):
    upstream.add("Remote.Pkg", WHEEL_2, sha256=None)
    app = make_app(settings(upstream))
    assert WHEEL_2[0] not in page_files(app)
    response = get(app, f"/api/package/{PROJECT}/{WHEEL_2[0]}", accept=None)
    assert_clear_5xx(response, "no sha256")
    assert response.status_int == 502
    assert upstream.count("/files/") == 0
    assert_nothing_stored(app, WHEEL_2[0])


@pytest.mark.parametrize("fmt", ["json", "html"], ids=["size-on-page", "no-size-on-page"])
def test_file_larger_than_max_upload_size_is_not_stored(make_app, upstream, fmt):
    upstream.fmt = fmt
    assert len(BIG_WHEEL[1]) > 4096
    upstream.add("Remote.Pkg", BIG_WHEEL)
    app = make_app(settings(upstream, pypi__max_upload_size="4K"))
    response = get(app, f"/api/package/{PROJECT}/{BIG_WHEEL[0]}", accept=None)
    assert_clear_5xx(response, "max_upload_size")
    # With a size on the page the file is not even asked for.
    assert upstream.count("/files/") == (0 if fmt == "json" else 1)
    assert_nothing_stored(app, BIG_WHEEL[0])


def test_broken_upstream_archive_is_refused(make_app, fake_upstream):
    fake_upstream.add("Remote.Pkg", ("remote_pkg-3.0-py3-none-any.whl", b"not a zip at all"), metadata=False)
    app = make_app(settings(fake_upstream))
    response = get(app, f"/api/package/{PROJECT}/remote_pkg-3.0-py3-none-any.whl", accept=None)
    assert_clear_5xx(response, "not a valid distribution")
    assert_nothing_stored(app, "remote_pkg-3.0-py3-none-any.whl")


def test_yanked_upstream_file_is_cached_yanked(make_app, upstream):
    upstream.add("Remote.Pkg", WHEEL_2, yanked="broken build")
    app = make_app(settings(upstream))
    assert get(app, f"/api/package/{PROJECT}/{WHEEL_2[0]}", accept=None).status_int == 200
    record = file_record(app, WHEEL_2[0])
    assert record.yanked and record.yanked_reason == "broken build"
    assert page_files(app)[WHEEL_2[0]]["yanked"] == "broken build"


def _at_once(count: int, call) -> tuple[list[float], list[Exception]]:
    """``call()`` in ``count`` threads released together: (seconds each took, errors)."""
    barrier = threading.Barrier(count)
    took, errors = [], []

    def run():
        barrier.wait(timeout=10)
        start = time.monotonic()
        try:
            call()
        except Exception as exc:  # collected and asserted by the caller
            errors.append(exc)
        took.append(time.monotonic() - start)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return took, errors


def test_concurrent_first_downloads_store_one_whole_file(make_app, upstream):
    upstream.delay = 0.2  # every first download is in flight at the same time
    app = make_app(settings(upstream))
    svc = service(app)
    admin = svc.access.identity("admin")
    results = []
    _, errors = _at_once(4, lambda: results.append(svc.download(admin, PROJECT, WHEEL[0]).record))
    assert errors == []
    assert {r.sha256 for r in results} == {sha256(WHEEL[1])}
    assert upstream.hits(f"/files/{WHEEL[0]}") == 1
    assert stored_names(app) == [WHEEL[0], WHEEL[0] + ".metadata"]
    assert (storage_root(app) / PROJECT / WHEEL[0]).read_bytes() == WHEEL[1]


def test_two_processes_racing_store_one_file(make_app, upstream, tmp_path):
    """Two servers on one storage and index (their own locks): storage refuses a second copy."""
    upstream.delay = 0.2
    first = make_app(settings(upstream))
    second = restart(first)
    try:
        results, apps = [], [first, second]

        def fetch():
            svc = service(apps.pop())  # one thread per app (list.pop is atomic)
            results.append(svc.download(svc.access.identity("admin"), PROJECT, WHEEL[0]).record)

        _, errors = _at_once(2, fetch)
        assert errors == []
        assert {r.sha256 for r in results} == {sha256(WHEEL[1])}
        assert stored_names(first) == [WHEEL[0], WHEEL[0] + ".metadata"]
        assert [r.filename for r in service(first).index.all_records()] == [WHEEL[0]]
        assert not leftover_temp_files(storage_root(first))
        assert get(second, f"/api/package/{PROJECT}/{WHEEL[0]}", accept=None).body == WHEEL[1]
    finally:
        close_app(second)


# ---------------------------------------------------------------------------
# Who may do what
# ---------------------------------------------------------------------------
def test_caller_who_may_not_read_gets_401_or_403_and_upstream_is_not_asked(make_app, upstream):
    app = make_app(settings(upstream, pypi__default_read="admin-only-group"))
    anonymous = get(app, f"/simple/{PROJECT}/", user=None)
    assert anonymous.status_int == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert get(app, f"/simple/{PROJECT}/", user="bob").status_int == 403
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}", user="bob").status_int == 403
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}.metadata", user=None).status_int == 401
    assert upstream.requests == []
    assert stored_names(app) == []


def test_caller_outside_cache_update_gets_404_or_403_as_in_1x(make_app, upstream):
    # Changed by issue 10: pypicloud 1.x sent no one outside pypi.cache_update
    # upstream (they used to get the redirect behaviour here).
    app = make_app(settings(upstream, pypi__cache_update="mirrorers", **{"group.mirrorers": "alice"}))
    # bob may read but not fill the cache: nothing stored here, so 404; the file 403.
    page = get(app, f"/simple/{PROJECT}/", user="bob")
    assert page.status_int == 404
    assert upstream.requests == []  # the page did not ask upstream on bob's behalf
    download = get(app, f"/api/package/{PROJECT}/{WHEEL[0]}", user="bob", accept=None)
    assert download.status_int == 403
    assert stored_names(app) == []
    # alice is in the group: pull-through.
    files = page_files(app, user="alice")
    assert files[WHEEL[0]]["url"] == our_url(WHEEL[0])
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}", user="alice").body == WHEEL[1]
    assert file_record(app, WHEEL[0]).uploader == UPSTREAM_UPLOADER
    # Once cached, bob sees the stored file only (1.x), not upstream's others.
    files = page_files(app, user="bob")
    assert list(files) == [WHEEL[0]] and files[WHEEL[0]]["url"] == our_url(WHEEL[0])
    assert get(app, f"/api/package/{PROJECT}/{SDIST[0]}", user="bob", accept=None).status_int == 403


def test_outside_cache_update_with_always_show_upstream_as_in_1x(make_app, upstream):
    app = make_app(
        settings(
            upstream,
            pypi__cache_update="mirrorers",
            pypi__always_show_upstream="true",
            pypi__default_read="everyone",
        )
    )
    # A logged-in reader is redirected upstream; an anonymous one must log in.
    page = get(app, f"/simple/{PROJECT}/", user="bob")
    assert page.status_int == 302
    assert page.headers["Location"] == upstream.url + PROJECT + "/"
    anonymous = get(app, f"/simple/{PROJECT}/", user=None)
    assert anonymous.status_int == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert stored_names(app) == []


def test_credentials_in_the_base_url_reach_upstream_but_never_clients(make_app, upstream):
    base = upstream.url.replace("http://", "http://mirror:s3cret@")
    app = make_app(
        settings(
            upstream,
            pypi__fallback_base_url=base,
            pypi__cache_update="nobody-group",
            pypi__fallback="redirect",
        )
    )
    redirect = get(app, f"/simple/{PROJECT}/", user="bob")
    assert redirect.headers["Location"] == upstream.url + PROJECT + "/"
    app = make_app(settings(upstream, pypi__fallback_base_url=base, pypi__cache_update="nobody-group"))
    files = page_files(app)  # the admin may fill the cache
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").body == WHEEL[1]
    assert "s3cret" not in str(files)
    expected = "Basic " + base64.b64encode(b"mirror:s3cret").decode()
    assert upstream.authorizations == [expected, expected]  # the page, then the file


def test_anonymous_reader_outside_cache_update_must_log_in_as_in_1x(make_app, upstream):
    # Changed by issue 10 (was a redirect): 1.x asked anonymous callers to log in.
    app = make_app(settings(upstream, pypi__default_read="everyone"))
    response = get(app, f"/simple/{PROJECT}/", user=None)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert get(app, f"/simple/{PROJECT}/", user="bob").status_int == 200


def test_read_only_storage_redirects_instead_of_caching(make_app, upstream, tmp_path):
    (tmp_path / "packages").mkdir()  # a read-only storage must exist already
    app = make_app(settings(upstream, storage__read_only="true"))
    response = get(app, f"/api/package/{PROJECT}/{WHEEL[0]}", accept=None)
    assert response.status_int == 302
    assert stored_names(app) == []


# ---------------------------------------------------------------------------
# Local projects and pypi.disallow_fallback
# ---------------------------------------------------------------------------
def test_local_project_is_never_merged_without_always_show_upstream(make_app, upstream):
    app = make_app(settings(upstream))
    upload_dist(app, LOCAL_WHEEL)
    assert list(page_files(app)) == [LOCAL_WHEEL[0]]
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").status_int == 404
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}.metadata").status_int == 404
    assert upstream.requests == []


def test_a_cached_project_becomes_local_when_someone_uploads_to_it(make_app, upstream):
    app = make_app(settings(upstream))
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").status_int == 200
    upload_dist(app, LOCAL_WHEEL)
    before = upstream.count()
    # Private from now on (issue 12): the file cached from upstream is hidden too.
    assert set(page_files(app)) == {LOCAL_WHEEL[0]}
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").status_int == 404
    assert upstream.count() == before


def test_uploading_the_bytes_of_a_cached_file_makes_the_project_local(make_app, upstream):
    app = make_app(settings(upstream))
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").status_int == 200  # cached
    assert not service(app).index.was_local(PROJECT)
    upload_dist(app, WHEEL)  # the same bytes: nothing is stored again, yet it is an upload
    assert service(app).index.was_local(PROJECT)


def test_a_refused_upload_leaves_the_project_upstreams(make_app, upstream):
    """The local mark is made when an upload's bytes are about to be stored, not before
    its checks: an upload refused for a broken archive changes nothing."""
    app = make_app(settings(upstream))
    upload_dist(app, (LOCAL_WHEEL[0], b"not a wheel at all"), status=400)
    assert not service(app).index.was_local(PROJECT)
    assert set(page_files(app)) == {WHEEL[0], SDIST[0]}


def test_always_show_upstream_merges_and_local_files_win(make_app, upstream):
    same_name_other_bytes = make_wheel("Remote.Pkg", "1.0", payload=b"PRIVATE BUILD\n")
    assert same_name_other_bytes[0] == WHEEL[0]
    app = make_app(settings(upstream, pypi__always_show_upstream="true"))
    upload_dist(app, same_name_other_bytes)
    files = page_files(app)
    assert set(files) == {WHEEL[0], SDIST[0]}
    assert files[WHEEL[0]]["hashes"] == {"sha256": sha256(same_name_other_bytes[1])}
    assert files[SDIST[0]]["url"] == our_url(SDIST[0])
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").body == same_name_other_bytes[1]
    assert get(app, f"/api/package/{PROJECT}/{SDIST[0]}").body == SDIST[1]
    assert upstream.count("/files/") == 1  # only the sdist came from upstream


def test_disallowed_names_are_never_looked_up(make_app, upstream):
    app = make_app(
        settings(
            upstream, pypi__disallow_fallback="other-thing, REMOTE_pkg", pypi__always_show_upstream="true"
        )
    )
    assert get(app, f"/simple/{PROJECT}/").status_int == 404
    assert get(app, "/simple/Remote.Pkg/", accept=HTML_TYPE).status_int == 301
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").status_int == 404
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}.metadata").status_int == 404
    assert get(app, f"/api/package/{PROJECT}/{SDIST[0]}", user=None).status_int == 404
    upload_dist(app, LOCAL_WHEEL)  # local files only, even with always_show_upstream
    assert list(page_files(app)) == [LOCAL_WHEEL[0]]
    assert upstream.requests == []  # not one request left the server
    # Other names still fall back.
    assert get(app, "/simple/another-pkg/").status_int == 404
    assert upstream.paths() == ["/simple/another-pkg/"]


# ---------------------------------------------------------------------------
# Upstream trouble
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 503, 403])
def test_upstream_error_answer_is_a_clear_502(make_app, upstream, status):
    upstream.fail_status = status
    app = make_app(settings(upstream))
    response = get(app, f"/simple/{PROJECT}/")
    assert_clear_5xx(response, "upstream", str(status))
    assert response.status_int == 502
    # Failures are not remembered: once upstream is back, the page works.
    upstream.fail_status = None
    assert WHEEL[0] in page_files(app)


def test_upstream_down_is_a_clear_503_for_pages_and_files(make_app, upstream):
    app = make_app(settings(upstream))
    upstream.stop()
    for path in (
        f"/simple/{PROJECT}/",
        f"/api/package/{PROJECT}/{WHEEL[0]}",
        f"/api/package/{PROJECT}/{WHEEL[0]}.metadata",
    ):
        response = get(app, path)
        assert_clear_5xx(response, "unavailable")
        assert response.status_int == 503


def test_upstream_timeout_is_a_clear_503(make_app, upstream):
    upstream.delay = 5
    app = make_app(settings(upstream, pypi__fallback_timeout="0.3"))
    response = get(app, f"/simple/{PROJECT}/")
    assert_clear_5xx(response, "timed out")
    assert response.status_int == 503


def test_upstream_down_local_files_still_served(make_app, upstream):
    app = make_app(settings(upstream, pypi__always_show_upstream="true", pypi__fallback_page_ttl="0"))
    upload_dist(app, LOCAL_WHEEL)
    assert set(page_files(app)) == {LOCAL_WHEEL[0], WHEEL[0], SDIST[0]}
    upstream.fail_status = 500
    assert list(page_files(app)) == [LOCAL_WHEEL[0]]
    upstream.stop()
    assert list(page_files(app)) == [LOCAL_WHEEL[0]]
    assert get(app, f"/api/package/{PROJECT}/{LOCAL_WHEEL[0]}").body == LOCAL_WHEEL[1]
    # The degraded page is not kept: upstream back, upstream files back.
    upstream.start()
    upstream.fail_status = None
    assert set(page_files(app)) == {LOCAL_WHEEL[0], WHEEL[0], SDIST[0]}


def test_cached_files_survive_an_upstream_outage(make_app, upstream):
    app = make_app(settings(upstream, pypi__fallback_page_ttl="0"))
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").status_int == 200
    upstream.stop()
    # A project whose files all came from upstream falls back to what is cached.
    assert list(page_files(app)) == [WHEEL[0]]
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").body == WHEEL[1]
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}.metadata").status_int == 200


def test_upstream_pages_are_remembered_for_the_ttl_only(make_app, upstream):
    app = make_app(settings(upstream))
    for _ in range(3):
        page_files(app)
    assert upstream.count("/simple/") == 1
    client = service(app).upstream
    assert client.pages.ttl == 60
    client.pages.clock = lambda: 10**9  # far in the future: the page has expired
    page_files(app)
    assert upstream.count("/simple/") == 2


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_upstream_redirects_are_followed_and_links_resolved_from_the_final_url(make_app, upstream, fmt):
    upstream.fmt = fmt
    app = make_app(settings(upstream, pypi__fallback_base_url=upstream.root + "/moved/simple"))
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").body == WHEEL[1]
    # The page's relative links ("../../files/...") count from where the page really is.
    assert upstream.paths() == [f"/moved/simple/{PROJECT}/", f"/simple/{PROJECT}/", f"/files/{WHEEL[0]}"]
    assert not [p for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("ppc-")]
    assert not leftover_temp_files(storage_root(app))


def test_pages_of_several_upstream_projects_are_remembered_side_by_side(make_app, upstream):
    """The page memo holds many projects at once (it once failed at the second one)."""
    upstream.add("Other.Pkg", make_wheel("Other.Pkg", "1.0"))
    app = make_app(settings(upstream))
    for project in (PROJECT, "other-pkg", PROJECT, "other-pkg", "not-anywhere"):
        expected = 404 if project == "not-anywhere" else 200
        assert get(app, f"/simple/{project}/").status_int == expected
    assert upstream.hits(f"/simple/{PROJECT}/") == 1
    assert upstream.hits("/simple/other-pkg/") == 1


def test_requests_waiting_for_a_stalled_page_share_its_failure(make_app, upstream):
    """Requests queued behind one fetch of a page get its answer, failure included:
    a stalled upstream costs each of them one timeout, not one per request before it."""
    upstream.delay = 5
    app = make_app(settings(upstream, pypi__fallback_timeout="0.5"))
    svc = service(app)
    admin = svc.access.identity("admin")
    took, errors = _at_once(6, lambda: svc.project_listing(admin, PROJECT))
    assert len(errors) == 6 and {e.status for e in errors} == {503}
    assert upstream.hits(f"/simple/{PROJECT}/") == 1
    assert max(took) < 2.0  # one after the other: 0.5, 1.0, ... 3.0 seconds


def test_downloads_waiting_for_a_stalled_file_share_its_failure(make_app, upstream):
    app = make_app(settings(upstream, pypi__fallback_timeout="0.5"))
    svc = service(app)
    admin = svc.access.identity("admin")
    page_files(app)  # the page is remembered; only the file stalls
    upstream.delay = 5
    took, errors = _at_once(6, lambda: svc.download(admin, PROJECT, WHEEL[0]))
    assert len(errors) == 6 and {e.status for e in errors} == {503}
    assert upstream.hits(f"/files/{WHEEL[0]}") == 1
    assert max(took) < 2.0
    assert_nothing_stored(app, WHEEL[0])
    # Nothing of the failure is kept: upstream back, the file comes.
    upstream.delay = 0
    assert get(app, f"/api/package/{PROJECT}/{WHEEL[0]}").body == WHEEL[1]


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_an_upstream_page_naming_another_project_does_not_rename_ours(make_app, upstream, fmt):
    upstream.fmt = fmt
    upstream.page_name = "Somebody.Else"
    app = make_app(settings(upstream))
    page = get(app, f"/simple/{PROJECT}/", accept=HTML_TYPE)
    assert page.status_int == 200 and WHEEL[0] in page.text
    assert "Somebody" not in page.text
    document = get(app, f"/pypi/{PROJECT}/json", accept=None)
    assert document.json["info"]["name"] == PROJECT
