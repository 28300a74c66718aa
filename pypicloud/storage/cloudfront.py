"""S3 storage whose downloads go through a CloudFront distribution (``pypi.storage = cloudfront``).

Everything but :meth:`CloudFrontS3Storage.download_url` is :class:`S3Storage`:
uploads, listing and health talk to the bucket. Download URLs point at
``storage.cloud_front_domain`` + ``/`` + the object key (with prefix and hash
segment), the path under which a distribution whose origin is the bucket serves
the object.

With ``storage.cloud_front_key_id`` the URL is signed with a *canned policy*,
the form CloudFront checks for a trusted key group: the policy
``{"Statement":[{"Resource":URL,"Condition":{"DateLessThan":{"AWS:EpochTime":T}}}]}``
(no whitespace) signed with RSA PKCS#1 v1.5 over SHA-1 by the private key
(``storage.cloud_front_key_file`` or ``storage.cloud_front_key_string``), sent as
``Expires=T&Signature=<sig>&Key-Pair-Id=<id>``, the signature in CloudFront's
URL-safe base64 (``+`` -> ``-``, ``=`` -> ``_``, ``/`` -> ``~``). Without a key id
the URL is plain (a public distribution) and never expires.

Signing needs ``cryptography`` or ``rsa``: the ``cloudfront`` extra.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from ..errors import ConfigError
from ..models import Redirect
from .s3 import S3Storage

EXTRA_HINT = "install the extra: pip install 'pypicloud[cloudfront]'"


def _load_signer(pem: bytes, key: str):
    """A ``sign(message) -> signature`` function for an RSA private key in PEM.

    Prefers ``cryptography``; falls back to ``rsa``. Raises ConfigError naming
    ``key`` for a missing library or a key that is not an RSA private key.
    """
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        try:
            import rsa as pyrsa
        except ImportError:
            raise ConfigError(
                "pypi.storage",
                "cloudfront",
                "signing CloudFront URLs needs cryptography or rsa; " + EXTRA_HINT,
            ) from None
        try:
            private = pyrsa.PrivateKey.load_pkcs1(pem)
        except Exception as exc:
            raise ConfigError(key, None, f"not an RSA private key in PEM form ({exc})") from None
        return lambda message: pyrsa.sign(message, private, "SHA-1")
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(key, None, f"not an unencrypted private key in PEM form ({exc})") from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ConfigError(key, None, f"CloudFront signs with RSA keys; this key is {type(private).__name__}")
    return lambda message: private.sign(message, padding.PKCS1v15(), hashes.SHA1())


def canned_policy(url: str, expires: int) -> str:
    """The canned policy CloudFront rebuilds from a signed URL (compact JSON, fixed order)."""
    return (
        '{"Statement":[{"Resource":'
        + json.dumps(url)
        + ',"Condition":{"DateLessThan":{"AWS:EpochTime":'
        + str(int(expires))
        + "}}}]}"
    )


def cloudfront_b64(signature: bytes) -> str:
    """CloudFront's URL-safe base64 alphabet for signatures and policies."""
    text = base64.b64encode(signature).decode("ascii")
    return text.replace("+", "-").replace("=", "_").replace("/", "~")


class CloudFrontS3Storage(S3Storage):
    """S3 storage with download URLs on a CloudFront distribution."""

    SETTINGS_KEYS = S3Storage.SETTINGS_KEYS | {
        "storage.cloud_front_domain",
        "storage.cloud_front_key_id",
        "storage.cloud_front_key_file",
        "storage.cloud_front_key_string",
    }

    def __init__(
        self,
        bucket: str,
        *,
        cloud_front_domain: str,
        cloud_front_key_id: str | None = None,
        private_key_pem: bytes | None = None,
        key_setting: str = "storage.cloud_front_key_file",
        **kwargs,
    ):
        """``private_key_pem`` is the RSA key (PEM bytes) that signs URLs for ``cloud_front_key_id``."""
        if not cloud_front_domain:
            raise ValueError("cloud_front_domain is required")
        if "://" not in cloud_front_domain:
            cloud_front_domain = "https://" + cloud_front_domain
        self.cloud_front_domain = cloud_front_domain.rstrip("/")
        self.cloud_front_key_id = cloud_front_key_id or None
        self._sign = None
        if self.cloud_front_key_id:
            if not private_key_pem:
                raise ValueError("a private key is required with cloud_front_key_id")
            self._sign = _load_signer(private_key_pem, key_setting)
        super().__init__(bucket, **kwargs)
        # CloudFront URLs are never the S3 object URL, whatever public_url says.
        self.public_url = False

    def __repr__(self) -> str:
        return (
            f"<CloudFrontS3Storage bucket={self.bucket!r} prefix={self.prefix!r} "
            f"domain={self.cloud_front_domain!r}>"
        )

    @staticmethod
    def options_from_settings(settings) -> dict:
        options = S3Storage.options_from_settings(settings)
        domain = settings.get_str("storage.cloud_front_domain")
        if domain is None:
            raise ConfigError(
                "storage.cloud_front_domain",
                None,
                "required when pypi.storage = cloudfront (e.g. https://d111111abcdef8.cloudfront.net)",
            )
        parts = urlsplit(domain if "://" in domain else "https://" + domain)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigError(
                "storage.cloud_front_domain",
                domain,
                "the distribution's URL, e.g. https://d111111abcdef8.cloudfront.net",
            )
        key_id = settings.get_str("storage.cloud_front_key_id")
        key_string = settings.get_str("storage.cloud_front_key_string")
        key_file = settings.get_str("storage.cloud_front_key_file")
        pem = None
        key_setting = "storage.cloud_front_key_file"
        if key_string is not None:
            key_setting = "storage.cloud_front_key_string"
            # An ini value cannot hold newlines easily: accept literal "\n" too.
            pem = key_string.replace("\\n", "\n").encode("utf-8")
        elif key_file is not None:
            path = settings.path(key_file)
            if not os.path.isfile(path):
                raise ConfigError("storage.cloud_front_key_file", key_file, f"no such file: {path}")
            with open(path, "rb") as handle:
                pem = handle.read()
        if key_id is None and pem is not None:
            raise ConfigError(
                "storage.cloud_front_key_id",
                None,
                f"{key_setting} is set: give the id of its CloudFront public key",
            )
        if key_id is not None and pem is None:
            raise ConfigError(
                "storage.cloud_front_key_file",
                None,
                "storage.cloud_front_key_id needs the private key: set "
                "storage.cloud_front_key_file or storage.cloud_front_key_string",
            )
        if pem is not None:
            _load_signer(pem, key_setting)  # fail start-up on a bad key, naming the key
        options.update(
            cloud_front_domain=domain, cloud_front_key_id=key_id, private_key_pem=pem, key_setting=key_setting
        )
        return options

    def download_url(self, project, filename, expires_in=None) -> Redirect:
        """The object's URL on the distribution, signed with a canned policy when a key is set."""
        key = self.key_for(project, filename)
        url = f"{self.cloud_front_domain}/{quote(key)}"
        if self._sign is None:
            return Redirect(url=url, expires_at=None)
        assert self.cloud_front_key_id is not None  # __init__ sets a signer only with a key id
        expires_in = int(expires_in or self.expire_after)
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in)
        expires = int(expires_at.timestamp())
        signature = cloudfront_b64(self._sign(canned_policy(url, expires).encode("utf-8")))
        signed = (
            f"{url}?Expires={expires}&Signature={signature}"
            f"&Key-Pair-Id={quote(self.cloud_front_key_id, safe='')}"
        )
        return Redirect(url=signed, expires_at=expires_at)
