"""WSGI middleware that answers requests the framework cannot even decode.

A percent-escape that is not UTF-8 in the path or query string (``/simple/%ff/``)
makes WebOb raise while building the request, before any view or exception view
runs. Such a request is the client's fault: answer 400 here instead of a 5xx.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes


def _undecodable(environ) -> str | None:
    for key in ("PATH_INFO", "SCRIPT_NAME", "QUERY_STRING"):
        value = environ.get(key, "")
        # Fast path for nearly every request: pure ASCII is valid UTF-8, and without
        # a percent sign the query string decodes to itself.
        if value.isascii() and (key != "QUERY_STRING" or "%" not in value):
            continue
        try:
            # WSGI carries these as latin-1 str of the raw bytes (PEP 3333).
            raw = value.encode("latin-1")
            if key == "QUERY_STRING":
                raw = unquote_to_bytes(raw.replace(b"+", b" "))
            raw.decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return key
    return None


class RejectUndecodable:
    """Answer 400 to requests whose path or query string is not UTF-8."""

    def __init__(self, app):
        self.app = app
        # Keep the Pyramid registry reachable for tests and tools.
        self.registry = getattr(app, "registry", None)

    def __call__(self, environ, start_response):
        where = _undecodable(environ)
        if where is None:
            return self.app(environ, start_response)
        body = f"Bad request: the {where.lower().replace('_', ' ')} is not valid UTF-8\n".encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [body]
