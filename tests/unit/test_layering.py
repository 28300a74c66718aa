"""Views make one service call and never reach past the service (issue 13).

A view that reads ``service.index``, ``service.access`` or ``service.storage``
has taken a rule (or a backend call) that belongs in the service layer. This
reads the source of every module under ``pypicloud/views/`` and fails naming
each place that does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pypicloud

VIEWS = Path(pypicloud.__file__).parent / "views"
BACKENDS = {"index", "access", "storage"}

# No exceptions: the web UI's rules moved to the access manager and the service.
ALLOWED: set[str] = set()


def _allowed(path: Path) -> bool:
    relative = path.relative_to(VIEWS).as_posix()
    return relative in ALLOWED


def _names_service(node: ast.expr) -> bool:
    """``service``, ``x.service``, ``services.service`` ...: anything called service."""
    if isinstance(node, ast.Name):
        return node.id in ("service", "svc")
    if isinstance(node, ast.Attribute):
        return node.attr in ("service", "svc")
    return False


def reaches(source: str) -> list[tuple[int, str]]:
    """(line, expression) of every ``<service>.index/access/storage`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in BACKENDS and _names_service(node.value):
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and _names_service(node.args[0])
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in BACKENDS
        ):
            found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def test_the_check_sees_every_spelling():
    source = (
        "a = request.registry.service.index.generation()\n"
        "service = request.registry.service\n"
        "b = service.access.can_read(x, y)\n"
        "c = request.services.service.storage\n"
        "d = getattr(service, 'index')\n"
        "e = service.projects(identity)\n"
        "f = request.index\n"
    )
    assert sorted(line for line, _ in reaches(source)) == [1, 3, 4, 5]


def test_no_view_reaches_past_the_service():
    modules = sorted(p for p in VIEWS.rglob("*.py") if not _allowed(p))
    assert len(modules) > 10  # the views package is where this test thinks it is
    offences = [
        f"{path.relative_to(VIEWS.parent)}:{line}: {expr}"
        for path in modules
        for line, expr in reaches(path.read_text(encoding="utf-8"))
    ]
    assert offences == [], "views reach past the service (move the rule into a service method):\n" + (
        "\n".join(offences)
    )


def test_the_service_split_keeps_every_old_import():
    """``from pypicloud.service import X`` and ``from pypicloud import X`` keep working
    for every name code, tests, benchmarks and plugins imported before the split."""
    import pypicloud.service as service

    for name in (
        "PackageIndex",
        "UploadResult",
        "Download",
        "ProjectListing",
        "ANONYMOUS",
        "METADATA_SUFFIX",
        "record_to_metadata",
        "record_from_object",
        "parse_upload_time",
        "SPOOL_PREFIX",
        "SUMMARY_IN_STORAGE",
        "CHUNK",
    ):
        assert getattr(service, name) is not None, name
    from pypicloud import build_service, make_config, start_repair
    from pypicloud.app import build_service as built_here

    assert build_service is built_here
    assert callable(make_config) and callable(start_repair)
