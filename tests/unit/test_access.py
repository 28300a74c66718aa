"""Access control: the ini backend, the permission rules and the credential cache."""

from __future__ import annotations

import passlib.hash
import pytest

from pypicloud.access import ALIASES, AccessBackend, access_from_settings, base
from pypicloud.access.config import ConfigAccess
from pypicloud.errors import ConfigError
from pypicloud.models import ANONYMOUS, Identity
from pypicloud.settings import Settings
from tests import threads

# Cheap hashes: these tests are about the rules, not the hashing cost.
ALICE_HASH = passlib.hash.argon2.using(memory_cost=64, time_cost=1, parallelism=1).hash("alice-pw")
BOB_HASH = passlib.hash.sha512_crypt.using(rounds=1000).hash("bob-pw")
CAROL_HASH = passlib.hash.bcrypt.using(rounds=4).hash("carol-pw")


def make(extra: dict[str, str] | None = None) -> ConfigAccess:
    raw = {
        "user.alice": ALICE_HASH,
        "user.bob": BOB_HASH,
        "user.carol": CAROL_HASH,
        "group.dev": "bob, carol",
        "group.ops": "dave",
    }
    raw.update(extra or {})
    backend = access_from_settings(Settings(raw, environ={}))
    assert isinstance(backend, ConfigAccess)
    return backend


def who(backend: AccessBackend, username: str) -> Identity:
    return backend.identity(username)


# ---------------------------------------------------------------------------
# Choosing the backend
# ---------------------------------------------------------------------------
def test_config_is_the_default_and_an_alias():
    assert ALIASES["config"] == "pypicloud.access.config.ConfigAccess"
    assert isinstance(access_from_settings(Settings({}, environ={})), ConfigAccess)
    for value in (
        "config",
        "CONFIG",
        "pypicloud.access.config.ConfigAccess",
        "pypicloud.access.config:ConfigAccess",
    ):
        assert isinstance(access_from_settings(Settings({"pypi.auth": value}, environ={})), ConfigAccess)


def test_old_option_name_still_chooses_the_backend():
    settings = Settings({"pypi.access_backend": "config"}, environ={})
    assert isinstance(access_from_settings(settings), ConfigAccess)


@pytest.mark.parametrize("value", ["nope", "pypicloud.models.Identity", "no.such.module.Class"])
def test_unknown_backend_is_a_config_error(value):
    with pytest.raises(ConfigError) as info:
        access_from_settings(Settings({"pypi.auth": value}, environ={}))
    assert info.value.key == "pypi.auth"


def test_the_base_is_abstract():
    with pytest.raises(TypeError):
        AccessBackend()  # type: ignore[abstract]


# ---------------------------------------------------------------------------
# Users, groups, admins
# ---------------------------------------------------------------------------
def test_authenticate_with_each_hash_format():
    backend = make()
    assert backend.authenticate("alice", "alice-pw") == Identity("alice", frozenset(), False)
    assert backend.authenticate("bob", "bob-pw") == Identity("bob", frozenset({"dev"}), False)
    assert backend.authenticate("carol", "carol-pw").groups == {"dev"}


@pytest.mark.parametrize(
    "username,password",
    [
        ("alice", "wrong"),
        ("alice", "alice-pw "),
        ("Alice", "alice-pw"),
        ("nobody", "alice-pw"),
        ("alice", ""),
        ("", "alice-pw"),
        ("alice\0x", "alice-pw"),
        ("dave", "anything"),
    ],
)
def test_bad_credentials(username, password):
    assert make().authenticate(username, password) is None


def test_user_exists():
    backend = make()
    assert backend.user_exists("alice")
    # dave is a group member without a user line: not a user who can log in.
    assert not backend.user_exists("dave")
    assert not backend.user_exists("nobody")


def test_groups_members_split_on_commas_and_whitespace():
    backend = make({"group.qa": "alice,bob\n  carol\teve"})
    assert backend.groups_of("alice") == {"qa"}
    assert backend.groups_of("bob") == {"dev", "qa"}
    assert backend.groups_of("eve") == {"qa"}
    assert backend.groups_of("nobody") == set()


def test_groups_of_returns_a_copy():
    backend = make()
    backend.groups_of("bob").add("admins")
    assert backend.groups_of("bob") == {"dev"}


