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
import functools
import getpass
import os
import secrets
import sys

import jinja2

from .config_answers import (
    ADMIN_HASH_VAR,
    DB_URL_VAR,
    DEFAULT_PORT,
    REDIS_DEFAULT_URL,
    SESSION_SECRET_VAR,
    SHAPES,
    Answers,
    Shape,
    UsageError,
    gather,
)

PROG = "ppc-make-config"
# The generated file, a template shipped in the wheel (package data).
TEMPLATE = "cli/config.ini.jinja2"

__all__ = [
    "ADMIN_HASH_VAR",
    "DB_URL_VAR",
    "DEFAULT_PORT",
    "PROG",
    "REDIS_DEFAULT_URL",
    "SESSION_SECRET_VAR",
    "SHAPES",
    "Answers",
    "Prompter",
    "Shape",
    "UsageError",
    "build_parser",
    "check_parses",
    "gather",
    "main",
    "render",
    "write_file",
]


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
    for add_flags in (_shape_flags, _storage_flags, _index_flags, _admin_flags, _secret_flags, _server_flags):
        add_flags(parser)
    return parser


def _shape_flags(parser: argparse.ArgumentParser) -> None:
    """--dev, --prod, --docker (and pypicloud 1.x's -d, -t, -p, -r)."""
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


def _storage_flags(parser: argparse.ArgumentParser) -> None:
    """Where package files live: a folder or an S3 bucket."""
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


def _index_flags(parser: argparse.ArgumentParser) -> None:
    """The metadata index's database."""
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


def _admin_flags(parser: argparse.ArgumentParser) -> None:
    """The admin user and where its password comes from."""
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


def _secret_flags(parser: argparse.ArgumentParser) -> None:
    """Secrets written as environment references."""
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


def _server_flags(parser: argparse.ArgumentParser) -> None:
    """What waitress listens on, and --force."""
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host", help="address waitress listens on (default: 127.0.0.1; 0.0.0.0 for --docker)"
    )
    server.add_argument("--port", type=int, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite OUTPUT.ini if it exists")


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


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
@functools.cache
def _template() -> jinja2.Template:
    # Not HTML: nothing is escaped (the values are checked to fit on one ini line),
    # and an undefined name is a bug, not an empty string.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pypicloud", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE)


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def render(answers: Answers) -> str:
    """The ini text for ``answers`` (no I/O but reading the template once)."""
    return _template().render(
        a=answers,
        shape=answers.shape,
        prog=PROG,
        env_vars=sorted(answers.env_vars.items()),
        listen=_listen(answers.host, answers.port),
    )


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
