"""The web UI's project page: releases by PEP 440, the latest release, install snippets,
actions only for those who may use them, and a delete that needs confirming."""

from __future__ import annotations

import html
import re

import pytest

from .helpers import auth_headers, file_record, make_sdist, make_wheel, upload_dist
from .test_admin_ui import SECRET, login, post_form

VERSIONS = ["0.9", "1.10.0", "1.2.0", "1.9.0", "2.0.0b1"]


@pytest.fixture
def ui(make_app):
    return make_app({"session.secret": SECRET})


def headings(page_text: str) -> list[str]:
    """The release headings' versions, in page order."""
    return re.findall(r'<h3 id="v-\d+">([^\s<]+)', page_text)


def test_releases_are_ordered_by_pep_440_with_the_latest_final_release_first(ui):
    for version in VERSIONS:
        upload_dist(ui, make_wheel("demo", version, summary=f"Demo {version}"))
    login(ui)
    page = ui.get("/admin/projects/demo/")
    text = html.unescape(page.text)
    assert headings(text) == ["2.0.0b1", "1.10.0", "1.9.0", "1.2.0", "0.9"]
    # The newest final release is the latest (a pre-release is not), with its summary.
    assert re.search(r'<h1>demo <span class="version">1\.10\.0</span></h1>', text)
    assert '<p class="summary">Demo 1.10.0</p>' in text
    beta = text.split('<h3 id="v-1">')[1].split("</h3>")[0]
    assert "pre-release" in beta and "latest" not in beta
    assert "latest" in text.split('<h3 id="v-2">')[1].split("</h3>")[0]


def test_files_show_human_sizes_hashes_and_an_install_snippet_with_this_servers_url(ui):
    wheel, sdist = make_wheel("demo", "1.0"), make_sdist("demo", "1.0")
    upload_dist(ui, wheel)
    upload_dist(ui, sdist)
    login(ui)
    text = html.unescape(ui.get("/admin/projects/demo/").text)
    record = file_record(ui, wheel[0])
    assert f'<code class="hash">{record.sha256}</code>' in text
    assert f'title="{record.size} bytes"' in text
    assert "pip install --index-url http://localhost/simple/ demo" in text
    assert "uv pip install --index-url http://localhost/simple/ demo" in text
    assert "repository = http://localhost/simple/" in text
    # Wheels first, then the sdist, within one release.
    assert text.index(wheel[0]) < text.index(sdist[0])


def test_a_yanked_release_is_marked_and_never_the_latest(ui):
    upload_dist(ui, make_wheel("demo", "1.0"))
    upload_dist(ui, make_wheel("demo", "2.0"))
    login(ui)
    post_form(
        ui,
        "/admin/do/yank",
        {"project": "demo", "filename": make_wheel("demo", "2.0")[0], "reason": "broken"},
        page="/admin/projects/demo/",
    )
    text = html.unescape(ui.get("/admin/projects/demo/").text)
    assert re.search(r'<h1>demo <span class="version">1\.0</span></h1>', text)
    assert "Yanked: broken" in text


def test_readers_see_no_actions_and_writers_see_them(ui):
    upload_dist(ui, make_wheel("demo", "1.0"))
    upload_dist(ui, make_wheel("alice-pkg", "1.0"))
    login(ui, "alice")
    demo = ui.get("/admin/projects/demo/").text  # she may read demo, not write it
    assert "/admin/do/yank" not in demo and "/admin/do/delete-file" not in demo
    own = ui.get("/admin/projects/alice-pkg/").text
    assert "/admin/do/yank" in own and "/admin/do/delete-file" in own


def test_deleting_a_file_needs_the_confirmation_box_and_nothing_goes_without_it(ui):
    wheel = make_wheel("demo", "1.0")
    upload_dist(ui, wheel)
    login(ui)
    fields = {"project": "demo", "filename": wheel[0]}
    response = post_form(ui, "/admin/do/delete-file", fields, page="/admin/projects/demo/")
    assert response.status_int == 303
    shown = html.unescape(ui.get(response.location).text)
    assert f"Tick the box to confirm deleting {wheel[0]}; nothing was deleted" in shown
    assert ui.get(f"/api/package/demo/{wheel[0]}", headers=auth_headers("admin")).body == wheel[1]
    response = post_form(
        ui, "/admin/do/delete-file", {**fields, "confirm": "1"}, page="/admin/projects/demo/"
    )
    assert response.status_int == 303
    assert (
        ui.get(f"/api/package/demo/{wheel[0]}", headers=auth_headers("admin"), expect_errors=True).status_int
        == 404
    )


