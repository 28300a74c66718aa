"""An admin reads the audit log in Chromium: the uploads and access changes that built the
site are there with who made them, a filter narrows the table, and the page fits a phone."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _actions(page) -> list[str]:
    return page.locator("main table tbody td:nth-child(2) code").all_inner_texts()


def test_admin_reads_and_filters_the_audit_log(open_browser, catalogue):
    admin = open_browser()
    page = admin.page
    admin.login("admin")
    admin.submit(page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log"))
    assert page.get_by_role("heading", level=1).inner_text() == "Audit log"
    shown = _actions(page)
    assert "file.upload" in shown and "access.user.create" in shown and "access.grant.set" in shown
    upload = page.locator("main table tbody tr", has_text="file.upload").first
    assert "admin" in upload.inner_text()

    page.get_by_label("Action").fill("access.")
    admin.submit(page.get_by_role("button", name="Filter"))
    assert "action=access." in page.url
    shown = _actions(page)
    assert shown and all(action.startswith("access.") for action in shown)
    assert page.get_by_label("Action").input_value() == "access."
    export = page.get_by_role("link", name="Export these events as JSON lines")
    assert "audit.jsonl?action=access." in (export.get_attribute("href") or "")
    admin.shot("audit")


def test_a_bad_filter_is_explained(browser, catalogue):
    browser.login("admin")
    browser.goto("/admin/audit/?from=yesterday", status=400)
    assert "'from' must be a date" in browser.page.locator("main").inner_text()


def test_the_audit_page_fits_a_375px_phone(open_browser, catalogue):
    phone = open_browser(viewport={"width": 375, "height": 740})
    phone.login("admin")
    phone.goto("/admin/audit/")
    phone.no_horizontal_scroll()
