"""A guard that fails any test opening a network connection beyond this host.

Tests talk to servers on loopback only (moto, the emulators, PostgreSQL, Redis,
our own waitress). The guard wraps ``socket.socket.connect``/``connect_ex`` and
the results of ``socket.getaddrinfo``: an address outside 127.0.0.0/8 and ::1
(or the unspecified address, which reaches this host) is refused with an
OSError, so the code under test sees an unreachable network, and the attempt is
recorded so the test fails at teardown even when the code swallowed the error.
Unix sockets are always allowed. Subprocesses (pip, twine, servers) are not
covered: they get no route out by their own configuration.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable

ALLOWED_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class NonLoopbackConnection(OSError):
    """A test tried to reach a host other than this one."""


_attempts: list[str] = []
# The resolver the guard checks the answers of (a module global, so a test can stand in for DNS).
_real_getaddrinfo = socket.getaddrinfo
_lock = threading.Lock()


def _is_local(host: object) -> bool:
    if host is None:
        return True  # a passive (bind) lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in ALLOWED_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _refuse(what: str) -> NonLoopbackConnection:
    with _lock:
        _attempts.append(what)
    return NonLoopbackConnection(f"tests may only connect to loopback, not {what}")


def take_attempts() -> list[str]:
    """The refused attempts since the last call (and forget them)."""
    with _lock:
        found = list(_attempts)
        _attempts.clear()
    return found


def install() -> Callable[[], None]:
    """Wrap the socket functions; returns a function that puts them back."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    global _real_getaddrinfo
    real_getaddrinfo = _real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: object) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if not _is_local(host):
            raise _refuse(repr(address))

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        results = _real_getaddrinfo(host, *args, **kwargs)
        for family, _, _, _, sockaddr in results:
            if family in (socket.AF_INET, socket.AF_INET6) and not _is_local(sockaddr[0]):
                raise _refuse(f"{host!r} (resolves to {sockaddr[0]})")
        return results

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo

    def uninstall() -> None:
        socket.socket.connect = real_connect
        socket.socket.connect_ex = real_connect_ex
        socket.getaddrinfo = real_getaddrinfo

    return uninstall
