"""Package files in an S3 bucket (or any S3-compatible object store).

``pypi.storage = s3`` (or the dotted name ``pypicloud.storage.s3.S3Storage``)
chooses :class:`S3Storage`. The package is split by concern:

- :mod:`.options`: reading and checking the ``storage.*`` settings;
- :mod:`.errors`: what botocore's errors mean (BackendUnavailable, ConfigError);
- :mod:`.metadata`: the user-metadata codec (RFC 2047 words, the 2 KB limit,
  pypicloud 1.x's names);
- :mod:`.keys`: the key layout ``<prefix>[<hash>/]<project>/<filename>``;
- :mod:`.bucket`: start-up checks, bucket creation, stale multipart uploads;
- :mod:`.multipart`: conditional (``If-None-Match: *``) single and multipart uploads;
- :mod:`.writes`: the arguments of every write, server-side copies;
- :mod:`.listing`: listing for rebuilds, a HEAD only where metadata is wanted;
- :mod:`.client`: the boto3 client; :mod:`.reader`: the stream ``open`` returns;
- :mod:`.storage`: :class:`S3Storage` itself (the contract methods).

Every name importable from the former single module ``pypicloud.storage.s3``
is importable from here still.
"""

from __future__ import annotations

from ..objectstore import (
    BodyReader,
    KeyLayout,
    check_metadata,
    check_metadata_size,
    check_range,
    decode_metadata_value,
    encode_metadata_value,
    key_hash,
)
from ..objectstore import read_full as _read_full
from .errors import CREDENTIAL_CODES as _CREDENTIAL_CODES
from .errors import NETWORK_ERRORS as _NETWORK_ERRORS
from .errors import UNAVAILABLE_CODES as _UNAVAILABLE_CODES
from .errors import error_code as _error_code
from .errors import error_status as _error_status
from .errors import is_missing as _is_missing
from .errors import is_precondition_failure as _is_precondition_failure
from .errors import read_error as _read_error
from .metadata import MAX_METADATA_BYTES
from .multipart import CountingReader as _CountingReader
from .options import (
    ADDRESSING_STYLES,
    ARCHIVE_CLASSES,
    CANNED_ACLS,
    MAX_SIGV4_EXPIRY,
    PUBLIC_ACLS,
    SIGNATURE_VERSIONS,
    SSE_VALUES,
    STORAGE_CLASSES,
)
from .options import verify_option as _verify_option
from .storage import MB, S3Reader, S3Storage
from .writes import MAX_SINGLE_COPY

CHUNK = MB

__all__ = [
    "ADDRESSING_STYLES",
    "ARCHIVE_CLASSES",
    "CANNED_ACLS",
    "CHUNK",
    "MAX_METADATA_BYTES",
    "MAX_SIGV4_EXPIRY",
    "MAX_SINGLE_COPY",
    "MB",
    "PUBLIC_ACLS",
    "SIGNATURE_VERSIONS",
    "SSE_VALUES",
    "STORAGE_CLASSES",
    "BodyReader",
    "KeyLayout",
    "S3Reader",
    "S3Storage",
    "check_metadata",
    "check_metadata_size",
    "check_range",
    "decode_metadata_value",
    "encode_metadata_value",
    "key_hash",
    "_CREDENTIAL_CODES",
    "_CountingReader",
    "_NETWORK_ERRORS",
    "_UNAVAILABLE_CODES",
    "_error_code",
    "_error_status",
    "_is_missing",
    "_is_precondition_failure",
    "_read_error",
    "_read_full",
    "_verify_option",
]
