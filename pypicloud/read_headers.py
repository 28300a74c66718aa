"""The headers of the hot read answers (index pages, files, metadata files).

One definition for the views (pypicloud/views/simple.py, views/files.py) and the
fast lane (pypicloud/fastlane.py), so that both send the very same headers.
Framework-free: plain lists and dicts of strings.
"""

from __future__ import annotations

from email.utils import format_datetime

from .models import FileRecord
from .pagecache import Page
from .simple_api import HTML, TEXT_HTML

# Pages differ by negotiated format and by the caller's credentials.
PAGE_VARY = "Accept, Authorization"
# The type of files and metadata files (no charset: bytes, not text).
FILE_TYPE = "application/octet-stream"


def page_cache_control(base: str, private: bool) -> str:
    """``base`` (``pypi.index_max_age``'s rule); ``private`` when the page depends on the
    caller's credentials, so that no shared cache may keep it."""
    return "private, " + base if private else base


def page_not_modified_headers(page: Page, cache_control: str) -> list[tuple[str, str]]:
    """The headers of a page's 304."""
    return [("ETag", page.etag), ("Vary", PAGE_VARY), ("Cache-Control", cache_control)]


def page_headers(page: Page, serial: int | None, cache_control: str) -> list[tuple[str, str]]:
    """The headers of a page's 200, in order, without ``Content-Length``."""
    content_type = page.content_type
    if content_type in (HTML, TEXT_HTML):
        content_type += "; charset=utf-8"
    headers = [
        ("Content-Type", content_type),
        ("ETag", page.etag),
        ("Vary", PAGE_VARY),
        ("Cache-Control", cache_control),
    ]
    if serial is not None:
        headers.append(("X-PyPI-Last-Serial", str(serial)))
    return headers


def file_headers(record: FileRecord, public: bool, max_age: int) -> dict[str, str]:
    """The validators and caching headers of a file (200, 206, 304 and 416 alike)."""
    headers = {
        "ETag": f'"{record.sha256}"',
        "Last-Modified": format_datetime(record.upload_time, usegmt=True),
        # A released file never changes (re-upload with other bytes is refused).
        # RFC 9111 section 3.5: "public" lets a shared cache (CDN, proxy) hand an
        # answer to an authenticated request to anyone. Only files anonymous
        # users may read are public; the others stay in the caller's own cache.
        "Cache-Control": f"{'public' if public else 'private'}, max-age={max_age}, immutable",
        "Accept-Ranges": "bytes",
    }
    if not public:
        headers["Vary"] = "Authorization"
    return headers


def metadata_headers(record: FileRecord, public: bool, max_age: int) -> dict[str, str]:
    """The headers of a PEP 658 metadata file: its file's, with the metadata's own ETag."""
    headers = file_headers(record, public, max_age)
    headers["ETag"] = f'"{record.metadata_sha256}"'
    return headers