def test_admins_by_user_name_and_by_group():
    backend = make({"auth.admins": "alice ops"})
    assert backend.is_admin("alice")
    assert backend.is_admin("dave")  # member of ops
    assert not backend.is_admin("bob")
    assert backend.identity("alice").is_admin
    assert backend.authenticate("alice", "alice-pw").is_admin


@pytest.mark.parametrize("name", ["everyone", "authenticated"])
def test_pseudo_groups_cannot_be_defined(name):
    with pytest.raises(ConfigError) as info:
        make({f"group.{name}": "alice"})
    assert info.value.key == f"group.{name}"


@pytest.mark.parametrize("value", ["", "   ", "hunter2", "$unknown$abc"])
def test_user_line_must_hold_a_hash(value):
    with pytest.raises(ConfigError) as info:
        make({"user.eve": value})
    assert info.value.key == "user.eve"
    # A plain-text password written by mistake is not echoed into the logs.
    if value.strip():
        assert value not in str(info.value)


# ---------------------------------------------------------------------------
# Permission rules
# ---------------------------------------------------------------------------
def test_defaults_are_pypicloud_1x():
    backend = make()
    assert backend.default_read == {"authenticated"}
    assert backend.default_write == frozenset()
    assert backend.allow_overwrite is False
    assert backend.allow_delete is True
    assert backend.credentials.ttl == 300
    bob = who(backend, "bob")
    assert backend.can_read(bob, "anything")
    assert not backend.can_write(bob, "anything")
    assert not backend.can_read(ANONYMOUS, "anything")


def test_default_read_everyone_lets_anonymous_read():
    backend = make({"pypi.default_read": "everyone"})
    assert backend.can_read(ANONYMOUS, "lib")
    assert not backend.can_write(ANONYMOUS, "lib")


def test_default_read_can_be_a_group():
    backend = make({"pypi.default_read": "dev"})
    assert backend.can_read(who(backend, "bob"), "lib")
    assert not backend.can_read(who(backend, "alice"), "lib")
    assert not backend.can_read(ANONYMOUS, "lib")


def test_explicitly_empty_default_read_means_nobody():
    backend = make({"pypi.default_read": ""})
    assert not backend.can_read(who(backend, "bob"), "lib")


def test_default_write_groups():
    backend = make({"pypi.default_write": "dev"})
    bob, alice = who(backend, "bob"), who(backend, "alice")
    assert backend.can_write(bob, "lib") and backend.can_read(bob, "lib")
    assert not backend.can_write(alice, "lib")


def test_default_write_authenticated_and_everyone():
    backend = make({"pypi.default_write": "authenticated"})
    assert backend.can_write(who(backend, "alice"), "lib")
    assert not backend.can_write(ANONYMOUS, "lib")
    backend = make({"pypi.default_write": "everyone"})
    assert backend.can_write(ANONYMOUS, "lib")


def test_write_does_not_imply_read_as_in_1x():
    # 1.x kept read and write apart: default_write without default_read lets
    # bob upload but not list (changed from "write implies read" by issue 10).
    backend = make({"pypi.default_read": "", "pypi.default_write": "dev"})
    bob = who(backend, "bob")
    assert backend.can_write(bob, "lib") and not backend.can_read(bob, "lib")
    assert backend.permission(bob, "lib") == "w"


def test_admin_may_do_everything_but_overwrite_released_files():
    backend = make({"auth.admins": "alice", "pypi.default_read": "", "pypi.allow_delete": "false"})
    alice = who(backend, "alice")
    for check in (backend.can_read, backend.can_write, backend.can_delete):
        assert check(alice, "lib")
    # Released files are immutable unless overwriting is switched on.
    assert not backend.can_overwrite(alice, "lib")
    allowed = make({"auth.admins": "alice", "pypi.allow_overwrite": "true"})
    assert allowed.can_overwrite(who(allowed, "alice"), "lib")


def test_anonymous_identity_with_groups_gets_nothing_from_them():
    backend = make({"package.lib.group.dev": "rw"})
    forged = Identity(None, frozenset({"dev"}), is_admin=True)
    assert not backend.can_read(forged, "lib")
    assert not backend.can_write(forged, "lib")


