"""PostgreSQL URLs of pypicloud 1.x ini files keep working (SPEC sections 1 and 3).

1.x deployments wrote ``db.url = postgresql://...`` (SQLAlchemy's default driver,
psycopg2) or ``postgres://...``; pypicloud installs psycopg 3. Such a URL must
start the server and serve as before, not fail for a driver nobody installed.
"""

from __future__ import annotations

import pytest

from pypicloud import sqldb
from pypicloud.settings import Settings

from .helpers import make_wheel, project_names, service, upload_dist


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_1x_postgres_url_serves_uploads(make_app, postgres_schema, scheme):
    url, schema = postgres_schema
    legacy = url.replace("postgresql+psycopg://", f"{scheme}://", 1)
    assert legacy.startswith(f"{scheme}://")
    app = make_app({"pypi.db": "sql", "db.url": legacy, "db.schema": schema})
    upload_dist(app, make_wheel("Legacy.Pkg", "1.0"))
    assert project_names(app) == ["legacy-pkg"]
    assert service(app).index.engine.url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "given,expected",
    [
        (
            "postgresql://u:p%40ss@db.internal:5433/ppc?sslmode=require",
            "postgresql+psycopg://u:p%40ss@db.internal:5433/ppc?sslmode=require",
        ),
        ("postgres://u@db.internal/ppc", "postgresql+psycopg://u@db.internal/ppc"),
        ("postgresql+psycopg://u@db.internal/ppc", "postgresql+psycopg://u@db.internal/ppc"),
        ("mysql+pymysql://u@db.internal/ppc", "mysql+pymysql://u@db.internal/ppc"),
    ],
)
def test_urls_without_a_driver_get_the_installed_one(given, expected):
    settings = Settings({"db.url": given}, environ={})
    assert sqldb.settings_url(settings, "db.url", "x.sqlite") == expected
