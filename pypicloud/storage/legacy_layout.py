"""Reading what pypicloud 1.x stored, where it lies (upgrades without moving data).

pypicloud 1.x (1.3.12, read from its source) wrote:

File storage
    ``<dir>/<project>/<version>/<filename>`` with a JSON sidecar
    ``<filename>.meta`` beside it holding ``hash_sha256``, ``hash_md5``,
    ``summary``, ``uploader`` and ``requires_python`` (each only when set). The
    version lives only in the folder name and the project folder is the
    canonical (PEP 503) name, which is also ours.
S3
    The same key layout as ours; user metadata ``name``, ``version``,
    ``summary``, ``uploader``, ``requires-python``, ``hash-sha256`` and
    ``hash-md5`` (values stripped to ASCII). Objects from before 1.x stored
    metadata have none at all (the service then reads their bytes).

The helpers here translate 1.x's metadata names into ours and find, list,
update and delete files in 1.x's file layout, so :mod:`.file` and :mod:`.s3`
only call them. New uploads always use our own layout; a 1.x file stays where
it is until it is deleted or overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidUpload

LOG = logging.getLogger(__name__)

#: Suffix of 1.x's metadata sidecar, ``<filename>.meta`` (not hidden).
V1_SIDECAR = ".meta"

# 1.x metadata names (file sidecars use "_", S3 metadata "-") -> ours.
_V1_NAMES = {
    "hash_sha256": "sha256",
    "hash-sha256": "sha256",
    "hash_md5": "md5",
    "hash-md5": "md5",
    "requires_python": "requires-python",
}
_V1_HASHES = ("hash_sha256", "hash-sha256", "hash_md5", "hash-md5")
# Ours -> the name 1.x reads in a file sidecar (it reads both spellings).
_TO_V1_SIDECAR = {
    "sha256": "hash_sha256",
    "md5": "hash_md5",
    "requires-python": "requires_python",
    "summary": "summary",
    "uploader": "uploader",
}
# Keys 1.x passes as keyword arguments next to positional ones: a sidecar
# holding them would make 1.x fail to list the file.
_V1_RESERVED = {"name", "version", "filename", "last_modified"}


def from_v1(
    metadata: Mapping[str, object], *, known_v1: bool = False, last_modified: datetime | None = None
) -> dict[str, str]:
    """``metadata`` with 1.x's names (``hash-sha256``, ``hash_md5`` ...) renamed to ours.

    Only metadata that is 1.x's is renamed: ``known_v1`` (a 1.x sidecar), or
    1.x's hash names without our ``sha256``; any other dict comes back
    unchanged, so metadata of ours round-trips whatever its keys. Where both
    spellings are present (a sidecar written for both servers) ours wins.
    1.x kept no upload time (it showed the file's modification time):
    ``last_modified`` becomes our ``upload-time``, so copies keep it.
    """
    if not known_v1 and ("sha256" in metadata or not any(k in _V1_HASHES for k in metadata)):
        return {str(k): str(v) for k, v in metadata.items()}
    # JSON null (a hand-edited sidecar) means no value, as it did for 1.x.
    result = {str(k): str(v) for k, v in metadata.items() if str(k) not in _V1_NAMES and v is not None}
    for key, value in metadata.items():
        ours = _V1_NAMES.get(str(key))
        if ours and value and ours not in result:
            result[ours] = str(value)
    if last_modified is not None and "upload-time" not in result:
        result["upload-time"] = last_modified.astimezone(UTC).isoformat()
    return result


# File layout -----------------------------------------------------------------
def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def find_v1_file(directory: str, project: str, filename: str) -> str | None:
    """Path of ``<directory>/<project>/<version>/<filename>`` if 1.x stored one, else None."""
    try:
        entries = os.scandir(os.path.join(directory, project))
    except (FileNotFoundError, NotADirectoryError):
        return None
    with entries:
        for entry in entries:
            if entry.name.startswith(".") or not _is_dir(entry):
                continue
            candidate = os.path.join(entry.path, filename)
            if os.path.isfile(candidate):
                return candidate
    return None


def v1_version(path: str) -> str:
    """The version of a 1.x file: the name of the folder it is in."""
    return os.path.basename(os.path.dirname(path))


def v1_key(directory: str, path: str) -> str:
    """The storage key of a 1.x file: ``<project>/<version>/<filename>``."""
    return os.path.relpath(path, directory).replace(os.sep, "/")


def read_v1_metadata(path: str, mtime: float | None = None) -> dict[str, str]:
    """Our metadata for the 1.x file at ``path``: its sidecar translated, plus the version."""
    try:
        with open(path + V1_SIDECAR, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {}  # 1.x itself treats a missing or broken sidecar as no metadata
    if mtime is None:
        mtime = os.stat(path).st_mtime
    modified = datetime.fromtimestamp(mtime, UTC)
    metadata = from_v1(data if isinstance(data, dict) else {}, known_v1=True, last_modified=modified)
    metadata.setdefault("version", v1_version(path))
    return metadata


def write_v1_metadata(path: str, metadata: Mapping[str, str], fsync: bool = True) -> None:
    """Replace the sidecar of a 1.x file, readable by both 1.x and us.

    Our names are written as they are, plus 1.x's names of the values 1.x
    reads, so a 1.x server still sharing the folder keeps its hashes; the
    keys 1.x cannot take (name, version) are left out, the folder holds them.
    """
    data = {k: v for k, v in metadata.items() if k not in _V1_RESERVED}
    for ours, theirs in _TO_V1_SIDECAR.items():
        if metadata.get(ours):
            data[theirs] = metadata[ours]
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.meta.tmp-{secrets.token_hex(6)}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path + V1_SIDECAR)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def delete_v1_file(path: str) -> None:
    """Remove a 1.x file and its sidecar, then its version and project folders if empty."""
    os.unlink(path)
    try:
        os.unlink(path + V1_SIDECAR)
    except FileNotFoundError:
        pass
    version_dir = os.path.dirname(path)
    for folder in (version_dir, os.path.dirname(version_dir)):
        try:
            os.rmdir(folder)  # only succeeds when empty
        except OSError:
            return


def list_v1_files(project_dir: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """``(version, entry)`` of every 1.x package file in one project folder."""
    try:
        versions = os.scandir(project_dir)
    except (FileNotFoundError, NotADirectoryError):
        return
    with versions:
        version_dirs = [e for e in versions if not e.name.startswith(".") and _is_dir(e)]
    for version_dir in version_dirs:
        try:
            files = os.scandir(version_dir.path)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed while we listed
        with files:
            for entry in files:
                # Dot names are 1.x's temp files of unfinished uploads.
                if entry.name.startswith(".") or entry.name.endswith(V1_SIDECAR):
                    continue
                if entry.is_file(follow_symlinks=False):
                    yield version_dir.name, entry


def _is_dist(name: str) -> bool:
    from ..dists import parse_filename  # storage backends do not need it otherwise

    try:
        parse_filename(name)
    except InvalidUpload:
        return False
    return True


def _count_tree(path: str) -> int:
    return sum(len([f for f in files if not f.startswith(".")]) for _, _, files in os.walk(path))


def _first_file(path: str) -> str:
    for root, _, files in os.walk(path):
        for name in sorted(files):
            if not name.startswith("."):
                return os.path.join(root, name)
    return path


def _sorted_entries(path: str) -> list[os.DirEntry[str]] | None:
    try:
        return sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        return None


class _Survey:
    """The counts :func:`survey` returns, filled folder by folder."""

    def __init__(self) -> None:
        # Three counts and a path, looked up by a layout's name (no TypedDict).
        self.counts: dict[str, Any] = {"ours": 0, "v1": 0, "unexplained": 0, "example": None}

    def unexplained(self, path: str, files: int = 1) -> None:
        self.counts["unexplained"] += files
        if self.counts["example"] is None:
            self.counts["example"] = path

    def subfolder(self, entry: os.DirEntry[str], kind: str) -> None:
        if kind == "ours":
            self.folder(entry.path, "v1")  # <project>/<version>/
            return
        nested = _count_tree(entry.path)
        if nested:
            self.unexplained(_first_file(entry.path), nested)

    def file(self, entry: os.DirEntry[str], kind: str, names: set[str]) -> None:
        if kind == "v1" and entry.name.endswith(V1_SIDECAR):
            return  # 1.x's sidecar (or what is left of an unfinished 1.x upload)
        if entry.name.endswith(".metadata") and entry.name[:-9] in names:
            return  # a PEP 658 companion of ours
        if _is_dist(entry.name):
            self.counts[kind] += 1
        else:
            self.unexplained(entry.path)

    def folder(self, path: str, kind: str) -> None:
        """Count a project folder (``ours``) or a 1.x version folder (``v1``)."""
        entries = _sorted_entries(path)
        names = {e.name for e in entries or ()}
        for entry in entries or ():
            if entry.name.startswith("."):
                continue
            if _is_dir(entry):
                self.subfolder(entry, kind)
            else:
                self.file(entry, kind, names)


def survey(directory: str) -> dict[str, Any]:
    """Count what a storage folder holds, by layout.

    Returns ``{"ours": n, "v1": n, "unexplained": n, "example": path or None}``:
    package files in our layout, in 1.x's layout, and files no layout explains
    (loose files at the top, folders nested deeper than 1.x's, names that are
    no distribution file), with the first such path found as an example.
    Hidden names (temp files, our sidecars and locks) are skipped.
    """
    found = _Survey()
    for entry in _sorted_entries(directory) or ():
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            found.folder(entry.path, "ours")
        else:
            found.unexplained(entry.path)
    return found.counts


def report_layout(directory: str) -> dict[str, Any]:
    """Survey ``directory`` and log what an admin upgrading from 1.x needs to know."""
    counts = survey(directory)
    if counts["v1"]:
        LOG.info(
            "storage.dir %s: %d package files in pypicloud 1.x's layout "
            "(<project>/<version>/<file>) are served where they are",
            directory,
            counts["v1"],
        )
    if counts["unexplained"]:
        LOG.warning(
            "storage.dir %s: %d files are not served: no storage layout explains "
            "them (for example %s); package files (wheels and sdists) belong in "
            "<project>/<file>, or 1.x's <project>/<version>/<file>",
            directory,
            counts["unexplained"],
            counts["example"],
        )
    return counts


__all__ = [
    "from_v1",
    "find_v1_file",
    "read_v1_metadata",
    "write_v1_metadata",
    "delete_v1_file",
    "list_v1_files",
    "survey",
    "report_layout",
    "v1_key",
    "v1_version",
    "V1_SIDECAR",
]
