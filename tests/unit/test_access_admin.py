"""pypicloud 1.x's permission words over our grants, and pip's search rule (access_admin.py, search.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pypicloud.access.config import ConfigAccess
from pypicloud.access.passwords import hash_password
from pypicloud.access.sql import SQLAccess
from pypicloud.access_admin import AccessAdmin, ReadOnlyAccess
from pypicloud.errors import Forbidden, InvalidUpload, Unauthorized
from pypicloud.models import ANONYMOUS, Identity, ProjectSummary
from pypicloud.search import search

ADMIN = Identity("root", is_admin=True)


@pytest.fixture
def admin(tmp_path):
    access = SQLAccess(f"sqlite:///{tmp_path / 'access.sqlite'}")
    access.create_user("alice", hash_password("alice-pw", "pbkdf2_sha256"))
    yield AccessAdmin(access)
    access.close()


@pytest.mark.parametrize(
    "start,word,grant,end",
    [
        (None, "read", True, ["read"]),
        (None, "write", True, ["read", "write"]),
        ("r", "write", True, ["read", "write"]),
        ("rw", "read", True, ["read", "write"]),  # granting read keeps write
        ("rw", "write", False, ["read"]),  # revoking write leaves read
        ("rw", "read", False, []),  # revoking read removes the grant
        ("r", "read", False, []),
        ("r", "write", False, ["read"]),
        (None, "write", False, []),
    ],
)
def test_1x_permission_words_map_onto_r_and_rw(admin, start, word, grant, end):
    if start:
        admin.access.set_grant("lib", "user", "alice", start)
    answer = admin.edit_permission(ADMIN, "Lib", "user", "alice", word, grant)
    assert answer["permissions"] == end
    expected = admin.package_permissions(ADMIN, "lib")["user"]
    assert expected == ([{"username": "alice", "permissions": end}] if end else [])


def test_only_admins_and_only_editable_backends(admin):
    with pytest.raises(Unauthorized):
        admin.users(ANONYMOUS)
    with pytest.raises(Forbidden):
        admin.create_group(Identity("alice"), "qa")
    ini = AccessAdmin(ConfigAccess(users={"root": hash_password("pw", "pbkdf2_sha256")}, admins=["root"]))
    assert ini.users(ADMIN) == [{"username": "root", "admin": True}]
    with pytest.raises(ReadOnlyAccess):
        ini.create_group(ADMIN, "qa")
    assert ini.groups(ADMIN) == []


class _Index:
    """The two reads search() makes of the service, over fixed projects."""

    def __init__(self, projects, files):
        self._projects, self._files = projects, files

    def projects(self, identity):
        return [p for p in self._projects if identity.authenticated or p.project != "secret"]

    def project_files(self, identity, project):
        return self._files[project]


def test_search_and_or_and_newest_version():
    when = datetime(2024, 1, 1, tzinfo=UTC)
    projects = [
        ProjectSummary("web-kit", "Web.Kit", when, "Fast web things"),
        ProjectSummary("secret", "secret", when, "web secret"),
    ]

    class F:
        def __init__(self, version):
            self.version = version

    files = {"web-kit": [F("1.9"), F("1.10"), F("1.10rc1")], "secret": [F("1.0")]}
    service = _Index(projects, files)
    assert search(service, ANONYMOUS, {"name": ["WEB"]}) == [
        {"name": "Web.Kit", "summary": "Fast web things", "version": "1.10"}
    ]
    assert search(service, ANONYMOUS, {"summary": ["fast", "nothing"]}, "and") == []
    assert len(search(service, ANONYMOUS, {"summary": ["fast", "nothing"]}, "or")) == 1
    assert len(search(service, Identity("bob"), {"name": ["e"]}, "or")) == 2
    with pytest.raises(InvalidUpload):
        search(service, ANONYMOUS, {"name": "x"}, "xor")
    with pytest.raises(InvalidUpload):
        search(service, ANONYMOUS, {"name": ["x"] * 100})
