"""The in-memory ceiling: the least a Python package index can do, on the same waitress.

Issue 17's yardstick for write and download paths (the 14-byte hello-world of
``hello.py`` stays the yardstick of the read paths). It serves the URLs pypicloud
serves, from a dict:

- ``GET /simple/`` and ``GET /simple/<project>/`` (HTML, or PEP 691 JSON when
  ``Accept`` asks for it): pages rendered when an upload changes them, one dict
  lookup per request;
- at start-up, whatever ``<dir>/<project>/<file>`` holds (files put there directly);
- ``GET /api/package/<project>/<file>``: the file from disk (``wsgi.file_wrapper``);
- ``GET /api/package/<project>/<file>.metadata``: the wheel's METADATA, read from the
  wheel on the first request and kept in the dict;
- ``POST /simple/`` (twine's multipart form): the file part streamed straight to disk
  while its sha256 is computed (no fsync), then the pages re-rendered.

A page request carrying ``X-Ceiling-Headers: index`` gets the same page with the
headers a conforming index sends with it (pypicloud's set: ``ETag``, ``Vary``,
``Cache-Control``, ``X-PyPI-Last-Serial``, ``X-Request-ID``,
``X-Content-Type-Options``; the ETag computed once per page): the benchmark's
information row that tells how much of a page's cost on waitress is those headers
(docs/performance.md).

No auth, database, validation or durability: whatever pypicloud does beyond this is
what its ratio to the ceiling measures. ``pserve`` loads it with
``use = call:benchmarks.ceiling:app_factory`` and ``dir = <folder for uploads>``.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import random
import re
import threading
import uuid
import zipfile

CHUNK = 1024 * 1024
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "text/html; charset=utf-8"
_DISPOSITION = re.compile(r'(\w+)="([^"]*)"')


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class _Body:
    """A bounded reader over ``wsgi.input`` with a look-ahead buffer."""

    def __init__(self, stream, length: int):
        self.stream, self.remaining, self.buf = stream, length, b"\r\n"

    def fill(self) -> None:
        chunk = self.stream.read(min(CHUNK, self.remaining)) if self.remaining else b""
        if not chunk:
            raise ValueError("the request body ended inside the form")
        self.remaining -= len(chunk)
        self.buf += chunk

    def find(self, token: bytes) -> int:
        while (at := self.buf.find(token)) < 0:
            self.fill()
        return at


def parse_form(environ, open_file) -> dict[str, str]:
    """Stream a multipart form: small fields into the result, a file part into ``open_file(fields)``."""
    boundary = re.search(r"boundary=\"?([^\";]+)", environ.get("CONTENT_TYPE", "")).group(1).encode()
    delimiter = b"\r\n--" + boundary
    body = _Body(environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0))
    fields: dict[str, str] = {}
    start = body.find(delimiter)  # (fills the buffer: read it only afterwards)
    body.buf = body.buf[start + len(delimiter) :]
    while True:
        while len(body.buf) < 2:
            body.fill()
        if body.buf.startswith(b"--"):
            return fields
        end = body.find(b"\r\n\r\n")
        params = dict(_DISPOSITION.findall(body.buf[2:end].decode("latin-1")))
        body.buf = body.buf[end + 4 :]
        sink = open_file(fields) if "filename" in params else None
        value = bytearray()
        while (at := body.buf.find(delimiter)) < 0:
            keep = len(delimiter)  # the end may hold the start of the delimiter
            part, body.buf = body.buf[:-keep], body.buf[-keep:]
            (sink.write if sink else value.extend)(part)
            body.fill()
        part, body.buf = body.buf[:at], body.buf[at + len(delimiter) :]
        (sink.write if sink else value.extend)(part)
        if sink is None:
            fields[params.get("name", "")] = value.decode()
        else:
            fields["filename"] = params["filename"]


class _Sink:
    """The file part: to a temp file in the upload folder, hashed on the way."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, f".upload-{uuid.uuid4().hex}")
        self.handle = open(self.path, "wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha256.update(data)
        self.size += len(data)


class CeilingIndex:
    """The app: a dict of pages and files, changed only by uploads."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.lock = threading.Lock()
        self.projects: dict[str, dict[str, str]] = {}  # project -> filename -> sha256
        self.pages: dict[tuple[str, bool], bytes] = {}  # (path, json?) -> body
        self.files: dict[str, str] = {}  # download path -> file on disk
        self.etags: dict[tuple[str, bool], str] = {}  # (path, json?) -> ETag, made on first use
        self.serial = 0  # uploads so far: the X-PyPI-Last-Serial of the index-headers variant
        self.ids = random.Random()
        self._load_folder()
        self._render_root()

    def _load_folder(self) -> None:
        """Serve what ``<folder>/<project>/<file>`` already holds (a restart, or files
        seeded there directly: the upload API is too slow for 100,000 projects)."""
        for project in sorted(os.listdir(self.folder)):
            where = os.path.join(self.folder, project)
            if project.startswith(".") or not os.path.isdir(where):
                continue
            for filename in sorted(os.listdir(where)):
                disk = os.path.join(where, filename)
                with open(disk, "rb") as handle:
                    sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
                self.projects.setdefault(project, {})[filename] = sha256
                self.files[f"/api/package/{project}/{filename}"] = disk
            if project in self.projects:
                self._render_project(project)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if environ["REQUEST_METHOD"] == "POST":
            return self.upload(environ, start_response)
        wants_json = "json" in environ.get("HTTP_ACCEPT", "")
        body = self.pages.get((path, wants_json))
        if body is not None:
            kind = JSON_TYPE if wants_json else HTML_TYPE
            if "HTTP_X_CEILING_HEADERS" in environ:
                start_response("200 OK", self.index_headers((path, wants_json), kind, body))
            else:
                start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
            return [body]
        disk = self.files.get(path)
        if disk is not None:
            return self.download(environ, start_response, disk)
        if path.endswith(".metadata") and path[: -len(".metadata")] in self.files:
            return self.metadata(start_response, path)
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    def index_headers(self, key: tuple[str, bool], kind: str, body: bytes) -> list[tuple[str, str]]:
        """The headers pypicloud sends with an anonymous project page, in its order."""
        etag = self.etags.get(key)
        if etag is None:
            etag = self.etags[key] = f'"{hashlib.md5(body).hexdigest()}"'
        return [
            ("Content-Type", kind),
            ("ETag", etag),
            ("Vary", "Accept, Authorization"),
            ("Cache-Control", "max-age=0, must-revalidate"),
            ("X-PyPI-Last-Serial", str(self.serial)),
            ("Content-Length", str(len(body))),
            ("X-Request-ID", f"{self.ids.getrandbits(128):032x}"),
            ("X-Content-Type-Options", "nosniff"),
        ]

    def download(self, environ, start_response, disk: str):
        handle = open(disk, "rb")
        size = os.fstat(handle.fileno()).st_size
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
        )
        return environ["wsgi.file_wrapper"](handle, CHUNK)

    def metadata(self, start_response, path: str):
        with zipfile.ZipFile(self.files[path[: -len(".metadata")]]) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            body = wheel.read(name)
        self.pages[(path, False)] = self.pages[(path, True)] = body  # warm from now on
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    def upload(self, environ, start_response):
        sinks: list[_Sink] = []

        def open_file(_fields):
            sinks.append(_Sink(self.folder))
            return sinks[-1]

        fields = parse_form(environ, open_file)
        sink = sinks[0]
        sink.handle.close()
        project, filename = canonical(fields["name"]), os.path.basename(fields["filename"])
        os.makedirs(os.path.join(self.folder, project), exist_ok=True)
        disk = os.path.join(self.folder, project, filename)
        os.replace(sink.path, disk)
        with self.lock:
            new = project not in self.projects
            self.projects.setdefault(project, {})[filename] = sink.sha256.hexdigest()
            self.files[f"/api/package/{project}/{filename}"] = disk
            self._render_project(project)
            if new:
                self._render_root()
            self.serial += 1
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    def _render_root(self) -> None:
        names = sorted(self.projects)
        links = "".join(f'<a href="/simple/{n}/">{html.escape(n)}</a>\n' for n in names)
        self.etags.pop(("/simple/", False), None)
        self.etags.pop(("/simple/", True), None)
        self.pages[("/simple/", False)] = f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode()
        body = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
        self.pages[("/simple/", True)] = json.dumps(body).encode()

    def _render_project(self, project: str) -> None:
        files = sorted(self.projects[project].items())
        links = "".join(
            f'<a href="/api/package/{project}/{f}#sha256={h}">{html.escape(f)}</a>\n' for f, h in files
        )
        path = f"/simple/{project}/"
        self.etags.pop((path, False), None)
        self.etags.pop((path, True), None)
        self.pages[(path, False)] = f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode()
        body = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": [
                {"filename": f, "url": f"/api/package/{project}/{f}", "hashes": {"sha256": h}}
                for f, h in files
            ],
        }
        self.pages[(path, True)] = json.dumps(body).encode()


def app_factory(global_config, **settings):
    return CeilingIndex(settings["dir"])
