"""Distribution filenames and core metadata: the pure checks behind an upload.

Every rule of SPEC section 5 that can be decided from the filename, the form
fields or the archive itself lives here, so the upload view only calls these;
each rejection is an :class:`InvalidUpload` whose message the uploader sees.
Archives are only read through bounded reads, so a decompression bomb is
refused (or given up on) long before it costs anything.
"""

from __future__ import annotations

import dataclasses
import email.message
import email.parser
import gzip
import os
import re
import tarfile
import zipfile
import zlib
from typing import BinaryIO, cast

from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from pypicloud.errors import InvalidUpload

# What zipfile / tarfile / gzip raise on corrupt or hostile input (bad offsets give OSError,
# unknown compression NotImplementedError, encryption RuntimeError).
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


@dataclasses.dataclass(frozen=True)
class DistFilename:
    """What a distribution's filename says about it (PEP 427 / PEP 625)."""

    filename: str
    project: str  # canonical PEP 503 name
    name: str  # the name as written in the filename
    version: str  # normalised PEP 440 version
    kind: str  # "wheel" or "sdist"


@dataclasses.dataclass(frozen=True)
class CoreMetadata:
    """The METADATA / PKG-INFO of a file, kept byte-exact so it can be served as the PEP 658 file."""

    raw: bytes
    name: str | None
    version: str | None
    summary: str | None
    requires_python: str | None
    metadata_version: str | None
    reliable: bool  # may be served as the PEP 658 ``.metadata`` file


_NO_METADATA = CoreMetadata(b"", None, None, None, None, None, False)

# PyPI's limit on Summary (its upload rules); longer ones are refused, not cut.
MAX_SUMMARY = 512
# PEP 425 / 427: each python, abi and platform tag of a wheel filename is one or more
# ``.``-separated parts of ASCII letters, digits and underscores.
_TAG_PART = re.compile(r"[A-Za-z0-9_]+\Z")


def check_filename_safe(filename: str) -> str:
    """Refuse names that could escape or confuse storage paths; return the name unchanged.

    Storage backends build paths and keys from the filename, so this runs first
    and does not rely on any later, more specific parser.
    """
    checks = [
        (not filename, "it is empty"),
        ("/" in filename or "\\" in filename, "contains a path separator"),
        (".." in filename, "contains '..'"),
        (any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in filename), "contains a control character"),
        (filename.startswith("."), "starts with a dot"),
        (len(filename) > 255, "is longer than 255 characters"),
    ]
    for failed, problem in checks:
        if failed:
            raise InvalidUpload(f"Invalid filename {filename!r}: {problem}")
    return filename


def check_project_name(name: str) -> str:
    """Validate a distribution name (PEP 508 name rule); return its canonical PEP 503 form."""
    try:
        # validate=True applies the PEP 508 regex, anchored and ASCII-only (so no Unicode
        # letters that case-fold to ASCII, like the Kelvin sign, slip through).
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise InvalidUpload(f"Invalid project name {name!r}: not a valid distribution name") from None


def check_version(version: str) -> str:
    """Validate a PEP 440 version and return its normalised form, which is what we store and compare."""
    try:
        return str(Version(version))
    except InvalidVersion:
        raise InvalidUpload(f"Invalid version {version!r}: not a PEP 440 version") from None


def parse_filename(filename: str) -> DistFilename:
    """Parse a wheel (PEP 427) or sdist (PEP 625 ``.tar.gz``, legacy ``.zip``) filename."""
    check_filename_safe(filename)
    not_dist = InvalidUpload(f"Invalid filename {filename!r}: not a wheel or sdist filename")
    kind, name, version = _split_filename(filename, not_dist)
    try:
        project = check_project_name(name)
    except InvalidUpload:
        raise not_dist from None
    try:
        normalised = check_version(version)
    except InvalidUpload:
        raise InvalidUpload(f"Invalid filename {filename!r}: {version!r} is not a PEP 440 version") from None
    try:  # packaging checks the rest: PEP 427 name escaping, build tag, compatibility tags.
        parse_wheel_filename(filename) if kind == "wheel" else parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        raise not_dist from None
    if kind == "wheel":
        _check_wheel_tags(filename)
    return DistFilename(filename, project, name, normalised, kind)


def _split_filename(filename: str, not_dist: InvalidUpload) -> tuple[str, str, str]:
    """``(kind, name, version)`` as the filename spells them; ``not_dist`` when it is neither kind."""
    if any(ch.isspace() for ch in filename):
        raise not_dist
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        # PEP 427: name-version[-build]-python-abi-platform; escaped name and version hold no "-".
        if len(parts) not in (5, 6):
            raise not_dist
        return "wheel", parts[0], parts[1]
    if filename.endswith((".tar.gz", ".zip")):
        stem = filename[: -len(".tar.gz" if filename.endswith(".tar.gz") else ".zip")]
        # PEP 440 versions hold no "-", so the last one splits; legacy names keep theirs (PEP 625).
        name, _, version = stem.rpartition("-")
        return "sdist", name, version
    raise not_dist


