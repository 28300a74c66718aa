"""The home page at ``/`` for a browser's navigation: recent uploads the visitor may
read, and how to use this server; installers keep the simple index at ``/``."""

from __future__ import annotations

import html

import pytest

from .helpers import make_wheel, upload_dist
from .test_admin_ui import SECRET, login

BROWSER = {"Sec-Fetch-Dest": "document", "Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def private_ui(make_app):
    """The product's default: only logged-in users read."""
    return make_app({"session.secret": SECRET})


def test_a_private_index_shows_anonymous_visitors_how_to_log_in_and_nothing_else(private_ui):
    wheel = make_wheel("secret-lib", "1.0")
    upload_dist(private_ui, wheel)
    page = private_ui.get("/", headers=BROWSER)
    assert page.status_int == 200
    assert "secret-lib" not in page.text and "Log in</a> to see the projects" in page.text
    assert "pip install --index-url http://localhost/simple/ PROJECT" in html.unescape(page.text)
    # Logged in (the session counts at / for a browser), the same page lists the upload.
    login(private_ui, "alice")
    page = private_ui.get("/", headers=BROWSER)
    assert wheel[0] in page.text
    assert ">alice<" in page.text
    # A tool asking for / with the same cookie gets the simple index, read without the
    # session: as anonymous, it lists nothing here.
    tool = private_ui.get("/")
    assert "<h1>" not in tool.text and "secret-lib" not in tool.text


def test_the_newest_files_come_first_and_at_most_ten(private_ui):
    for n in range(12):
        upload_dist(private_ui, make_wheel("many", f"1.{n}"))
    login(private_ui, "alice")
    text = private_ui.get("/", headers=BROWSER).text
    shown = [f"many-1.{n}-py3-none-any.whl" for n in range(12) if f"many-1.{n}-py3-none-any.whl<" in text]
    assert shown == [f"many-1.{n}-py3-none-any.whl" for n in range(2, 12)]
    assert text.index("many-1.11-") < text.index("many-1.2-")
