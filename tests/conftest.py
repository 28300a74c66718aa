"""Shared pytest configuration: fixtures live in tests/fixtures/ and are loaded here."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.s3",
    "tests.fixtures.azurite",
    "tests.fixtures.cloudfront",
    "tests.fixtures.gcs",
    "tests.fixtures.server",
    "tests.fixtures.upstream",
    "tests.fixtures.ldap",
    "tests.fixtures.remote_access",
    "tests.fixtures.oidc_issuer",
]
