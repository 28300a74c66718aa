"""The wheel built from this tree is the product: everything the source package holds ships in it.

Every other end-to-end test already serves from that wheel (tests/fixtures/installed.py);
these check what a missing file would break first: templates and migrations present
in the installed package, and every web UI page rendering from it for a logged-in admin.
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.fixtures.installed import installed_package_dir, source_package_files
from tests.fixtures.server import USERS

pytestmark = pytest.mark.e2e


def test_every_file_of_the_source_package_is_installed_from_the_wheel():
    installed = installed_package_dir()
    assert "site-packages" in installed.parts, installed  # not the editable checkout
    missing = [rel for rel in source_package_files() if not (installed / rel).is_file()]
    assert missing == []


def _csrf(page: requests.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:300]
    return match.group(1)


def test_an_admin_logs_in_and_every_ui_page_renders_from_the_installed_wheel(server_factory, published):
    srv = published
    pages = [
        "/admin/",
        "/admin/projects/",
        "/admin/projects/acme-widget/",
        "/admin/upload/",
        "/admin/account/",
        "/admin/access/",
        "/admin/audit/",
    ]
    with requests.Session() as browser:
        login = browser.get(srv.url + "/login", timeout=30)
        assert login.status_code == 200 and "<form" in login.text
        answer = browser.post(
            srv.url + "/login",
            timeout=30,
            allow_redirects=False,
            data={"username": "admin", "password": USERS["admin"], "csrf_token": _csrf(login)},
        )
        assert answer.status_code == 303, answer.text[:300]
        for path in pages:
            page = browser.get(srv.url + path, timeout=30)
            assert page.status_code == 200, (path, page.text[:300])
            assert page.headers["Content-Type"].startswith("text/html")
    assert "TemplateNotFound" not in srv.stderr_text()
