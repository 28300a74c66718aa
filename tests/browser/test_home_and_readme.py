"""The home page at ``/``, the project page's README and metadata, copy buttons, and the
forms that must survive a reload (token creation, flash messages, the per-file upload
limit), in Chromium as an anonymous reader, a logged-in reader, a publisher and an admin.

This module's server limits uploads to 1 MB per file (``SERVER_SETTINGS``).
"""

from __future__ import annotations

import os
import re

import pytest

from tests.fixtures.server import write_wheel

pytestmark = pytest.mark.browser

SERVER_SETTINGS = {"pypi.max_upload_size": "1M"}

HOSTILE_README = """# Acme widget

Some **bold** words and [the docs](https://docs.invalid/acme).

<script>window.pwned = 1; document.title = "pwned";</script>

<img src="https://tracker.invalid/pixel.png" alt="tracker" onerror="window.pwned = 2">

![badge](https://tracker.invalid/badge.svg)

<a href="javascript:window.pwned = 3" onclick="window.pwned = 4">click me</a>

<div style="position:fixed;inset:0;background:red">overlay</div>
"""


def hostile_metadata(version: str) -> bytes:
    headers = [
        "Metadata-Version: 2.1",
        "Name: readme-demo",
        f"Version: {version}",
        "Summary: A widget for end-to-end tests",
        "Requires-Python: >=3.9",
        "License-Expression: MIT",
        "Author: Ada Lovelace",
        "Project-URL: Source, https://git.invalid/acme",
        "Classifier: Programming Language :: Python :: 3",
        "Requires-Dist: requests>=2",
        "Description-Content-Type: text/markdown",
    ]
    return ("\n".join(headers) + "\n\n" + HOSTILE_README).encode()


@pytest.fixture(scope="module")
def shelf(site):
    """readme-demo 3.0 with a hostile README (everyone reads it; only admins write it, so no
    other test changes its latest release), and a private project only the admin may read."""
    wheel = write_wheel(site.dists_dir, "readme-demo", "3.0", metadata=hostile_metadata("3.0"))
    site.upload(wheel, "readme-demo")
    private = write_wheel(site.dists_dir, "secret-sauce", "1.0")
    site.admin_api("PUT", "/admin/package/secret-sauce/user/admin/write/")
    site.upload(private, "secret-sauce")
    return {"wheel": wheel, "private": private}


def recent_files(page) -> list[str]:
    section = page.locator("section", has=page.get_by_role("heading", name="Recent uploads"))
    return section.locator("tbody tr td:first-child").all_inner_texts()


def test_anonymous_home_page_searches_lists_recent_uploads_and_configures_tools(browser, site, shelf):
    page = browser.page
    browser.goto("/")
    assert page.url == site.url + "/"
    assert page.get_by_role("heading", level=1).inner_text().startswith("Python packages at 127.0.0.1")
    # Newest first, and only what an anonymous reader may read.
    assert shelf["wheel"].name in recent_files(page)
    assert shelf["private"].name not in " ".join(recent_files(page))
    section = page.locator("section", has=page.get_by_role("heading", name="Recent uploads"))
    times = section.locator("tbody tr td:nth-child(4)").all_inner_texts()
    assert times == sorted(times, reverse=True)
    # The configuration snippets carry this server's own index URL.
    index_url = f"{site.url}/simple/"
    snippets = page.locator("pre.snippet").all_inner_texts()
    assert f"pip install --index-url {index_url} PROJECT" in snippets
    assert f"[global]\nindex-url = {index_url}" in snippets
    assert any(f'url = "{index_url}"' in s and "[[index]]" in s for s in snippets)
    assert any(f"repository = {index_url}" in s and "[private]" in s for s in snippets)
    assert any(s.startswith(f"uv publish --publish-url {index_url}") for s in snippets)
    browser.shot("home")

    page.get_by_label("Search projects").fill("readme demo")
    browser.submit(page.get_by_role("button", name="Search"))
    assert page.url.startswith(site.url + "/admin/projects/?q=readme+demo")
    assert page.locator("main table tbody tr td:first-child a").all_inner_texts() == ["readme-demo"]


