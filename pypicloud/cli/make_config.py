"""``ppc-make-config``: write a complete, commented ini file for a deployment shape.

Three shapes (SPEC section 2), chosen with one flag:

``--dev`` (the default)
    the embedded default: file storage and a SQLite index in ``data/`` beside the
    ini, users in the ini, waitress on 127.0.0.1:6543, anonymous read.
``--prod``
    one production host: data under ``/var/lib/pypicloud``, waitress on
    127.0.0.1:6543 behind a reverse proxy on the same host, login required to read.
``--docker``
    a container: like ``--prod`` but listening on 0.0.0.0 with everything under
    the image's volume ``/var/lib/pypicloud``.

Every answer has a flag; on a terminal the tool asks for the required ones that
were not given (the admin's password, an S3 bucket, a PostgreSQL URL). Without a
terminal it never asks: a missing answer is an error (exit code 2).

Exit codes: 0 written, 1 the output file exists (without ``--force``) or cannot
be written, 2 bad usage or a missing answer.
"""

from __future__ import annotations

import argparse
import configparser
import errno
import getpass
import os
import re
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..access.passwords import hash_password
from ..errors import ConfigError
from ..settings import Settings

PROG = "ppc-make-config"
ADMIN_HASH_VAR = "PYPICLOUD_ADMIN_HASH"
DB_URL_VAR = "PYPICLOUD_DB_URL"
SESSION_SECRET_VAR = "PYPICLOUD_SESSION_SECRET"
DEFAULT_PORT = 6543
REDIS_DEFAULT_URL = "redis://127.0.0.1:6379/0"

# A user name that is safe as the ``<name>`` of a ``user.<name> =`` ini key.
_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@+-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A value that is (only) a reference to an environment variable: $NAME or ${NAME}.
_ENV_REFERENCE = re.compile(r"^\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})$")
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UsageError(Exception):
    """A missing or contradictory answer: reported on stderr, exit code 2."""


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
        if _url_has_password(self.db_url):
            values.append(self.db_url)
        return any(v and not _ENV_REFERENCE.match(v) for v in values)


