"""Every S3 option of SPEC section 3 shown to take effect, against the moto server.

Effects are checked where S3 shows them: on the stored object (head_object,
get_object_acl), on the keys (list_objects_v2), on the bucket
(get_bucket_location) or on the download URL (which is also fetched).
"""

from __future__ import annotations

import hashlib
import io
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pypicloud.errors import BackendUnavailable, ConfigError, InvalidUpload, PypicloudError
from pypicloud.models import Redirect
from pypicloud.settings import Settings
from pypicloud.storage import storage_from_settings
from pypicloud.storage.s3 import S3Storage, decode_metadata_value, encode_metadata_value, key_hash
from tests.fixtures.s3 import make_s3_client, moto_auth_enforced, s3_settings
from tests.fixtures.services import free_port

DATA = b"package bytes " * 100
FILENAME = "demo-1.0.tar.gz"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def put(storage, data=DATA, metadata=None, project="demo", filename=FILENAME, **kw):
    return storage.put(project, filename, io.BytesIO(data), dict(metadata or {}), **kw)


def from_settings(values: dict, environ: dict | None = None) -> S3Storage:
    return S3Storage.from_settings(Settings(values, environ=environ or {}))


def fetch(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.read()


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def keys(client, bucket) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def grants(client, bucket, key) -> set[tuple[str, str]]:
    acl = client.get_object_acl(Bucket=bucket, Key=key)
    return {(g["Grantee"].get("URI") or g["Grantee"].get("ID", ""), g["Permission"]) for g in acl["Grants"]}


@pytest.fixture
def settings_for(moto_server, s3_bucket):
    """``settings_for(**storage_keys)`` -> an S3Storage built through from_settings."""
    built = []

    def make(environ=None, **extra):
        storage = from_settings(s3_settings(moto_server, s3_bucket, **extra), environ)
        built.append(storage)
        return storage

    yield make
    for storage in built:
        storage.close()


# Object options -----------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"storage_class": "STANDARD_IA"}, "STANDARD_IA"),
        ({"storage_class": "onezone_ia"}, "ONEZONE_IA"),
        ({"reduced_redundancy": "true"}, "REDUCED_REDUNDANCY"),
    ],
)
def test_storage_class(settings_for, s3_client, s3_bucket, extra, expected):
    storage = settings_for(**extra)
    put(storage)
    key = storage.key_for("demo", FILENAME)
    assert s3_client.head_object(Bucket=s3_bucket, Key=key)["StorageClass"] == expected
    # Every write applies it: copies too.
    storage.copy("demo", FILENAME, "demo", "demo-1.1.tar.gz")
    copy_key = storage.key_for("demo", "demo-1.1.tar.gz")
    assert s3_client.head_object(Bucket=s3_bucket, Key=copy_key)["StorageClass"] == expected


def test_reduced_redundancy_old_name(moto_server, s3_bucket, s3_client):
    values = s3_settings(moto_server, s3_bucket)
    values["aws.reduced_redundancy"] = "yes"
    storage = from_settings(values)
    put(storage)
    head = s3_client.head_object(Bucket=s3_bucket, Key=storage.key_for("demo", FILENAME))
    assert head["StorageClass"] == "REDUCED_REDUNDANCY"
    storage.close()


def test_default_storage_class_is_standard(settings_for, s3_client, s3_bucket):
    storage = settings_for()
    put(storage)
    head = s3_client.head_object(Bucket=s3_bucket, Key=storage.key_for("demo", FILENAME))
    assert head.get("StorageClass", "STANDARD") == "STANDARD"
    assert "ServerSideEncryption" not in head or head["ServerSideEncryption"] == "AES256"


def test_sse_aes256(settings_for, s3_client, s3_bucket):
    storage = settings_for(server_side_encryption="AES256")
    put(storage)
    head = s3_client.head_object(Bucket=s3_bucket, Key=storage.key_for("demo", FILENAME))
    assert head["ServerSideEncryption"] == "AES256"


