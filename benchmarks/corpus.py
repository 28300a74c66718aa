"""A synthetic package corpus: valid wheels and sdists, made in memory and deterministic.

Every release has a wheel (``.dist-info/METADATA``, ``WHEEL`` and ``RECORD``) and an
sdist (``PKG-INFO``). Project names mix case, dots and underscores, so the server's
name normalisation is exercised. Two projects are always present whatever the size:

* the *probe* (:data:`PROBE`, :data:`PROBE_VERSIONS` releases): the project whose page
  is measured, identical at every corpus size, so figures at 100 and 100,000 projects
  compare like with like;
* *many versions* (:data:`MANY`): one project with 200 releases, for the pip / uv timings.

:func:`write_large_wheel` writes a valid wheel of any size (1 GB) in 1 MB blocks,
never holding it in memory.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.utils import canonicalize_name

# The one distribution builder of the tests and benchmarks (run from the repository root).
from tests import builders

PROBE = "Probe_Pkg.Bench"
PROBE_VERSIONS = 3
MANY = "Many.Versions_Pkg"
MANY_VERSIONS = 200
REQUIRES_PYTHON = ">=3.8"
# Four spellings so that every kind of name normalisation is hit.
_STYLES = ("Alpha_Lib{i}", "beta.tools.{i}", "GammaKit-{i}", "Delta.Util_Ext{i}")
_DATE = (2024, 1, 1, 0, 0, 0)
_MTIME = 1704067200  # the same instant, for tar members


@dataclass(frozen=True)
class Dist:
    """One distribution file of the corpus."""

    name: str  # display name, as the uploader wrote it
    version: str
    kind: str  # "wheel" or "sdist"
    filename: str
    data: bytes
    metadata: bytes  # METADATA / PKG-INFO, byte-exact
    metadata_reliable: bool  # served as the PEP 658 file (wheels; sdists from 2.2 on)

    @property
    def project(self) -> str:
        return canonicalize_name(self.name)


def project_name(i: int) -> str:
    return _STYLES[i % len(_STYLES)].format(i=i)


def version_of(j: int) -> str:
    return f"1.{j}.0"


def wheel_name(name: str) -> str:
    """The PEP 427 escaped name used in wheel filenames and ``.dist-info`` folders."""
    return re.sub(r"[-_.]+", "_", name)


def core_metadata(name: str, version: str, metadata_version: str = "2.1") -> bytes:
    text = (
        f"Metadata-Version: {metadata_version}\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        f"Summary: Benchmark package {name} {version}\n"
        f"Author: Benchmarks\n"
        f"License: MIT\n"
        f"Requires-Python: {REQUIRES_PYTHON}\n"
        "Description-Content-Type: text/plain\n"
        "\n"
        f"{name} exists to be served by a benchmark.\n"
    )
    return text.encode("utf-8")


def _wheel_members(name: str, version: str) -> tuple[str, dict[str, bytes], bytes]:
    """dist-info folder, every member but RECORD, and METADATA."""
    escaped = wheel_name(name)
    dist_info = f"{escaped}-{version}.dist-info"
    metadata = core_metadata(name, version)
    module = escaped.lower()
    members = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: pypicloud-benchmarks\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/top_level.txt": f"{module}\n".encode(),
    }
    return dist_info, members, metadata


def _record(dist_info: str, members: dict[str, bytes]) -> bytes:
    lines = [builders.record_line(path, data) for path, data in members.items()]
    lines.append(f"{dist_info}/RECORD,,")
    return ("\n".join(lines) + "\n").encode()


def build_wheel(name: str, version: str) -> Dist:
    dist_info, members, metadata = _wheel_members(name, version)
    data = builders.wheel_archive(dist_info, members.items(), date_time=_DATE)
    filename = f"{wheel_name(name)}-{version}-py3-none-any.whl"
    return Dist(name, version, "wheel", filename, data, metadata, True)


def build_sdist(name: str, version: str) -> Dist:
    """A PEP 625 sdist; its PKG-INFO is 2.1, so (PEP 643) no PEP 658 file is offered for it."""
    base = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    pkg_info = core_metadata(name, version)
    members = {
        f"{base}/PKG-INFO": pkg_info,
        f"{base}/pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
            '[build-system]\nrequires = ["setuptools"]\n'
            'build-backend = "setuptools.build_meta"\n'
        ).encode(),
        f"{base}/src/{wheel_name(name).lower()}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    data = builders.sdist_archive(members.items(), mtime=_MTIME)
    return Dist(name, version, "sdist", f"{base}.tar.gz", data, pkg_info, False)


def release(name: str, version: str, sdist: bool = True) -> list[Dist]:
    return [build_wheel(name, version)] + ([build_sdist(name, version)] if sdist else [])


def probe_dists() -> list[Dist]:
    return [d for j in range(PROBE_VERSIONS) for d in release(PROBE, version_of(j))]


def many_versions_dists(count: int = MANY_VERSIONS) -> list[Dist]:
    return [d for j in range(count) for d in release(MANY, version_of(j))]


def filler_dists(projects: int, versions: int, sdist: bool = True) -> Iterator[Dist]:
    """``projects`` x ``versions`` releases of generated projects (made lazily)."""
    for i in range(projects):
        for j in range(versions):
            yield from release(project_name(i), version_of(j), sdist)


def corpus(projects: int, versions: int, sdist: bool = True) -> Iterator[Dist]:
    """The probe plus ``projects - 1`` fillers: ``projects`` projects in all."""
    yield from probe_dists()
    yield from filler_dists(max(0, projects - 1), versions, sdist)


# The large file ----------------------------------------------------------
LARGE_NAME = "Large_File.Bench"
LARGE_VERSION = "1.0.0"
BLOCK = 1024 * 1024


def _block() -> bytes:
    """1 MB of incompressible bytes (a hash chain, so deterministic)."""
    out, seed = bytearray(), b"pypicloud-benchmarks"
    while len(out) < BLOCK:
        seed = hashlib.sha512(seed).digest()
        out += seed
    return bytes(out[:BLOCK])


def write_large_wheel(directory: str, size: int, name: str = LARGE_NAME, version: str = LARGE_VERSION) -> str:
    """Write a valid wheel of about ``size`` bytes to ``directory``; return its path.

    The payload is a stored (uncompressed) member written in 1 MB blocks, so memory
    use does not depend on ``size``. Kept if it is already there at the right size.
    """
    dist_info, members, _ = _wheel_members(name, version)
    filename = f"{wheel_name(name)}-{version}-py3-none-any.whl"
    path = os.path.join(directory, filename)
    marker = path + f".{size}.done"
    if os.path.exists(marker) and os.path.exists(path):
        return path
    payload = f"{wheel_name(name).lower()}/payload.bin"
    block, digest, written = _block(), hashlib.sha256(), 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for member, data in members.items():
            zf.writestr(zipfile.ZipInfo(member, _DATE), data)
        info = zipfile.ZipInfo(payload, _DATE)
        with zf.open(info, "w", force_zip64=True) as out:
            while written < size:
                chunk = block[: min(BLOCK, size - written)]
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
        # RECORD last: it lists the payload's hash, known only now.
        record_line = (
            f"{payload},sha256="
            + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            + f",{written}"
        )
        record = (
            _record(dist_info, members)
            .decode()
            .replace(f"{dist_info}/RECORD,,", f"{record_line}\n{dist_info}/RECORD,,")
        )
        zf.writestr(zipfile.ZipInfo(f"{dist_info}/RECORD", _DATE), record)
    open(marker, "w").close()
    return path