def _url_has_password(url: str) -> bool:
    # user:password@ in the URL, or a password query parameter (both libpq and
    # redis-py read ?password=...).
    return bool(
        re.match(r"^[A-Za-z0-9+.-]+://[^/@]*:[^/@]*@", url) or re.search(r"[?&]password=", url, re.IGNORECASE)
    )


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a complete, commented pypicloud ini file for a deployment shape. "
        "On a terminal, required answers that are not given as flags are asked for; "
        "otherwise they are an error. A value written as ${VAR} is put into the file as "
        "a reference to the environment variable VAR (read when the server starts).",
        epilog="Exit codes: 0 written, 1 the file exists (use --force) or cannot be "
        "written, 2 bad usage or a missing answer.",
    )
    parser.add_argument(
        "output",
        metavar="OUTPUT.ini",
        nargs="?",
        default="-",
        help="the file to write ('-' or left out: stdout, as in pypicloud 1.x)",
    )
    shapes = parser.add_argument_group("deployment shape (one of; default --dev)")
    exclusive = shapes.add_mutually_exclusive_group()
    exclusive.add_argument(
        "-d",
        "-t",
        "--dev",
        dest="shape",
        action="store_const",
        const="dev",
        help="embedded default: file storage and SQLite in data/ beside "
        "the ini, waitress on 127.0.0.1:6543, anyone may read",
    )
    exclusive.add_argument(
        "-p",
        "--prod",
        dest="shape",
        action="store_const",
        const="prod",
        help="single production host: data in /var/lib/pypicloud, "
        "127.0.0.1:6543 behind a reverse proxy, login required to read",
    )
    exclusive.add_argument(
        "-r",
        "--docker",
        dest="shape",
        action="store_const",
        const="docker",
        help="container: listens on 0.0.0.0:6543, data in the volume "
        "/var/lib/pypicloud, login required to read",
    )
    parser.set_defaults(shape="dev")
    # pypicloud 1.x's flags are kept above: -d (development) and -t (testing)
    # are both the dev shape, -p production, -r the docker image.

    storage = parser.add_argument_group("storage")
    storage.add_argument(
        "--storage",
        choices=("file", "s3"),
        help="where package files live (default: file; s3 when --bucket is given)",
    )
    storage.add_argument(
        "--dir",
        dest="storage_dir",
        metavar="DIR",
        help="file storage folder; a relative path is relative to the ini "
        "file's folder (default: <data>/packages)",
    )
    storage.add_argument("--bucket", help="S3 bucket (required for --storage s3)")
    storage.add_argument("--region", help="S3 region (the bucket is created there if missing and allowed)")
    storage.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, Ceph, ...)")
    storage.add_argument("--prefix", help="string put before every S3 key, e.g. packages/")
    storage.add_argument(
        "--aws-access-key-id",
        metavar="ID",
        help="S3 access key id (default: boto3's chain: environment, profile, instance role)",
    )
    storage.add_argument(
        "--aws-secret-access-key", metavar="SECRET", help="S3 secret key; prefer '${VAR}' or the environment"
    )

    index = parser.add_argument_group("metadata index")
    index.add_argument(
        "--db",
        choices=("sqlite", "postgres", "redis"),
        help="index database (default: sqlite beside the data; guessed from --db-url when given)",
    )
    index.add_argument(
        "--db-url",
        metavar="URL",
        help="SQLAlchemy URL (postgresql+psycopg://user:pw@host/db) or redis:// URL",
    )
    index.add_argument(
        "--db-url-env", metavar="VAR", help="write db.url = ${VAR}: the URL is read from VAR at start-up"
    )

    access = parser.add_argument_group("admin user (users in the ini)")
    access.add_argument("--admin", metavar="USER", help="admin user name (default: admin)")
    access.add_argument(
        "--password",
        help="admin password, hashed with argon2id (visible "
        "to other users of this machine in the process list: prefer "
        "--password-env or the prompt)",
    )
    access.add_argument(
        "--password-env",
        metavar="VAR",
        help="read the admin password from environment variable VAR now and write its argon2id hash",
    )
    access.add_argument(
        "--admin-hash", metavar="HASH", help="an existing hash (from ppc-gen-password) for the admin"
    )
    access.add_argument(
        "--admin-hash-env",
        metavar="VAR",
        help="write user.<admin> = ${VAR}: the hash is read from VAR at start-up",
    )
    access.add_argument(
        "--anonymous-read",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="may anyone read without logging in? (default: yes for --dev, no otherwise)",
    )

    secrets_group = parser.add_argument_group("secrets")
    secrets_group.add_argument(
        "--env-secrets",
        action="store_true",
        help=f"secrets not given otherwise are written as environment "
        f"references (${{{ADMIN_HASH_VAR}}}, ${{{SESSION_SECRET_VAR}}}, "
        f"${{{DB_URL_VAR}}}) instead of being asked for or generated",
    )
    secrets_group.add_argument(
        "--session-secret-env",
        metavar="VAR",
        help="write session.secret = ${VAR} (the key signing web UI "
        "logins; default: a random key written into the file)",
    )

    server = parser.add_argument_group("server")
    server.add_argument(
        "--host", help="address waitress listens on (default: 127.0.0.1; 0.0.0.0 for --docker)"
    )
    server.add_argument("--port", type=int, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite OUTPUT.ini if it exists")
    return parser


class Prompter:
    """Asks for missing answers on the terminal (built only when stdin is one)."""

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream

    def ask(self, question: str, default: str | None = None) -> str:
        suffix = f" [{default}]" if default else ""
        self.stream.write(f"{question}{suffix}: ")
        self.stream.flush()
        answer = sys.stdin.readline()
        if not answer:
            raise EOFError
        return answer.strip() or (default or "")

    def password(self, question: str) -> str:
        first = getpass.getpass(f"{question}: ")
        second = getpass.getpass("Confirm password: ")
        if first != second:
            raise UsageError("the passwords do not match")
        return first


def _check_env_name(flag: str, name: str) -> str:
    if not _ENV_NAME.match(name):
        raise UsageError(f"{flag} {name!r}: not an environment variable name")
    return name


def _check_literal(what: str, value: str) -> str:
    """Check a value given on the command line for one ini line; return it unchanged."""
    if "\n" in value or "\r" in value:
        raise UsageError(f"{what}: line breaks are not allowed")
    if value != value.strip():
        raise UsageError(f"{what}: leading or trailing spaces are not allowed")
    return value


def _ini(value: str | None) -> str | None:
    """A literal value as the ini must spell it (PasteDeploy reads % as interpolation)."""
    return None if value is None else value.replace("%", "%%")


def _env_references(value: str) -> list[str]:
    whole = _ENV_REFERENCE.match(value)
    if whole:
        return [whole.group(1) or whole.group(2)]
    return _BRACED.findall(value)


def _is_reference(value: str | None) -> bool:
    return bool(value) and bool(_ENV_REFERENCE.match(value or ""))


def _db_from_url(url: str) -> str | None:
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith(("postgresql", "postgres")):
        return "postgres"
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme.startswith("sqlite"):
        return "sqlite"
    return None


def _normalise_db_url(db: str, url: str) -> str:
    if _is_reference(url):
        return url  # checked when the server starts
    kind = _db_from_url(url)
    if kind is None:
        raise UsageError(f"--db-url {url!r}: not a postgresql://, redis:// or sqlite:/// URL")
    if kind != db:
        raise UsageError(f"--db-url {url!r} is a {kind} URL but --db is {db}")
    if db == "postgres":
        # The installed driver is psycopg 3; a bare postgresql:// would ask for psycopg2.
        url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)
    return url


