"""ppc-make-config writes byte-for-byte the same ini for the same answers.

The files under ``golden/make_config/`` were written by the generator before its
rendering moved into a Jinja2 template (issue 13); every case here must still
produce exactly those bytes. A deliberate change to the generated file updates
the golden file in the same commit, so the difference is reviewed as text.
"""

from __future__ import annotations

import pathlib

import pytest

from pypicloud.cli import make_config

GOLDEN = pathlib.Path(__file__).parent / "golden" / "make_config"
SECRET = "golden-session-secret-0123456789abcdef"
ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

# name -> command line (the output path is added). Together they take every
# branch of the template: three shapes, file and S3 storage with and without each
# optional value, SQLite/PostgreSQL/Redis, every password source, ${VAR}
# references, and values with % signs.
CASES: dict[str, list[str]] = {
    "dev-default": ["--password", "pw"],
    "prod-default": ["--prod", "--password", "pw"],
    "docker-default": ["--docker", "--password", "pw"],
    "dev-s3-everything": [
        "--bucket",
        "my-bucket",
        "--region",
        "eu-west-1",
        "--endpoint-url",
        "http://127.0.0.1:9000",
        "--prefix",
        "pkgs/",
        "--aws-access-key-id",
        "AKID",
        "--aws-secret-access-key",
        "s3cr%t",
        "--password",
        "pw",
    ],
    "prod-s3-minimal": ["--prod", "--bucket", "my-packages", "--password", "pw"],
    "docker-s3-references": [
        "--docker",
        "--bucket",
        "${BUCKET}",
        "--aws-access-key-id",
        "${AK}",
        "--aws-secret-access-key",
        "${SK}",
        "--env-secrets",
    ],
    "dev-redis": ["--db", "redis", "--password", "pw"],
    "dev-redis-url-password": ["--db-url", "redis://:pa%ss@127.0.0.1:6379/1", "--password", "pw"],
    "dev-postgres-url": ["--db-url", "postgresql://u:p@db.internal/ppc", "--password", "pw"],
    "prod-env-secrets-postgres": ["--prod", "--env-secrets", "--db", "postgres"],
    "prod-each-env-flag": [
        "--prod",
        "--db",
        "postgres",
        "--db-url-env",
        "DBURL",
        "--admin-hash-env",
        "AH",
        "--session-secret-env",
        "SS",
    ],
    "docker-host-port-admin-hash": [
        "--docker",
        "--host",
        "[::]",
        "--port",
        "8080",
        "--no-anonymous-read",
        "--admin",
        "boss",
        "--admin-hash",
        ARGON,
    ],
    "dev-dir-reference-private": ["--dir", "${PKG_DIR}", "--no-anonymous-read", "--password", "p%w"],
    "prod-anonymous-sqlite-dir": [
        "--prod",
        "--anonymous-read",
        "--dir",
        "pkgs",
        "--db-url",
        "sqlite:////srv/ppc/index.sqlite",
        "--password",
        "pw",
    ],
    "dev-password-env": ["--password-env", "ADMIN_PW", "--host", "0.0.0.0"],
}
ENVIRON = {"ADMIN_PW": "from-the-environment"}


def rendered(argv: list[str]) -> str:
    args = make_config.build_parser().parse_args([*argv, "out.ini"])
    answers = make_config.gather(args, ENVIRON, None, hasher=lambda pw: f"$fake${pw}")
    return make_config.render(answers)


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_ini_is_byte_identical_to_the_golden_file(name, monkeypatch):
    monkeypatch.setattr("secrets.token_urlsafe", lambda n=None: SECRET)
    expected = (GOLDEN / f"{name}.ini").read_bytes()
    assert rendered(CASES[name]).encode("utf-8") == expected


def test_every_golden_file_has_a_case():
    assert {p.stem for p in GOLDEN.glob("*.ini")} == set(CASES)
