"""What a project page shows of a release's core metadata: the README, rendered safely,
and the fields PyPI shows beside it (requires-python, license, URLs, classifiers,
dependencies, author).

The metadata is the file's own METADATA / PKG-INFO, the bytes the service keeps as
the PEP 658 ``.metadata`` companion of a wheel (or of an sdist with reliable
metadata) or reads from the sdist itself. Pure functions, plus a bounded cache of
rendered results keyed by the metadata's sha256: a release's metadata never
changes, so nothing is read or rendered twice while it stays in the cache.

Rendering: Markdown (``text/markdown``, GitHub flavour) or reStructuredText (the
default, as on PyPI) through readme-renderer, plain text otherwise or when
reStructuredText fails; then nh3 with an allow-list of its own: no ``<img>`` (no
remote image ever loads, so viewing a README tells nobody outside who read it),
no ``style``, no scripts or event handlers, only http(s)/mailto links.
"""

from __future__ import annotations

import email.parser
import hashlib
import html
import logging
import re
from dataclasses import dataclass, field

import nh3

from .models import FileRecord
from .pagecache import PageCache

LOG = logging.getLogger(__name__)
# A README longer than this is cut before rendering (PyPI's own limit is far lower for
# the summary; a megabyte of Markdown still renders in well under a second).
MAX_DESCRIPTION = 1024 * 1024

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "tt", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title", "id", "name"},
    "abbr": {"title"},
    "code": {"class"},
    "div": {"class"},
    "h1": {"id"}, "h2": {"id"}, "h3": {"id"}, "h4": {"id"}, "h5": {"id"}, "h6": {"id"},
    "pre": {"class", "lang"},
    "span": {"class"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
}  # fmt: skip


@dataclass(frozen=True)
class ReleaseDetails:
    """The fields of one release's core metadata a project page shows."""

    summary: str | None = None
    description_html: str = ""
    requires_python: str | None = None
    license: str | None = None
    project_urls: list[tuple[str, str]] = field(default_factory=list)
    classifiers: list[str] = field(default_factory=list)
    requires_dist: list[str] = field(default_factory=list)
    provides_extra: list[str] = field(default_factory=list)
    author: str | None = None
    maintainer: str | None = None
    keywords: list[str] = field(default_factory=list)
    source: str = ""  # the file the metadata came from


# The empty permalink anchors renderers put into headings: links without a name for a
# screen reader (and nothing to click for anybody else). nh3's output is normalised
# HTML, so this pattern sees every such link as one tag pair.
_EMPTY_LINK = re.compile(r"<a\b[^>]*>\s*</a>")


def sanitise(markup: str) -> str:
    """HTML safe to put into a page of this server: see the module docstring."""
    return _EMPTY_LINK.sub("", _clean(markup))


def _clean(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )


def render_description(text: str, content_type: str | None) -> str:
    """The README as sanitised HTML (Markdown, reStructuredText or plain text)."""
    text = text[:MAX_DESCRIPTION]
    if not text.strip():
        return ""
    kind = (content_type or "").split(";")[0].strip().lower()
    rendered = None
    try:
        if kind == "text/markdown":
            from readme_renderer.markdown import render as render_md

            variant = "CommonMark" if "variant=commonmark" in (content_type or "").lower() else "GFM"
            rendered = render_md(text, variant=variant)
        elif kind in ("", "text/x-rst"):
            from readme_renderer.rst import render as render_rst

            rendered = render_rst(text)
    except Exception as exc:  # a renderer bug must not take the project page down
        LOG.warning("README rendering failed (%s): shown as plain text", exc)
        rendered = None
    if rendered is None:
        rendered = f"<pre>{html.escape(text)}</pre>"
    return sanitise(rendered)


def _description(message) -> str:
    body = message.get_payload()
    if isinstance(body, str) and body.strip():
        return body
    header = message.get("Description")
    if header is None:
        return ""
    # Before Metadata 2.1 the README was a header; continuation lines start with
    # eight spaces or "       |" (the "|" marks a blank-looking line).
    lines = str(header).splitlines()
    out = [lines[0]] if lines else []
    for line in lines[1:]:
        if line.startswith("       |"):
            out.append(line[8:])
        elif line.startswith("        "):
            out.append(line[8:])
        else:
            out.append(line.lstrip())
    return "\n".join(out)


def _one(message, key: str) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text if text and text.upper() != "UNKNOWN" else None


def _urls(message) -> list[tuple[str, str]]:
    urls: list[tuple[str, str]] = []
    home = _one(message, "Home-page")
    if home:
        urls.append(("Homepage", home))
    for entry in message.get_all("Project-URL") or []:
        label, _, url = str(entry).partition(",")
        label, url = label.strip(), url.strip()
        if url and (label, url) not in urls:
            urls.append((label or url, url))
    # Only web links: a javascript: or data: URL never becomes a link.
    return [(label, url) for label, url in urls if url.lower().startswith(("https://", "http://"))]


def parse_details(raw: bytes, source: str = "") -> ReleaseDetails:
    """The fields of METADATA / PKG-INFO bytes, with the README rendered."""
    message = email.parser.Parser().parsestr(raw.decode("utf-8", errors="replace"))
    license_text = _one(message, "License-Expression") or _one(message, "License")
    if license_text and len(license_text) > 200:  # a whole licence text pasted into the field
        license_text = None
    if not license_text:
        found = [
            c.split("::")[-1].strip()
            for c in message.get_all("Classifier") or []
            if c.startswith("License ::")
        ]
        license_text = ", ".join(found) or None
    keywords = _one(message, "Keywords") or ""
    return ReleaseDetails(
        summary=_one(message, "Summary"),
        description_html=render_description(_description(message), message.get("Description-Content-Type")),
        requires_python=_one(message, "Requires-Python"),
        license=license_text,
        project_urls=_urls(message),
        classifiers=[str(c).strip() for c in message.get_all("Classifier") or []],
        requires_dist=[" ".join(str(r).split()) for r in message.get_all("Requires-Dist") or []],
        provides_extra=[str(e).strip() for e in message.get_all("Provides-Extra") or []],
        author=_one(message, "Author") or _one(message, "Author-email"),
        maintainer=_one(message, "Maintainer") or _one(message, "Maintainer-email"),
        keywords=[k for k in keywords.replace(",", " ").split() if k],
        source=source,
    )


def metadata_sources(files: tuple[FileRecord, ...] | list[FileRecord]) -> list[FileRecord]:
    """The files of a release to take its metadata from, best first: files with a stored
    ``.metadata`` (wheels, then sdists), then sdists (read from the archive)."""
    stored = [f for f in files if f.metadata_sha256]
    stored.sort(key=lambda f: (not f.filename.endswith(".whl"), f.filename))
    sdists = [f for f in files if not f.metadata_sha256 and not f.filename.endswith(".whl")]
    return stored + sdists


class DetailsCache:
    """Parsed and rendered metadata by the sha256 of its bytes (bounded, thread-safe)."""

    def __init__(self, max_entries: int = 256):
        self._cache = PageCache(max_entries=max_entries)

    def details(self, raw: bytes, source: str) -> ReleaseDetails:
        key = hashlib.sha256(raw).hexdigest()
        found = self._cache.get(key, 0)
        if found is None:
            found = parse_details(raw, source)
            self._cache.put(key, 0, found)
        return found

    def get(self, key) -> object:
        return self._cache.get(key, 0)

    def put(self, key, value) -> None:
        self._cache.put(key, 0, value)
