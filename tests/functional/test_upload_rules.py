"""SPEC section 5, one test (or one parametrised test) per row of the upload table.

Every rejection is checked three ways: the status code, the reason in both the
status line and the body, and that nothing was left behind (storage, index,
/simple/, and again after a restart).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
import zipfile

import pytest
import webtest

from tests import threads

from .helpers import (
    assert_nothing_left,
    assert_rejected,
    basic,
    digests,
    file_record,
    leftover_temp_files,
    make_sdist,
    make_wheel,
    project_names,
    service,
    sha256,
    simple_json,
    stored_path,
    twine_fields,
    upload,
    upload_dist,
)

DEMO_WHEEL = make_wheel("demo", "1.0")
DEMO_SDIST = make_sdist("demo", "1.0")


def _fields(filename, data):
    return twine_fields(filename, data)


def _basic_raw(user: str, password: str) -> dict[str, str]:
    """Basic credentials for any user name (``basic`` only knows the configured users)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ---------------------------------------------------------------------------
# The checker itself must notice what it is meant to notice
# ---------------------------------------------------------------------------
def test_assert_nothing_left_notices_an_accepted_file(app, tmp_path):
    upload_dist(app, DEMO_WHEEL)
    with pytest.raises(AssertionError):
        assert_nothing_left(app, tmp_path, "demo", DEMO_WHEEL[0])


def test_assert_nothing_left_notices_a_stray_stored_file(app, tmp_path):
    stray = stored_path(app, "demo", DEMO_SDIST[0])
    stray.parent.mkdir(parents=True)
    stray.write_bytes(DEMO_SDIST[1])  # in storage, not in the index: a restart would serve it
    with pytest.raises(AssertionError):
        assert_nothing_left(app, tmp_path, "demo", "demo-2.0.tar.gz")


def test_assert_nothing_left_notices_a_leaked_spool_file(app, tmp_path, spool_dir):
    (spool_dir / "ppc-upload-leak").write_bytes(b"x")
    with pytest.raises(AssertionError):
        assert_nothing_left(app, tmp_path, "demo", DEMO_WHEEL[0])


# ---------------------------------------------------------------------------
# The happy path first, so a failure below is about the rule, not the setup
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dist", [DEMO_WHEEL, DEMO_SDIST], ids=["wheel", "sdist"])
def test_valid_upload_is_stored_indexed_and_listed(app, tmp_path, dist):
    filename, data = dist
    response = upload_dist(app, dist)
    assert filename in response.text
    record = file_record(app, filename)
    assert record is not None and record.sha256 == sha256(data) and record.size == len(data)
    assert record.uploader == "admin"
    assert stored_path(app, "demo", filename).read_bytes() == data
    assert "demo" in project_names(app)
    page = simple_json(app, "/simple/demo/")
    assert [f["filename"] for f in page.json["files"]] == [filename]


# ---------------------------------------------------------------------------
# no or bad credentials -> 401 with WWW-Authenticate
# ---------------------------------------------------------------------------
def test_no_credentials_is_401(app, tmp_path):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, data, user=None)
    assert_rejected(response, 401, "login required")
    assert 'realm="pypi"' in response.headers["WWW-Authenticate"]
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize("user,password", [("admin", "wrong"), ("mallory", "whatever"), ("admin", "")])
def test_bad_credentials_are_401(app, tmp_path, user, password):
    filename, data = DEMO_WHEEL
    response = app.post(
        "/",
        params=list(_fields(filename, data).items()),
        upload_files=[("content", filename, data)],
        headers=_basic_raw(user, password),
        expect_errors=True,
    )
    # Wrong credentials count as none (1.x; issue 10): anonymous may not upload.
    assert_rejected(response, 401, "login required")
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic " + "YWRtaW4=",  # "admin", no colon
        "Basic " + "OnB3",
    ],
)  # ":pw", no user
def test_malformed_basic_credentials_are_401(app, tmp_path, header):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, data, user=None, headers={"Authorization": header})
    assert_rejected(response, 401, "malformed authorization")
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_no_credentials_is_401_even_for_garbage_forms(app, tmp_path):
    """An anonymous caller learns nothing about the form: every upload attempt is 401."""
    filename, data = DEMO_WHEEL
    for fields in ({":action": "nonsense"}, {"name": "-bad name-"}, {"name": None}):
        response = upload(app, filename, data, user=None, fields=fields)
        assert_rejected(response, 401, "login required")
    assert_nothing_left(app, tmp_path, "demo", filename)