def test_sse_kms_with_key(settings_for, s3_client, s3_bucket):
    storage = settings_for(server_side_encryption="aws:kms", sse_kms_key_id="alias/pypi-key")
    put(storage)
    storage.update_metadata("demo", FILENAME, {"a": "1"})
    put(storage, filename="demo-2.0.tar.gz", data=b"x" * (9 * 1024 * 1024))  # multipart
    for filename in (FILENAME, "demo-2.0.tar.gz"):
        head = s3_client.head_object(Bucket=s3_bucket, Key=storage.key_for("demo", filename))
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == "alias/pypi-key"


def test_kms_key_alone_implies_aws_kms(settings_for, s3_client, s3_bucket):
    storage = settings_for(sse_kms_key_id="my-key")
    put(storage)
    head = s3_client.head_object(Bucket=s3_bucket, Key=storage.key_for("demo", FILENAME))
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "my-key")


def test_object_acl(settings_for, s3_client, s3_bucket):
    storage = settings_for(object_acl="authenticated-read")
    put(storage)
    put(storage, filename="demo-2.0.tar.gz", overwrite=True)
    for filename in (FILENAME, "demo-2.0.tar.gz"):
        found = grants(s3_client, s3_bucket, storage.key_for("demo", filename))
        assert (AUTH_USERS, "READ") in found
        assert (ALL_USERS, "READ") not in found


def test_objects_private_by_default(settings_for, s3_client, s3_bucket):
    storage = settings_for()
    put(storage)
    found = grants(s3_client, s3_bucket, storage.key_for("demo", FILENAME))
    assert (ALL_USERS, "READ") not in found and (AUTH_USERS, "READ") not in found


def test_extra_metadata_on_every_write(settings_for, s3_client, s3_bucket):
    storage = settings_for(**{"metadata.team": "platform", "metadata.owner": "Zoë"})
    put(storage, metadata={"version": "1.0"})
    storage.copy("demo", FILENAME, "demo", "demo-1.1.tar.gz", metadata={"version": "1.1"})
    storage.update_metadata("demo", FILENAME, {"version": "1.0.post1"})
    put(storage, filename="demo-3.0.tar.gz", overwrite=True)
    for filename in (FILENAME, "demo-1.1.tar.gz", "demo-3.0.tar.gz"):
        raw = s3_client.head_object(Bucket=s3_bucket, Key=storage.key_for("demo", filename))["Metadata"]
        assert raw["team"] == "platform"
        assert decode_metadata_value(raw["owner"]) == "Zoë"
    # The configured extras are not part of the object's own metadata.
    assert storage.stat("demo", FILENAME).metadata == {"version": "1.0.post1"}
    assert storage.stat("demo", "demo-3.0.tar.gz").metadata == {}


def test_metadata_is_ascii_and_plain_values_unchanged(settings_for, s3_client, s3_bucket):
    storage = settings_for()
    metadata = {"plain": "Hello, World 1.0", "summary": "Grüße ✓", "empty": "", "requires_python": ">=3.8"}
    put(storage, metadata=metadata)
    raw = s3_client.head_object(Bucket=s3_bucket, Key=storage.key_for("demo", FILENAME))["Metadata"]
    assert set(raw) == set(metadata)  # keys stay lowercase
    assert raw["plain"] == "Hello, World 1.0"
    assert raw["requires_python"] == ">=3.8"
    assert raw["summary"].isascii() and raw["summary"] != metadata["summary"]
    assert {k: decode_metadata_value(v) for k, v in raw.items()} == metadata
    assert storage.stat("demo", FILENAME).metadata == metadata


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "a%20b",
        "=?UTF-8?B?w6k=?=",
        " x",
        "x ",
        "a  b",
        "é",
        "\x00\n",
        "🐍" * 10,
        "=?utf-8?q?=C3=A9?=",
    ],
)
def test_metadata_encoding_round_trips(value):
    encoded = encode_metadata_value(value)
    assert encoded.isascii() and "\n" not in encoded
    assert decode_metadata_value(encoded) == value


