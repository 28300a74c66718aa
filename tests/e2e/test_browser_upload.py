"""The browser upload form end to end: a real server, a cookie session over HTTP, then pip.

What a publisher without twine does: log in at /login, choose the wheel and the sdist
on /admin/upload/, submit once; then anyone with read access installs it with pip.
"""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.e2e.helpers import api_files, ok, pip_cmd, run
from tests.fixtures.server import USERS

pytestmark = pytest.mark.e2e


def csrf_token(page: requests.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:300]
    return match.group(1)


def test_a_publisher_uploads_from_the_browser_and_pip_installs_it(server_factory, dists, cenv, tmp_path):
    srv = server_factory(
        {"session.secret": "e2e-session-secret-0123456789", "package.acme-widget.user.alice": "rw"}
    )
    wheel, sdist = dists.build("1.0")
    with requests.Session() as browser:
        login_page = browser.get(srv.url + "/login", timeout=30)
        response = browser.post(
            srv.url + "/login",
            timeout=30,
            allow_redirects=False,
            data={"username": "alice", "password": USERS["alice"], "csrf_token": csrf_token(login_page)},
        )
        assert response.status_code == 303
        assert "ppc_session" in browser.cookies

        form = browser.get(srv.url + "/admin/upload/", timeout=30)
        assert form.status_code == 200
        with open(wheel, "rb") as w, open(sdist, "rb") as s:
            result = browser.post(
                srv.url + "/admin/do/upload",
                timeout=60,
                data={"csrf_token": csrf_token(form)},
                files=[("content", (wheel.name, w)), ("content", (sdist.name, s))],
            )
        assert result.status_code == 200 and result.url.endswith("/admin/upload/")
        text = html.unescape(result.text)
        assert f"Uploaded {wheel.name} to Acme.Widget" in text
        assert f"Uploaded {sdist.name} to Acme.Widget" in text

    files = api_files(srv, "acme-widget")
    assert set(files) == {wheel.name, sdist.name}
    assert {f["uploader"] for f in files.values()} == {"alice"}
    target = tmp_path / "target"
    ok(
        run(
            pip_cmd(
                "install",
                "--no-cache-dir",
                "--target",
                str(target),
                "--index-url",
                srv.auth_url("alice") + "/simple/",
                "acme-widget==1.0",
            ),
            cenv,
        )
    )
    assert (target / "acme_widget").is_dir()