# ---------------------------------------------------------------------------
# user may not write this project -> 403
# ---------------------------------------------------------------------------
def test_plain_user_may_not_upload_403(app, tmp_path):
    filename, data = make_wheel("bob-pkg", "1.0")
    response = upload(app, filename, data, user="bob")
    assert_rejected(response, 403, "may not upload", "bob")
    assert "WWW-Authenticate" not in response.headers
    assert_nothing_left(app, tmp_path, "bob-pkg", filename)


def test_per_project_grant_allows_only_that_project(app, tmp_path):
    upload_dist(app, make_wheel("alice-pkg", "1.0"), user="alice")
    assert file_record(app, "alice_pkg-1.0-py3-none-any.whl").uploader == "alice"
    # The grant is on the canonical name: another spelling in the form is the same project.
    upload_dist(app, make_wheel("Alice.Pkg", "1.1"), user="alice")
    filename, data = make_wheel("other-pkg", "1.0")
    response = upload(app, filename, data, user="alice")
    assert_rejected(response, 403, "may not upload")
    assert_nothing_left(app, tmp_path, "other-pkg", filename)


def test_bob_may_not_upload_to_alices_project(app, tmp_path):
    filename, data = make_wheel("alice-pkg", "2.0")
    response = upload(app, filename, data, user="bob")
    assert_rejected(response, 403, "may not upload")
    assert_nothing_left(app, tmp_path, "alice-pkg", filename)


# ---------------------------------------------------------------------------
# :action other than file_upload; missing content, name or version -> 400
# ---------------------------------------------------------------------------
# No :action at all is an upload, as in pypicloud 1.x (issue 11; tests/functional/test_legacy_api.py).
@pytest.mark.parametrize("action", ["submit", "remove_pkg", "doc_upload", "FILE_UPLOAD", ""])
def test_other_action_is_400(app, tmp_path, action):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, data, fields={":action": action})
    assert_rejected(response, 400, ":action")
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_missing_content_is_400(app, tmp_path):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, None, fields=digests(data))
    assert_rejected(response, 400, "content")
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_content_sent_as_text_not_file_is_400(app, tmp_path):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, None, fields={"content": "not a file"})
    assert_rejected(response, 400, "content")
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize("field", ["name", "version"])
def test_empty_name_or_version_is_400(app, tmp_path, field):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, data, fields={field: ""})
    assert_rejected(response, 400, field)
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize("field", ["name", "version"])
def test_absent_name_or_version_comes_from_the_filename(app, tmp_path, field):
    """pypicloud 1.x took both from the filename when either was missing (issue 11)."""
    filename, data = DEMO_WHEEL
    upload(app, filename, data, fields={field: None}, status=200)
    assert file_record(app, filename).version == "1.0"
    # The digests sent beside it are still checked.
    other, other_data = make_wheel("demo", "2.0")
    response = upload(app, other, other_data, fields={field: None, "sha256_digest": "0" * 64})
    assert_rejected(response, 400, "sha256_digest")
    assert_nothing_left(app, tmp_path, "demo", other)


# ---------------------------------------------------------------------------
# filename with a path separator, '..', NUL, control characters, or not a dist -> 400
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "filename",
    [
        "../demo-1.0.tar.gz",
        "sub/demo-1.0.tar.gz",
        "/etc/demo-1.0.tar.gz",
        "sub\\demo-1.0.tar.gz",
        "..demo-1.0.tar.gz",
        "demo-1.0..tar.gz",
        "demo\x00-1.0.tar.gz",
        "demo-1.0.tar.gz\x00.exe",
        "demo\x1b-1.0.tar.gz",
        "demo\x7f-1.0.tar.gz",
        "demo\t-1.0.tar.gz",
    ],
    ids=[
        "dotdot-slash",
        "slash",
        "absolute",
        "backslash",
        "leading-dotdot",
        "inner-dotdot",
        "nul",
        "nul-suffix",
        "escape",
        "del",
        "tab",
    ],
)
def test_unsafe_filename_is_400(app, tmp_path, filename):
    _, data = DEMO_SDIST
    response = upload(app, filename, data, name="demo", version="1.0")
    assert_rejected(response, 400, "invalid filename")
    assert_nothing_left(app, tmp_path, "demo", None)
    assert not any(p.name.startswith("demo") for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "filename",
    [
        "demo-1.0.exe",
        "demo-1.0.egg",
        "demo-1.0.tar.bz2",
        "demo-1.0.rpm",
        "demo-1.0",
        "demo.whl",
        "demo-1.0-py3.whl",
        "demo-1.0-py3-none.whl",
        "demo-1.0.tar.gz.whl",
        "demo 1.0.tar.gz",
        ".demo-1.0.tar.gz",
        "demo-1.0-py3-none-any.WHL",
    ],
)
def test_not_a_wheel_or_sdist_name_is_400(app, tmp_path, filename):
    _, data = DEMO_WHEEL
    response = upload(app, filename, data, name="demo", version="1.0")
    assert_rejected(response, 400, "invalid filename")
    assert_nothing_left(app, tmp_path, "demo", filename)


