"""Settings (SPEC section 3): PPC_* overrides, $VAR expansion, aliases, typed getters,
and start-up failing with a message that names the key."""

from __future__ import annotations

import logging
import os

import pytest

import pypicloud
from pypicloud.access.passwords import hash_password
from pypicloud.errors import ConfigError
from pypicloud.settings import ALIASES, Settings, env_name
from pypicloud.storage import storage_class
from pypicloud.storage.file import FileStorage

ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
SHA512 = "$6$rounds=656000$saltsalt$" + "a" * 86
BCRYPT = "$2b$12$" + "A" * 53


def make(raw=None, environ=None, here=None) -> Settings:
    return Settings(raw or {}, environ=environ if environ is not None else {}, here=here)


# ---------------------------------------------------------------------------
# PPC_* environment overrides
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key,name",
    [
        ("storage.bucket", "PPC_STORAGE_BUCKET"),
        ("storage.region_name", "PPC_STORAGE_REGION_NAME"),
        ("pypi.default_read", "PPC_PYPI_DEFAULT_READ"),
        ("auth.db.url", "PPC_AUTH_DB_URL"),
        ("package.my-lib.user.bob", "PPC_PACKAGE_MY_LIB_USER_BOB"),
    ],
)
def test_env_name(key, name):
    assert env_name(key) == name


def test_env_overrides_ini_value():
    settings = make({"storage.bucket": "from-ini"}, {"PPC_STORAGE_BUCKET": "from-env"})
    assert settings["storage.bucket"] == "from-env"


@pytest.mark.parametrize(
    "name,key",
    [
        ("PPC_STORAGE_REGION_NAME", "storage.region_name"),
        ("PPC_STORAGE_AWS_ACCESS_KEY_ID", "storage.aws_access_key_id"),
        ("PPC_STORAGE_AWS_SECRET_ACCESS_KEY", "storage.aws_secret_access_key"),
        ("PPC_STORAGE_ENDPOINT_URL", "storage.endpoint_url"),
        ("PPC_PYPI_MAX_UPLOAD_SIZE", "pypi.max_upload_size"),
        ("PPC_DB_GRACEFUL_RELOAD", "db.graceful_reload"),
        ("PPC_PYPI_ALLOW_OVERWRITE", "pypi.allow_overwrite"),
        ("PPC_AUTH_DB_URL", "auth.db.url"),
    ],
)
def test_env_sets_known_keys_with_underscores(name, key):
    """Keys whose last part holds underscores map back exactly, even when absent from the ini."""
    settings = make({}, {name: "value"})
    assert settings[key] == "value"
    assert list(settings) == [key]  # and no mangled twin like storage.region.name


def test_env_overrides_a_key_only_the_ini_names():
    # storage.metadata.team is not a documented key; the ini naming it lets the
    # variable map back to it exactly.
    settings = make(
        {"storage.metadata.team": "a", "user.john_doe": "x"},
        {"PPC_STORAGE_METADATA_TEAM": "b", "PPC_USER_JOHN_DOE": "y"},
    )
    assert settings["storage.metadata.team"] == "b"
    assert settings["user.john_doe"] == "y"


def test_env_for_an_unlisted_key_splits_at_the_first_underscore():
    settings = make({}, {"PPC_USER_ALICE": "hash"})
    assert settings["user.alice"] == "hash"


def test_env_alias_names_map_to_current_keys():
    settings = make({}, {"PPC_AWS_BUCKET": "old-style"})
    assert settings["storage.bucket"] == "old-style"


def test_non_ppc_variables_are_ignored():
    settings = make({}, {"STORAGE_BUCKET": "x", "PPCX_STORAGE_BUCKET": "y", "HOME": "/root"})
    assert "storage.bucket" not in settings


def test_os_environ_is_the_default(monkeypatch):
    monkeypatch.setenv("PPC_STORAGE_REGION_NAME", "eu-west-3")
    assert Settings({})["storage.region_name"] == "eu-west-3"