@pytest.mark.parametrize("user", ["rita", "pat", "admin"])
def test_home_page_for_each_role(browser, site, shelf, user):
    page = browser.page
    browser.login(user)
    browser.goto("/")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Home").is_visible()
    assert page.locator("header").get_by_text(user, exact=True).is_visible()
    assert (nav.get_by_role("link", name="Access").count() == 1) == (user == "admin")
    # The admin may read the private project, so its upload is listed for them only.
    listed = shelf["private"].name in recent_files(page)
    assert listed == (user == "admin")


def test_a_hostile_readme_is_shown_without_its_script_images_or_styles(browser, site, shelf):
    page = browser.page
    requested: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    browser.goto("/admin/projects/readme-demo/")
    readme = page.locator("div.readme")
    assert readme.get_by_role("heading", name="Acme widget").is_visible()
    assert readme.locator("strong").inner_text() == "bold"
    assert readme.get_by_role("link", name="the docs").get_attribute("href") == "https://docs.invalid/acme"
    assert readme.locator("script, img, iframe, [style], [onclick], [onerror]").count() == 0
    readme.get_by_text("click me").click()  # its href and onclick are gone: nothing runs
    assert page.evaluate("() => window.pwned") is None
    assert page.title() != "pwned" and not dialogs
    assert not [url for url in requested if "invalid" in url]  # nothing fetched from elsewhere
    meta = page.get_by_role("complementary", name="Metadata")
    assert "License: MIT" in meta.inner_text() and "Author: Ada Lovelace" in meta.inner_text()
    assert meta.get_by_role("link", name="Source").get_attribute("href") == "https://git.invalid/acme"
    assert "requests>=2" in meta.inner_text()
    assert "Requires Python >=3.9" in meta.inner_text()
    assert page.get_by_text("wheel py3-none-any").is_visible()  # the file's kind and tags
    browser.shot("project-readme")


def test_copy_buttons_copy_the_install_command_and_a_sha256(browser, site, shelf):
    import hashlib

    browser.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = browser.page
    browser.goto("/admin/projects/readme-demo/")
    page.get_by_role("button", name="Copy the pip command").first.click()
    page.wait_for_function("() => document.getElementById('copy-status').textContent.startsWith('Copied')")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == f"pip install --index-url {site.url}/simple/ readme-demo"
    name = shelf["wheel"].name
    page.get_by_role("button", name=f"Copy the sha256 of {name}").click()
    page.wait_for_function(
        "name => document.getElementById('copy-status').textContent.endsWith(name)", arg=name
    )
    assert (
        page.evaluate("() => navigator.clipboard.readText()")
        == hashlib.sha256(shelf["wheel"].read_bytes()).hexdigest()
    )


def test_reloading_after_creating_a_token_neither_repeats_it_nor_shows_it_again(browser, site, shelf):
    page = browser.page
    browser.login("pat")
    browser.goto("/admin/account/")
    form = page.locator("fieldset", has=page.get_by_text("New token"))
    form.get_by_label("Description").fill("reload check")
    form.get_by_label("Your current password").fill(site.passwords["pat"])
    browser.submit(form.get_by_role("button", name="Create token"))
    assert page.url == site.url + "/admin/account/"  # redirected: a reload is a GET
    assert re.fullmatch(r"\S{20,}", page.locator(".token").inner_text().strip())
    assert page.get_by_role("status").get_by_text("created for pat").is_visible()
    page.reload()
    browser.audit()
    assert page.locator(".token").count() == 0
    assert page.get_by_text("created for pat").count() == 0  # the message was shown once
    assert page.locator("main table tr", has_text="reload check").count() == 1


