"""The web UI for users who are not admins, and its browser upload form (SPEC sections 1, 4, 5)."""

from __future__ import annotations

import html
import os

import pytest

from .helpers import (
    assert_nothing_left,
    auth_headers,
    file_record,
    make_sdist,
    make_wheel,
    sha256,
    simple_json,
    upload_dist,
)
from .test_admin_ui import SECRET, csrf_of, login, post_form

ALICE_WHEEL = make_wheel("Alice.Pkg", "1.0")
ALICE_SDIST = make_sdist("Alice.Pkg", "1.0")


@pytest.fixture
def ui(make_app):
    return make_app({"session.secret": SECRET})


def browser_upload(app, *files: tuple[str, bytes], token: str | None = "from-page"):
    """Submit the upload form the way a browser does: multipart, one ``content`` part per file."""
    fields = {}
    if token == "from-page":
        fields["csrf_token"] = csrf_of(app.get("/admin/upload/"))
    elif token is not None:
        fields["csrf_token"] = token
    return app.post(
        "/admin/do/upload",
        fields,
        expect_errors=True,
        upload_files=[("content", name, data) for name, data in files],
    )


def messages(app, response) -> str:
    """The text of the page a form's 303 leads to (where the results are shown)."""
    assert response.status_int == 303, (response.status, response.text[:300])
    page = app.get(response.location)
    for _ in range(3):  # e.g. /admin/ sends a user who is not an admin on to the projects
        if page.status_int != 302:
            break
        page = app.get(page.location)
    return html.unescape(page.text)


# ---------------------------------------------------------------------------
# Uploading from the browser
# ---------------------------------------------------------------------------
def test_a_publisher_uploads_a_wheel_and_an_sdist_from_the_browser(ui):
    assert login(ui, "alice").status_int == 303
    form = ui.get("/admin/upload/")
    assert 'enctype="multipart/form-data"' in form.text and 'type="file" name="content"' in form.text
    response = browser_upload(ui, ALICE_WHEEL, ALICE_SDIST)
    assert response.location.endswith("/admin/upload/")
    text = messages(ui, response)
    assert f"Uploaded {ALICE_WHEEL[0]} to Alice.Pkg" in text
    assert f"Uploaded {ALICE_SDIST[0]} to Alice.Pkg" in text
    # What pip would see: both files, with their hashes, under the archive's own name.
    page = simple_json(ui, "/simple/alice-pkg/", user="alice").json
    assert {f["filename"]: f["hashes"]["sha256"] for f in page["files"]} == {
        ALICE_WHEEL[0]: sha256(ALICE_WHEEL[1]),
        ALICE_SDIST[0]: sha256(ALICE_SDIST[1]),
    }
    assert (
        ui.get(f"/api/package/alice-pkg/{ALICE_WHEEL[0]}", headers=auth_headers("alice")).body
        == ALICE_WHEEL[1]
    )
    record = file_record(ui, ALICE_WHEEL[0])
    assert record.uploader == "alice" and record.name == "Alice.Pkg"
    # Sending the same bytes again changes nothing and says so.
    text = messages(ui, browser_upload(ui, ALICE_WHEEL))
    assert f"{ALICE_WHEEL[0]} was already uploaded with the same bytes" in text


def test_each_file_is_judged_on_its_own(ui, tmp_path):
    """alice may write alice-pkg only: the demo wheel is refused, hers is stored."""
    other = make_wheel("demo", "1.0")
    login(ui, "alice")
    text = messages(ui, browser_upload(ui, other, ALICE_WHEEL))
    assert f"{other[0]}: " in text and "alice" in text and "User 'alice' may not upload to 'demo'" in text
    assert f"Uploaded {ALICE_WHEEL[0]}" in text
    assert file_record(ui, ALICE_WHEEL[0]) is not None
    assert_nothing_left(ui, tmp_path, "demo", other[0])