# ---------------------------------------------------------------------------
# $VAR and ${VAR}
# ---------------------------------------------------------------------------
def test_whole_value_variable():
    settings = make({"storage.aws_secret_access_key": "$S3_SECRET"}, {"S3_SECRET": "s3cr3t"})
    assert settings["storage.aws_secret_access_key"] == "s3cr3t"


def test_braced_variables_anywhere():
    settings = make(
        {"db.url": "postgresql://ppc:${DB_PASSWORD}@${DB_HOST}:5432/ppc"},
        {"DB_PASSWORD": "pw", "DB_HOST": "db.internal"},
    )
    assert settings["db.url"] == "postgresql://ppc:pw@db.internal:5432/ppc"


def test_unbraced_variable_inside_text_is_left_alone():
    settings = make({"pypi.realm": "cost $5 or $HOME"}, {"HOME": "/root"})
    assert settings["pypi.realm"] == "cost $5 or $HOME"


def test_variable_in_an_env_override_is_expanded():
    settings = make({}, {"PPC_STORAGE_BUCKET": "${BUCKET}-prod", "BUCKET": "pkgs"})
    assert settings["storage.bucket"] == "pkgs-prod"


@pytest.mark.parametrize(
    "value,var", [("$MISSING_SECRET", "MISSING_SECRET"), ("x-${MISSING_HOST}-y", "MISSING_HOST")]
)
def test_missing_variable_is_a_clear_config_error(value, var):
    with pytest.raises(ConfigError) as info:
        make({"storage.aws_secret_access_key": value}, {})
    message = str(info.value)
    assert info.value.key == "storage.aws_secret_access_key"
    assert "storage.aws_secret_access_key" in message
    assert var in message
    assert "not set" in message


@pytest.mark.parametrize(
    "hashed", [ARGON2, SHA512, BCRYPT, "$pbkdf2-sha256$29000$abc$def", "$5$rounds=535000$x$y"]
)
def test_password_hashes_starting_with_dollar_are_not_expanded(hashed):
    settings = make({"user.alice": hashed}, {})
    assert settings["user.alice"] == hashed


def test_real_hashes_survive_settings_unchanged():
    for scheme in (None, "sha512_crypt", "bcrypt", "pbkdf2_sha256"):
        hashed = hash_password("pw", scheme)
        assert make({"user.alice": hashed}, {})["user.alice"] == hashed
        assert make({}, {"PPC_USER_ALICE": hashed})["user.alice"] == hashed


# ---------------------------------------------------------------------------
# Aliases
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "old,new",
    [
        ("aws.bucket", "storage.bucket"),
        ("aws.access_key", "storage.aws_access_key_id"),
        ("aws.secret_key", "storage.aws_secret_access_key"),
        ("aws.region", "storage.region_name"),
        ("aws.prefix", "storage.prefix"),
        ("aws.prepend_hash", "storage.prepend_hash"),
        ("aws.expire_after", "storage.expire_after"),
        ("aws.buffer_time", "storage.buffer_time"),
        ("storage.access_key", "storage.aws_access_key_id"),
        ("storage.secret_key", "storage.aws_secret_access_key"),
        ("storage.region", "storage.region_name"),
    ],
)
def test_aliases(old, new):
    assert ALIASES[old] == new
    settings = make({old: "v"})
    assert settings[new] == "v"
    assert settings.warn_unknown() == []


def test_current_name_wins_over_alias_in_either_order():
    for raw in (
        {"aws.bucket": "old", "storage.bucket": "new"},
        {"storage.bucket": "new", "aws.bucket": "old"},
    ):
        assert make(raw)["storage.bucket"] == "new"


def test_env_beats_both_names():
    settings = make({"aws.bucket": "old", "storage.bucket": "new"}, {"PPC_STORAGE_BUCKET": "env"})
    assert settings["storage.bucket"] == "env"


# ---------------------------------------------------------------------------
# Typed getters
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["true", "True", "TRUE", "yes", "Yes", "on", "ON", "1", " true "])
def test_true_values(text):
    assert make({"pypi.allow_overwrite": text}).get_bool("pypi.allow_overwrite") is True


