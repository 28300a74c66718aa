"""pypicloud 1.x's documented HTTP API answers as 1.x did (issue 11, item 3).

The first test replays, in order, every request of
``tests/fixtures/legacy_1x/responses.json``: what pypicloud 1.3.12 itself
answered to the requests a 1.x script sends (recorded by ``record_1x.py`` in
that folder, on the SQL access backend). For each, our status must be 1.x's
and every key of 1.x's JSON answer must be there with a value of the same type;
we may add keys beside them. The few places where we answer differently on
purpose are listed in ``DEVIATIONS`` with the reason (and documented in
docs/api.md). The other tests check what the fixture cannot: that changes really
happened (or did not), permissions, cross-site refusals and the ini backend.
"""

from __future__ import annotations

import gzip
import json
import xmlrpc.client
from pathlib import Path

import pytest

from .helpers import (
    HASHES,
    PASSWORDS,
    assert_rejected,
    auth_headers,
    file_record,
    make_wheel,
    service,
    upload_dist,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "legacy_1x" / "responses.json"

# label -> (our status, why). Everything not listed must match 1.x exactly.
DEVIATIONS = {
    "setup: first user becomes admin": (
        403,
        "self-registration is off by default (pypi.allow_register), and even when on "
        "an anonymous sign-up never becomes an admin; the test creates the admin "
        "through the backend instead",
    ),
    "self-register while off": (
        403,
        "1.x registered a pending user although registration had been switched off "
        "(its allow='false' was stored as a true string); here off means off",
    ),
    "sign-up token": (
        403,
        "1.x crashed (500: auth.signing_key is not set, as in the recorded ini); here "
        "403 saying so. With the key set, both answer a token "
        "(tests/functional/test_signup_tokens.py)",
    ),
}

# (label, where): a list that 1.x filled and we leave empty, because of a deviation above.
EMPTY_BY_DEVIATION = {("acl export", "$.pending_users")}  # eve signed up only in 1.x (bug)

SQL_ACCESS = {
    "pypi.auth": "sql",
    "auth.admins": None,
    "user.admin": None,
    "user.alice": None,
    "user.bob": None,
    "package.alice-pkg.user.alice": None,
}


def access_state(app) -> dict:
    """Users, groups and grants as exported, without password hashes: a successful login
    may rehash an old-format hash to argon2id, which changes no user's rights."""
    data = service(app).access.export_data().to_json()
    for user in data.get("users", {}).values():
        user.pop("password_hash", None)
    return data


def shape(value):
    """The same reduction as record_1x.py: keys and value types."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "string"


def contained(old, new, where: str = "$") -> list[str]:
    """What of 1.x's shape ``old`` is missing or of another type in our shape ``new``."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [f"{where}: expected an object, got {new!r}"]
        problems = []
        for key, value in old.items():
            if key not in new:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += contained(value, new[key], f"{where}.{key}")
        return problems
    if isinstance(old, list):
        if not isinstance(new, list):
            return [f"{where}: expected a list, got {new!r}"]
        if old and not new:
            return [f"{where}: empty, 1.x had items"]
        return contained(old[0], new[0], where + "[0]") if old else []
    if old == "null":  # 1.x had no value here; we may have one
        return []
    return [] if old == new else [f"{where}: {old} in 1.x, {new} here"]


def sql_app(make_app):
    app = make_app(SQL_ACCESS)
    access = service(app).access
    access.create_user("admin", HASHES["admin"], admin=True)
    return app


def send(app, step: dict):
    who = step["who"]
    if who is not None and ":" in who:
        user, password = who.split(":", 1)
        headers = auth_headers(user, password)
    else:
        headers = auth_headers(who)
    method, path, form = step["method"], step["path"], step["form"]
    if "file" in step:
        info = step["file"]
        filename, data = make_wheel(info["project"], info["version"])
        assert filename == info["filename"]
        return app.post(
            path,
            params=form,
            upload_files=[(info["field"], filename, data)],
            headers=headers,
            expect_errors=True,
        )
    if "body" in step:
        return app.request(
            path,
            method=method,
            body=step["body"].encode(),
            headers=dict(headers, **{"Content-Type": step["content_type"]}),
            expect_errors=True,
        )
    if form:
        return app.request(
            path,
            method=method,
            headers=headers,
            expect_errors=True,
            body=_urlencode(form),
            content_type="application/x-www-form-urlencoded",
        )
    return app.request(path, method=method, headers=headers, expect_errors=True)


def _urlencode(form: dict) -> bytes:
    from urllib.parse import urlencode

    return urlencode(form).encode()


def answer_shape(step: dict, response):
    if "xmlrpc_shape" in step:
        return shape(xmlrpc.client.loads(response.body)[0][0])
    body = response.body
    if step["path"].endswith(".gz") and response.status_int == 200:
        body = gzip.decompress(body)
    return shape(json.loads(body)) if body else None


def test_every_recorded_1x_request_gets_1x_status_and_keys(make_app):
    recorded = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert recorded["recorded_with"].startswith("pypicloud 1.3.12")
    app = sql_app(make_app)
    problems = []
    for step in recorded["steps"]:
        label = step["label"]
        response = send(app, step)
        expected = DEVIATIONS.get(label, (step["status"], None))[0]
        if response.status_int != expected:
            problems.append(
                f"{label}: {step['method']} {step['path']} -> "
                f"{response.status_int}, 1.x {step['status']} ({response.text[:200]})"
            )
            continue
        if label in DEVIATIONS:
            continue
        old = step.get("xmlrpc_shape", step.get("json_shape"))
        if old is None or old == "not json":
            continue  # 1.x answered an empty or non-JSON body: nothing a script could read
        try:
            new = answer_shape(step, response)
        except ValueError:
            problems.append(f"{label}: not JSON: {response.text[:200]}")
            continue
        if old == "null":
            if new != "null":
                problems.append(f"{label}: 1.x answered null, we {new}")
            continue
        problems += [
            f"{label}: {p}" for p in contained(old, new) if (label, p.split(":")[0]) not in EMPTY_BY_DEVIATION
        ]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# What the changes did
# ---------------------------------------------------------------------------
def test_admin_api_changes_users_groups_and_grants(make_app):
    app = sql_app(make_app)
    admin = auth_headers("admin")
    app.put("/admin/user/carol/", params={"password": "carol-pw"}, headers=admin)
    wheel = make_wheel("team-lib", "1.0")
    # carol may read (default_read = authenticated) but not upload yet.
    assert upload_dist(app, wheel, user="carol", password="carol-pw", status=None).status_int == 403
    app.put("/admin/group/qa", headers=admin)
    app.put("/admin/user/carol/group/qa", headers=admin)
    app.put("/admin/package/Team_Lib/group/qa/write/", headers=admin)
    assert upload_dist(app, wheel, user="carol", password="carol-pw").status_int == 200
    assert app.get("/admin/package/team-lib/", headers=admin).json == {
        "user": [],
        "group": [{"group": "qa", "permissions": ["read", "write"]}],
    }
    # Revoking write leaves read; revoking read removes the grant.
    app.delete("/admin/package/team-lib/group/qa/write", headers=admin)
    assert app.get("/admin/group/qa/", headers=admin).json["packages"] == [
        {"package": "team-lib", "permissions": ["read"]}
    ]
    assert (
        upload_dist(
            app, make_wheel("team-lib", "1.1"), user="carol", password="carol-pw", status=None
        ).status_int
        == 403
    )
    app.delete("/admin/package/team-lib/group/qa/read", headers=admin)
    assert app.get("/admin/package/team-lib/", headers=admin).json["group"] == []
    # Admin flag as 1.x's web UI sent it (JSON) and as a form field.
    app.post(
        "/admin/user/carol/admin",
        params=json.dumps({"admin": True}),
        content_type="application/json",
        headers=admin,
    )
    assert app.get("/admin/user/carol", headers=admin).json == {
        "username": "carol",
        "admin": True,
        "groups": ["qa"],
    }
    app.post("/admin/user/carol/admin/", params={"admin": "false"}, headers=admin)
    assert app.get("/admin/user/carol", headers=admin).json["admin"] is False
    app.delete("/admin/user/carol/group/qa/", headers=admin)
    app.delete("/admin/group/qa/", headers=admin)
    assert app.get("/admin/group/", headers=admin).json == []
    app.delete("/admin/user/carol", headers=admin)
    assert [u["username"] for u in app.get("/admin/user", headers=admin).json] == ["admin"]
    gone = app.post(
        "/api/user/password",
        params={"old_password": "carol-pw", "new_password": "x"},
        headers=auth_headers("carol", "carol-pw"),
        expect_errors=True,
    )
    assert gone.status_int == 401  # her credentials log nobody in any more


def test_refused_admin_changes_change_nothing(make_app):
    app = sql_app(make_app)
    admin = auth_headers("admin")
    before = access_state(app)
    for method, path, status, reason in [
        ("PUT", "/admin/group/everyone/", 400, "reserved"),
        ("PUT", "/admin/group/authenticated", 400, "reserved"),
        ("PUT", "/admin/user/admin/", 409, "admin"),
        ("PUT", "/admin/user/with%20space/", 400, "invalid user name"),
        ("DELETE", "/admin/user/nobody/", 409, "nobody"),
        ("PUT", "/admin/user/nobody/group/ghosts/", 409, ""),
        ("PUT", "/admin/package/lib/user/nobody/read", 409, "nobody"),
    ]:
        params = {"password": "pw"} if method == "PUT" and "/group/" not in path else None
        response = app.request(
            path,
            method=method,
            headers=admin,
            expect_errors=True,
            body=_urlencode(params or {}),
            content_type="application/x-www-form-urlencoded",
        )
        assert_rejected(response, status, reason)
        assert response.json["message"] and response.json["error"]
    assert app.put("/admin/user/dave", headers=admin, expect_errors=True).status_int == 400
    assert access_state(app) == before


ADMIN_ENDPOINTS = [
    ("GET", "/admin/user/"),
    ("GET", "/admin/user/admin/"),
    ("PUT", "/admin/user/eve/"),
    ("DELETE", "/admin/user/admin/"),
    ("POST", "/admin/user/admin/approve"),
    ("POST", "/admin/user/admin/admin"),
    ("GET", "/admin/user/admin/permissions"),
    ("PUT", "/admin/user/admin/group/g"),
    ("DELETE", "/admin/user/admin/group/g"),
    ("GET", "/admin/group/"),
    ("GET", "/admin/group/g"),
    ("PUT", "/admin/group/g"),
    ("DELETE", "/admin/group/g"),
    ("GET", "/admin/package/p/"),
    ("PUT", "/admin/package/p/user/admin/read"),
    ("DELETE", "/admin/package/p/group/g/write"),
    ("GET", "/admin/pending_users"),
    ("POST", "/admin/register"),
    ("GET", "/admin/token/eve"),
    ("GET", "/admin/acl.json.gz"),
    ("GET", "/admin/rebuild"),
    ("POST", "/admin/rebuild/"),
]


@pytest.mark.parametrize("method,path", ADMIN_ENDPOINTS)
def test_admin_endpoints_need_an_admin(make_app, method, path):
    app = sql_app(make_app)
    service(app).access.create_user("bob", HASHES["bob"])
    before = access_state(app)
    anonymous = app.request(path, method=method, expect_errors=True)
    assert_rejected(anonymous, 401, "login required")
    assert anonymous.content_type == "application/json"
    assert set(anonymous.json) == {"error", "message"}
    assert_rejected(
        app.request(path, method=method, headers=auth_headers("bob"), expect_errors=True), 403, "may not"
    )
    assert access_state(app) == before


def test_the_ini_backend_reads_but_refuses_changes(app):
    admin = auth_headers("admin")
    users = app.get("/admin/user/", headers=admin).json
    assert {"username": "admin", "admin": True} in users
    assert app.get("/admin/package/alice-pkg/", headers=admin).json["user"] == [
        {"username": "alice", "permissions": ["read", "write"]}
    ]
    for method, path in [
        ("PUT", "/admin/user/eve/"),
        ("DELETE", "/admin/user/bob"),
        ("PUT", "/admin/group/qa/"),
        ("PUT", "/admin/package/x/user/bob/read"),
    ]:
        response = app.request(
            path,
            method=method,
            headers=admin,
            expect_errors=True,
            body=b"password=pw",
            content_type="application/x-www-form-urlencoded",
        )
        assert_rejected(response, 403, "read-only")
    response = app.post(
        "/api/user/password",
        params={"old_password": PASSWORDS["bob"], "new_password": "new-pw"},
        headers=auth_headers("bob"),
        expect_errors=True,
    )
    assert_rejected(response, 403, "read-only")
    assert app.get("/simple/", headers=auth_headers("bob")).status_int == 200


def test_acl_export_has_1x_layout_and_our_hashes(make_app):
    app = sql_app(make_app)
    admin = auth_headers("admin")
    app.put("/admin/user/alice", params={"password": PASSWORDS["alice"]}, headers=admin)
    app.put("/admin/group/devs", headers=admin)
    app.put("/admin/user/alice/group/devs", headers=admin)
    app.put("/admin/package/lib/user/alice/write", headers=admin)
    response = app.get("/admin/acl.json.gz", headers=admin)
    assert "acl.json.gz" in response.headers["Content-Disposition"]
    data = json.loads(gzip.decompress(response.body))
    assert data["groups"] == {"devs": ["alice"]}
    assert data["packages"] == {"users": {"lib": {"alice": ["read", "write"]}}, "groups": {}}
    alice = next(u for u in data["users"] if u["username"] == "alice")
    assert alice["admin"] is False
    assert service(app).access.authenticate("alice", PASSWORDS["alice"]) is not None
    assert alice["password"] == service(app).access.export_data().users["alice"]["password_hash"]


# ---------------------------------------------------------------------------
# The caller's own account
# ---------------------------------------------------------------------------
def test_change_password(make_app):
    app = sql_app(make_app)
    service(app).access.create_user("bob", HASHES["bob"])
    url = "/api/user/password"
    wrong = app.post(
        url,
        params={"old_password": "nope", "new_password": "new-pw"},
        headers=auth_headers("bob"),
        expect_errors=True,
    )
    assert_rejected(wrong, 403, "old password")
    assert app.get("/simple/", headers=auth_headers("bob")).status_int == 200
    assert_rejected(
        app.post(url, params={"old_password": "a", "new_password": "b"}, expect_errors=True),
        401,
        "login required",
    )
    app.post(
        url, params={"old_password": PASSWORDS["bob"], "new_password": "new-pw"}, headers=auth_headers("bob")
    )
    # The old password no longer logs in (a read anonymous users may do would treat it as
    # anonymous, so ask for the caller's own account instead).
    old = app.post(
        url,
        params={"old_password": PASSWORDS["bob"], "new_password": "x"},
        headers=auth_headers("bob"),
        expect_errors=True,
    )
    assert old.status_int == 401
    assert app.get("/simple/", headers=auth_headers("bob", "new-pw")).status_int == 200


def test_self_registration_is_refused_and_creates_nobody(make_app):
    # Off unless pypi.allow_register or an admin's POST /admin/register turns it on
    # (tests/functional/test_registration.py).
    app = sql_app(make_app)
    response = app.put("/api/user/mallory/", params={"password": "pw"}, expect_errors=True)
    assert_rejected(response, 403, "self-registration")
    assert not service(app).access.user_exists("mallory")


def test_acct_login_gives_a_web_ui_session_and_logout_ends_it(app):
    wrong = app.post("/acct/login", params={"username": "alice", "password": "nope"}, expect_errors=True)
    assert wrong.status_int == 403
    assert "ppc_session" not in app.cookies
    response = app.post("/acct/login", params={"username": "alice", "password": PASSWORDS["alice"]})
    assert response.json["next"].endswith("/admin/")
    assert app.get("/admin/account/").status_int == 200  # the session cookie is enough
    # A GET logout sent for another site is refused; the session survives it.
    refused = app.get("/acct/logout", headers={"Sec-Fetch-Site": "cross-site"}, expect_errors=True)
    assert refused.status_int == 403
    assert app.get("/admin/account/").status_int == 200
    assert app.get("/acct/logout").status_int == 302
    assert app.get("/admin/account/").status_int == 302  # to the login page
    assert app.get("/acct/login").headers["Location"].endswith("/login")


# ---------------------------------------------------------------------------
# The package REST API
# ---------------------------------------------------------------------------
def test_package_list_verbose_and_file_shapes(app):
    upload_dist(app, make_wheel("Demo.Lib", "1.0", summary="Old"))
    new_wheel = make_wheel("Demo.Lib", "2.0", summary="New")
    upload_dist(app, new_wheel)
    admin = auth_headers("admin")
    assert app.get("/api/package/", headers=admin).json == {"packages": ["Demo.Lib"]}
    assert app.get("/api/package/?verbose=false", headers=admin).json == {"packages": ["Demo.Lib"]}
    (entry,) = app.get("/api/package/?verbose=true", headers=admin).json["packages"]
    newest = file_record(app, new_wheel[0])
    assert entry["name"] == "Demo.Lib" and entry["summary"] == "New"
    assert entry["last_modified"] == int(newest.upload_time.timestamp())
    assert entry["project"] == "demo-lib"
    listing = app.get("/api/package/demo-lib/", headers=auth_headers("bob")).json
    assert listing["write"] is False
    assert app.get("/api/package/demo-lib/", headers=admin).json["write"] is True
    first = next(p for p in listing["packages"] if p["version"] == "2.0")
    assert first["metadata"]["hash_sha256"] == newest.sha256
    assert first["metadata"]["hash_md5"] == newest.md5 and len(newest.md5) == 32
    assert first["metadata"]["summary"] == "New" and first["metadata"]["uploader"] == "admin"
    assert first["last_modified"] == int(newest.upload_time.timestamp())
    assert first["upload_time"] == newest.upload_time.isoformat()


def test_unknown_package_is_an_empty_list_only_for_readers(app):
    assert app.get("/api/package/nothing/", headers=auth_headers("bob")).json == {
        "packages": [],
        "write": False,
    }
    # Who may read nothing (anonymous, default_read = authenticated) still cannot tell
    # an unknown project from an existing one.
    upload_dist(app, make_wheel("alice-pkg", "1.0"), user="alice")
    assert_rejected(app.get("/api/package/nothing/", expect_errors=True), 401, "login required")
    assert_rejected(app.get("/api/package/alice-pkg/", expect_errors=True), 401, "login required")


def test_upload_with_only_content_takes_name_and_version_from_the_filename(app, tmp_path):
    filename, data = make_wheel("Demo.Lib", "3.1")
    anonymous = app.post("/simple/", upload_files=[("content", filename, data)], expect_errors=True)
    assert_rejected(anonymous, 401, "login required")
    assert file_record(app, filename) is None
    response = app.post("/simple/", upload_files=[("content", filename, data)], headers=auth_headers("admin"))
    assert response.status_int == 200
    assert response.json["filename"] == filename and response.json["version"] == "3.1"
    record = file_record(app, filename)
    assert record.project == "demo-lib" and record.name == "Demo.Lib"


def test_errors_are_json_under_api_and_admin_but_not_on_ui_pages(app):
    missing = app.get(
        "/api/package/demo/demo-9-py3-none-any.whl", headers=auth_headers("admin"), expect_errors=True
    )
    assert missing.status_int == 404 and missing.json["error"] == "not_found"
    unknown = app.get("/api/no/such/thing", expect_errors=True)
    assert unknown.status_int == 404 and set(unknown.json) == {"error", "message"}
    assert app.get("/admin/nothing/here", expect_errors=True).json["error"] == "not_found"
    # The web UI's pages keep their answers; other paths are not JSON.
    ui = app.post("/admin/do/rebuild", headers={"Origin": "https://evil.example"}, expect_errors=True)
    assert ui.status_int == 403 and ui.content_type == "text/plain"
    assert (
        app.get("/simple/nothing/", headers=auth_headers("admin"), expect_errors=True).content_type
        != "application/json"
    )


# ---------------------------------------------------------------------------
# GET /admin/rebuild: works for scripts, refused cross-site
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Referer": "http://localhost.evil.example/"},
    ],
    ids=["fetch-cross-site", "fetch-same-site", "origin", "referer", "referer-lookalike"],
)
def test_rebuild_by_get_is_refused_cross_site(app, headers):
    wheel = make_wheel("demo", "1.0")
    upload_dist(app, wheel)
    service(app).index.remove(wheel[0])
    response = app.get("/admin/rebuild", headers=auth_headers("admin", **headers), expect_errors=True)
    assert_rejected(response, 403, "Cross-site")
    assert file_record(app, wheel[0]) is None  # nothing was rebuilt


