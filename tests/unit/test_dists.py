"""Tests for pypicloud.dists: filename rules and bounded core-metadata reading (SPEC 5).

Archives are built in tmp_path at test time; nothing binary is checked in.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from pypicloud.dists import (
    CoreMetadata,
    DistFilename,
    check_filename_matches,
    check_filename_safe,
    check_project_name,
    check_version,
    parse_filename,
    read_core_metadata,
)
from pypicloud.errors import InvalidUpload

METADATA = (
    b"Metadata-Version: 2.1\n"
    b"Name: My_Package\n"
    b"Version: 1.0\n"
    b"Summary:  A  small\n   package \n"
    b"Requires-Python: >=3.9\n"
    b"\n"
    b"Long description body.\n"
)


def pkg_info(version: str = "2.2", extra: str = "", name: str = "my-package", ver: str = "1.0") -> bytes:
    return (
        f"Metadata-Version: {version}\nName: {name}\nVersion: {ver}\nSummary: An sdist\n{extra}\n"
    ).encode()


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> str:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


def make_tar(path: Path, members: list[tuple[str, bytes | int]]) -> str:
    """Write a .tar.gz; an int member is that many zero bytes, streamed (not held in memory)."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, int):
                info.size = data
                tf.addfile(info, _Zeros(data))
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return str(path)


class _Zeros(io.RawIOBase):
    def __init__(self, size: int):
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def wheel(tmp_path: Path, members: dict[str, bytes], filename: str = "my_package-1.0-py3-none-any.whl"):
    return make_zip(tmp_path / filename, members), parse_filename(filename)


def count_reads(monkeypatch, cls) -> dict[str, int]:
    """Count the bytes ``cls.read`` hands out, i.e. how much was really decompressed."""
    counter = {"bytes": 0}
    original = cls.read

    def read(self, *args, **kwargs):
        data = original(self, *args, **kwargs)
        counter["bytes"] += len(data)
        return data

    monkeypatch.setattr(cls, "read", read)
    return counter


def rejected(func, *args, **kwargs) -> str:
    with pytest.raises(InvalidUpload) as exc_info:
        func(*args, **kwargs)
    assert exc_info.value.status == 400
    return exc_info.value.message


# --- filenames --------------------------------------------------------------


@pytest.mark.parametrize(
    "filename, problem",
    [
        ("", "it is empty"),
        ("a/b-1.0.tar.gz", "path separator"),
        ("a\\b-1.0.tar.gz", "path separator"),
        ("a..b-1.0.tar.gz", "'..'"),
        ("ab-1.0.tar.gz\x00", "control character"),
        ("ab\n-1.0.tar.gz", "control character"),
        ("ab\x7f-1.0.tar.gz", "control character"),
        ("\x1fab-1.0.tar.gz", "control character"),
        (".hidden-1.0.tar.gz", "starts with a dot"),
        ("a" * 250 + "-1.0.tar.gz", "longer than 255"),
    ],
)
def test_unsafe_filenames_are_rejected(filename, problem):
    message = rejected(check_filename_safe, filename)
    assert message.startswith("Invalid filename")
    assert problem in message
    # parse_filename applies the same check first.
    assert rejected(parse_filename, filename) == message


def test_safe_filename_is_returned_unchanged():
    assert check_filename_safe("pkg-1.0.tar.gz") == "pkg-1.0.tar.gz"
    assert check_filename_safe("a" * 247 + "-1.0.zip") == "a" * 247 + "-1.0.zip"


@pytest.mark.parametrize(
    "filename, expected",
    [
        ("requests-2.31.0-py3-none-any.whl", ("requests", "requests", "2.31.0", "wheel")),
        ("My_Package-1.0-py3-none-any.whl", ("my-package", "My_Package", "1.0", "wheel")),
        ("numpy-1.26.0-1-cp311-cp311-manylinux_2_17_x86_64.whl", ("numpy", "numpy", "1.26.0", "wheel")),
        ("pkg-2.0-12abc-py2.py3-none-any.whl", ("pkg", "pkg", "2.0", "wheel")),
        ("my_package-1.0.tar.gz", ("my-package", "my_package", "1.0", "sdist")),
        ("my-package-1.0.tar.gz", ("my-package", "my-package", "1.0", "sdist")),
        ("Django-Rest.Framework-3.0.zip", ("django-rest-framework", "Django-Rest.Framework", "3.0", "sdist")),
        ("pkg-1.0RC1.tar.gz", ("pkg", "pkg", "1.0rc1", "sdist")),
        ("pkg-1.0+local.1.tar.gz", ("pkg", "pkg", "1.0+local.1", "sdist")),
    ],
)
def test_parse_filename(filename, expected):
    dist = parse_filename(filename)
    assert dist == DistFilename(filename, *expected)


