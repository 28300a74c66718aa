"""Clients that nobody here wrote, and pypicloud 1.x client configs (issue 11 items 1, 2, 6).

HTML-only readers that send no ``Accept`` (curl, setuptools' ``PackageIndex``,
zc.buildout), pip pointed at 1.x's index URLs (``/pypi/`` and the root),
pip-compile taking hashes from the JSON API, and bandersnatch mirroring the
index into a folder that pip then installs from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    BIN_DIR,
    PYTHON,
    installed_version,
    ok,
    parse_downloads,
    pip_cmd,
    run,
    twine_upload,
)
from tests.fixtures.recorder import RecordingProxy
from tests.fixtures.server import sha256_file

pytestmark = pytest.mark.e2e

PROJECT = "acme-widget"
PUBLIC = {"pypi.default_read": "everyone"}


@pytest.fixture
def public(server_factory, dists, cenv):
    """A server anyone may read, holding Acme.Widget 1.0 and 1.1 (wheel + sdist)."""
    server = server_factory(PUBLIC)
    ok(twine_upload(server, [*dists.build("1.0"), *dists.build("1.1")], cenv))
    return server


@pytest.fixture
def recorded(public):
    proxy = RecordingProxy(public.port)
    yield proxy
    proxy.close()


def tool_venv(path: Path, env, *requirements: str) -> Path:
    """A throw-away venv with ``requirements`` installed (clients with their own pins).

    Needs the package registry: skipped without it, failed under CI=true.
    """
    if not (path / "bin" / "python").exists():
        ok(run([PYTHON, "-m", "venv", str(path)], env))
    result = run(
        [path / "bin" / "python", "-m", "pip", "install", "-q", *requirements],
        {k: v for k, v in env.items() if k != "PIP_CONFIG_FILE"},
        timeout=600,
    )
    if result.returncode != 0:
        message = f"cannot install {requirements} into a temp venv:\n{result.stdout[-2000:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path / "bin" / "python"


# ---------------------------------------------------------------------------
# HTML by default (item 1)
# ---------------------------------------------------------------------------
def test_plain_curl_gets_html(public, dists):
    out = subprocess.run(
        ["curl", "-sS", "-i", f"{public.url}/simple/{PROJECT}/"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.replace("\r\n", "\n").partition("\n\n")
    assert re.search(r"^content-type: text/html", head, re.I | re.M), head
    assert re.search(r"^x-pypi-last-serial: \d+", head, re.I | re.M), head
    wheel = dists.wheel("1.1")
    assert f"{wheel.name}</a>" in body
    assert f"#sha256={sha256_file(wheel)}" in body
    # curl's index listing too.
    index = subprocess.run(
        ["curl", "-sS", f"{public.url}/simple/"], capture_output=True, text=True, timeout=60
    )
    assert re.search(r"<a href=\"[^\"]+/simple/acme-widget/\">Acme.Widget</a>", index.stdout), index.stdout


def test_setuptools_package_index_finds_the_files(public, dists, cenv, tmp_path):
    script = textwrap.dedent(f"""
        import json
        from pkg_resources import Requirement
        from setuptools.package_index import PackageIndex
        index = PackageIndex(index_url="{public.url}/simple/")
        index.find_packages(Requirement.parse("acme.widget"))
        print(json.dumps(sorted({{d.location.rsplit("/", 1)[-1].split("#")[0]
                                 for key in index for d in index[key]
                                 if d.location.startswith("{public.url}/")}})))
    """)
    python = PYTHON
    if run([python, "-c", "import setuptools.package_index"], cenv).returncode != 0:
        # Removed from newer setuptools: an older one in a temp venv.
        python = tool_venv(tmp_path / "v-setuptools", cenv, "setuptools<80")
    out = ok(run([python, "-c", script], cenv))
    found = json.loads(out.strip().splitlines()[-1])
    # Before issue 11 it found 0 distributions (it got JSON).
    assert sorted(found) == sorted(p.name for p in [*dists.build("1.0"), *dists.build("1.1")]), out


def test_zc_buildout_installs_from_the_index(public, dists, cenv, tmp_path):
    python = tool_venv(tmp_path / "v-buildout", cenv, "zc.buildout", "zc.recipe.egg", "wheel")
    # buildout fetches its recipe from the index too: put the recipe's own wheel there.
    recipes = tmp_path / "recipe"
    ok(
        run(
            [
                python,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                recipes,
                "zc.recipe.egg",
            ],
            {k: v for k, v in cenv.items() if k != "PIP_CONFIG_FILE"},
            timeout=300,
        )
    )
    ok(twine_upload(public, list(recipes.iterdir()), cenv))
    project = tmp_path / "buildout"
    project.mkdir()
    (project / "buildout.cfg").write_text(
        textwrap.dedent(f"""
        [buildout]
        index = {public.url}/simple/
        parts = app
        newest = false
        allow-picked-versions = true
        eggs-directory = {project / "eggs"}

        [app]
        recipe = zc.recipe.egg
        eggs = acme.widget
    """)
    )
    buildout = python.parent / "buildout"
    log = ok(run([buildout, "-c", project / "buildout.cfg"], cenv, cwd=project, timeout=600))
    assert "Couldn't find index page" not in log
    assert "Got Acme.Widget 1.1." in log, log
    eggs = [p.name for p in (project / "eggs").rglob("*")]  # buildout 5+: eggs/v5/<egg>
    assert any(name.lower().startswith(("acme.widget-1.1", "acme_widget-1.1")) for name in eggs), (eggs, log)


# ---------------------------------------------------------------------------
# pypicloud 1.x's index URLs (item 2)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["/pypi/", "/"])
def test_pip_with_a_1x_index_url(server_factory, dists, cenv, tmp_path, suffix):
    # A private server (reads need a login), as most 1.x deployments are.
    server = server_factory()
    ok(twine_upload(server, [*dists.build("1.0"), *dists.build("1.1")], cenv))
    target = tmp_path / "target"
    log = ok(
        run(
            pip_cmd(
                "install",
                "--target",
                str(target),
                "--no-cache-dir",
                "-v",
                "--index-url",
                server.auth_url("admin") + suffix,
                "acme.widget",
            ),
            cenv,
        )
    )
    assert installed_version(target) == "1.1"
    files = [name for name in parse_downloads(log) if not name.endswith(".metadata")]
    assert files == [dists.wheel("1.1").name], log
    # Without credentials: a 401, not someone else's package.
    result = run(
        pip_cmd(
            "download",
            "--no-deps",
            "-d",
            str(tmp_path / "dl"),
            "--no-cache-dir",
            "--index-url",
            server.url + suffix,
            "acme.widget",
        ),
        cenv,
    )
    assert result.returncode != 0
    assert not (tmp_path / "dl").exists() or not list((tmp_path / "dl").iterdir())


def test_pip_compile_takes_hashes_from_the_json_api(public, recorded, dists, cenv, tmp_path):
    (tmp_path / "req.in").write_text("acme.widget\n")
    out = ok(
        run(
            [
                BIN_DIR / "pip-compile",
                "--quiet",
                "--generate-hashes",
                "--no-emit-index-url",
                "--index-url",
                f"{recorded.url}/simple/",
                "--cache-dir",
                tmp_path / "cache",
                "-o",
                tmp_path / "req.txt",
                tmp_path / "req.in",
            ],
            cenv,
            cwd=tmp_path,
        )
    )
    text = (tmp_path / "req.txt").read_text()
    assert "acme-widget==1.1" in text, (text, out)
    for path in dists.build("1.1"):
        assert f"sha256:{sha256_file(path)}" in text, (path.name, text)
    asked = recorded.paths()
    json_urls = [p for p in asked if p.endswith(f"{PROJECT}/json")]
    assert json_urls, asked
    assert all(status == 200 for m, p, status in recorded.requests if p in json_urls)
    # The hashes came from the JSON API: no distribution file was downloaded.
    files = [p for p in asked if p.endswith((".whl", ".tar.gz"))]
    assert files == [], asked


# ---------------------------------------------------------------------------
# bandersnatch (item 6)
# ---------------------------------------------------------------------------
def test_bandersnatch_mirrors_the_index_and_pip_installs_from_the_mirror(public, dists, cenv, tmp_path):
    mirror = tmp_path / "mirror"
    conf = tmp_path / "bandersnatch.conf"
    conf.write_text(
        textwrap.dedent(f"""
        [mirror]
        directory = {mirror}
        master = {public.url}
        allow-non-https = true
        api-method = simple
        json = true
        timeout = 60
        global-timeout = 600
        workers = 1
        stop-on-error = true
        hash-index = false
        simple-format = ALL
    """)
    )
    log = ok(run([BIN_DIR / "bandersnatch", "-c", conf, "mirror"], cenv, timeout=600))
    assert "0 packages to sync" not in log, log
    stored = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (mirror / "web" / "packages").rglob("*")
        if p.is_file()
    }
    expected = {p.name: sha256_file(p) for p in [*dists.build("1.0"), *dists.build("1.1")]}
    assert stored == expected, log
    assert (mirror / "web" / "simple" / PROJECT / "index.html").exists()
    status_file = (mirror / "status").read_text().strip()
    assert int(status_file) > 0

    # pip installs from the mirror alone (the server is stopped first).
    public.stop()
    target = tmp_path / "target"
    index = (mirror / "web" / "simple").as_uri() + "/"
    ok(
        run(
            pip_cmd(
                "install", "--target", str(target), "--no-cache-dir", "--index-url", index, "acme.widget==1.0"
            ),
            cenv,
        )
    )
    assert installed_version(target) == "1.0"
