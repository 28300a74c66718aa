"""Browser tests: Playwright driving Debian's Chromium against a real waitress process.

One server per test module (``site``: the wheel built from this tree, installed in a
fresh venv, see tests/fixtures/installed.py), one Chromium per test session, one fresh
browser context (cookies, viewport) per test.

Every page a test visits is checked with axe-core (vendored in ``vendor/``): a
``serious`` or ``critical`` violation fails the test. Tests move between pages with
:meth:`Browser.goto` / :meth:`Browser.submit`, which audit the page they land on; a
page that loaded but was never audited fails the test at teardown, so no page slips by.

A failing test leaves ``failure.png`` (a full-page screenshot) in its tmp dir and
prints its path. With ``UI_SCREENSHOTS_DIR`` set (``docs/ui`` to refresh the docs),
:meth:`Browser.shot` also writes the named screenshots there.

Without Chromium or the playwright package the tests skip with the reason; under
``CI=true`` that is a failure (``.ci/run`` installs both).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures.installed import installed_bin
from tests.fixtures.server import ServerProcess, write_sdist, write_wheel

CHROMIUM = os.environ.get("PPC_TEST_CHROMIUM", "/usr/bin/chromium")
AXE_VERSION = "4.14.1"
AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"
# What fails the audit: the two worst of axe-core's four impact levels.
FAILING_IMPACTS = ("serious", "critical")
DESKTOP = {"width": 1200, "height": 800}

PASSWORDS = {"admin": "admin-pw-1234", "pat": "pat-pw-12345", "rita": "rita-pw-12345"}
SESSION_SECRET = "browser-tests-session-secret-0123456789"
SIGNING_KEY = "browser-tests-signing-key-0123456789"  # 1.x's sign-up tokens


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: .ci/run installs it)", pytrace=False)
    pytest.skip(reason)


def _require_browser() -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")


# ---------------------------------------------------------------------------
# Chromium (one per session)
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


# ---------------------------------------------------------------------------
# The server (one per module)
# ---------------------------------------------------------------------------
def ppc_access(ini: Path, *argv: str, stdin: str = "") -> str:
    result = subprocess.run(
        [str(installed_bin() / "ppc-access"), str(ini), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Site:
    """The server and who uses it: ``admin`` (an admin), ``pat`` (publishes acme-widget),
    ``rita`` (reads only); anyone, logged in or not, may read (``default_read = everyone``)."""

    server: ServerProcess
    dists_dir: Path
    passwords: dict = field(default_factory=lambda: dict(PASSWORDS))

    @property
    def url(self) -> str:
        return self.server.url

    def admin_api(self, method: str, path: str, fields: dict | None = None) -> None:
        from urllib.parse import urlencode

        status, _, answer = self.server.request(
            method,
            path,
            user=None,
            body=urlencode(fields or {}).encode(),
            headers={
                "Authorization": _basic("admin", self.passwords["admin"]),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert status == 200, (method, path, status, answer)

    def upload(self, path: Path, project: str, user: str = "admin") -> None:
        """Upload one file through the REST API (test data, not what is being tested)."""
        import uuid

        boundary = "browser" + uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
                f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + path.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        status, _, answer = self.server.request(
            "POST",
            f"/api/package/{project}/{path.name}",
            body=body,
            headers={
                "Authorization": _basic(user, self.passwords[user]),
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        assert status in (200, 201), (status, answer)


@pytest.fixture(scope="module")
def site(tmp_path_factory, request):
    _require_browser()
    base = tmp_path_factory.mktemp("browser-server")
    srv = ServerProcess(
        base / "server",
        {
            "pypi.auth": "sql",
            "pypi.default_read": "everyone",
            "session.secret": SESSION_SECRET,
            "auth.signing_key": SIGNING_KEY,
            # A module's own settings (e.g. an upload size limit) on top.
            **getattr(request.module, "SERVER_SETTINGS", {}),
        },
    )
    ppc_access(srv.write_ini(), "add-user", "admin", "--admin", stdin=PASSWORDS["admin"] + "\n")
    srv.start()
    site = Site(srv, base / "dists")
    # The rest through the admin REST API: one process start per module is enough.
    for user in ("pat", "rita"):
        site.admin_api("PUT", f"/admin/user/{user}/", {"password": PASSWORDS[user]})
    # Grants replace the defaults: pat publishes acme-widget, everyone still reads it.
    for grant in ("user/pat/read", "user/pat/write", "group/everyone/read"):
        site.admin_api("PUT", f"/admin/package/acme-widget/{grant}/")
    site.dists_dir.mkdir()
    try:
        yield site
    finally:
        srv.stop(timeout=10)


VERSO = ("0.9", "1.2.0", "1.9.0", "1.10.0", "2.0.0b1")


@pytest.fixture(scope="module")
def catalogue(site):
    """verso (string order differs from PEP 440 order, a pre-release on top) and Acme.Widget."""
    files = {}
    for version in VERSO:
        path = write_wheel(site.dists_dir, "verso", version, normalized=True)
        site.upload(path, "verso")
        files[path.name] = path
    for version in ("1.0", "1.1"):
        for path in (
            write_wheel(site.dists_dir, "Acme.Widget", version),
            write_sdist(site.dists_dir, "Acme.Widget", version),
        ):
            site.upload(path, "Acme.Widget")
            files[path.name] = path
    return files


# ---------------------------------------------------------------------------
# A browser tab per test, audited on every page
# ---------------------------------------------------------------------------
class A11yViolation(AssertionError):
    pass


class Browser:
    """One browser context and tab; navigation helpers that run axe-core on arrival."""

    def __init__(self, context, site: Site, shots_dir: Path):
        self.context = context
        self.page = context.new_page()
        self.site = site
        self.shots_dir = shots_dir
        self.loaded: list[str] = []
        self.audited: list[str] = []
        self.page.on("load", lambda page: self.loaded.append(page.url))

    # Navigation ---------------------------------------------------------------
    def goto(self, path: str, *, status: int | None = 200):
        response = self.page.goto(self.site.url + path)
        if status is not None:
            assert response is not None and response.status == status, (path, response and response.status)
        self.audit()
        return response

    def submit(self, locator):
        """Click a submit button and wait for the page the form leads to."""
        with self.page.expect_navigation():
            locator.click()
        self.audit()

    def login(self, user: str, password: str | None = None, *, path: str = "/login"):
        self.goto(path)
        self.page.get_by_label("User name").fill(user)
        self.page.get_by_label("Password").fill(self.site.passwords[user] if password is None else password)
        self.submit(self.page.get_by_role("button", name="Log in"))

    # Checks -------------------------------------------------------------------
    def audit(self) -> None:
        """axe-core on the current page: no serious or critical violation."""
        page = self.page
        page.wait_for_load_state("load")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # Evaluated by the driver (not a <script> element), so the page's own
            # strict Content-Security-Policy stays in force for everything else.
            page.evaluate(AXE_SOURCE)
        result = page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)})))"
        )
        self.audited.append(page.url)
        bad = [v for v in result if v["impact"] in FAILING_IMPACTS]
        if bad:
            lines = [
                f"{v['impact']} {v['id']} ({v['help']}):\n    " + "\n    ".join(v["nodes"][:5]) for v in bad
            ]
            raise A11yViolation(f"axe-core {AXE_VERSION} on {page.url}:\n" + "\n".join(lines))

    def no_horizontal_scroll(self) -> None:
        width = self.page.evaluate("() => document.documentElement.scrollWidth")
        viewport = self.page.viewport_size["width"]
        assert width <= viewport, f"{self.page.url} is {width}px wide in a {viewport}px viewport"

    def unaudited(self) -> list[str]:
        remaining = list(self.audited)
        missed = []
        for url in self.loaded:
            if url in remaining:
                remaining.remove(url)
            else:
                missed.append(url)
        return missed

    def shot(self, name: str) -> Path:
        """A screenshot of the visible page; also into UI_SCREENSHOTS_DIR when that is set."""
        path = self.shots_dir / f"{name}.png"
        self.page.screenshot(path=str(path))
        target = os.environ.get("UI_SCREENSHOTS_DIR")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(target) / path.name)
        return path


AXE_SOURCE = AXE_JS.read_text(encoding="utf-8") if AXE_JS.exists() else ""


def _new_browser(chromium, site, tmp_path, request, viewport=DESKTOP) -> Browser:
    context = chromium.new_context(viewport=viewport, accept_downloads=True)
    context.set_default_timeout(15000)
    b = Browser(context, site, tmp_path)
    request.node._ppc_browsers = getattr(request.node, "_ppc_browsers", []) + [b]
    return b


@pytest.fixture
def open_browser(chromium, site, tmp_path, request):
    """``open_browser(viewport=...)``: a fresh context (no cookies) per call."""
    request.node._ppc_servers = [site.server]  # its log goes into a failure's report
    request.node._ppc_shot_dir = tmp_path
    made: list[Browser] = []

    def make(viewport=DESKTOP) -> Browser:
        made.append(_new_browser(chromium, site, tmp_path, request, viewport))
        return made[-1]

    yield make
    missed = [url for b in made for url in b.unaudited()]
    for b in made:
        b.context.close()
    assert not missed, f"pages loaded but never checked with axe-core: {missed}"


@pytest.fixture
def browser(open_browser) -> Browser:
    return open_browser()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    browsers = getattr(item, "_ppc_browsers", None)
    if not report.failed or not browsers or report.when != "call":
        return
    shot_dir: Path = getattr(item, "_ppc_shot_dir")
    for index, b in enumerate(browsers):
        path = shot_dir / ("failure.png" if index == 0 else f"failure-{index}.png")
        try:
            b.page.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # a crashed page: say so, keep the real failure
            report.sections.append(("browser screenshot", f"could not be taken: {exc!r}"))
            continue
        print(f"\nscreenshot of the failing page ({b.page.url}): {path}")
        report.sections.append(("browser screenshot", f"{b.page.url}: {path}"))
