"""Helpers of the functional tests (and the security tests that build on them).

Users, settings and apps over ``pypicloud.main`` driven through WebTest, the
upload helpers and the checks that a refused request left nothing behind.
Every app stores its files in a directory under ``tmp_path`` and its index in a
SQLite file beside it, so a "restart" is simply a new app built on the same
directories. Distributions come from tests/builders.py.

Users (from the ini, as an admin would write them):

- ``admin`` is in ``auth.admins``;
- ``alice`` may write the project ``alice-pkg`` (``package.alice-pkg.user.alice = rw``);
- ``bob`` is a plain user (reads, through the default ``pypi.default_read = authenticated``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import webtest
from packaging.utils import canonicalize_name

import pypicloud
from pypicloud.access.passwords import hash_password

# Re-exported: the functional and security tests import the builders from here too.
from tests.builders import core_metadata, digests, escape_name, make_sdist, make_wheel  # noqa: F401

# ---------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}

# Made by the product's own hash_password. pbkdf2_sha256 (one of the formats
# pypicloud accepts) keeps the many fresh logins of these tests cheap; the
# default argon2id hash is exercised by a dedicated test.
HASHES = {user: hash_password(pw, "pbkdf2_sha256") for user, pw in PASSWORDS.items()}

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


def basic(user: str, password: str | None = None) -> dict[str, str]:
    """An ``Authorization: Basic`` header for ``user`` (their real password unless given)."""
    pw = PASSWORDS[user] if password is None else password
    token = base64.b64encode(f"{user}:{pw}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def auth_headers(user: str | None, password: str | None = None, **extra: str) -> dict[str, str]:
    headers = dict(basic(user, password)) if user else {}
    headers.update(extra)
    return headers


# ---------------------------------------------------------------------------
# Settings and apps
# ---------------------------------------------------------------------------
def base_settings(base: Path) -> dict[str, str]:
    """The ini of a small deployment: file storage and SQLite under ``base``."""
    return {
        "pypi.storage": "file",
        "storage.dir": str(base / "packages"),
        "pypi.db": "sql",
        "db.url": f"sqlite:///{base / 'index.sqlite'}",
        "pypi.auth": "config",
        "auth.admins": "admin",
        "user.admin": HASHES["admin"],
        "user.alice": HASHES["alice"],
        "user.bob": HASHES["bob"],
        "package.alice-pkg.user.alice": "rw",
    }


def build_app(base: Path, settings: Mapping[str, str]) -> webtest.TestApp:
    """A TestApp over ``pypicloud.main``, remembering how it was built (for restarts)."""
    wsgi = pypicloud.main({"here": str(base)}, **dict(settings))
    test_app = webtest.TestApp(wsgi)
    test_app.ppc_base = base
    test_app.ppc_settings = dict(settings)
    return test_app


def registry(test_app: webtest.TestApp):
    """The Pyramid registry behind a TestApp (``TestApp.app`` is the Pyramid router)."""
    return test_app.app.registry


def service(test_app: webtest.TestApp):
    return registry(test_app).service


def close_app(test_app: webtest.TestApp) -> None:
    registry(test_app).services.stop()  # background work first (the webhook worker)
    service(test_app).index.close()


def restart(test_app: webtest.TestApp) -> webtest.TestApp:
    """A new app built from the same settings on the same directories (caller closes it)."""
    return build_app(test_app.ppc_base, test_app.ppc_settings)


# ---------------------------------------------------------------------------
# Distributions (tests/builders.py) and digests
# ---------------------------------------------------------------------------
from tests.builders import digests  # noqa: E402


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# Uploading as twine does
# ---------------------------------------------------------------------------
_UNSET = object()


def _guess_name_version(filename: str) -> tuple[str, str]:
    stem = filename
    for suffix in (".whl", ".tar.gz", ".zip"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if filename.endswith(".whl"):
        parts = stem.split("-")
        return parts[0], parts[1] if len(parts) > 1 else ""
    name, _, version = stem.rpartition("-")
    return name, version


def _archive_metadata(filename: str, data: bytes) -> tuple[str, str] | None:
    """Name and Version from the file's METADATA / PKG-INFO, as twine reads them; else None."""
    import email.parser

    raw = None
    try:
        if filename.endswith(".whl"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = [m for m in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", m)]
                raw = zf.read(members[0]) if members else None
        elif filename.endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
                for member in tf:
                    if re.fullmatch(r"[^/]+/PKG-INFO", member.name):
                        raw = tf.extractfile(member).read()
                        break
    except Exception:  # broken archives are what some tests upload on purpose
        return None
    if not raw:
        return None
    headers = email.parser.HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    if headers.get("Name") and headers.get("Version"):
        return str(headers["Name"]), str(headers["Version"])
    return None


def twine_fields(
    filename: str, data: bytes, *, name: str | None = None, version: str | None = None
) -> dict[str, str]:
    """The form twine sends: name and version from the archive's metadata, as twine does."""
    guessed_name, guessed_version = _archive_metadata(filename, data) or _guess_name_version(filename)
    is_wheel = filename.endswith(".whl")
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name if name is not None else guessed_name,
        "version": version if version is not None else guessed_version,
        "filetype": "bdist_wheel" if is_wheel else "sdist",
        "pyversion": "py3" if is_wheel else "source",
        "summary": "A test package",
        "requires_python": ">=3.8",
    }
    fields.update(digests(data))
    return fields


def upload(
    test_app: webtest.TestApp,
    filename: str | None,
    data: bytes | None,
    *,
    user: str | None = "admin",
    password: str | None = None,
    name: str | None = None,
    version: str | None = None,
    fields: Mapping[str, object] | None = None,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    status: int | None = None,
) -> webtest.TestResponse:
    """POST one distribution the way ``twine upload`` does (multipart form, Basic auth).

    ``fields`` overrides form fields; a value of None leaves the field out, a
    list sends it repeatedly. ``data=None`` sends no ``content`` part at all.
    ``status`` asserts the answer's status code.
    """
    form = twine_fields(filename or "", data or b"", name=name, version=version)
    for key, value in (fields or {}).items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    params: list[tuple[str, str]] = []
    for key, value in form.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        params.extend((key, str(v)) for v in values)
    all_headers = auth_headers(user, password)
    all_headers.update(headers or {})
    upload_files = [("content", filename, data)] if data is not None else []
    response = test_app.post(
        path,
        params=params,
        upload_files=upload_files,
        content_type="multipart/form-data",
        headers=all_headers,
        expect_errors=True,
    )
    if status is not None:
        assert response.status_int == status, (response.status, response.text)
    return response


def upload_dist(test_app, dist: tuple[str, bytes], **kw) -> webtest.TestResponse:
    """Upload a ``(filename, bytes)`` pair from make_wheel / make_sdist; expects success."""
    filename, data = dist
    kw.setdefault("status", 200)
    return upload(test_app, filename, data, **kw)


def assert_rejected(response, status: int, *reason_parts: str) -> None:
    """A 4xx whose status line AND body both carry the reason."""
    assert response.status_int == status, (response.status, response.text)
    status_line = response.status
    body = response.text
    assert status_line.split(" ", 1)[1].strip(), "the status line has no reason phrase"
    for part in reason_parts:
        assert part.lower() in status_line.lower(), (part, status_line)
        assert part.lower() in body.lower(), (part, body)
    if status == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Basic"), response.headers


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------
def simple_json(test_app, path: str = "/simple/", user: str | None = "admin", **kw):
    return test_app.get(path, headers=auth_headers(user, Accept=JSON_TYPE), **kw)


def project_names(test_app, user: str | None = "admin") -> list[str]:
    response = simple_json(test_app, user=user)
    assert response.status_int == 200
    return [canonicalize_name(p["name"]) for p in response.json["projects"]]


def storage_files(root: Path) -> list[Path]:
    """Every non-hidden regular file below ``root``."""
    if not root.exists():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return found


def leftover_temp_files(root: Path) -> list[Path]:
    """Temp files of interrupted writes (hidden ``*.tmp-*``) anywhere below ``root``."""
    if not root.exists():
        return []
    return [Path(d) / f for d, _, files in os.walk(root) for f in files if ".tmp-" in f]


def _assert_absent_from(test_app, project: str, filename: str) -> None:
    index = service(test_app).index
    if filename:
        assert index.get(filename) is None, f"{filename} is in the index"
    remaining = index.files(project) if project else []
    if project and not remaining:
        page = test_app.get(f"/simple/{project}/", headers=basic("admin"), expect_errors=True)
        assert page.status_int == 404, (page.status, page.text)
        assert project not in project_names(test_app)
    elif project and filename:
        page = simple_json(test_app, f"/simple/{project}/")
        assert filename not in [f["filename"] for f in page.json["files"]]
    if filename:
        assert filename not in simple_json(test_app).text


def assert_nothing_left(
    test_app, tmp_path: Path, project: str | None, filename: str | None, *, storage_dir: Path | None = None
) -> None:
    """A rejected upload left nothing behind: not served, not stored, not indexed, not after a restart.

    ``project`` may be a display name (it is canonicalised). When the project
    has other files the page must simply not list ``filename``; otherwise the
    project must be unknown (404) and absent from ``/simple/``.
    """
    project = canonicalize_name(project) if project else ""
    filename = filename or ""
    root = storage_dir or Path(test_app.ppc_settings.get("storage.dir", tmp_path / "packages"))
    names = [p.name for p in storage_files(root)]
    if filename:
        assert filename not in names, f"{filename} was stored: {names}"
        assert filename + ".metadata" not in names
    indexed = {r.filename for r in service(test_app).index.all_records()}
    stray = [
        n
        for n in names
        if n not in indexed and not (n.endswith(".metadata") and n[: -len(".metadata")] in indexed)
    ]
    assert not stray, f"files in storage that the index does not know: {stray}"
    assert not leftover_temp_files(root), leftover_temp_files(root)
    spool = Path(tempfile.gettempdir())
    if spool.is_relative_to(tmp_path):
        assert not [p for p in spool.iterdir() if p.name.startswith("ppc-")], list(spool.iterdir())
    _assert_absent_from(test_app, project, filename)
    fresh = restart(test_app)
    try:
        _assert_absent_from(fresh, project, filename)
    finally:
        close_app(fresh)


def file_record(test_app, filename: str):
    return service(test_app).index.get(filename)


def stored_path(test_app, project: str, filename: str) -> Path:
    return Path(test_app.ppc_settings["storage.dir"]) / canonicalize_name(project) / filename


def load_json(response):
    return json.loads(response.body)
