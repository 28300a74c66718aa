"""Helpers of the end-to-end tests: running real clients, raw HTTP, storage checks."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from tests.fixtures.server import BIN_DIR, USERS, ServerProcess, basic_auth, package_files, sha256_file

PYTHON = sys.executable
UV = str(BIN_DIR / "uv")
TWINE = str(BIN_DIR / "twine")
CLIENT_TIMEOUT = 180  # seconds; a client that hangs longer is a failure, not a wait

# Variables of the developer's machine that would point clients elsewhere.
_DROP_PREFIXES = ("PIP_", "UV_", "TWINE_", "PPC_", "PYTHONPATH")
_DROP = {
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NETRC",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "VIRTUAL_ENV",
}


def client_env(workdir: Path, **extra: str) -> dict[str, str]:
    """An environment in which pip, uv and twine only see what the test tells them."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES) and k not in _DROP}
    env.update(
        {
            "HOME": str(home),  # no ~/.pypirc, ~/.netrc, ~/.config/pip or uv.toml of the user
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "NO_COLOR": "1",
            "PIP_CONFIG_FILE": os.devnull,  # no pip configuration file at all
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_DEFAULT_TIMEOUT": "60",
            "PIP_RETRIES": "0",
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(workdir / "uv-cache"),
            "UV_PYTHON": PYTHON,
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_PROGRESS": "1",
            "UV_HTTP_TIMEOUT": "60",
            "TWINE_NON_INTERACTIVE": "1",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        }
    )
    env.update(extra)
    return env


def run(
    cmd: list[str], env: Mapping[str, str], *, cwd: Path | None = None, timeout: float = CLIENT_TIMEOUT
) -> subprocess.CompletedProcess:
    """Run a client; stdout and stderr together in ``.stdout`` (text)."""
    try:
        return subprocess.run(
            [str(c) for c in cmd],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run killed it
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        raise AssertionError(f"{cmd[:3]} did not finish in {timeout}s:\n{out}") from None


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout}"
    return result.stdout


def twine_upload(
    server: ServerProcess,
    files: Iterable[Path],
    env: Mapping[str, str],
    *,
    user: str = "admin",
    password: str | None = None,
    extra: Iterable[str] = (),
) -> subprocess.CompletedProcess:
    pw = USERS.get(user, "") if password is None else password
    return run(
        [
            TWINE,
            "upload",
            "--disable-progress-bar",
            "--non-interactive",
            "--repository-url",
            f"{server.url}/simple/",
            "-u",
            user,
            "-p",
            pw,
            *extra,
            *files,
        ],
        env,
    )


def pip_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "pip", *args]


def index_url(server: ServerProcess, user: str = "admin") -> str:
    return server.auth_url(user) + "/simple/"


# ---------------------------------------------------------------------------
# Reading the server
# ---------------------------------------------------------------------------
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def simple_files(server: ServerProcess, project: str, user: str = "admin") -> dict[str, dict] | None:
    """``{filename: file entry}`` of the PEP 691 project page, or None on 404."""
    status, _, body = server.request("GET", f"/simple/{project}/", user=user, headers={"Accept": JSON_TYPE})
    if status == 404:
        return None
    assert status == 200, (status, body[:500])
    return {f["filename"]: f for f in json.loads(body)["files"]}


def api_files(server: ServerProcess, project: str) -> dict[str, dict] | None:
    """``{filename: record}`` of ``GET /api/package/<project>/`` (admin), or None when the
    project has no files (answered ``200 {"packages": []}``, as pypicloud 1.x did)."""
    status, _, body = server.request("GET", f"/api/package/{project}/", user="admin")
    assert status == 200, (status, body[:500])
    return {p["filename"]: p for p in json.loads(body)["packages"]} or None


