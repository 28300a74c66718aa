"""Settings a pypicloud 1.x ini carries start with 1.x's meaning (issue 10, item 4)."""

from __future__ import annotations

import configparser
import io
import sys

import pytest

from pypicloud.access import ALIASES as ACCESS_ALIASES
from pypicloud.access import AccessBackend
from pypicloud.access.config import ConfigAccess
from pypicloud.access.sql import SQLAccess
from pypicloud.cli import make_config
from pypicloud.errors import ConfigError
from pypicloud.index import ALIASES as INDEX_ALIASES
from pypicloud.index.base import MetadataIndex
from pypicloud.index.redis import RedisIndex
from pypicloud.index.sql import SQLIndex
from pypicloud.plugins import resolve
from pypicloud.sessions import session_factory_from_settings
from pypicloud.settings import RETIRED_1X_KEYS, Settings
from pypicloud.storage import ALIASES as STORAGE_ALIASES
from pypicloud.storage import Storage
from pypicloud.storage.file import FileStorage
from pypicloud.storage.s3 import S3Storage

# Every class name 1.3.12 could resolve for its default backends (its package
# re-exports plus the modules, in both spellings DottedNameResolver takes).
NAMES_1X = [
    ("pypi.storage", "pypicloud.storage.FileStorage", STORAGE_ALIASES, Storage, FileStorage),
    ("pypi.storage", "pypicloud.storage.files.FileStorage", STORAGE_ALIASES, Storage, FileStorage),
    ("pypi.storage", "pypicloud.storage.files:FileStorage", STORAGE_ALIASES, Storage, FileStorage),
    ("pypi.storage", "pypicloud.storage.S3Storage", STORAGE_ALIASES, Storage, S3Storage),
    ("pypi.storage", "pypicloud.storage.s3.S3Storage", STORAGE_ALIASES, Storage, S3Storage),
    ("pypi.storage", "file", STORAGE_ALIASES, Storage, FileStorage),
    ("pypi.storage", "s3", STORAGE_ALIASES, Storage, S3Storage),
    ("pypi.db", "pypicloud.cache.SQLCache", INDEX_ALIASES, MetadataIndex, SQLIndex),
    ("pypi.db", "pypicloud.cache.sql.SQLCache", INDEX_ALIASES, MetadataIndex, SQLIndex),
    ("pypi.db", "pypicloud.cache.RedisCache", INDEX_ALIASES, MetadataIndex, RedisIndex),
    ("pypi.db", "pypicloud.cache.redis_cache.RedisCache", INDEX_ALIASES, MetadataIndex, RedisIndex),
    ("pypi.db", "pypicloud.cache.redis_cache:RedisCache", INDEX_ALIASES, MetadataIndex, RedisIndex),
    ("pypi.auth", "pypicloud.access.ConfigAccessBackend", ACCESS_ALIASES, AccessBackend, ConfigAccess),
    ("pypi.auth", "pypicloud.access.config.ConfigAccessBackend", ACCESS_ALIASES, AccessBackend, ConfigAccess),
    ("pypi.auth", "pypicloud.access.SQLAccessBackend", ACCESS_ALIASES, AccessBackend, SQLAccess),
    ("pypi.auth", "pypicloud.access.sql.SQLAccessBackend", ACCESS_ALIASES, AccessBackend, SQLAccess),
]


@pytest.mark.parametrize("key,value,aliases,base,expected", NAMES_1X)
def test_1x_class_names_resolve_to_our_backends(key, value, aliases, base, expected):
    assert resolve(key, value, aliases, base) is expected


def test_1x_gcs_name_resolves_and_an_unknown_class_still_names_the_key():
    from pypicloud.storage.gcs import GoogleCloudStorage

    assert (
        resolve("pypi.storage", "pypicloud.storage.gcs.GoogleCloudStorage", STORAGE_ALIASES, Storage)
        is GoogleCloudStorage
    )
    with pytest.raises(ConfigError) as info:
        resolve("pypi.storage", "pypicloud.storage.nowhere.NoStorage", STORAGE_ALIASES, Storage)
    assert info.value.key == "pypi.storage"


# Session keys ------------------------------------------------------------------
def test_1x_session_keys_as_1x_wrote_them_start_and_warn(caplog):
    settings = Settings({"session.encrypt_key": "replaceme", "session.validate_key": "replaceme"}, environ={})
    with caplog.at_level("WARNING", logger="pypicloud.sessions"):
        assert session_factory_from_settings(settings) is not None
    assert "session.validate_key" in caplog.text and "session.secret" in caplog.text
    assert "weak" in caplog.text