def test_per_project_user_grants():
    backend = make({"package.lib.user.alice": "rw", "package.lib.user.bob": "r", "pypi.default_read": ""})
    alice, bob, carol = who(backend, "alice"), who(backend, "bob"), who(backend, "carol")
    assert backend.can_write(alice, "lib")
    assert backend.can_read(bob, "lib") and not backend.can_write(bob, "lib")
    assert not backend.can_read(carol, "lib")
    # Grants are per project.
    assert not backend.can_read(alice, "other")


def test_per_project_group_grants():
    backend = make({"package.lib.group.dev": "rw", "pypi.default_read": ""})
    assert backend.can_write(who(backend, "bob"), "lib")
    assert backend.can_write(who(backend, "carol"), "lib")
    assert not backend.can_read(who(backend, "alice"), "lib")


def test_per_project_grants_to_pseudo_groups():
    backend = make({"package.public.group.everyone": "r", "package.shared.group.authenticated": "rw"})
    assert backend.can_read(ANONYMOUS, "public")
    assert not backend.can_write(ANONYMOUS, "public")
    assert not backend.can_read(ANONYMOUS, "shared")
    assert backend.can_write(who(backend, "alice"), "shared")


def test_grants_replace_the_defaults_as_in_1x():
    # Changed by issue 10: a project's grants replace the defaults (1.3.12's
    # allowed_permissions()); they used to add to them.
    backend = make(
        {
            "pypi.default_write": "dev",
            "pypi.default_read": "everyone",
            "package.lib.user.bob": "r",
            "package.lib.user.alice": "r",
        }
    )
    bob, carol = who(backend, "bob"), who(backend, "carol")
    # bob's read-only grant is all he has on lib, default_write notwithstanding.
    assert backend.can_read(bob, "lib") and not backend.can_write(bob, "lib")
    # carol (in dev) has no grant on lib: neither default applies there.
    assert not backend.can_read(carol, "lib") and not backend.can_write(carol, "lib")
    assert not backend.can_read(ANONYMOUS, "lib")
    # A project without grants keeps the defaults.
    assert backend.can_write(carol, "other") and backend.can_read(ANONYMOUS, "other")


def test_grant_values_as_1x_read_them():
    backend = make(
        {
            "package.a.user.bob": "w",
            "package.b.user.bob": "WR",
            "package.c.user.bob": "read write",
            "package.d.user.bob": "",
            "pypi.default_read": "everyone",
        }
    )
    bob = who(backend, "bob")
    assert [backend.permission(bob, p) for p in "abcd"] == ["w", "rw", "rw", ""]
    # The empty grant still takes the project out of the defaults.
    assert not backend.can_read(ANONYMOUS, "d") and backend.can_read(ANONYMOUS, "e")
    with pytest.raises(ConfigError):
        make({"package.a.user.bob": "rx"})


def test_the_strongest_of_several_grants_wins():
    backend = make({"package.lib.user.bob": "r", "package.lib.group.dev": "rw", "pypi.default_read": ""})
    assert backend.can_write(who(backend, "bob"), "lib")


def test_project_names_are_canonicalised():
    backend = make(
        {
            "package.My_Lib.user.alice": "rw",
            "package.zope.interface.user.john.doe": "r",
            "package.my-lib.user.bob": "r",
            "package.MY.LIB.user.bob": "RW",
        }
    )
    alice = who(backend, "alice")
    for spelling in ("my-lib", "My_Lib", "my.lib", "MY--lib"):
        assert backend.can_write(alice, spelling)
    assert backend.project_grants("my-lib") == ({"alice": "rw", "bob": "rw"}, {})
    # Dotted project and dotted user names both survive the key split.
    assert backend.project_grants("zope-interface") == ({"john.doe": "r"}, {})


def test_project_grants_returns_copies():
    backend = make({"package.lib.user.alice": "r"})
    users, _ = backend.project_grants("lib")
    users["alice"] = "rw"
    assert backend.project_grants("lib") == ({"alice": "r"}, {})
    assert backend.project_grants("unknown") == ({}, {})


# "w", "" and "read" are valid since issue 10 (1.x read them).
@pytest.mark.parametrize("value", ["rwx", "yes", "x", "rr"])
def test_bad_permission_value_names_the_key(value):
    with pytest.raises(ConfigError) as info:
        make({"package.lib.user.alice": value})
    assert info.value.key == "package.lib.user.alice"
    assert "r, w or rw" in str(info.value)


