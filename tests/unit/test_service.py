"""The package service's rules, on the in-memory backends of tests/fakes.py.

Table-driven and fast: no server, no disk (but the upload spool), no database.
Every refusal is checked for its status (401 for anonymous callers, 403 for a
known user without the right, 409, 400, 404) and for what it left behind:
nothing in storage, nothing in the index.

The cast: ``admin`` (an admin), ``alice`` (may write ``alice-pkg`` through a
grant), ``bob`` (a plain user, reads by the default ``authenticated``), and
``writer`` (``default_write`` group member, may write any project without grants).
"""

from __future__ import annotations

import hashlib
import io

import pytest

from pypicloud.access.passwords import hash_password
from pypicloud.errors import (
    FileExists,
    FileNotFound,
    Forbidden,
    InvalidUpload,
    ProjectNotFound,
    Unauthorized,
)
from pypicloud.models import ANONYMOUS, Identity
from pypicloud.service import PackageIndex
from tests.builders import make_sdist, make_wheel
from tests.fakes import MemoryAccess, MemoryIndex, MemoryStorage

HASH = hash_password("pw", "pbkdf2_sha256")  # never checked here: identities are built directly
PROJECT = "alice-pkg"
OTHER = "open-pkg"


def build(**policy) -> PackageIndex:
    access = MemoryAccess(**{"default_read": ["authenticated"], "default_write": ["writers"], **policy})
    for user in ("admin", "alice", "bob", "writer"):
        access.create_user(user, HASH, admin=user == "admin")
    access.create_group("writers")
    access.set_membership("writer", "writers", True)
    access.set_grant(PROJECT, "user", "alice", "rw")
    access.set_grant(PROJECT, "user", "bob", "r")
    return PackageIndex(MemoryStorage(), MemoryIndex(), access)


def who(service: PackageIndex, name: str | None) -> Identity:
    return ANONYMOUS if name is None else service.access.identity(name)


def upload(service: PackageIndex, user: str | None, dist: tuple[str, bytes], *, name: str = PROJECT):
    filename, data = dist
    version = filename.split("-")[1].removesuffix(".tar.gz")
    return service.upload(
        who(service, user), name=name, version=version, filename=filename, content=io.BytesIO(data)
    )


def stored(service: PackageIndex) -> list[str]:
    """Every file name in storage and in the index (they must agree)."""
    in_storage = sorted(o.filename for o in service.storage.list() if not o.filename.endswith(".metadata"))
    in_index = sorted(r.filename for r in service.index.all_records())
    assert in_storage == in_index
    return in_index


WHEEL = make_wheel(PROJECT, "1.0")
SDIST = make_sdist(PROJECT, "1.0")


@pytest.fixture
def service() -> PackageIndex:
    return build()


# Uploads --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "user, project, error",
    [
        ("alice", PROJECT, None),  # a grant
        ("admin", PROJECT, None),  # admins write everywhere
        ("writer", OTHER, None),  # default_write, on a project without grants
        ("writer", PROJECT, Forbidden),  # the project's grants replace the defaults
        ("bob", PROJECT, Forbidden),  # read-only grant
        ("bob", OTHER, Forbidden),  # default_read only
        (None, PROJECT, Unauthorized),  # anonymous: 401 first, so the client sends credentials
        (None, OTHER, Unauthorized),
    ],
)
def test_who_may_upload(service, user, project, error):
    dist = make_wheel(project, "1.0")
    if error is None:
        result = upload(service, user, dist, name=project)
        assert result.created and result.record.uploader == user
        assert stored(service) == [dist[0]]
    else:
        with pytest.raises(error):
            upload(service, user, dist, name=project)
        assert stored(service) == []


@pytest.mark.parametrize(
    "name, filename, data, message",
    [
        (PROJECT, WHEEL[0], b"", "empty"),
        (PROJECT, WHEEL[0], b"not a zip", ""),
        (PROJECT, "alice_pkg-1.0.exe", WHEEL[1], ""),  # not a distribution file name
        ("other-name", WHEEL[0], WHEEL[1], ""),  # the file belongs to another project
        (PROJECT, make_wheel(PROJECT, "2.0")[0], WHEEL[1], ""),  # the version in the name lies
    ],
    ids=["empty", "not-an-archive", "bad-filename", "other-project", "other-version"],
)
def test_bad_uploads_are_400_and_store_nothing(service, name, filename, data, message):
    with pytest.raises(InvalidUpload) as info:
        service.upload(
            who(service, "admin"), name=name, version="1.0", filename=filename, content=io.BytesIO(data)
        )
    assert info.value.status == 400 and message in str(info.value)
    assert stored(service) == []


@pytest.mark.parametrize("field", ["name", "version", "filename", "content"], ids=lambda f: f"missing-{f}")
def test_missing_fields(service, field):
    fields = {"name": PROJECT, "version": "1.0", "filename": WHEEL[0], "content": io.BytesIO(WHEEL[1])}
    fields[field] = None
    with pytest.raises(InvalidUpload):
        service.upload(who(service, "alice"), **fields)
    assert stored(service) == []