# ---------------------------------------------------------------------------
# filename's project or version disagrees with the form (after canonicalising) -> 400
# ---------------------------------------------------------------------------
def test_filename_project_mismatch_is_400(app, tmp_path):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, data, name="other-project")
    assert_rejected(response, 400, "other-project")
    assert "project" in response.text
    assert_nothing_left(app, tmp_path, "other-project", filename)
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_filename_version_mismatch_is_400(app, tmp_path):
    filename, data = DEMO_WHEEL
    response = upload(app, filename, data, version="2.0")
    assert_rejected(response, 400, "version")
    assert "2.0" in response.text
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize("form_name", ["Foo_Bar", "foo-bar", "FOO.BAR", "foo__bar", "Foo-_.Bar"])
def test_names_are_compared_after_canonicalising(app, form_name):
    filename, data = make_wheel("Foo_Bar", "1.0")
    assert filename == "Foo_Bar-1.0-py3-none-any.whl"
    upload(app, filename, data, name=form_name, status=200)
    assert "foo-bar" in project_names(app)
    assert file_record(app, filename).project == "foo-bar"


def test_lowercase_filename_for_capitalised_name_is_accepted(app):
    filename, data = make_sdist("foo-bar", "1.0")
    upload(app, filename, data, name="Foo_Bar", status=200)
    page = simple_json(app, "/simple/foo-bar/")
    assert page.json["files"][0]["filename"] == filename


@pytest.mark.parametrize("form_version", ["1.0.0rc1", "1.0.0-rc1", "1.0.0.RC1", "v1.0.0rc1"])
def test_versions_are_compared_after_normalising(app, form_version):
    filename, data = make_wheel("demo", "1.0.0rc1")
    upload(app, filename, data, version=form_version, status=200)
    assert file_record(app, filename).version == "1.0.0rc1"


# ---------------------------------------------------------------------------
# version not PEP 440 -> 400; project name not a valid distribution name -> 400
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["banana", "1.0-foo", "1.0 final", "1..0", "1.0+", "=1.0"])
def test_version_not_pep440_is_400(app, tmp_path, version):
    filename, data = DEMO_SDIST
    response = upload(app, filename, data, version=version)
    assert_rejected(response, 400, "pep 440")
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize("name", ["-demo", "demo-", "de mo", "démo", "de/mo", ".demo", "_"])
def test_invalid_project_name_is_400(app, tmp_path, name):
    filename, data = DEMO_SDIST
    response = upload(app, filename, data, name=name)
    assert_rejected(response, 400, "invalid project name")
    assert_nothing_left(app, tmp_path, "demo", filename)


# ---------------------------------------------------------------------------
# digests sent and not matching -> 400
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["sha256_digest", "md5_digest", "blake2_256_digest"])
def test_wrong_digest_is_400(app, tmp_path, field):
    filename, data = DEMO_WHEEL
    wrong = digests(b"other bytes")[field]
    response = upload(app, filename, data, fields={field: wrong})
    assert_rejected(response, 400, field, "does not match")
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_digests_are_optional_and_case_insensitive(app):
    filename, data = DEMO_WHEEL
    upload(
        app,
        filename,
        data,
        status=200,
        fields={
            "md5_digest": None,
            "blake2_256_digest": None,
            "sha256_digest": hashlib.sha256(data).hexdigest().upper(),
        },
    )


