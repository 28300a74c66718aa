"""poetry and pdm against a real server: publishing and installing (README, SPEC section 1).

The real ``poetry`` and ``pdm`` of the project's virtualenv run as subprocesses
against a ``pserve`` process on 127.0.0.1 (tests/fixtures/server.py). Each
tool gets a private HOME, configuration and cache directories, no keyring, and
only the server as package source; every other host is routed to a dead proxy,
so a fallback to a public index fails at once instead of reaching out.

Builds never need an index: ``poetry build`` runs poetry-core in-process, and
pdm builds with ``build_isolation`` off (pdm-backend is installed next to pdm).
Virtualenvs are made from the interpreter at hand, without pip.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.e2e.helpers import api_files, client_env, installed_version, ok, run
from tests.fixtures.server import BIN_DIR, USERS, sha256_file

pytestmark = pytest.mark.e2e

POETRY = BIN_DIR / "poetry"
PDM = BIN_DIR / "pdm"
TIMEOUT = 50  # seconds per command: each test must stay well under a minute in all
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)  # not the test venv itself
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens: any host but 127.0.0.1 fails fast

PROJECT = "acme-widget"  # what the ``published`` fixture uploaded (1.0 and 1.1)
PASSWORD = USERS["admin"]


def need(tool: Path) -> None:
    if not tool.exists():
        pytest.skip(f"{tool.name} is not installed in {BIN_DIR} (pip install -e '.[test]')")


def tool_env(workdir: Path, **extra: str) -> dict[str, str]:
    """client_env plus everything poetry and pdm read, all under ``workdir``."""
    env = client_env(workdir)
    env = {k: v for k, v in env.items() if not k.startswith(("POETRY_", "PDM_"))}
    env.update(
        {
            "XDG_DATA_HOME": str(workdir / "home" / ".local" / "share"),
            "XDG_STATE_HOME": str(workdir / "home" / ".local" / "state"),
            "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY,
            "ALL_PROXY": DEAD_PROXY,
            "http_proxy": DEAD_PROXY,
            "https_proxy": DEAD_PROXY,
            "all_proxy": DEAD_PROXY,
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
            # "python" / "python3" on PATH are the interpreter this venv was made from
            "PATH": str(Path(BASE_PYTHON).parent) + os.pathsep + os.environ.get("PATH", ""),
            "VIRTUALENV_OVERRIDE_APP_DATA": str(workdir / "virtualenv-app-data"),
            # poetry
            "POETRY_CONFIG_DIR": str(workdir / "poetry-config"),
            "POETRY_CACHE_DIR": str(workdir / "poetry-cache"),
            "POETRY_DATA_DIR": str(workdir / "poetry-data"),
            "POETRY_VIRTUALENVS_IN_PROJECT": "true",
            "POETRY_VIRTUALENVS_PATH": str(workdir / "poetry-venvs"),
            "POETRY_VIRTUALENVS_OPTIONS_NO_PIP": "true",
            "POETRY_VIRTUALENVS_USE_POETRY_PYTHON": "false",
            "POETRY_KEYRING_ENABLED": "false",
            "POETRY_REQUESTS_TIMEOUT": "30",
            # pdm
            "PDM_HOME": str(workdir / "pdm-home"),
            "PDM_CONFIG_FILE": str(workdir / "pdm-config.toml"),
            "PDM_CACHE_DIR": str(workdir / "pdm-cache"),
            "PDM_LOG_DIR": str(workdir / "pdm-log"),
            "PDM_CHECK_UPDATE": "false",
            "PDM_BUILD_ISOLATION": "false",  # pdm-backend from this venv, no index needed
            "PDM_USE_VENV": "true",
            "PDM_VENV_IN_PROJECT": "true",
            "PDM_VENV_WITH_PIP": "false",
            "PDM_USE_UV": "false",
            "PDM_NON_INTERACTIVE": "1",
            "PDM_REQUEST_TIMEOUT": "30",
        }
    )
    env.update(extra)
    return env


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    assert len(found) == 1, (venv, found)
    return found[0]


def poetry(args: list[str], env, cwd: Path):
    return run([POETRY, "--no-ansi", "--no-interaction", *args], env, cwd=cwd, timeout=TIMEOUT)


def pdm(args: list[str], env, cwd: Path):
    return run([PDM, *args], env, cwd=cwd, timeout=TIMEOUT)


def write_module(project: Path, module: str, version: str) -> None:
    package = project / "src" / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f'VERSION = "{version}"\n')
    (project / "README.md").write_text(f"# {module}\n")


def dist_names(dist: Path) -> list[str]:
    return sorted(p.name for p in dist.iterdir())


def wheel_module(wheel: Path, module: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(f"{module}/__init__.py").decode()


def sdist_has(sdist: Path, suffix: str) -> bool:
    with tarfile.open(sdist) as tf:
        return any(name.endswith(suffix) for name in tf.getnames())


def assert_stored(server, project: str, files: list[Path]) -> None:
    """The API lists exactly these files, with their sha256, uploaded by admin."""
    listed = api_files(server, project)
    assert listed is not None, f"{project} is not on the server"
    assert set(listed) == {p.name for p in files}, listed
    for path in files:
        record = listed[path.name]
        assert record["sha256"] == sha256_file(path), path.name
        assert record["uploader"] == "admin", record
        assert record["version"] == "0.1.0", record


# ---------------------------------------------------------------------------
# publish
# ---------------------------------------------------------------------------
def test_poetry_publish_build_and_republish(server, tmp_path):
    need(POETRY)
    env = tool_env(
        tmp_path / "client",
        **{
            # A named repository: URL and credentials from the environment, as in CI.
            "POETRY_REPOSITORIES_PPC_URL": f"{server.url}/",
            "POETRY_HTTP_BASIC_PPC_USERNAME": "admin",
            "POETRY_HTTP_BASIC_PPC_PASSWORD": PASSWORD,
        },
    )
    project = tmp_path / "poetrypkg"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "Acme.PoetryPkg"\nversion = "0.1.0"\n'
        'description = "poetry publish e2e"\nreadme = "README.md"\n'
        'requires-python = ">=3.8"\ndependencies = []\n\n'
        '[tool.poetry]\npackages = [{ include = "acme_poetrypkg", from = "src" }]\n\n'
        '[build-system]\nrequires = ["poetry-core>=2.0"]\n'
        'build-backend = "poetry.core.masonry.api"\n'
    )
    write_module(project, "acme_poetrypkg", "0.1.0")

    out = ok(poetry(["publish", "--build", "-r", "ppc"], env, project))
    dist = project / "dist"
    assert dist_names(dist) == ["acme_poetrypkg-0.1.0-py3-none-any.whl", "acme_poetrypkg-0.1.0.tar.gz"], out
    wheel, sdist = sorted(dist.iterdir())
    assert wheel_module(wheel, "acme_poetrypkg") == 'VERSION = "0.1.0"\n'
    assert sdist_has(sdist, "src/acme_poetrypkg/__init__.py")
    for path in (wheel, sdist):
        assert re.search(rf"Uploading {re.escape(path.name)} .*100%", out), out
    assert PASSWORD not in out
    assert_stored(server, "acme-poetrypkg", [wheel, sdist])
    first = api_files(server, "acme-poetrypkg")

    # Publishing the same files again (a re-run CI job) succeeds and changes nothing.
    out = ok(poetry(["publish", "-r", "ppc"], env, project))
    for path in (wheel, sdist):
        assert re.search(rf"Uploading {re.escape(path.name)} .*100%", out), out
    assert api_files(server, "acme-poetrypkg") == first

    # Same with --skip-existing (the flag CI jobs use): nothing to skip, no error.
    out = ok(poetry(["publish", "-r", "ppc", "--skip-existing"], env, project))
    assert "Skipping" not in out, out
    assert api_files(server, "acme-poetrypkg") == first

    # Other bytes under the same names (a rebuild after a change without a version
    # bump): 409 "File already exists" fails the publish; --skip-existing skips them.
    shutil.rmtree(dist)
    (project / "src" / "acme_poetrypkg" / "__init__.py").write_text('VERSION = "changed"\n')
    result = poetry(["publish", "--build", "-r", "ppc"], env, project)
    assert result.returncode != 0, result.stdout
    assert "409" in result.stdout and "File already exists" in result.stdout, result.stdout
    assert sha256_file(dist / wheel.name) != first[wheel.name]["sha256"]
    out = ok(poetry(["publish", "-r", "ppc", "--skip-existing"], env, project))
    for path in (wheel, sdist):
        assert re.search(rf"Uploading {re.escape(path.name)} .*File exists\. Skipping", out), out
    assert api_files(server, "acme-poetrypkg") == first

    # A wrong password is a failure the user sees, and stores nothing.
    bad = dict(env, POETRY_HTTP_BASIC_PPC_PASSWORD="wrong")
    result = poetry(["publish", "-r", "ppc"], bad, project)
    assert result.returncode != 0, result.stdout
    assert "401" in result.stdout, result.stdout
    assert api_files(server, "acme-poetrypkg") == first


def test_pdm_publish_and_republish(server, tmp_path):
    need(PDM)
    pytest.importorskip("pdm.backend", reason="pdm-backend is needed for builds without an index")
    env = tool_env(tmp_path / "client")
    project = tmp_path / "pdmpkg"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "Acme.PdmPkg"\nversion = "0.1.0"\n'
        'description = "pdm publish e2e"\nreadme = "README.md"\n'
        'requires-python = ">=3.8"\ndependencies = []\n\n'
        "[tool.pdm]\ndistribution = true\n\n"
        '[build-system]\nrequires = ["pdm-backend"]\nbuild-backend = "pdm.backend"\n'
    )
    write_module(project, "acme_pdmpkg", "0.1.0")

    # Builds run without isolation in the interpreter pdm is told to use: this
    # virtualenv, where pdm-backend is installed (nothing is installed into it).
    ok(pdm(["use", "-f", sys.executable], env, project))
    publish = ["publish", "-r", f"{server.url}/", "-u", "admin", "-P", PASSWORD]
    out = ok(pdm(publish, env, project))
    dist = project / "dist"
    assert dist_names(dist) == ["acme_pdmpkg-0.1.0-py3-none-any.whl", "acme_pdmpkg-0.1.0.tar.gz"], out
    wheel, sdist = sorted(dist.iterdir())
    assert wheel_module(wheel, "acme_pdmpkg") == 'VERSION = "0.1.0"\n'
    assert sdist_has(sdist, "src/acme_pdmpkg/__init__.py")
    assert PASSWORD not in out
    assert_stored(server, "acme-pdmpkg", [wheel, sdist])
    first = api_files(server, "acme-pdmpkg")

    # The same files again (--no-build: what is in dist/), and with --skip-existing.
    out = ok(pdm([*publish, "--no-build"], env, project))
    assert api_files(server, "acme-pdmpkg") == first
    out = ok(pdm([*publish, "--no-build", "--skip-existing"], env, project))
    assert "Skipping" not in out, out
    assert api_files(server, "acme-pdmpkg") == first

    # Other bytes under the same names: 409 fails the publish; --skip-existing skips.
    (project / "src" / "acme_pdmpkg" / "__init__.py").write_text('VERSION = "changed"\n')
    result = pdm(publish, env, project)  # rebuilds dist/ first
    assert result.returncode != 0, result.stdout
    assert "409" in result.stdout and "File already exists" in result.stdout, result.stdout
    assert sha256_file(dist / wheel.name) != first[wheel.name]["sha256"]
    out = ok(pdm([*publish, "--no-build", "--skip-existing"], env, project))
    for path in (wheel, sdist):
        assert f"Skipping {path.name} because it appears to already exist" in out, out
    assert api_files(server, "acme-pdmpkg") == first

    # A wrong password fails visibly and stores nothing.
    result = pdm(
        ["publish", "-r", f"{server.url}/", "-u", "admin", "-P", "wrong", "--no-build"], env, project
    )
    assert result.returncode != 0, result.stdout
    assert "401" in result.stdout, result.stdout
    assert api_files(server, "acme-pdmpkg") == first


# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------
def test_poetry_lock_and_install_from_the_server_only(published, dists, tmp_path):
    need(POETRY)
    env = tool_env(
        tmp_path / "client",
        **{
            "POETRY_HTTP_BASIC_PPC_USERNAME": "admin",
            "POETRY_HTTP_BASIC_PPC_PASSWORD": PASSWORD,
        },
    )
    source = f"{published.url}/simple/"
    project = tmp_path / "consumer"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "poetry-consumer"\nversion = "0.1.0"\n'
        'requires-python = ">=3.8"\ndependencies = ["Acme.Widget==1.0"]\n\n'
        "[tool.poetry]\npackage-mode = false\n\n"
        f'[[tool.poetry.source]]\nname = "ppc"\nurl = "{source}"\npriority = "primary"\n'
    )

    ok(poetry(["env", "use", BASE_PYTHON], env, project))
    ok(poetry(["lock"], env, project))
    lock = (project / "poetry.lock").read_text()
    assert PASSWORD not in lock
    assert f'url = "{published.url}/simple"\n' in lock, lock
    assert 'reference = "ppc"' in lock, lock
    for path in (dists.wheel("1.0"), dists.sdist("1.0")):
        assert f'hash = "sha256:{sha256_file(path)}"' in lock, (path.name, lock)
    assert dists.wheel("1.1").name not in lock  # only the pinned release

    out = ok(poetry(["install"], env, project))
    assert "acme-widget (1.0)" in out, out
    site = site_packages(project / ".venv")
    assert installed_version(site) == "1.0"
    assert (site / "Acme_Widget-1.0.dist-info").is_dir()


def test_pdm_lock_and_sync_from_the_server_only(published, dists, tmp_path):
    need(PDM)
    env = tool_env(tmp_path / "client", PDM_PYPI_USERNAME="admin", PDM_PYPI_PASSWORD=PASSWORD)
    source = f"{published.url}/simple"
    project = tmp_path / "consumer"
    project.mkdir()
    # The source named "pypi" replaces pdm's default index: nothing else is asked.
    (project / "pyproject.toml").write_text(
        '[project]\nname = "pdm-consumer"\nversion = "0.1.0"\n'
        'requires-python = ">=3.8"\ndependencies = ["Acme.Widget>=1.0"]\n\n'
        "[tool.pdm]\ndistribution = false\n\n"
        f'[[tool.pdm.source]]\nname = "pypi"\nurl = "{source}"\nverify_ssl = false\n'
    )

    ok(pdm(["use", "-f", BASE_PYTHON], env, project))
    ok(pdm(["lock", "--static-urls"], env, project))
    lock = (project / "pdm.lock").read_text()
    assert PASSWORD not in lock
    for path in (dists.wheel("1.1"), dists.sdist("1.1")):
        assert f"{published.url}/packages/{PROJECT}/{path.name}" in lock, (path.name, lock)
        assert f"sha256:{sha256_file(path)}" in lock, (path.name, lock)
    assert dists.wheel("1.0").name not in lock  # the newest release only

    out = ok(pdm(["sync"], env, project))
    site = site_packages(project / ".venv")
    assert installed_version(site) == "1.1", out
    assert (site / "Acme_Widget-1.1.dist-info").is_dir()