# Overwrites -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "policy, user, error",
    [
        ({}, "alice", FileExists),  # released files are immutable by default
        ({}, "admin", FileExists),  # admins too
        ({"allow_overwrite": True}, "alice", None),
        ({"allow_overwrite": True}, "bob", Forbidden),  # a reader may not overwrite either
        ({"allow_overwrite_groups": ["writers"]}, "alice", FileExists),  # not in the group
        ({"allow_overwrite_groups": ["writers"]}, "admin", FileExists),
    ],
)
def test_overwrite_rules(policy, user, error):
    service = build(**policy)
    upload(service, "alice", WHEEL)
    other_bytes = make_wheel(PROJECT, "1.0", payload=b"VALUE = 2\n")
    if error is None:
        assert upload(service, user, other_bytes).created
        assert service.index.get(WHEEL[0]).sha256 == hashlib.sha256(other_bytes[1]).hexdigest()
        with service.storage.open(PROJECT, WHEEL[0]) as handle:
            assert handle.read() == other_bytes[1]
    else:
        with pytest.raises(error):
            upload(service, user, other_bytes)
        with service.storage.open(PROJECT, WHEEL[0]) as handle:
            assert handle.read() == WHEEL[1]  # the first upload stays
    assert stored(service) == [WHEEL[0]]


def test_the_same_bytes_again_is_accepted_and_changes_nothing(service):
    first = upload(service, "alice", WHEEL)
    generation = service.index.generation()
    again = upload(service, "alice", WHEEL)
    assert not again.created and again.record == first.record
    assert service.index.generation() == generation


def test_a_second_sdist_of_one_release_is_refused(service):
    upload(service, "alice", SDIST)
    with pytest.raises(InvalidUpload, match="second sdist"):
        upload(service, "alice", make_sdist(PROJECT, "1.0.0"))
    assert stored(service) == [SDIST[0]]


# Reading ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "user, project, error",
    [
        ("bob", PROJECT, None),
        ("alice", PROJECT, None),
        ("writer", PROJECT, Forbidden),  # the project's grants do not name them
        (None, PROJECT, Unauthorized),
        ("bob", "no-such-project", ProjectNotFound),
        (None, "no-such-project", ProjectNotFound),
    ],
)
def test_who_may_read(service, user, project, error):
    upload(service, "alice", WHEEL)
    if error is None:
        assert [r.filename for r in service.project_files(who(service, user), project)] == [WHEEL[0]]
    else:
        with pytest.raises(error):
            service.project_files(who(service, user), project)


def test_project_list_shows_only_readable_projects(service):
    upload(service, "alice", WHEEL)
    upload(service, "writer", make_wheel(OTHER, "1.0"), name=OTHER)
    assert [p.project for p in service.projects(who(service, "bob"))] == [PROJECT, OTHER]
    assert [p.project for p in service.projects(who(service, "writer"))] == [OTHER]
    assert service.projects(ANONYMOUS) == []


# Yank ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "user, error",
    [("alice", None), ("admin", None), ("bob", Forbidden), ("writer", Forbidden), (None, Unauthorized)],
)
def test_who_may_yank(service, user, error):
    upload(service, "alice", WHEEL)
    if error is None:
        record = service.set_yanked(who(service, user), PROJECT, WHEEL[0], True, "broken")
        assert (record.yanked, record.yanked_reason) == (True, "broken")
        assert service.index.get(WHEEL[0]).yanked_reason == "broken"
        assert service.storage.stat(PROJECT, WHEEL[0]).metadata["yanked"] == "broken"  # survives a rebuild
        service.set_yanked(who(service, user), PROJECT, WHEEL[0], False, "ignored")
        assert service.index.get(WHEEL[0]).yanked_reason is None
    else:
        with pytest.raises(error):
            service.set_yanked(who(service, user), PROJECT, WHEEL[0], True, "broken")
        assert not service.index.get(WHEEL[0]).yanked


def test_an_api_token_may_upload_but_not_yank_or_delete(service):
    token, _ = service.access.create_token("alice", upload=True)
    identity = service.access.authenticate("__token__", token)
    filename, data = WHEEL
    service.upload(identity, name=PROJECT, version="1.0", filename=filename, content=io.BytesIO(data))
    for action in (
        lambda: service.set_yanked(identity, PROJECT, filename, True),
        lambda: service.delete_file(identity, PROJECT, filename),
    ):
        with pytest.raises(Forbidden):
            action()
    assert stored(service) == [filename] and not service.index.get(filename).yanked


# Delete ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "policy, user, error",
    [
        ({}, "alice", None),
        ({}, "admin", None),
        ({}, "bob", Forbidden),
        ({}, None, Unauthorized),
        ({"allow_delete": False}, "alice", Forbidden),
        ({"allow_delete": False}, "admin", None),  # admins may always delete
        ({"allow_delete_groups": ["writers"]}, "alice", Forbidden),
    ],
)
def test_who_may_delete(policy, user, error):
    service = build(**policy)
    upload(service, "alice", WHEEL)
    if error is None:
        assert service.delete_file(who(service, user), PROJECT, WHEEL[0]).filename == WHEEL[0]
        assert stored(service) == []
        with pytest.raises(ProjectNotFound):
            service.project_files(who(service, "admin"), PROJECT)
    else:
        with pytest.raises(error):
            service.delete_file(who(service, user), PROJECT, WHEEL[0])
        assert stored(service) == [WHEEL[0]]


def test_deleting_a_missing_file_is_404(service):
    with pytest.raises(FileNotFound):
        service.delete_file(who(service, "admin"), PROJECT, WHEEL[0])


def test_delete_release_removes_every_file_of_the_release(service):
    upload(service, "alice", WHEEL)
    upload(service, "alice", SDIST)
    upload(service, "alice", make_wheel(PROJECT, "2.0"))
    deleted = service.delete_release(who(service, "alice"), PROJECT, "1.0.0")  # 1.0.0 is 1.0
    assert sorted(r.filename for r in deleted) == sorted([WHEEL[0], SDIST[0]])
    assert stored(service) == [make_wheel(PROJECT, "2.0")[0]]
