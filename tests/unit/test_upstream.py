"""Pure logic of the upstream fallback (SPEC section 9): page parsing, URLs, settings, memo."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest

from pypicloud import upstream
from pypicloud.errors import ConfigError
from pypicloud.settings import Settings
from pypicloud.upstream import (
    FallbackPolicy,
    PageMemo,
    SingleFlight,
    UpstreamClient,
    UpstreamError,
    UpstreamFile,
    UpstreamProject,
    UpstreamUnavailable,
    distributions_of,
    fallback_from_settings,
    parse_html_page,
    parse_json_page,
    parse_project_page,
    project_url,
)
from tests import threads

PAGE = "https://upstream.example/simple/demo-pkg/"
SHA = "a" * 64
META_SHA = "b" * 64


# ---------------------------------------------------------------------------
# URLs and names
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "base",
    [
        "https://upstream.example/simple/",
        "https://upstream.example/simple",
        "https://upstream.example/simple//",
    ],
)
@pytest.mark.parametrize("name", ["Demo_Pkg", "demo.pkg", "DEMO--pkg", "demo-pkg"])
def test_project_url_is_canonical_with_one_slash(base, name):
    assert project_url(base, name) == "https://upstream.example/simple/demo-pkg/"


@pytest.mark.parametrize("base", ["https://upstream.example", "https://upstream.example/"])
def test_a_base_url_without_path_means_its_simple_index(base):
    client = UpstreamClient(base)
    assert client.project_url("Demo_Pkg") == "https://upstream.example/simple/demo-pkg/"


def test_credentials_in_the_base_url_are_split_off():
    client = UpstreamClient("https://mirror%40corp:p%3Ass@upstream.example:8443/simple/")
    assert client.base_url == "https://upstream.example:8443/simple/"
    assert client.project_url("x") == "https://upstream.example:8443/simple/x/"
    assert client._authorization == "Basic " + base64.b64encode(b"mirror@corp:p:ss").decode()
    assert UpstreamClient("https://upstream.example/simple/")._authorization is None


def test_policy_compares_disallowed_names_canonicalised():
    policy = FallbackPolicy(mode="cache", disallow=frozenset({"secret-pkg"}))
    assert not policy.applies_to("Secret_Pkg")
    assert not policy.applies_to("secret.pkg")
    assert policy.applies_to("public-pkg")
    assert not FallbackPolicy().applies_to("public-pkg")  # mode none


# ---------------------------------------------------------------------------
# PEP 691 JSON pages
# ---------------------------------------------------------------------------
def json_page(files, **doc) -> bytes:
    body = {"meta": {"api-version": "1.1"}, "name": "demo-pkg", "files": files}
    body.update(doc)
    return json.dumps(body).encode()


def test_json_page_resolves_urls_and_reads_every_field():
    page = parse_json_page(
        json_page(
            [
                {
                    "filename": "demo_pkg-1.0-py3-none-any.whl",
                    "url": "../../files/demo_pkg-1.0-py3-none-any.whl#frag",
                    "hashes": {"sha256": SHA.upper(), "md5": "x"},
                    "requires-python": ">=3.8",
                    "yanked": "broken",
                    "core-metadata": {"sha256": META_SHA},
                    "size": 123,
                    "upload-time": "2024-01-02T03:04:05.000006Z",
                },
                {
                    "filename": "demo_pkg-1.0.tar.gz",
                    "url": "https://files.example/demo_pkg-1.0.tar.gz",
                    "hashes": {},
                    "yanked": True,
                    "dist-info-metadata": True,
                },
                {
                    "filename": "demo_pkg-0.9.tar.gz",
                    "url": "/x/demo_pkg-0.9.tar.gz",
                    "hashes": {"sha256": SHA},
                    "yanked": False,
                    "core-metadata": False,
                    "size": True,
                },
            ]
        ),
        PAGE,
    )
    wheel, sdist, old = page.files
    assert page.name == "demo-pkg"
    assert wheel == UpstreamFile(
        filename="demo_pkg-1.0-py3-none-any.whl",
        url="https://upstream.example/files/demo_pkg-1.0-py3-none-any.whl",
        sha256=SHA,
        requires_python=">=3.8",
        yanked=True,
        yanked_reason="broken",
        metadata_sha256=META_SHA,
        size=123,
        upload_time="2024-01-02T03:04:05.000006Z",
    )
    assert wheel.metadata_url == wheel.url + ".metadata"
    assert (sdist.url, sdist.sha256, sdist.yanked, sdist.yanked_reason) == (
        "https://files.example/demo_pkg-1.0.tar.gz",
        None,
        True,
        None,
    )
    # "true" without a hash cannot be verified, so it is not offered.
    assert sdist.metadata_sha256 is None
    assert old.url == "https://upstream.example/x/demo_pkg-0.9.tar.gz"
    assert (old.yanked, old.metadata_sha256, old.size) == (False, None, None)


def test_json_page_skips_broken_entries_and_non_http_links():
    page = parse_json_page(
        json_page(
            [
                {"filename": "a-1.0.tar.gz"},  # no url
                "not an object",
                {"filename": "b-1.0.tar.gz", "url": "ftp://elsewhere.example/b-1.0.tar.gz"},
                {"filename": "c-1.0.tar.gz", "url": "javascript:alert(1)"},
                {"filename": "d-1.0.tar.gz", "url": "d-1.0.tar.gz", "hashes": {"sha256": "short"}},
            ]
        ),
        PAGE,
    )
    assert [(f.filename, f.url, f.sha256) for f in page.files] == [
        ("d-1.0.tar.gz", PAGE + "d-1.0.tar.gz", None)
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        b"[]",
        b'{"files": 3}',
        json_page([], meta={"api-version": "2.0"}),
        json_page([], meta=["1.0"]),
        json_page([], meta="1.0"),
        b"[" * 100_000,
    ],
)
def test_json_page_that_is_not_one_is_an_upstream_error(body):
    with pytest.raises(UpstreamError) as info:
        parse_json_page(body, PAGE)
    assert info.value.status == 502


@pytest.mark.parametrize("url", ["http://[broken/x-1.0.tar.gz", "http://upstream.example:99999/x-1.0.tar.gz"])
def test_json_page_skips_links_that_are_not_urls(url):
    page = parse_json_page(
        json_page(
            [
                {"filename": "x-1.0.tar.gz", "url": url},
                {"filename": "y-1.0.tar.gz", "url": "y-1.0.tar.gz"},
            ]
        ),
        PAGE,
    )
    assert [f.filename for f in page.files] == ["y-1.0.tar.gz"]


# ---------------------------------------------------------------------------
# PEP 503 HTML pages (parsed by html.parser)
# ---------------------------------------------------------------------------
HTML = f"""<!DOCTYPE html>
<html><head><title>Links for Demo.Pkg</title></head><body>
<h1>Links for Demo.Pkg</h1>
<a href="../../files/demo_pkg-1.0-py3-none-any.whl#sha256={SHA}"
   data-requires-python="&gt;=3.8,&lt;4" data-dist-info-metadata="sha256={META_SHA}">demo_pkg-1.0-py3-none-any.whl</a><br/>