def test_the_upload_limit_is_per_file_and_messages_stay_on_the_server(browser, site, shelf, tmp_path):
    page = browser.page
    browser.login("pat", path="/login?next=/admin/upload/")
    assert "1.0 MB per file" in page.locator("main").inner_text()
    small = [write_wheel(tmp_path, "Acme.Widget", f"7.{n}", payload=os.urandom(900_000)) for n in range(3)]
    big = write_wheel(tmp_path, "Acme.Widget", "8.0", payload=os.urandom(1_200_000))
    page.get_by_label("Files to upload").set_input_files([str(p) for p in [*small, big]])
    browser.submit(page.get_by_role("button", name="Upload", exact=True))
    for path in small:
        assert page.get_by_role("status").get_by_text(f"Uploaded {path.name} to Acme.Widget").is_visible()
    refusal = page.get_by_role("alert")
    assert f"{big.name}: not stored, it is 1.2 MB, over the limit of 1.0 MB per file" in refusal.inner_text()
    status, body = site.server.get_json("/api/package/acme-widget/", user=None)
    stored = {f["filename"] for f in body["packages"]}
    assert {p.name for p in small} <= stored and big.name not in stored
    # The messages live on the server: the cookie holds a short id, not the list.
    [cookie] = [c for c in browser.context.cookies() if c["name"] == "ppc_session"]
    assert len(cookie["value"]) < 400 and "Uploaded" not in cookie["value"]
    browser.shot("upload-results")
    page.reload()
    browser.audit()
    assert page.get_by_text("Uploaded").count() == 0


def test_a_grant_with_a_bad_kind_is_refused_with_a_message(browser, site, shelf):
    page = browser.page
    browser.login("admin")
    browser.goto("/admin/access/")
    form = page.locator("form[action$='/admin/do/grant']")
    form.locator("input[name=project]").fill("acme-widget")
    form.locator("input[name=name]").fill("rita")
    # A tampered form: the kind select sends a value the page never offered.
    form.locator("select[name=kind]").evaluate("s => { s.options[0].value = 'robot'; s.value = 'robot'; }")
    browser.submit(form.get_by_role("button", name=re.compile("Grant")))
    assert page.url == site.url + "/admin/access/"
    assert "Invalid grant kind 'robot'" in page.get_by_role("alert").inner_text()


def test_a_publisher_yanks_and_deletes_a_whole_release(browser, site, shelf):
    page = browser.page
    for version in ("9.0", "9.1"):
        site.upload(write_wheel(site.dists_dir, "Acme.Widget", version), "Acme.Widget", user="pat")
    browser.login("pat")
    browser.goto("/admin/projects/acme-widget/")
    release = page.locator("section.release", has=page.get_by_role("heading", name=re.compile(r"^9\.1")))
    release.get_by_label("Reason").first.fill("bad build")
    browser.submit(release.get_by_role("button", name="Yank release 9.1"))
    assert "Yanked release 9.1 (1 files)" in page.get_by_role("status").inner_text()
    release = page.locator("section.release", has=page.get_by_role("heading", name=re.compile(r"^9\.1")))
    assert release.locator(".badge", has_text="yanked").is_visible()
    assert release.get_by_text("Yanked: bad build").is_visible()

    release = page.locator("section.release", has=page.get_by_role("heading", name=re.compile(r"^9\.0")))
    release.get_by_text("Delete release 9.0…").click()
    release.get_by_label(re.compile("Delete its 1 file for good")).check()
    browser.submit(release.get_by_role("button", name="Delete release"))
    assert "Deleted release 9.0 (1 files)" in page.get_by_role("status").inner_text()
    assert page.get_by_role("heading", name=re.compile(r"^9\.0")).count() == 0
    # Clean up: the yanked 9.1 goes too, so other tests see the releases they made.
    release = page.locator("section.release", has=page.get_by_role("heading", name=re.compile(r"^9\.1")))
    release.get_by_text("Delete release 9.1…").click()
    release.get_by_label(re.compile("Delete its 1 file for good")).check()
    browser.submit(release.get_by_role("button", name="Delete release"))
