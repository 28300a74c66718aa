"""Checks of the values ``ppc-make-config`` is given, before any is written.

Each raises :class:`UsageError` (exit code 2) with the flag and what is wrong;
the S3 values are checked by the very code the server runs at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import overload

from .. import envrefs
from ..errors import ConfigError, UsageError
from ..settings import Settings


def url_has_password(url: str) -> bool:
    # user:password@ in the URL, or a password query parameter (both libpq and
    # redis-py read ?password=...).
    return bool(
        re.match(r"^[A-Za-z0-9+.-]+://[^/@]*:[^/@]*@", url) or re.search(r"[?&]password=", url, re.IGNORECASE)
    )


def check_env_name(flag: str, name: str) -> str:
    if not envrefs.is_name(name):
        raise UsageError(f"{flag} {name!r}: not an environment variable name")
    return name


def check_literal(what: str, value: str) -> str:
    """Check a value given on the command line for one ini line; return it unchanged."""
    if "\n" in value or "\r" in value:
        raise UsageError(f"{what}: line breaks are not allowed")
    if value != value.strip():
        raise UsageError(f"{what}: leading or trailing spaces are not allowed")
    return value


@overload
def ini_value(value: str) -> str: ...
@overload
def ini_value(value: str | None) -> str | None: ...
def ini_value(value: str | None) -> str | None:
    """A literal value as the ini must spell it (PasteDeploy reads % as interpolation)."""
    return None if value is None else value.replace("%", "%%")


def is_reference(value: str | None) -> bool:
    return envrefs.whole_reference(value) is not None


def db_from_url(url: str) -> str | None:
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith(("postgresql", "postgres")):
        return "postgres"
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme.startswith("sqlite"):
        return "sqlite"
    return None


def normalise_db_url(db: str, url: str) -> str:
    if is_reference(url):
        return url  # checked when the server starts
    kind = db_from_url(url)
    if kind is None:
        raise UsageError(f"--db-url {url!r}: not a postgresql://, redis:// or sqlite:/// URL")
    if kind != db:
        raise UsageError(f"--db-url {url!r} is a {kind} URL but --db is {db}")
    if db == "postgres":
        # The installed driver is psycopg 3; a bare postgresql:// would ask for psycopg2.
        url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)
    return url


def given(*flags: tuple[str, object]) -> list[str]:
    """The flags (of ``(flag, value)`` pairs) that were given on the command line."""
    return [flag for flag, value in flags if value is not None]


def check_s3_options(raw: Mapping[str, str | None]) -> None:
    """Check the S3 values as the server will at start-up (without contacting S3).

    Values holding ${VAR} references are replaced by a plausible stand-in: the
    server checks the real value when it starts.
    """
    keys = {
        "bucket": "storage.bucket",
        "region": "storage.region_name",
        "endpoint_url": "storage.endpoint_url",
        "prefix": "storage.prefix",
        "aws_access_key_id": "storage.aws_access_key_id",
        "aws_secret_access_key": "storage.aws_secret_access_key",
    }
    stand_ins = {"bucket": "placeholder-bucket", "endpoint_url": "http://placeholder"}
    settings = {"pypi.storage": "s3"}
    for name, value in raw.items():
        if value is None:
            continue
        check_literal("--" + name.replace("_", "-"), value)
        settings[keys[name]] = stand_ins.get(name, "placeholder") if "$" in value else value
    from ..storage.s3 import S3Storage  # boto3 is only imported for S3 configurations

    try:
        S3Storage.options_from_settings(Settings(settings, environ={}))
    except ConfigError as exc:
        raise UsageError(exc.message.replace("Invalid setting ", "")) from None