def test_spellings_of_one_name_canonicalise_to_the_same_project():
    names = [
        "My.Package-1.0.tar.gz",
        "my_package-1.0.tar.gz",
        "MY-PACKAGE-1.0.zip",
        "my__package-1.0.tar.gz",
        "My_Package-1.0-py3-none-any.whl",
        "my.package-1.0-py3-none-any.whl",
    ]
    assert {parse_filename(n).project for n in names} == {"my-package"}


@pytest.mark.parametrize(
    "filename",
    [
        "pkg-1.0.exe",
        "pkg-1.0.tar.bz2",
        "pkg-1.0.egg",
        "pkg.tar.gz",
        "-1.0.tar.gz",
        "pkg-1.0.WHL",
        "pkg-1.0-py3-any.whl",  # too few parts
        "pkg-1.0-1-2-py3-none-any.whl",  # too many parts
        "pkg-1.0-x1-py3-none-any.whl",  # build tag must start with a digit
        "my__pkg-1.0-py3-none-any.whl",  # PEP 427 escaping
        "pkg-1.0-py3-none-.whl",  # empty tag
        "_pkg-1.0.tar.gz",  # name must start with a letter or digit
        "p\u017fg-1.0.tar.gz",  # non-ASCII that case-folds to ASCII
        "pkg -1.0.tar.gz",
        "pkg- 1.0.tar.gz",
    ],
)
def test_not_a_dist_filename(filename):
    assert (
        rejected(parse_filename, filename) == f"Invalid filename {filename!r}: not a wheel or sdist filename"
    )


@pytest.mark.parametrize(
    "filename",
    ["pkg-one.tar.gz", "pkg-1.0.0.dev-x.zip", "pkg-1.0_junk-py3-none-any.whl", "pkg-1.0.zip.tar.gz"],
)
def test_filename_with_invalid_version(filename):
    message = rejected(parse_filename, filename)
    assert message.startswith(f"Invalid filename {filename!r}")
    assert "not a PEP 440 version" in message


@pytest.mark.parametrize(
    "name, canonical", [("Django", "django"), ("a", "a"), ("Zope.Interface_x-2", "zope-interface-x-2")]
)
def test_check_project_name(name, canonical):
    assert check_project_name(name) == canonical


@pytest.mark.parametrize("name", ["", "-pkg", "pkg-", "pkg.", "pk g", "pkg\n", "p\u212aa", "caf\u00e9"])
def test_check_project_name_rejects(name):
    assert (
        rejected(check_project_name, name) == f"Invalid project name {name!r}: not a valid distribution name"
    )


@pytest.mark.parametrize("version, normal", [("1.0", "1.0"), ("1.0-1", "1.0.post1"), ("v2.0.RC1", "2.0rc1")])
def test_check_version(version, normal):
    assert check_version(version) == normal


@pytest.mark.parametrize("version", ["", "one", "1.0-beta-x", "1.0\x00"])
def test_check_version_rejects(version):
    assert rejected(check_version, version) == f"Invalid version {version!r}: not a PEP 440 version"


def test_filename_matches_after_canonicalising():
    dist = parse_filename("My_Package-1.0.post1-py3-none-any.whl")
    check_filename_matches(dist, "my.package", "1.0-1")
    check_filename_matches(dist, "MY-PACKAGE", "1.0.post1")


def test_filename_mismatch_names_both_sides():
    dist = parse_filename("my_package-1.0.tar.gz")
    assert rejected(check_filename_matches, dist, "other", "1.0") == (
        "Filename 'my_package-1.0.tar.gz' is for project 'my-package', but the form's name is 'other'"
    )
    assert rejected(check_filename_matches, dist, "my-package", "1.1") == (
        "Filename 'my_package-1.0.tar.gz' is for version '1.0', but the form's version is '1.1'"
    )
    assert "not a PEP 440 version" in rejected(check_filename_matches, dist, "my-package", "junk")


