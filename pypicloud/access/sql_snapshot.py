"""The in-memory snapshot of the SQL access tables (``pypi.auth = sql``).

Permission checks run on every request, so :class:`pypicloud.access.sql.SQLAccess`
serves them from one immutable :class:`Snapshot` of all its tables, read here in
one transaction and replaced whenever the access change counter moves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .editable import TokenInfo
from .schema import access_counters, group_grants, groups, memberships, tokens, user_grants, users

# (user name -> permission, group name -> permission) of one project.
Grants = tuple[dict[str, str], dict[str, str]]


def sha256_hex(text: str) -> str:
    """How a token's secret is kept: its SHA-256, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def token_info(row) -> TokenInfo:
    """A :class:`TokenInfo` from a row of the tokens table (or its values)."""
    projects = tuple(row.projects.split()) if row.projects is not None else None
    return TokenInfo(
        row.token_id,
        row.username,
        projects,
        bool(row.upload),
        row.description,
        row.created_at,
        row.expires_at,
    )


@dataclass(frozen=True)
class Snapshot:
    """Every row of the access tables, as read in one transaction."""

    generation: int
    tokens: dict[str, TokenInfo]
    token_secrets: dict[str, str]  # token id -> sha256 of the secret
    hashes: dict[str, str]
    admins: frozenset[str]  # user names with the admin flag
    admin_groups: frozenset[str]
    groups_of: dict[str, frozenset[str]]
    members: dict[str, frozenset[str]]
    grants: dict[str, Grants]


def read_generation(conn: Connection) -> int:
    """The access change counter: every write moves it."""
    return conn.execute(
        sa.select(access_counters.c.value).where(access_counters.c.name == "generation")
    ).scalar_one()


def load_snapshot(conn: Connection) -> Snapshot:
    """Read every access table into a new snapshot."""
    generation = read_generation(conn)
    hashes, admins = {}, set()
    for row in conn.execute(sa.select(users)):
        hashes[row.username] = row.password_hash
        if row.admin:
            admins.add(row.username)
    admin_groups = {r.name for r in conn.execute(sa.select(groups.c.name).where(groups.c.admin))}
    members: dict[str, set[str]] = {r.name: set() for r in conn.execute(sa.select(groups.c.name))}
    groups_of: dict[str, set[str]] = {}
    for row in conn.execute(sa.select(memberships)):
        members.setdefault(row.group_name, set()).add(row.username)
        groups_of.setdefault(row.username, set()).add(row.group_name)
    grants: dict[str, Grants] = {}
    for row in conn.execute(sa.select(user_grants)):
        grants.setdefault(row.project, ({}, {}))[0][row.username] = row.permission
    for row in conn.execute(sa.select(group_grants)):
        grants.setdefault(row.project, ({}, {}))[1][row.group_name] = row.permission
    tokens_: dict[str, TokenInfo] = {}
    secrets_: dict[str, str] = {}
    for row in conn.execute(sa.select(tokens).order_by(tokens.c.created_at)):
        tokens_[row.token_id] = token_info(row)
        secrets_[row.token_id] = row.secret_sha256
    return Snapshot(
        generation,
        tokens_,
        secrets_,
        hashes,
        frozenset(admins),
        frozenset(admin_groups),
        {u: frozenset(g) for u, g in groups_of.items()},
        {g: frozenset(m) for g, m in members.items()},
        grants,
    )
