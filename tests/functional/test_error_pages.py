"""Errors as a browser sees them (an HTML page with navigation) and as tools see them (plain text)."""

from __future__ import annotations

import pytest

from .helpers import auth_headers, make_wheel, upload_dist
from .test_admin_ui import SECRET, login

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PIP = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


@pytest.fixture
def ui(make_app):
    return make_app({"session.secret": SECRET})


@pytest.mark.parametrize("path", ["/no/such/page", "/admin/projects/nope/", "/simple/nope/"])
def test_a_browser_gets_a_404_page_with_navigation(ui, path):
    login(ui)
    response = ui.get(path, headers={"Accept": BROWSER}, expect_errors=True)
    assert response.status_int == 404
    assert response.content_type == "text/html"
    assert "<h1>404 · Not found</h1>" in response.text
    assert 'href="/admin/projects/"' in response.text  # the navigation is there
    assert "<nav" in response.text


@pytest.mark.parametrize("accept", [None, "*/*", PIP])
def test_tools_keep_the_plain_text_answer(ui, accept):
    headers = {"Accept": accept} if accept else {}
    response = ui.get("/simple/nope/", headers={**headers, **auth_headers("admin")}, expect_errors=True)
    assert response.status_int == 404
    assert response.content_type == "text/plain"
    assert response.text.startswith("No such project")


def test_a_browser_that_may_not_read_gets_a_page_and_still_the_basic_challenge(ui):
    upload_dist(ui, make_wheel("demo", "1.0"))
    response = ui.get("/simple/demo/", headers={"Accept": BROWSER}, expect_errors=True)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "Log in" in response.text and response.content_type == "text/html"


def test_a_405_page_keeps_the_allow_header(ui):
    response = ui.delete("/login", headers={"Accept": BROWSER}, expect_errors=True)
    assert response.status_int == 405
    assert "Allow" in response.headers and response.content_type == "text/html"
    assert response.status.startswith("405 Method DELETE is not allowed")