@pytest.mark.parametrize("key", ["package.lib", "package.lib.owner.alice", "package.lib.user"])
def test_bad_package_key_is_a_config_error(key):
    with pytest.raises(ConfigError) as info:
        make({key: "r"})
    assert info.value.key == key


def test_overwrite_is_off_by_default():
    backend = make({"pypi.default_write": "dev"})
    assert not backend.can_overwrite(who(backend, "bob"), "lib")


def test_allow_overwrite_for_every_writer_only():
    backend = make({"pypi.default_write": "dev", "pypi.allow_overwrite": "yes"})
    assert backend.can_overwrite(who(backend, "bob"), "lib")
    # Overwriting still needs write permission.
    assert not backend.can_overwrite(who(backend, "alice"), "lib")


def test_allow_overwrite_groups():
    backend = make({"pypi.default_write": "authenticated", "pypi.allow_overwrite_groups": "dev"})
    assert backend.can_overwrite(who(backend, "bob"), "lib")
    assert not backend.can_overwrite(who(backend, "alice"), "lib")


def test_delete_for_logged_in_writers_by_default():
    backend = make({"pypi.default_write": "dev"})
    assert backend.can_delete(who(backend, "bob"), "lib")
    assert not backend.can_delete(who(backend, "alice"), "lib")


def test_anonymous_writers_may_not_delete_without_a_delete_group():
    backend = make({"pypi.default_write": "everyone"})
    assert backend.can_write(ANONYMOUS, "lib")
    assert not backend.can_delete(ANONYMOUS, "lib")
    backend = make({"pypi.default_write": "everyone", "pypi.allow_delete_groups": "everyone"})
    assert backend.can_delete(ANONYMOUS, "lib")


def test_allow_delete_false_turns_deletes_off():
    backend = make({"pypi.default_write": "dev", "pypi.allow_delete": "off"})
    assert backend.can_write(who(backend, "bob"), "lib")
    assert not backend.can_delete(who(backend, "bob"), "lib")


def test_allow_delete_groups_restrict_deletes():
    backend = make({"pypi.default_write": "authenticated", "pypi.allow_delete_groups": "ops dev"})
    assert backend.can_delete(who(backend, "bob"), "lib")
    assert not backend.can_delete(who(backend, "alice"), "lib")


def test_delete_and_overwrite_follow_per_project_write_grants():
    backend = make({"package.lib.user.alice": "rw", "pypi.allow_overwrite": "true"})
    alice = who(backend, "alice")
    assert backend.can_delete(alice, "lib") and backend.can_overwrite(alice, "lib")
    assert not backend.can_delete(alice, "other") and not backend.can_overwrite(alice, "other")


@pytest.mark.parametrize(
    "key,value",
    [
        ("pypi.allow_overwrite", "maybe"),
        ("pypi.allow_delete", "2"),
        ("auth.cache_seconds", "soon"),
        ("auth.cache_seconds", "-1"),
    ],
)
def test_bad_policy_values_name_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        make({key: value})
    assert info.value.key == key


def test_base_kwargs_from_settings():
    settings = Settings(
        {
            "pypi.default_read": "everyone",
            "pypi.default_write": "dev, ops",
            "pypi.allow_overwrite": "1",
            "pypi.allow_overwrite_groups": "ops",
            "pypi.allow_delete": "no",
            "pypi.allow_delete_groups": "ops",
            "auth.cache_seconds": "60",
        },
        environ={},
    )
    assert AccessBackend.base_kwargs_from_settings(settings) == {
        "default_read": ["everyone"],
        "default_write": ["dev", "ops"],
        "allow_overwrite": True,
        "allow_overwrite_groups": ["ops"],
        "allow_delete": False,
        "allow_delete_groups": ["ops"],
        "cache_seconds": 60,
    }


def test_environment_overrides_policy():
    settings = Settings({"user.alice": ALICE_HASH}, environ={"PPC_PYPI_DEFAULT_WRITE": "authenticated"})
    backend = access_from_settings(settings)
    assert backend.can_write(backend.identity("alice"), "lib")


