"""Item 1: upstream files must never get into a private project (pypi.fallback = cache).

The attack of the review: the private project loses its last local file, a
reader asks for it while upstream offers the same name with a higher version,
then the private file is uploaded again.
"""

from __future__ import annotations

from tests.functional.helpers import JSON_TYPE, auth_headers, close_app, make_wheel, restart, upload_dist

PROJECT = "internal-lib"
PRIVATE = make_wheel("internal-lib", "1.0", payload=b"PRIVATE = 1\n")
EVIL = make_wheel("internal-lib", "99.0", summary="PWNED from upstream", payload=b"EVIL = 1\n")


def fallback_app(make_app, upstream, **extra):
    settings = {
        "pypi.fallback": "cache",
        "pypi.fallback_base_url": upstream.url,
        "pypi.fallback_timeout": "5",
    }
    settings.update(extra)
    return make_app(settings)


def page(app, user="alice", project=PROJECT):
    return app.get(f"/simple/{project}/", headers=auth_headers(user, Accept=JSON_TYPE), expect_errors=True)


def filenames(response) -> set[str]:
    assert response.status_int == 200, (response.status, response.text)
    return {f["filename"] for f in response.json["files"]}


def download(app, filename, user="alice", project=PROJECT):
    return app.get(f"/api/package/{project}/{filename}", headers=auth_headers(user), expect_errors=True)


def test_deleted_private_project_is_not_refilled_from_upstream(make_app, fake_upstream):
    fake_upstream.add("internal-lib", EVIL)
    app = fallback_app(make_app, fake_upstream)
    upload_dist(app, PRIVATE, user="admin")
    assert filenames(page(app)) == {PRIVATE[0]}
    delete = app.delete(f"/api/package/{PROJECT}/{PRIVATE[0]}", headers=auth_headers("admin"))
    assert delete.status_int in (200, 204)

    # The window: no local file. The project stays private: upstream is not asked.
    before = fake_upstream.count()
    assert page(app).status_int == 404
    assert download(app, EVIL[0]).status_int == 404
    assert fake_upstream.count() == before, fake_upstream.paths()

    upload_dist(app, PRIVATE, user="admin")
    assert filenames(page(app)) == {PRIVATE[0]}
    info = app.get(f"/pypi/{PROJECT}/json", headers=auth_headers("alice")).json["info"]
    assert info["version"] == "1.0"
    assert "PWNED" not in (info.get("summary") or "")

    # The marker survives a restart.
    again = restart(app)
    try:
        assert download(again, EVIL[0]).status_int == 404
        assert fake_upstream.count() == before
    finally:
        close_app(again)


def test_a_granted_name_is_never_looked_up_upstream(make_app, fake_upstream):
    # alice-pkg has a grant in the ini (package.alice-pkg.user.alice = rw) but no file yet.
    fake_upstream.add("alice-pkg", make_wheel("alice-pkg", "99.0", payload=b"EVIL\n"))
    app = fallback_app(make_app, fake_upstream)
    assert page(app, project="alice-pkg").status_int == 404
    assert download(app, "alice_pkg-99.0-py3-none-any.whl", project="alice-pkg").status_int == 404
    assert fake_upstream.count() == 0, fake_upstream.paths()


def test_files_cached_before_the_project_became_private_are_hidden(make_app, fake_upstream):
    """A project cached from upstream while it was public, then published here: upstream's
    files are neither listed nor served once a local file exists."""
    fake_upstream.add("internal-lib", EVIL)
    app = fallback_app(make_app, fake_upstream)
    assert filenames(page(app, user="admin")) == {EVIL[0]}
    assert download(app, EVIL[0], user="admin").status_int == 200  # pulled through

    upload_dist(app, PRIVATE, user="admin")
    assert filenames(page(app)) == {PRIVATE[0]}
    assert download(app, EVIL[0]).status_int == 404
    info = app.get(f"/pypi/{PROJECT}/json", headers=auth_headers("alice")).json
    assert info["info"]["version"] == "1.0"
    assert set(info["releases"]) == {"1.0"}


def test_redirect_mode_never_sends_a_private_project_upstream(make_app, fake_upstream):
    fake_upstream.add("internal-lib", EVIL)
    app = fallback_app(make_app, fake_upstream, **{"pypi.fallback": "redirect"})
    upload_dist(app, PRIVATE, user="admin")
    app.delete(f"/api/package/{PROJECT}/{PRIVATE[0]}", headers=auth_headers("admin"))
    response = page(app)
    assert response.status_int == 404, (response.status, response.headers.get("Location"))
    assert download(app, EVIL[0]).status_int == 404
    # A granted name with no file at all: the same.
    granted = page(app, project="alice-pkg")
    assert granted.status_int == 404, granted.headers.get("Location")
