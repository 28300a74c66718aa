"""pypicloud 1.x's index URLs (issue 11 item 2) and the mirroring serial (item 6).

``/pypi/`` and ``/`` (project list), ``/pypi/<p>/`` and ``/<p>/`` (project
pages), ``/simple/<p>/json`` and ``/<p>/json`` (1.x's JSON, pip-tools' hash
source), ``/packages/`` (every file, buildout's find-links), all with the access
checks of ``/simple/``; fixed routes win over project names.
"""

from __future__ import annotations

import pytest

from .helpers import (
    HTML_TYPE,
    JSON_TYPE,
    auth_headers,
    make_sdist,
    make_wheel,
    service,
    sha256,
    simple_json,
    upload_dist,
)
from .test_simple_api import parse

WHEEL = make_wheel("Demo_Pkg", "1.0")
SDIST = make_sdist("Demo_Pkg", "1.0")
SECRET = make_wheel("alice-pkg", "2.0")


def get(app, path, user="admin", accept=None, **kw):
    headers = auth_headers(user, Accept=accept) if accept else auth_headers(user)
    return app.get(path, headers=headers, expect_errors=True, **kw)


@pytest.fixture
def demo_app(make_app):
    # Nobody reads by default; bob reads demo-pkg; alice-pkg is alice's (and admin's).
    app = make_app({"pypi.default_read": "", "package.demo-pkg.user.bob": "r"})
    for dist in (WHEEL, SDIST):
        upload_dist(app, dist)
    upload_dist(app, SECRET, user="alice")
    return app


def hrefs(response) -> dict[str, str]:
    return {a["_text"]: a["href"] for a in parse(response.text).links}


@pytest.mark.parametrize("path", ["/pypi/demo-pkg/", "/demo-pkg/"])
def test_project_page_aliases_serve_the_simple_page(demo_app, path):
    simple_page = get(demo_app, "/simple/demo-pkg/")
    page = get(demo_app, path)
    assert page.status_int == 200, page.status
    assert page.content_type == "text/html"
    assert page.body == simple_page.body
    links = hrefs(page)
    assert set(links) == {WHEEL[0], SDIST[0]}
    assert links[WHEEL[0]].endswith("#sha256=" + sha256(WHEEL[1]))
    # pip's Accept gets PEP 691 JSON there too.
    doc = get(demo_app, path, accept=JSON_TYPE)
    assert doc.content_type == JSON_TYPE
    assert {f["filename"] for f in doc.json["files"]} == {WHEEL[0], SDIST[0]}


@pytest.mark.parametrize(
    "path,canonical",
    [
        ("/pypi/Demo_Pkg/", "/pypi/demo-pkg/"),
        ("/Demo.Pkg/", "/demo-pkg/"),
        ("/Demo_Pkg/json", "/demo-pkg/json"),
        ("/simple/DEMO_pkg/json", "/simple/demo-pkg/json"),
    ],
)
def test_aliases_redirect_to_the_canonical_name(demo_app, path, canonical):
    response = get(demo_app, path)
    assert response.status_int == 301
    assert response.headers["Location"].endswith(canonical)


@pytest.mark.parametrize("path", ["/pypi/", "/"])
def test_project_list_aliases(demo_app, path):
    page = get(demo_app, path)
    assert page.status_int == 200 and page.content_type == "text/html"
    assert set(hrefs(page)) == {"Demo_Pkg", "alice-pkg"}
    # A reader who may not read alice-pkg does not see it, as on /simple/.
    assert set(hrefs(get(demo_app, path, user="bob"))) == {"Demo_Pkg"}
    doc = get(demo_app, path, user="bob", accept=JSON_TYPE)
    assert [p["name"] for p in doc.json["projects"]] == ["Demo_Pkg"]


def test_pypi_without_slash_redirects(demo_app):
    response = get(demo_app, "/pypi")
    assert response.status_int == 301 and response.headers["Location"].endswith("/pypi/")


@pytest.mark.parametrize(
    "path", ["/pypi/alice-pkg/", "/alice-pkg/", "/alice-pkg/json", "/simple/alice-pkg/json"]
)
def test_aliases_check_access(demo_app, path):
    anonymous = get(demo_app, path, user=None)
    assert anonymous.status_int == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert get(demo_app, path, user="bob").status_int == 403
    assert get(demo_app, path, user="alice").status_int == 200


@pytest.mark.parametrize("path", ["/pypi/", "/", "/packages/"])
def test_lists_hide_what_the_caller_cannot_read(demo_app, path):
    assert get(demo_app, path, user=None).status_int == get(demo_app, "/simple/", user=None).status_int
    assert "alice-pkg" not in get(demo_app, path, user=None).text
    assert "alice" not in get(demo_app, path, user="bob").text


@pytest.mark.parametrize(
    "path", ["/pypi/nothing-here/", "/nothing-here/", "/nothing-here/json", "/simple/nothing-here/json"]
)
def test_unknown_project_is_404(demo_app, path):
    assert get(demo_app, path).status_int == 404


