"""Settings, start-up checks and failures of the cloudfront and azure-blob backends.

What the shared contract (test_storage.py) cannot say: pypicloud 1.x's aliases,
dotted names and option names are accepted, bad values and wrong credentials
stop start-up naming the key, a missing extra names the extra to install, an
unreachable server is BackendUnavailable (503), and CloudFront URLs are signed
the way CloudFront checks them.
"""

from __future__ import annotations

import base64
import io
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlsplit

import pytest

from pypicloud.errors import BackendUnavailable, ConfigError
from pypicloud.settings import Settings
from pypicloud.storage import storage_from_settings
from tests.fixtures.azurite import ACCOUNT, KEY, azure_settings
from tests.fixtures.cloudfront import verify_canned
from tests.fixtures.s3 import s3_settings
from tests.fixtures.services import free_port


def fetch(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# CloudFront ---------------------------------------------------------------------
@pytest.fixture
def cf_settings(moto_server, s3_bucket, cloudfront_distribution, cloudfront_keys, tmp_path):
    key_id, pem, _ = cloudfront_keys
    key_file = tmp_path / "cf.pem"
    key_file.write_bytes(pem)

    def make(**extra):
        values = s3_settings(moto_server, s3_bucket) | {
            "pypi.storage": "cloudfront",
            "storage.cloud_front_domain": cloudfront_distribution,
            "storage.cloud_front_key_id": key_id,
            "storage.cloud_front_key_file": str(key_file),
        }
        values.update(extra)
        return Settings({k: v for k, v in values.items() if v is not None}, environ={})

    return make


@pytest.mark.parametrize(
    "name",
    [
        "cloudfront",
        "pypicloud.storage.CloudFrontS3Storage",
        "pypicloud.storage.s3.CloudFrontS3Storage",
        "pypicloud.storage.cloudfront.CloudFrontS3Storage",
    ],
)
def test_cloudfront_chosen_by_1x_names(cf_settings, name):
    from pypicloud.storage.cloudfront import CloudFrontS3Storage

    storage = storage_from_settings(cf_settings(**{"pypi.storage": name}))
    try:
        assert type(storage) is CloudFrontS3Storage
    finally:
        storage.close()


def test_cloudfront_signed_url_is_a_canned_policy_signed_with_the_key(
    cf_settings, cloudfront_keys, cloudfront_server, cloudfront_distribution
):
    key_id, _, public = cloudfront_keys
    storage = storage_from_settings(
        cf_settings(**{"storage.prefix": "pkgs/", "storage.expire_after": "600", "storage.buffer_time": "60"})
    )
    try:
        storage.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"cloudfront bytes"), {})
        before = int(time.time())
        answer = storage.download_url("demo", "demo-1.0.tar.gz", 600)
        parts = urlsplit(answer.url)
        params = dict(parse_qsl(parts.query))
        assert f"{parts.scheme}://{parts.netloc}" == cloudfront_distribution
        assert parts.path == "/" + storage.key_for("demo", "demo-1.0.tar.gz")
        assert parts.path.startswith("/pkgs/")
        assert set(params) == {"Expires", "Signature", "Key-Pair-Id"}
        assert params["Key-Pair-Id"] == key_id
        assert before + 600 <= int(params["Expires"]) <= int(time.time()) + 600
        assert int(answer.expires_at.timestamp()) == int(params["Expires"])
        assert verify_canned(answer.url, {key_id: public}) is None
        assert fetch(answer.url) == (200, b"cloudfront bytes")

        # What CloudFront refuses, the stand-in refuses too: a changed path, a
        # changed expiry, another key, an expired URL.
        other = answer.url.replace("demo-1.0.tar.gz", "demo-2.0.tar.gz")
        assert fetch(other)[0] == 403
        later = answer.url.replace(f"Expires={params['Expires']}", f"Expires={int(params['Expires']) + 1}")
        assert fetch(later)[0] == 403
        assert fetch(answer.url.replace(key_id, "KUNKNOWN"))[0] == 403
        expired = storage.download_url("demo", "demo-1.0.tar.gz", 1)
        time.sleep(2.1)
        assert fetch(expired.url)[0] == 403
        assert "expired" in cloudfront_server.refused
    finally:
        storage.close()


