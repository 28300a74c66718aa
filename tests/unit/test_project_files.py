"""The repository stands alone: what the code and docs cite exists, the licence and
the test command agree wherever they are written down."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec.md"
# "SPEC section 9", "SPEC sections 4, 8 and 9", "SPEC §5"
REFERENCE = re.compile(r"SPEC (?:sections?|§)\s*(\d+(?:(?:\s*,\s*|\s+and\s+)\d+)*)")


def _sources() -> list[Path]:
    found = []
    for folder in ("pypicloud", "docs", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*"):
            if (
                path.suffix in {".py", ".md", ".jinja2", ".html", ".ini", ".txt"}
                and ".node" not in path.parts
            ):
                found.append(path)
    return found + [ROOT / "README.md"]


def test_every_spec_reference_names_a_section_of_docs_spec():
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", SPEC.read_text("utf-8"), re.MULTILINE)}
    assert sections >= set(range(1, 13))
    cited, dangling = 0, []
    for path in _sources():
        text = path.read_text("utf-8", errors="replace")
        for match in REFERENCE.finditer(text):
            for number in map(int, re.findall(r"\d+", match.group(1))):
                cited += 1
                if number not in sections:
                    dangling.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert cited > 20  # the pattern still finds the references
    assert dangling == []


def test_the_licence_file_and_the_package_metadata_agree():
    licence = (ROOT / "LICENSE").read_text("utf-8")
    assert licence.startswith("MIT License") and "pypicloud developers" in licence
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert project["license"] in ("MIT", {"text": "MIT"})


def test_the_changelog_points_to_the_upgrade_guide():
    changelog = (ROOT / "CHANGELOG.md").read_text("utf-8")
    assert "## 2.0" in changelog and "docs/upgrading.md" in changelog
    assert (ROOT / "docs" / "upgrading.md").is_file()


def _command(text: str) -> str:
    """The test command: from the venv line to the pytest call, joined into one line."""
    match = re.search(r"python3 -m venv \.venv && .*?\.venv/bin/pytest -n 2", text, re.DOTALL)
    assert match, "no test command found"
    return re.sub(r"\s*\\\n\s*", " ", match.group(0))


@pytest.mark.parametrize("gate", ["ruff check", "ruff format --check", "mypy pypicloud"])
def test_readme_and_ci_run_the_same_gates_before_pytest(gate):
    readme = _command((ROOT / "README.md").read_text("utf-8").split("## Run the tests", 1)[1])
    ci = _command((ROOT / ".ci" / "run").read_text("utf-8"))
    assert readme == ci
    assert readme.index(gate) < readme.index("pytest")
