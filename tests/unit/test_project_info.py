"""A release's core metadata as the project page shows it: fields, links, README rendering."""

from __future__ import annotations

from pypicloud.models import FileRecord
from pypicloud.project_info import metadata_sources, parse_details, render_description, sanitise


def record(filename: str, metadata: bool) -> FileRecord:
    return FileRecord("p", "p", "1.0", filename, 1, "0" * 64, metadata_sha256="1" * 64 if metadata else None)


def test_fields_of_old_and_new_metadata():
    raw = (
        b"Metadata-Version: 1.1\nName: old\nVersion: 1.0\nSummary: Old one\nHome-page: https://h.invalid/\n"
        b"Author: UNKNOWN\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n"
        b"Description: Title\n        =====\n        \n        Body text.\n"
    )
    details = parse_details(raw, "old-1.0.tar.gz")
    assert details.summary == "Old one" and details.author is None
    assert details.license == "MIT License"  # from the classifier when the field says nothing
    assert details.project_urls == [("Homepage", "https://h.invalid/")]
    assert "Body text." in details.description_html and "<h1" in details.description_html


def test_only_web_links_and_no_pasted_licence_text():
    raw = (
        b"Metadata-Version: 2.1\nName: x\nVersion: 1\nLicense: " + b"word " * 100 + b"\n"
        b"Project-URL: Docs, https://d.invalid/\nProject-URL: Bad, javascript:alert(1)\n"
        b"Project-URL: Data, data:text/html,x\n\n"
    )
    details = parse_details(raw)
    assert details.project_urls == [("Docs", "https://d.invalid/")]
    assert details.license is None


def test_markdown_rst_and_plain_text():
    assert "<em>hi</em>" in render_description("*hi*", "text/markdown")
    assert "<em>hi</em>" in render_description("*hi*", "text/x-rst")
    assert render_description("*hi* <b>", "text/plain") == "<pre>*hi* &lt;b&gt;</pre>"
    assert render_description("   ", None) == ""


def test_sanitise_drops_images_scripts_styles_and_handlers():
    dirty = (
        '<p style="color:red" onclick="x()">t</p><img src="https://t.invalid/a.png">'
        '<script>x()</script><a href="javascript:x()">j</a><a href="https://ok.invalid/">ok</a>'
    )
    clean = sanitise(dirty)
    assert (
        clean
        == '<p>t</p><a rel="nofollow noopener noreferrer">j</a><a href="https://ok.invalid/" rel="nofollow noopener noreferrer">ok</a>'
    )


def test_metadata_comes_from_stored_metadata_first_then_sdists():
    files = [record("p-1.0.tar.gz", False), record("p-1.0-py3-none-any.whl", True), record("p-1.0.zip", True)]
    assert [f.filename for f in metadata_sources(files)] == [
        "p-1.0-py3-none-any.whl",
        "p-1.0.zip",
        "p-1.0.tar.gz",
    ]
    assert metadata_sources([record("p-1.0-cp311-none-any.whl", False)]) == []
