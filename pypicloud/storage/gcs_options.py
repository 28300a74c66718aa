"""Settings and start-up of the GCS backend.

:func:`options_from_settings` returns the keyword arguments of
:class:`~pypicloud.storage.gcs.GoogleCloudStorage` (the caller has checked
that the SDK, the ``gcs`` extra, is installed); :func:`ensure_bucket` checks
the bucket and the credentials at start-up and creates a missing bucket.
"""

from __future__ import annotations

import json
import logging
import os
import re

from ..errors import ConfigError
from .objectstore import expiry_settings, reraise

try:
    import google.auth
    import google.auth.exceptions as gauth_exc
    from google.api_core import exceptions as gexc
    from google.oauth2 import service_account
except ImportError:  # the extra is not installed: gcs.py says so
    pass

LOG = logging.getLogger("pypicloud.storage.gcs")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
KEY_SETTING = "storage.gcp_service_account_json_filename"
#: Longest lifetime of a V4 signed URL (7 days).
MAX_V4_EXPIRY = 7 * 24 * 3600


def _bucket_option(settings) -> str:
    bucket = settings.get_str("storage.bucket")
    if bucket is None:
        raise ConfigError("storage.bucket", None, "required when pypi.storage = gcs")
    if not _BUCKET.match(bucket):
        raise ConfigError(
            "storage.bucket", bucket, "a GCS bucket name: 3-222 lowercase letters, digits, '.', '-', '_'"
        )
    return bucket


def _refuse_unsupported(settings) -> None:
    """S3 options GCS has no use for stop start-up rather than being ignored."""
    if settings.get_bool("storage.public_url", False):
        raise ConfigError("storage.public_url", "true", "not supported by the gcs backend")
    if settings.get_str("storage.server_side_encryption"):
        raise ConfigError(
            "storage.server_side_encryption",
            settings.get_str("storage.server_side_encryption"),
            "not supported by the gcs backend (GCS encrypts at rest)",
        )


def _default_credentials():
    """Application Default Credentials; ConfigError naming the key setting when there are none."""
    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
    except gauth_exc.DefaultCredentialsError as exc:
        raise ConfigError(
            KEY_SETTING,
            None,
            "no Google credentials: set this key (a service-account "
            "JSON key file), GOOGLE_APPLICATION_CREDENTIALS, or run "
            f"with Application Default Credentials ({exc})",
        ) from None
    return credentials


def load_key(path: str):
    """Service-account credentials from a JSON key file (ConfigError naming the key setting)."""
    if not os.path.isfile(path):
        raise ConfigError(KEY_SETTING, path, "no such file")
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
        return service_account.Credentials.from_service_account_info(
            info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(KEY_SETTING, path, f"not a service-account JSON key ({exc})") from None


def options_from_settings(settings) -> dict:
    """Read and validate every ``storage.*`` key the GCS backend reads."""
    bucket = _bucket_option(settings)
    key_file = settings.get_str(KEY_SETTING) or settings.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None
    credentials = None
    if key_file:
        path = settings.path(key_file)
        credentials = load_key(path)
    endpoint = settings.get_str("storage.gcp_api_endpoint")
    if endpoint is not None and not re.match(r"^https?://[^/\s]+", endpoint):
        raise ConfigError("storage.gcp_api_endpoint", endpoint, "a URL such as http://127.0.0.1:9023")
    expire_after, buffer_time = expiry_settings(
        settings, MAX_V4_EXPIRY, f"signed URLs live at most {MAX_V4_EXPIRY} seconds (7 days)"
    )
    _refuse_unsupported(settings)
    iam_email = settings.get_str("storage.iam_signer_service_account_email")
    if iam_email is None and credentials is not None:
        iam_email = credentials.service_account_email
    use_iam = settings.get_bool("storage.gcp_use_iam_signer", False)
    if use_iam and credentials is not None:
        use_iam = False  # a key signs by itself; IAM signing is for keyless credentials
    if credentials is None and endpoint is None:
        credentials = _default_credentials()
    return dict(
        bucket=bucket,
        project_id=(settings.get_str("storage.project_id") or settings.get_str("storage.gcp_project_id")),
        api_endpoint=endpoint,
        credentials=credentials,
        prefix=settings.get_str("storage.prefix", "") or "",
        prepend_hash=settings.get_bool("storage.prepend_hash", True),
        expire_after=expire_after,
        buffer_time=buffer_time,
        region_name=settings.get_str("storage.region_name"),
        storage_class=(settings.get_str("storage.storage_class") or "").upper() or None,
        object_acl=settings.get_str("storage.object_acl"),
        create_bucket=settings.get_bool("storage.create_bucket", True),
        read_only=settings.get_bool("storage.read_only", False),
        use_iam_signer=use_iam,
        iam_signer_service_account_email=iam_email,
    )


def ensure_bucket(storage) -> None:
    """Check the bucket (and the credentials) at start-up; create it if allowed."""
    try:
        storage.bucket.reload(timeout=storage.timeout, retry=storage.retry)
        return
    except gexc.NotFound:
        pass
    except gauth_exc.RefreshError as exc:
        raise ConfigError(KEY_SETTING, None, f"Google refused the credentials: {exc}") from None
    except (gexc.Unauthorized, gexc.Forbidden) as exc:
        raise _denied(storage, "use", exc) from None
    except Exception as exc:
        reraise(exc, storage._wrap(exc, "checking the bucket"))
    if not storage.create_bucket or storage.read_only:
        raise storage._refuse_create("storage.bucket", storage.bucket_name, "bucket")
    LOG.info("Creating GCS bucket %s in %s", storage.bucket_name, storage.region_name or "US")
    try:
        storage.client.create_bucket(
            storage.bucket_name,
            location=storage.region_name,
            project=storage.project_id,
            timeout=storage.timeout,
        )
    except gexc.Conflict:
        pass  # created by another process at the same moment
    except gexc.BadRequest as exc:
        raise ConfigError(
            "storage.region_name", storage.region_name, f"cannot create the bucket there: {exc.message}"
        ) from None
    except (gexc.Unauthorized, gexc.Forbidden) as exc:
        raise _denied(storage, "create", exc) from None
    except Exception as exc:
        reraise(exc, storage._wrap(exc, "creating the bucket"))


def _denied(storage, verb: str, exc) -> ConfigError:
    return ConfigError(
        KEY_SETTING, None, f"the credentials may not {verb} bucket {storage.bucket_name}: {exc.message}"
    )
