"""What ``ppc-make-config`` writes: the deployment shapes and the answers, validated.

:func:`gather` turns the command line (and, on a terminal, answers to prompts)
into :class:`Answers`; one small function per part of the file (storage, index,
admin, sessions, server). Nothing here writes or renders: see
:mod:`pypicloud.cli.make_config`.
"""

from __future__ import annotations

import argparse
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .. import envrefs
from ..access.passwords import hash_password
from .config_checks import (
    UsageError,
    check_env_name,
    check_literal,
    check_s3_options,
    db_from_url,
    given,
    ini_value,
    is_reference,
    normalise_db_url,
    url_has_password,
)

ADMIN_HASH_VAR = "PYPICLOUD_ADMIN_HASH"
DB_URL_VAR = "PYPICLOUD_DB_URL"
SESSION_SECRET_VAR = "PYPICLOUD_SESSION_SECRET"
DEFAULT_PORT = 6543
REDIS_DEFAULT_URL = "redis://127.0.0.1:6379/0"
NO_TTY = "stdin is not a terminal, so nothing is asked"
ADMIN_HASH_WHAT = "the password hash of {admin} (from ppc-gen-password)"
SESSION_SECRET_WHAT = "a random key of 16+ characters signing web UI logins"

# A user name that is safe as the ``<name>`` of a ``user.<name> =`` ini key.
_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@+-]{0,63}$")

__all__ = ["SHAPES", "Answers", "Shape", "UsageError", "gather"]


class Asker(Protocol):
    """Asks for a missing answer on the terminal (see ``make_config.Prompter``)."""

    def ask(self, question: str, default: str | None = None) -> str: ...

    def password(self, question: str) -> str: ...


@dataclass(frozen=True)
class Shape:
    """Defaults of one deployment shape."""

    name: str
    title: str
    host: str
    data_dir: str  # where packages and the SQLite file go by default
    threads: int
    anonymous_read: bool
    create_bucket: bool
    log_level: str
    behind_proxy: bool  # trust X-Forwarded-* from a (TLS) proxy on this host


SHAPES: dict[str, Shape] = {
    "dev": Shape(
        "dev",
        "embedded default, for development on one machine",
        "127.0.0.1",
        "%(here)s/data",
        threads=8,
        anonymous_read=True,
        create_bucket=True,
        log_level="INFO",
        behind_proxy=False,
    ),
    "prod": Shape(
        "prod",
        "single production host",
        "127.0.0.1",
        "/var/lib/pypicloud",
        threads=16,
        anonymous_read=False,
        create_bucket=False,
        log_level="WARNING",
        behind_proxy=True,
    ),
    "docker": Shape(
        "docker",
        "Docker container",
        "0.0.0.0",
        "/var/lib/pypicloud",
        threads=16,
        anonymous_read=False,
        create_bucket=False,
        log_level="WARNING",
        behind_proxy=False,
    ),
}


@dataclass
class Answers:
    """Everything the generated file depends on (validated, ready to render)."""

    shape: Shape
    storage: str = "file"  # file | s3
    storage_dir: str = ""
    bucket: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    prefix: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    db: str = "sqlite"  # sqlite | postgres | redis
    db_url: str = ""
    admin: str = "admin"
    admin_hash: str = ""  # a hash, or a ${VAR} reference
    session_secret: str = ""  # signs web UI cookies: random, or a ${VAR}
    anonymous_read: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    env_vars: dict[str, str] = field(default_factory=dict)  # VAR -> what to put in it

    @property
    def literal_secrets(self) -> bool:
        """True when the file holds a secret itself (it is then written mode 0600)."""
        values = [self.admin_hash, self.session_secret, self.aws_secret_access_key or ""]
        if url_has_password(self.db_url):
            values.append(self.db_url)
        return any(v and not envrefs.whole_reference(v) for v in values)

    def reference(self, name: str, what: str) -> str:
        """``${name}``, remembering that the admin must set ``name`` (to ``what``)."""
        self.env_vars[name] = what
        return "${%s}" % name