@pytest.mark.parametrize("path", ["/admin/rebuild", "/admin/rebuild/"])
def test_rebuild_by_get_works_for_scripts(app, path):
    wheel = make_wheel("demo", "1.0")
    upload_dist(app, wheel)
    service(app).index.remove(wheel[0])
    headers = auth_headers("admin", Referer="http://localhost/admin/")
    assert app.get(path, headers=headers).json["files"] == 1
    assert file_record(app, wheel[0]) is not None


# ---------------------------------------------------------------------------
# XML-RPC search (pip search --index http://host/pypi)
# ---------------------------------------------------------------------------
def rpc(app, method: str, *params, user: str | None = None, body: bytes | None = None, path: str = "/pypi"):
    data = body if body is not None else xmlrpc.client.dumps(params, method).encode()
    response = app.post(
        path, params=data, headers=auth_headers(user, **{"Content-Type": "text/xml"}), expect_errors=True
    )
    return response


def test_search_finds_readable_projects_only(make_app):
    app = make_app({"pypi.default_read": ""})
    upload_dist(app, make_wheel("alice-pkg", "1.0", summary="Private thing"), user="alice")
    upload_dist(app, make_wheel("alice-pkg", "1.10", summary="Private thing"), user="alice")
    query = ({"name": ["ALICE"], "summary": ["alice"]}, "or")
    response = rpc(app, "search", *query, user="alice")
    assert response.status_int == 200 and response.content_type == "text/xml"
    assert xmlrpc.client.loads(response.body)[0][0] == [
        {"name": "alice-pkg", "summary": "Private thing", "version": "1.10"}
    ]
    assert xmlrpc.client.loads(rpc(app, "search", *query, user="bob").body)[0][0] == []
    assert xmlrpc.client.loads(rpc(app, "search", *query).body)[0][0] == []
    by_summary = rpc(app, "search", {"summary": ["thing", "private"]}, "and", user="alice", path="/pypi/")
    assert len(xmlrpc.client.loads(by_summary.body)[0][0]) == 1
    # Wrong credentials on a read are the anonymous caller's (1.x): nothing private is found.
    bad_login = app.post(
        "/pypi",
        params=xmlrpc.client.dumps(query, "search"),
        headers=dict(auth_headers("alice", "wrong"), **{"Content-Type": "text/xml"}),
        expect_errors=True,
    )
    assert bad_login.status_int == 200
    assert xmlrpc.client.loads(bad_login.body)[0][0] == []


