"""Password hashing (SPEC section 8).

New hashes are argon2id. Every format pypicloud 1.x's ``ppc-gen-password`` could
write (passlib's sha512_crypt -- its default --, sha256_crypt, pbkdf2_sha256,
pbkdf2_sha512, bcrypt and argon2) still verifies, so the ``user.*`` lines of an
old ini keep working. The ``passlib`` import is provided by the maintained fork
``libpass``.
"""

from __future__ import annotations

import secrets
import threading

from passlib.context import CryptContext

#: The schemes we accept, the first being the one new hashes use.
SCHEMES: tuple[str, ...] = (
    "argon2",
    "sha512_crypt",
    "sha256_crypt",
    "pbkdf2_sha256",
    "pbkdf2_sha512",
    "bcrypt",
)

# One shared context: CryptContext is thread-safe for hash/verify, and building
# it once avoids re-parsing the configuration on every login.
# deprecated="auto" marks every scheme but the default as "should be rehashed",
# which a writable backend can use to upgrade old hashes on a successful login.
CONTEXT = CryptContext(
    schemes=list(SCHEMES),
    default="argon2",
    deprecated="auto",
    # libpass already defaults to argon2id; pin it so a library change cannot
    # silently switch new hashes to another variant.
    argon2__type="ID",
    # OWASP's argon2id profile (19 MiB, 2 passes, 1 lane) instead of the library's
    # 64 MiB / 3 / 4: as strong by OWASP's reckoning, and a burst of first logins
    # on a threaded server costs 19 MiB each, not 64 (a login verifies with the
    # parameters stored in the hash, so existing hashes keep working).
    argon2__memory_cost=19456,
    argon2__rounds=2,
    argon2__parallelism=1,
)

# bcrypt only ever looked at the first 72 bytes. passlib 1.7 truncated longer
# passwords silently, while bcrypt>=5 refuses them, so a 1.x hash of a long
# password would never verify again unless we truncate the same way.
_BCRYPT_MAX_BYTES = 72


def hash_password(password: str, scheme: str | None = None) -> str:
    """Hash ``password`` with ``scheme`` (default argon2id) for storage."""
    # CONTEXT.handler() returns the scheme configured as in the context (argon2id).
    return CONTEXT.handler(scheme).hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """True when ``password`` matches ``hashed``.

    Never raises: a malformed hash, an unknown scheme or a password the scheme
    cannot take (NUL bytes for the crypt family) all mean "no match", so one
    bad ``user.*`` line cannot turn a login into a server error.
    """
    if not hashed or not isinstance(password, str):
        return False
    try:
        secret: str | bytes = password
        if CONTEXT.identify(hashed, required=False) == "bcrypt":
            encoded = password.encode("utf-8")
            if len(encoded) > _BCRYPT_MAX_BYTES:
                secret = encoded[:_BCRYPT_MAX_BYTES]
        return bool(CONTEXT.verify(secret, hashed))
    except (ValueError, TypeError):
        # passlib's UnknownHashError and PasswordValueError are ValueErrors;
        # the bcrypt and argon2 bindings raise ValueError/TypeError on bad input.
        return False


def needs_rehash(hashed: str) -> bool:
    """True when ``hashed`` is not in the current default format (argon2id)."""
    try:
        return bool(CONTEXT.needs_update(hashed))
    except (ValueError, TypeError):
        return True


_dummy_lock = threading.Lock()
_dummy_hash: str | None = None


def verify_dummy(password: str) -> bool:
    """Spend as long as a real check, then return False.

    Used for unknown user names so that the response time does not tell an
    attacker which names exist. The dummy hash is made on first use, not at
    import, so importing this module stays cheap.
    """
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_urlsafe(16))
    verify_password(password, _dummy_hash)
    return False