@pytest.mark.parametrize("text", ["false", "False", "no", "NO", "off", "Off", "0", " false "])
def test_false_values(text):
    assert make({"pypi.allow_overwrite": text}).get_bool("pypi.allow_overwrite", True) is False


def test_bool_default_when_absent():
    assert make().get_bool("pypi.allow_overwrite") is False
    assert make().get_bool("pypi.allow_overwrite", True) is True


@pytest.mark.parametrize("text", ["maybe", "2", "tru", "y e s", "-1"])
def test_bad_bool_names_the_key_and_value(text):
    with pytest.raises(ConfigError) as info:
        make({"pypi.allow_overwrite": text}).get_bool("pypi.allow_overwrite")
    message = str(info.value)
    assert info.value.key == "pypi.allow_overwrite"
    assert "pypi.allow_overwrite" in message and repr(text) in message
    assert "true/false" in message


@pytest.mark.parametrize(
    "text,size",
    [
        ("0", 0),
        ("100", 100),
        ("1K", 1024),
        ("1k", 1024),
        ("10KB", 10240),
        ("2M", 2 * 1024**2),
        ("2MiB", 2 * 1024**2),
        ("100M", 100 * 1024**2),
        ("1G", 1024**3),
        ("3 G", 3 * 1024**3),
        ("1T", 1024**4),
    ],
)
def test_get_size(text, size):
    assert make({"pypi.max_upload_size": text}).get_size("pypi.max_upload_size") == size


@pytest.mark.parametrize("text", ["lots", "1.5G", "-1", "10X", "G"])
def test_bad_size_names_the_key(text):
    with pytest.raises(ConfigError) as info:
        make({"pypi.max_upload_size": text}).get_size("pypi.max_upload_size")
    assert "pypi.max_upload_size" in str(info.value)


def test_size_default():
    assert make().get_size("pypi.max_upload_size") is None
    assert make({"pypi.max_upload_size": ""}).get_size("pypi.max_upload_size", 5) == 5


def test_get_int_and_minimum():
    settings = make(
        {"storage.expire_after": "3600", "storage.buffer_time": "-5", "storage.read_timeout": "soon"}
    )
    assert settings.get_int("storage.expire_after") == 3600
    assert settings.get_int("storage.connect_timeout", 7) == 7
    with pytest.raises(ConfigError, match="storage.buffer_time.*at least 0"):
        settings.get_int("storage.buffer_time", minimum=0)
    with pytest.raises(ConfigError, match="storage.read_timeout"):
        settings.get_int("storage.read_timeout")


def test_get_list_and_choice():
    settings = make({"auth.admins": "alice, bob\n  carol", "pypi.fallback": "Redirect"})
    assert settings.get_list("auth.admins") == ["alice", "bob", "carol"]
    assert settings.get_list("pypi.default_write", ["x"]) == ["x"]
    assert settings.get_choice("pypi.fallback", ("none", "redirect", "cache"), "none") == "redirect"
    with pytest.raises(ConfigError, match="pypi.fallback.*none, redirect"):
        make({"pypi.fallback": "proxy"}).get_choice("pypi.fallback", ("none", "redirect"), "none")


def test_require():
    assert make({"storage.bucket": " b "}).require("storage.bucket") == "b"
    with pytest.raises(ConfigError, match="storage.bucket.*required"):
        make({"storage.bucket": "  "}).require("storage.bucket")


def test_path_is_relative_to_here(tmp_path):
    settings = make({}, here=str(tmp_path))
    assert settings.path("packages") == str(tmp_path / "packages")
    assert settings.path("/abs/dir") == "/abs/dir"


