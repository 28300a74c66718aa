"""What botocore's errors mean for pypicloud.

S3 answers every failure with a ``ClientError`` carrying an error code and an
HTTP status (HEAD answers carry only the status). These predicates classify
them, :func:`translate_errors` turns outages and credential problems into
BackendUnavailable (a 503 for clients, never a 500), and
:func:`diagnose_forbidden` tells bad credentials from denied access at start-up.
"""

from __future__ import annotations

from contextlib import contextmanager

import botocore.exceptions as bexc

from ...errors import BackendUnavailable, ConfigError, InvalidUpload, PypicloudError

UNAVAILABLE_CODES = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
}
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidClientTokenId",
}
NETWORK_ERRORS = (
    bexc.ConnectionError,
    bexc.HTTPClientError,
    bexc.NoCredentialsError,
    bexc.PartialCredentialsError,
)


def error_code(exc: bexc.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_status(exc: bexc.ClientError) -> int:
    try:
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    except (TypeError, ValueError):
        return 0


def is_missing(exc: bexc.ClientError) -> bool:
    return error_code(exc) in ("404", "NoSuchKey", "NotFound") or error_status(exc) == 404


def is_precondition_failure(exc: bexc.ClientError) -> bool:
    # 412 when the name exists; 409 ConditionalRequestConflict when another
    # conditional write of the same name is completing at the same moment.
    code = error_code(exc)
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412") or error_status(exc) == 412


def read_error(exc: BaseException) -> BackendUnavailable | None:
    """What a failure while reading a body becomes (None: let it through)."""
    if isinstance(exc, NETWORK_ERRORS):
        return BackendUnavailable(f"S3 is unavailable: reading an object failed: {exc}")
    return None


def unavailable(action: str, exc: BaseException, bucket: str, endpoint_url: str | None) -> BackendUnavailable:
    """BackendUnavailable saying what failed where (and how to give credentials when there are none)."""
    if isinstance(exc, (bexc.NoCredentialsError, bexc.PartialCredentialsError)):
        return BackendUnavailable(
            f"S3 is unavailable: {action} failed: no usable AWS credentials ({exc}); set "
            "storage.aws_access_key_id/storage.aws_secret_access_key or AWS_* variables"
        )
    where = endpoint_url or "AWS"
    return BackendUnavailable(f"S3 is unavailable: {action} in bucket {bucket} at {where} failed: {exc}")


def _translated(exc: bexc.ClientError, action: str, storage) -> BaseException | None:
    """The error a ClientError becomes, or None to let it through (a caller handles it)."""
    code, status = error_code(exc), error_status(exc)
    if status >= 500 or code in UNAVAILABLE_CODES or code in CREDENTIAL_CODES or code == "NoSuchBucket":
        return unavailable(action, exc, storage.bucket, storage.endpoint_url)
    if code == "MetadataTooLarge":
        return InvalidUpload(f"metadata is too large for S3: {exc}")
    if code == "AccessControlListNotSupported":
        return BackendUnavailable(
            f"S3 refused the object ACL {storage.object_acl!r}: the bucket has ACLs "
            "disabled; set storage.object_acl = none"
        )
    return None


@contextmanager
def translate_errors(storage, action: str):
    """Turn connection problems and S3 server errors into BackendUnavailable.

    ``storage`` gives the bucket, endpoint and ACL named in the messages.
    """
    try:
        yield
    except NETWORK_ERRORS as exc:
        raise unavailable(action, exc, storage.bucket, storage.endpoint_url) from exc
    except bexc.ClientError as exc:
        translated = _translated(exc, action, storage)
        if translated is None:
            raise
        raise translated from exc


def _credential_error(code: str) -> ConfigError | None:
    if code == "InvalidAccessKeyId":
        return ConfigError(
            "storage.aws_access_key_id",
            None,
            "S3 does not know this access key id (InvalidAccessKeyId): check the credentials",
        )
    if code == "SignatureDoesNotMatch":
        return ConfigError(
            "storage.aws_secret_access_key",
            None,
            "S3 rejected the signature (SignatureDoesNotMatch): the secret access key is wrong",
        )
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
        return ConfigError("storage.aws_session_token", None, f"S3 rejected the session token ({code})")
    return None


def diagnose_forbidden(storage, action: str = "use the bucket") -> PypicloudError:
    """Tell bad credentials from denied access (HEAD answers carry no error code).

    Lists one key to get an answer with a code; returns the ConfigError naming
    the setting to fix (or BackendUnavailable when S3 cannot be reached).
    """
    code = ""
    try:
        storage.client.list_objects_v2(Bucket=storage.bucket, MaxKeys=1)
    except bexc.ClientError as exc:
        code = error_code(exc)
    except NETWORK_ERRORS as exc:
        return unavailable("checking the bucket", exc, storage.bucket, storage.endpoint_url)
    return _credential_error(code) or ConfigError(
        "storage.bucket",
        storage.bucket,
        f"access denied ({code or '403'}): the credentials may not {action} "
        "(or the bucket belongs to another account)",
    )
