"""Browsing the web UI: anonymously where anonymous reads are allowed, the project list's
search, sorting and pages, and downloads that work with the browser session."""

from __future__ import annotations

import re

import pytest

from pypicloud.browse import PER_PAGE

from .helpers import make_wheel, upload_dist
from .test_admin_ui import SECRET, login


@pytest.fixture
def public_ui(make_app):
    return make_app({"session.secret": SECRET, "pypi.default_read": "everyone"})


@pytest.fixture
def ui(make_app):
    return make_app({"session.secret": SECRET})


def listed(page_text: str) -> list[str]:
    return re.findall(r'<a href="/admin/projects/([^/"]+)/">', page_text)


def test_anonymous_visitors_browse_a_public_index_and_download_from_it(public_ui):
    wheel = make_wheel("demo", "1.0")
    upload_dist(public_ui, wheel)
    assert public_ui.get("/admin/").location.endswith("/admin/projects/")
    projects = public_ui.get("/admin/projects/")
    assert listed(projects.text) == ["demo"]
    assert 'href="/login"' in projects.text  # and may log in from there
    page = public_ui.get("/admin/projects/demo/")
    link = f"/admin/projects/demo/files/{wheel[0]}"
    assert link in page.text
    assert public_ui.get(link).body == wheel[1]


def test_a_private_index_sends_anonymous_visitors_to_log_in(ui):
    upload_dist(ui, make_wheel("demo", "1.0"))
    for path in ("/admin/projects/", "/admin/projects/demo/"):
        response = ui.get(path)
        assert response.status_int == 302 and "/login?next=" in response.location
    # The file link of the UI needs the session, not a Basic-auth prompt.
    download = ui.get(f"/admin/projects/demo/files/{make_wheel('demo', '1.0')[0]}", expect_errors=True)
    assert download.status_int == 401


def test_downloads_from_the_ui_use_the_browser_session(ui):
    wheel = make_wheel("demo", "1.0")
    upload_dist(ui, wheel)
    login(ui, "bob")
    assert ui.get(f"/admin/projects/demo/files/{wheel[0]}").body == wheel[1]


def test_search_matches_words_in_names_and_summaries(public_ui):
    upload_dist(public_ui, make_wheel("acme-utils", "1.0", summary="Helpers"))
    upload_dist(public_ui, make_wheel("widgets", "1.0", summary="Widgets by ACME"))
    upload_dist(public_ui, make_wheel("other", "1.0", summary="Nothing"))
    assert listed(public_ui.get("/admin/projects/?q=acme utils").text) == ["acme-utils"]
    assert listed(public_ui.get("/admin/projects/?q=Acme_Utils").text) == ["acme-utils"]
    assert listed(public_ui.get("/admin/projects/?q=acme").text) == ["acme-utils", "widgets"]
    assert "0 projects" in public_ui.get("/admin/projects/?q=zzz").text


def test_the_list_pages_and_sorts_server_side(public_ui):
    service = public_ui.app.registry.service
    names = [f"p{n:03d}" for n in range(PER_PAGE + 5)]
    for name in names:
        upload_dist(public_ui, make_wheel(name, "1.0"))
    first = public_ui.get("/admin/projects/")
    assert listed(first.text) == names[:PER_PAGE]
    assert f"{len(names)} projects · page 1 of 2" in first.text
    second = public_ui.get("/admin/projects/?page=2")
    assert listed(second.text) == names[PER_PAGE:]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    newest = listed(public_ui.get("/admin/projects/?sort=updated").text)
    assert newest[0] == names[-1]
    assert listed(public_ui.get("/admin/projects/?page=99").text) == names[PER_PAGE:]
    assert service.browse_projects(service.access.identity("admin"), page=-3).page == 1
    searched = public_ui.get("/admin/projects/?q=%3Cscript%3E").text
    assert "<script>" not in searched and 'value="&lt;script&gt;"' in searched


def test_a_browser_opening_the_root_gets_the_web_ui_and_tools_keep_the_list(public_ui):
    upload_dist(public_ui, make_wheel("demo", "1.0"))
    browser = public_ui.get(
        "/", headers={"Sec-Fetch-Dest": "document", "Accept": "text/html,application/xhtml+xml"}
    )
    # The home page itself: search, recent uploads, how to configure tools for this server.
    assert browser.status_int == 200 and "text/html" in browser.content_type
    assert 'role="search"' in browser.text and "demo-1.0-py3-none-any.whl" in browser.text
    assert "pip install --index-url http://localhost/simple/" in browser.text
    assert "Sec-Fetch-Dest" in browser.headers["Vary"] and browser.headers["Cache-Control"] == "no-store"
    tool = public_ui.get("/")
    assert tool.status_int == 200 and 'href="http://localhost/simple/demo/"' in tool.text
