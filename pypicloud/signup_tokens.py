"""Sign-up tokens, as pypicloud 1.x made them: an admin hands one to a new user.

``GET /admin/token/<name>`` (admins) answers a token; whoever holds it sets a
password at ``PUT /acct/tokenRegister`` (or the web page ``/acct/signup``) and
gets an approved account of that name, without waiting in the pending list.

The token is 1.x's, byte for byte, so tokens an admin handed out before the
switch keep working: ``<name>:<issued, Unix seconds>:<hex HMAC-SHA256>``, the
HMAC keyed with ``auth.signing_key`` over ``<name>:<issued>``. It is valid for
``auth.token_expire`` seconds (one week unless set). Nothing is stored: a token
is spent because the account it makes exists afterwards (a second use answers
409), and changing ``auth.signing_key`` voids every token not yet used.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from .access.editable import AccessConflict, InvalidAccessData, check_name
from .access.passwords import hash_password
from .access_admin import AccessAdmin, check_signup_password
from .audit_actions import USER_REGISTER
from .errors import Forbidden
from .models import Identity
from .settings import Settings

ONE_WEEK = 7 * 24 * 3600


class SignupTokens:
    """Makes and checks 1.x sign-up tokens; ``enabled`` is False without a key."""

    def __init__(
        self, signing_key: str | None, lifetime: int = ONE_WEEK, clock: Callable[[], float] = time.time
    ):
        self._key = signing_key.encode("utf-8") if signing_key else None
        self.lifetime = lifetime
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> SignupTokens:
        return cls(
            settings.get_str("auth.signing_key") or None,
            settings.get_int("auth.token_expire", ONE_WEEK, minimum=1),
        )

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def _signature(self, username: str, issued: int) -> str:
        assert self._key is not None
        message = f"{username}:{issued}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def issue(self, username: str) -> str:
        """A token that creates ``username`` (call only when ``enabled``)."""
        issued = int(self._clock())
        return f"{username}:{issued}:{self._signature(username, issued)}"

    def verify(self, token: str) -> str | None:
        """The user name a genuine, unexpired token names; None for anything else."""
        if self._key is None or not isinstance(token, str):
            return None
        # The name comes first and has no colon (check_name refuses one); splitting
        # from the right keeps a forged name with colons from shifting the fields.
        parts = token.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        username, issued_text, signature = parts
        issued = int(issued_text)
        if issued + self.lifetime < self._clock():
            return None
        expected = self._signature(username, issued)
        if not hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode("ascii")):
            return None
        return username


class TokenSignup:
    """The rules of sign-up by token, for the 1.x API and the web page alike."""

    def __init__(self, admin: AccessAdmin, tokens: SignupTokens):
        self.admin = admin
        self.tokens = tokens

    def issue(self, identity: Identity, username: str) -> str:
        """A token for ``username`` (admins only; needs ``auth.signing_key`` and a
        backend that can create users). As in 1.x, the name need not be free yet:
        the token is checked against the users when it is spent."""
        self.admin.require_admin(identity, "make sign-up tokens")
        if not self.tokens.enabled:
            # 1.x answered 500 here; the ini is what is missing.
            raise Forbidden("Sign-up tokens need auth.signing_key in the server's ini")
        self.admin.editable()  # 403 on a read-only backend, before a useless token
        check_name("user", username)
        return self.tokens.issue(username)

    def redeem(self, token: str | None, password: str | None) -> str:
        """Create the approved user a genuine token names; the new user's name.

        400 for a token that is not genuine, expired, or when tokens are off;
        409 when the account exists (the token was used) or waits for approval;
        400 for a password outside the sign-up limits. Nothing is stored then.
        """
        username = self.check(token)
        check_signup_password(password or "")
        self.admin.editable().create_user(username, hash_password(password or ""))
        # The new user acted (with a token an admin made for them).
        self.admin.record(Identity(username), USER_REGISTER, user=username, via="signup-token")
        return username

    def check(self, token: str | None) -> str:
        """The name a token would create, with the errors ``redeem`` would give."""
        username = self.tokens.verify(token or "")
        if username is None:
            raise InvalidAccessData(
                "This sign-up token is not valid or has expired; ask an admin for a new one"
            )
        check_name("user", username)
        self.admin.editable()
        if self.admin.name_taken(username):
            raise AccessConflict(f"User {username!r} exists already: this sign-up token was used")
        return username