# --- wheels -----------------------------------------------------------------


def test_wheel_metadata_is_read(tmp_path):
    path, dist = wheel(
        tmp_path, {"my_package/__init__.py": b"", "my_package-1.0.dist-info/METADATA": METADATA}
    )
    meta = read_core_metadata(path, dist)
    assert meta == CoreMetadata(
        raw=METADATA,
        name="My_Package",
        version="1.0",
        summary="A small package",
        requires_python=">=3.9",
        metadata_version="2.1",
        reliable=True,
    )


def test_wheel_dist_info_dir_may_use_other_spellings(tmp_path):
    members = {"My.Package-1.0.0.dist-info/METADATA": METADATA.replace(b"1.0", b"1.0.0")}
    path, dist = wheel(tmp_path, members, "my_package-1.0.0-py3-none-any.whl")
    assert read_core_metadata(path, dist).version == "1.0.0"


def test_wheel_metadata_is_decoded_leniently(tmp_path):
    raw = b"Metadata-Version: 2.1\nName: my_package\nVersion: 1.0\nSummary: caf\xc3\xa9 \xff\n\n"
    path, dist = wheel(tmp_path, {"my_package-1.0.dist-info/METADATA": raw})
    meta = read_core_metadata(path, dist)
    assert meta.summary == "caf\u00e9 \ufffd"
    assert meta.raw == raw


@pytest.mark.parametrize(
    "members",
    [
        {"my_package/__init__.py": b""},
        {"other-1.0.dist-info/METADATA": METADATA},  # wrong project
        {"my_package-2.0.dist-info/METADATA": METADATA},  # wrong version
        {"my_package-1.0.dist-info/PKG-INFO": METADATA},
        {"sub/my_package-1.0.dist-info/METADATA": METADATA},  # not top level
        {"my_package-1.0.dist-info/sub/METADATA": METADATA},
        {"my_package-1.0.dist-info.bak/METADATA": METADATA},
    ],
)
def test_wheel_without_matching_metadata(tmp_path, members):
    path, dist = wheel(tmp_path, members)
    assert rejected(read_core_metadata, path, dist) == (
        "Invalid upload 'my_package-1.0-py3-none-any.whl': wheel has no my_package-1.0.dist-info/METADATA"
    )


def test_wheel_with_two_matching_dist_info_dirs(tmp_path):
    members = {"my_package-1.0.dist-info/METADATA": METADATA, "My.Package-1.0.dist-info/METADATA": METADATA}
    path, dist = wheel(tmp_path, members)
    assert "more than one my_package-1.0.dist-info/METADATA" in rejected(read_core_metadata, path, dist)


@pytest.mark.parametrize(
    "field, value, message",
    [
        (b"Name: My_Package", b"Name: other", "METADATA says Name 'other', the filename says 'my_package'"),
        (b"Version: 1.0", b"Version: 1.1", "METADATA says Version '1.1', the filename says '1.0'"),
        (b"Version: 1.0", b"Version: bad", "METADATA says Version 'bad'"),
    ],
)
def test_wheel_metadata_disagreeing_with_filename(tmp_path, field, value, message):
    path, dist = wheel(tmp_path, {"my_package-1.0.dist-info/METADATA": METADATA.replace(field, value)})
    assert message in rejected(read_core_metadata, path, dist)


def test_empty_file(tmp_path):
    path = tmp_path / "my_package-1.0-py3-none-any.whl"
    path.write_bytes(b"")
    message = rejected(read_core_metadata, str(path), parse_filename(path.name))
    assert message == "Invalid upload 'my_package-1.0-py3-none-any.whl': the file is empty"


@pytest.mark.parametrize(
    "filename", ["my_package-1.0-py3-none-any.whl", "my_package-1.0.zip", "my_package-1.0.tar.gz"]
)
def test_unreadable_archive(tmp_path, filename):
    path = tmp_path / filename
    path.write_bytes(b"this is not an archive at all" * 10)
    message = rejected(read_core_metadata, str(path), parse_filename(filename))
    assert message.startswith(f"Invalid upload {filename!r}: unreadable archive")


