"""The access rules the web UI and ppc-access share (pypicloud/access_manager.py), on the
SQL access backend: own passwords, tokens (who for whom, expiry, who revokes), grants."""

from __future__ import annotations

import pytest

from pypicloud.access.editable import AccessConflict, InvalidAccessData
from pypicloud.access.passwords import hash_password
from pypicloud.access.sql import SQLAccess
from pypicloud.access_manager import AccessManager
from pypicloud.errors import Forbidden, Unauthorized
from pypicloud.models import ANONYMOUS


@pytest.fixture
def manager(tmp_path):
    access = SQLAccess(f"sqlite:///{tmp_path}/access.db")
    access.create_user("root", hash_password("root-password"), admin=True)
    access.create_user("alice", hash_password("alice-password"))
    access.create_user("bob", hash_password("bob-password"))
    return AccessManager(access)


def who(manager, name):
    return manager.access.identity(name)


def test_own_password_needs_the_current_one_a_length_and_a_repeat(manager):
    alice = who(manager, "alice")
    for current, new, repeat, reason in [
        ("wrong", "long-enough-1", "long-enough-1", "not right"),
        ("alice-password", "short", "short", "at least 8"),
        ("alice-password", "long-enough-1", "long-enough-2", "not the same"),
    ]:
        with pytest.raises(InvalidAccessData, match=reason):
            manager.change_own_password(alice, current, new, repeat)
    assert manager.access.authenticate("alice", "alice-password") is not None
    manager.change_own_password(alice, "alice-password", "long-enough-1", "long-enough-1")
    assert manager.access.authenticate("alice", "long-enough-1") is not None
    with pytest.raises(Forbidden):
        manager.change_own_password(ANONYMOUS, "x", "long-enough-1", "long-enough-1")


def test_tokens_users_make_their_own_admins_anyones(manager):
    made = manager.create_token(who(manager, "alice"), "alice", expires_days="7", projects=["Acme_Widget"])
    assert made.info.username == "alice" and made.info.projects == ("acme-widget",)
    with pytest.raises(Forbidden):
        manager.create_token(who(manager, "alice"), "bob")
    assert manager.create_token(who(manager, "root"), "bob").info.username == "bob"
    assert manager.create_token(None, "bob", expires_days=0).info.expires_at is None  # the CLI
    with pytest.raises(InvalidAccessData, match="must be a number"):
        manager.create_token(who(manager, "alice"), "alice", expires_days="soon")
    with pytest.raises(InvalidAccessData, match="between 0"):
        manager.create_token(who(manager, "alice"), "alice", expires_days="99999999")
    assert len(manager.access.tokens("alice")) == 1


def test_users_revoke_only_their_own_tokens_admins_any(manager):
    bobs = manager.create_token(None, "bob").info.token_id
    with pytest.raises(Forbidden, match="You have no token"):
        manager.revoke_token(who(manager, "alice"), bobs)
    assert [t.token_id for t in manager.access.tokens("bob")] == [bobs]
    manager.revoke_token(who(manager, "root"), bobs)
    assert manager.access.tokens("bob") == []


def test_grants_are_checked_before_anything_is_stored(manager):
    root = who(manager, "root")
    before = manager.access.export_data().to_json()
    for kind, name, permission, error in [
        ("robot", "alice", "r", InvalidAccessData),
        ("user", "alice", "admin", InvalidAccessData),
        ("user", "", "r", InvalidAccessData),
        ("user", "nobody", "r", AccessConflict),
    ]:
        with pytest.raises(error) as info:
            manager.set_grant(root, "demo", kind, name, permission)
        assert 400 <= info.value.status < 500
    assert manager.access.export_data().to_json() == before
    assert manager.set_grant(root, "Acme_Widget", "user", "alice", "rw") == "acme-widget"
    with pytest.raises(Forbidden):
        manager.set_grant(who(manager, "alice"), "demo", "user", "alice", "rw")
    with pytest.raises(Unauthorized):
        manager.set_grant(ANONYMOUS, "demo", "user", "alice", "rw")


def test_the_access_overview_is_for_admins(manager):
    overview = manager.overview(who(manager, "root"))
    assert set(overview.data.users) == {"root", "alice", "bob"} and overview.editable
    with pytest.raises(Forbidden):
        manager.overview(who(manager, "alice"))
    assert manager.account(who(manager, "alice")).editable is True