# ---------------------------------------------------------------------------
# Unknown keys
# ---------------------------------------------------------------------------
def test_warn_unknown(caplog):
    settings = make(
        {
            "storage.bucket": "b",
            "storage.buckett": "typo",
            "db.ulr": "typo",
            "pypi.stroage": "s3",
            "storage.metadata.team": "dynamic is fine",
            "user.alice": "x",
            "session.secret": "x",
            "pyramid.reload_templates": "true",
            "aws.bucket": "alias is fine",
        }
    )
    with caplog.at_level(logging.WARNING, logger="pypicloud.settings"):
        unknown = settings.warn_unknown()
    assert unknown == ["db.ulr", "pypi.stroage", "storage.buckett"]
    for key in unknown:
        assert key in caplog.text
    assert "storage.metadata.team" not in caplog.text


def test_retired_1x_keys_are_named_with_the_reason_not_as_typos(caplog):
    settings = make(
        {"pypi.use_json_scraper": "true", "session.type": "cookie", "pypi.calculate_package_hashes": "true"}
    )
    with caplog.at_level(logging.WARNING, logger="pypicloud.settings"):
        unknown = settings.warn_unknown()
    assert unknown == ["pypi.calculate_package_hashes", "pypi.use_json_scraper", "session.type"]
    assert "pypicloud 1.x setting pypi.use_json_scraper is ignored: the fallback reads" in caplog.text
    assert "sha256 and md5 are always computed" in caplog.text
    assert "a typo" not in caplog.text


def test_every_documented_storage_key_is_known():
    documented = """storage.dir storage.bucket storage.region_name storage.endpoint_url
    storage.aws_access_key_id storage.aws_secret_access_key storage.aws_session_token
    storage.prefix storage.prepend_hash storage.expire_after storage.buffer_time
    storage.redirect_urls storage.public_url storage.storage_class storage.reduced_redundancy
    storage.server_side_encryption storage.sse_kms_key_id storage.object_acl
    storage.signature_version storage.addressing_style storage.connect_timeout
    storage.read_timeout storage.max_pool_connections storage.create_bucket storage.read_only
    db.url db.graceful_reload pypi.storage pypi.db pypi.auth pypi.default_read
    pypi.default_write pypi.allow_overwrite pypi.allow_overwrite_groups pypi.allow_delete
    pypi.allow_delete_groups pypi.realm pypi.fallback pypi.fallback_base_url
    pypi.always_show_upstream pypi.disallow_fallback pypi.cache_update pypi.stream_files
    pypi.package_max_age pypi.max_upload_size""".split()
    assert make({k: "x" for k in documented}).warn_unknown() == []


# ---------------------------------------------------------------------------
# Start-up fails with a message naming the key
# ---------------------------------------------------------------------------
def base(tmp_path) -> dict[str, str]:
    return {"storage.dir": str(tmp_path / "packages"), "db.url": f"sqlite:///{tmp_path}/i.sqlite"}


def start(tmp_path, **overrides):
    settings = base(tmp_path)
    for key, value in overrides.items():
        key = key.replace("__", ".")
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return pypicloud.main({"here": str(tmp_path)}, **settings)


def test_start_up_works_with_the_base_settings(tmp_path):
    app = start(tmp_path)
    app.registry.service.index.close()


