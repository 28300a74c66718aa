"""The arguments every S3 write carries, and server-side copies.

Each write applies the configured storage class, encryption and ACL; a copy
either keeps the source's metadata byte for byte or replaces it, and keeps the
object's content headers. Objects over 5 GB cannot be copied by one
CopyObject, so they go through the transfer manager's multipart copy.
"""

from __future__ import annotations

from . import metadata as _metadata

MB = 1024 * 1024
#: Largest object CopyObject can copy in one request; larger ones use multipart copy.
MAX_SINGLE_COPY = 5 * 1024 * MB
#: Content headers a copy with new metadata must carry over itself.
CONTENT_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "CacheControl")


def write_args(storage, metadata: dict[str, str] | None) -> dict:
    """Arguments applied on every write: metadata, class, encryption, ACL.

    ``metadata`` None leaves Metadata out (a copy that keeps the source's).
    """
    args: dict = {}
    if metadata is not None:
        args["Metadata"] = _metadata.encode(metadata, storage.extra_metadata)
    if storage.storage_class:
        args["StorageClass"] = storage.storage_class
    if storage.server_side_encryption:
        args["ServerSideEncryption"] = storage.server_side_encryption
    if storage.sse_kms_key_id:
        args["SSEKMSKeyId"] = storage.sse_kms_key_id
    if storage.object_acl:
        args["ACL"] = storage.object_acl
    return args


def _keep_content_headers(args: dict, head: dict) -> None:
    for name in CONTENT_HEADERS:
        if head.get(name):
            args[name] = head[name]


def copy_args(storage, head: dict, metadata: dict[str, str] | None) -> dict:
    """A copy's arguments: the source's metadata as stored (``metadata`` None), or new metadata."""
    if metadata is None:
        # Keep the stored metadata byte for byte (it is already S3-safe).
        args = write_args(storage, None)
        if int(head.get("ContentLength", 0)) <= MAX_SINGLE_COPY:
            args["MetadataDirective"] = "COPY"
        else:
            args["Metadata"] = dict(head.get("Metadata") or {})
        return args
    args = write_args(storage, metadata)
    args["MetadataDirective"] = "REPLACE"
    _keep_content_headers(args, head)
    return args


def update_args(storage, head: dict, metadata: dict[str, str]) -> dict:
    """The arguments of a copy onto itself that only replaces the metadata."""
    args = write_args(storage, metadata)
    args["MetadataDirective"] = "REPLACE"
    # A copy onto itself resets what it is not told: keep the object's own
    # storage class, encryption and content headers (the ACL is the configured one).
    args["StorageClass"] = head.get("StorageClass") or "STANDARD"
    if head.get("ServerSideEncryption"):
        args["ServerSideEncryption"] = head["ServerSideEncryption"]
        if head.get("SSEKMSKeyId"):
            args["SSEKMSKeyId"] = head["SSEKMSKeyId"]
        else:
            args.pop("SSEKMSKeyId", None)
    _keep_content_headers(args, head)
    return args


def copy_object(storage, source_key: str, dest_key: str, size: int, args: dict) -> None:
    """Copy within the bucket: one CopyObject, or a multipart copy above 5 GB."""
    source = {"Bucket": storage.bucket, "Key": source_key}
    if size <= MAX_SINGLE_COPY:
        storage.client.copy_object(Bucket=storage.bucket, Key=dest_key, CopySource=source, **args)
        return
    # Multipart copy: the transfer manager does not carry metadata over by
    # itself, so the caller always passes Metadata explicitly here.
    args = {k: v for k, v in args.items() if k != "MetadataDirective"}
    storage.client.copy(source, storage.bucket, dest_key, ExtraArgs=args, Config=storage.transfer_config)
