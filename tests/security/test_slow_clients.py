"""Item 7: idle half-open connections must not block other clients (slowloris).

The review's attack: 105 connections that send part of a request header and
wait; with waitress' defaults (100 connections) every other client then
waited in vain. This runs a real waitress process with the ``[server:main]``
limits of the shipped development.ini (its address and port aside).
"""

from __future__ import annotations

import configparser
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IDLE_CONNECTIONS = 105


def shipped_limits() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "development.ini")
    server = dict(parser["server:main"])
    for key in ("use", "host", "port", "listen"):
        server.pop(key, None)
    return server


def test_idle_connections_do_not_block_other_clients(server_factory):
    server = server_factory(server=shipped_limits())
    idle = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            conn.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            idle.append(conn)
        status, _, _ = server.request("GET", "/health", timeout=10)
        assert status == 200
    finally:
        for conn in idle:
            conn.close()
