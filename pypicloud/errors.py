"""Domain exceptions.

The service and the backends raise these; one exception view
(:mod:`pypicloud.views.errors`) turns each into an HTTP status, so views never
build error responses by hand.
"""

from __future__ import annotations

import re

# "scheme://user:password@" -> "scheme://user:***@" (database, Redis, upstream URLs).
_URL_PASSWORD = re.compile(r"(://[^/@\s:]*:)[^@/\s]+@")


def mask_credentials(value: object) -> object:
    """``value`` with the password of every URL in it replaced by ``***`` (for messages and logs)."""
    return _URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value


class PypicloudError(Exception):
    """Base class of every domain error; ``status`` is the HTTP answer."""

    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(PypicloudError):
    """A setting is missing or has a value we cannot use. Stops start-up."""

    def __init__(self, key: str, value: object = None, allowed: str = ""):
        text = f"Invalid setting {key}"
        if value is not None:
            text += f" = {mask_credentials(value)!r}"
        if allowed:
            text += f": {allowed}"
        super().__init__(text)
        self.key = key


class InvalidUpload(PypicloudError):
    """The upload request or the uploaded file breaks a rule of SPEC section 5."""

    status = 400


class UploadTooLarge(PypicloudError):
    """The upload is larger than ``pypi.max_upload_size``."""

    status = 413


class FileExists(PypicloudError):
    """A different file with the same name is already stored."""

    status = 409


class ProjectNotFound(PypicloudError):
    """No such project (or the caller may not know it exists)."""

    status = 404


class FileNotFound(PypicloudError):
    """No such file."""

    status = 404


class Forbidden(PypicloudError):
    """The caller is known but may not do this."""

    status = 403


class Unauthorized(PypicloudError):
    """The caller must log in (answered with ``WWW-Authenticate``)."""

    status = 401


class ReadOnly(PypicloudError):
    """Storage is configured read-only; writes are refused."""

    status = 405


class BackendUnavailable(PypicloudError):
    """A backend (storage, index, access) cannot be reached right now."""

    status = 503


class StorageConflict(PypicloudError):
    """Storage already holds an object under this name (raised by ``put`` without overwrite)."""

    status = 409


class InvalidRequest(PypicloudError):
    """A form or request that is incomplete or contradicts itself (400); nothing was changed."""

    status = 400


class UpstreamError(PypicloudError):
    """The upstream index answered something we cannot use (a 5xx, a broken page, a bad hash)."""

    status = 502


class UpstreamUnavailable(UpstreamError):
    """The upstream index cannot be reached (refused, timed out)."""

    status = 503


class NotAcceptable(PypicloudError):
    """The client accepts none of the simple API's media types (PEP 691)."""

    status = 406


class BadSource(Exception):
    """The source's bytes do not match the size or sha256 it lists for them (``ppc-migrate``).

    Raised from inside the destination's ``put`` so that the put aborts: a plain
    Exception, not a PypicloudError, because no HTTP answer ever carries it.
    """


class InvalidAccessData(PypicloudError):
    """A name, permission, hash or document that cannot be stored."""

    status = 400


class AccessConflict(PypicloudError):
    """Creating something that exists, or changing something that does not."""

    status = 409


class PendingQueueFull(PypicloudError):
    """Too many sign-ups wait for an admin already; nothing was stored."""

    status = 429


class ReadOnlyAccess(PypicloudError):
    """The access backend (the ini file) cannot be changed over HTTP."""

    status = 403


class AdminGuard(PypicloudError):
    """A change that would lock the admins out (409); nothing was changed."""

    status = 409


class NoSuchUser(PypicloudError):
    """An access change names a user that does not exist."""

    status = 404


class TooManyAttempts(PypicloudError):
    """Too many failed logins: answered 429 with ``Retry-After``."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class UsageError(Exception):
    """``ppc-make-config``: a missing or contradictory answer, reported on stderr (exit code 2).

    A plain Exception: it never reaches an HTTP answer.
    """
