"""``ppc-gen-password``: print a password hash for a ``user.<name> =`` ini line.

Interactive use prompts twice without echo. Piped use reads the password from
stdin, so scripts need not put it on the command line (where ``ps`` shows it)::

    printf '%s\\n' "$PASSWORD" | ppc-gen-password
"""

from __future__ import annotations

import argparse
import getpass
import sys

from ..access.passwords import SCHEMES, hash_password


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppc-gen-password",
        description="Hash a password for a user.<name> line of the pypicloud ini file. "
        "Prompts when run in a terminal, otherwise reads the password from stdin.",
    )
    parser.add_argument(
        "-s",
        "--scheme",
        choices=SCHEMES,
        default=SCHEMES[0],
        help="hash scheme (default: %(default)s, i.e. argon2id; others only for old tools)",
    )
    return parser


def _strip_one_newline(text: str) -> str:
    # Only the newline that echo/printf/a here-doc adds: any other whitespace
    # may be part of the password.
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def read_password(prog: str = "ppc-gen-password") -> str | None:
    """The password, or None (after a message on stderr) when the prompts disagree."""
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Confirm password: ")
        if first != second:
            print(f"{prog}: the passwords do not match", file=sys.stderr)
            return None
        return first
    return _strip_one_newline(sys.stdin.read() if sys.stdin is not None else "")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        password = read_password()
    except (KeyboardInterrupt, EOFError):
        print(file=sys.stderr)
        return 1
    if password is None:
        return 1
    if not password:
        print("ppc-gen-password: the password is empty", file=sys.stderr)
        return 1
    print(hash_password(password, scheme=args.scheme))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
