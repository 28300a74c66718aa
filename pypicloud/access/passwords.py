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

#: Longer passwords are refused without being hashed: the cost of some old
#: schemes (sha512_crypt) grows with the password's length.
MAX_PASSWORD_BYTES = 1024


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


def verify_dummy(password: str, like: str | None = None) -> bool:
    """Spend as long as a real check, then return False.

    Used for unknown user names so that the response time does not tell an
    attacker which names exist. ``like``: a real hash whose scheme and cost
    parameters the dummy copies (see :func:`typical_hash`), so an unknown name
    costs what the users' hashes cost. The dummy hash is made on first use,
    not at import, so importing this module stays cheap.
    """
    global _dummy_hash
    dummy = _dummy_like(like) if like else None
    if dummy is None:
        with _dummy_lock:
            if _dummy_hash is None:
                _dummy_hash = hash_password(secrets.token_urlsafe(16))
        dummy = _dummy_hash
    verify_password(password, dummy)
    return False


_COST_PARAMETERS = ("rounds", "memory_cost", "parallelism", "salt_size", "ident", "type")
_dummies: dict[tuple, str] = {}


def _profile(hashed: str) -> tuple | None:
    """(scheme, cost parameters) of a hash, or None when it cannot be parsed."""
    try:
        scheme = CONTEXT.identify(hashed, required=False)
        if scheme is None:
            return None
        parsed = CONTEXT.handler(scheme).from_string(hashed)
    except (ValueError, TypeError):
        return None
    return (scheme,) + tuple(
        (name, getattr(parsed, name)) for name in _COST_PARAMETERS if getattr(parsed, name, None) is not None
    )


def _dummy_like(hashed: str) -> str | None:
    profile = _profile(hashed)
    if profile is None:
        return None
    with _dummy_lock:
        dummy = _dummies.get(profile)
        if dummy is None:
            scheme, options = profile[0], dict(profile[1:])
            options.pop("salt_size", None)
            options.pop("type", None)
            try:
                try:
                    handler = CONTEXT.handler(scheme).using(**options)
                except TypeError:  # a scheme with one variant takes no "ident"
                    options.pop("ident", None)
                    handler = CONTEXT.handler(scheme).using(**options)
                dummy = handler.hash(secrets.token_urlsafe(16))
            except (ValueError, TypeError):
                return None
            _dummies[profile] = dummy
    return dummy


def typical_hash(hashes) -> str | None:
    """One of ``hashes`` with the most common scheme and cost (for :func:`verify_dummy`)."""
    counts: dict[tuple, list] = {}
    for hashed in hashes:
        profile = _profile(hashed) if hashed else None
        if profile is not None:
            counts.setdefault(profile, []).append(hashed)
    if not counts:
        return None
    return max(counts.values(), key=len)[0]