# ---------------------------------------------------------------------------
# empty file, unreadable archive, wheel without a matching .dist-info/METADATA -> 400
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("filename", [DEMO_WHEEL[0], DEMO_SDIST[0], "demo-1.0.zip"])
def test_empty_file_is_400(app, tmp_path, filename):
    response = upload(app, filename, b"", name="demo", version="1.0")
    assert_rejected(response, 400, "empty")
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize(
    "filename,data",
    [
        (DEMO_WHEEL[0], b"this is not a zip file at all"),
        (DEMO_WHEEL[0], DEMO_WHEEL[1][: len(DEMO_WHEEL[1]) // 2]),
        (DEMO_WHEEL[0], DEMO_SDIST[1]),
        (DEMO_SDIST[0], b"\x1f\x8b but not really gzip"),
        (DEMO_SDIST[0], DEMO_SDIST[1][:40]),
        (DEMO_SDIST[0], DEMO_WHEEL[1]),
        ("demo-1.0.zip", b"PK\x03\x04 garbage"),
    ],
    ids=[
        "text-as-wheel",
        "truncated-wheel",
        "tarball-as-wheel",
        "fake-gzip",
        "truncated-sdist",
        "zip-as-tarball",
        "garbage-zip-sdist",
    ],
)
def test_unreadable_archive_is_400(app, tmp_path, filename, data):
    response = upload(app, filename, data, name="demo", version="1.0")
    assert_rejected(response, 400, "unreadable archive")
    assert_nothing_left(app, tmp_path, "demo", filename)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        make_wheel("demo", "1.0", dist_info="other-1.0.dist-info")[1],
        make_wheel("demo", "1.0", dist_info="demo-2.0.dist-info")[1],
        _zip({"demo/__init__.py": b"", "demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\n"}),
        _zip({"demo/__init__.py": b""}),
        _zip({"METADATA": b"Name: demo\nVersion: 1.0\n"}),
        _zip({"x/demo-1.0.dist-info/METADATA": b"Name: demo\nVersion: 1.0\n"}),
    ],
    ids=[
        "other-project",
        "other-version",
        "no-metadata",
        "no-dist-info",
        "top-level-metadata",
        "nested-dist-info",
    ],
)
def test_wheel_without_matching_metadata_is_400(app, tmp_path, data):
    filename = DEMO_WHEEL[0]
    response = upload(app, filename, data)
    assert_rejected(response, 400, "demo-1.0.dist-info/METADATA")
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize(
    "metadata,reason",
    [
        (b"Metadata-Version: 2.1\nName: other\nVersion: 1.0\n\n", "name"),
        (b"Metadata-Version: 2.1\nName: demo\nVersion: 9.9\n\n", "version"),
    ],
)
def test_wheel_metadata_disagreeing_with_filename_is_400(app, tmp_path, metadata, reason):
    filename, data = make_wheel("demo", "1.0", metadata=metadata)
    response = upload(app, filename, data, name="demo", version="1.0")
    assert_rejected(response, 400, "METADATA says " + reason)
    assert_nothing_left(app, tmp_path, "demo", filename)


# ---------------------------------------------------------------------------
# larger than pypi.max_upload_size -> 413
# ---------------------------------------------------------------------------
def test_larger_than_max_upload_size_is_413(make_app, tmp_path):
    app = make_app({"pypi.max_upload_size": "2K"})
    filename, data = make_wheel("demo", "1.0", payload=os.urandom(8192))
    assert 2048 < len(data) < 1024 * 1024
    response = upload(app, filename, data)
    assert_rejected(response, 413, "larger than the limit")
    assert_nothing_left(app, tmp_path, "demo", filename)
    # A file under the limit still goes through.
    small = make_wheel("demo", "1.1")
    assert len(small[1]) < 2048
    upload_dist(app, small)


def test_body_far_over_the_limit_is_refused_before_reading_it(make_app, tmp_path):
    app = make_app({"pypi.max_upload_size": "1K"})
    filename, data = make_wheel("demo", "1.0", payload=os.urandom(1024 * 1024 + 4096))
    response = upload(app, filename, data)
    assert_rejected(response, 413, "larger than the limit")
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_rest_upload_over_the_limit_is_413(make_app, tmp_path):
    app = make_app({"pypi.max_upload_size": "2K"})
    filename, data = make_wheel("demo", "1.0", payload=os.urandom(8192))
    response = app.post(
        f"/api/package/demo/{filename}",
        upload_files=[("content", filename, data)],
        headers=basic("admin"),
        expect_errors=True,
    )
    assert_rejected(response, 413, "larger than the limit")
    assert_nothing_left(app, tmp_path, "demo", filename)