def gather(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    prompter: Prompter | None,
    hasher: Callable[[str], str] = hash_password,
) -> Answers:
    """Turn the flags (and, on a terminal, answers to prompts) into validated Answers.

    Raises UsageError for a contradiction or a required answer that is missing
    and cannot be asked for.
    """
    shape = SHAPES[args.shape]
    answers = Answers(shape=shape, host=shape.host, anonymous_read=shape.anonymous_read)
    no_tty = "stdin is not a terminal, so nothing is asked"

    # Storage ----------------------------------------------------------------
    s3_flags = [
        f
        for f, v in (
            ("--bucket", args.bucket),
            ("--region", args.region),
            ("--endpoint-url", args.endpoint_url),
            ("--prefix", args.prefix),
            ("--aws-access-key-id", args.aws_access_key_id),
            ("--aws-secret-access-key", args.aws_secret_access_key),
        )
        if v is not None
    ]
    storage = args.storage or ("s3" if s3_flags else "file")
    answers.storage = storage
    if storage == "file":
        if s3_flags:
            raise UsageError(f"{', '.join(s3_flags)} need --storage s3")
        answers.storage_dir = f"{shape.data_dir}/packages"
        if args.storage_dir is not None:
            if not args.storage_dir.strip():
                raise UsageError("--dir is empty")
            answers.storage_dir = _ini(_check_literal("--dir", args.storage_dir))
    else:
        if args.storage_dir is not None:
            raise UsageError("--dir is for --storage file; S3 uses --bucket")
        bucket = args.bucket
        if bucket is None:
            if prompter is None:
                raise UsageError(f"--storage s3 needs --bucket ({no_tty})")
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
        _check_s3_options(raw)
        answers.bucket = _ini(bucket)
        answers.region = _ini(args.region)
        answers.endpoint_url = _ini(args.endpoint_url)
        answers.prefix = _ini(args.prefix)
        answers.aws_access_key_id = _ini(args.aws_access_key_id)
        answers.aws_secret_access_key = _ini(args.aws_secret_access_key)

    # Index ------------------------------------------------------------------
    if args.db_url is not None and args.db_url_env is not None:
        raise UsageError("give --db-url or --db-url-env, not both")
    db = args.db
    if db is None and args.db_url is not None and not _is_reference(args.db_url):
        db = _db_from_url(args.db_url)
        if db is None:
            raise UsageError(f"--db-url {args.db_url!r}: not a postgresql://, redis:// or sqlite:/// URL")
    if db is None and (args.db_url_env is not None or args.db_url is not None):
        raise UsageError("say which database the URL is for: --db postgres or --db redis")
    db = db or "sqlite"
    answers.db = db
    if args.db_url_env is not None:
        answers.db_url = "${%s}" % _check_env_name("--db-url-env", args.db_url_env)
        answers.env_vars[args.db_url_env] = f"the {db} URL of the index"
    elif args.db_url is not None:
        answers.db_url = _ini(_normalise_db_url(db, _check_literal("--db-url", args.db_url)))
    elif db == "sqlite":
        answers.db_url = f"sqlite:///{shape.data_dir}/pypicloud.sqlite"
    elif db == "redis":
        answers.db_url = REDIS_DEFAULT_URL
    elif args.env_secrets:
        answers.db_url = "${%s}" % DB_URL_VAR
        answers.env_vars[DB_URL_VAR] = "postgresql+psycopg://user:password@host:5432/pypicloud"
    elif prompter is not None:
        url = prompter.ask("PostgreSQL URL (postgresql+psycopg://user:password@host:5432/db)")
        if not url:
            raise UsageError("the PostgreSQL URL is empty")
        answers.db_url = _ini(_normalise_db_url(db, _check_literal("PostgreSQL URL", url)))
    else:
        raise UsageError(f"--db postgres needs --db-url, --db-url-env VAR or --env-secrets ({no_tty})")
    for name in _env_references(answers.db_url):
        answers.env_vars.setdefault(name, f"the {db} URL of the index")

    # Admin ------------------------------------------------------------------
    sources = [
        f
        for f, v in (
            ("--password", args.password),
            ("--password-env", args.password_env),
            ("--admin-hash", args.admin_hash),
            ("--admin-hash-env", args.admin_hash_env),
        )
        if v is not None
    ]
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
    if args.password is not None:
        answers.admin_hash = _hash_or_fail(args.password, hasher)
    elif args.password_env is not None:
        name = _check_env_name("--password-env", args.password_env)
        if name not in environ:
            raise UsageError(f"--password-env {name}: the variable is not set")
        answers.admin_hash = _hash_or_fail(environ[name], hasher)
    elif args.admin_hash is not None:
        if not args.admin_hash.startswith("$") or _is_reference(args.admin_hash):
            raise UsageError(
                "--admin-hash takes a hash from ppc-gen-password (it starts "
                "with $); use --admin-hash-env VAR for a variable"
            )
        answers.admin_hash = _ini(_check_literal("--admin-hash", args.admin_hash))
    elif args.admin_hash_env is not None:
        name = _check_env_name("--admin-hash-env", args.admin_hash_env)
        answers.admin_hash = "${%s}" % name
        answers.env_vars[name] = f"the password hash of {admin} (from ppc-gen-password)"
    elif args.env_secrets:
        answers.admin_hash = "${%s}" % ADMIN_HASH_VAR
        answers.env_vars[ADMIN_HASH_VAR] = f"the password hash of {admin} (from ppc-gen-password)"
    elif prompter is not None:
        answers.admin_hash = _hash_or_fail(prompter.password(f"Password for {admin}"), hasher)
    else:
        raise UsageError(
            f"no password for the admin user {admin!r}: give --password-env VAR, "
            f"--password, --admin-hash, --admin-hash-env VAR or --env-secrets "
            f"({no_tty})"
        )
    if args.anonymous_read is not None:
        answers.anonymous_read = args.anonymous_read

    # Web UI sessions: one key shared by every process, so logins survive restarts.
    if args.session_secret_env is not None:
        name = _check_env_name("--session-secret-env", args.session_secret_env)
        answers.session_secret = "${%s}" % name
        answers.env_vars[name] = "a random key of 16+ characters signing web UI logins"
    elif args.env_secrets:
        answers.session_secret = "${%s}" % SESSION_SECRET_VAR
        answers.env_vars[SESSION_SECRET_VAR] = "a random key of 16+ characters signing web UI logins"
    else:
        answers.session_secret = secrets.token_urlsafe(32)

    # Server -----------------------------------------------------------------
    if args.host is not None:
        host = args.host.strip().strip("[]")
        if not host or not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
            raise UsageError(f"--host {args.host!r}: an IP address or host name")
        answers.host = host
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise UsageError(f"--port {args.port}: between 1 and 65535")
        answers.port = args.port
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
        for name in _env_references(value or ""):
            answers.env_vars.setdefault(name, "a storage setting")
    return answers