def test_cloudfront_key_string_and_unsigned_distribution(cf_settings, cloudfront_keys):
    key_id, pem, _ = cloudfront_keys
    storage = storage_from_settings(
        cf_settings(
            **{
                "storage.cloud_front_key_file": None,
                "storage.cloud_front_key_string": pem.decode().replace("\n", "\\n"),
            }
        )
    )
    try:
        assert "Signature=" in storage.download_url("demo", "demo-1.0.tar.gz", 60).url
    finally:
        storage.close()
    # No key id: a public distribution, plain URLs that never expire.
    storage = storage_from_settings(
        cf_settings(**{"storage.cloud_front_key_id": None, "storage.cloud_front_key_file": None})
    )
    try:
        answer = storage.download_url("demo", "demo-1.0.tar.gz", 60)
        assert "?" not in answer.url and answer.expires_at is None
    finally:
        storage.close()


@pytest.mark.parametrize(
    "extra, key",
    [
        ({"storage.cloud_front_domain": None}, "storage.cloud_front_domain"),
        ({"storage.cloud_front_domain": "ftp://x"}, "storage.cloud_front_domain"),
        ({"storage.cloud_front_key_file": None}, "storage.cloud_front_key_file"),
        ({"storage.cloud_front_key_file": "/nonexistent/cf.pem"}, "storage.cloud_front_key_file"),
        ({"storage.cloud_front_key_id": None}, "storage.cloud_front_key_id"),
        (
            {"storage.cloud_front_key_file": None, "storage.cloud_front_key_string": "not a key"},
            "storage.cloud_front_key_string",
        ),
    ],
)
def test_cloudfront_bad_settings_stop_start_up(cf_settings, extra, key):
    with pytest.raises(ConfigError) as info:
        storage_from_settings(cf_settings(**extra))
    assert info.value.key == key