# ---------------------------------------------------------------------------
# same filename, same bytes -> 200, nothing changes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dist", [DEMO_WHEEL, DEMO_SDIST], ids=["wheel", "sdist"])
def test_same_file_again_is_200_and_changes_nothing(app, dist):
    filename, data = dist
    upload_dist(app, dist)
    before = file_record(app, filename)
    path = stored_path(app, "demo", filename)
    mtime = path.stat().st_mtime_ns
    generation = service(app).index.generation()
    etag = simple_json(app, "/simple/demo/").headers["ETag"]

    again = upload_dist(app, dist)
    assert "already" in again.text.lower()
    assert file_record(app, filename) == before  # upload_time, uploader, everything
    assert path.stat().st_mtime_ns == mtime
    assert path.read_bytes() == data
    assert service(app).index.generation() == generation
    assert simple_json(app, "/simple/demo/").headers["ETag"] == etag


def test_same_file_again_by_another_writer_keeps_the_original_uploader(app):
    dist = make_wheel("alice-pkg", "1.0")
    upload_dist(app, dist, user="alice")
    upload_dist(app, dist, user="admin")
    assert file_record(app, dist[0]).uploader == "alice"


# ---------------------------------------------------------------------------
# same filename, different bytes, overwrite not allowed -> 409 "File already exists"
# ---------------------------------------------------------------------------
def test_same_filename_other_bytes_is_409(app, tmp_path):
    first = make_wheel("alice-pkg", "1.0", payload=b"first")
    second = make_wheel("alice-pkg", "1.0", payload=b"second")
    assert first[0] == second[0] and first[1] != second[1]
    upload_dist(app, first, user="alice")
    before = file_record(app, first[0])
    generation = service(app).index.generation()

    response = upload(app, *second, user="alice")
    assert_rejected(response, 409, "file already exists")
    assert response.text.startswith("File already exists")
    assert first[0] in response.text
    # The original is untouched: bytes, index row, generation; no temp file left.
    assert stored_path(app, "alice-pkg", first[0]).read_bytes() == first[1]
    assert file_record(app, first[0]) == before
    assert service(app).index.generation() == generation
    assert not leftover_temp_files(tmp_path)
    page = simple_json(app, "/simple/alice-pkg/")
    assert page.json["files"][0]["hashes"]["sha256"] == sha256(first[1])


def test_admin_gets_409_when_overwrite_is_off(app):
    first = make_wheel("demo", "1.0", payload=b"first")
    second = make_wheel("demo", "1.0", payload=b"second")
    upload_dist(app, first)
    response = upload(app, *second)
    assert response.status_int == 409
    assert stored_path(app, "demo", first[0]).read_bytes() == first[1]


def test_allow_overwrite_lets_the_admin_overwrite(make_app, tmp_path):
    app = make_app({"pypi.allow_overwrite": "true"})
    first = make_wheel("demo", "1.0", payload=b"first", summary="First build")
    second = make_wheel("demo", "1.0", payload=b"second", summary="Second build")
    upload_dist(app, first)
    response = upload_dist(app, second)
    assert "Uploaded" in response.text
    record = file_record(app, first[0])
    assert record.sha256 == sha256(second[1])
    assert record.summary == "Second build"
    assert stored_path(app, "demo", first[0]).read_bytes() == second[1]
    page = simple_json(app, "/simple/demo/")
    assert [f["hashes"]["sha256"] for f in page.json["files"]] == [sha256(second[1])]
    # The served .metadata is the new one.
    meta_url = "/api/package/demo/" + first[0] + ".metadata"
    metadata = app.get(meta_url, headers=basic("admin")).body
    assert b"Second build" in metadata
    assert page.json["files"][0]["core-metadata"]["sha256"] == sha256(metadata)
    # ... and it survives a restart (storage holds the new bytes and metadata).
    from .helpers import close_app, restart

    fresh = restart(app)
    try:
        assert file_record(fresh, first[0]).sha256 == sha256(second[1])
    finally:
        close_app(fresh)
    assert not leftover_temp_files(tmp_path)


