"""The two listeners of ``push.py``: PostgreSQL LISTEN/NOTIFY and Redis pub/sub.

Each owns one dedicated connection, opened and used only by its listener thread,
outside the pools the request threads use.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from .push import PushedCounter

# Libpq settings of the listening connection: fail a connect that hangs, and
# notice a peer that vanished without closing the connection (keepalives, and
# unacknowledged data) within seconds rather than the kernel's default hours.
PG_CONNECTION_OPTIONS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10000,
    "application_name": "pypicloud-index-listener",
}


def pg_channel(schema: str | None) -> str:
    """The NOTIFY channel of an index: per database already, so per schema here.

    A channel name is an identifier of at most 63 bytes; a long schema name is
    replaced by its digest.
    """
    if not schema:
        return "ppc_generation"
    channel = f"ppc_generation:{schema}"
    if len(channel.encode()) > 63:
        channel = "ppc_generation:" + hashlib.sha256(schema.encode()).hexdigest()[:40]
    return channel


class PostgresListener(PushedCounter):
    """LISTEN on a psycopg 3 connection in autocommit mode.

    ``connect`` opens that connection; ``counter_sql`` reads the counter. The
    payload of each notification is the counter its transaction committed.
    """

    def __init__(self, key: Hashable, connect: Callable[[], Any], channel: str, counter_sql: str, **kw: Any):
        super().__init__(key, **kw)
        self._connect = connect
        self.channel = channel
        self._counter_sql = counter_sql
        self._conn: Any = None  # its own psycopg connection, or None

    def _subscribe(self) -> None:
        from psycopg import sql

        conn = self._conn = self._connect()
        self.connection_id = conn.info.backend_pid
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))

    def _read_truth(self) -> int:
        # Notifications that arrive with the answer wait in psycopg's backlog
        # for the next _drain.
        row = self._conn.execute(self._counter_sql).fetchone()
        return int(row[0])

    def _drain(self) -> list[str]:
        conn = self._conn
        payloads = [notify.payload for notify in conn.notifies(timeout=0)]
        if conn.closed or conn.broken:
            raise ConnectionError("the listening connection was closed")
        return payloads

    def _fileno(self) -> int:
        fileno: int = self._conn.fileno()
        return fileno

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _forget(self) -> None:
        # psycopg closes a connection on garbage collection only in the process
        # that opened it, so the parent's session survives.
        self._conn = None


def redis_channel(client: Any, prefix: str) -> str:
    """The channel of an index. Pub/sub is per server, not per database: the number is in the name."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    return f"{prefix}generation@{db}"


class RedisListener(PushedCounter):
    """SUBSCRIBE on a connection of its own, made like the client's but without retries.

    The client's connections reconnect (and a pub/sub object re-subscribes) by
    themselves; notifications published in the gap would be lost unnoticed, so
    this connection must fail loudly instead and the listener starts over.
    """

    def __init__(self, key: Hashable, client: Any, counter_key: str, channel: str, **kw: Any):
        super().__init__(key, **kw)
        self.client = client
        self.counter_key = counter_key
        self.channel = channel
        self._conn: Any = None  # its own redis connection, or None
        self._pending: list[str] = []

    def _subscribe(self) -> None:
        from redis.backoff import NoBackoff
        from redis.exceptions import ResponseError
        from redis.retry import Retry

        pool = self.client.connection_pool
        options = dict(pool.connection_kwargs)
        # RESP2: messages come back from read_response like any reply (RESP3
        # hands them to a push handler); redis-py supports maintenance
        # notifications only with RESP3, so those go too.
        for name in ("maint_notifications_pool_handler", "maint_notifications_config"):
            options.pop(name, None)
        # No health-check PING from redis-py: in subscribed mode its answer is
        # not the plain PONG it expects. _read_truth sends our own.
        options.update(protocol=2, health_check_interval=0, retry=Retry(NoBackoff(), 0))
        conn = self._conn = pool.connection_class(**options)
        conn.connect()
        conn.send_command("CLIENT", "ID")
        try:
            self.connection_id = int(conn.read_response())
        except ResponseError:  # an ACL user without CLIENT: only the logs miss it
            self.connection_id = None
        conn.send_command("SUBSCRIBE", self.channel)
        reply = conn.read_response()
        if not (isinstance(reply, list) and _text(reply[0]) == "subscribe"):
            raise ConnectionError(f"unexpected answer to SUBSCRIBE: {reply!r}")

    def _read_truth(self) -> int:
        # A PING answered on the subscribed connection proves the subscription
        # alive; the counter is read afterwards (the subscribed connection can
        # run no GET), so any later change still arrives as a message.
        token = uuid.uuid4().hex
        self._live_conn().send_command("PING", token)
        while True:
            reply = self._conn.read_response()
            kind = _text(reply[0]) if isinstance(reply, list) and reply else None
            if kind == "pong" and _text(reply[1]) == token:
                break
            self._take(reply)
        return int(self.client.get(self.counter_key) or 0)

    def _drain(self) -> list[str]:
        conn = self._live_conn()
        while conn.can_read(timeout=0):
            self._take(conn.read_response())
        payloads, self._pending = self._pending, []
        return payloads

    def _take(self, reply: object) -> None:
        if isinstance(reply, list) and len(reply) == 3 and _text(reply[0]) == "message":
            self._pending.append(_text(reply[2]))

    def _live_conn(self) -> Any:
        conn = self._conn
        # redis-py reconnects a disconnected connection on its next use; ours
        # must not come back by itself (see the class docstring).
        if conn is None or conn._sock is None:
            raise ConnectionError("the subscribed connection was closed")
        return conn

    def _fileno(self) -> int:
        fileno: int = self._live_conn()._sock.fileno()
        return fileno

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self._pending = []
        if conn is not None:
            conn.disconnect()

    def _forget(self) -> None:
        # redis-py shuts a socket down only in the process that opened it.
        self._conn = None
        self._pending = []


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