def test_cloudfront_refuses_a_non_rsa_key(cf_settings, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ec.pem").write_bytes(pem)
    with pytest.raises(ConfigError, match="RSA") as info:
        storage_from_settings(cf_settings(**{"storage.cloud_front_key_file": str(tmp_path / "ec.pem")}))
    assert info.value.key == "storage.cloud_front_key_file"


def test_cloudfront_without_a_signing_library_names_the_extra(cf_settings, monkeypatch):
    for name in (
        "cryptography",
        "cryptography.hazmat.primitives",
        "cryptography.hazmat.primitives.asymmetric",
        "rsa",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigError, match=r"pypicloud\[cloudfront\]"):
        storage_from_settings(cf_settings())


# Azure Blob -------------------------------------------------------------------------
@pytest.fixture
def az(azurite_server, azure_container):
    built = []

    def make(**extra):
        values = azure_settings(azurite_server, azure_container) | extra
        storage = storage_from_settings(
            Settings({k: v for k, v in values.items() if v is not None}, environ={})
        )
        built.append(storage)
        return storage

    yield make
    for storage in built:
        storage.close()


@pytest.mark.parametrize(
    "name",
    ["azure-blob", "pypicloud.storage.AzureBlobStorage", "pypicloud.storage.azure_blob.AzureBlobStorage"],
)
def test_azure_chosen_by_1x_names_and_container_created(az, name, azurite_server, azure_container):
    from pypicloud.storage.azure_blob import AzureBlobStorage
    from tests.fixtures.azurite import service_client

    storage = az(**{"pypi.storage": name})
    assert type(storage) is AzureBlobStorage
    client = service_client(azurite_server)
    assert client.get_container_client(azure_container).exists()
    client.close()


def test_azure_connection_string_and_1x_layout(az, azurite_server, azure_container):
    from tests.fixtures.azurite import connection_string, service_client

    storage = az(
        **{
            "storage.storage_account_name": None,
            "storage.storage_account_key": None,
            "storage.storage_account_url": None,
            "storage.storage_connection_string": connection_string(azurite_server),
            "storage.prefix": "pkgs/",
        }
    )
    storage.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"azure bytes"), {"sha256": "aa"})
    client = service_client(azurite_server).get_container_client(azure_container)
    # pypicloud 1.x's layout: <prefix><project>/<filename>, no hash segment by default.
    assert [b.name for b in client.list_blobs()] == ["pkgs/demo/demo-1.0.tar.gz"]
    answer = storage.download_url("demo", "demo-1.0.tar.gz", 300)
    assert "sig=" in answer.url and "sp=r" in answer.url
    assert fetch(answer.url) == (200, b"azure bytes")
    # The SAS grants reading only.
    request = urllib.request.Request(
        answer.url, data=b"x", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    try:
        urllib.request.urlopen(request, timeout=30)
        status = 201
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 403
    assert fetch(answer.url) == (200, b"azure bytes")
    client.close()


def test_azure_1x_environment_variables(azurite_server, azure_container):
    settings = Settings(
        {"pypi.storage": "azure-blob", "storage.storage_container_name": azure_container},
        environ={
            "AZURE_STORAGE_ACCOUNT": ACCOUNT,
            "AZURE_STORAGE_KEY": KEY,
            "AZURE_STORAGE_SERVICE_ENDPOINT": azurite_server,
        },
    )
    storage = storage_from_settings(settings)
    try:
        storage.check_health()
    finally:
        storage.close()


def test_azure_wrong_key_stops_start_up_naming_the_key(az):
    wrong = base64.b64encode(b"w" * 64).decode()
    with pytest.raises(ConfigError) as info:
        az(**{"storage.storage_account_key": wrong})
    assert info.value.key == "storage.storage_account_key"
    assert "rejected the credentials" in str(info.value)


@pytest.mark.parametrize(
    "extra, key",
    [
        ({"storage.storage_container_name": None}, "storage.storage_container_name"),
        ({"storage.storage_container_name": "Bad_Name"}, "storage.storage_container_name"),
        ({"storage.storage_account_name": None}, "storage.storage_account_name"),
        ({"storage.storage_account_key": None}, "storage.storage_account_key"),
        ({"storage.storage_account_key": "not base64!"}, "storage.storage_account_key"),
        ({"storage.storage_account_url": "nope"}, "storage.storage_account_url"),
        ({"storage.buffer_time": "100", "storage.expire_after": "100"}, "storage.buffer_time"),
        ({"storage.create_bucket": "false"}, "storage.storage_container_name"),
    ],
)
def test_azure_bad_settings_stop_start_up(az, extra, key):
    with pytest.raises(ConfigError) as info:
        az(**extra)
    assert info.value.key == key


def test_azure_missing_extra_names_it(az, monkeypatch):
    import pypicloud.storage.azure_blob as module

    monkeypatch.setattr(module, "_MISSING", ImportError("No module named 'azure'"))
    with pytest.raises(ConfigError, match=r"pypicloud\[azure\]"):
        az()


def test_azure_unreachable_is_unavailable(az, azure_container):
    from pypicloud.storage.azure_blob import AzureBlobStorage

    az()  # the container exists
    down = AzureBlobStorage(
        azure_container,
        account_url=f"http://127.0.0.1:{free_port()}/x",
        account_name=ACCOUNT,
        account_key=KEY,
        connect_timeout=1,
        retries=0,
    )
    try:
        with pytest.raises(BackendUnavailable, match="Azure Blob Storage is unavailable"):
            down.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"x"), {})
        with pytest.raises(BackendUnavailable):
            down.check_health()
        with pytest.raises(BackendUnavailable):
            list(down.list())
        with pytest.raises(BackendUnavailable):
            down.open("demo", "demo-1.0.tar.gz")
    finally:
        down.close()
    settings = Settings(azure_settings(f"http://127.0.0.1:{free_port()}/x", azure_container), environ={})
    with pytest.raises(BackendUnavailable):
        storage_from_settings(settings)


