"""Item 5 (and 11, 16): no body parsing for callers that will be refused; no anonymous 500s.

The review's attack: an anonymous multipart body of many tiny parts costs
seconds of CPU before the 401. Here a body WebOb cannot parse stands for it:
a server that parses before it checks answers 400 (it parsed), one that
checks first answers 401 without looking at the body.
"""

from __future__ import annotations

from tests.functional.helpers import (
    assert_rejected,
    auth_headers,
    make_wheel,
    storage_files,
    upload,
    upload_dist,
)

from .helpers import sql_app

BOUNDARY = "xXxBOUNDARYxXx"
WHEEL = make_wheel("alice-pkg", "1.0")
FILE_URL = f"/api/package/alice-pkg/{WHEEL[0]}"


def many_parts(count: int) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n' for i in range(count)
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def post(app, path, body, user=None, content_type=f"multipart/form-data; boundary={BOUNDARY}", **headers):
    # Built by hand: WebTest would re-encode a multipart body with its own boundary.
    request = app.RequestClass.blank(path, method="POST", body=body, headers=auth_headers(user, **headers))
    request.content_type = content_type
    return app.do_request(request, status="*", expect_errors=True)


def test_anonymous_upload_is_refused_before_the_body_is_parsed(app, tmp_path):
    # ":action" sent as a file: a server that parsed the form first answers 400.
    odd = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name=":action"; filename="a"\r\n'
        f"\r\nfile_upload\r\n--{BOUNDARY}--\r\n"
    ).encode()
    for path in ("/", "/simple/", "/pypi"):
        assert_rejected(post(app, path, odd), 401, "login required")
    odd_version = odd.replace(b'":action"', b'"version"')
    assert_rejected(post(app, FILE_URL, odd_version), 401, "login required")
    # An oversized Content-Length from an anonymous caller: 401, not 413.
    assert not storage_files(tmp_path / "packages")


def test_oversized_anonymous_upload_gets_401_before_413(make_app):
    app = make_app({"pypi.max_upload_size": "1000"})
    big = many_parts(1) + b"x" * (2 * 1024 * 1024)
    assert post(app, "/", big).status_int == 401
    assert post(app, "/", big, user="admin").status_int == 413


def test_too_many_form_parts_are_refused_for_writers_too(app, tmp_path):
    response = post(app, "/", many_parts(5000), user="admin")
    assert_rejected(response, 400, "too many form parts")
    assert not storage_files(tmp_path / "packages")
    # A normal twine upload still works.
    upload_dist(app, WHEEL, user="alice")


def test_yank_bodies_that_broke_the_server_are_4xx(app):
    upload_dist(app, WHEEL, user="alice")
    bogus = "application/json; charset=bogus"
    deep = b"[" * 100_000 + b"]" * 100_000
    for body, ctype in ((b'{"reason": "x"}', bogus), (deep, "application/json")):
        anonymous = post(app, FILE_URL + "/yank", body, content_type=ctype)
        assert anonymous.status_int == 401, anonymous.status
        writer = post(app, FILE_URL + "/yank", body, user="alice", content_type=ctype)
        assert_rejected(writer, 400, "not valid json")
    assert not app.app.registry.service.index.get(WHEEL[0]).yanked


def test_upload_only_token_cannot_yank(make_app, tmp_path):
    app = sql_app(make_app, tmp_path)
    access = app.app.registry.service.access
    token, _ = access.create_token("alice", upload=True)
    headers = auth_headers("__token__", token)
    response = upload(app, *WHEEL, user="__token__", password=token)
    assert response.status_int == 200, response.text
    yank = app.post(
        FILE_URL + "/yank",
        b'{"reason": "x"}',
        headers=headers,
        content_type="application/json",
        expect_errors=True,
    )
    assert yank.status_int == 403, yank.status
    assert not app.app.registry.service.index.get(WHEEL[0]).yanked
    # alice herself (password) still can.
    assert (
        post(
            app, FILE_URL + "/yank", b'{"reason": "x"}', user="alice", content_type="application/json"
        ).status_int
        == 200
    )
