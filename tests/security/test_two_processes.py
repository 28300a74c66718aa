"""Items 3 and 4 across two real server processes sharing one PostgreSQL index.

Failed logins counted by one process throttle the other; a logout in one
process ends the session's copies in the other.
"""

from __future__ import annotations

import http.cookies
import re
import urllib.parse

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SECRET = "a-session-secret-shared-by-both-processes"


@pytest.fixture
def two_servers(server_factory, postgres_schema):
    url, schema = postgres_schema
    settings = {
        "pypi.db": "sql",
        "db.url": url,
        "db.schema": schema,
        "session.secret": SECRET,
        "auth.throttle_user": "4",
        "auth.throttle_address": "0",
    }
    first = server_factory(settings, name="one")
    second = server_factory(settings, name="two")
    return first, second


def session_cookie(headers) -> str | None:
    for value in headers.get_all("Set-Cookie") or ():
        cookie = http.cookies.SimpleCookie(value)
        if "ppc_session" in cookie:
            return cookie["ppc_session"].value
    return None


def web_login(server, user: str, password: str) -> str:
    status, headers, body = server.request("GET", "/login")
    cookie = session_cookie(headers)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
    form = urllib.parse.urlencode({"username": user, "password": password, "csrf_token": token})
    status, headers, _ = server.request(
        "POST",
        "/login",
        body=form.encode(),
        headers={"Cookie": f"ppc_session={cookie}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 303, status
    return session_cookie(headers)


def account(server, cookie: str) -> int:
    return server.request("GET", "/admin/account/", headers={"Cookie": f"ppc_session={cookie}"})[0]


def test_failed_logins_in_one_process_throttle_the_other(two_servers):
    first, second = two_servers
    # Wrong passwords on /simple/ read it as anonymous (pypicloud 1.x) but still count.
    for i in range(2):
        assert first.request("GET", "/simple/", user="alice", password=f"wrong{i}")[0] == 200
        assert second.request("GET", "/simple/", user="alice", password=f"bad{i}")[0] == 200
    for server in (first, second):
        status, headers, _ = server.request("GET", "/simple/", user="alice")
        assert status == 429 and int(headers["Retry-After"]) > 0
    assert second.request("GET", "/simple/", user="admin")[0] == 200


def test_logout_in_one_process_ends_the_session_in_the_other(two_servers):
    first, second = two_servers
    cookie = web_login(first, "alice", "alice-pw")
    assert account(second, cookie) == 200  # the shared secret: one session for both
    status, _, body = second.request("GET", "/admin/account/", headers={"Cookie": f"ppc_session={cookie}"})
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
    status, _, _ = first.request(
        "POST",
        "/logout",
        body=urllib.parse.urlencode({"csrf_token": token}).encode(),
        headers={"Cookie": f"ppc_session={cookie}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 303
    # The copied cookie (the browser would have dropped it) no longer works anywhere.
    assert account(first, cookie) == 302
    assert account(second, cookie) == 302
