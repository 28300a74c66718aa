"""docs/access.md's who-may-do-what tables hold over HTTP (issue 10).

The pypicloud 1.x documentation's access sample, unchanged, served with each
documented pair of defaults: every caller reads every project's page and
uploads a new version to it, and gets what the table in docs/access.md says
(allowed: 200; refused: 401 asking for a login when anonymous, else 403).
"""

from __future__ import annotations

import base64

import pytest

from tests.access_table import ANONYMOUS, sample_passwords, sample_settings, tables
from tests.functional.helpers import JSON_TYPE, build_app, close_app, make_wheel, upload

TABLES = tables()
PASSWORDS = sample_passwords()


def headers(caller: str) -> dict[str, str]:
    if caller == ANONYMOUS:
        return {}
    token = base64.b64encode(f"{caller}:{PASSWORDS[caller]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def refused(caller: str) -> int:
    return 401 if caller == ANONYMOUS else 403


@pytest.mark.parametrize(
    "table", TABLES, ids=[";".join(f"{k}={v}" for k, v in t.defaults.items()) for t in TABLES]
)
def test_the_documented_table_over_http(table, tmp_path, spool_dir):
    settings = {
        "pypi.storage": "file",
        "storage.dir": str(tmp_path / "packages"),
        "pypi.db": "sql",
        "db.url": f"sqlite:///{tmp_path / 'index.sqlite'}",
        "pypi.fallback": "none",
        **sample_settings(),
        **table.defaults,
    }
    app = build_app(tmp_path, settings)
    try:
        for project in table.projects:
            filename, data = make_wheel(project, "1.0")
            upload(app, filename, data, user="ppcadmin", password=PASSWORDS["ppcadmin"], status=200)
        wrong, accepted = [], {p: {"1.0"} for p in table.projects}
        callers = sorted({caller for caller, _ in table.cells})
        for n, caller in enumerate(callers):
            listing = app.get(
                "/simple/", headers={**headers(caller), "Accept": JSON_TYPE}, expect_errors=True
            )
            listed = {p["name"] for p in listing.json["projects"]} if listing.status_int == 200 else set()
            for project in table.projects:
                cell = table.cells[(caller, project)]
                page = app.get(f"/simple/{project}/", headers=headers(caller), expect_errors=True)
                want = 200 if "r" in cell else refused(caller)
                if page.status_int != want:
                    wrong.append(f"{caller} GET {project}: want {want}, got {page.status}")
                if ("r" in cell) != (project in listed):
                    wrong.append(f"{caller} /simple/ listing {project}: readable={'r' in cell}")
                version = f"2.{n}"
                filename, data = make_wheel(project, version)
                response = upload(app, filename, data, user=None, headers=headers(caller))
                want = 200 if "w" in cell else refused(caller)
                if response.status_int != want:
                    wrong.append(f"{caller} upload to {project}: want {want}, got {response.status}")
                if response.status_int == 200:
                    accepted[project].add(version)
        assert not wrong, "\n".join(wrong)
        # Refused uploads left nothing: the admin sees exactly the accepted versions.
        admin = headers("ppcadmin")
        for project in table.projects:
            page = app.get(f"/simple/{project}/", headers={**admin, "Accept": JSON_TYPE})
            assert set(page.json["versions"]) == accepted[project], project
    finally:
        close_app(app)