# ---------------------------------------------------------------------------
# Gathering, one part of the file at a time
# ---------------------------------------------------------------------------
def gather(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    prompter: Asker | None,
    hasher: Callable[[str], str] = hash_password,
) -> Answers:
    """Turn the flags (and, on a terminal, answers to prompts) into validated Answers.

    Raises UsageError for a contradiction or a required answer that is missing
    and cannot be asked for.
    """
    shape = SHAPES[args.shape]
    answers = Answers(shape=shape, host=shape.host, anonymous_read=shape.anonymous_read)
    _storage_answers(answers, args, prompter)
    _index_answers(answers, args, prompter)
    _admin_answers(answers, args, environ, prompter, hasher)
    _session_answers(answers, args)
    _server_answers(answers, args)
    # --dir too: the server expands a ${VAR} in storage.dir like in any other value.
    for value in (
        answers.storage_dir,
        answers.bucket,
        answers.endpoint_url,
        answers.prefix,
        answers.aws_access_key_id,
        answers.aws_secret_access_key,
        answers.region,
    ):
        for name in envrefs.names(value or ""):
            answers.env_vars.setdefault(name, "a storage setting")
    return answers


def _storage_answers(answers: Answers, args: argparse.Namespace, prompter: Asker | None) -> None:
    s3_flags = given(
        ("--bucket", args.bucket),
        ("--region", args.region),
        ("--endpoint-url", args.endpoint_url),
        ("--prefix", args.prefix),
        ("--aws-access-key-id", args.aws_access_key_id),
        ("--aws-secret-access-key", args.aws_secret_access_key),
    )
    answers.storage = args.storage or ("s3" if s3_flags else "file")
    if answers.storage == "s3":
        _s3_answers(answers, args, prompter)
        return
    if s3_flags:
        raise UsageError(f"{', '.join(s3_flags)} need --storage s3")
    answers.storage_dir = f"{answers.shape.data_dir}/packages"
    if args.storage_dir is not None:
        if not args.storage_dir.strip():
            raise UsageError("--dir is empty")
        answers.storage_dir = ini_value(check_literal("--dir", args.storage_dir))


def _s3_answers(answers: Answers, args: argparse.Namespace, prompter: Asker | None) -> None:
    if args.storage_dir is not None:
        raise UsageError("--dir is for --storage file; S3 uses --bucket")
    bucket = args.bucket
    if bucket is None:
        if prompter is None:
            raise UsageError(f"--storage s3 needs --bucket ({NO_TTY})")
        bucket = prompter.ask("S3 bucket")
    if not bucket:
        raise UsageError("the S3 bucket name is empty")
    if bool(args.aws_access_key_id) != bool(args.aws_secret_access_key):
        raise UsageError(
            "give both --aws-access-key-id and --aws-secret-access-key, or "
            "neither (then boto3 finds credentials in the environment, a "
            "profile or the instance role)"
        )
    raw = {
        "bucket": bucket,
        "region": args.region,
        "endpoint_url": args.endpoint_url,
        "prefix": args.prefix,
        "aws_access_key_id": args.aws_access_key_id,
        "aws_secret_access_key": args.aws_secret_access_key,
    }
    check_s3_options(raw)
    for name, value in raw.items():
        setattr(answers, name, ini_value(value))


def _index_answers(answers: Answers, args: argparse.Namespace, prompter: Asker | None) -> None:
    db = answers.db = _index_kind(args)
    if args.db_url_env is not None:
        answers.db_url = answers.reference(
            check_env_name("--db-url-env", args.db_url_env), f"the {db} URL of the index"
        )
    elif args.db_url is not None:
        answers.db_url = ini_value(normalise_db_url(db, check_literal("--db-url", args.db_url)))
    elif db == "sqlite":
        answers.db_url = f"sqlite:///{answers.shape.data_dir}/pypicloud.sqlite"
    elif db == "redis":
        answers.db_url = REDIS_DEFAULT_URL
    elif args.env_secrets:
        answers.db_url = answers.reference(
            DB_URL_VAR, "postgresql+psycopg://user:password@host:5432/pypicloud"
        )
    elif prompter is not None:
        url = prompter.ask("PostgreSQL URL (postgresql+psycopg://user:password@host:5432/db)")
        if not url:
            raise UsageError("the PostgreSQL URL is empty")
        answers.db_url = ini_value(normalise_db_url(db, check_literal("PostgreSQL URL", url)))
    else:
        raise UsageError(f"--db postgres needs --db-url, --db-url-env VAR or --env-secrets ({NO_TTY})")
    for name in envrefs.names(answers.db_url):
        answers.env_vars.setdefault(name, f"the {db} URL of the index")