def _check_wheel_tags(filename: str) -> None:
    # packaging accepts any characters in the tags; installers match them literally.
    for tag in filename[: -len(".whl")].split("-")[-3:]:
        if not all(_TAG_PART.match(part) for part in tag.split(".")):
            raise InvalidUpload(
                f"Invalid filename {filename!r}: invalid wheel tag {tag!r} "
                "(PEP 425: letters, digits and underscores, '.'-separated)"
            )


def same_release_slot(dist: DistFilename, other: str) -> bool:
    """Whether the stored file ``other`` holds the place ``dist`` would take in its release.

    Files whose versions are spellings of one version (``1.0`` / ``1.0.0``) are one
    release, as PyPI groups them. In a release there is one sdist (PyPI's rule) and
    one wheel per build tag and set of compatibility tags.
    """
    if other == dist.filename:
        return False
    try:
        stored = parse_filename(other)
    except InvalidUpload:
        return False  # a file uploaded before today's filename rules: no release slot
    if (
        stored.project != dist.project
        or stored.kind != dist.kind
        or canonicalize_version(stored.version) != canonicalize_version(dist.version)
    ):
        return False
    if dist.kind == "sdist":
        return True
    _, _, build, tags = parse_wheel_filename(dist.filename)
    _, _, stored_build, stored_tags = parse_wheel_filename(other)
    return (build, tags) == (stored_build, stored_tags)


def check_upload_metadata(meta: CoreMetadata, dist: DistFilename) -> None:
    """PyPI's upload rules on an archive's metadata that the index shows (SPEC section 5).

    Only uploads are checked: files cached from upstream were accepted there.
    """
    if not meta.raw:
        return
    headers = email.parser.HeaderParser().parsestr(meta.raw.decode("utf-8", errors="replace"))
    summary = headers.get("Summary")
    if summary is None:
        return
    summary = str(summary)
    # A folded header keeps its line breaks here; rendered anywhere, they would inject lines.
    if "\n" in summary or "\r" in summary:
        raise InvalidUpload(f"Invalid upload {dist.filename!r}: Summary must be a single line")
    if len(summary) > MAX_SUMMARY:
        raise InvalidUpload(
            f"Invalid upload {dist.filename!r}: Summary is {len(summary)} "
            f"characters long; the limit is {MAX_SUMMARY}"
        )


def check_filename_matches(dist: DistFilename, name: str, version: str) -> None:
    """The form's ``name``/``version`` must describe the release the filename names (SPEC 5)."""
    if canonicalize_name(name) != dist.project:
        raise InvalidUpload(
            f"Filename {dist.filename!r} is for project {dist.project!r}, but the form's name is {name!r}"
        )
    if check_version(version) != dist.version:
        raise InvalidUpload(
            f"Filename {dist.filename!r} is for version {dist.version!r}, "
            f"but the form's version is {version!r}"
        )


def read_core_metadata(
    path: str, dist: DistFilename, max_size: int = 4 * 1024 * 1024, max_scan: int = 256 * 1024 * 1024
) -> CoreMetadata:
    """Read the METADATA (wheel) or PKG-INFO (sdist) of the file at ``path``, with bounded reads.

    ``max_size`` caps the metadata file itself; ``max_scan`` caps how many
    decompressed bytes of a tarball are looked through before giving up on PKG-INFO.
    """
    # Opened outside the try: a missing or unreadable path is our fault, not the uploader's.
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise InvalidUpload(f"Invalid upload {dist.filename!r}: the file is empty")
        try:
            if dist.kind == "wheel":
                return _read_wheel(fh, dist, max_size)
            if dist.filename.endswith(".zip"):
                return _read_sdist_zip(fh, dist, max_size)
            return _read_sdist_tar(fh, dist, max_size, max_scan)
        except _ARCHIVE_ERRORS as exc:
            raise InvalidUpload(f"Invalid upload {dist.filename!r}: unreadable archive ({exc})") from None


def _too_large(dist: DistFilename, member: str, max_size: int) -> InvalidUpload:
    return InvalidUpload(f"Invalid upload {dist.filename!r}: {member} is larger than {max_size} bytes")


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dist: DistFilename, max_size: int) -> bytes:
    """Read one member, trusting neither the header's size nor what the compressed stream yields."""
    if info.file_size > max_size:
        raise _too_large(dist, info.filename, max_size)
    with zf.open(info) as member:
        data = member.read(max_size + 1)
    if len(data) > max_size:
        raise _too_large(dist, info.filename, max_size)
    return data


def _normalise(version: str | None) -> str | None:
    try:
        return str(Version(version or ""))
    except InvalidVersion:
        return None


def _dist_info_matches(directory: str, dist: DistFilename) -> bool:
    """Whether ``<name>-<version>.dist-info`` names the filename's release (PEP 427 escaping, any case)."""
    name, _, version = directory.removesuffix(".dist-info").partition("-")
    return canonicalize_name(name) == dist.project and _normalise(version) == dist.version


