"""docs/access.md's who-may-do-what tables hold for both access backends (issue 10).

The expected answers are read from the documentation itself (tests/access_table.py),
so the table a reader sees is the table that is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pypicloud.access.config import ConfigAccess
from pypicloud.access.sql import SQLAccess
from pypicloud.models import ANONYMOUS
from pypicloud.settings import Settings
from tests.access_table import ANONYMOUS as ANON_ROW
from tests.access_table import sample_passwords, sample_settings, tables

TABLES = tables()


def ids(table):
    return ";".join(f"{k}={v}" for k, v in table.defaults.items())


def config_backend(table) -> ConfigAccess:
    return ConfigAccess.from_settings(Settings({**sample_settings(), **table.defaults}, environ={}))


def sql_backend(table, tmp_path) -> SQLAccess:
    settings = Settings({**table.defaults, "pypi.auth": "sql"}, environ={})
    backend = SQLAccess(
        f"sqlite:///{tmp_path}/access.sqlite", **SQLAccess.base_kwargs_from_settings(settings)
    )
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


def test_the_documented_tables_are_1x_answers():
    """Every cell is what pypicloud 1.3.12 itself answered for the same sample and defaults.

    ``tests/fixtures/v1/make_access_answers.py`` asked 1.3.12's ConfigAccessBackend
    (its ACLs, principals and root ACL) with the sample's grant names canonicalised,
    the one intended difference (docs/upgrading.md).
    """
    answers = json.loads(
        (Path(__file__).resolve().parents[1] / "fixtures" / "v1" / "access-answers-1.3.12.json").read_text(
            encoding="utf-8"
        )
    )
    assert len(answers) == len(TABLES)
    for table in TABLES:
        v1 = answers["; ".join(f"{k}={v}" for k, v in table.defaults.items())]
        wrong = [
            f"{caller} on {project}: docs say {cell or '-'}, 1.x {v1[caller][project] or '-'}"
            for (caller, project), cell in table.cells.items()
            if v1[caller][project] != cell
        ]
        assert not wrong, "\n".join(wrong)