def test_truncated_wheel(tmp_path):
    path, dist = wheel(tmp_path, {"my_package-1.0.dist-info/METADATA": METADATA * 100})
    Path(path).write_bytes(Path(path).read_bytes()[:-30])
    assert "unreadable archive" in rejected(read_core_metadata, path, dist)


def test_metadata_over_max_size(tmp_path):
    path, dist = wheel(tmp_path, {"my_package-1.0.dist-info/METADATA": METADATA + b"x" * 2000})
    assert read_core_metadata(path, dist, max_size=5000).raw.endswith(b"x" * 2000)
    assert rejected(read_core_metadata, path, dist, max_size=1000) == (
        "Invalid upload 'my_package-1.0-py3-none-any.whl': "
        "my_package-1.0.dist-info/METADATA is larger than 1000 bytes"
    )


def _lie_about_size(path: str, claimed: int) -> None:
    """Patch the central directory's uncompressed size (the one zipfile trusts)."""
    data = bytearray(Path(path).read_bytes())
    at = data.rindex(b"PK\x01\x02")
    data[at + 24 : at + 28] = struct.pack("<I", claimed)
    Path(path).write_bytes(bytes(data))


def test_zip_header_claiming_small_but_data_larger(tmp_path):
    path, dist = wheel(tmp_path, {"my_package-1.0.dist-info/METADATA": METADATA + b"x" * 100_000})
    _lie_about_size(path, 100)
    # zipfile stops at the claimed size, then the CRC check fails.
    message = rejected(read_core_metadata, path, dist, max_size=1000)
    assert message.startswith("Invalid upload 'my_package-1.0-py3-none-any.whl': unreadable archive")
    assert "CRC" in message


@pytest.mark.parametrize("lie", [False, True])
def test_zip_bomb_is_rejected_quickly(tmp_path, monkeypatch, lie):
    bomb = METADATA + bytes(50 * 1024 * 1024)
    path, dist = wheel(tmp_path, {"my_package-1.0.dist-info/METADATA": bomb})
    del bomb
    assert Path(path).stat().st_size < 200_000
    if lie:  # the header says it is tiny: the read cap must still stop it
        _lie_about_size(path, 1000)
    counter = count_reads(monkeypatch, zipfile.ZipExtFile)
    start = time.perf_counter()
    message = rejected(read_core_metadata, path, dist)
    assert time.perf_counter() - start < 2
    assert counter["bytes"] <= 1000  # header refused outright, or read stopped at the claimed size
    expected = "unreadable archive" if lie else "METADATA is larger than 4194304 bytes"
    assert message.startswith("Invalid upload 'my_package-1.0-py3-none-any.whl': ")
    assert expected in message


# --- sdists -----------------------------------------------------------------


@pytest.mark.parametrize("filename", ["my-package-1.0.tar.gz", "my-package-1.0.zip"])
def test_sdist_metadata_is_read(tmp_path, filename):
    members = [("my-package-1.0/setup.py", b""), ("my-package-1.0/PKG-INFO", pkg_info())]
    path = tmp_path / filename
    if filename.endswith(".zip"):
        make_zip(path, dict(members))
    else:
        make_tar(path, members)
    meta = read_core_metadata(str(path), parse_filename(filename))
    assert meta == CoreMetadata(pkg_info(), "my-package", "1.0", "An sdist", None, "2.2", True)


@pytest.mark.parametrize(
    "raw, reliable",
    [
        (pkg_info("2.2"), True),
        (pkg_info("2.4"), True),
        (pkg_info("2.1"), False),
        (pkg_info("1.0"), False),
        (pkg_info("junk"), False),
        (pkg_info("2.2", extra="Dynamic: Requires-Dist\n"), False),
        (pkg_info("2.2", name="someone-else"), False),
        (pkg_info("2.2", ver="1.1"), False),
        (b"Metadata-Version: 2.2\nVersion: 1.0\n\n", False),
    ],
)
def test_sdist_reliable_flag(tmp_path, raw, reliable):
    path = make_tar(tmp_path / "my_package-1.0.tar.gz", [("my_package-1.0/PKG-INFO", raw)])
    meta = read_core_metadata(path, parse_filename("my_package-1.0.tar.gz"))
    assert meta.raw == raw
    assert meta.reliable is reliable


