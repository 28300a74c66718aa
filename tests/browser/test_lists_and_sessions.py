"""The projects list past one page (pages, sorting), deleting a whole project behind its
typed name, and a form sent after the session ended, in Chromium."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.server import write_wheel

pytestmark = pytest.mark.browser

MANY = 55  # more than one page of 50


@pytest.fixture(scope="module")
def many(site):
    names = [f"bulk-{n:02d}" for n in range(MANY)]
    for name in names:
        site.upload(write_wheel(site.dists_dir, name, "1.0"), name)
    site.upload(write_wheel(site.dists_dir, "Acme.Widget", "1.0"), "Acme.Widget")
    return names


def listed(page) -> list[str]:
    return page.locator("main table tbody tr td:first-child a").all_inner_texts()


def test_the_projects_list_has_pages_and_sorts_by_last_upload(browser, site, many):
    page = browser.page
    browser.goto("/admin/projects/")
    total = MANY + 1
    assert f"{total} projects · page 1 of 2" in page.get_by_role("status").inner_text()
    first = listed(page)
    assert len(first) == 50 and first == sorted(first, key=str.lower)
    browser.submit(page.get_by_role("link", name=re.compile("Next")))
    assert "page 2 of 2" in page.get_by_role("status").inner_text()
    assert len(listed(page)) == total - 50 and not set(listed(page)) & set(first)

    browser.goto("/admin/projects/")
    page.get_by_label("Sort by").select_option("updated")
    browser.submit(page.get_by_role("button", name="Search"))
    assert listed(page)[0] == "Acme.Widget"  # uploaded last


def test_an_admin_deletes_a_project_only_by_typing_its_name(browser, site, many):
    page = browser.page
    browser.login("admin")
    browser.goto("/admin/projects/bulk-00/")
    danger = page.locator("section.danger")
    danger.get_by_label(re.compile("to confirm")).fill("bulk-01")  # the wrong name
    browser.submit(danger.get_by_role("button", name="Delete project"))
    assert "Type the project's name (bulk-00)" in page.get_by_role("alert").inner_text()
    assert len(site.server.get_json("/api/package/bulk-00/", user=None)[1]["packages"]) == 1

    danger = page.locator("section.danger")
    danger.get_by_label(re.compile("to confirm")).fill("Bulk_00")  # any spelling of the name
    browser.submit(danger.get_by_role("button", name="Delete project"))
    assert page.url.endswith("/admin/projects/")
    assert "Deleted project bulk-00 (1 files)" in page.get_by_role("status").first.inner_text()
    assert site.server.get_json("/api/package/bulk-00/", user=None)[1]["packages"] == []


def test_a_form_sent_after_the_session_ended_comes_back_to_its_page_after_login(browser, site, many):
    page = browser.page
    browser.login("pat")
    browser.goto("/admin/projects/acme-widget/")
    browser.context.clear_cookies()  # the session ends (expired, or logged out elsewhere)
    row = page.locator("tr", has=page.get_by_role("link", name="Acme_Widget-1.0-py3-none-any.whl"))
    browser.submit(row.get_by_role("button", name="Yank"))
    assert "/login?next=%2Fadmin%2Fprojects%2Facme-widget%2F" in page.url
    page.get_by_label("User name").fill("pat")
    page.get_by_label("Password").fill(site.passwords["pat"])
    browser.submit(page.get_by_role("button", name="Log in"))
    # Back on the page with the form, not on a GET of the form's POST-only URL.
    assert page.url == site.url + "/admin/projects/acme-widget/"
    assert page.get_by_role("heading", level=1).inner_text().startswith("Acme.Widget")
