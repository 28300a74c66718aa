"""Reads docs/access.md: the sample ini and the who-may-do-what tables (issue 10).

Shared by the unit test (both backends) and the HTTP test, so the documentation
is the one source of the expected answers.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "access.md"
ANONYMOUS = "anonymous"


@dataclass
class Table:
    defaults: dict[str, str]  # pypi.default_read / pypi.default_write
    projects: list[str]
    cells: dict[tuple[str, str], str]  # (caller, project) -> "rw" | "r" | "w" | ""


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def sample_settings() -> dict[str, str]:
    """The ini block after ``<!-- access-sample -->`` as app settings."""
    block = re.search(r"<!-- access-sample -->\s*```ini\n(.*?)```", _text(), re.S)
    assert block, "docs/access.md lost its sample block"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string("[app:main]\n" + block.group(1))
    return dict(parser.items("app:main"))


def sample_passwords() -> dict[str, str]:
    """User -> password, from the sample's ``# user: x, pass: y`` comments."""
    return dict(re.findall(r"# user: (\S+), pass: (\S+)", _text()))


def tables() -> list[Table]:
    found = []
    pattern = re.compile(r"<!-- access-table: (.*?) -->\n((?:\|.*\|\n)+)")
    for match in pattern.finditer(_text()):
        defaults = {}
        for part in match.group(1).split(";"):
            key, _, value = part.strip().partition("=")
            defaults[key.strip()] = value.strip()
        rows = [
            [c.strip() for c in line.strip().strip("|").split("|")] for line in match.group(2).splitlines()
        ]
        header, body = rows[0], [r for r in rows[2:]]
        projects = header[1:]
        cells = {}
        for row in body:
            for project, cell in zip(projects, row[1:]):
                assert cell in ("rw", "r", "w", "-"), f"bad cell {cell!r} in docs/access.md"
                cells[(row[0], project)] = "" if cell == "-" else cell
        found.append(Table(defaults, projects, cells))
    assert len(found) >= 2, "docs/access.md lost its tables"
    return found
