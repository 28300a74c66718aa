"""docs/access.md's who-may-do-what tables hold for both access backends (issue 10).

The expected answers are read from the documentation itself (tests/access_table.py),
so the table a reader sees is the table that is tested.
"""

from __future__ import annotations

import pytest

from pypicloud.access.config import ConfigAccess
from pypicloud.access.sql import SQLAccess
from pypicloud.models import ANONYMOUS
from pypicloud.settings import Settings
from tests.access_table import ANONYMOUS as ANON_ROW, sample_passwords, sample_settings, tables

TABLES = tables()


def ids(table):
    return ";".join(f"{k}={v}" for k, v in table.defaults.items())


def config_backend(table) -> ConfigAccess:
    return ConfigAccess.from_settings(Settings({**sample_settings(), **table.defaults}, environ={}))


def sql_backend(table, tmp_path) -> SQLAccess:
    settings = Settings({**table.defaults, "pypi.auth": "sql"}, environ={})
    backend = SQLAccess(f"sqlite:///{tmp_path}/access.sqlite",
                        **SQLAccess.base_kwargs_from_settings(settings))
    backend.load(config_backend(table).export_data())
    return backend


@pytest.mark.parametrize("table", TABLES, ids=ids)
@pytest.mark.parametrize("kind", ["config", "sql"])
def test_every_cell_of_the_documented_tables(table, kind, tmp_path):
    backend = config_backend(table) if kind == "config" else sql_backend(table, tmp_path)
    try:
        wrong = []
        for (caller, project), expected in table.cells.items():
            identity = ANONYMOUS if caller == ANON_ROW else backend.identity(caller)
            got = backend.permission(identity, project)
            if got != expected:
                wrong.append(f"{caller} on {project}: docs say {expected or '-'}, got {got or '-'}")
        assert not wrong, "\n".join(wrong)
        assert len(table.cells) == 5 * 4
    finally:
        if kind == "sql":
            backend.close()


def test_the_sample_users_log_in_with_the_documented_passwords():
    backend = config_backend(TABLES[0])
    passwords = sample_passwords()
    assert set(passwords) == {"stevearc", "dsa", "donlan", "ppcadmin"}
    for user, password in passwords.items():
        assert backend.authenticate(user, password).username == user
        assert backend.authenticate(user, password + "x") is None


def test_the_sample_grant_names_are_1x_spellings_matched_canonically():
    # The sample writes django_unchained; the tables name django-unchained.
    assert "package.django_unchained.user.stevearc" in sample_settings()
    backend = config_backend(TABLES[0])
    stevearc = backend.identity("stevearc")
    for spelling in ("django_unchained", "Django.Unchained", "django-unchained"):
        assert backend.permission(stevearc, spelling) == "rw"
