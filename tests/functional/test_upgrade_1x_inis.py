"""The ini files pypicloud 1.3.12's ppc-make-config writes start unchanged (issue 10).

tests/fixtures/v1/config-1x-*.ini are that tool's real output (make_configs.py);
only the docker file's /var/lib/pypicloud is pointed at the test's folder.
"""

from __future__ import annotations

import base64
import configparser
from pathlib import Path

import pytest

from tests.functional.helpers import build_app, close_app, make_wheel, upload

V1 = Path(__file__).resolve().parent.parent / "fixtures" / "v1"


def app_settings(name: str, here: Path, **changes: str) -> dict[str, str]:
    text = (V1 / name).read_text(encoding="utf-8").replace("/var/lib/pypicloud", str(here))
    parser = configparser.ConfigParser(defaults={"here": str(here)})
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string(text)
    settings = {k: v for k, v in parser.items("app:main") if k != "here"}
    settings.update(changes)
    return settings


def admin() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"admin:adminpw").decode()}


@pytest.mark.parametrize(
    "name,anonymous_reads",
    [
        ("config-1x-dev.ini", True),
        ("config-1x-test.ini", True),
        ("config-1x-prod.ini", False),
        ("config-1x-docker.ini", True),
    ],
)
def test_1x_make_config_output_starts_and_serves(name, anonymous_reads, tmp_path, spool_dir, caplog):
    with caplog.at_level("WARNING"):
        app = build_app(tmp_path, app_settings(name, tmp_path))
    try:
        assert "a typo" not in caplog.text
        assert "pypi.fallback = redirect" in caplog.text  # 1.x's default, said once
        assert "weak" not in caplog.text  # 1.x's random 32-byte keys are fine
        filename, data = make_wheel("demo", "1.0")
        upload(app, filename, data, user=None, headers=admin(), status=200)
        page = app.get("/simple/demo/", expect_errors=True)
        assert page.status_int == (200 if anonymous_reads else 401)
        assert app.get("/simple/demo/", headers=admin()).status_int == 200
        assert app.get("/health").status_int == 200
    finally:
        close_app(app)


def test_1x_docker_compose_session_keys_replaceme_start_with_a_warning(tmp_path, spool_dir, caplog):
    # pypicloud-docker's compose examples ship session.*_key = replaceme.
    settings = app_settings(
        "config-1x-dev.ini",
        tmp_path,
        **{"session.encrypt_key": "replaceme", "session.validate_key": "replaceme"},
    )
    with caplog.at_level("WARNING"):
        app = build_app(tmp_path, settings)
    try:
        assert "weak" in caplog.text and "session.secret" in caplog.text
        assert app.get("/login").status_int == 200
    finally:
        close_app(app)
