"""``pypi.auth = aws_secrets_manager``: 1.x's access document in AWS Secrets Manager (moto).

The document 1.x wrote is read as it is (and stays readable by 1.x after an
edit); 1.x's keys (``auth.secret_id``, ``auth.region_name``, credentials) and
names choose the backend; start-up refuses wrong credentials and an endpoint
that does not answer naming the key; an outage answers 503.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import boto3
import passlib.hash
import pytest

from pypicloud.access import access_from_settings
from pypicloud.access.aws_secrets_manager import SecretsManagerAccess
from pypicloud.errors import ConfigError
from pypicloud.settings import Settings
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.s3 import moto_auth_enforced
from tests.fixtures.services import free_port, unique_name

from .helpers import auth_headers, make_wheel, upload

HASH = passlib.hash.sha256_crypt.using(rounds=1000).hash("old-pw")

DOC_1X = {
    "users": {"olduser": HASH, "boss": HASH},
    "groups": {"team": ["olduser"]},
    "admins": ["boss"],
    "packages": {
        "Team_Lib": {"groups": {"team": ["read", "write"]}, "users": {}},
        "peek": {"users": {"olduser": ["read"]}, "groups": {}},
    },
    "pending_users": {},
}


@pytest.fixture
def secret(moto_server):
    client = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    name = unique_name("ppc-access")
    client.create_secret(Name=name, SecretString=json.dumps(DOC_1X))
    yield client, name
    client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    client.close()


def settings_for(moto_server, name, **extra) -> dict[str, str]:
    return {
        "pypi.auth": "aws_secrets_manager",
        "auth.secret_id": name,
        "auth.region_name": "us-east-1",
        "auth.endpoint_url": moto_server,
        **extra,
    }


def test_a_1x_document_is_served_and_stays_1x_readable(moto_server, secret):
    client, name = secret
    access = access_from_settings(
        Settings(
            settings_for(
                moto_server,
                name,
                **{"pypi.auth": "pypicloud.access.aws_secrets_manager.AWSSecretsManagerAccessBackend"},
            ),
            environ={},
        )
    )
    assert isinstance(access, SecretsManagerAccess)
    olduser = access.authenticate("olduser", "old-pw")
    assert olduser.groups == {"team"} and access.identity("boss").is_admin
    assert access.permission(olduser, "team-lib") == "rw"
    assert access.permission(olduser, "peek") == "r"
    access.set_grant("peek", "user", "olduser", "rw")
    doc = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    assert doc["users"] == DOC_1X["users"] and doc["admins"] == ["boss"]
    assert doc["packages"]["peek"]["users"]["olduser"] == ["read", "write"]
    assert doc["packages"]["Team_Lib"] == DOC_1X["packages"]["Team_Lib"]


def test_uploads_through_the_app(make_app, moto_server, secret):
    _, name = secret
    app = make_app(settings_for(moto_server, name))
    filename, data = make_wheel("team-lib", "1.0")
    upload(app, filename, data, user="olduser", password="old-pw", status=200)
    filename, data = make_wheel("peek", "1.0")
    upload(app, filename, data, user="olduser", password="old-pw", status=403)


def test_a_missing_secret_is_an_empty_document_created_on_the_first_change(moto_server):
    name = unique_name("ppc-new")
    access = access_from_settings(Settings(settings_for(moto_server, name), environ={}))
    client = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    try:
        assert not access.user_exists("x")
        access.create_user("first", HASH, admin=True)
        doc = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
        assert doc["users"] == {"first": HASH} and doc["admins"] == ["first"]
    finally:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        client.close()


def test_wrong_credentials_stop_start_up_naming_the_key(moto_server, secret):
    _, name = secret
    with moto_auth_enforced(), pytest.raises(ConfigError) as info:
        access_from_settings(
            Settings(
                settings_for(
                    moto_server,
                    name,
                    **{"auth.aws_access_key_id": "AKIAWRONG", "auth.aws_secret_access_key": "nope-secret"},
                ),
                environ={},
            )
        )
    assert "auth.aws_access_key_id" in str(info.value) and "nope-secret" not in str(info.value)


def test_unreachable_endpoint_stops_start_up_naming_the_key():
    with pytest.raises(ConfigError, match="auth.endpoint_url"):
        access_from_settings(Settings(settings_for(f"http://127.0.0.1:{free_port()}", "x"), environ={}))


def test_outage_gives_503_and_health_then_service_resumes(make_app, moto_server, secret):
    _, name = secret
    proxy = TcpProxy(urlsplit(moto_server).port)
    try:
        app = make_app(
            settings_for(
                f"http://127.0.0.1:{proxy.port}",
                name,
                **{"auth.secret_cache_seconds": "0", "auth.cache_seconds": "0"},
            )
        )
        headers = auth_headers("olduser", "old-pw")
        assert app.get("/simple/", headers=headers).status_int == 200
        proxy.cut()
        response = app.get("/simple/", headers=headers, expect_errors=True)
        assert response.status_int == 503 and "Secrets Manager" in response.text
        health = app.get("/health", expect_errors=True)
        assert health.status_int == 503 and health.json == {"status": "unavailable"}  # details: admins only
        proxy.restore()
        assert app.get("/simple/", headers=headers).status_int == 200
    finally:
        proxy.close()
