"""In-process test backends that fail or pause, chosen by dotted name in a test app's settings.

Where ``tests.faults.wrappers`` steers a server *process* through a plan file,
these serve tests that build the app (or run a CLI) in the test's own process
and reach the backend object itself::

    app = make_app({"pypi.storage": "tests.faults.backends.PausingFileStorage"})
    pause = service(app).storage.pause_before_metadata("demo-1.0.tar.gz")

    ; the destination ini of a ppc-migrate test
    pypi.storage = tests.faults.backends.FlakyFileStorage
    faults.put = break-after:3

The product builds them through its plugin loader (``pypicloud.plugins``), as it
builds any third-party backend, so the tests exercise the real wiring instead of
patching a method of a class every app shares. Only test code uses this module.
"""

from __future__ import annotations

import io
import os
import threading

from pypicloud.index.sql import SQLIndex
from pypicloud.storage.file import FileStorage

PAUSE_LIMIT = 10.0  # seconds a pause holds at most (a correct server may make others wait)


class Pause:
    """One pause point: the first call for ``filename`` sets ``reached`` and waits for ``release``."""

    def __init__(self, filename: str):
        self.filename = filename
        self.reached = threading.Event()
        self.release = threading.Event()
        self.owner: threading.Thread | None = None
        self._lock = threading.Lock()

    def hold(self, filename: str) -> None:
        """Block the first caller for our file (once), until released or PAUSE_LIMIT."""
        with self._lock:
            if filename != self.filename or self.owner is not None:
                return
            self.owner = threading.current_thread()
        self.reached.set()
        self.release.wait(PAUSE_LIMIT)


class PausingFileStorage(FileStorage):
    """File storage that can hold an upload after its bytes are published, before its metadata.

    That is the window in which a racing upload of the same name sees a file
    that is stored but not yet described (docs/architecture.md, the write protocol).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pause: Pause | None = None

    def pause_before_metadata(self, filename: str) -> Pause:
        """Hold the first upload of ``filename`` just after ``os.link``, before its sidecar."""
        self._pause = Pause(filename)
        return self._pause

    # The one place a test depends on FileStorage's private step between
    # publishing the bytes and writing the metadata sidecar.
    def _write_meta(self, path, metadata, derived=False):
        if self._pause is not None:
            self._pause.hold(os.path.basename(path))
        return super()._write_meta(path, metadata, derived)


class PausingSQLIndex(SQLIndex):
    """SQL index that can hold an upload after storage has it, before its index row."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pause: Pause | None = None

    def pause_before_add(self, filename: str) -> Pause:
        """Hold the first ``add`` (or upload's ``finish_upload``) of ``filename`` until released."""
        self._pause = Pause(filename)
        return self._pause

    def add(self, record):
        if self._pause is not None:
            self._pause.hold(record.filename)
        return super().add(record)

    def finish_upload(self, record, intent_id, rows):
        # An upload writes its row here (one transaction with the end of its intent).
        if self._pause is not None:
            self._pause.hold(record.filename)
        return super().finish_upload(record, intent_id, rows)


class _HalfThenFail(io.RawIOBase):
    """Hands out a little of a file, then fails like a full disk."""

    def __init__(self, stream):
        self.stream, self.sent = stream, 0

    def read(self, size=-1):
        if self.sent:
            raise RuntimeError("disk on fire")
        self.sent += 1
        return self.stream.read(10)


class FlakyFileStorage(FileStorage):
    """File storage whose writes fail as ``faults.put`` says.

    - ``break-after:N``: the first N puts work; every later one reads a little of
      the file and then fails with ``RuntimeError("disk on fire")``;
    - ``interrupt-at:N``: the N-th put raises KeyboardInterrupt (Ctrl-C);
    - ``fail``: every put raises ``OSError("read-only file system")``.
    """

    SETTINGS_KEYS = FileStorage.SETTINGS_KEYS | {"faults.put"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode, self.count = "", 0  # no faults until set_faults
        self._calls = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        storage = super().from_settings(settings)
        storage.set_faults(settings.get_str("faults.put", "") or "")
        return storage

    def set_faults(self, faults: str) -> None:
        """``break-after:N``, ``interrupt-at:N``, ``fail`` or "" (none); counts restart."""
        mode, _, count = faults.partition(":")
        if mode not in ("", "break-after", "interrupt-at", "fail"):
            raise ValueError(f"faults.put: unknown mode {faults!r}")
        with self._lock:
            self.mode, self.count, self._calls = mode, int(count or 0), 0

    def put(self, project, filename, stream, metadata, *, overwrite=False):
        with self._lock:
            self._calls += 1
            call = self._calls
        if self.mode == "fail":
            raise OSError("read-only file system")
        if self.mode == "interrupt-at" and call == self.count:
            raise KeyboardInterrupt
        if self.mode == "break-after" and call > self.count:
            stream = _HalfThenFail(stream)
        return super().put(project, filename, stream, metadata, overwrite=overwrite)
