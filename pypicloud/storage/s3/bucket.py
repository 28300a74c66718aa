"""Bucket bootstrap: what the S3 backend checks (and may fix) at start-up.

:func:`ensure_bucket` heads the bucket, follows it to its region when none is
configured, creates it when missing and allowed (with a lifecycle rule that
aborts forgotten multipart uploads), and turns a 403 into a ConfigError naming
the setting to fix. :func:`abort_stale_uploads` cleans up the multipart uploads
a killed process left behind.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta

import botocore.exceptions as bexc

from ...errors import BackendUnavailable, ConfigError
from .errors import NETWORK_ERRORS, diagnose_forbidden, error_code, error_status, unavailable

LOG = logging.getLogger(__name__)


def _unavailable(storage, action: str, exc: BaseException):
    return unavailable(action, exc, storage.bucket, storage.endpoint_url)


def bucket_region(response: dict) -> str | None:
    """The bucket's region as a HEAD (or its redirect) tells it."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    return response.get("BucketRegion") or headers.get("x-amz-bucket-region")


def ensure_bucket(storage) -> None:
    """Check the bucket at start-up; create it when missing and allowed.

    Raises ConfigError (naming the key) for a missing bucket that may not be
    created, a bucket in another region than ``storage.region_name``, bad
    credentials or denied access; BackendUnavailable when S3 cannot be reached.
    """
    try:
        response = storage.client.head_bucket(Bucket=storage.bucket)
    except NETWORK_ERRORS as exc:
        raise _unavailable(storage, "checking the bucket", exc) from exc
    except bexc.ClientError as exc:
        status = error_status(exc)
        if status == 404 or error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            create_missing_bucket(storage)
            return
        if status in (301, 307, 400) and bucket_region(exc.response):
            check_region(storage, bucket_region(exc.response))
            return
        if status == 403:
            raise diagnose_forbidden(storage) from exc
        if status >= 500:
            raise _unavailable(storage, "checking the bucket", exc) from exc
        raise
    check_region(storage, bucket_region(response))


def check_region(storage, actual: str | None) -> None:
    """Refuse a bucket outside the configured region; without one, follow the bucket."""
    if not actual:
        return
    if storage.region_name:
        if actual != storage.region_name:
            raise ConfigError(
                "storage.region_name",
                storage.region_name,
                f"bucket {storage.bucket} is in region {actual}; set storage.region_name = {actual}",
            )
        return
    if actual != storage.client.meta.region_name:
        # No region configured: follow the bucket, so signed URLs carry the right one.
        LOG.info("S3 bucket %s is in region %s; using that region", storage.bucket, actual)
        storage.use_region(actual)


def _creation_error(storage, exc: bexc.ClientError, region: str | None) -> BaseException | None:
    """What a failed CreateBucket means (None: another process created it just now)."""
    code = error_code(exc)
    if code == "BucketAlreadyOwnedByYou":
        return None
    if code == "BucketAlreadyExists":
        return ConfigError(
            "storage.bucket", storage.bucket, "the name is taken by another account; choose another"
        )
    if code in ("IllegalLocationConstraintException", "InvalidLocationConstraint"):
        return ConfigError("storage.region_name", region, f"cannot create the bucket there: {exc}")
    if error_status(exc) == 403:
        return diagnose_forbidden(storage, "create the bucket")
    return _unavailable(storage, "creating the bucket", exc)


def create_missing_bucket(storage) -> None:
    if not storage.create_bucket or storage.read_only:
        why = "storage.read_only = true" if storage.read_only else "storage.create_bucket = false"
        raise ConfigError(
            "storage.bucket", storage.bucket, f"the bucket does not exist and {why}: create it first"
        )
    region = storage.region_name or storage.client.meta.region_name
    args: dict = {"Bucket": storage.bucket}
    if region and region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    LOG.info("Creating S3 bucket %s in region %s", storage.bucket, region or "us-east-1")
    try:
        storage.client.create_bucket(**args)
        add_abort_rule(storage)
    except NETWORK_ERRORS as exc:
        raise _unavailable(storage, "creating the bucket", exc) from exc
    except bexc.ClientError as exc:
        error = _creation_error(storage, exc, region)
        if error is not None:
            raise error from exc


def add_abort_rule(storage) -> None:
    """On a bucket we just created: abort unfinished multipart uploads after a day.

    A process killed during a large upload leaves its parts behind (billed
    until aborted). Best effort: a bucket without the rule still works.
    """
    rule = {
        "ID": "pypicloud-abort-incomplete-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": storage.prefix},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    try:
        storage.client.put_bucket_lifecycle_configuration(
            Bucket=storage.bucket, LifecycleConfiguration={"Rules": [rule]}
        )
    except bexc.ClientError as exc:
        LOG.warning("could not set a lifecycle rule on bucket %s: %s", storage.bucket, exc)


def abort_stale_uploads(storage, older_than: float) -> int:
    """Abort our unfinished multipart uploads (under the prefix) started more
    than ``older_than`` seconds ago. Returns how many; never raises for S3 errors."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    aborted = 0
    try:
        pages = storage.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=storage.bucket, Prefix=storage.prefix
        )
        for page in pages:
            for upload in page.get("Uploads", ()):
                if storage.parse_key(upload["Key"]) is None or upload["Initiated"] > cutoff:
                    continue
                storage.client.abort_multipart_upload(
                    Bucket=storage.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
    except (bexc.ClientError, *NETWORK_ERRORS) as exc:
        LOG.warning("could not abort stale multipart uploads in bucket %s: %s", storage.bucket, exc)
    if aborted:
        LOG.info(
            "aborted %d unfinished multipart uploads older than %gs in bucket %s",
            aborted,
            older_than,
            storage.bucket,
        )
    return aborted


def check_health(storage, pool: ThreadPoolExecutor) -> None:
    """HEAD the bucket on ``pool``; BackendUnavailable when it fails or takes over ``health_timeout``."""
    future = pool.submit(storage.client.head_bucket, Bucket=storage.bucket)
    try:
        future.result(timeout=storage.health_timeout)
    except FutureTimeout:
        raise BackendUnavailable(
            f"S3 is unavailable: bucket {storage.bucket} did not answer "
            f"within {storage.health_timeout:g} seconds"
        ) from None
    except NETWORK_ERRORS as exc:
        raise _unavailable(storage, "checking health", exc) from exc
    except bexc.ClientError as exc:
        status = error_status(exc)
        if status == 404:
            raise BackendUnavailable(f"S3 bucket {storage.bucket} does not exist") from exc
        if status == 403:
            raise BackendUnavailable(
                f"S3 denies access to bucket {storage.bucket} (check the credentials)"
            ) from exc
        raise _unavailable(storage, "checking health", exc) from exc