@pytest.mark.parametrize(
    "members",
    [
        [("my_package-1.0/setup.py", b"")],
        [("PKG-INFO", pkg_info())],  # not inside a top directory
        [("my_package-1.0/my_package.egg-info/PKG-INFO", pkg_info())],  # too deep
    ],
)
@pytest.mark.parametrize("ext", ["tar.gz", "zip"])
def test_sdist_without_pkg_info_has_no_metadata(tmp_path, members, ext):
    path = tmp_path / f"my_package-1.0.{ext}"
    make_zip(path, dict(members)) if ext == "zip" else make_tar(path, members)
    meta = read_core_metadata(str(path), parse_filename(path.name))
    assert meta == CoreMetadata(b"", None, None, None, None, None, False)


def test_sdist_pkg_info_symlink_is_not_followed(tmp_path):
    path = tmp_path / "my_package-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("my_package-1.0/PKG-INFO")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    assert read_core_metadata(str(path), parse_filename(path.name)).raw == b""


@pytest.mark.parametrize("ext", ["tar.gz", "zip"])
def test_sdist_pkg_info_over_max_size(tmp_path, ext):
    path = tmp_path / f"my_package-1.0.{ext}"
    members = [("my_package-1.0/PKG-INFO", pkg_info() + b"x" * 5000)]
    make_zip(path, dict(members)) if ext == "zip" else make_tar(path, members)
    assert rejected(read_core_metadata, str(path), parse_filename(path.name), max_size=1000) == (
        f"Invalid upload 'my_package-1.0.{ext}': my_package-1.0/PKG-INFO is larger than 1000 bytes"
    )


def test_tar_bomb_before_pkg_info_stops_scanning(tmp_path, monkeypatch):
    members = [("my_package-1.0/big.bin", 64 * 1024 * 1024), ("my_package-1.0/PKG-INFO", pkg_info())]
    path = make_tar(tmp_path / "my_package-1.0.tar.gz", members)
    dist = parse_filename("my_package-1.0.tar.gz")
    counter = count_reads(monkeypatch, gzip.GzipFile)
    start = time.perf_counter()
    meta = read_core_metadata(path, dist, max_scan=1024 * 1024)
    assert time.perf_counter() - start < 2
    assert counter["bytes"] <= 1024 * 1024 + 1  # decompressed no more than max_scan (+1 to notice)
    assert meta == CoreMetadata(b"", None, None, None, None, None, False)
    # With enough budget the same file does give its PKG-INFO.
    assert read_core_metadata(path, dist).raw == pkg_info()


def test_tar_with_huge_pax_header_stays_bounded(tmp_path):
    """tarfile reads a pax header whole; one claiming 64 MB must stop at max_scan, memory included."""
    header = tarfile.TarInfo("x")
    header.type, header.size = tarfile.XHDTYPE, 64 * 1024 * 1024
    path = tmp_path / "my_package-1.0.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as gz:
        gz.write(header.tobuf(tarfile.USTAR_FORMAT))
        for _ in range(64):
            gz.write(bytes(1024 * 1024))
    tracemalloc.start()
    try:
        meta = read_core_metadata(str(path), parse_filename(path.name), max_scan=1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert meta == CoreMetadata(b"", None, None, None, None, None, False)
    assert peak < 8 * 1024 * 1024


def test_corrupt_tar_inside_valid_gzip(tmp_path):
    path = tmp_path / "my_package-1.0.tar.gz"
    path.write_bytes(gzip.compress(b"\x01" * 2048))
    message = rejected(read_core_metadata, str(path), parse_filename(path.name))
    assert message.startswith("Invalid upload 'my_package-1.0.tar.gz': unreadable archive")


def test_truncated_gzip(tmp_path):
    members = [("my_package-1.0/a.py", bytes(range(256)) * 400), ("my_package-1.0/PKG-INFO", pkg_info())]
    path = Path(make_tar(tmp_path / "my_package-1.0.tar.gz", members))
    path.write_bytes(path.read_bytes()[:200])
    assert "unreadable archive" in rejected(read_core_metadata, str(path), parse_filename(path.name))