<a href="/files/demo_pkg-1.0.tar.gz#md5=0123" data-yanked="">demo_pkg-1.0.tar.gz</a>
<a href="https://files.example/demo_pkg-0.9.tar.gz#SHA256={SHA}" data-yanked="bad &amp; broken"
   data-core-metadata="true"></a>
<A HREF="demo_pkg-0.8.tar.gz">  demo_pkg-0.8.tar.gz </A>
<a>no href</a>
<a href="mailto:someone@example.invalid">mail</a>
</body></html>"""


def test_html_page_reads_links_fragments_and_data_attributes():
    page = parse_html_page(HTML.encode(), PAGE)
    assert page.name == "Demo.Pkg"
    assert [f.filename for f in page.files] == [
        "demo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0.tar.gz",
        "demo_pkg-0.9.tar.gz",
        "demo_pkg-0.8.tar.gz",
    ]
    wheel, sdist, old, older = page.files
    assert wheel.url == "https://upstream.example/files/demo_pkg-1.0-py3-none-any.whl"
    assert (wheel.sha256, wheel.requires_python, wheel.metadata_sha256, wheel.yanked) == (
        SHA,
        ">=3.8,<4",
        META_SHA,
        False,
    )
    # Only sha256 counts; an md5 fragment gives no usable hash.
    assert (sdist.url, sdist.sha256, sdist.yanked, sdist.yanked_reason) == (
        "https://upstream.example/files/demo_pkg-1.0.tar.gz",
        None,
        True,
        None,
    )
    # No link text: the file name comes from the URL.
    assert (old.sha256, old.yanked_reason, old.metadata_sha256) == (SHA, "bad & broken", None)
    assert older.url == PAGE + "demo_pkg-0.8.tar.gz"
    assert (wheel.size, wheel.upload_time) == (None, None)


def test_html_page_honours_base_href():
    body = (
        b'<html><head><base href="https://mirror.example/pkgs/"></head>'
        b'<body><a href="x-1.0.tar.gz#sha256=' + SHA.encode() + b'">x-1.0.tar.gz</a></body></html>'
    )
    (entry,) = parse_html_page(body, PAGE).files
    assert entry.url == "https://mirror.example/pkgs/x-1.0.tar.gz"


@pytest.mark.parametrize(
    "href", ["http://[broken/x-1.0.tar.gz", "http://upstream.example:99999/x-1.0.tar.gz"]
)
def test_html_page_skips_links_that_are_not_urls(href):
    body = f'<a href="{href}">x-1.0.tar.gz</a><a href="y-1.0.tar.gz">y-1.0.tar.gz</a>'.encode()
    assert [f.filename for f in parse_html_page(body, PAGE).files] == ["y-1.0.tar.gz"]


def test_html_page_with_a_broken_base_href_resolves_from_the_page_url():
    body = b'<base href="http://[broken/"><a href="y-1.0.tar.gz">y-1.0.tar.gz</a>'
    assert [f.url for f in parse_html_page(body, PAGE).files] == [PAGE + "y-1.0.tar.gz"]


def test_html_page_the_parser_gives_up_on_is_an_upstream_error():
    with pytest.raises(UpstreamError) as info:
        parse_html_page(b'<![unknown[ x ]]><a href="y-1.0.tar.gz">y-1.0.tar.gz</a>', PAGE)
    assert info.value.status == 502


def test_format_is_chosen_by_content_type():
    json_body = json_page([{"filename": "x-1.0.tar.gz", "url": "x-1.0.tar.gz"}])
    assert parse_project_page(json_body, "application/vnd.pypi.simple.v1+json", PAGE).files
    assert parse_project_page(HTML.encode(), "text/html; charset=utf-8", PAGE).files
    assert parse_project_page(HTML.encode(), "application/vnd.pypi.simple.v1+html", PAGE).files


def test_only_distributions_of_the_project_are_kept():
    files = tuple(
        UpstreamFile(name, PAGE + name, SHA)
        for name in (
            "Demo_Pkg-1.0-py3-none-any.whl",
            "demo.pkg-2.0.tar.gz",
            "demo_pkg-1.0.win32.exe",
            "demo_pkg-1.0-py2.7.egg",
            "other_pkg-1.0.tar.gz",
            "demo_pkg-notaversion.tar.gz",
            "..demo_pkg-1.0.tar.gz",
        )
    )
    kept = distributions_of(UpstreamProject("demo-pkg", files), "Demo.Pkg")
    assert [(f.filename, f.version) for f in kept] == [
        ("Demo_Pkg-1.0-py3-none-any.whl", "1.0"),
        ("demo.pkg-2.0.tar.gz", "2.0"),
    ]


def test_a_filename_listed_twice_is_one_file():
    files = (
        UpstreamFile("demo_pkg-1.0.tar.gz", PAGE + "a/demo_pkg-1.0.tar.gz", SHA),
        UpstreamFile("demo_pkg-1.0.tar.gz", PAGE + "b/demo_pkg-1.0.tar.gz", None),
    )
    kept = distributions_of(UpstreamProject("demo-pkg", files), "demo-pkg")
    assert [(f.url, f.sha256) for f in kept] == [(PAGE + "a/demo_pkg-1.0.tar.gz", SHA)]


# ---------------------------------------------------------------------------
# The page memo and the single flights
# ---------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_page_memo_expires_after_its_ttl_and_stays_bounded():
    clock = Clock()
    memo = PageMemo(ttl=60, max_entries=2, clock=clock)
    page = UpstreamProject("a", ())
    memo.put("a", page)
    memo.put("gone", None)  # "upstream has no such project" is remembered too
    assert memo.get("a") is page and memo.get("gone") is None
    clock.now += 59
    assert memo.get("a") is page
    clock.now += 2
    assert memo.get("a") is PageMemo._MISS
    for key in ("x", "y", "z"):
        memo.put(key, page)
    assert len(memo) == 2 and memo.get("x") is PageMemo._MISS


def test_page_memo_is_bounded_by_file_entries_too():
    memo = PageMemo(ttl=60, max_entries=100, max_files=10)
    big = UpstreamProject("big", tuple(UpstreamFile(f"f{i}", PAGE) for i in range(6)))
    memo.put("a", big)
    memo.put("b", big)  # 14 entries > 10: the older page goes
    assert memo.get("a") is PageMemo._MISS and memo.get("b") is big
    huge = UpstreamProject("huge", tuple(UpstreamFile(f"f{i}", PAGE) for i in range(50)))
    memo.put("c", huge)  # alone over the bound, but the newest page is kept
    assert memo.get("c") is huge and len(memo) == 1
    memo.put("c", None)
    assert memo._files == 1


def test_page_memo_with_ttl_zero_remembers_nothing():
    memo = PageMemo(ttl=0)
    memo.put("a", UpstreamProject("a", ()))
    assert memo.get("a") is PageMemo._MISS


def _at_once(count: int, call) -> list:
    """``call()`` in ``count`` threads released together: what each returned or raised."""
    return threads.run_together([call] * count, timeout=10)


def test_single_flight_runs_once_for_concurrent_callers_and_shares_the_result():
    flight, runs = SingleFlight(), []

    def work():
        runs.append(1)
        time.sleep(0.3)  # long enough for every caller to arrive
        return "page"

    assert _at_once(4, lambda: flight.run("key", work)) == ["page"] * 4
    assert len(runs) == 1 and flight._runs == {}
    assert flight.run("key", work) == "page" and len(runs) == 2  # nothing is kept


def test_single_flight_shares_a_failure_and_keeps_nothing_of_it():
    flight, runs = SingleFlight(), []

    def work():
        runs.append(1)
        time.sleep(0.3)
        raise UpstreamError("timed out")

    outcomes = _at_once(4, lambda: flight.run("key", work))
    assert [type(o) for o in outcomes] == [UpstreamError] * 4 and len(runs) == 1
    assert flight._runs == {}
    assert flight.run("key", lambda: "back") == "back"


def test_single_flight_keys_are_independent():
    flight = SingleFlight()
    outcomes = _at_once(
        2, lambda: flight.run(threading.current_thread().name, lambda: threading.current_thread().name)
    )
    assert len(set(outcomes)) == 2


# ---------------------------------------------------------------------------
# The client's redirects (a stand-in pool: no network)
# ---------------------------------------------------------------------------
class Answer:
    def __init__(self, status: int, location: str | None = None):
        self.status, self.location = status, location

    def get_redirect_location(self):
        return self.location if self.status in (301, 302, 303, 307, 308) else False

    def close(self):
        pass

    def release_conn(self):
        pass


class Pool:
    def __init__(self, *answers: Answer):
        self.answers = list(answers)
        self.urls: list[str] = []

    def request(self, method, url, **kw):
        self.urls.append(url)
        return self.answers.pop(0)


@pytest.mark.parametrize(
    "base", ["https://upstream.example/simple/", "https://mirror:s3cret@upstream.example/simple/"]
)
@pytest.mark.parametrize("location", ["http://[broken/", "https://upstream.example:99999/x/"])
def test_a_redirect_to_something_that_is_no_url_is_an_upstream_error(base, location):
    pool = Pool(Answer(302, location), Answer(200))
    client = UpstreamClient(base, pool=pool)
    with pytest.raises(UpstreamError) as info:
        client.project("demo-pkg")
    assert info.value.status == 502 and "redirect" in info.value.message
    assert "s3cret" not in info.value.message
    assert pool.urls == ["https://upstream.example/simple/demo-pkg/"]


class Dripping(Answer):
    """A 200 whose body arrives a byte per read, each read "taking" 4 seconds."""

    def __init__(self, clock, reads: int):
        super().__init__(200)
        self.clock, self.left = clock, reads
        self.headers = {"Content-Type": "application/vnd.pypi.simple.v1+json"}

    def read(self, n):
        if self.left == 0:
            return b""
        self.left -= 1
        self.clock.now += 4.0
        return b" "


def test_a_page_that_drips_in_is_given_up_at_its_deadline():
    """Every read is within the 10 s timeout, yet the page has 3 x 10 s (at least 30 s) in all."""
    clock = Clock()
    start = clock.now
    pool = Pool(Dripping(clock, reads=1000))
    client = UpstreamClient("https://upstream.example/simple/", timeout=10, clock=clock, pool=pool)
    with pytest.raises(UpstreamUnavailable) as info:
        client.project("demo-pkg")
    assert info.value.status == 503 and "did not arrive within 30 seconds" in info.value.message
    assert 30 < clock.now - start <= 40  # given up at the first read past the deadline


def test_a_page_that_arrives_in_time_is_read():
    clock = Clock()
    body = json_page([{"filename": "demo_pkg-1.0.tar.gz", "url": "demo_pkg-1.0.tar.gz"}])

    class Slow(Dripping):
        def read(self, n):
            data, self.body = self.body[:n], b""
            self.clock.now += 4.0 if data else 0.0
            return data

    answer = Slow(clock, reads=1)
    answer.body = body
    client = UpstreamClient("https://upstream.example/simple/", timeout=10, clock=clock, pool=Pool(answer))
    assert [f.filename for f in client.project("demo-pkg").files] == ["demo_pkg-1.0.tar.gz"]


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
def settings(**values) -> Settings:
    return Settings({k.replace("__", "."): v for k, v in values.items()}, environ={})


def test_default_is_none_and_needs_no_url():
    policy, client = fallback_from_settings(settings())
    assert policy == FallbackPolicy() and client is None
    assert policy.cache_update == frozenset({"authenticated"})


@pytest.mark.parametrize("mode", ["redirect", "cache", "CACHE"])
def test_fallback_without_url_uses_the_index_pip_uses_as_1x_did(mode):
    # Changed by issue 10: 1.x fell back to the public index when no URL was
    # given, so such an ini starts (it used to be a ConfigError).
    from pip._internal.models.index import PyPI

    policy, client = fallback_from_settings(settings(pypi__fallback=mode))
    assert policy.mode == mode.lower()
    assert client.base_url.rstrip("/") == PyPI.simple_url.rstrip("/")


@pytest.mark.parametrize("mode", ["redirect", "cache"])
def test_fallback_needs_a_base_url_when_pip_cannot_name_one(mode, monkeypatch):
    monkeypatch.setattr(upstream, "default_upstream_url", lambda: None)
    with pytest.raises(ConfigError) as info:
        fallback_from_settings(settings(pypi__fallback=mode))
    assert info.value.key == "pypi.fallback_base_url"
    assert "pypi.fallback_base_url" in str(info.value) and "required" in str(info.value)


def test_unset_fallback_warns_with_the_line_that_restores_1x(caplog):
    with caplog.at_level("WARNING", logger="pypicloud.upstream"):
        fallback_from_settings(settings())
    assert "pypi.fallback = redirect" in caplog.text and "1.x" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="pypicloud.upstream"):
        fallback_from_settings(settings(pypi__fallback="none"))
    assert "pypi.fallback" not in caplog.text


@pytest.mark.parametrize(
    "url",
    ["ftp://upstream.example/simple/", "upstream.example/simple/", "file:///srv/simple/", "https:///simple/"],
)
def test_fallback_base_url_must_be_http(url):
    with pytest.raises(ConfigError) as info:
        fallback_from_settings(settings(pypi__fallback="cache", pypi__fallback_base_url=url))
    assert info.value.key == "pypi.fallback_base_url"
    assert url in str(info.value) and "http" in str(info.value)


@pytest.mark.parametrize(
    "url", ["ftp://mirror:s3cret@upstream.example/simple/", "https://mirror:s3cret@/simple/"]
)
def test_a_refused_base_url_is_named_without_its_credentials(url):
    with pytest.raises(ConfigError) as info:
        fallback_from_settings(settings(pypi__fallback="cache", pypi__fallback_base_url=url))
    assert "s3cret" not in str(info.value) and "mirror" not in str(info.value)
    assert url.replace("mirror:s3cret@", "***@") in str(info.value)


def test_old_name_fallback_url_is_accepted():
    _, client = fallback_from_settings(
        Settings(
            {"pypi.fallback": "redirect", "pypi.fallback_url": "https://upstream.example/simple"}, environ={}
        )
    )
    assert client.project_url("Demo_Pkg") == "https://upstream.example/simple/demo-pkg/"


def test_full_settings():
    policy, client = fallback_from_settings(
        settings(
            pypi__fallback="cache",
            pypi__fallback_base_url="http://127.0.0.1:9/simple/",
            pypi__always_show_upstream="yes",
            pypi__disallow_fallback="Secret_Pkg, internal.tools\nx",
            pypi__cache_update="mirrorers admins",
            pypi__fallback_timeout="2.5",
            pypi__fallback_page_ttl="0",
        )
    )
    assert policy == FallbackPolicy(
        mode="cache",
        always_show_upstream=True,
        disallow=frozenset({"secret-pkg", "internal-tools", "x"}),
        cache_update=frozenset({"mirrorers", "admins"}),
    )
    assert isinstance(client, UpstreamClient)
    assert client.timeout == 2.5 and client.pages.ttl == 0


def test_empty_cache_update_means_nobody():
    policy, _ = fallback_from_settings(
        settings(
            pypi__fallback="cache",
            pypi__fallback_base_url="https://upstream.example/simple/",
            pypi__cache_update="",
        )
    )
    assert policy.cache_update == frozenset()


@pytest.mark.parametrize(
    "key,value",
    [
        ("pypi.fallback_timeout", "0"),
        ("pypi.fallback_timeout", "soon"),
        ("pypi.fallback_timeout", "nan"),
        ("pypi.fallback_timeout", "inf"),
        ("pypi.fallback_timeout", "1e300"),
        ("pypi.fallback_page_ttl", "-1"),
        ("pypi.always_show_upstream", "perhaps"),
        ("pypi.fallback", "mirror"),
    ],
)
def test_bad_values_name_their_key(key, value):
    raw = {"pypi.fallback": "cache", "pypi.fallback_base_url": "https://upstream.example/simple/", key: value}
    with pytest.raises(ConfigError) as info:
        fallback_from_settings(Settings(raw, environ={}))
    assert info.value.key == key


def test_new_keys_are_known_settings():
    assert settings(pypi__fallback_timeout="1", pypi__fallback_page_ttl="5").warn_unknown() == []
