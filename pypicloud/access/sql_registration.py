"""Self-registration in the SQL access backend (pypicloud 1.x's pending users).

A sign-up waits in ``ppc_access_pending_users`` until an admin approves or
rejects it; whether sign-ups are taken at all is a row beside the access change
counter, switched at run time. Mixed into :class:`pypicloud.access.sql.SQLAccess`.
"""

from __future__ import annotations

import sqlalchemy as sa

from .editable import AccessConflict, PendingQueueFull, check_hash, check_name
from .schema import access_counters, pending_users, users
from .sql_base import SQLAccessBase

# Row of ppc_access_counters holding the run-time registration switch (1 on, 0 off;
# absent: pypi.allow_register from the ini decides), as 1.x kept it in its keyvals.
REGISTRATION_ROW = "allow_register"


class SQLRegistration(SQLAccessBase):
    """Sign-ups waiting for an admin, and the run-time switch that takes them."""

    def pending_users(self) -> list[str]:
        """Sign-ups waiting for an admin (here or on pypicloud 1.x); they cannot log in."""
        return sorted(self.pending_user_hashes())

    supports_registration = True

    def registration_flag(self) -> bool | None:
        value = self._run(
            lambda c: c.execute(
                sa.select(access_counters.c.value).where(access_counters.c.name == REGISTRATION_ROW)
            ).scalar_one_or_none()
        )
        return None if value is None else bool(value)

    def set_registration_flag(self, allow: bool) -> None:
        def work(conn):
            # A row beside the generation counter: no migration, and one transaction.
            if not conn.execute(
                access_counters.update()
                .where(access_counters.c.name == REGISTRATION_ROW)
                .values(value=int(allow))
            ).rowcount:
                conn.execute(access_counters.insert().values(name=REGISTRATION_ROW, value=int(allow)))

        self._write(work)

    def pending_user_hashes(self) -> dict[str, str]:
        rows = self._run(lambda c: c.execute(sa.select(pending_users)).all())
        return {row.username: row.password_hash for row in rows}

    def add_pending_user(self, username: str, password_hash: str, *, limit: int) -> None:
        check_name("user", username)
        check_hash(password_hash, username)

        def work(conn):
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first():
                raise AccessConflict(f"User {username!r} exists already")
            if conn.execute(
                sa.select(pending_users.c.username).where(pending_users.c.username == username)
            ).first():
                raise AccessConflict(f"User {username!r} has signed up already and waits for an admin")
            waiting = conn.execute(sa.select(sa.func.count()).select_from(pending_users)).scalar_one()
            if waiting >= limit:
                raise PendingQueueFull(
                    f"{waiting} sign-ups are waiting for an admin already; try again later"
                )
            conn.execute(pending_users.insert().values(username=username, password_hash=password_hash))

        self._write(work)

    def reject_pending_user(self, username: str) -> None:
        def work(conn):
            if not conn.execute(pending_users.delete().where(pending_users.c.username == username)).rowcount:
                raise AccessConflict(f"No such pending user: {username!r}")

        self._write(work)

    def approve_user(self, username: str) -> None:
        """Turn a pending 1.x sign-up into a user (not an admin), as 1.x's approve did."""

        def work(conn):
            row = conn.execute(sa.select(pending_users).where(pending_users.c.username == username)).first()
            if row is None:
                raise AccessConflict(f"No such pending user: {username!r}")
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first():
                raise AccessConflict(
                    f"User {username!r} exists already (an admin created it meanwhile); reject the sign-up"
                )
            conn.execute(pending_users.delete().where(pending_users.c.username == username))
            conn.execute(
                users.insert().values(username=username, password_hash=row.password_hash, admin=False)
            )

        self._write(work)