def _index_kind(args: argparse.Namespace) -> str:
    """sqlite, postgres or redis: from --db, else guessed from a literal --db-url."""
    if args.db_url is not None and args.db_url_env is not None:
        raise UsageError("give --db-url or --db-url-env, not both")
    db = args.db
    if db is None and args.db_url is not None and not is_reference(args.db_url):
        db = db_from_url(args.db_url)
        if db is None:
            raise UsageError(f"--db-url {args.db_url!r}: not a postgresql://, redis:// or sqlite:/// URL")
    if db is None and (args.db_url_env is not None or args.db_url is not None):
        raise UsageError("say which database the URL is for: --db postgres or --db redis")
    return db or "sqlite"


def _admin_answers(
    answers: Answers,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    prompter: Asker | None,
    hasher: Callable[[str], str],
) -> None:
    sources = given(
        ("--password", args.password),
        ("--password-env", args.password_env),
        ("--admin-hash", args.admin_hash),
        ("--admin-hash-env", args.admin_hash_env),
    )
    if len(sources) > 1:
        raise UsageError(f"give only one of {', '.join(sources)}")
    admin = args.admin
    asking = not sources and not args.env_secrets
    if admin is None and asking and prompter is not None:
        admin = prompter.ask("Admin user name", "admin")
    admin = admin or "admin"
    if not _USER_NAME.match(admin):
        raise UsageError(
            f"admin user name {admin!r}: use letters, digits and . _ @ + - "
            "(at most 64, not starting with . @ + -)"
        )
    answers.admin = admin
    answers.admin_hash = _admin_hash(answers, args, environ, prompter, hasher)
    if args.anonymous_read is not None:
        answers.anonymous_read = args.anonymous_read


def _admin_hash(
    answers: Answers,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    prompter: Asker | None,
    hasher: Callable[[str], str],
) -> str:
    """The admin's ``user.<admin>`` value, from the one password source given."""
    admin = answers.admin
    if args.password is not None:
        return _hash_or_fail(args.password, hasher)
    if args.password_env is not None:
        name = check_env_name("--password-env", args.password_env)
        if name not in environ:
            raise UsageError(f"--password-env {name}: the variable is not set")
        return _hash_or_fail(environ[name], hasher)
    if args.admin_hash is not None:
        if not args.admin_hash.startswith("$") or is_reference(args.admin_hash):
            raise UsageError(
                "--admin-hash takes a hash from ppc-gen-password (it starts "
                "with $); use --admin-hash-env VAR for a variable"
            )
        return ini_value(check_literal("--admin-hash", args.admin_hash))
    if args.admin_hash_env is not None:
        name = check_env_name("--admin-hash-env", args.admin_hash_env)
        return answers.reference(name, ADMIN_HASH_WHAT.format(admin=admin))
    if args.env_secrets:
        return answers.reference(ADMIN_HASH_VAR, ADMIN_HASH_WHAT.format(admin=admin))
    if prompter is not None:
        return _hash_or_fail(prompter.password(f"Password for {admin}"), hasher)
    raise UsageError(
        f"no password for the admin user {admin!r}: give --password-env VAR, "
        f"--password, --admin-hash, --admin-hash-env VAR or --env-secrets "
        f"({NO_TTY})"
    )


def _hash_or_fail(password: str, hasher: Callable[[str], str]) -> str:
    if not password:
        raise UsageError("the admin password is empty")
    return hasher(password)


def _session_answers(answers: Answers, args: argparse.Namespace) -> None:
    # Web UI sessions: one key shared by every process, so logins survive restarts.
    if args.session_secret_env is not None:
        name = check_env_name("--session-secret-env", args.session_secret_env)
        answers.session_secret = answers.reference(name, SESSION_SECRET_WHAT)
    elif args.env_secrets:
        answers.session_secret = answers.reference(SESSION_SECRET_VAR, SESSION_SECRET_WHAT)
    else:
        answers.session_secret = secrets.token_urlsafe(32)


def _server_answers(answers: Answers, args: argparse.Namespace) -> None:
    if args.host is not None:
        host = args.host.strip().strip("[]")
        if not host or not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
            raise UsageError(f"--host {args.host!r}: an IP address or host name")
        answers.host = host
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise UsageError(f"--port {args.port}: between 1 and 65535")
        answers.port = args.port
