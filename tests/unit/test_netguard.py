"""The loopback guard (tests/netguard.py) refuses what it must and lets loopback through."""

from __future__ import annotations

import socket

import pytest

from tests import netguard


@pytest.mark.parametrize(
    "family, address",
    [(socket.AF_INET, ("192.0.2.1", 443)), (socket.AF_INET6, ("2001:db8::1", 443, 0, 0))],
    ids=["ipv4", "ipv6"],
)
def test_a_connection_beyond_loopback_is_refused_and_recorded(family, address):
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        with pytest.raises(netguard.NonLoopbackConnection):
            sock.connect(address)
        with pytest.raises(netguard.NonLoopbackConnection):
            sock.connect_ex(address)
    # Taking the attempts here keeps this test from failing at teardown, which is
    # what happens to any other test that tries.
    attempts = netguard.take_attempts()
    assert len(attempts) == 2 and all(address[0] in a for a in attempts)


def test_a_name_resolving_beyond_loopback_is_refused(monkeypatch):
    def resolve(host, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.7", 80))]

    monkeypatch.setattr(netguard, "_real_getaddrinfo", resolve)  # stands in for DNS
    with pytest.raises(netguard.NonLoopbackConnection, match="203.0.113.7"):
        socket.getaddrinfo("somewhere.invalid", 80)
    assert len(netguard.take_attempts()) == 1


def test_loopback_connections_pass():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with socket.create_connection(("localhost", port), timeout=5):
            pass
    assert netguard.take_attempts() == []
