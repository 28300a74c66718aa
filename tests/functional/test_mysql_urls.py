"""MySQL / MariaDB URLs of pypicloud 1.x ini files (issue 14).

1.x deployments wrote ``db.url = mysql://...`` (SQLAlchemy then asks for the C
driver MySQLdb), ``mysql+pymysql://...`` or ``mariadb://...``. Each must start
the server and serve uploads on the MariaDB of the test machine (a fresh
database per test), the access tables included; a driver that is not installed,
a wrong password or a server that does not answer stops start-up naming the key.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from pypicloud import sqldb
from pypicloud.errors import ConfigError
from pypicloud.settings import Settings
from tests.fixtures.services import free_port

from .helpers import make_wheel, project_names, service, upload_dist

pytestmark = pytest.mark.mariadb


@pytest.mark.parametrize("scheme", ["mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"])
def test_a_1x_mysql_url_serves_uploads(make_app, mariadb_database, scheme):
    url, _ = mariadb_database
    legacy = url.replace("mysql+pymysql://", f"{scheme}://", 1)
    app = make_app({"pypi.db": "sql", "db.url": legacy})
    upload_dist(app, make_wheel("Legacy.Pkg", "1.0"))
    assert project_names(app) == ["legacy-pkg"]
    assert service(app).index.engine.url.drivername == scheme.split("+")[0] + "+pymysql"
    assert app.get("/health").json == {"status": "ok"}  # details: admins only


def test_sql_access_in_mariadb(make_app, mariadb_database):
    url, _ = mariadb_database
    app = make_app(
        {
            "db.url": url.replace("mysql+pymysql://", "mysql://", 1),
            "pypi.auth": "sql",
            "auth.db.url": url.replace("mysql+pymysql://", "mariadb://", 1),
        }
    )
    access = service(app).access
    assert access.engine.url.drivername == "mariadb+pymysql"
    from pypicloud.access.passwords import hash_password

    access.create_user("ünï", hash_password("pw-1"), admin=True)
    assert access.authenticate("ünï", "pw-1").is_admin


@pytest.mark.parametrize(
    "given,expected",
    [
        ("mysql://u:p%40ss@db.internal:3307/ppc", "mysql+pymysql://u:p%40ss@db.internal:3307/ppc"),
        ("mariadb://u@db.internal/ppc?ssl_ca=/ca.pem", "mariadb+pymysql://u@db.internal/ppc?ssl_ca=/ca.pem"),
        ("mariadb+pymysql://u@db.internal/ppc", "mariadb+pymysql://u@db.internal/ppc"),
    ],
)
def test_mysql_urls_get_the_pure_python_driver(given, expected):
    settings = Settings({"db.url": given}, environ={})
    assert make_url(sqldb.settings_url(settings, "db.url", "x.sqlite")) == make_url(expected)


def test_a_driver_that_is_not_installed_names_the_extra():
    # The C driver MySQLdb is not part of any pypicloud extra.
    settings = Settings({"db.url": "mysql+mysqldb://u:secret@db.internal/ppc"}, environ={})
    with pytest.raises(ConfigError) as info:
        sqldb.settings_url(settings, "db.url", "x.sqlite")
    message = str(info.value)
    assert "db.url" in message and "pip install 'pypicloud[mysql]'" in message
    assert "secret" not in message


def test_a_wrong_password_stops_start_up_naming_the_key(make_app, mariadb_database):
    url, _ = mariadb_database
    wrong = url.replace("root@", "root:not-the-password@", 1)
    with pytest.raises(ConfigError) as info:
        make_app({"db.url": wrong})
    message = str(info.value)
    assert "db.url" in message and "Access denied" in message
    assert "not-the-password" not in message


def test_a_server_that_does_not_answer_stops_start_up(make_app):
    with pytest.raises(ConfigError) as info:
        make_app({"db.url": f"mysql://root@127.0.0.1:{free_port()}/ppc"})
    assert "db.url" in str(info.value) and "cannot open the database" in str(info.value)


def test_db_schema_is_refused_on_mysql(make_app, mariadb_database):
    url, _ = mariadb_database
    with pytest.raises(ConfigError, match="db.schema"):
        make_app({"db.url": url, "db.schema": "other"})