# GCS ------------------------------------------------------------------------------------
@pytest.fixture
def gcs(gcs_emulator, gcs_bucket_name, gcs_service_account):
    built = []

    def make(**extra):
        from tests.fixtures.gcs import gcs_settings

        values = gcs_settings(gcs_emulator, gcs_bucket_name, gcs_service_account[0]) | extra
        storage = storage_from_settings(
            Settings({k: v for k, v in values.items() if v is not None}, environ={})
        )
        built.append(storage)
        return storage

    yield make
    for storage in built:
        storage.close()


def verify_v4(url: str, public_key) -> None:
    """Check a V4 signed URL the way GCS does: rebuild the string to sign, verify RSA-SHA256."""
    import hashlib
    from urllib.parse import quote

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = bytes.fromhex(params.pop("X-Goog-Signature"))
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-SignedHeaders"] == "host"
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(params.items()))
    canonical = "\n".join(["GET", parts.path, query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        ["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    public_key.verify(signature, to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    "name", ["gcs", "pypicloud.storage.GoogleCloudStorage", "pypicloud.storage.gcs.GoogleCloudStorage"]
)
def test_gcs_chosen_by_1x_names_and_bucket_created(gcs, name, gcs_service_account):
    from pypicloud.storage.gcs import GoogleCloudStorage

    storage = gcs(**{"pypi.storage": name, "storage.region_name": "europe-west1"})
    assert type(storage) is GoogleCloudStorage
    assert storage.bucket.exists()
    # The key file's credentials were exchanged for a token at the token endpoint.
    assert storage.credentials.token and storage.credentials.token.startswith("ya29.test-")


def test_gcs_signed_url_is_v4_signed_by_the_service_account(gcs, gcs_service_account):
    _, public, _ = gcs_service_account
    storage = gcs(**{"storage.prefix": "pkgs/", "storage.expire_after": "900", "storage.buffer_time": "60"})
    storage.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"gcs bytes"), {})
    answer = storage.download_url("demo", "demo-1.0.tar.gz", 900)
    params = dict(parse_qsl(urlsplit(answer.url).query))
    assert params["X-Goog-Expires"] == "900"
    assert params["X-Goog-Credential"].startswith("pypicloud@ppc-test.iam.gserviceaccount.com/")
    assert urlsplit(answer.url).path == (
        f"/{storage.bucket_name}/" + storage.key_for("demo", "demo-1.0.tar.gz")
    )
    verify_v4(answer.url, public)
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        verify_v4(answer.url.replace("demo-1.0", "demo-2.0"), public)
    # The emulator serves signed URLs (it does not check signatures: checked above).
    assert fetch(answer.url) == (200, b"gcs bytes")


def test_gcs_wrong_key_stops_start_up_naming_the_key(gcs, tmp_path, gcs_service_account):
    from tests.fixtures.gcs import make_service_account

    _, _, token_uri = gcs_service_account
    wrong = tmp_path / "other-key.json"
    make_service_account(wrong, token_uri)  # a key the token endpoint does not know
    with pytest.raises(ConfigError, match="refused the credentials") as info:
        gcs(**{"storage.gcp_service_account_json_filename": str(wrong)})
    assert info.value.key == "storage.gcp_service_account_json_filename"


@pytest.mark.parametrize(
    "extra, key",
    [
        ({"storage.bucket": None}, "storage.bucket"),
        ({"storage.bucket": "Bad Bucket"}, "storage.bucket"),
        (
            {"storage.gcp_service_account_json_filename": "/nonexistent.json"},
            "storage.gcp_service_account_json_filename",
        ),
        ({"storage.gcp_api_endpoint": "nope"}, "storage.gcp_api_endpoint"),
        ({"storage.expire_after": str(8 * 24 * 3600)}, "storage.expire_after"),
        ({"storage.buffer_time": "100", "storage.expire_after": "100"}, "storage.buffer_time"),
        ({"storage.create_bucket": "false"}, "storage.bucket"),
        ({"storage.public_url": "true"}, "storage.public_url"),
    ],
)
def test_gcs_bad_settings_stop_start_up(gcs, extra, key):
    with pytest.raises(ConfigError) as info:
        gcs(**extra)
    assert info.value.key == key


