"""PyPI's upload rules on metadata, filenames and version spellings (issue 11 item 4).

Each rejection: 400, the reason in the status line and the body, and nothing in
storage or the index (``assert_nothing_left``, which also restarts the app).
"""

from __future__ import annotations

import pytest

from .helpers import (
    assert_nothing_left,
    assert_rejected,
    basic,
    core_metadata,
    file_record,
    make_sdist,
    make_wheel,
    simple_json,
    upload,
    upload_dist,
)


def test_summary_of_512_characters_is_accepted(app):
    upload_dist(app, make_wheel("demo", "1.0", summary="x" * 512))
    assert file_record(app, "demo-1.0-py3-none-any.whl").summary == "x" * 512


@pytest.mark.parametrize("make", [make_wheel, make_sdist])
def test_summary_over_512_characters_is_refused(app, tmp_path, make):
    filename, data = make("demo", "1.0", summary="x" * 100_000)
    response = upload(app, filename, data)
    assert_rejected(response, 400, "Summary is 100000 characters long", "limit is 512")
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize("make", [make_wheel, make_sdist])
def test_summary_on_more_than_one_line_is_refused(app, tmp_path, make):
    # A folded header: the metadata parser joins it, anything rendering it raw would not.
    filename, data = make("demo", "1.0", summary="Demo\n X-Injected: yes")
    response = upload(app, filename, data)
    assert_rejected(response, 400, "Summary must be a single line")
    assert_nothing_left(app, tmp_path, "demo", filename)


def test_long_name_and_version_are_refused_by_the_filename_limit(app, tmp_path):
    # PyPI has no separate length rule for Name and Version: their bound is the
    # filename's (255 characters, which PyPI's storage also imposes).
    for name, version in (("n" * 250, "1.0"), ("demo", "1." + "0" * 250)):
        filename, data = make_wheel(name, version)
        response = upload(app, filename, data)
        # (The status line carries a shortened reason; the body has all of it.)
        assert response.status_int == 400, response.status
        assert "longer than 255 characters" in response.text
        assert_nothing_left(app, tmp_path, name, None)


def test_description_over_the_metadata_limit_is_refused(make_app, tmp_path):
    # PyPI has no size rule of its own for Description; here the metadata file
    # that carries it is capped by pypi.max_metadata_size.
    app = make_app({"pypi.max_metadata_size": "64KB"})
    body = "A description line.\n" * 10_000  # ~200 kB
    filename, data = make_wheel("demo", "1.0", metadata=core_metadata("demo", "1.0", body=body))
    response = upload(app, filename, data)
    assert_rejected(response, 400, "is larger than")
    assert_nothing_left(app, tmp_path, "demo", filename)
    upload_dist(app, make_wheel("demo", "1.0"))  # a normal description passes


@pytest.mark.parametrize(
    "tag", ["py3-none-any!", "py3-none-an y", "py3-no%ne-any", "py3..py2-none-any", "py3-none-any."]
)
def test_invalid_wheel_tags_are_refused(app, tmp_path, tag):
    filename, data = make_wheel("demo", "1.0", tag=tag)
    response = upload(app, filename, data)
    assert response.status_int == 400, response.status
    assert "filename" in response.text.lower()
    assert_nothing_left(app, tmp_path, "demo", filename)


@pytest.mark.parametrize(
    "tag",
    [
        "py2.py3-none-any",
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp311-abi3-linux_x86_64",
        "cp312-cp312-win_amd64",
    ],
)
def test_valid_wheel_tags_are_accepted(app, tag):
    # Also linux_x86_64, which PyPI refuses (it cannot vouch for the ABI): private
    # indexes are where such in-house builds live.
    upload_dist(app, make_wheel("demo", "1.0", tag=tag))


@pytest.mark.parametrize(
    "first,second",
    [
        (make_sdist("demo", "1.0"), make_sdist("demo", "1.0.0")),
        (make_sdist("demo", "1.0.0", payload=b"other"), make_sdist("demo", "1.0")),
        (make_wheel("demo", "1.0"), make_wheel("demo", "1.0.0", payload=b"other")),
        (make_wheel("demo", "2.0rc1"), make_wheel("demo", "2.0.0rc1")),
    ],
)
def test_a_second_spelling_of_a_release_cannot_replace_a_file(app, tmp_path, first, second):
    upload_dist(app, first)
    response = upload(app, *second)
    assert_rejected(response, 400, "one release", first[0])
    assert_nothing_left(app, tmp_path, "demo", second[0])
    # The first file is untouched and still the only one.
    files = simple_json(app, "/simple/demo/").json["files"]
    assert [f["filename"] for f in files] == [first[0]]


def test_form_version_spelling_is_the_files_version(app, tmp_path):
    # twine sends the version as the metadata spells it; 1.0-rc1 is 1.0rc1.
    upload_dist(app, make_sdist("demo", "1.0rc1"), version="1.0-rc1")
    response = upload(app, *make_sdist("demo", "1.0.0rc1", payload=b"other"))
    assert_rejected(response, 400, "one release")


def test_other_files_of_a_release_under_another_spelling_are_accepted(app):
    # As on PyPI, the release gets more files: another wheel tag, under either spelling.
    upload_dist(app, make_wheel("demo", "1.0"))
    upload_dist(app, make_sdist("demo", "1.0.0"))
    upload_dist(app, make_wheel("demo", "1.0.0", tag="cp312-cp312-win_amd64"))
    upload_dist(app, make_wheel("demo", "1.0", build="1"))  # a build tag is its own slot
    files = {f["filename"] for f in simple_json(app, "/simple/demo/").json["files"]}
    assert len(files) == 4


def test_deleting_the_other_spelling_frees_the_slot(app):
    upload_dist(app, make_sdist("demo", "1.0"))
    app.delete("/api/package/demo/demo-1.0.tar.gz", headers=basic("admin"))
    upload_dist(app, make_sdist("demo", "1.0.0"))
    files = [f["filename"] for f in simple_json(app, "/simple/demo/").json["files"]]
    assert files == ["demo-1.0.0.tar.gz"]
