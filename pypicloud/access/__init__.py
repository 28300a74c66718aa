"""Access backends: users, groups, admins and per-project grants (SPEC section 8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plugins import build
from .base import AUTHENTICATED, EVERYONE, AccessBackend

if TYPE_CHECKING:
    from ..settings import Settings

ALIASES = {
    "config": "pypicloud.access.config.ConfigAccess",
    "sql": "pypicloud.access.sql.SQLAccess",
    "ldap": "pypicloud.access.ldap.LDAPAccess",
    "remote": "pypicloud.access.remote.RemoteAccess",
    "aws_secrets_manager": "pypicloud.access.aws_secrets_manager.SecretsManagerAccess",
    # pypicloud 1.x's dotted names
    "pypicloud.access.configaccessbackend": "pypicloud.access.config.ConfigAccess",
    "pypicloud.access.config.configaccessbackend": "pypicloud.access.config.ConfigAccess",
    "pypicloud.access.sqlaccessbackend": "pypicloud.access.sql.SQLAccess",
    "pypicloud.access.sql.sqlaccessbackend": "pypicloud.access.sql.SQLAccess",
    "pypicloud.access.ldapaccessbackend": "pypicloud.access.ldap.LDAPAccess",
    "pypicloud.access.ldap_.ldapaccessbackend": "pypicloud.access.ldap.LDAPAccess",
    "pypicloud.access.remoteaccessbackend": "pypicloud.access.remote.RemoteAccess",
    "pypicloud.access.remote.remoteaccessbackend": "pypicloud.access.remote.RemoteAccess",
    "pypicloud.access.awssecretsmanageraccessbackend": "pypicloud.access.aws_secrets_manager.SecretsManagerAccess",
    "pypicloud.access.aws_secrets_manager.awssecretsmanageraccessbackend": "pypicloud.access.aws_secrets_manager.SecretsManagerAccess",
}


def access_from_settings(settings: Settings) -> AccessBackend:
    """Build the access backend named by ``pypi.auth`` (default ``config``)."""
    return build(settings, "pypi.auth", "config", ALIASES, AccessBackend)


__all__ = ["ALIASES", "AUTHENTICATED", "EVERYONE", "AccessBackend", "access_from_settings"]