def test_metadata_key_and_size_limits(settings_for):
    storage = settings_for()
    with pytest.raises(InvalidUpload):
        put(storage, metadata={"Upper": "x"})
    with pytest.raises(InvalidUpload):
        put(storage, metadata={"summary": "x" * 3000})
    assert storage.stat("demo", FILENAME) is None


# URLs ---------------------------------------------------------------------------
def test_signed_url_lifetime_and_download(settings_for, moto_server, s3_bucket):
    storage = settings_for(expire_after="1234", buffer_time="100")
    assert (storage.expire_after, storage.buffer_time) == (1234, 100)
    put(storage)
    before = datetime.now(UTC)
    answer = storage.download_url("demo", FILENAME, storage.expire_after)
    assert isinstance(answer, Redirect)
    params = query(answer.url)
    assert params["X-Amz-Expires"] == "1234"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert answer.url.startswith(f"{moto_server}/{s3_bucket}/")
    assert answer.expires_at.tzinfo is not None
    expected = before + timedelta(seconds=1234)
    assert expected - timedelta(seconds=5) <= answer.expires_at <= expected + timedelta(seconds=1)
    assert fetch(answer.url) == DATA


def test_public_url(settings_for, s3_client, s3_bucket, moto_server):
    storage = settings_for(public_url="true")
    put(storage)
    answer = storage.download_url("demo", FILENAME, storage.expire_after)
    assert answer.expires_at is None
    assert "?" not in answer.url
    key = storage.key_for("demo", FILENAME)
    assert answer.url == f"{moto_server}/{s3_bucket}/{urllib.parse.quote(key)}"
    assert fetch(answer.url) == DATA
    assert (ALL_USERS, "READ") in grants(s3_client, s3_bucket, key)


def test_public_url_with_acl_none(settings_for, s3_client, s3_bucket):
    storage = settings_for(public_url="true", object_acl="none")
    put(storage)
    found = grants(s3_client, s3_bucket, storage.key_for("demo", FILENAME))
    assert (ALL_USERS, "READ") not in found  # a bucket policy would make it public


def test_public_url_quotes_the_key(settings_for):
    storage = settings_for(public_url="true", prepend_hash="false")
    put(storage, filename="demo-1.0+local.tar.gz")
    answer = storage.download_url("demo", "demo-1.0+local.tar.gz", 60)
    assert answer.url.endswith("/demo/demo-1.0%2Blocal.tar.gz")
    assert fetch(answer.url) == DATA


def test_addressing_style_path_and_virtual(moto_server, s3_bucket, s3_storage_factory):
    port = urllib.parse.urlsplit(moto_server).port
    path = s3_storage_factory(endpoint_url=f"http://localhost:{port}", addressing_style="path")
    url = path.download_url("demo", FILENAME, 60).url
    assert url.startswith(f"http://localhost:{port}/{s3_bucket}/")
    virtual = s3_storage_factory(endpoint_url=f"http://localhost:{port}", addressing_style="virtual")
    url = virtual.download_url("demo", FILENAME, 60).url
    assert url.startswith(f"http://{s3_bucket}.localhost:{port}/")
    assert virtual.client.meta.config.s3["addressing_style"] == "virtual"


def test_endpoint_url_in_urls(settings_for, moto_server):
    storage = settings_for()
    assert storage.client.meta.endpoint_url == moto_server
    assert storage.download_url("demo", FILENAME, 60).url.startswith(moto_server + "/")


def test_signature_versions(settings_for):
    v4 = settings_for(signature_version="s3v4")
    put(v4)
    url = v4.download_url("demo", FILENAME, 60).url
    assert query(url)["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert fetch(url) == DATA
    v2 = settings_for(signature_version="s3")
    params = query(v2.download_url("demo", FILENAME, 60).url)
    assert "Signature" in params and "AWSAccessKeyId" in params
    assert v2.client.meta.config.signature_version == "s3"


def test_client_settings(settings_for):
    storage = settings_for(
        connect_timeout="2.5",
        read_timeout="7",
        max_pool_connections="48",
        signature_version="s3v4",
        addressing_style="path",
    )
    config = storage.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.5, 7.0)
    assert config.max_pool_connections == 48
    assert config.signature_version == "s3v4"
    assert config.s3["addressing_style"] == "path"


