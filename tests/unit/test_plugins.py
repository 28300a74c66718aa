"""plugins.resolve: choosing a backend class by alias or dotted name (SPEC section 3)."""

from __future__ import annotations

import pytest

from pypicloud import access, cache, storage
from pypicloud.access.base import AccessBackend
from pypicloud.access.config import ConfigAccess
from pypicloud.errors import ConfigError
from pypicloud.index.base import MetadataIndex
from pypicloud.index.sql import SQLIndex
from pypicloud.plugins import resolve
from pypicloud.storage.base import Storage
from pypicloud.storage.file import FileStorage


class MyStorage(FileStorage):
    """A user's own backend, named by its dotted path."""


NOT_A_CLASS = 42


@pytest.mark.parametrize("value", ["file", "FILE", " file ", "File"])
def test_alias(value):
    assert resolve("pypi.storage", value, storage.ALIASES, Storage) is FileStorage


def test_every_alias_resolves_to_its_family():
    for key, aliases, base in (
        ("pypi.storage", storage.ALIASES, Storage),
        ("pypi.db", cache.ALIASES, MetadataIndex),
        ("pypi.auth", access.ALIASES, AccessBackend),
    ):
        for alias in aliases:
            cls = resolve(key, alias, aliases, base)
            assert isinstance(cls, type) and issubclass(cls, base), (key, alias)


@pytest.mark.parametrize(
    "value", ["pypicloud.storage.file.FileStorage", "pypicloud.storage.file:FileStorage"]
)
def test_dotted_name(value):
    assert resolve("pypi.storage", value, storage.ALIASES, Storage) is FileStorage


def test_dotted_name_of_a_user_class():
    assert resolve("pypi.storage", f"{__name__}.MyStorage", storage.ALIASES, Storage) is MyStorage
    assert resolve("pypi.storage", f"{__name__}:MyStorage", storage.ALIASES, Storage) is MyStorage


def test_pypicloud_1x_dotted_names():
    assert resolve("pypi.storage", "pypicloud.storage.FileStorage", storage.ALIASES, Storage) is FileStorage
    assert resolve("pypi.db", "pypicloud.cache.SQLCache", cache.ALIASES, MetadataIndex) is SQLIndex
    assert (
        resolve("pypi.auth", "pypicloud.access.ConfigAccessBackend", access.ALIASES, AccessBackend)
        is ConfigAccess
    )


@pytest.mark.parametrize(
    "value",
    [
        "nosuch",  # no alias, no dot
        "",  # empty
        "pypicloud.storage.nosuchmodule.Thing",  # module missing
        "pypicloud.storage.file.NoSuchClass",  # attribute missing
        "nosuchpackage.Storage",
        ".Storage",
        "pypicloud.storage.file.",
    ],
)
def test_bad_name_is_a_config_error_naming_the_key(value):
    with pytest.raises(ConfigError) as info:
        resolve("pypi.storage", value, storage.ALIASES, Storage)
    message = str(info.value)
    assert info.value.key == "pypi.storage"
    assert message.startswith("Invalid setting pypi.storage")
    assert "file" in message and "s3" in message  # what is allowed


@pytest.mark.parametrize(
    "value,base,key",
    [
        ("pypicloud.index.sql.SQLIndex", Storage, "pypi.storage"),  # another family
        ("pypicloud.storage.file.FileStorage", MetadataIndex, "pypi.db"),
        ("pypicloud.storage.file.FileStorage", AccessBackend, "pypi.auth"),
        ("builtins.dict", Storage, "pypi.storage"),  # not a backend at all
        (f"{__name__}.NOT_A_CLASS", Storage, "pypi.storage"),  # not a class
        ("os.path.join", Storage, "pypi.storage"),  # a function
    ],
)
def test_wrong_family_is_refused(value, base, key):
    with pytest.raises(ConfigError) as info:
        resolve(key, value, {}, base)
    assert info.value.key == key
    assert key in str(info.value)
    assert base.__name__ in str(info.value)


def test_the_base_class_itself_is_accepted_by_resolve_but_abstract():
    # resolve only checks the family; an abstract class fails when instantiated.
    assert resolve("pypi.storage", "pypicloud.storage.base.Storage", {}, Storage) is Storage


def test_factories_use_resolve(tmp_path):
    from pypicloud.settings import Settings

    settings = Settings({"pypi.storage": f"{__name__}.MyStorage", "storage.dir": str(tmp_path)}, environ={})
    assert isinstance(storage.storage_from_settings(settings), MyStorage)
    with pytest.raises(ConfigError, match="pypi.db"):
        cache.index_from_settings(Settings({"pypi.db": "pypicloud.storage.file.FileStorage"}, environ={}))
    with pytest.raises(ConfigError, match="pypi.auth"):
        access.access_from_settings(Settings({"pypi.auth": "nope"}, environ={}))


def test_old_package_name_cache_still_imports_the_index_modules():
    """Inis and plugins written against ``pypicloud.cache`` get the very same classes."""
    import importlib

    from pypicloud.index import sql as index_sql

    old = importlib.import_module("pypicloud.cache.sql")
    assert old is index_sql
    assert resolve("pypi.db", "pypicloud.cache.sql.SQLIndex", cache.ALIASES, MetadataIndex) is SQLIndex
    assert resolve(
        "pypi.db", "pypicloud.cache.dynamo.DynamoIndex", cache.ALIASES, MetadataIndex
    ).__module__ == ("pypicloud.index.dynamo")
    from pypicloud.cache.base import MetadataIndex as OldBase

    assert OldBase is MetadataIndex