def _hash_or_fail(password: str, hasher: Callable[[str], str]) -> str:
    if not password:
        raise UsageError("the admin password is empty")
    return hasher(password)


def _check_s3_options(raw: Mapping[str, str | None]) -> None:
    """Check the S3 values as the server will at start-up (without contacting S3).

    Values holding ${VAR} references are replaced by a plausible stand-in: the
    server checks the real value when it starts.
    """
    keys = {
        "bucket": "storage.bucket",
        "region": "storage.region_name",
        "endpoint_url": "storage.endpoint_url",
        "prefix": "storage.prefix",
        "aws_access_key_id": "storage.aws_access_key_id",
        "aws_secret_access_key": "storage.aws_secret_access_key",
    }
    stand_ins = {"bucket": "placeholder-bucket", "endpoint_url": "http://placeholder"}
    settings = {"pypi.storage": "s3"}
    for name, value in raw.items():
        if value is None:
            continue
        _check_literal("--" + name.replace("_", "-"), value)
        settings[keys[name]] = stand_ins.get(name, "placeholder") if "$" in value else value
    from ..storage.s3 import S3Storage  # boto3 is only imported for S3 configurations

    try:
        S3Storage.options_from_settings(Settings(settings, environ={}))
    except ConfigError as exc:
        raise UsageError(exc.message.replace("Invalid setting ", "")) from None


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def render(answers: Answers) -> str:
    """The ini text for ``answers`` (pure: no I/O)."""
    shape = answers.shape
    out: list[str] = []
    add = out.append
    add(f"# pypicloud configuration: {shape.title}.")
    add(f"# Written by {PROG} --{shape.name}. Every setting is described in docs/configuration.md")
    add("# and docs/storage.md. Start the server with:  pserve <this file>")
    if shape.name == "docker":
        add("# In the pypicloud image: mount this file at /etc/pypicloud/config.ini and a volume")
        add("# at /var/lib/pypicloud (owned by the image's pypicloud user).")
    add("# Every key can be overridden by an environment variable PPC_<KEY> (storage.bucket")
    add("# -> PPC_STORAGE_BUCKET); a value ${NAME} is read from the environment at start-up.")
    if answers.env_vars:
        add("#")
        add("# Set these environment variables before starting the server:")
        for name, what in sorted(answers.env_vars.items()):
            add(f"#   {name}: {what}")
    add("")
    add("[app:main]")
    add("use = egg:pypicloud")
    add("")
    add("# --- Storage: where package files live (the source of truth) ---")
    if answers.storage == "file":
        add("pypi.storage = file")
        add("# A relative path is relative to the folder of this file.")
        add(f"storage.dir = {answers.storage_dir}")
    else:
        add("pypi.storage = s3")
        add(f"storage.bucket = {answers.bucket}")
        if answers.region:
            add(f"storage.region_name = {answers.region}")
        else:
            add("# storage.region_name = eu-west-1")
        if answers.endpoint_url:
            add("# An S3-compatible service instead of AWS:")
            add(f"storage.endpoint_url = {answers.endpoint_url}")
        else:
            add("# storage.endpoint_url = http://127.0.0.1:9000")
        if answers.aws_access_key_id:
            add(f"storage.aws_access_key_id = {answers.aws_access_key_id}")
            add(f"storage.aws_secret_access_key = {answers.aws_secret_access_key}")
        else:
            add("# Credentials: boto3's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the")
            add("# environment, a profile, or the instance role).")
            add("# storage.aws_access_key_id = ${AWS_ACCESS_KEY_ID}")
            add("# storage.aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}")
        if answers.prefix:
            add(f"storage.prefix = {answers.prefix}")
        else:
            add("# storage.prefix = packages/")
        if shape.create_bucket:
            add("# A missing bucket is created; false = start-up fails instead (safer).")
            add("storage.create_bucket = true")
        else:
            add("# Create the bucket beforehand: a typo in its name then stops start-up instead")
            add("# of creating a new bucket.")
            add("storage.create_bucket = false")
        add("# Links point at this server, which redirects to a signed URL (reused until less")
        add("# than buffer_time seconds are left).")
        add("storage.redirect_urls = true")
        add("storage.expire_after = 86400")
        add("storage.buffer_time = 600")
        add("# storage.server_side_encryption = AES256")
        add("# storage.storage_class = STANDARD_IA")
    add("")
    add('# --- Metadata index ("the cache"): rebuilt from storage with ppc-reindex ---')
    if answers.db == "redis":
        add("pypi.db = redis")
        add(f"db.url = {answers.db_url}")
        add("# Key prefix, so several deployments can share one Redis.")
        add("db.prefix = pypicloud:")
    else:
        add("pypi.db = sql")
        if answers.db == "sqlite":
            add("# SQLite (WAL mode); the file and its folder are created at start-up.")
        else:
            add("# PostgreSQL (driver: psycopg 3, installed with the 'postgres' extra).")
        add(f"db.url = {answers.db_url}")
        if answers.db == "postgres":
            add("# At least the waitress thread count.")
            add(f"db.pool_size = {shape.threads}")
            add("db.max_overflow = 8")
    add("# Rebuild by diffing (keeps serving during ppc-reindex) instead of replacing.")
    add("# db.graceful_reload = true")
    add("")
    add("# --- Access: users in this file (hashes from ppc-gen-password) ---")
    add("pypi.auth = config")
    add(f"auth.admins = {answers.admin}")
    add(f"user.{answers.admin} = {answers.admin_hash}")
    add("# More users, groups and per-project grants:")
    add("# user.alice = <hash from ppc-gen-password>")
    add("# group.developers = alice")
    add("# package.my-project.group.developers = rw")
    if answers.anonymous_read:
        add("# Anyone may read (pip install without a password); authenticated = login required.")
        add("pypi.default_read = everyone")
    else:
        add("# Reading needs a login; everyone = anonymous read.")
        add("pypi.default_read = authenticated")
    add("# Groups that may upload to every project (empty: admins and grants only).")
    add("pypi.default_write =")
    add("pypi.allow_overwrite = false")
    add("")
    add("# --- Web UI logins: signed cookies. Every process needs the same secret. ---")
    add(f"session.secret = {answers.session_secret}")
    if shape.behind_proxy:
        add("# The proxy serves HTTPS: the cookie is only sent over it.")
        add("session.secure = true")
    else:
        add("# Behind HTTPS, send the cookie only over it:")
        add("# session.secure = true")
    add("")
    add("# --- Serving ---")
    add("pypi.max_upload_size = 1G")
    add("# Requests for projects that are not here: none | redirect | cache (pull-through).")
    add("pypi.fallback = none")
    add("# pypi.fallback_base_url = https://upstream.example/simple/")
    add("")
    add("[server:main]")
    add("use = egg:waitress#main")
    add(f"listen = {_listen(answers.host, answers.port)}")
    add(f"threads = {shape.threads}")
    add("# Uploads larger than this are buffered to disk by waitress.")
    add("inbuf_overflow = 1048576")
    add("max_request_body_size = 2147483648")
    if shape.behind_proxy:
        add("# A reverse proxy on this host (TLS) sets X-Forwarded-*; links then use its URL.")
        add("trusted_proxy = 127.0.0.1")
        add("trusted_proxy_headers = x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port")
        add("clear_untrusted_proxy_headers = true")
    else:
        add("# Behind a reverse proxy or load balancer, trust its X-Forwarded-* headers:")
        add("# trusted_proxy = 10.0.0.1")
        add("# trusted_proxy_headers = x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port")
    add("")
    add("# --- Logging (to stderr) ---")
    add("[loggers]")
    add("keys = root, pypicloud")
    add("")
    add("[handlers]")
    add("keys = console")
    add("")
    add("[formatters]")
    add("keys = generic")
    add("")
    add("[logger_root]")
    add(f"level = {shape.log_level}")
    add("handlers = console")
    add("")
    add("[logger_pypicloud]")
    add("level = INFO")
    add("handlers =")
    add("qualname = pypicloud")
    add("")
    add("[handler_console]")
    add("class = StreamHandler")
    add("args = (sys.stderr,)")
    add("level = NOTSET")
    add("formatter = generic")
    add("")
    add("[formatter_generic]")
    add("format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def write_file(path: str, text: str, *, force: bool, private: bool) -> None:
    """Write ``text`` to ``path`` atomically; refuse an existing file unless ``force``.

    Raises FileExistsError (without force) or OSError.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        # A file where the folder should be: not "the output exists" (--force cannot help).
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder) from None
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # never replaces: an existing file stays as it is
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_parses(text: str) -> None:
    """Guard against a rendering mistake: the text must parse as the server parses it."""
    parser = configparser.ConfigParser(defaults={"here": "/"}, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string(text)
    if not parser.has_section("app:main") or not parser.has_section("server:main"):
        raise RuntimeError("generated file lacks [app:main] or [server:main]")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interactive = sys.stdin is not None and sys.stdin.isatty()
    to_stdout = args.output == "-"
    if not to_stdout and os.path.exists(args.output) and not args.force:
        print(f"{PROG}: {args.output} exists; use --force to overwrite it", file=sys.stderr)
        return 1
    try:
        answers = gather(args, os.environ, Prompter() if interactive else None)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EOFError):
        print(f"\n{PROG}: cancelled, nothing written", file=sys.stderr)
        return 2
    text = render(answers)
    check_parses(text)
    if to_stdout:
        sys.stdout.write(text)
    else:
        try:
            write_file(args.output, text, force=args.force, private=answers.literal_secrets)
        except FileExistsError:
            print(f"{PROG}: {args.output} exists; use --force to overwrite it", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"{PROG}: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(
            f"{PROG}: wrote {args.output}: {answers.shape.title}, admin user {answers.admin!r}",
            file=sys.stderr,
        )
    for name, what in sorted(answers.env_vars.items()):
        print(f"{PROG}: set {name} before starting the server: {what}", file=sys.stderr)
    if not to_stdout:
        print(f"{PROG}: start the server with: pserve {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
