"""pypicloud 1.x inis naming the index and access backends of issue 14 serve twine and pip.

A real server process (waitress) per backend, configured the way a 1.x ini
named it, against the real service the tests run: MariaDB, DynamoDB (moto),
OpenLDAP slapd, a loopback access service, Secrets Manager (moto). twine
uploads a wheel and an sdist as ``alice``; pip downloads them back through the
server with the same credentials, and the bytes match.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import boto3
import pytest

from tests.fixtures import ldap as directory
from tests.fixtures.remote_access import remote_settings
from tests.fixtures.server import password_hash, sha256_file
from tests.fixtures.services import unique_name

from .helpers import client_env, index_url, ok, pip_cmd, run, twine_upload

pytestmark = pytest.mark.e2e


def settings_for(kind: str, request) -> dict[str, str]:
    if kind == "mysql":
        url, _ = request.getfixturevalue("mariadb_database")
        return {"db.url": url.replace("mysql+pymysql://", "mysql://", 1), "auth.admins": "admin alice"}
    if kind == "dynamo":
        endpoint = urlsplit(request.getfixturevalue("moto_server"))
        namespace = unique_name("ppc-e2e") + "-"

        def drop():
            from pypicloud.index.dynamo import DynamoIndex

            index = DynamoIndex(
                endpoint_url=endpoint.geturl(), region_name="us-east-1", namespace=namespace, create=False
            )
            index.delete_tables()
            index.close()

        request.addfinalizer(drop)
        return {
            "pypi.db": "pypicloud.cache.dynamo.DynamoCache",
            "db.host": endpoint.hostname,
            "db.port": str(endpoint.port),
            "db.region_name": "us-east-1",
            "db.namespace": namespace,
            "auth.admins": "admin alice",
        }
    if kind == "ldap":
        server = request.getfixturevalue("ldap_server")
        return {
            "pypi.auth": "pypicloud.access.ldap_.LDAPAccessBackend",
            "auth.ldap.url": server.url,
            "auth.ldap.service_dn": directory.SERVICE_DN,
            "auth.ldap.service_password": directory.SERVICE_PASSWORD,
            "auth.ldap.base_dn": directory.PEOPLE,
            "auth.ldap.user_search_filter": "(uid={username})",
            "auth.ldap.admin_field": "employeeType",
            "auth.ldap.admin_value": "admin",
        }
    if kind == "remote":
        return remote_settings(request.getfixturevalue("remote_access_server"))
    if kind == "secrets":
        endpoint = request.getfixturevalue("moto_server")
        name = unique_name("ppc-e2e")
        client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
        client.create_secret(
            Name=name,
            SecretString=json.dumps(
                {
                    "users": {"alice": password_hash("alice")},
                    "groups": {},
                    "admins": ["alice"],
                    "packages": {},
                }
            ),
        )
        request.addfinalizer(lambda: client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True))
        return {
            "pypi.auth": "aws_secrets_manager",
            "auth.secret_id": name,
            "auth.region_name": "us-east-1",
            "auth.endpoint_url": endpoint,
        }
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", [pytest.param("mysql", marks=pytest.mark.mariadb), "dynamo", "ldap", "remote", "secrets"]
)
def test_a_1x_backend_serves_twine_and_pip(kind, request, server_factory, dists, tmp_path):
    srv = server_factory(settings_for(kind, request))
    env = client_env(tmp_path)
    wheel, sdist = dists.build("1.0")
    ok(twine_upload(srv, [wheel, sdist], env, user="alice"))
    dest = tmp_path / "downloaded"
    ok(
        run(
            pip_cmd(
                "download",
                "--no-deps",
                "--no-cache-dir",
                "-d",
                str(dest),
                "--index-url",
                index_url(srv, "alice"),
                f"{dists.name}==1.0",
            ),
            env,
        )
    )
    [got] = list(dest.iterdir())
    assert got.name == wheel.name and sha256_file(got) == sha256_file(wheel)
    assert srv.health() == 200
