"""A new user follows the sign-up link an admin got from 1.x's ``GET /admin/token/<u>``:
``/acct/login#/?token=...`` (the token after ``#``, which only the page's script sees)."""

from __future__ import annotations

import json

import pytest

from .conftest import PASSWORDS

pytestmark = pytest.mark.browser


def test_a_1x_signup_link_leads_to_a_new_account(open_browser, site):
    status, _, body = site.server.request(
        "GET", "/admin/token/tina/", user="admin", password=PASSWORDS["admin"]
    )
    assert status == 200, body
    link = json.loads(body)["token_url"]
    assert "/acct/login#/?token=tina%3A" in link or "/acct/login#/?token=tina:" in link

    tina = open_browser()
    page = tina.page
    page.goto(link)
    page.wait_for_url("**/acct/signup?token=*")
    tina.audit()
    assert page.get_by_role("heading", level=1).inner_text() == "Create your account"
    assert "tina" in page.locator("main").inner_text()
    page.get_by_label("Password (8+ characters)").fill("tina-pw-12345")
    page.get_by_label("Password again").fill("tina-pw-12345")
    tina.submit(page.get_by_role("button", name="Create account"))
    assert "Welcome, tina" in page.locator("main").inner_text()
    assert page.locator("header").get_by_text("tina", exact=True).is_visible()

    # The link works once: a second visit says so and offers no form.
    again = open_browser()
    again.page.goto(link)
    again.page.wait_for_url("**/acct/signup?token=*")
    again.audit()
    assert "was used" in again.page.locator("main").inner_text()
    assert again.page.get_by_label("Password again").count() == 0