def download_sha256(server: ServerProcess, project: str, filename: str) -> str:
    """sha256 of a file streamed from the server (admin credentials)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(
            "GET", f"/api/package/{project}/{filename}", headers={"Authorization": basic_auth("admin")}
        )
        resp = conn.getresponse()
        assert resp.status == 200, (resp.status, resp.read(500))
        digest = hashlib.sha256()
        for _ in range(1 << 20):  # bounded: at most 1M blocks of 1 MB
            block = resp.read(1024 * 1024)
            if not block:
                break
            digest.update(block)
        return digest.hexdigest()
    finally:
        conn.close()


def stored_packages(server: ServerProcess, project: str) -> dict[str, str]:
    """``{filename: sha256}`` of the distribution files storage holds for a project.

    Hidden files (temp files, metadata sidecars) are not packages; a PEP 658
    ``<file>.metadata`` companion is not one either when its file is there.
    """
    folder = server.storage_dir / project
    files = {p.name: p for p in package_files(folder)}
    return {
        name: sha256_file(path)
        for name, path in files.items()
        if not (name.endswith(".metadata") and name[: -len(".metadata")] in files)
    }


def assert_index_matches_storage(
    server: ServerProcess, project: str, *, download: bool = True
) -> dict[str, str]:
    """The REST listing, the simple page and the storage dir agree exactly (sha256 recomputed).

    Returns ``{filename: sha256}`` of what is stored.
    """
    stored = stored_packages(server, project)
    listed = api_files(server, project)
    page = simple_files(server, project)
    if not stored:
        assert listed is None, f"index lists files storage does not hold: {listed}"
        assert page is None, f"/simple/{project}/ lists files storage does not hold: {page}"
        return stored
    assert listed is not None, f"storage holds {sorted(stored)} but the index has no {project}"
    assert {n: r["sha256"] for n, r in listed.items()} == stored
    assert page is not None
    assert {n: f["hashes"]["sha256"] for n, f in page.items()} == stored
    for name, record in listed.items():
        assert record["size"] == (server.storage_dir / project / name).stat().st_size
        if download:
            assert download_sha256(server, project, name) == stored[name], name
    return stored


def hidden_leftovers(server: ServerProcess) -> list[str]:
    """Temp files of interrupted writes in storage and spool files in the server's TMPDIR."""
    found = []
    if server.storage_dir.exists():
        for dirpath, _, files in os.walk(server.storage_dir):
            found += [os.path.join(dirpath, f) for f in files if ".tmp-" in f]
    if server.tmpdir.exists():
        found += [str(p) for p in server.tmpdir.iterdir()]
    return sorted(found)


# ---------------------------------------------------------------------------
# A multipart upload streamed with http.client (what twine sends, without twine)
# ---------------------------------------------------------------------------
def twine_form(name: str, version: str, filename: str, sha256: str | None = None) -> list[tuple[str, str]]:
    wheel = filename.endswith(".whl")
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", name),
        ("version", version),
        ("filetype", "bdist_wheel" if wheel else "sdist"),
        ("pyversion", "py3" if wheel else "source"),
    ]
    if sha256:
        fields.append(("sha256_digest", sha256))
    return fields


class Upload:
    """A multipart/form-data POST whose file part is streamed from disk in chunks.

    ``send(on_progress)`` calls ``on_progress(sent, total)`` after every chunk;
    when it returns True the upload stops sending (the connection stays open).
    """

    CHUNK = 1024 * 1024

    def __init__(
        self,
        server: ServerProcess,
        path: str,
        fields: list[tuple[str, str]],
        file_path: Path,
        *,
        filename: str | None = None,
        user: str | None = "admin",
        timeout: float = 120,
    ):
        self.server = server
        self.path = path
        self.file_path = file_path
        boundary = "----e2e" + uuid.uuid4().hex
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{filename or file_path.name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.head = head
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.total = len(head) + file_path.stat().st_size + len(self.tail)
        self.headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(self.total),
        }
        if user:
            self.headers["Authorization"] = basic_auth(user)
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        self.sent = 0
        self.error: OSError | None = None

    def _chunks(self):
        yield self.head
        with open(self.file_path, "rb") as handle:
            for _ in range(1 << 20):  # bounded
                block = handle.read(self.CHUNK)
                if not block:
                    break
                yield block
        yield self.tail

    def send(self, on_progress: Callable[[int, int], bool] | None = None) -> bool:
        """Send the body; False when it stopped early (on_progress said so, or the peer died)."""
        self.conn.putrequest("POST", self.path, skip_accept_encoding=True)
        for key, value in self.headers.items():
            self.conn.putheader(key, value)
        try:
            self.conn.endheaders()
            for block in self._chunks():
                self.conn.send(block)
                self.sent += len(block)
                if on_progress is not None and on_progress(self.sent, self.total):
                    return self.sent == self.total
        except OSError as exc:  # the server went away under us
            self.error = exc
            return False
        return True

    def response(self) -> tuple[int, str]:
        resp = self.conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")

    def response_ready(self) -> bool:
        """True when the server has started answering (without blocking)."""
        import select

        sock = self.conn.sock
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    def close(self) -> None:
        self.conn.close()


def upload_file(
    server: ServerProcess, file_path: Path, name: str, version: str, user: str = "admin"
) -> tuple[int, str]:
    """Upload one file completely; ``(status, body)``."""
    upload = Upload(
        server, "/", twine_form(name, version, file_path.name, sha256_file(file_path)), file_path, user=user
    )
    try:
        assert upload.send(), upload.error
        return upload.response()
    finally:
        upload.close()


def parse_downloads(log: str) -> list[str]:
    """File names from pip's ``Downloading <name or url> (<size>)`` lines."""
    names = []
    for match in re.finditer(r"^\s*Downloading (\S+)", log, re.MULTILINE):
        names.append(match.group(1).rsplit("/", 1)[-1])
    return names


def installed_version(target) -> str:
    """The VERSION constant of the acme_widget module installed into ``target``."""
    text = (target / "acme_widget" / "__init__.py").read_text()
    match = re.search(r'VERSION = "([^"]+)"', text)
    assert match, text
    return match.group(1)
