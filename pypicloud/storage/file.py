"""Package files in a directory: ``<dir>/<project>/<filename>``.

Each file has a JSON sidecar ``.<filename>.meta`` beside it holding its
metadata. Writes go to a hidden temp file in the same folder (so the final
rename never crosses a file system) and are published with ``os.link``, which
refuses to replace an existing name: that makes "exactly one of two concurrent
uploads wins" a property of the file system. A per-name ``flock`` (on one of the
``.lock-<n>`` files at the top of the folder the names share,
:func:`.file_writes.name_lock`) covers publishing the bytes and writing the sidecar, so
bytes without a sidecar are recognisable as the leftover of a crashed writer. Everything whose
name starts with a dot is ours and never listed as a package.

Files pypicloud 1.x stored (``<dir>/<project>/<version>/<filename>`` with a
``<filename>.meta`` sidecar) are read, listed, updated and deleted where they
are, through :mod:`.legacy_layout`; new uploads use the layout above.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from .. import tempfiles
from ..errors import BackendUnavailable, ConfigError, FileNotFound, StorageConflict
from ..models import StoredObject
from . import file_writes, legacy_layout
from .base import ReadStream, Storage, check_name

CHUNK = 1024 * 1024
LOG = logging.getLogger(__name__)


class _RangeReader(ReadStream):
    """A read-only view of ``length`` bytes of an open file (for HTTP Range)."""

    def __init__(self, fileobj: BinaryIO, length: int | None):
        self._file = fileobj
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left is None:
            return self._file.read(size)
        if self._left <= 0:
            return b""
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()

    def os_file(self) -> BinaryIO | None:
        # Only a view that runs to the end of the file is the file itself.
        if self._left is not None and self._left != os.fstat(self._file.fileno()).st_size - self._file.tell():
            return None
        return self._file


class FileStorage(Storage):
    """Storage in a local directory (``pypi.storage = file``)."""

    SETTINGS_KEYS = frozenset({"storage.dir", "storage.read_only"})

    def __init__(self, directory: str, read_only: bool = False, fsync: bool = True):
        self.directory = os.path.abspath(directory)
        self.read_only = read_only
        self.fsync = fsync
        self._file_mode = file_writes.new_file_mode()
        self._sweeps = tempfiles.SweepSchedule()
        self._device: int | None = None
        if not read_only:
            os.makedirs(self.directory, exist_ok=True)
            self._device = os.stat(self.directory).st_dev

    @classmethod
    def from_settings(cls, settings) -> FileStorage:
        raw = settings.get_str("storage.dir")
        if raw is None:
            raise ConfigError("storage.dir", None, "required when pypi.storage = file")
        directory = settings.path(raw)
        read_only = settings.get_bool("storage.read_only", False)
        storage = cls(directory, read_only=read_only)
        if not os.path.isdir(directory):
            raise ConfigError("storage.dir", raw, "is not a directory")
        # A folder 1.x filled must never look empty without a word at start-up.
        legacy_layout.report_layout(directory)
        if not read_only:
            storage.sweep_temp_files()
        return storage

    def sweep_temp_files(self, min_age: float = 5.0) -> int:
        """Remove the temp files of writers that died (at start-up). Returns how many.

        A live writer holds an flock on its temp file, so only dead ones go;
        ``min_age`` spares a file created a moment ago and not yet locked.
        """
        removed = file_writes.sweep_project_folders(self.directory, min_age)
        if removed:
            LOG.info("removed %d temp files left by crashed writers in %s", removed, self.directory)
        return removed

    # Paths --------------------------------------------------------------
    def _folder(self, project: str) -> str:
        return os.path.join(self.directory, check_name(project, "project name"))

    def _path(self, project: str, filename: str) -> str:
        return os.path.join(self._folder(project), check_name(filename))

    def _name_lock(self, project: str, filename: str):
        return file_writes.name_lock(self.directory, self.key_for(project, filename))

    def location(self) -> tuple:
        return ("file", os.path.realpath(self.directory))

    def key_for(self, project: str, filename: str) -> str:
        return f"{check_name(project, 'project name')}/{check_name(filename)}"

    # Metadata sidecar -----------------------------------------------------
    def _write_meta(self, path: str, metadata: dict[str, str], derived: bool = False) -> dict[str, str]:
        """The sidecar of a file being published (its folder's fsync follows); the
        metadata kept. A companion (``derived``) keeps none: nothing reads it
        (Storage.put_companion), and it saves an inode per upload. One an older
        version wrote goes, so none is ever stale."""
        if derived:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(file_writes.sidecar_path(path))
            return {}
        file_writes.write_sidecar(path, metadata, fsync=False)
        return metadata

    def _object(
        self,
        project: str,
        filename: str,
        path: str,
        st=None,
        metadata: dict[str, str] | None = None,
        v1: bool = False,
    ) -> StoredObject:
        st = st or os.stat(path)
        if metadata is None:
            metadata = (
                legacy_layout.read_v1_metadata(path, st.st_mtime) if v1 else file_writes.read_sidecar(path)
            )
        return StoredObject(
            project=project,
            filename=filename,
            size=st.st_size,
            metadata=dict(metadata),
            key=(legacy_layout.v1_key(self.directory, path) if v1 else self.key_for(project, filename)),
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _v1_path(self, project: str, filename: str) -> str | None:
        """Where pypicloud 1.x stored this file, if it did (and we have no copy of our own)."""
        return legacy_layout.find_v1_file(
            self.directory, check_name(project, "project name"), check_name(filename)
        )

    # Contract -----------------------------------------------------------
    def _publish(self, tmp: str, path: str, filename: str, overwrite: bool) -> None:
        """Give the finished temp file its name (the caller holds the name's lock)."""
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            # link() never replaces: of two racing writers one gets EEXIST.
            os.link(tmp, path)
        except FileExistsError:
            if os.path.exists(file_writes.sidecar_path(path)):
                raise StorageConflict(f"{filename} is already stored") from None
            # Bytes without a sidecar while we hold the lock: a writer
            # died between the two steps and its upload was never
            # acknowledged, so this one may take the name.
            os.replace(tmp, path)
        else:
            os.unlink(tmp)

    def put(self, project, filename, stream, metadata, *, overwrite=False):
        return self._store(project, filename, metadata, overwrite, file_writes.copy_into(stream))

    def put_companion(self, project, filename, data, metadata):
        # Derived and checked on read: not forced to disk (the distribution
        # file's own fsyncs, file and folder, come first).
        return self._store(project, filename, metadata, True, file_writes.bytes_into(data), derived=True)

    def publishes_in_place(self, path):
        if not self.fsync or self._device is None:
            return False
        try:
            return os.stat(path).st_dev == self._device
        except OSError:
            return False

    def put_file(self, project, filename, path, metadata, *, overwrite=False, synced=None, companion=None):
        """Publish the spool file by a hard link (no copy) when it is on this file
        system (its bytes forced to disk by ``synced`` when given); copy it
        (:meth:`put`) when it is not. The companion is written while the
        folder's fsync runs."""
        fill = file_writes.link_into(path, self._file_mode)
        try:
            return self._store(
                project, filename, metadata, overwrite, fill, synced=synced, companion=companion
            )
        except file_writes.NotLinkable:
            pass
        with open(path, "rb") as stream:
            fill = file_writes.copy_into(stream)
            return self._store(project, filename, metadata, overwrite, fill, companion=companion)

    def _store(
        self, project, filename, metadata, overwrite, fill, derived=False, synced=None, companion=None
    ):
        """Write a temp file by ``fill`` (a :data:`.file_writes.Fill`), then publish
        it under the name's lock with its sidecar (see the module). Two fsyncs make it
        durable: the bytes before the name is given (``synced``: the caller's, of the
        inode ``fill`` linked, :meth:`publishes_in_place`), the folder after, while the
        ``companion`` (``(filename, data, metadata)``) is put. The sidecar is not forced:
        the index holds the same metadata, a rebuild reads a file whose sidecar was lost.
        ``derived``: a companion itself (no fsync, no sidecar, and 1.x wrote none to look for).
        """
        self.check_writable()
        path = self._path(project, filename)
        v1_path = None if derived or os.path.exists(path) else self._v1_path(project, filename)
        if v1_path and not overwrite:
            raise StorageConflict(f"{filename} is already stored")
        durable = self.fsync and not derived
        folder = os.path.dirname(path)
        tmp = os.path.join(folder, f".{filename}.tmp-{secrets.token_hex(8)}")
        left: str | None = tmp  # the temp file's name while it exists
        try:
            file_writes.ensure_folder(folder)
            if self._sweeps.due(folder):
                tempfiles.sweep(folder, file_writes.is_temp)
            fd = fill(tmp)
            try:
                if durable:
                    if synced is not None:
                        synced()
                    else:
                        os.fsync(fd)
                with self._name_lock(project, filename):
                    self._publish(tmp, path, filename, overwrite)
                    left = None  # linked and removed, or renamed
                    metadata = self._write_meta(path, metadata, derived)
                st = os.fstat(fd)
            finally:
                os.close(fd)
            self._finish(project, folder, durable, companion)
            if v1_path:
                # Ours now answers for the name: the 1.x copy it replaces goes.
                legacy_layout.delete_v1_file(v1_path)
        except (StorageConflict, FileNotFound):
            raise
        except OSError as exc:
            raise BackendUnavailable(f"Storage is unavailable: {exc.strerror or exc}") from None
        finally:
            if left is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(left)
        return self._object(project, filename, path, st, metadata=metadata)

    def _finish(self, project: str, folder: str, durable: bool, companion) -> None:
        """After publishing: the folder forced to disk (``durable``), the companion
        (if any) written meanwhile."""
        if not durable:
            if companion is not None:
                self.put_companion(project, *companion)
            return
        with file_writes.folder_synced(folder):
            if companion is not None:
                self.put_companion(project, *companion)

    def open(self, project, filename, offset=0, length=None):
        path = self._path(project, filename)
        try:
            handle = open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            v1_path = self._v1_path(project, filename)
            if v1_path is None:
                raise FileNotFound(f"No such file: {filename}") from None
            try:
                handle = open(v1_path, "rb")
            except OSError:
                raise FileNotFound(f"No such file: {filename}") from None
        if offset:
            handle.seek(offset)
        return _RangeReader(handle, length)

    def stat(self, project, filename):
        path = self._path(project, filename)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            v1_path = self._v1_path(project, filename)
            try:
                if v1_path is not None:
                    return self._object(project, filename, v1_path, v1=True)
                return None
            except FileNotFoundError:
                return None
        return self._object(project, filename, path, st)

    def content_token(self, project, filename):
        # One stat: a file replaced (pypicloud writes a temp file and renames it: a
        # new inode), deleted, truncated or rewritten in place gets another token.
        # Only a rewrite in place to the same size within one tick of the file
        # system's clock would keep it, and pypicloud never rewrites in place.
        try:
            st = os.stat(self._path(project, filename))
        except OSError:
            return None  # missing, or in 1.x's layout: read the usual way
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def delete(self, project, filename):
        self.check_writable()
        path = self._path(project, filename)
        try:
            os.unlink(path)
        except FileNotFoundError:
            v1_path = self._v1_path(project, filename)
            if v1_path is None:
                return False
            try:
                legacy_layout.delete_v1_file(v1_path)
            except FileNotFoundError:
                return False
            return True
        folder, name = os.path.split(path)
        # ``.<name>.lock``: a lock file of earlier 2.0 development builds (one per name).
        for extra in (file_writes.sidecar_path(path), os.path.join(folder, f".{name}.lock")):
            try:
                os.unlink(extra)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(os.path.dirname(path))  # only succeeds when the folder is empty
        except OSError:
            pass
        return True

    def copy(self, project, filename, dest_project, dest_filename, metadata=None):
        self.check_writable()
        source = self.stat(project, filename)
        if source is None:
            raise FileNotFound(f"No such file: {filename}")
        with self.open(project, filename) as stream:
            return self.put(
                dest_project,
                dest_filename,
                stream,
                source.metadata if metadata is None else metadata,
                overwrite=True,
            )

    def update_metadata(self, project, filename, metadata):
        self.check_writable()
        path = self._path(project, filename)
        if not os.path.isfile(path):
            v1_path = self._v1_path(project, filename)
            if v1_path is None:
                raise FileNotFound(f"No such file: {filename}")
            # Written by a rename, so readers see the old or the new sidecar.
            legacy_layout.write_v1_metadata(v1_path, metadata, self.fsync)
            return self._object(project, filename, v1_path, metadata=metadata, v1=True)
        with self._name_lock(project, filename):
            # A yank lives in storage first: forced to disk.
            file_writes.write_sidecar(path, metadata, fsync=self.fsync)
        return self._object(project, filename, path, metadata=metadata)

    def list(self, metadata_for=None) -> Iterator[StoredObject]:
        try:
            projects = os.scandir(self.directory)
        except FileNotFoundError:
            return
        with projects:
            for project_entry in projects:
                if project_entry.name.startswith(".") or not project_entry.is_dir():
                    continue
                with os.scandir(project_entry.path) as files:
                    entries = [e for e in files if not e.name.startswith(".")]
                found = [(e, False) for e in entries if e.is_file()]
                ours = {e.name for e, _ in found}
                if any(not e.is_file() for e in entries):
                    # pypicloud 1.x's <project>/<version>/<filename>, unless ours has the name.
                    found += [
                        (e, True)
                        for _, e in legacy_layout.list_v1_files(project_entry.path)
                        if e.name not in ours
                    ]
                for entry, v1 in found:
                    skip = metadata_for is not None and not metadata_for(entry.name)
                    try:
                        yield self._object(
                            project_entry.name,
                            entry.name,
                            entry.path,
                            entry.stat(),
                            metadata={} if skip else None,
                            v1=v1,
                        )
                    except FileNotFoundError:
                        continue  # deleted while we listed

    def check_health(self) -> None:
        if not os.path.isdir(self.directory):
            raise RuntimeError(f"storage directory {self.directory} is missing")
        if not self.read_only and not os.access(self.directory, os.W_OK):
            raise RuntimeError(f"storage directory {self.directory} is not writable")
