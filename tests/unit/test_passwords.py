"""Password hashing: new hashes are argon2id, every pypicloud 1.x format still verifies."""

from __future__ import annotations

import passlib.hash
import pytest

from pypicloud.access import passwords
from pypicloud.access.passwords import hash_password, needs_rehash, verify_dummy, verify_password

# The formats pypicloud 1.x's ppc-gen-password could write (its -s option).
LEGACY = ["sha512_crypt", "sha256_crypt", "pbkdf2_sha256", "pbkdf2_sha512", "bcrypt", "argon2"]

# Cheapest cost settings, to keep the tests that are not about the defaults fast.
_CHEAP = {"sha512_crypt": 1000, "sha256_crypt": 1000, "pbkdf2_sha256": 1, "pbkdf2_sha512": 1, "bcrypt": 4}


def cheap(scheme: str):
    handler = getattr(passlib.hash, scheme)
    if scheme in _CHEAP:
        return handler.using(rounds=_CHEAP[scheme])
    return handler.using(memory_cost=64, time_cost=1, parallelism=1)


def test_new_hashes_are_argon2id_and_verify():
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password("correct horse", hashed)
    assert not verify_password("correct horsE", hashed)
    assert not needs_rehash(hashed)


def test_new_argon2id_hashes_use_the_owasp_profile_and_older_parameters_still_verify():
    """19 MiB, 2 passes, 1 lane for new hashes; a hash made with the library's former
    64 MiB / 3 / 4 profile (what earlier versions wrote) verifies unchanged."""
    assert hash_password("pw").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    earlier = passlib.hash.argon2.using(type="ID", memory_cost=65536, rounds=3, parallelism=4).hash("pw")
    assert earlier.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password("pw", earlier) and not verify_password("other", earlier)


def test_each_hash_is_salted():
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize("scheme", LEGACY)
def test_legacy_hash_with_default_cost_verifies(scheme):
    handler = getattr(passlib.hash, scheme)
    hashed = handler.hash("old pw")
    assert verify_password("old pw", hashed)
    assert not verify_password("old pw ", hashed)
    assert not verify_password("", hashed)


@pytest.mark.parametrize("variant", ["i", "d", "id"])
def test_every_argon2_variant_verifies(variant):
    hashed = cheap("argon2").using(type=variant).hash("pw")
    assert hashed.startswith(f"$argon2{variant}$")
    assert verify_password("pw", hashed)
    assert not verify_password("px", hashed)


def test_crypt_hash_with_implicit_rounds_verifies():
    # 5000 rounds is the crypt default, written without a rounds= field.
    hashed = passlib.hash.sha512_crypt.using(rounds=5000).hash("pw")
    assert "rounds=" not in hashed
    assert verify_password("pw", hashed)


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_bcrypt_prefixes_verify(prefix):
    hashed = cheap("bcrypt").hash("pw")
    hashed = prefix + hashed[4:]
    assert verify_password("pw", hashed)
    assert not verify_password("px", hashed)


def test_bcrypt_long_password_verifies_as_passlib_1_7_truncated_it():
    # passlib 1.7 hashed only the first 72 bytes; bcrypt>=5 refuses longer input.
    long_pw = "é" * 50  # 100 bytes in UTF-8
    hashed = cheap("bcrypt").hash(long_pw.encode("utf-8")[:72])
    assert verify_password(long_pw, hashed)
    assert not verify_password("x" + long_pw[1:], hashed)


@pytest.mark.parametrize("scheme", [s for s in LEGACY if s != "argon2"])
def test_legacy_hashes_should_be_upgraded(scheme):
    assert needs_rehash(cheap(scheme).hash("pw"))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        None,
        "plain text password",
        "$argon2id$garbage",
        "$6$rounds=5000$abc$",
        "$2b$12$short",
        "$pbkdf2-sha256$x$y$z",
        "$1$md5crypt$notsupported",
        "{SSHA}abc",
    ],
)
def test_malformed_or_unknown_hash_is_false(bad):
    assert verify_password("pw", bad) is False


@pytest.mark.parametrize("scheme", ["sha512_crypt", "bcrypt", "argon2"])
def test_password_a_scheme_cannot_take_is_false_not_an_error(scheme):
    hashed = cheap(scheme).hash("pw")
    assert verify_password("p\0w", hashed) is False


def test_non_string_password_is_false():
    assert verify_password(None, hash_password("pw")) is False  # type: ignore[arg-type]


def test_hash_with_other_scheme():
    hashed = hash_password("pw", scheme="sha512_crypt")
    assert hashed.startswith("$6$")
    assert verify_password("pw", hashed)


def test_context_schemes():
    assert set(passwords.CONTEXT.schemes()) == set(LEGACY)
    assert passwords.CONTEXT.default_scheme() == "argon2"


def test_verify_dummy_is_always_false():
    assert verify_dummy("anything") is False
    assert verify_dummy("") is False