def test_check_health_is_harmless():
    backend = make()
    assert backend.check_health() is None
    assert backend.authenticate("alice", "alice-pw") is not None


# ---------------------------------------------------------------------------
# Credential cache
# ---------------------------------------------------------------------------
class Counting(ConfigAccess):
    """Counts the slow checks."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def _verify(self, username: str, password: str) -> bool:
        self.calls += 1
        return super()._verify(username, password)


def counting(**kwargs) -> Counting:
    return Counting(users={"alice": ALICE_HASH, "bob": BOB_HASH}, groups={"dev": ["bob"]}, **kwargs)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(base, "_now", fake)
    return fake


def test_second_login_skips_the_slow_check(clock):
    backend = counting()
    first = backend.authenticate("bob", "bob-pw")
    second = backend.authenticate("bob", "bob-pw")
    assert first == second == Identity("bob", frozenset({"dev"}), False)
    assert backend.calls == 1


def test_wrong_password_is_never_cached(clock):
    backend = counting()
    assert backend.authenticate("alice", "alice-pw")
    for _ in range(3):
        assert backend.authenticate("alice", "wrong") is None
        assert backend.authenticate("nobody", "alice-pw") is None
    assert backend.calls == 7
    assert len(backend.credentials) == 1


def test_cached_credentials_are_per_user_and_password(clock):
    backend = counting()
    backend.authenticate("alice", "alice-pw")
    assert backend.authenticate("bob", "alice-pw") is None
    assert backend.authenticate("alice", "alice-pw") is not None
    assert backend.calls == 2


def test_cache_entries_expire(clock):
    backend = counting(cache_seconds=60)
    backend.authenticate("alice", "alice-pw")
    clock.now += 59
    backend.authenticate("alice", "alice-pw")
    assert backend.calls == 1
    clock.now += 1.5  # 60.5 s after the check
    backend.authenticate("alice", "alice-pw")
    assert backend.calls == 2
    # A successful re-check starts a new lifetime.
    clock.now += 30
    backend.authenticate("alice", "alice-pw")
    assert backend.calls == 2


def test_cache_can_be_turned_off(clock):
    backend = counting(cache_seconds=0)
    backend.authenticate("alice", "alice-pw")
    backend.authenticate("alice", "alice-pw")
    assert backend.calls == 2
    assert len(backend.credentials) == 0


def test_cache_never_holds_the_password(clock):
    backend = counting()
    backend.authenticate("alice", "alice-pw")
    stored = repr(backend.credentials._entries)
    assert "alice-pw" not in stored
    (digest,) = backend.credentials._entries
    assert b"alice-pw" not in digest and len(digest) == 32


def test_cache_keys_differ_between_processes():
    # A random per-instance key: the same credentials give different digests.
    a, b = base.CredentialCache(60), base.CredentialCache(60)
    assert a._digest("alice", "pw") != b._digest("alice", "pw")


def test_cache_is_bounded_lru(clock):
    cache = base.CredentialCache(60, max_entries=3)
    for name in ("a", "b", "c"):
        cache.add(name, "pw")
    assert cache.hit("a", "pw")  # a is now the most recently used
    cache.add("d", "pw")
    assert len(cache) == 3
    assert not cache.hit("b", "pw")
    assert cache.hit("a", "pw") and cache.hit("c", "pw") and cache.hit("d", "pw")


def test_forget_credentials(clock):
    backend = counting()
    backend.authenticate("alice", "alice-pw")
    backend.authenticate("bob", "bob-pw")
    backend.forget_credentials("alice")
    backend.authenticate("alice", "alice-pw")
    backend.authenticate("bob", "bob-pw")
    assert backend.calls == 3
    backend.forget_credentials()
    assert len(backend.credentials) == 0


def test_cache_is_thread_safe(clock):
    backend = counting()
    backend.authenticate("alice", "alice-pw")

    def hammer(n: int) -> None:
        for i in range(200):
            assert backend.authenticate("alice", "alice-pw") is not None
            backend.credentials.add(f"user{n}-{i}", "pw")
            backend.credentials.hit(f"user{n}-{i // 2}", "pw")

    errors = threads.errors_of(threads.run_together([lambda n=n: hammer(n) for n in range(8)]))
    assert errors == []
    assert backend.calls == 1
