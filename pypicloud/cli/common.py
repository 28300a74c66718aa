"""Shared helpers of the command-line tools."""

from __future__ import annotations

import sys

from pyramid.paster import get_appsettings, setup_logging

from ..settings import Settings


def load_settings(config_uri: str) -> Settings:
    """The ``[app:main]`` settings of an ini file, validated as the server would."""
    setup_logging(config_uri)
    raw = get_appsettings(config_uri)
    return Settings(dict(raw), here=raw.global_conf.get("here"))


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, label: str, total: int | None = None, stream=sys.stderr):
        self.label, self.total, self.stream, self.done = label, total, stream, 0
        self.tty = stream.isatty()

    def step(self, count: int = 1) -> None:
        self.done += count
        if self.tty:
            if self.total:
                width = 30
                filled = int(width * self.done / self.total)
                bar = "#" * filled + "-" * (width - filled)
                self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            else:
                self.stream.write(f"\r{self.label} {self.done}")
            self.stream.flush()

    def finish(self, message: str) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.write(message + "\n")
        self.stream.flush()