def test_redirect_urls_and_read_only_flags(settings_for):
    storage = settings_for(redirect_urls="false", read_only="true")
    assert storage.redirect_urls is False and storage.read_only is True
    assert settings_for().redirect_urls is True


# Keys -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, layout",
    [
        ({}, "{hash}/demo/{filename}"),
        ({"prefix": "pkgs/"}, "pkgs/{hash}/demo/{filename}"),
        ({"prefix": "pkgs/", "prepend_hash": "false"}, "pkgs/demo/{filename}"),
        ({"prepend_hash": "false"}, "demo/{filename}"),
        ({"prefix": "team-a-"}, "team-a-{hash}/demo/{filename}"),
    ],
)
def test_key_layout(settings_for, s3_client, s3_bucket, extra, layout):
    storage = settings_for(**extra)
    names = [FILENAME, "demo-1.0-py3-none-any.whl"]
    for name in names:
        put(storage, filename=name)
    expected = sorted(layout.format(hash=hashlib.md5(n.encode()).hexdigest()[:4], filename=n) for n in names)
    assert keys(s3_client, s3_bucket) == expected
    assert sorted(storage.key_for("demo", n) for n in names) == expected
    assert sorted(o.key for o in storage.list()) == expected


def test_key_hash_is_stable():
    assert key_hash(FILENAME) == hashlib.md5(FILENAME.encode()).hexdigest()[:4]
    assert len(key_hash("ünïcode-1.0.tar.gz")) == 4


def test_old_aws_names_mean_the_same(moto_server, s3_bucket, s3_client):
    new = {
        "storage.bucket": s3_bucket,
        "storage.region_name": "us-east-1",
        "storage.aws_access_key_id": "AKIANEWNAMES",
        "storage.aws_secret_access_key": "s",
        "storage.prefix": "old/",
        "storage.prepend_hash": "false",
        "storage.expire_after": "999",
        "storage.buffer_time": "99",
        "storage.endpoint_url": moto_server,
    }
    old = {
        "aws.bucket": s3_bucket,
        "aws.region": "us-east-1",
        "aws.access_key": "AKIANEWNAMES",
        "aws.secret_key": "s",
        "aws.prefix": "old/",
        "aws.prepend_hash": "false",
        "aws.expire_after": "999",
        "aws.buffer_time": "99",
        "storage.endpoint_url": moto_server,
    }
    assert S3Storage.options_from_settings(Settings(old, environ={})) == S3Storage.options_from_settings(
        Settings(new, environ={})
    )
    storage = from_settings(old)
    assert (
        storage.bucket,
        storage.region_name,
        storage.prefix,
        storage.prepend_hash,
        storage.expire_after,
        storage.buffer_time,
    ) == (s3_bucket, "us-east-1", "old/", False, 999, 99)
    put(storage)
    assert keys(s3_client, s3_bucket) == [f"old/demo/{FILENAME}"]
    url = storage.download_url("demo", FILENAME, storage.expire_after).url
    assert query(url)["X-Amz-Credential"].startswith("AKIANEWNAMES/")
    assert query(url)["X-Amz-Expires"] == "999"
    storage.close()


def test_storage_from_settings_alias(moto_server, s3_bucket):
    storage = storage_from_settings(Settings(s3_settings(moto_server, s3_bucket), environ={}))
    assert isinstance(storage, S3Storage)
    storage.close()


# Credentials ------------------------------------------------------------------------
def credential_of(storage: S3Storage) -> str:
    url = storage.download_url("demo", FILENAME, 60).url
    return query(url)["X-Amz-Credential"].split("/")[0]


def test_credentials_from_ini(settings_for):
    storage = settings_for(
        aws_access_key_id="AKIAFROMINI", aws_secret_access_key="secret", aws_session_token="token-from-ini"
    )
    assert credential_of(storage) == "AKIAFROMINI"
    assert query(storage.download_url("demo", FILENAME, 60).url)["X-Amz-Security-Token"] == "token-from-ini"