@pytest.mark.parametrize(
    "body,code",
    [
        (xmlrpc.client.dumps(({},), "list_packages").encode(), -32601),
        (xmlrpc.client.dumps(("not a struct",), "search").encode(), -32602),
        (xmlrpc.client.dumps(({"name": ["x"]}, "xor"), "search").encode(), -32602),
        (b"<?xml version='1.0'?><methodCall><methodName>search", -32700),
        (
            b"<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY a 'aaaa'>]><methodCall>"
            b"<methodName>search</methodName><params><param><value><string>&a;</string></value>"
            b"</param></params></methodCall>",
            -32600,
        ),
        (xmlrpc.client.dumps(({"name": ["x" * 70000]},), "search").encode(), -32600),
    ],
    ids=["unknown-method", "bad-params", "bad-operator", "truncated", "doctype", "too-large"],
)
def test_search_refuses_bad_calls_with_a_fault(app, body, code):
    response = rpc(app, "search", body=body, user="admin")
    assert response.status_int == 200
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(response.body)
    assert fault.value.faultCode == code


def test_uploads_to_pypi_still_work_beside_search(app):
    wheel = make_wheel("demo", "1.0")
    assert upload_dist(app, wheel).status_int == 200
    assert file_record(app, wheel[0]) is not None


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("PUT", "/admin/user/carol/", {"password": True}),
        ("POST", "/api/user/password", {"old_password": True, "new_password": "new-pw"}),
        ("POST", "/api/user/password", {"old_password": "x", "new_password": True}),
        ("POST", "/acct/login", {"username": "admin", "password": True}),
        ("POST", "/acct/login", {"username": True, "password": "pw"}),
        ("PUT", "/api/user/mallory/", {"password": True}),
        ("PUT", "/acct/tokenRegister", {"token": True, "password": "pw"}),
    ],
)
def test_a_json_true_where_text_is_expected_is_a_400(make_app, method, path, body):
    # Only 1.x's admin flag may be a JSON boolean; a password or name that is one
    # was passed on as True (a 500 from deep in the access backend).
    app = sql_app(make_app)
    before = access_state(app)
    response = app.request(
        path,
        method=method,
        headers=auth_headers("admin"),
        body=json.dumps(body).encode(),
        content_type="application/json",
        expect_errors=True,
    )
    assert_rejected(response, 400, "must be text")
    assert access_state(app) == before
    assert "ppc_session" not in app.cookies