@pytest.mark.parametrize(
    "value",
    [
        "nosuchbackend",
        "pypicloud.storage.nope.Storage",
        "pypicloud.storage.file.NoSuchClass",
        "os.path.join",
        "pypicloud.index.sql.SQLIndex",
    ],
)
def test_bad_storage_stops_start_up(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        start(tmp_path, pypi__storage=value)
    assert info.value.key == "pypi.storage"
    assert "pypi.storage" in str(info.value) and value in str(info.value)


@pytest.mark.parametrize(
    "key",
    [
        "pypi.allow_overwrite",
        "pypi.allow_delete",
        "storage.read_only",
        "pypi.stream_files",
        "storage.redirect_urls",
        "db.graceful_reload",
    ],
)
def test_bad_boolean_stops_start_up(tmp_path, key):
    with pytest.raises(ConfigError) as info:
        start(tmp_path, **{key.replace(".", "__"): "maybe"})
    assert info.value.key == key
    assert key in str(info.value) and "'maybe'" in str(info.value)


def test_bad_boolean_from_the_environment_stops_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("PPC_PYPI_ALLOW_OVERWRITE", "maybe")
    with pytest.raises(ConfigError, match="pypi.allow_overwrite"):
        start(tmp_path)


def test_missing_storage_dir_stops_start_up(tmp_path):
    with pytest.raises(ConfigError) as info:
        start(tmp_path, storage__dir=None)
    assert info.value.key == "storage.dir"
    assert "storage.dir" in str(info.value) and "required" in str(info.value)


@pytest.mark.parametrize(
    "key,value",
    [
        ("pypi.db", "mongodb"),
        ("pypi.auth", "ldapish"),
        ("pypi.max_upload_size", "huge"),
        ("pypi.package_max_age", "-1"),
        ("pypi.fallback", "sometimes"),
        ("db.url", "not a url"),
    ],
)
def test_other_bad_values_stop_start_up(tmp_path, key, value):
    with pytest.raises(ConfigError) as info:
        start(tmp_path, **{key.replace(".", "__"): value})
    assert key in str(info.value)


def test_missing_variable_stops_start_up(tmp_path, monkeypatch):
    monkeypatch.delenv("PPC_TEST_UNSET_VARIABLE", raising=False)
    with pytest.raises(ConfigError, match="pypi.realm.*PPC_TEST_UNSET_VARIABLE"):
        start(tmp_path, pypi__realm="$PPC_TEST_UNSET_VARIABLE")


def test_env_override_reaches_the_app(tmp_path, monkeypatch):
    monkeypatch.setenv("PPC_PYPI_REALM", "corp")
    monkeypatch.setenv("PPC_STORAGE_DIR", str(tmp_path / "from-env"))
    app = start(tmp_path)
    try:
        assert app.registry.realm == "corp"
        assert os.path.isdir(tmp_path / "from-env")
    finally:
        app.registry.service.index.close()


def test_relative_storage_dir_is_relative_to_the_ini(tmp_path):
    app = start(tmp_path, storage__dir="relative-packages", db__url="sqlite:///rel.sqlite")
    try:
        assert app.registry.service.storage.directory == str(tmp_path / "relative-packages")
        assert (tmp_path / "rel.sqlite").exists()
    finally:
        app.registry.service.index.close()


# ---------------------------------------------------------------------------
# The chosen storage backend declares the storage.* keys it reads
# ---------------------------------------------------------------------------
class WidgetStorage(FileStorage):
    """A third-party backend that reads one key of its own."""

    SETTINGS_KEYS = FileStorage.SETTINGS_KEYS | {"storage.widget_url"}


def test_a_third_party_backends_own_keys_are_not_typos_but_real_typos_are(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="pypicloud.settings"):
        start(
            tmp_path,
            pypi__storage="tests.unit.test_settings.WidgetStorage",
            storage__widget_url="https://widgets.example",
            storage__widget_ulr="typo",
            storage__metadata__team="dynamic is fine",
            storage__redirect_urls="false",
        )
    warned = [r.getMessage() for r in caplog.records if "setting storage." in r.getMessage()]
    assert warned == ["Unknown setting storage.widget_ulr is ignored (a typo?)"]


def test_another_backends_keys_are_not_known_to_the_chosen_one(tmp_path, caplog):
    # storage.widget_url means nothing to the file backend: reported with it chosen;
    # a built-in backend's key (an ini kept from S3) stays quiet, as before.
    with caplog.at_level(logging.WARNING, logger="pypicloud.settings"):
        start(tmp_path, storage__widget_url="https://widgets.example", storage__bucket="b")
    warned = sorted(r.getMessage() for r in caplog.records if "setting storage." in r.getMessage())
    assert warned == ["Unknown setting storage.widget_url is ignored (a typo?)"]
    settings = make({"pypi.storage": "s3", "storage.bucket": "b", "storage.buckett": "typo", "db.ulr": "x"})
    assert settings.warn_unknown(storage_keys=storage_class(settings).SETTINGS_KEYS) == [
        "db.ulr",
        "storage.buckett",
    ]
