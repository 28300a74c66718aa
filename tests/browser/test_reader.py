"""A reader in Chromium: browsing a public index without logging in, the project page,
downloads, the 404 page and the phone-sized layout."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def test_anonymous_reader_lists_searches_and_opens_a_project(browser, catalogue):
    page = browser.page
    browser.goto("/admin/projects/")
    assert page.get_by_role("link", name="Log in").is_visible()
    names = page.locator("main table tbody tr td:first-child a").all_inner_texts()
    assert names == ["Acme.Widget", "verso"]
    assert "2 projects" in page.get_by_role("status").inner_text()

    # Words of the name, spaced as people type them; and words of the summary
    # (both test projects say "A widget for end-to-end tests").
    page.get_by_label("Search names and summaries").fill("acme widget")
    browser.submit(page.get_by_role("button", name="Search"))
    assert page.locator("main table tbody tr td:first-child a").all_inner_texts() == ["Acme.Widget"]
    page.get_by_label("Search names and summaries").fill("end-to-end tests")
    browser.submit(page.get_by_role("button", name="Search"))
    assert page.locator("main table tbody tr td:first-child a").all_inner_texts() == ["Acme.Widget", "verso"]
    page.get_by_label("Search names and summaries").fill("no such thing")
    browser.submit(page.get_by_role("button", name="Search"))
    assert "0 projects" in page.get_by_role("status").inner_text()

    browser.goto("/admin/projects/")
    browser.submit(page.get_by_role("link", name="verso"))
    assert page.url.endswith("/admin/projects/verso/")
    assert page.get_by_role("heading", level=1).inner_text() == "verso 1.10.0"


def test_project_page_orders_releases_marks_latest_and_shows_install(browser, catalogue, site):
    page = browser.page
    browser.goto("/admin/projects/verso/")
    headings = [
        re.split(r"\s+", h.strip())[0] for h in page.locator("main section.release h3").all_inner_texts()
    ]
    assert headings == ["2.0.0b1", "1.10.0", "1.9.0", "1.2.0", "0.9"]
    pre = page.locator("section.release", has=page.get_by_role("heading", name=re.compile(r"^2\.0\.0b1")))
    assert pre.locator(".badge", has_text="pre-release").is_visible()
    latest = page.locator("section.release", has=page.get_by_role("heading", name=re.compile(r"^1\.10\.0")))
    assert latest.locator(".badge", has_text="latest").is_visible()
    assert page.locator(".badge", has_text="latest").count() == 1

    snippet = page.locator("pre.snippet").first
    assert snippet.is_visible()
    assert snippet.inner_text() == f"pip install --index-url {site.url}/simple/ verso"
    # A reader who may not write sees no yank or delete controls.
    assert page.get_by_role("button", name=re.compile("Yank|Delete")).count() == 0
    row = page.locator("tr", has=page.get_by_role("link", name="verso-0.9-py3-none-any.whl"))
    expected = hashlib.sha256(catalogue["verso-0.9-py3-none-any.whl"].read_bytes()).hexdigest()
    assert row.locator("code.hash").inner_text() == expected
    browser.shot("project")


def test_anonymous_download_link_gives_the_file(browser, catalogue):
    page = browser.page
    browser.goto("/admin/projects/acme-widget/")
    name = "Acme_Widget-1.1-py3-none-any.whl"
    with page.expect_download() as info:
        page.get_by_role("link", name=name).click()
    download = info.value
    assert download.suggested_filename == name
    assert download.failure() is None
    assert Path(download.path()).read_bytes() == catalogue[name].read_bytes()


def test_unknown_pages_answer_a_styled_404(browser, site):
    page = browser.page
    for path in ("/admin/no-such-page/", "/no-such-page"):
        browser.goto(path, status=404)
        assert page.get_by_role("heading", level=1).inner_text().startswith("404")
        assert page.get_by_role("navigation", name="Main").is_visible()
        assert page.get_by_role("link", name="Browse projects").is_visible()
    browser.goto("/admin/projects/no-such-project/", status=404)
    assert "404" in page.title()
    browser.shot("error-404")


def test_a_375px_phone_never_scrolls_sideways(open_browser, catalogue):
    phone = open_browser(viewport={"width": 375, "height": 740})
    for path in (
        "/admin/projects/",
        "/admin/projects/verso/",
        "/admin/projects/acme-widget/",
        "/login",
        "/admin/no-such-page/",
    ):
        phone.goto(path, status=None)
        phone.no_horizontal_scroll()
