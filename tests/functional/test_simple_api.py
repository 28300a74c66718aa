"""The simple repository API (SPEC section 4): PEP 503 / 691 / 592 / 629 / 658 / 700 / 714."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from .helpers import (
    HTML_TYPE,
    JSON_TYPE,
    auth_headers,
    basic,
    make_sdist,
    make_wheel,
    project_names,
    sha256,
    simple_json,
    upload_dist,
)

WHEEL = make_wheel("demo", "1.0", requires_python=">=3.8", summary="Demo wheel")
SDIST = make_sdist("demo", "1.0", requires_python=">=3.8")
OLD_SDIST = make_sdist("demo", "0.9", metadata_version="2.1", requires_python=None)


class Links(HTMLParser):
    """Collect every <a> with its (unescaped) attributes and text, and <meta> tags."""

    def __init__(self):
        super().__init__()
        self.links: list[dict] = []
        self.meta: dict[str, str] = {}
        self._current = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._current = dict(attrs)
            self._current["_text"] = ""
            self.links.append(self._current)
        elif tag == "meta":
            attrs = dict(attrs)
            if "name" in attrs:
                self.meta[attrs["name"]] = attrs.get("content")

    def handle_data(self, data):
        if self._current is not None:
            self._current["_text"] += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._current = None


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def get(app, path, user="admin", accept=HTML_TYPE, **kw):
    headers = auth_headers(user, Accept=accept) if accept else auth_headers(user)
    headers.update(kw.pop("headers", {}))
    return app.get(path, headers=headers, expect_errors=True, **kw)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def demo_app(app):
    """An app holding demo 1.0 (wheel and reliable sdist) and demo 0.9 (an old sdist)."""
    for dist in (WHEEL, SDIST, OLD_SDIST):
        upload_dist(app, dist)
    return app


# ---------------------------------------------------------------------------
# Content negotiation (PEP 691)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "accept,expected",
    [
        (JSON_TYPE, JSON_TYPE),
        (HTML_TYPE, HTML_TYPE),
        ("text/html", "text/html"),
        ("application/vnd.pypi.simple.latest+json", JSON_TYPE),
        ("application/vnd.pypi.simple.latest+html", HTML_TYPE),
        # pip's header
        (f"{JSON_TYPE}, {HTML_TYPE}; q=0.1, text/html; q=0.01", JSON_TYPE),
        # q-values decide ...
        (f"{JSON_TYPE}; q=0.2, text/html", "text/html"),
        (f"{HTML_TYPE}; q=0.9, {JSON_TYPE}; q=0.8", HTML_TYPE),
        # ... and HTML wins a tie, whatever the order in the header (SPEC section 4:
        # JSON only when ranked above every HTML type; curl and old clients send */*)
        (f"text/html, {JSON_TYPE}", "text/html"),
        (f"{JSON_TYPE}, text/html", "text/html"),
        (f"{HTML_TYPE}, {JSON_TYPE}", HTML_TYPE),
        (f"{JSON_TYPE}, {HTML_TYPE}", HTML_TYPE),
        (f"{JSON_TYPE}, */*", "text/html"),
        (f"{JSON_TYPE}, */*;q=0.9", JSON_TYPE),
        ("*/*", "text/html"),
        ("application/*", HTML_TYPE),
        ("text/*", "text/html"),
        ("image/png, text/html;q=0.5", "text/html"),
    ],
)
@pytest.mark.parametrize("path", ["/simple/", "/simple/demo/"])
def test_accept_chooses_the_format(demo_app, path, accept, expected):
    response = get(demo_app, path, accept=accept)
    assert response.status_int == 200, response.status
    assert response.content_type == expected
    assert "Accept" in [v.strip() for v in response.headers["Vary"].split(",")]
    if expected == JSON_TYPE:
        assert response.json["meta"]["api-version"].startswith("1.")
    else:
        assert response.headers["Content-Type"].endswith("charset=utf-8")
        assert parse(response.text).meta["pypi:repository-version"].startswith("1.")


@pytest.mark.parametrize(
    "accept", ["image/png", "application/json", "text/plain", f"{JSON_TYPE};q=0, text/html;q=0"]
)
@pytest.mark.parametrize("path", ["/simple/", "/simple/demo/"])
def test_nothing_acceptable_is_406(demo_app, path, accept):
    response = get(demo_app, path, accept=accept)
    assert response.status_int == 406
    assert JSON_TYPE in response.text


@pytest.mark.parametrize(
    "fmt,expected", [(JSON_TYPE, JSON_TYPE), (HTML_TYPE, HTML_TYPE), ("text/html", "text/html")]
)
def test_format_query_parameter(demo_app, fmt, expected):
    # ?format= wins over Accept.
    response = get(demo_app, "/simple/demo/", accept="image/png", params={"format": fmt})
    assert response.status_int == 200
    assert response.content_type == expected


def test_unknown_format_query_parameter_is_406(demo_app):
    response = get(demo_app, "/simple/demo/", params={"format": "application/xml"})
    assert response.status_int == 406


@pytest.mark.parametrize("headers", [{}, {"Accept": ""}])
@pytest.mark.parametrize("path", ["/simple/", "/simple/demo/"])
def test_no_accept_header_gets_html(demo_app, path, headers):
    # As PyPI and pypicloud 1.x answer: zc.buildout, setuptools' PackageIndex and
    # curl send no Accept and only read HTML.
    response = get(demo_app, path, accept=None, headers=headers)
    assert response.status_int == 200
    assert response.content_type == "text/html"
    links = parse(response.text).links
    assert links and (
        "demo" in [a["_text"] for a in links] or "demo-1.0-py3-none-any.whl" in [a["_text"] for a in links]
    )


def test_html_and_json_pages_have_their_own_etags(demo_app):
    html = get(demo_app, "/simple/demo/", accept=None)
    doc = get(demo_app, "/simple/demo/", accept=JSON_TYPE)
    assert html.headers["ETag"] != doc.headers["ETag"]
    # The HTML page's ETag does not validate a JSON request, nor the reverse.
    again = get(demo_app, "/simple/demo/", accept=JSON_TYPE, headers={"If-None-Match": html.headers["ETag"]})
    assert again.status_int == 200 and again.content_type == JSON_TYPE
    same = get(demo_app, "/simple/demo/", accept="*/*", headers={"If-None-Match": html.headers["ETag"]})
    assert same.status_int == 304


def test_json_and_html_describe_the_same_files(demo_app):
    html = parse(get(demo_app, "/simple/demo/").text)
    doc = get(demo_app, "/simple/demo/", accept=JSON_TYPE).json
    assert sorted(a["_text"] for a in html.links) == sorted(f["filename"] for f in doc["files"])
    for link in html.links:
        entry = next(f for f in doc["files"] if f["filename"] == link["_text"])
        url, _, fragment = link["href"].partition("#")
        assert url == entry["url"]
        assert fragment == "sha256=" + entry["hashes"]["sha256"]


# ---------------------------------------------------------------------------
# Canonical names and redirects (PEP 503)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["Foo_Bar", "FOO-BAR", "foo.bar", "foo__bar", "Foo-_-Bar"])
def test_non_canonical_project_url_is_301_to_canonical(app, spelling):
    upload_dist(app, make_wheel("Foo_Bar", "1.0"))
    response = get(app, f"/simple/{spelling}/")
    assert response.status_int == 301
    assert path_of(response.headers["Location"]) == "/simple/foo-bar/"
    assert get(app, "/simple/foo-bar/").status_int == 200


def test_redirect_keeps_the_query_string(demo_app):
    response = get(demo_app, "/simple/DEMO/", params={"format": JSON_TYPE})
    assert response.status_int == 301
    location = urlsplit(response.headers["Location"])
    assert location.path == "/simple/demo/"
    assert parse_qs(location.query) == {"format": [JSON_TYPE]}
    followed = get(demo_app, path_of(response.headers["Location"]))
    assert followed.status_int == 200 and followed.content_type == JSON_TYPE


@pytest.mark.parametrize(
    "path,target",
    [("/simple", "/simple/"), ("/simple/demo", "/simple/demo/"), ("/simple/Demo", "/simple/demo/")],
)
def test_missing_trailing_slash_redirects(demo_app, path, target):
    response = get(demo_app, path)
    assert response.status_int in (301, 302, 307, 308)
    assert path_of(response.headers["Location"]) == target


def test_display_name_is_the_uploaded_spelling(app):
    upload_dist(app, make_wheel("Foo_Bar", "1.0"))
    doc = get(app, "/simple/", accept=JSON_TYPE).json
    assert "Foo_Bar" in [p["name"] for p in doc["projects"]]
    html = parse(get(app, "/simple/").text)
    link = next(a for a in html.links if a["_text"] == "Foo_Bar")
    assert path_of(link["href"]) == "/simple/foo-bar/"
    assert parse(get(app, "/simple/foo-bar/").text).meta["pypi:repository-version"]


# ---------------------------------------------------------------------------
# File links: hashes, requires-python, yanked, core metadata
# ---------------------------------------------------------------------------
def test_html_links_carry_every_attribute(demo_app):
    response = get(demo_app, "/simple/demo/")
    html = response.text
    links = {a["_text"]: a for a in parse(html).links}
    assert set(links) == {WHEEL[0], SDIST[0], OLD_SDIST[0]}
    for filename, data in (WHEEL, SDIST, OLD_SDIST):
        link = links[filename]
        assert link["href"].endswith(f"#sha256={sha256(data)}")
        assert "data-yanked" not in link
    # requires-python is HTML-escaped in the page (and means >=3.8 once unescaped).
    assert 'data-requires-python="&gt;=3.8"' in html
    assert '>=3.8"' not in html
    assert links[WHEEL[0]]["data-requires-python"] == ">=3.8"
    assert "data-requires-python" not in links[OLD_SDIST[0]]
    # PEP 658 / 714: wheels and reliable sdists (Metadata-Version >= 2.2) only.
    for filename in (WHEEL[0], SDIST[0]):
        link = links[filename]
        assert re.fullmatch(r"sha256=[0-9a-f]{64}", link["data-core-metadata"])
        assert link["data-dist-info-metadata"] == link["data-core-metadata"]
    assert "data-core-metadata" not in links[OLD_SDIST[0]]
    assert "data-dist-info-metadata" not in links[OLD_SDIST[0]]


@pytest.mark.parametrize("dist", [WHEEL, SDIST], ids=["wheel", "sdist"])
def test_metadata_file_is_served_and_matches_its_hash(demo_app, dist):
    filename, data = dist
    links = {a["_text"]: a for a in parse(get(demo_app, "/simple/demo/").text).links}
    link = links[filename]
    url = link["href"].partition("#")[0]
    metadata = get(demo_app, path_of(url) + ".metadata", accept=None)
    assert metadata.status_int == 200
    assert link["data-core-metadata"] == "sha256=" + sha256(metadata.body)
    assert metadata.body.startswith(b"Metadata-Version: ")
    assert b"Name: demo" in metadata.body and b"Version: 1.0" in metadata.body
    doc = get(demo_app, "/simple/demo/", accept=JSON_TYPE).json
    entry = next(f for f in doc["files"] if f["filename"] == filename)
    assert entry["core-metadata"] == {"sha256": sha256(metadata.body)}
    assert entry["dist-info-metadata"] == entry["core-metadata"]


def test_no_metadata_file_for_unreliable_sdist(demo_app):
    response = get(demo_app, f"/api/package/demo/{OLD_SDIST[0]}.metadata", accept=None)
    assert response.status_int == 404


def test_metadata_file_needs_read_permission(demo_app):
    url = f"/api/package/demo/{WHEEL[0]}.metadata"
    assert get(demo_app, url, user=None, accept=None).status_int == 401


def test_json_file_entries(demo_app):
    response = get(demo_app, "/simple/demo/", accept=JSON_TYPE)
    assert response.content_type == JSON_TYPE
    doc = response.json
    assert doc["meta"]["api-version"] == "1.1"
    assert doc["name"] == "demo"
    assert doc["versions"] == ["0.9", "1.0"]
    files = {f["filename"]: f for f in doc["files"]}
    assert set(files) == {WHEEL[0], SDIST[0], OLD_SDIST[0]}
    for filename, data in (WHEEL, SDIST, OLD_SDIST):
        entry = files[filename]
        assert entry["hashes"] == {"sha256": sha256(data)}
        assert entry["size"] == len(data)
        assert entry["yanked"] is False
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", entry["upload-time"])
        # /packages/<p>/<f> since issue 11 (bandersnatch; pip-tools matches JSON API URLs).
        assert path_of(entry["url"]) == f"/packages/demo/{filename}"
    assert files[WHEEL[0]]["requires-python"] == ">=3.8"
    assert files[OLD_SDIST[0]]["requires-python"] is None
    assert files[OLD_SDIST[0]]["core-metadata"] is False


def test_json_project_list(demo_app):
    upload_dist(demo_app, make_wheel("Other.Project", "2.0"))
    doc = get(demo_app, "/simple/", accept=JSON_TYPE).json
    assert doc["meta"]["api-version"].startswith("1.")
    assert sorted(p["name"] for p in doc["projects"]) == ["Other.Project", "demo"]
    html = parse(get(demo_app, "/simple/").text)
    assert sorted(path_of(a["href"]) for a in html.links) == ["/simple/demo/", "/simple/other-project/"]


def _yank(app, filename, reason=None, user="admin", project="demo", json_body=False):
    url = f"/api/package/{project}/{filename}/yank"
    if json_body:
        return app.post_json(url, {"reason": reason}, headers=basic(user), expect_errors=True)
    params = {"reason": reason} if reason is not None else {}
    return app.post(url, params=params, headers=basic(user), expect_errors=True)


def test_yanked_file_is_marked_with_its_reason(demo_app):
    before = get(demo_app, "/simple/demo/").headers["ETag"]
    assert _yank(demo_app, WHEEL[0], 'Broken <build> & "bad" on Windows').status_int == 200
    response = get(demo_app, "/simple/demo/")
    assert response.headers["ETag"] != before
    links = {a["_text"]: a for a in parse(response.text).links}
    assert links[WHEEL[0]]["data-yanked"] == 'Broken <build> & "bad" on Windows'
    assert "<build>" not in response.text  # escaped in the page
    assert "data-yanked" not in links[SDIST[0]]
    files = {f["filename"]: f for f in get(demo_app, "/simple/demo/", accept=JSON_TYPE).json["files"]}
    assert files[WHEEL[0]]["yanked"] == 'Broken <build> & "bad" on Windows'
    assert files[SDIST[0]]["yanked"] is False


def test_yank_without_reason_and_unyank(demo_app):
    assert _yank(demo_app, SDIST[0]).status_int == 200
    links = {a["_text"]: a for a in parse(get(demo_app, "/simple/demo/").text).links}
    assert links[SDIST[0]]["data-yanked"] in ("", None)  # present, empty value
    assert "data-yanked" in get(demo_app, "/simple/demo/").text
    files = {f["filename"]: f for f in get(demo_app, "/simple/demo/", accept=JSON_TYPE).json["files"]}
    assert files[SDIST[0]]["yanked"] is True
    unyank = demo_app.delete(f"/api/package/demo/{SDIST[0]}/yank", headers=basic("admin"))
    assert unyank.status_int == 200
    files = {f["filename"]: f for f in get(demo_app, "/simple/demo/", accept=JSON_TYPE).json["files"]}
    assert files[SDIST[0]]["yanked"] is False
    assert "data-yanked" not in get(demo_app, "/simple/demo/").text


def test_yank_with_json_body(demo_app):
    assert _yank(demo_app, WHEEL[0], "use 1.1", json_body=True).status_int == 200
    files = {f["filename"]: f for f in get(demo_app, "/simple/demo/", accept=JSON_TYPE).json["files"]}
    assert files[WHEEL[0]]["yanked"] == "use 1.1"


def test_yank_survives_a_restart_and_a_rebuild(demo_app):
    from .helpers import close_app, restart, service

    _yank(demo_app, WHEEL[0], "broken")
    service(demo_app).rebuild()
    fresh = restart(demo_app)
    try:
        files = {f["filename"]: f for f in get(fresh, "/simple/demo/", accept=JSON_TYPE).json["files"]}
        assert files[WHEEL[0]]["yanked"] == "broken"
    finally:
        close_app(fresh)


# ---------------------------------------------------------------------------
# Unknown and unreadable projects
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("accept", [JSON_TYPE, HTML_TYPE])
def test_unknown_project_is_404(demo_app, accept):
    assert get(demo_app, "/simple/nope/", accept=accept).status_int == 404
    assert get(demo_app, "/simple/nope/", user=None, accept=accept).status_int in (401, 404)


def test_default_read_authenticated_anonymous_gets_401(demo_app):
    # The product default is pypi.default_read = authenticated.
    response = get(demo_app, "/simple/demo/", user=None)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert get(demo_app, "/simple/demo/", user="bob").status_int == 200
    assert "demo" not in get(demo_app, "/simple/", user=None, accept=JSON_TYPE).text


def test_default_read_everyone_lets_anonymous_read(make_app):
    app = make_app({"pypi.default_read": "everyone"})
    upload_dist(app, WHEEL)
    assert get(app, "/simple/demo/", user=None).status_int == 200
    assert "demo" in project_names(app, user=None)


@pytest.fixture
def restricted_app(make_app):
    """Nobody reads by default; alice has rw on alice-pkg; demo is public to nobody."""
    app = make_app({"pypi.default_read": ""})
    upload_dist(app, make_wheel("alice-pkg", "1.0"), user="alice")
    upload_dist(app, WHEEL)
    return app


def test_restricted_project_401_anonymous_403_other_user(restricted_app):
    app = restricted_app
    anonymous = get(app, "/simple/alice-pkg/", user=None)
    assert anonymous.status_int == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    forbidden = get(app, "/simple/alice-pkg/", user="bob")
    assert forbidden.status_int == 403
    assert "WWW-Authenticate" not in forbidden.headers
    assert get(app, "/simple/alice-pkg/", user="alice").status_int == 200
    assert get(app, "/simple/alice-pkg/", user="admin").status_int == 200


def test_cached_page_still_checks_permissions(restricted_app):
    app = restricted_app
    # alice's request renders and caches the page; bob must not get it from the cache.
    for accept in (JSON_TYPE, HTML_TYPE):
        assert get(app, "/simple/alice-pkg/", user="alice", accept=accept).status_int == 200
        assert get(app, "/simple/alice-pkg/", user="bob", accept=accept).status_int == 403
        assert get(app, "/simple/alice-pkg/", user=None, accept=accept).status_int == 401


def test_unreadable_projects_are_absent_from_the_index(restricted_app):
    app = restricted_app
    assert project_names(app, user="admin") == ["alice-pkg", "demo"]
    assert project_names(app, user="alice") == ["alice-pkg"]
    assert project_names(app, user="bob") == []
    assert project_names(app, user=None) == []
    html = get(app, "/simple/", user="bob").text
    assert "alice-pkg" not in html and "demo" not in html
    # The cached page of one user is never served to another.
    assert project_names(app, user="alice") == ["alice-pkg"]


def test_wrong_password_on_index_reads_as_anonymous_as_in_1x(demo_app):
    # Changed by issue 10 (was 401): the anonymous listing, as pypicloud 1.x gave.
    response = demo_app.get("/simple/", headers=basic("bob", "wrong"), expect_errors=True)
    assert response.status_int == 200
    anonymous = demo_app.get("/simple/", expect_errors=True)
    assert response.text == anonymous.text


# ---------------------------------------------------------------------------
# Caching: ETag, 304, Cache-Control, freshness after an upload
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/simple/", "/simple/demo/"])
@pytest.mark.parametrize("accept", [JSON_TYPE, HTML_TYPE])
def test_etag_and_304(demo_app, path, accept):
    first = get(demo_app, path, accept=accept)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    cache_control = first.headers["Cache-Control"]
    assert "max-age=0" in cache_control and "must-revalidate" in cache_control
    again = get(demo_app, path, accept=accept, headers={"If-None-Match": etag})
    assert again.status_int == 304
    assert again.body == b""
    assert again.headers["ETag"] == etag
    other = get(demo_app, path, accept=accept, headers={"If-None-Match": '"something-else"'})
    assert other.status_int == 200 and other.body == first.body


def test_etag_differs_between_formats(demo_app):
    json_tag = get(demo_app, "/simple/demo/", accept=JSON_TYPE).headers["ETag"]
    html_tag = get(demo_app, "/simple/demo/", accept=HTML_TYPE).headers["ETag"]
    assert json_tag != html_tag
    # A JSON ETag does not revalidate the HTML page.
    response = get(demo_app, "/simple/demo/", accept=HTML_TYPE, headers={"If-None-Match": json_tag})
    assert response.status_int == 200


def test_304_still_checks_permissions(restricted_app):
    etag = get(restricted_app, "/simple/alice-pkg/", user="alice").headers["ETag"]
    response = get(restricted_app, "/simple/alice-pkg/", user="bob", headers={"If-None-Match": etag})
    assert response.status_int == 403


@pytest.mark.parametrize("accept", [JSON_TYPE, HTML_TYPE])
def test_new_upload_changes_etag_and_shows_at_once(demo_app, accept):
    page_before = get(demo_app, "/simple/demo/", accept=accept)
    index_before = get(demo_app, "/simple/", accept=accept)
    new = make_wheel("demo", "2.0")
    upload_dist(demo_app, new)
    page = get(
        demo_app, "/simple/demo/", accept=accept, headers={"If-None-Match": page_before.headers["ETag"]}
    )
    assert page.status_int == 200
    assert page.headers["ETag"] != page_before.headers["ETag"]
    assert new[0] in page.text
    # A new project shows in the list at once, too.
    upload_dist(demo_app, make_wheel("brand-new", "0.1"))
    index = get(demo_app, "/simple/", accept=accept, headers={"If-None-Match": index_before.headers["ETag"]})
    assert index.status_int == 200
    assert "brand-new" in index.text


def test_delete_removes_the_file_from_the_page_at_once(demo_app):
    before = get(demo_app, "/simple/demo/", accept=JSON_TYPE)
    assert demo_app.delete(f"/api/package/demo/{WHEEL[0]}", headers=basic("admin")).status_int == 200
    after = get(
        demo_app, "/simple/demo/", accept=JSON_TYPE, headers={"If-None-Match": before.headers["ETag"]}
    )
    assert after.status_int == 200
    assert WHEEL[0] not in [f["filename"] for f in after.json["files"]]


def test_head_requests(demo_app):
    for path in ("/simple/", "/simple/demo/"):
        response = demo_app.head(path, headers=auth_headers("admin", Accept=JSON_TYPE))
        assert response.status_int == 200
        assert response.headers["ETag"]
        assert response.body == b""


def test_pages_are_the_same_after_a_restart(demo_app):
    from .helpers import close_app, restart

    before = get(demo_app, "/simple/demo/", accept=JSON_TYPE)
    fresh = restart(demo_app)
    try:
        after = get(fresh, "/simple/demo/", accept=JSON_TYPE)
        assert after.json["files"] == before.json["files"]
        assert [p["name"] for p in simple_json(fresh).json["projects"]] == ["demo"]
    finally:
        close_app(fresh)
