"""A publisher (pat, who may write to acme-widget) and a logged-in reader (rita) in Chromium:
log in, yank and un-yank, delete a file through its confirmation, upload from the
browser form, create and revoke an API token on the account page."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from tests.fixtures.server import write_sdist, write_wheel

pytestmark = pytest.mark.browser

PROJECT_PAGE = "/admin/projects/acme-widget/"


def api_files(site) -> dict[str, dict]:
    status, body = site.server.get_json("/api/package/acme-widget/", user=None)
    assert status == 200, body
    return {f["filename"]: f for f in body["packages"]}


def file_row(page, filename: str):
    return page.locator("tr", has=page.get_by_role("link", name=filename, exact=True))


def test_login_returns_to_the_page_asked_for(browser):
    page = browser.page
    browser.goto("/admin/upload/")  # needs a login: the form comes first
    assert "/login?next=%2Fadmin%2Fupload%2F" in page.url
    page.get_by_label("User name").fill("pat")
    page.get_by_label("Password").fill("not-the-password")
    browser.submit(page.get_by_role("button", name="Log in"))
    assert page.get_by_text("Wrong user name or password").is_visible()
    page.get_by_label("User name").fill("pat")
    page.get_by_label("Password").fill(browser.site.passwords["pat"])
    browser.submit(page.get_by_role("button", name="Log in"))
    assert page.url.endswith("/admin/upload/")
    assert page.locator("header").get_by_text("pat", exact=True).is_visible()
    browser.shot("upload")


def test_yank_then_unyank_from_the_project_page(browser, catalogue, site):
    page = browser.page
    browser.login("pat")
    browser.goto(PROJECT_PAGE)
    name = "Acme_Widget-1.0.tar.gz"
    row = file_row(page, name)
    row.get_by_label("Reason").fill("broken build")
    browser.submit(row.get_by_role("button", name="Yank"))
    row = file_row(page, name)
    assert row.get_attribute("class") == "yanked"
    assert row.get_by_text("Yanked: broken build").is_visible()
    assert api_files(site)[name]["yanked"] is True
    assert api_files(site)[name]["yanked_reason"] == "broken build"
    # Only this file: its sibling wheel is untouched.
    assert api_files(site)["Acme_Widget-1.0-py3-none-any.whl"]["yanked"] is False

    browser.submit(row.get_by_role("button", name="Un-yank"))
    row = file_row(page, name)
    assert row.get_attribute("class") in (None, "")
    assert row.get_by_role("button", name="Yank").is_visible()
    assert api_files(site)[name]["yanked"] is False


def test_delete_a_file_through_its_confirmation(browser, catalogue, site):
    page = browser.page
    browser.login("pat")
    browser.goto(PROJECT_PAGE)
    name = "Acme_Widget-1.0-py3-none-any.whl"
    row = file_row(page, name)
    row.get_by_text("Delete…").click()
    confirm = row.get_by_label(f"Delete {name} for good")
    delete = row.get_by_role("button", name="Delete file")
    # Without the box ticked the browser does not send the form.
    delete.click()
    assert page.url.endswith(PROJECT_PAGE)
    assert name in api_files(site)
    assert confirm.evaluate("el => el.validity.valueMissing") is True

    confirm.check()
    browser.submit(delete)
    assert page.get_by_role("link", name=name, exact=True).count() == 0
    assert name not in api_files(site)
    assert "Acme_Widget-1.0.tar.gz" in api_files(site)  # the rest of 1.0 stays


def test_upload_from_the_browser_form(browser, catalogue, site, tmp_path):
    page = browser.page
    wheel = write_wheel(tmp_path, "Acme.Widget", "2.0")
    sdist = write_sdist(tmp_path, "Acme.Widget", "2.0")
    browser.login("pat", path="/login?next=/admin/upload/")
    page.get_by_label("Files to upload").set_input_files([str(wheel), str(sdist)])
    browser.submit(page.get_by_role("button", name="Upload", exact=True))
    assert page.get_by_text(f"Uploaded {wheel.name} to Acme.Widget").is_visible()
    assert page.get_by_text(f"Uploaded {sdist.name} to Acme.Widget").is_visible()
    files = api_files(site)
    assert files[wheel.name]["uploader"] == "pat"
    assert files[sdist.name]["sha256"] == hashlib.sha256(sdist.read_bytes()).hexdigest()

    browser.goto(PROJECT_PAGE)
    assert page.get_by_role("heading", level=1).inner_text() == "Acme.Widget 2.0"
    newest = page.locator("main section.release").first
    assert newest.get_by_role("heading").inner_text().startswith("2.0")
    assert newest.locator(".badge", has_text="latest").is_visible()
    assert set(newest.locator("td a").all_inner_texts()) == {wheel.name, sdist.name}


def token_may_upload(site, secret: str) -> bool:
    """What the REST API says the token may do (a revoked one counts as no credentials)."""
    auth = base64.b64encode(f"__token__:{secret}".encode()).decode()
    status, body = site.server.get_json(
        "/api/package/acme-widget/", user=None, headers={"Authorization": "Basic " + auth}
    )
    assert status == 200, body
    return body["write"]


def test_account_page_creates_a_token_with_the_password_and_revokes_it(browser, catalogue, site):
    page = browser.page
    browser.login("pat")
    browser.goto("/admin/account/")
    rows = page.locator("main table tr")
    before = rows.count()

    form = page.locator("fieldset", has=page.get_by_text("New token"))
    form.get_by_label("Description").fill("ci job")
    form.get_by_label("Your current password").fill("wrong-password")
    browser.submit(form.get_by_role("button", name="Create token"))
    assert page.get_by_text("Enter your current password to create a token").is_visible()
    assert page.locator(".token").count() == 0
    assert page.locator("main table tr").count() == before

    form = page.locator("fieldset", has=page.get_by_text("New token"))
    form.get_by_label("Description").fill("ci job")
    form.get_by_label("may upload").check()
    form.get_by_label("Your current password").fill(site.passwords["pat"])
    browser.submit(form.get_by_role("button", name="Create token"))
    secret = page.locator(".token").inner_text().strip()
    assert re.fullmatch(r"\S{20,}", secret)
    row = page.locator("main table tr", has_text="ci job")
    assert row.count() == 1
    assert token_may_upload(site, secret) is True
    browser.shot("account")

    browser.goto("/admin/account/")  # the secret is shown once only
    assert page.locator(".token").count() == 0
    row = page.locator("main table tr", has_text="ci job")
    browser.submit(row.get_by_role("button", name=re.compile("Revoke")))
    assert page.locator("main table tr", has_text="ci job").count() == 0
    assert token_may_upload(site, secret) is False


def test_a_logged_in_reader_gets_no_write_controls(browser, catalogue, site):
    page = browser.page
    browser.login("rita")
    browser.goto(PROJECT_PAGE)
    assert page.get_by_role("link", name="Acme_Widget-1.1.tar.gz").is_visible()
    assert page.get_by_role("button", name=re.compile("Yank|Delete")).count() == 0
    assert page.get_by_text("Delete…").count() == 0
    assert page.get_by_role("link", name="Access").count() == 0
    browser.goto("/admin/access/", status=403)
    assert page.get_by_role("heading", level=1).inner_text().startswith("403")