@pytest.mark.parametrize(
    "filename,data,reason",
    [
        ("alice_pkg-2.0-py3-none-any.whl", b"not a zip file at all", "alice_pkg-2.0-py3-none-any.whl: "),
        ("alice_pkg-2.0.exe", b"MZ", "not a wheel"),
        ("../alice_pkg-2.0.tar.gz", b"x", "alice_pkg-2.0.tar.gz"),
        ("alice_pkg-2.0-py3-none-any.whl", b"", "is empty"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason_and_nothing_is_kept(ui, tmp_path, filename, data, reason):
    login(ui, "alice")
    text = messages(ui, browser_upload(ui, (filename, data)))
    assert reason in text
    assert 'class="flash error"' in ui.get("/admin/upload/").text or reason in text
    assert_nothing_left(ui, tmp_path, "alice-pkg", os.path.basename(filename))


def test_a_file_over_the_size_limit_is_refused(make_app, tmp_path):
    app = make_app({"session.secret": SECRET, "pypi.max_upload_size": "2K"})
    big = make_wheel("Alice.Pkg", "3.0", payload=os.urandom(8192))
    login(app, "alice")
    text = messages(app, browser_upload(app, big))
    assert f"{big[0]}: " in text and "limit" in text
    assert_nothing_left(app, tmp_path, "alice-pkg", big[0])


def test_forty_files_at_once_are_all_stored_and_reported_without_overflowing_the_cookie(ui):
    assert login(ui, "alice").status_int == 303
    files = [make_wheel("alice-pkg", f"1.{n}") for n in range(40)]
    response = browser_upload(ui, *files)
    text = messages(ui, response)
    assert response.status_int == 303
    assert f"Uploaded {files[0][0]} to alice-pkg" in text
    assert "… and 33 more files stored" in text
    assert all(file_record(ui, name) is not None for name, _ in files)


def test_no_file_chosen(ui):
    login(ui, "alice")
    response = browser_upload(ui)
    assert response.location.endswith("/admin/upload/")
    assert "Choose at least one file to upload" in messages(ui, response)


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_the_upload_form_needs_its_csrf_token(ui, tmp_path, token):
    login(ui, "alice")
    response = browser_upload(ui, ALICE_WHEEL, token=token)
    assert response.status_int == 403 and "CSRF" in response.text
    assert_nothing_left(ui, tmp_path, "alice-pkg", ALICE_WHEEL[0])


def test_anonymous_visitors_are_sent_to_log_in_and_nothing_is_stored(ui, tmp_path):
    assert ui.get("/admin/upload/").status_int == 302
    response = ui.post(
        "/admin/do/upload", {"csrf_token": "x"}, expect_errors=True, upload_files=[("content", *ALICE_WHEEL)]
    )
    assert response.status_int == 302 and "/login?next=" in response.location
    assert_nothing_left(ui, tmp_path, "alice-pkg", ALICE_WHEEL[0])


# ---------------------------------------------------------------------------
# What a user who is not an admin sees and may do
# ---------------------------------------------------------------------------
def test_users_who_are_not_admins_get_projects_and_upload_but_not_admin_pages(ui):
    upload_dist(ui, make_wheel("demo", "1.0"))
    response = login(ui, "bob")
    assert response.status_int == 303
    home = ui.get("/admin/")
    assert home.status_int == 302 and home.location.endswith("/admin/projects/")
    projects = ui.get(home.location)
    assert "demo" in projects.text
    assert "/admin/upload/" in projects.text and "/admin/access/" not in projects.text
    assert ui.get("/admin/access/", expect_errors=True).status_int == 403
    response = post_form(
        ui, "/admin/do/add-user", {"username": "mallory", "password": "pw"}, page="/admin/projects/"
    )
    assert response.status_int == 403
    assert "mallory" not in ui.app.registry.service.access.export_data().users
    response = post_form(ui, "/admin/do/rebuild", page="/admin/projects/")
    assert response.status_int == 403


def test_file_actions_follow_the_users_permissions(ui):
    demo = make_wheel("demo", "1.0")
    upload_dist(ui, demo)
    upload_dist(ui, ALICE_WHEEL)
    login(ui, "alice")
    # demo is not hers: the refusal is shown and the file stays as it was.
    response = post_form(
        ui, "/admin/do/yank", {"project": "demo", "filename": demo[0]}, page="/admin/projects/demo/"
    )
    text = messages(ui, response)
    assert response.location.endswith("/admin/projects/demo/")
    assert "User 'alice' may not" in text
    assert file_record(ui, demo[0]).yanked is False
    # alice-pkg is: she may yank her own file.
    response = post_form(
        ui,
        "/admin/do/yank",
        {"project": "alice-pkg", "filename": ALICE_WHEEL[0], "reason": "bad build"},
        page="/admin/projects/alice-pkg/",
    )
    assert "Yanked " + ALICE_WHEEL[0] in messages(ui, response)
    assert file_record(ui, ALICE_WHEEL[0]).yanked_reason == "bad build"


def test_api_tokens_cannot_use_the_web_ui(make_app):
    app = make_app({"session.secret": SECRET, "pypi.auth": "sql"})
    access = app.app.registry.service.access
    from .helpers import HASHES

    access.create_user("alice", HASHES["alice"])
    secret, _ = access.create_token("alice", upload=True)
    headers = auth_headers("__token__", secret)
    assert app.get("/admin/projects/", headers=headers, expect_errors=True).status_int == 403


def test_the_size_limit_applies_to_each_file_not_to_the_whole_form(make_app, tmp_path):
    """Three files of 0.9 MB under a 1 MB limit are all stored (the form is 2.7 MB);
    a 1.2 MB file beside them is refused by name, and nothing of it is kept."""
    app = make_app({"session.secret": SECRET, "pypi.max_upload_size": "1M"})
    small = [make_wheel("Alice.Pkg", f"4.{n}", payload=os.urandom(900_000)) for n in range(3)]
    big = make_wheel("Alice.Pkg", "5.0", payload=os.urandom(1_200_000))
    login(app, "alice")
    text = messages(app, browser_upload(app, *small, big))
    for name, data in small:
        assert f"Uploaded {name} to Alice.Pkg" in text
        assert file_record(app, name).sha256 == sha256(data)
    assert f"{big[0]}: not stored, it is 1.2 MB, over the limit of 1.0 MB per file" in text
    assert_nothing_left(app, tmp_path, "alice-pkg", big[0])


def test_a_form_over_the_whole_form_limit_is_refused_before_it_is_read(make_app, tmp_path):
    app = make_app(
        {"session.secret": SECRET, "pypi.max_upload_size": "1M", "pypi.max_browser_upload_size": "2M"}
    )
    # 3.6 MB: over 2 MB and the 1 MB allowed for the other form fields.
    files = [make_wheel("Alice.Pkg", f"6.{n}", payload=os.urandom(900_000)) for n in range(4)]
    login(app, "alice")
    response = browser_upload(app, *files)
    assert response.status_int == 413
    for name, _ in files:
        assert_nothing_left(app, tmp_path, "alice-pkg", name)