def test_the_secret_derived_from_1x_keys_is_the_same_in_every_process():
    from pypicloud.sessions import _secret_from_1x_keys

    one = Settings({"session.validate_key": "replaceme"}, environ={})
    same = Settings({"session.validate_key": "replaceme"}, environ={})
    other = Settings({"session.validate_key": "replacemf"}, environ={})
    assert _secret_from_1x_keys(one) == _secret_from_1x_keys(same)
    assert _secret_from_1x_keys(one) != _secret_from_1x_keys(other)
    assert len(_secret_from_1x_keys(one)) >= 32


def test_long_1x_keys_do_not_warn(caplog):
    settings = Settings({"session.encrypt_key": "x" * 44, "session.validate_key": "y" * 44}, environ={})
    with caplog.at_level("WARNING", logger="pypicloud.sessions"):
        session_factory_from_settings(settings)
    assert "weak" not in caplog.text


def test_a_short_session_secret_of_our_own_is_still_refused():
    with pytest.raises(ConfigError) as info:
        session_factory_from_settings(Settings({"session.secret": "short"}, environ={}))
    assert info.value.key == "session.secret"


# Keys ----------------------------------------------------------------------------
# Every key 1.3.12's configuration, storage and cache docs list under a prefix
# this server checks, plus the botocore / SQLAlchemy options 1.3.12 passed on.
DOCUMENTED_1X = """
pypi.allow_delete pypi.allow_delete_groups pypi.allow_overwrite pypi.allow_overwrite_groups
pypi.always_show_upstream pypi.auth pypi.cache_update pypi.calculate_package_hashes pypi.db
pypi.default_read pypi.default_write pypi.disallow_fallback pypi.download_url pypi.fallback
pypi.fallback_base_url pypi.fallback_url pypi.package_max_age pypi.realm pypi.storage
pypi.stream_files pypi.use_json_scraper session.encrypt_key session.secure session.validate_key
storage.bucket storage.cloud_front_domain storage.cloud_front_key_file storage.cloud_front_key_id
storage.cloud_front_key_string storage.dir storage.expire_after storage.gcp_api_endpoint
storage.gcp_project_id storage.gcp_service_account_json_filename storage.gcp_use_iam_signer
storage.iam_signer_service_account_email storage.object_acl storage.prefix storage.prepend_hash
storage.public_url storage.redirect_urls storage.region_name storage.server_side_encryption
storage.storage_account_key storage.storage_account_name storage.storage_account_url
storage.storage_class storage.storage_container_name
db.clustered db.graceful_reload db.host db.namespace db.poolclass db.port db.region_name
db.secure db.tablenames db.url db.pool_recycle db.echo
storage.use_ssl storage.proxies storage.api_version storage.user_agent storage.user_agent_extra
storage.parameter_validation storage.payload_signing_enabled storage.use_accelerate_endpoint
storage.calling_format storage.signature_version storage.connect_timeout storage.read_timeout
storage.max_pool_connections storage.addressing_style storage.endpoint_url
storage.aws_access_key_id storage.aws_secret_access_key storage.aws_session_token
""".split()


def test_no_1x_key_is_called_a_typo(caplog):
    settings = Settings({k: "x" for k in DOCUMENTED_1X}, environ={})
    with caplog.at_level("WARNING", logger="pypicloud.settings"):
        settings.warn_unknown()
    assert "a typo" not in caplog.text.replace("storage.verify", "")
    # Retired ones say why instead.
    assert "pypi.download_url is ignored" in caplog.text
    assert all(reason for reason in RETIRED_1X_KEYS.values())


# ppc-make-config's 1.x flags ---------------------------------------------------
def run(monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = make_config.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "flag,shape_key,expected",
    [
        ("-d", "pypi.default_read", "everyone"),
        ("-t", "pypi.default_read", "everyone"),
        ("-p", "pypi.default_read", "authenticated"),
        ("-r", "storage.dir", "/var/lib/pypicloud/packages"),
    ],
)
def test_1x_flags_pick_a_shape_and_write_to_stdout(monkeypatch, capsys, flag, shape_key, expected):
    code, out, err = run(monkeypatch, capsys, flag, "--password", "pw")
    assert code == 0, err
    parser = configparser.ConfigParser(defaults={"here": "/srv"}, interpolation=None)
    parser.read_string(out)
    assert parser.get("app:main", shape_key) == expected


def test_1x_flags_are_exclusive(monkeypatch, capsys):
    with pytest.raises(SystemExit) as info:
        run(monkeypatch, capsys, "-d", "-p", "--password", "pw")
    assert info.value.code == 2