def _read_wheel(fh: BinaryIO, dist: DistFilename, max_size: int) -> CoreMetadata:
    expected = f"{dist.name}-{dist.version}.dist-info/METADATA"
    with zipfile.ZipFile(fh) as zf:
        found = [
            info
            for info in zf.infolist()
            if (parts := info.filename.split("/"))[1:] == ["METADATA"]
            and parts[0].endswith(".dist-info")
            and _dist_info_matches(parts[0], dist)
        ]
        if len(found) != 1:
            amount = "no" if not found else "more than one"
            raise InvalidUpload(f"Invalid upload {dist.filename!r}: wheel has {amount} {expected}")
        meta, _ = _parse(_read_zip_member(zf, found[0], dist, max_size), reliable=True)
    # The index trusts the filename; the metadata installers read must agree with it.
    if meta.name is not None and canonicalize_name(meta.name) != dist.project:
        problem = f"METADATA says Name {meta.name!r}, the filename says {dist.name!r}"
    elif meta.version is not None and _normalise(meta.version) != dist.version:
        problem = f"METADATA says Version {meta.version!r}, the filename says {dist.version!r}"
    else:
        return meta
    raise InvalidUpload(f"Invalid upload {dist.filename!r}: {problem}")


def _is_pkg_info(member_name: str) -> bool:
    return member_name.split("/")[1:] == ["PKG-INFO"]  # exactly <top dir>/PKG-INFO


def _read_sdist_zip(fh: BinaryIO, dist: DistFilename, max_size: int) -> CoreMetadata:
    with zipfile.ZipFile(fh) as zf:
        for info in zf.infolist():
            if _is_pkg_info(info.filename):
                return _sdist_metadata(_read_zip_member(zf, info, dist, max_size), dist)
    return _NO_METADATA


class _ScanLimit(Exception):
    """Raised from inside tarfile's reads once ``max_scan`` decompressed bytes were used up."""


class _ScanBudget:
    """Read-only stream over the decompressed tar that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: gzip.GzipFile, limit: int):
        self.raw, self.left = raw, limit

    def read(self, size: int = -1) -> bytes:
        # Never ask for more than one byte past the budget: tarfile reads a pax or long-name
        # header whole, so an unbounded request would cost memory before we could stop it.
        want = self.left + 1 if size is None or size < 0 else min(size, self.left + 1)
        data = self.raw.read(want) if self.left >= 0 else b""
        self.left -= len(data)
        if self.left < 0:
            raise _ScanLimit
        return data


def _read_sdist_tar(fh: BinaryIO, dist: DistFilename, max_size: int, max_scan: int) -> CoreMetadata:
    try:
        # "r|" reads forward only, so members we skip are decompressed through the counter;
        # nothing is ever extracted to disk and links are never followed (regular files only).
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            # tarfile's stub asks for a whole file object; stream mode ("r|") only reads.
            counted = cast(BinaryIO, _ScanBudget(gz, max_scan))
            with tarfile.open(fileobj=counted, mode="r|") as tf:
                for member in tf:
                    if _is_pkg_info(member.name) and member.isreg():
                        if member.size > max_size:
                            raise _too_large(dist, member.name, max_size)
                        data = tf.extractfile(member)
                        return _sdist_metadata(data.read(max_size) if data else b"", dist)
    except _ScanLimit:
        pass  # PKG-INFO is not near the start: the sdist is accepted without metadata.
    return _NO_METADATA


def _sdist_metadata(raw: bytes, dist: DistFilename) -> CoreMetadata:
    """PEP 643: sdist metadata is reliable only from Metadata-Version 2.2 on, with nothing ``Dynamic``."""
    meta, headers = _parse(raw, reliable=False)
    metadata_version = _normalise(meta.metadata_version)
    reliable = (
        metadata_version is not None
        and Version(metadata_version) >= Version("2.2")
        and "Dynamic" not in headers
        # Name and Version may never be dynamic (PEP 643); they must also match the filename.
        and meta.name is not None
        and canonicalize_name(meta.name) == dist.project
        and _normalise(meta.version) == dist.version
    )
    return dataclasses.replace(meta, reliable=reliable)


def _parse(raw: bytes, reliable: bool) -> tuple[CoreMetadata, email.message.Message]:
    """Pull the header fields the index shows; the body (the description) is not needed."""
    # Core metadata is UTF-8 (PEP 566); a stray bad byte must not fail the upload.
    headers = email.parser.HeaderParser().parsestr(raw.decode("utf-8", errors="replace"))

    def field(key: str) -> str | None:
        value = headers.get(key)  # folded continuation lines are joined into one line
        return " ".join(str(value).split()) if value is not None else None

    fields = (field("Name"), field("Version"), field("Summary"), field("Requires-Python"))
    return CoreMetadata(raw, *fields, field("Metadata-Version"), reliable), headers