def test_allow_overwrite_is_only_for_writers(make_app):
    app = make_app({"pypi.allow_overwrite": "true"})
    first = make_wheel("alice-pkg", "1.0", payload=b"first")
    second = make_wheel("alice-pkg", "1.0", payload=b"second")
    upload_dist(app, first, user="alice")
    assert_rejected(upload(app, *second, user="bob"), 403, "may not upload")
    upload_dist(app, second, user="alice")
    assert file_record(app, first[0]).sha256 == sha256(second[1])


# ---------------------------------------------------------------------------
# form fields it does not know -> ignored
# ---------------------------------------------------------------------------
def test_unknown_form_fields_are_ignored(app):
    filename, data = DEMO_WHEEL
    attestations = '[{"version": 1, "verification_material": {}, "envelope": {}}]'
    upload(
        app,
        filename,
        data,
        status=200,
        fields={
            "attestations": attestations,
            "classifiers": ["Programming Language :: Python :: 3", "License :: OSI Approved"],
            "requires_dist": ["requests>=2", "attrs"],
            "comment": "built in CI",
            "description": "Long\ndescription\n",
            "description_content_type": "text/markdown",
            "author_email": "dev@example.invalid",
            "x-custom-field": "whatever",
            "protocol_version": "1",
        },
    )
    assert file_record(app, filename) is not None


def test_extra_file_parts_are_ignored(app):
    filename, data = DEMO_WHEEL
    fields = _fields(filename, data)
    response = app.post(
        "/",
        params=list(fields.items()),
        upload_files=[
            ("content", filename, data),
            ("gpg_signature", filename + ".asc", b"-----BEGIN PGP-----"),
        ],
        headers=basic("admin"),
        expect_errors=True,
    )
    assert response.status_int == 200, response.text
    assert file_record(app, filename) is not None


# ---------------------------------------------------------------------------
# two uploads of the same filename at the same moment
# ---------------------------------------------------------------------------


def _in_threads(*calls, timeout: float = 60):
    """Run each callable in its own thread, started together; return their results."""
    return threads.run_all(calls, timeout=timeout)


def _race(app, dists, users):
    """Upload ``dists[i]`` as ``users[i]`` through its own TestApp over the same WSGI app."""
    clients = [webtest.TestApp(app.app) for _ in dists]
    return _in_threads(
        *[(lambda i=i: upload(clients[i], *dists[i], user=users[i])) for i in range(len(dists))]
    )


def _assert_consistent(app, project, filename, tmp_path):
    """Stored bytes, storage metadata, index row and /simple/ all describe one file."""
    path = stored_path(app, project, filename)
    stored = path.read_bytes()
    sidecar = json.loads((path.parent / f".{filename}.meta").read_text())
    record = file_record(app, filename)
    assert sidecar["sha256"] == sha256(stored)
    assert record.sha256 == sha256(stored) and record.size == len(stored)
    page = simple_json(app, f"/simple/{project}/")
    assert [f["hashes"]["sha256"] for f in page.json["files"] if f["filename"] == filename] == [
        sha256(stored)
    ]
    assert not leftover_temp_files(tmp_path)
    return stored


def _pausing_app(make_app, storage: bool):
    """An app whose storage (or index) can hold an upload at one step (tests/faults/backends.py)."""
    if storage:
        return make_app({"pypi.storage": "tests.faults.backends.PausingFileStorage"})
    return make_app({"pypi.db": "tests.faults.backends.PausingSQLIndex"})


def _first_then_second(app, first, second, pause, users=("alice", "alice")):
    """``first`` starts and is held at ``pause``; ``second`` runs to its end; then ``first`` ends."""
    clients = [webtest.TestApp(app.app), webtest.TestApp(app.app)]
    results: dict = {}

    def run(key, client, dist, user):
        try:
            results[key] = upload(client, *dist, user=user)
        except BaseException as exc:
            results[key] = exc

    t1 = threading.Thread(target=run, args=("first", clients[0], first, users[0]))
    t1.start()
    assert pause.reached.wait(30), "the first upload never reached the pause point"
    t2 = threading.Thread(target=run, args=("second", clients[1], second, users[1]))
    t2.start()
    t2.join(12)  # if the server makes it wait for the first one, let the first go on
    pause.release.set()
    t1.join(30)
    t2.join(30)
    assert not t1.is_alive() and not t2.is_alive(), "an upload is stuck"
    for value in results.values():
        assert not isinstance(value, BaseException), value
    return results["first"], results["second"]


