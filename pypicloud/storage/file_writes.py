"""The file system steps of :class:`pypicloud.storage.file.FileStorage`'s writes.

A write fills a hidden temp file in the target folder, either by copying a
stream into it (:func:`copy_into`) or by hard-linking a finished local file to
it (:func:`link_into`: no byte is copied; only possible on one file system),
and the storage then publishes it under the name's lock (:func:`name_lock`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .. import syncs, tempfiles

CHUNK = 1024 * 1024
#: How many lock files the names of one storage folder share (:func:`name_lock`).
LOCK_STRIPES = 16
LOCK_PREFIX = ".lock-"
#: Fills the temp file at the given path; returns its open descriptor, locked
#: (or held locked by the caller's spool) until it is published.
Fill = Callable[[str], int]
# link() errors that mean "not here": another file system, no hard links, too many links.
_NOT_LINKABLE = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})


class NotLinkable(Exception):
    """The file cannot be linked into the storage folder (copy it instead)."""


def is_temp(name: str) -> bool:
    return name.startswith(".") and ".tmp-" in name


@contextlib.contextmanager
def folder_synced(path: str) -> Iterator[None]:
    """Force the folder ``path`` (its new names) to disk while the body runs; on
    leaving, return only once it is there (the body's own error first, if any)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        sync = syncs.start(fd)
        try:
            yield
        except BaseException:
            syncs.settle(sync)
            raise
        syncs.finish(sync, fd)
    finally:
        os.close(fd)


def sweep_project_folders(directory: str, min_age: float) -> int:
    """Remove dead writers' temp files from every project folder of ``directory``
    (:func:`tempfiles.sweep`: a live writer's is locked). Returns how many."""
    try:
        projects = [e.path for e in os.scandir(directory) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return 0
    return sum(tempfiles.sweep(folder, is_temp, min_age=min_age) for folder in projects)


def new_file_mode() -> int:
    """The mode a file created now gets (0666 less the umask).

    Reading the umask sets it, which is not safe once other threads create
    files: call this once, at start-up.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def name_lock(directory: str, key: str) -> Iterator[None]:
    """An exclusive lock on one file name (``key``, ``<project>/<filename>``) of the
    storage folder ``directory``, across threads and processes.

    Held from publishing a file's bytes until its sidecar is written, so
    nobody sees the name half-published; the kernel drops it if the holder
    dies, so a crash never leaves it stuck. The names share
    :data:`LOCK_STRIPES` lock files at the top of the folder, made by their first
    use and never removed: taking a lock creates no file (a new inode is
    costly on a busy file system, and an upload takes two locks), and no lock
    file is ever removed while another writer may hold it open.
    """
    stripe = zlib.crc32(os.fsencode(key)) % LOCK_STRIPES
    fd = os.open(os.path.join(directory, f"{LOCK_PREFIX}{stripe:x}"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure_folder(path: str) -> None:
    """Make the folder ``path`` (and its parents) unless it exists.

    One ``mkdir`` when the folder is there already (an upload's usual case),
    not the three system calls of ``os.makedirs``.
    """
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the descriptor (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def bytes_into(data: bytes) -> Fill:
    """Fill the temp file with ``data`` (small: a companion file)."""

    def fill(tmp: str) -> int:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            tempfiles.lock(fd)  # in use until published
            write_all(fd, data)
        except BaseException:
            os.close(fd)
            raise
        return fd

    return fill


def sidecar_path(path: str) -> str:
    """Where the metadata of the file at ``path`` is kept: ``.<filename>.meta`` beside it."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.meta")


def read_sidecar(path: str) -> dict[str, str]:
    """The metadata of the file at ``path`` ({} when its sidecar is missing or unreadable)."""
    try:
        with open(sidecar_path(path), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_sidecar(path: str, metadata: dict[str, str], fsync: bool) -> None:
    """Replace the sidecar of the file at ``path`` (by a rename: readers see the old or the new)."""
    sidecar = sidecar_path(path)
    tmp = f"{sidecar}.tmp-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        tempfiles.lock(fd)  # a live writer's: never swept
        write_all(fd, json.dumps(metadata, sort_keys=True).encode("utf-8"))
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, sidecar)


def copy_into(stream: BinaryIO) -> Fill:
    """Fill the temp file with the bytes of ``stream``."""

    def fill(tmp: str) -> int:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            tempfiles.lock(fd)  # in use until published
            with open(fd, "wb", closefd=False) as out:
                shutil.copyfileobj(stream, out, CHUNK)
        except BaseException:
            os.close(fd)
            raise
        return fd

    return fill


def link_into(source: str, mode: int) -> Fill:
    """Make the temp file a hard link of the finished file ``source`` (with ``mode``).

    Raises :class:`NotLinkable` when the two are on different file systems or
    the file system has no hard links.
    """

    def fill(tmp: str) -> int:
        try:
            os.link(source, tmp)
        except OSError as exc:
            if exc.errno in _NOT_LINKABLE:
                raise NotLinkable(str(exc)) from None
            raise
        fd = os.open(tmp, os.O_RDONLY)
        try:
            # The caller's spool usually holds this inode's lock already:
            # either way the file is marked in use until published.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        try:
            # A spool file is private (0600): give it the mode of a new file.
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        return fd

    return fill