def test_credentials_from_variable_expansion(settings_for):
    storage = settings_for(
        environ={"PPC_TEST_KEY": "AKIAFROMVAR", "PPC_TEST_SECRET": "s"},
        aws_access_key_id="$PPC_TEST_KEY",
        aws_secret_access_key="${PPC_TEST_SECRET}",
    )
    assert credential_of(storage) == "AKIAFROMVAR"


def test_credentials_from_aws_environment(settings_for, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    storage = settings_for()
    assert credential_of(storage) == "AKIAFROMENV"


@pytest.fixture
def iam_user(moto_server):
    """Real (moto IAM) credentials: the access key id and secret of a new user."""
    import boto3

    client = boto3.client("iam", endpoint_url=moto_server, region_name="us-east-1")
    name = f"ppc-{uuid.uuid4().hex[:10]}"
    client.create_user(UserName=name)
    key = client.create_access_key(UserName=name)["AccessKey"]
    yield key["AccessKeyId"], key["SecretAccessKey"]
    client.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    client.delete_user(UserName=name)


@pytest.mark.parametrize(
    "which, key",
    [
        ("unknown-key", "storage.aws_access_key_id"),
        ("wrong-secret", "storage.aws_secret_access_key"),
        ("no-permission", "storage.bucket"),
    ],
)
def test_bad_credentials_stop_start_up(moto_server, s3_bucket, iam_user, which, key):
    key_id, secret = iam_user
    if which == "unknown-key":
        key_id = "AKIA" + "Z" * 16
    elif which == "wrong-secret":
        secret = "not-the-secret"
    values = s3_settings(moto_server, s3_bucket, aws_access_key_id=key_id, aws_secret_access_key=secret)
    with moto_auth_enforced():
        with pytest.raises(ConfigError) as info:
            from_settings(values)
    assert info.value.key == key
    assert secret not in str(info.value)
    if which == "no-permission":
        assert "access denied" in str(info.value).lower()


# Bucket creation ---------------------------------------------------------------------
def record_calls(storage: S3Storage, operation: str) -> list[dict]:
    calls: list[dict] = []
    storage.client.meta.events.register(
        f"provide-client-params.s3.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_missing_bucket_created_in_region(moto_server, s3_bucket_name):
    storage = S3Storage(s3_bucket_name, endpoint_url=moto_server, region_name="eu-west-1")
    calls = record_calls(storage, "CreateBucket")
    storage.ensure_bucket()
    assert calls[0]["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}
    client = make_s3_client(moto_server, "eu-west-1")
    assert client.get_bucket_location(Bucket=s3_bucket_name)["LocationConstraint"] == "eu-west-1"
    put(storage)
    assert storage.stat("demo", FILENAME).size == len(DATA)
    storage.ensure_bucket()  # found this time: nothing to do
    assert len(calls) == 1
    storage.close()


def test_missing_bucket_created_through_settings(moto_server, s3_bucket_name):
    values = {
        "pypi.storage": "s3",
        "aws.bucket": s3_bucket_name,
        "aws.region": "eu-west-1",
        "storage.endpoint_url": moto_server,
    }
    storage = from_settings(values)
    client = make_s3_client(moto_server, "eu-west-1")
    assert client.get_bucket_location(Bucket=s3_bucket_name)["LocationConstraint"] == "eu-west-1"
    storage.close()


def test_missing_bucket_created_in_us_east_1(moto_server, s3_bucket_name, s3_client):
    storage = S3Storage(s3_bucket_name, endpoint_url=moto_server, region_name="us-east-1")
    calls = record_calls(storage, "CreateBucket")
    storage.ensure_bucket()
    assert "CreateBucketConfiguration" not in calls[0]
    assert s3_client.get_bucket_location(Bucket=s3_bucket_name)["LocationConstraint"] in (
        None,
        "",
        "us-east-1",
    )
    storage.close()


@pytest.mark.parametrize("extra", [{"create_bucket": "false"}, {"read_only": "true"}])
def test_missing_bucket_not_created(moto_server, s3_bucket_name, s3_client, extra):
    values = s3_settings(moto_server, s3_bucket_name, **extra)
    with pytest.raises(ConfigError) as info:
        from_settings(values)
    assert info.value.key == "storage.bucket"
    assert "does not exist" in str(info.value) and s3_bucket_name in str(info.value)
    assert s3_bucket_name not in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]


def test_bucket_in_another_region(moto_server, s3_bucket_name):
    make_s3_client(moto_server, "eu-west-1").create_bucket(
        Bucket=s3_bucket_name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    values = s3_settings(moto_server, s3_bucket_name, region_name="us-west-2")
    with pytest.raises(ConfigError) as info:
        from_settings(values)
    assert info.value.key == "storage.region_name"
    assert "eu-west-1" in str(info.value)
    # Without a configured region the storage follows the bucket.
    values.pop("storage.region_name")
    storage = from_settings(values)
    assert storage.region_name == "eu-west-1"
    scope = query(storage.download_url("demo", FILENAME, 60).url)["X-Amz-Credential"]
    assert "/eu-west-1/s3/" in scope
    storage.close()


# Failures ------------------------------------------------------------------------------
def test_unknown_endpoint_fails_quickly(s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    values = s3_settings(endpoint, "some-bucket", connect_timeout="1", read_timeout="1")
    with pytest.raises(BackendUnavailable) as info:
        from_settings(values)
    assert "S3 is unavailable" in str(info.value) and endpoint in str(info.value)

    storage = S3Storage(
        "some-bucket",
        endpoint_url=endpoint,
        region_name="us-east-1",
        connect_timeout=0.5,
        read_timeout=0.5,
        max_attempts=1,
        health_timeout=10,
    )
    calls = [
        lambda: put(storage),
        lambda: put(storage, overwrite=True),
        lambda: storage.open("demo", FILENAME),
        lambda: storage.stat("demo", FILENAME),
        lambda: storage.delete("demo", FILENAME),
        lambda: list(storage.list()),
        lambda: storage.copy("demo", FILENAME, "demo", "x-1.0.tar.gz"),
        lambda: storage.update_metadata("demo", FILENAME, {}),
        storage.check_health,
    ]
    for call in calls:
        with pytest.raises(BackendUnavailable, match="S3 is unavailable"):
            call()
    storage.close()


def test_check_health_reports_missing_bucket(s3_storage_factory, s3_client, s3_bucket):
    storage = s3_storage_factory()
    storage.check_health()
    s3_client.delete_bucket(Bucket=s3_bucket)
    with pytest.raises(PypicloudError, match="does not exist"):
        storage.check_health()
    s3_client.create_bucket(Bucket=s3_bucket)  # for the fixture's clean-up


# Validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, key",
    [
        ({"server_side_encryption": "DES"}, "storage.server_side_encryption"),
        ({"sse_kms_key_id": "k", "server_side_encryption": "AES256"}, "storage.sse_kms_key_id"),
        ({"addressing_style": "sideways"}, "storage.addressing_style"),
        ({"storage_class": "GLACIER"}, "storage.storage_class"),
        ({"storage_class": "CHEAP"}, "storage.storage_class"),
        ({"storage_class": "STANDARD_IA", "reduced_redundancy": "true"}, "storage.reduced_redundancy"),
        ({"reduced_redundancy": "maybe"}, "storage.reduced_redundancy"),
        ({"signature_version": "v1"}, "storage.signature_version"),
        ({"object_acl": "everyone"}, "storage.object_acl"),
        ({"object_acl": "private", "public_url": "true"}, "storage.object_acl"),
        ({"expire_after": "soon"}, "storage.expire_after"),
        ({"expire_after": "0"}, "storage.expire_after"),
        ({"expire_after": "999999999"}, "storage.expire_after"),
        ({"expire_after": "600", "buffer_time": "600"}, "storage.buffer_time"),
        ({"buffer_time": "-1"}, "storage.buffer_time"),
        ({"connect_timeout": "-1"}, "storage.connect_timeout"),
        ({"read_timeout": "slow"}, "storage.read_timeout"),
        ({"max_pool_connections": "0"}, "storage.max_pool_connections"),
        ({"metadata.Bad Key": "x"}, "storage.metadata.Bad Key"),
        ({"endpoint_url": "ftp://example.invalid"}, "storage.endpoint_url"),
        ({"aws_access_key_id": "AKIAONLYID"}, "storage.aws_secret_access_key"),
        ({"aws_secret_access_key": "only-secret"}, "storage.aws_access_key_id"),
        ({"prepend_hash": "sometimes"}, "storage.prepend_hash"),
        ({"create_bucket": "perhaps"}, "storage.create_bucket"),
        ({"public_url": "2"}, "storage.public_url"),
        ({"bucket": "a"}, "storage.bucket"),
    ],
)
def test_bad_values_name_the_key(moto_server, s3_bucket, extra, key):
    values = s3_settings(moto_server, s3_bucket, **extra)
    with pytest.raises(ConfigError) as info:
        from_settings(values)
    assert info.value.key == key
    assert key in str(info.value)


def test_bucket_is_required():
    with pytest.raises(ConfigError) as info:
        from_settings({"pypi.storage": "s3"})
    assert info.value.key == "storage.bucket"


def test_no_expiry_limit_for_public_urls(settings_for):
    storage = settings_for(public_url="true", expire_after="99999999")
    assert storage.expire_after == 99999999


def test_open_reader_is_a_closeable_stream(s3_storage_factory):
    storage = s3_storage_factory()
    put(storage)
    handle = storage.open("demo", FILENAME, 5, 10)
    assert handle.read(3) + handle.read() == DATA[5:15]
    handle.close()
    assert handle.read() == b""
    with storage.open("demo", FILENAME) as handle:
        assert b"".join(handle) == DATA


# Compatibility and server errors ----------------------------------------------------------
def test_objects_written_by_pypicloud_1x_are_found(s3_storage_factory, s3_client, s3_bucket):
    """1.x wrote ``<prefix><md5[:4]>/<project>/<filename>`` with its own metadata names."""
    key = f"pkgs/{hashlib.md5(FILENAME.encode()).hexdigest()[:4]}/demo/{FILENAME}"
    old_metadata = {"name": "demo", "version": "1.0", "summary": "old", "x.dotted": "v"}
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=DATA, Metadata=old_metadata)
    storage = s3_storage_factory(prefix="pkgs/")
    [found] = list(storage.list())
    assert (found.project, found.filename, found.key) == ("demo", FILENAME, key)
    assert found.metadata == old_metadata
    assert storage.stat("demo", FILENAME).metadata == old_metadata
    storage.copy("demo", FILENAME, "demo", "demo-1.0.copy.tar.gz")
    assert storage.stat("demo", "demo-1.0.copy.tar.gz").metadata == old_metadata


@pytest.fixture
def failing_endpoint():
    """A local HTTP server that answers every request with 503 SlowDown/ServiceUnavailable."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = (
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ServiceUnavailable"
                b"</Code><Message>Please reduce your request rate.</Message></Error>"
            )
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body) if self.command != "HEAD" else 0))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_server_errors_are_backend_unavailable(failing_endpoint):
    storage = S3Storage(
        "some-bucket",
        endpoint_url=failing_endpoint,
        region_name="us-east-1",
        max_attempts=1,
        connect_timeout=2,
        read_timeout=5,
    )
    calls = [
        lambda: put(storage),
        lambda: put(storage, overwrite=True),
        lambda: storage.open("demo", FILENAME),
        lambda: storage.stat("demo", FILENAME),
        lambda: list(storage.list()),
        storage.check_health,
        storage.ensure_bucket,
    ]
    for call in calls:
        with pytest.raises(BackendUnavailable, match="S3 is unavailable"):
            call()
    storage.close()
