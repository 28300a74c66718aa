"""Upstream project pages: the model and its PEP 691 JSON / PEP 503 HTML parsers.

Pure functions, no I/O: :mod:`.client` fetches the bytes and hands them here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urlsplit

from packaging.utils import canonicalize_name

from .. import dists
from ..errors import InvalidUpload, UpstreamError
from ..models import metadata_name
from .urls import _resolve


@dataclass(frozen=True)
class UpstreamFile:
    """One file of an upstream project page.

    ``url`` is absolute and without fragment. ``sha256`` is None when upstream gave
    none. ``metadata_sha256`` is the PEP 658 file's sha256, None when upstream
    offers no metadata file or no hash for it.
    """

    filename: str
    url: str
    sha256: str | None = None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    metadata_sha256: str | None = None
    size: int | None = None
    upload_time: str | None = None
    version: str | None = None  # set by distributions_of()

    @property
    def metadata_url(self) -> str:
        """PEP 658: the metadata file lives at the file's URL plus ``.metadata``."""
        return metadata_name(self.url)


@dataclass(frozen=True)
class UpstreamProject:
    """An upstream project page. ``serial`` differs between two fetches (a cache-key part)."""

    name: str
    files: tuple[UpstreamFile, ...]
    serial: int = 0

    def file(self, filename: str) -> UpstreamFile | None:
        for entry in self.files:
            if entry.filename == filename:
                return entry
        return None


def _hex(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text
    return None


def _metadata_hash(value: object) -> str | None:
    """sha256 of the PEP 658/714 metadata from a JSON value (dict) or an HTML attribute."""
    if isinstance(value, dict):
        return _hex(value.get("sha256"))
    if isinstance(value, str):
        name, _, digest = value.partition("=")
        if name.strip().lower() == "sha256":
            return _hex(digest)
    return None


def parse_json_page(body: bytes, page_url: str) -> UpstreamProject:
    """A PEP 691 project page. Raises UpstreamError when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise UpstreamError("The upstream index sent a project page that is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise UpstreamError("The upstream index sent a JSON page without a list of files")
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise UpstreamError("The upstream index sent a JSON page whose meta is not an object")
    version = str(meta.get("api-version", "1.0"))
    if not version.startswith("1."):
        raise UpstreamError(f"The upstream index speaks simple API {version}; 1.x is supported")
    files = (_json_file(entry, page_url) for entry in doc["files"])
    name = doc["name"] if isinstance(doc.get("name"), str) else ""
    return UpstreamProject(name=name, files=tuple(f for f in files if f is not None))


def _json_file(entry: object, page_url: str) -> UpstreamFile | None:
    """One entry of a PEP 691 ``files`` list, or None when it is not a usable file."""
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("filename"), str)
        or not isinstance(entry.get("url"), str)
    ):
        return None
    url = _resolve(page_url, entry["url"])
    if url is None:
        return None
    hashes = entry["hashes"] if isinstance(entry.get("hashes"), dict) else {}
    yanked = entry.get("yanked", False)
    metadata = entry.get("core-metadata", entry.get("dist-info-metadata"))
    size = entry.get("size")
    upload_time = entry.get("upload-time")
    requires_python = entry.get("requires-python")
    return UpstreamFile(
        filename=entry["filename"],
        url=url,
        sha256=_hex(hashes.get("sha256")),
        requires_python=requires_python if isinstance(requires_python, str) and requires_python else None,
        yanked=bool(yanked),
        yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
        metadata_sha256=_metadata_hash(metadata),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=upload_time if isinstance(upload_time, str) else None,
    )


class _LinkCollector(HTMLParser):
    """Collects the ``<a>`` elements of a PEP 503 page (and a ``<base href>``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.title = ""
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._finish()
            self._current = dict(attrs)
            self._text = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish()
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)
        if self._in_title:
            self.title += data

    def _finish(self) -> None:
        if self._current is not None:
            self.links.append((self._current, "".join(self._text).strip()))
        self._current = None

    def close(self) -> None:
        super().close()
        self._finish()


def parse_html_page(body: bytes, page_url: str) -> UpstreamProject:
    """A PEP 503 project page (parsed with the standard library's HTML parser)."""
    parser = _LinkCollector()
    try:
        parser.feed(body.decode("utf-8", "replace"))
        parser.close()
    except AssertionError:  # how _markupbase gives up, e.g. on "<![unknown[" sections
        raise UpstreamError("The upstream index sent an HTML page that cannot be parsed") from None
    # A base href that is no URL is ignored, as browsers do (links count from the page).
    base = (_resolve(page_url, parser.base) if parser.base else None) or page_url
    files = (_html_file(base, attrs, text) for attrs, text in parser.links)
    title = parser.title.strip()
    name = title[len("Links for ") :].strip() if title.startswith("Links for ") else ""
    return UpstreamProject(name=name, files=tuple(f for f in files if f is not None))


def _html_file(base: str, attrs: dict[str, str | None], text: str) -> UpstreamFile | None:
    """One ``<a>`` of a PEP 503 page, or None when it links to no usable URL."""
    href = attrs.get("href")
    if not href:
        return None
    url = _resolve(base, href)
    if url is None:
        return None
    fragment = urldefrag(href)[1]
    # PEP 503: the link text is the filename; the URL's last segment says the same.
    filename = text or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    hash_name, _, digest = fragment.partition("=")
    yanked = "data-yanked" in attrs
    metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    return UpstreamFile(
        filename=filename,
        url=url,
        sha256=_hex(digest) if hash_name.lower() == "sha256" else None,
        requires_python=attrs.get("data-requires-python") or None,
        yanked=yanked,
        yanked_reason=(attrs.get("data-yanked") or None) if yanked else None,
        metadata_sha256=_metadata_hash(metadata),
    )


def distributions_of(page: UpstreamProject, project: str) -> tuple[UpstreamFile, ...]:
    """The files of ``page`` that are wheels or sdists of ``project``, with their versions.

    Anything else (other projects' files, ``.exe``/``.egg`` and other formats,
    unsafe names) could be neither served nor cached, so it is left out.
    """
    wanted = canonicalize_name(project)
    kept, seen = [], set()
    for entry in page.files:
        try:
            dist = dists.parse_filename(entry.filename)
        except InvalidUpload:
            continue
        # A filename listed twice is one file: the first entry counts.
        if dist.project == wanted and entry.filename not in seen:
            seen.add(entry.filename)
            kept.append(dataclasses.replace(entry, version=dist.version))
    return tuple(kept)


def parse_project_page(body: bytes, content_type: str, page_url: str) -> UpstreamProject:
    """Either format, chosen by the answer's ``Content-Type``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.endswith("json"):
        return parse_json_page(body, page_url)
    return parse_html_page(body, page_url)