def test_upload_racing_a_published_but_unfinished_upload_gets_409(make_app, tmp_path):
    app = _pausing_app(make_app, storage=True)
    first = make_wheel("alice-pkg", "1.0", payload=b"A" * 5000)
    second = make_wheel("alice-pkg", "1.0", payload=b"B" * 5000)
    pause = service(app).storage.pause_before_metadata(first[0])
    winner, loser = _first_then_second(app, first, second, pause)
    assert winner.status_int == 200, winner.text
    assert_rejected(loser, 409, "file already exists")
    stored = _assert_consistent(app, "alice-pkg", first[0], tmp_path)
    assert stored == first[1]


def test_identical_upload_racing_a_published_but_unfinished_upload_is_200(make_app, tmp_path):
    app = _pausing_app(make_app, storage=True)
    dist = make_sdist("demo", "1.0")
    pause = service(app).storage.pause_before_metadata(dist[0])
    first, second = _first_then_second(app, dist, dist, pause, users=("admin", "admin"))
    assert first.status_int == 200 and second.status_int == 200, (first.text, second.text)
    assert _assert_consistent(app, "demo", dist[0], tmp_path) == dist[1]


@pytest.mark.parametrize("identical", [False, True], ids=["other-bytes", "same-bytes"])
def test_upload_racing_a_stored_but_unindexed_upload(make_app, tmp_path, identical):
    app = _pausing_app(make_app, storage=False)
    first = make_wheel("alice-pkg", "1.0", payload=b"A" * 5000)
    second = first if identical else make_wheel("alice-pkg", "1.0", payload=b"B" * 5000)
    pause = service(app).index.pause_before_add(first[0])
    winner, loser = _first_then_second(app, first, second, pause)
    assert winner.status_int == 200, winner.text
    if identical:
        assert loser.status_int == 200, loser.text
    else:
        assert_rejected(loser, 409, "file already exists")
        assert loser.text.startswith("File already exists")
    assert _assert_consistent(app, "alice-pkg", first[0], tmp_path) == first[1]


@pytest.mark.parametrize("attempt", range(5))
def test_concurrent_uploads_of_different_bytes_one_wins(app, tmp_path, attempt):
    version = f"1.{attempt}"
    dists = [
        make_wheel("alice-pkg", version, payload=b"A" * 5000),
        make_wheel("alice-pkg", version, payload=b"B" * 5000),
    ]
    filename = dists[0][0]
    responses = _race(app, dists, users=("alice", "alice"))
    statuses = sorted(r.status_int for r in responses)
    assert statuses == [200, 409], [(r.status, r.text) for r in responses]
    winner = next(i for i, r in enumerate(responses) if r.status_int == 200)
    assert responses[1 - winner].text.startswith("File already exists")
    stored = _assert_consistent(app, "alice-pkg", filename, tmp_path)
    assert sha256(stored) == sha256(dists[winner][1])
    # The served .metadata belongs to the winner too.
    meta = app.get(f"/api/package/alice-pkg/{filename}.metadata", headers=basic("alice")).body
    page = simple_json(app, "/simple/alice-pkg/")
    assert page.json["files"][0]["core-metadata"]["sha256"] == sha256(meta)


@pytest.mark.parametrize("attempt", range(5))
def test_concurrent_uploads_of_identical_bytes_both_succeed(app, tmp_path, attempt):
    dist = make_sdist("demo", f"2.{attempt}")
    responses = _race(app, [dist, dist], users=("admin", "admin"))
    assert [r.status_int for r in responses] == [200, 200], [(r.status, r.text) for r in responses]
    assert _assert_consistent(app, "demo", dist[0], tmp_path) == dist[1]


def test_many_concurrent_writers_without_overwrite_exactly_one_wins(app, tmp_path):
    dists = [make_wheel("alice-pkg", "3.0", payload=bytes([65 + i]) * 3000) for i in range(6)]
    responses = _race(app, dists, users=("alice",) * 6)
    winners = [i for i, r in enumerate(responses) if r.status_int == 200]
    assert sorted(r.status_int for r in responses) == [200] + [409] * 5, [
        (r.status, r.text) for r in responses
    ]
    stored = _assert_consistent(app, "alice-pkg", dists[0][0], tmp_path)
    assert stored == dists[winners[0]][1]


