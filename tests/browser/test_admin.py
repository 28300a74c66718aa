"""An admin in Chromium: the overview, the access page (add a user, who can then log in),
and the admin's pages on a 375 px wide phone."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def test_admin_adds_a_user_who_can_then_log_in(open_browser, catalogue, site):
    admin = open_browser()
    page = admin.page
    admin.login("admin")
    assert page.url.endswith("/admin/")
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    admin.submit(page.get_by_role("navigation", name="Main").get_by_role("link", name="Access"))
    users = page.locator("main table").first
    assert "newbie" not in users.inner_text()

    form = page.locator("fieldset", has=page.get_by_text("Add a user"))
    form.get_by_label("User name").fill("newbie")
    form.get_by_label("Password").fill("newbie-pw-123")
    admin.submit(form.get_by_role("button", name="Add user"))
    row = page.locator("main table").first.locator("tr", has_text="newbie")
    assert row.count() == 1
    assert row.locator("td").nth(1).inner_text() == ""  # not an admin
    admin.shot("access")

    newbie = open_browser()
    site.passwords["newbie"] = "newbie-pw-123"
    newbie.login("newbie")
    assert newbie.page.url.endswith("/admin/projects/")
    assert newbie.page.locator("header").get_by_text("newbie", exact=True).is_visible()
    assert newbie.page.get_by_role("link", name="Access").count() == 0
    newbie.shot("projects")


def test_admin_pages_fit_a_375px_phone(open_browser, catalogue):
    phone = open_browser(viewport={"width": 375, "height": 740})
    phone.login("admin")
    for path in (
        "/admin/",
        "/admin/projects/",
        "/admin/projects/acme-widget/",
        "/admin/upload/",
        "/admin/account/",
        "/admin/access/",
    ):
        phone.goto(path)
        phone.no_horizontal_scroll()


def test_an_admin_cannot_demote_or_delete_themselves_from_the_access_page(browser, site):
    page = browser.page
    browser.login("admin")
    browser.goto("/admin/access/")
    users = page.locator("main table").first
    own = users.locator("tr", has=page.get_by_role("cell", name="admin", exact=True))
    assert own.locator("td").nth(1).inner_text().startswith("yes")
    assert own.get_by_role("button", name=re.compile("Remove admin|Delete")).count() == 0
    assert own.get_by_text("Delete…").count() == 0
    # Another user's row has both, each behind its own button.
    rita = users.locator("tr", has=page.get_by_role("cell", name="rita", exact=True))
    assert rita.get_by_role("button", name="Make admin").is_visible()
    assert rita.get_by_text("Delete…").is_visible()
