"""Read and validate the ``[app:main]`` settings (SPEC section 3).

Three layers, later ones win: the ini file, pypicloud 1.x / older option names
mapped onto the current ones, and ``PPC_*`` environment variables. A value
``$NAME`` (the whole value) or ``${NAME}`` (anywhere in it) is read from the
environment, so secrets stay out of the file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import overload

from . import envrefs
from .errors import ConfigError

LOG = logging.getLogger(__name__)

# Older option names (pypicloud 1.x and the older storage docs) -> current names.
ALIASES: dict[str, str] = {
    "aws.bucket": "storage.bucket",
    "aws.access_key": "storage.aws_access_key_id",
    "aws.secret_key": "storage.aws_secret_access_key",
    "aws.session_token": "storage.aws_session_token",
    "aws.region": "storage.region_name",
    "aws.prefix": "storage.prefix",
    "aws.prepend_hash": "storage.prepend_hash",
    "aws.expire_after": "storage.expire_after",
    "aws.buffer_time": "storage.buffer_time",
    "aws.reduced_redundancy": "storage.reduced_redundancy",
    "storage.access_key": "storage.aws_access_key_id",
    "storage.secret_key": "storage.aws_secret_access_key",
    "storage.region": "storage.region_name",
    "pypi.s3": "pypi.storage",
    "pypi.access_backend": "pypi.auth",
    "pypi.fallback_url": "pypi.fallback_base_url",
}

# Every key we document; used to map PPC_* variables back to dotted keys and to
# warn about typos under a backend's prefix.
KNOWN_KEYS: frozenset[str] = frozenset(
    """
    pypi.storage pypi.db pypi.auth pypi.default_read pypi.default_write
    pypi.allow_overwrite pypi.allow_overwrite_groups pypi.allow_delete
    pypi.allow_delete_groups pypi.allow_register pypi.realm pypi.fallback pypi.fallback_base_url
    pypi.always_show_upstream pypi.disallow_fallback pypi.cache_update
    pypi.fallback_timeout pypi.fallback_page_ttl pypi.fallback_allow_private
    pypi.stream_files pypi.package_max_age pypi.max_upload_size
    pypi.index_max_age pypi.page_cache_mb pypi.max_metadata_size pypi.spool_dir pypi.max_browser_upload_size
    pypi.fast_reads pypi.metadata_cache_mb
    storage.verify
    pypi.repair_grace pypi.repair_interval storage.multipart_grace
    storage.dir storage.bucket storage.region_name storage.endpoint_url
    storage.aws_access_key_id storage.aws_secret_access_key storage.aws_session_token
    storage.prefix storage.prepend_hash storage.expire_after storage.buffer_time
    storage.redirect_urls storage.public_url storage.storage_class
    storage.reduced_redundancy storage.server_side_encryption storage.sse_kms_key_id
    storage.object_acl storage.signature_version storage.addressing_style
    storage.connect_timeout storage.read_timeout storage.max_pool_connections
    storage.create_bucket storage.read_only
    storage.cloud_front_domain storage.cloud_front_key_id storage.cloud_front_key_file
    storage.cloud_front_key_string
    storage.storage_account_name storage.storage_account_key storage.storage_account_url
    storage.storage_container_name storage.storage_connection_string storage.connection_string
    storage.project_id storage.gcp_project_id storage.gcp_api_endpoint
    storage.gcp_service_account_json_filename storage.gcp_use_iam_signer
    storage.iam_signer_service_account_email
    db.url db.graceful_reload db.prefix db.schema db.pool_size db.max_overflow db.listen
    db.region_name db.endpoint_url db.host db.port db.secure db.namespace db.tablenames
    db.aws_access_key_id db.aws_secret_access_key db.aws_session_token db.profile_name
    session.secret session.validate_key session.encrypt_key session.max_age session.secure
    session.lifetime
    auth.admins auth.db.url auth.db.schema auth.db.pool_size auth.db.max_overflow auth.cache_seconds
    auth.ldap.url auth.ldap.service_dn auth.ldap.service_password auth.ldap.base_dn
    auth.ldap.user_search_filter auth.ldap.user_dn_format auth.ldap.admin_field
    auth.ldap.admin_value auth.ldap.admin_group_dn auth.ldap.group_base_dn
    auth.ldap.group_filter auth.ldap.group_name_attr auth.ldap.cache_time auth.ldap.ignore_cert
    auth.ldap.ignore_referrals auth.ldap.ignore_multiple_results auth.ldap.timeout
    auth.ldap.fallback
    auth.backend_server auth.user auth.password auth.uri.verify auth.uri.groups
    auth.uri.group_members auth.uri.admin auth.uri.group_permissions auth.uri.user_permissions
    auth.uri.user_package_permissions auth.uri.group_package_permissions auth.uri.user_data
    auth.remote.cache_time auth.remote.timeout auth.remote.verify_tls
    auth.throttle_user auth.throttle_address auth.throttle_window auth.signing_key auth.token_expire
    auth.secret_id auth.kms_key_id auth.region_name auth.endpoint_url auth.aws_access_key_id
    auth.aws_secret_access_key auth.aws_session_token auth.profile_name auth.secret_cache_seconds
    logging.format
    pypi.metrics pypi.metrics_allow_from
    retention.keep retention.schedule
    webhooks.max_attempts webhooks.backoff_base webhooks.backoff_max webhooks.poll_interval
    oidc.audience oidc.secret oidc.token_lifetime oidc.leeway oidc.jwks_ttl oidc.jwks_min_refresh oidc.timeout
    audit.enabled audit.retention_days
    """.split()
)

# Keys of pypicloud 1.x inis that mean nothing here, with why: an old ini starts
# unchanged, and its admin learns why the line does nothing instead of "a typo?".
RETIRED_1X_KEYS: dict[str, str] = {
    "pypi.use_json_scraper": "the fallback reads the upstream's simple API (PEP 691 or 503)",
    "pypi.calculate_package_hashes": "sha256 and md5 are always computed while a file is received",
    "session.invalidate_corrupt": "a changed or foreign session cookie always counts as no session",
    "session.type": "sessions are always signed cookies (see session.secret)",
    "session.httponly": "the session cookie is always HttpOnly",
    "session.crypto_type": "sessions are signed (HMAC), not encrypted, and hold no secrets",
    "session.key": "the session cookie is always named ppc_session",
    "session.cookie_expires": "sessions end after session.max_age seconds without use",
    "session.timeout": "sessions end after session.max_age seconds without use",
    # The rest of 1.3.12's documented keys (and the botocore / SQLAlchemy options
    # its backends passed through) under a checked prefix: never "a typo?".
    "pypi.download_url": "the web UI shows this server's own address",
    "pypi.reload_templates": "templates are fixed in the package",
    "storage.use_ssl": "the scheme of storage.endpoint_url decides",
    "storage.proxies": "boto3 reads HTTPS_PROXY / HTTP_PROXY from the environment",
    "storage.api_version": "boto3's current S3 API is used",
    "storage.user_agent": "boto3's own user agent is sent",
    "storage.user_agent_extra": "boto3's own user agent is sent",
    "storage.parameter_validation": "boto3 always validates parameters",
    "storage.payload_signing_enabled": "boto3's default payload signing is used",
    "storage.use_accelerate_endpoint": "give the accelerate address as storage.endpoint_url",
    "storage.calling_format": "use storage.addressing_style (path or virtual)",
    "db.poolclass": "connections are pooled by the server (db.pool_size, db.max_overflow)",
    "db.pool_recycle": "pooled connections are checked before use (pool_pre_ping)",
    "db.echo": "use the sqlalchemy logger's level to see statements",
    "db.clustered": "Redis Cluster is not supported; use one Redis server (db.url)",
}

# Prefixes whose unknown keys are reported (probably typos).
CHECKED_PREFIXES = ("storage.", "db.", "pypi.", "session.")
DYNAMIC_PREFIXES = ("storage.metadata.",)

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


def env_name(key: str) -> str:
    """``storage.bucket`` -> ``PPC_STORAGE_BUCKET``."""
    return "PPC_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _expand(key: str, value: str, environ: Mapping[str, str]) -> str:
    def lookup(name: str) -> str:
        if name not in environ:
            raise ConfigError(key, value, f"environment variable {name} is not set")
        return environ[name]

    return envrefs.expand(value, lookup)


class Settings(Mapping[str, str]):
    """Validated, typed access to the app settings.

    Built once at start-up. Getters raise :class:`ConfigError` naming the key, the
    value and what is allowed.
    """

    def __init__(
        self, raw: Mapping[str, object], environ: Mapping[str, str] | None = None, here: str | None = None
    ):
        environ = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for key, value in raw.items():
            if not isinstance(value, str):
                continue
            values[ALIASES.get(key, key)] = value
        # Current names win over aliases when both are given.
        for key, value in raw.items():
            if isinstance(value, str) and key not in ALIASES:
                values[key] = value
        candidates = set(values) | KNOWN_KEYS
        by_env = {env_name(k): k for k in candidates}
        by_env.update({env_name(k): ALIASES[k] for k in ALIASES})
        for name, value in environ.items():
            if not name.startswith("PPC_"):
                continue
            # An unlisted key: PPC_STORAGE_METADATA_TEAM -> storage.metadata.team
            # is ambiguous, so only the first underscore becomes a dot.
            known = by_env.get(name)
            values[known if known is not None else name[4:].lower().replace("_", ".", 1)] = value
        self._values = {k: _expand(k, v, environ) for k, v in values.items()}
        self.here = here or str(raw.get("here") or os.getcwd())
        self.environ = environ

    # Mapping interface -------------------------------------------------
    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    # Typed getters ------------------------------------------------------
    # Each getter with a non-None default returns that type, never None: the
    # overloads tell the type checker so callers need no narrowing.
    @overload
    def get_str(self, key: str, default: str) -> str: ...
    @overload
    def get_str(self, key: str, default: str | None = None) -> str | None: ...
    def get_str(self, key: str, default: str | None = None) -> str | None:
        value = self._values.get(key)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def require(self, key: str) -> str:
        value = self.get_str(key)
        if value is None:
            raise ConfigError(key, None, "this setting is required")
        return value

    def get_bool(self, key: str, default: bool = False) -> bool:
        value = self._values.get(key)
        if value is None:
            return default
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(key, value, "use true/false, yes/no, on/off or 1/0")

    @overload
    def get_int(self, key: str, default: int, minimum: int | None = None) -> int: ...
    @overload
    def get_int(self, key: str, default: None = None, minimum: int | None = None) -> int | None: ...
    def get_int(self, key: str, default: int | None = None, minimum: int | None = None) -> int | None:
        value = self.get_str(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(key, value, "must be a whole number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(key, value, f"must be at least {minimum}")
        return number

    @overload
    def get_float(self, key: str, default: float) -> float: ...
    @overload
    def get_float(self, key: str, default: None = None) -> float | None: ...
    def get_float(self, key: str, default: float | None = None) -> float | None:
        value = self.get_str(key)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise ConfigError(key, value, "must be a number") from None

    @overload
    def get_size(self, key: str, default: int) -> int: ...
    @overload
    def get_size(self, key: str, default: None = None) -> int | None: ...
    def get_size(self, key: str, default: int | None = None) -> int | None:
        """A byte count, optionally with a K/M/G suffix (powers of 1024)."""
        value = self.get_str(key)
        if value is None:
            return default
        match = re.fullmatch(r"(\d+)\s*([kmgt]?)i?b?", value.lower())
        if not match:
            raise ConfigError(key, value, "a byte count such as 104857600, 100M or 2G")
        factor: int = 1024 ** " kmgt".index(match.group(2) or " ")
        return int(match.group(1)) * factor

    def get_list(self, key: str, default: Iterable[str] = ()) -> list[str]:
        """Whitespace- or comma-separated words."""
        value = self.get_str(key)
        if value is None:
            return list(default)
        return [w for w in re.split(r"[\s,]+", value) if w]

    def get_choice(self, key: str, choices: Iterable[str], default: str) -> str:
        value = (self.get_str(key) or default).lower()
        allowed = list(choices)
        if value not in allowed:
            raise ConfigError(key, value, "one of " + ", ".join(allowed))
        return value

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """Every key under ``prefix``, with the prefix removed."""
        return {k[len(prefix) :]: v for k, v in self._values.items() if k.startswith(prefix)}

    def path(self, value: str) -> str:
        """A path relative to the ini file's folder, made absolute."""
        return os.path.abspath(os.path.join(self.here, os.path.expanduser(value)))

    def _is_known(self, key: str, storage_keys: frozenset[str] | None) -> bool:
        if key.startswith(DYNAMIC_PREFIXES) or not key.startswith(CHECKED_PREFIXES):
            return True
        if key in KNOWN_KEYS:
            # A built-in backend's key: an ini kept from another backend stays quiet.
            return True
        return storage_keys is not None and key.startswith("storage.") and key in storage_keys

    def warn_unknown(self, storage_keys: Iterable[str] | None = None) -> list[str]:
        """Log (and return) keys under a checked prefix that nothing reads.

        ``storage_keys`` are the keys the chosen storage backend reads (its
        ``SETTINGS_KEYS``): they are known besides every built-in backend's
        keys, so a third-party backend's own keys are not taken for typos.
        """
        storage_keys = None if storage_keys is None else frozenset(storage_keys)
        unknown = sorted(k for k in self._values if not self._is_known(k, storage_keys))
        for key in unknown:
            if key in RETIRED_1X_KEYS:
                LOG.warning("pypicloud 1.x setting %s is ignored: %s", key, RETIRED_1X_KEYS[key])
            else:
                LOG.warning("Unknown setting %s is ignored (a typo?)", key)
        return unknown
