"""The project page's README and metadata: read from the latest release's core metadata
(a wheel's stored .metadata, or an sdist's PKG-INFO), rendered without scripts, styles,
event handlers or images from anywhere, and read from storage once per file."""

from __future__ import annotations

import html

import pytest

from .helpers import core_metadata, make_sdist, make_wheel, upload_dist
from .test_admin_ui import SECRET, login

HOSTILE_MD = """# Acme

Some **bold** text and [a link](https://example.invalid/docs).

<script>document.title = "pwned"</script>

<img src="https://tracker.invalid/pixel.png" alt="tracker">

![badge](https://tracker.invalid/badge.svg)

<a href="javascript:alert(1)" onclick="alert(2)">click</a>

<div style="position:fixed;top:0">overlay</div>

<iframe src="https://evil.invalid/"></iframe>

```python
print("hello")
```
"""

HEADERS = [
    "Description-Content-Type: text/markdown",
    "License-Expression: MIT",
    "Author: Ada Lovelace",
    "Project-URL: Source, https://git.invalid/acme",
    "Project-URL: Evil, javascript:alert(1)",
    "Classifier: Programming Language :: Python :: 3",
    "Requires-Dist: requests>=2",
    "Requires-Dist: rich; extra == 'cli'",
    "Provides-Extra: cli",
]


@pytest.fixture
def ui(make_app):
    return make_app({"session.secret": SECRET})


def hostile_wheel(version: str = "1.0"):
    meta = core_metadata("acme", version, summary="Acme tools", extra_headers=HEADERS, body=HOSTILE_MD)
    return make_wheel("acme", version, metadata=meta)


def test_a_hostile_markdown_readme_renders_without_scripts_images_or_styles(ui):
    upload_dist(ui, hostile_wheel())
    login(ui)
    page = ui.get("/admin/projects/acme/").text
    readme = page.split('<div class="readme">')[1].split("</section>")[0]
    assert "<strong>bold</strong>" in readme
    assert '<a href="https://example.invalid/docs" rel="nofollow noopener noreferrer">a link</a>' in readme
    assert '<pre lang="python">' in readme or "<pre" in readme
    for bad in (
        "<script",
        "<img",
        "tracker.invalid",
        "javascript:",
        "onclick",
        "style=",
        "<iframe",
    ):
        assert bad not in readme, bad
    assert "<script" not in page.replace('<script src="/admin/static/ui.js" defer></script>', "")
    # The metadata beside it: license, author, links (web links only), dependencies, classifiers.
    text = html.unescape(page)
    assert "License: MIT" in text and "Author: Ada Lovelace" in text
    assert '<a href="https://git.invalid/acme" rel="nofollow noopener noreferrer">Source</a>' in text
    assert ">Evil<" not in text
    assert "<code>requests>=2</code>" in text and "<code>rich; extra == 'cli'</code>" in text
    assert "Programming Language :: Python :: 3" in text and "<code>cli</code>" in text
    assert "Requires Python <code>>=3.8</code>" in text


def test_rst_readme_from_an_sdist_pkg_info(ui):
    rst = "Title\n=====\n\n* one\n* two\n\n.. image:: https://tracker.invalid/x.png\n"
    sdist = make_sdist("rsty", "2.0", metadata_version="2.1", extra_headers=["License: BSD"])
    # Metadata 2.1: not reliable enough for a .metadata file, so it is read from the archive.
    name, data = sdist
    meta = core_metadata("rsty", "2.0", metadata_version="2.1", extra_headers=["License: BSD"], body=rst)
    sdist = make_sdist("rsty", "2.0", pkg_info=meta)
    upload_dist(ui, sdist)
    login(ui)
    page = ui.get("/admin/projects/rsty/").text
    readme = page.split('<div class="readme">')[1].split("</section>")[0]
    assert "<ul>" in readme and "one</p></li>" in readme and "Title" in readme
    assert "tracker.invalid" not in readme and "<img" not in readme
    assert "License: BSD" in page and f"From the metadata of {name}" in page


def test_rst_that_does_not_render_is_shown_as_plain_text(ui):
    body = "Broken\n=====\n\n.. raw:: html\n\n   <script>alert(1)</script>\n"
    meta = core_metadata("broken", "1.0", body=body)
    upload_dist(ui, make_wheel("broken", "1.0", metadata=meta))
    login(ui)
    readme = ui.get("/admin/projects/broken/").text.split('<div class="readme">')[1].split("</section>")[0]
    assert "<pre>" in readme and "&lt;script&gt;" in readme and "<script" not in readme


def test_metadata_is_read_from_storage_once_per_file(ui):
    upload_dist(ui, hostile_wheel())
    login(ui)
    service = ui.app.registry.service
    opened = []
    real_open = service.storage.open

    def counting_open(project, filename, *args, **kw):
        opened.append(filename)
        return real_open(project, filename, *args, **kw)

    service.storage.open = counting_open
    for _ in range(3):
        assert "<strong>bold</strong>" in ui.get("/admin/projects/acme/").text
    assert opened.count("acme-1.0-py3-none-any.whl.metadata") <= 1
    # A new release is a new file: its metadata is read, and the page shows it.
    upload_dist(ui, make_wheel("acme", "2.0", summary="Acme two"))
    page = ui.get("/admin/projects/acme/").text
    assert "Acme two" in page and "<strong>bold</strong>" not in page


def test_a_storage_error_hides_the_readme_only_until_storage_answers_again(ui):
    upload_dist(ui, hostile_wheel())
    login(ui)
    service = ui.app.registry.service
    real_open = service.storage.open

    def failing_open(project, filename, *args, **kw):
        raise OSError("storage is down")

    service.storage.open = failing_open
    page = ui.get("/admin/projects/acme/").text
    assert page.count("<h3 id=") == 1 and "No description in the metadata" in page  # the page still works
    service.storage.open = real_open
    assert "<strong>bold</strong>" in ui.get("/admin/projects/acme/").text
