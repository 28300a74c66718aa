"""Distribution files built in memory: the one builder of the tests and benchmarks.

``make_wheel`` and ``make_sdist`` give ``(filename, bytes)`` of a valid wheel or
``.tar.gz`` sdist, with knobs for the broken ones tests need. Underneath,
``wheel_archive`` (members -> a wheel with a correct RECORD) and ``sdist_archive``
(members -> a deterministic ``.tar.gz``) are shared with tests/fixtures/server.py
and benchmarks/corpus.py, which choose their own members. The bytes are
deterministic (fixed dates), so building twice gives the same file.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Iterable

# Fixed member dates: the same build gives the same bytes.
ZIP_DATE = (2024, 1, 2, 3, 4, 6)
TAR_MTIME = 1704164646


def escape_name(name: str) -> str:
    """PEP 427 / PEP 625 escaping of a project name in a filename."""
    return re.sub(r"[-_.]+", "_", name)


def core_metadata(
    name: str,
    version: str,
    *,
    summary: str | None = "A test package",
    requires_python: str | None = ">=3.8",
    metadata_version: str = "2.1",
    extra_headers: Iterable[str] = (),
    body: str = "A long description.\n",
) -> bytes:
    """METADATA / PKG-INFO text (RFC 822 headers, then the description)."""
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if summary is not None:
        lines.append(f"Summary: {summary}")
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(extra_headers)
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def record_line(member: str, data: bytes) -> str:
    """One RECORD row: path, urlsafe-base64 sha256 without padding, size."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{member},sha256={digest},{len(data)}"


def zip_archive(
    members: Iterable[tuple[str, bytes]], *, date_time: tuple[int, ...] = ZIP_DATE, target=None
) -> bytes | None:
    """A deflated zip of ``members`` (regular files, mode 0644, fixed dates).

    Written to ``target`` (a binary file) when given, else returned as bytes.
    """
    buffer = target if target is not None else io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members:
            info = zipfile.ZipInfo(member, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return None if target is not None else buffer.getvalue()


def wheel_archive(
    dist_info: str, members: Iterable[tuple[str, bytes]], *, date_time: tuple[int, ...] = ZIP_DATE
) -> bytes:
    """A wheel of ``members`` plus ``<dist_info>/RECORD`` listing them all."""
    members = list(members)
    record = "\n".join(record_line(m, d) for m, d in members) + f"\n{dist_info}/RECORD,,\n"
    return zip_archive([*members, (f"{dist_info}/RECORD", record.encode())], date_time=date_time)


def sdist_archive(members: Iterable[tuple[str, bytes]], *, mtime: int = TAR_MTIME) -> bytes:
    """A ``.tar.gz`` (PAX format) of ``members``, with fixed mtimes and a fixed gzip header."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def wheel_file(tag: str = "py3-none-any", generator: str = "pypicloud-tests") -> bytes:
    """The WHEEL member of a pure-Python wheel."""
    return f"Wheel-Version: 1.0\nGenerator: {generator}\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()


def make_wheel(
    name: str,
    version: str,
    *,
    summary: str | None = "A test package",
    requires_python: str | None = ">=3.8",
    payload: bytes = b"VALUE = 1\n",
    dist_info: str | None = None,
    metadata: bytes | None = None,
    tag: str = "py3-none-any",
    build: str | None = None,
) -> tuple[str, bytes]:
    """A valid wheel: ``(filename, bytes)``. ``payload`` varies the bytes of one release.

    ``dist_info`` overrides the ``.dist-info`` folder name and ``metadata`` the
    METADATA bytes (to build broken wheels).
    """
    escaped = escape_name(name)
    stem = f"{escaped}-{version}" + (f"-{build}" if build else "")
    info_dir = dist_info or f"{escaped}-{version}.dist-info"
    meta = (
        metadata
        if metadata is not None
        else core_metadata(name, version, summary=summary, requires_python=requires_python)
    )
    members = [
        (f"{escaped.lower()}/__init__.py", payload),
        (f"{info_dir}/METADATA", meta),
        (f"{info_dir}/WHEEL", wheel_file(tag)),
    ]
    return f"{stem}-{tag}.whl", wheel_archive(info_dir, members)


def make_sdist(
    name: str,
    version: str,
    *,
    summary: str | None = "A test package",
    requires_python: str | None = ">=3.8",
    metadata_version: str = "2.2",
    payload: bytes = b"VALUE = 1\n",
    pkg_info: bytes | None = None,
    extra_headers: Iterable[str] = (),
) -> tuple[str, bytes]:
    """A valid ``.tar.gz`` sdist with ``<name>-<version>/PKG-INFO``: ``(filename, bytes)``.

    Metadata-Version 2.2+ with nothing ``Dynamic`` makes its PKG-INFO reliable (PEP 643).
    """
    escaped = escape_name(name)
    top = f"{escaped}-{version}"
    meta = (
        pkg_info
        if pkg_info is not None
        else core_metadata(
            name,
            version,
            summary=summary,
            requires_python=requires_python,
            metadata_version=metadata_version,
            extra_headers=extra_headers,
        )
    )
    pyproject = (f'[project]\nname = "{name}"\nversion = "{version}"\n').encode()
    members = [
        (f"{top}/PKG-INFO", meta),
        (f"{top}/pyproject.toml", pyproject),
        (f"{top}/src/{escaped.lower()}/__init__.py", payload),
    ]
    return f"{top}.tar.gz", sdist_archive(members)


def digests(data: bytes) -> dict[str, str]:
    """The digests twine sends with every upload."""
    return {
        "md5_digest": hashlib.md5(data).hexdigest(),
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