def test_gcs_key_file_that_is_not_a_key(gcs, tmp_path):
    (tmp_path / "k.json").write_text('{"type": "service_account"}')
    with pytest.raises(ConfigError) as info:
        gcs(**{"storage.gcp_service_account_json_filename": str(tmp_path / "k.json")})
    assert info.value.key == "storage.gcp_service_account_json_filename"


def test_gcs_missing_extra_names_it(gcs, monkeypatch):
    import pypicloud.storage.gcs as module

    monkeypatch.setattr(module, "_MISSING", ImportError("No module named 'google'"))
    with pytest.raises(ConfigError, match=r"pypicloud\[gcs\]"):
        gcs()


def test_gcs_anonymous_on_an_emulator_streams(gcs):
    storage = gcs(**{"storage.gcp_service_account_json_filename": None})
    storage.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"x"), {})
    assert storage.download_url("demo", "demo-1.0.tar.gz", 60) is None


def test_gcs_unreachable_is_unavailable(gcs, gcs_bucket_name, gcs_service_account):
    from pypicloud.storage.gcs import GoogleCloudStorage

    gcs()  # the bucket exists
    down = GoogleCloudStorage(
        gcs_bucket_name,
        api_endpoint=f"http://127.0.0.1:{free_port()}",
        project_id="p",
        timeout=1,
        retry_timeout=1,
    )
    try:
        with pytest.raises(BackendUnavailable, match="GCS is unavailable"):
            down.put("demo", "demo-1.0.tar.gz", io.BytesIO(b"x"), {})
        with pytest.raises(BackendUnavailable):
            down.check_health()
        with pytest.raises(BackendUnavailable):
            list(down.list())
        with pytest.raises(BackendUnavailable):
            down.open("demo", "demo-1.0.tar.gz")
    finally:
        down.close()
    from tests.fixtures.gcs import gcs_settings

    settings = Settings(gcs_settings(f"http://127.0.0.1:{free_port()}", gcs_bucket_name), environ={})
    with pytest.raises(BackendUnavailable):
        storage_from_settings(settings)


def test_1x_ini_lines_start_each_backend(
    gcs_emulator, gcs_bucket_name, gcs_service_account, azurite_server, azure_container
):
    """1.x docs wrote ``pypi.s3 = <dotted name>``; their keys are read as they were."""
    from pypicloud.storage.azure_blob import AzureBlobStorage
    from pypicloud.storage.gcs import GoogleCloudStorage

    gcs_lines = {
        "pypi.s3": "pypicloud.storage.GoogleCloudStorage",
        "storage.bucket": gcs_bucket_name,
        "storage.gcp_api_endpoint": gcs_emulator,
        "storage.gcp_project_id": "ppc-test",
        "storage.prefix": "packages/",
        "storage.gcp_service_account_json_filename": str(gcs_service_account[0]),
    }
    azure_lines = {
        "pypi.s3": "pypicloud.storage.AzureBlobStorage",
        "storage.storage_account_name": ACCOUNT,
        "storage.storage_account_key": KEY,
        "storage.storage_account_url": azurite_server,
        "storage.storage_container_name": azure_container,
    }
    for lines, cls in ((gcs_lines, GoogleCloudStorage), (azure_lines, AzureBlobStorage)):
        settings = Settings(lines, environ={})
        assert settings.warn_unknown() == []
        storage = storage_from_settings(settings)
        try:
            assert type(storage) is cls
            storage.check_health()
        finally:
            storage.close()