@pytest.mark.parametrize("path", ["/demo-pkg/json", "/simple/demo-pkg/json"])
def test_project_json_has_the_1x_shape(demo_app, path):
    response = get(demo_app, path)
    assert response.status_int == 200 and response.content_type == "application/json"
    doc = response.json
    assert doc["info"]["name"] == "Demo_Pkg"
    assert doc["info"]["version"] == "1.0"
    assert doc["info"]["license"] == "" and doc["info"]["classifiers"] == []
    files = {f["filename"]: f for f in doc["releases"]["1.0"]}
    assert set(files) == {WHEEL[0], SDIST[0]}
    assert files[WHEEL[0]]["digests"]["sha256"] == sha256(WHEEL[1])
    assert files[WHEEL[0]]["packagetype"] == "bdist_wheel"
    assert files[SDIST[0]]["packagetype"] == "sdist"
    assert {f["filename"] for f in doc["urls"]} == set(files)
    # The same document as /pypi/<p>/json, with 1.x's keys.
    current = get(demo_app, "/pypi/demo-pkg/json").json
    assert current["releases"] == doc["releases"]
    assert response.headers["X-PyPI-Last-Serial"] == str(doc["last_serial"])


def test_packages_page_lists_every_readable_file(demo_app):
    page = get(demo_app, "/packages/")
    assert page.status_int == 200 and page.content_type == "text/html"
    links = hrefs(page)
    assert set(links) == {WHEEL[0], SDIST[0], SECRET[0]}
    assert links[SDIST[0]].endswith("#sha256=" + sha256(SDIST[1]))
    download = demo_app.get(links[WHEEL[0]].split("#")[0], headers=auth_headers("admin"))
    assert download.body == WHEEL[1]
    assert set(hrefs(get(demo_app, "/packages/", user="bob"))) == {WHEEL[0], SDIST[0]}
    moved = get(demo_app, "/packages")
    assert moved.status_int == 301 and moved.headers["Location"].endswith("/packages/")


@pytest.mark.parametrize("name", ["admin", "api", "login", "health", "simple", "packages", "pypi"])
def test_fixed_routes_win_over_project_names(make_app, name):
    app = make_app()
    upload_dist(app, make_wheel(name, "1.0"))
    # The project is served under /simple/ and /pypi/ ...
    assert get(app, f"/simple/{name}/").status_int == 200
    assert get(app, f"/pypi/{name}/").status_int == 200
    # ... but /<name>/ and /<name>/json stay what the fixed route makes of them.
    project_page = get(app, f"/simple/{name}/")
    assert get(app, f"/{name}/").body != project_page.body
    assert get(app, f"/{name}/", accept=JSON_TYPE).body != get(app, f"/simple/{name}/", accept=JSON_TYPE).body
    project_json = get(app, f"/simple/{name}/json")
    assert project_json.status_int == 200
    assert get(app, f"/{name}/json").body != project_json.body


def test_fixed_route_added_after_the_root_routes_still_wins(tmp_path):
    # A route another module adds later (after pypicloud.routes) is not shadowed
    # by the root alias /<project>/: its predicate lets Pyramid try the next route.
    import webtest
    from pyramid.response import Response

    import pypicloud

    from .helpers import base_settings

    config = pypicloud.make_config({"here": str(tmp_path)}, base_settings(tmp_path))
    config.add_route("late", "/late/")
    config.add_view(lambda request: Response("the late route"), route_name="late")
    app = webtest.TestApp(config.make_wsgi_app())
    try:
        assert app.get("/late/", headers=auth_headers("admin")).text == "the late route"
    finally:
        config.registry.service.index.close()


# ---------------------------------------------------------------------------
# Mirroring serial (item 6)
# ---------------------------------------------------------------------------
def test_serial_in_json_and_headers(demo_app):
    generation = service(demo_app).index.generation()
    index = simple_json(demo_app)
    assert index.headers["X-PyPI-Last-Serial"] == str(generation)
    assert index.json["meta"]["_last-serial"] == generation
    assert all(p["_last-serial"] == generation for p in index.json["projects"])
    page = simple_json(demo_app, "/simple/demo-pkg/")
    assert page.headers["X-PyPI-Last-Serial"] == str(generation)
    assert page.json["meta"]["_last-serial"] == generation
    html = get(demo_app, "/simple/demo-pkg/", accept=HTML_TYPE)
    assert html.headers["X-PyPI-Last-Serial"] == str(generation)
    api = get(demo_app, "/pypi/demo-pkg/json")
    assert api.headers["X-PyPI-Last-Serial"] == str(generation) == str(api.json["last_serial"])
    # A change moves the serial, also on pages served from the page cache.
    upload_dist(demo_app, make_wheel("Demo_Pkg", "1.1"))
    later = simple_json(demo_app, "/simple/demo-pkg/")
    assert int(later.headers["X-PyPI-Last-Serial"]) > generation
    assert later.json["meta"]["_last-serial"] == int(later.headers["X-PyPI-Last-Serial"])


def test_json_api_links_files_under_packages(demo_app):
    doc = get(demo_app, "/pypi/demo-pkg/json").json
    wheel = next(f for f in doc["urls"] if f["filename"] == WHEEL[0])
    path = wheel["url"].split("localhost", 1)[1]
    assert path == f"/packages/demo-pkg/{WHEEL[0]}"
    download = get(demo_app, path)
    assert download.status_int == 200 and download.body == WHEEL[1]
    assert download.headers["ETag"] == f'"{sha256(WHEEL[1])}"'
    # The same access checks as /api/package/.
    secret = f"/packages/alice-pkg/{SECRET[0]}"
    assert get(demo_app, secret, user=None).status_int == 401
    assert get(demo_app, secret, user="bob").status_int == 403
    assert get(demo_app, secret, user="alice").body == SECRET[1]
    assert get(demo_app, "/packages/demo-pkg/nothing-1.0.tar.gz").status_int == 404