# ---------------------------------------------------------------------------
# Where uploads are accepted
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/simple/", "/pypi", "/pypi/"])
def test_legacy_upload_paths(app, path):
    filename, data = DEMO_WHEEL
    upload(app, filename, data, path=path, status=200)
    assert file_record(app, filename) is not None
    assert [f["filename"] for f in simple_json(app, "/simple/demo/").json["files"]] == [filename]


def test_rest_upload(app, tmp_path):
    filename, data = DEMO_SDIST
    url = f"/api/package/demo/{filename}"
    response = app.post(url, upload_files=[("content", filename, data)], headers=basic("admin"))
    # 200 as pypicloud 1.x answered (issue 11; was 201); "created" tells a new file apart.
    assert response.status_int == 200 and response.json["created"] is True
    assert response.json["filename"] == filename
    assert response.json["sha256"] == sha256(data)
    assert response.json["version"] == "1.0"
    assert stored_path(app, "demo", filename).read_bytes() == data
    # The same bytes again: 200, not a new file.
    again = app.post(url, upload_files=[("content", filename, data)], headers=basic("admin"))
    assert again.status_int == 200 and again.json["created"] is False
    assert [f["filename"] for f in simple_json(app, "/simple/demo/").json["files"]] == [filename]


def test_rest_upload_rules(app, tmp_path):
    filename, data = make_wheel("alice-pkg", "1.0")
    url = f"/api/package/alice-pkg/{filename}"
    files = [("content", filename, data)]
    assert_rejected(app.post(url, upload_files=files, expect_errors=True), 401, "login required")
    assert_rejected(
        app.post(url, upload_files=files, headers=basic("bob"), expect_errors=True), 403, "may not upload"
    )
    assert_rejected(
        app.post(
            url,
            params={"x": "y"},
            headers=basic("alice"),
            content_type="multipart/form-data",
            expect_errors=True,
        ),
        400,
        "content",
    )
    wrong = app.post(
        "/api/package/other/" + filename, upload_files=files, headers=basic("admin"), expect_errors=True
    )
    assert_rejected(wrong, 400, "other")
    bad_sha = app.post(
        url,
        params={"sha256_digest": "0" * 64},
        upload_files=files,
        headers=basic("alice"),
        expect_errors=True,
    )
    assert_rejected(bad_sha, 400, "sha256_digest")
    assert_nothing_left(app, tmp_path, "alice-pkg", filename)
    response = app.post(url, upload_files=files, headers=basic("alice"))
    assert response.status_int == 200 and response.json["created"] is True
    other = make_wheel("alice-pkg", "1.0", payload=b"other")
    conflict = app.post(
        url, upload_files=[("content", filename, other[1])], headers=basic("alice"), expect_errors=True
    )
    assert_rejected(conflict, 409, "file already exists")


def test_rejected_uploads_never_5xx_on_garbage_bodies(app, tmp_path):
    headers = dict(basic("admin"))
    for body, content_type in [
        (b"", "multipart/form-data"),
        (b"--x\r\nnot a part", "multipart/form-data; boundary=x"),
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b"{}", "application/json"),
    ]:
        response = app.post(
            "/", params=body, headers={**headers, "Content-Type": content_type}, expect_errors=True
        )
        assert 400 <= response.status_int < 500, (content_type, response.status, response.text)
    assert_nothing_left(app, tmp_path, None, None)


def test_retry_after_a_crash_between_bytes_and_sidecar_succeeds(app, tmp_path):
    """A writer killed after publishing the bytes but before the sidecar left an orphan.

    That upload was never acknowledged, so a retry takes the name (nobody holds
    the name's lock any more) instead of getting 409 forever.
    """
    dist = make_wheel("alice-pkg", "1.0", payload=b"retry" * 1000)
    crashed = make_wheel("alice-pkg", "1.0", payload=b"partial-writer" * 100)
    folder = tmp_path / "packages" / "alice-pkg"
    folder.mkdir(parents=True)
    (folder / dist[0]).write_bytes(crashed[1])  # bytes published, no .meta sidecar
    upload_dist(app, dist, user="alice")
    assert _assert_consistent(app, "alice-pkg", dist[0], tmp_path) == dist[1]
