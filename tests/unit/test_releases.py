"""Release grouping and ordering (pypicloud/releases.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pypicloud.models import FileRecord
from pypicloud.releases import group_releases, human_size, latest_release, version_key

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(
    version: str,
    filename: str | None = None,
    *,
    yanked: bool = False,
    minutes: int = 0,
    summary: str | None = None,
) -> FileRecord:
    return FileRecord(
        project="demo",
        name="Demo",
        version=version,
        filename=filename or f"demo-{version}-py3-none-any.whl",
        size=1,
        sha256="0" * 64,
        yanked=yanked,
        upload_time=T0 + timedelta(minutes=minutes),
        summary=summary,
    )


def test_versions_sort_by_pep_440_and_invalid_versions_sort_below_every_valid_one():
    texts = ["1.10", "not-a-version", "1.9", "1.0rc1", "1.0", "0.9.dev1", "also bad"]
    assert sorted(texts, key=version_key) == [
        "also bad",
        "not-a-version",
        "0.9.dev1",
        "1.0rc1",
        "1.0",
        "1.9",
        "1.10",
    ]


def test_files_group_into_releases_newest_first_wheels_before_sdists():
    releases = group_releases([record("1.0", "demo-1.0.tar.gz"), record("1.0"), record("2.0")])
    assert [r.version for r in releases] == ["2.0", "1.0"]
    assert [f.filename for f in releases[1].files] == ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"]


@pytest.mark.parametrize(
    "records, latest",
    [
        ([record("1.0"), record("2.0b1")], "1.0"),  # pre-releases are not latest
        ([record("1.0"), record("2.0", yanked=True)], "1.0"),  # nor wholly yanked releases
        ([record("2.0b1"), record("2.0b2")], "2.0b2"),  # unless nothing else exists
        ([record("1.0"), record("2.0", yanked=True), record("2.0", "demo-2.0.tar.gz")], "2.0"),
    ],
)
def test_the_latest_release_is_what_pip_would_pick(records, latest):
    assert latest_release(group_releases(records)).version == latest


def test_a_release_summary_is_its_newest_files():
    releases = group_releases(
        [record("1.0", summary="old", minutes=1), record("1.0", "demo-1.0.tar.gz", summary="new", minutes=2)]
    )
    assert releases[0].summary == "new"


@pytest.mark.parametrize(
    "size, text",
    [(0, "0 bytes"), (999, "999 bytes"), (1000, "1.0 kB"), (1_534_000, "1.5 MB"), (3 * 10**12, "3000.0 GB")],
)
def test_human_sizes(size, text):
    assert human_size(size) == text


def test_file_kind_names_wheel_tags_and_sdists():
    from pypicloud.releases import file_kind

    assert file_kind("demo-1.0-py3-none-any.whl") == "wheel py3-none-any"
    assert (
        file_kind("demo-1.0-1-cp312-cp312-manylinux_2_17_x86_64.whl")
        == "wheel cp312-cp312-manylinux_2_17_x86_64"
    )
    assert file_kind("demo-1.0.tar.gz") == "sdist"