def test_a_release_is_yanked_and_unyanked_as_a_whole(ui):
    wheel, sdist = make_wheel("demo", "1.0"), make_sdist("demo", "1.0")
    upload_dist(ui, wheel)
    upload_dist(ui, sdist)
    upload_dist(ui, make_wheel("demo", "2.0"))
    login(ui)
    response = post_form(
        ui,
        "/admin/do/yank-release",
        {"project": "demo", "version": "1.0.0", "reason": "bad"},
        page="/admin/projects/demo/",
    )
    assert "Yanked release 1.0.0 (2 files)" in html.unescape(ui.get(response.location).text)
    assert file_record(ui, wheel[0]).yanked_reason == "bad"
    assert file_record(ui, sdist[0]).yanked and not file_record(ui, make_wheel("demo", "2.0")[0]).yanked
    post_form(
        ui, "/admin/do/unyank-release", {"project": "demo", "version": "1.0"}, page="/admin/projects/demo/"
    )
    assert not file_record(ui, wheel[0]).yanked and not file_record(ui, sdist[0]).yanked


def test_a_release_delete_needs_confirming_and_takes_only_that_release(ui):
    wheel, sdist, other = make_wheel("demo", "1.0"), make_sdist("demo", "1.0"), make_wheel("demo", "2.0")
    for dist in (wheel, sdist, other):
        upload_dist(ui, dist)
    login(ui)
    fields = {"project": "demo", "version": "1.0"}
    response = post_form(ui, "/admin/do/delete-release", fields, page="/admin/projects/demo/")
    assert "nothing was deleted" in html.unescape(ui.get(response.location).text)
    assert file_record(ui, wheel[0]) is not None
    response = post_form(
        ui, "/admin/do/delete-release", {**fields, "confirm": "1"}, page="/admin/projects/demo/"
    )
    assert response.location.endswith("/admin/projects/demo/")
    assert file_record(ui, wheel[0]) is None and file_record(ui, sdist[0]) is None
    assert file_record(ui, other[0]) is not None


def test_a_project_is_deleted_only_with_its_name_typed_and_the_list_follows(ui, tmp_path):
    wheel = make_wheel("demo", "1.0")
    upload_dist(ui, wheel)
    login(ui)
    wrong = post_form(
        ui,
        "/admin/do/delete-project",
        {"project": "demo", "confirm_name": "dem"},
        page="/admin/projects/demo/",
    )
    assert "Type the project's name (demo) to delete it" in html.unescape(ui.get(wrong.location).text)
    assert file_record(ui, wheel[0]) is not None
    done = post_form(
        ui,
        "/admin/do/delete-project",
        {"project": "demo", "confirm_name": "Demo"},
        page="/admin/projects/demo/",
    )
    assert done.location.endswith("/admin/projects/")
    assert "Deleted project demo (1 files)" in html.unescape(ui.get(done.location).text)
    assert file_record(ui, wheel[0]) is None


def test_readers_cannot_delete_a_release_or_a_project(ui):
    wheel = make_wheel("demo", "1.0")
    upload_dist(ui, wheel)
    login(ui, "alice")
    assert "delete-project" not in ui.get("/admin/projects/demo/").text
    for action, extra in (
        ("delete-release", {"version": "1.0", "confirm": "1"}),
        ("delete-project", {"confirm_name": "demo"}),
        ("yank-release", {"version": "1.0"}),
    ):
        response = post_form(
            ui, f"/admin/do/{action}", {"project": "demo", **extra}, page="/admin/projects/demo/"
        )
        assert "may not" in html.unescape(ui.get(response.location).text)
    assert not file_record(ui, wheel[0]).yanked
