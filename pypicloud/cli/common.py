"""Shared helpers of the command-line tools."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

from pyramid.paster import get_appsettings, setup_logging

from ..settings import Settings, env_name


def load_settings(
    config_uri: str, overrides: dict[str, str] | None = None, *, forced: dict[str, str] | None = None
) -> Settings:
    """The ``[app:main]`` settings of an ini file, validated as the server would.

    ``overrides`` replace keys of the file (``PPC_*`` variables still win);
    ``forced`` keys win over the file and the environment alike (e.g. a source
    that must be opened read-only whatever ``PPC_STORAGE_READ_ONLY`` says).
    """
    setup_logging(config_uri)
    raw = get_appsettings(config_uri)
    values = dict(raw)
    values.update(overrides or {})
    environ: Mapping[str, str] = os.environ
    if forced:
        values.update(forced)
        hidden = {env_name(key) for key in forced}
        environ = {name: value for name, value in os.environ.items() if name not in hidden}
    return Settings(values, environ=environ, here=raw.global_conf.get("here"))


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal).

    ``detail`` (optional) is shown after the counts, e.g. bytes copied so far.
    :meth:`note` prints a line (to stderr or stdout) without garbling the bar;
    :meth:`finish` replaces the bar with a summary. Call from one thread only.
    """

    #: Seconds between redraws, so a fast loop does not flood the terminal.
    redraw_interval = 0.1

    def __init__(self, label: str, total: int | None = None, stream=None):
        stream = sys.stderr if stream is None else stream
        self.label, self.total, self.stream, self.done = label, total, stream, 0
        self.detail = ""
        self.tty = stream.isatty()
        self._drawn = False
        self._last_draw = 0.0

    def step(self, count: int = 1, detail: str | None = None) -> None:
        self.done += count
        if detail is not None:
            self.detail = detail
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= self.redraw_interval or self.done == self.total:
                self._draw()
                self._last_draw = now

    def _draw(self) -> None:
        if self.total:
            width = 30
            filled = min(width, int(width * self.done / self.total))
            bar = "#" * filled + "-" * (width - filled)
            line = f"{self.label} [{bar}] {self.done}/{self.total}"
        else:
            line = f"{self.label} {self.done}"
        if self.detail:
            line += f" {self.detail}"
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def note(self, message: str, stream=None) -> None:
        """Print one line (to ``stream``, default stderr) above the bar."""
        self._clear()
        out = self.stream if stream is None else stream
        out.write(message + "\n")
        out.flush()
        if self.tty and self._drawn:
            self._draw()

    def finish(self, message: str) -> None:
        """Replace the bar with ``message``."""
        self._clear()
        self.stream.write(message + "\n")
        self.stream.flush()
        self._drawn = False
