"""Start and stop the servers under test: pypicloud, the hello-world and in-memory ceilings.

Both are served by ``pserve`` with ``egg:waitress#main`` and the same waitress
options, so the only difference between them is the WSGI app. Every server binds
127.0.0.1 on a free port, logs to a file in the work directory, and is stopped by
its own PID.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-secret"

_LOGGING = """
[loggers]
keys = root

[handlers]
keys = file

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = file

[handler_file]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def waitress_section(port: int, threads: int) -> str:
    # 4 GiB body limit: the 1 GB upload is larger than waitress's 1 GiB default.
    return (
        f"[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = {port}\n"
        f"threads = {threads}\nmax_request_body_size = 4294967296\n"
    )


def pypicloud_ini(
    path: str,
    *,
    storage_dir: str,
    db_path: str,
    port: int,
    threads: int,
    admin_hash: str,
    storage: dict[str, str] | None = None,
) -> str:
    """Write the ini of a pypicloud server (file storage unless ``storage`` says otherwise)."""
    storage = storage or {"pypi.storage": "file", "storage.dir": storage_dir}
    lines = ["[app:main]", "use = egg:pypicloud"]
    lines += [f"{k} = {v}" for k, v in storage.items()]
    lines += [
        f"db.url = sqlite:///{db_path}",
        f"auth.admins = {ADMIN_USER}",
        f"user.{ADMIN_USER} = {admin_hash}",
        "pypi.default_read = everyone",
        "pypi.max_upload_size = 2G",
        "",
    ]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n" + waitress_section(port, threads) + _LOGGING)
    return path


def hello_ini(path: str, *, port: int, threads: int) -> str:
    with open(path, "w") as handle:
        handle.write(
            "[app:main]\nuse = call:benchmarks.hello:app_factory\n\n"
            + waitress_section(port, threads)
            + _LOGGING
        )
    return path


def ceiling_ini(path: str, *, port: int, threads: int, folder: str) -> str:
    """The in-memory ceiling (``ceiling.py``), storing uploads in ``folder``."""
    with open(path, "w") as handle:
        handle.write(
            f"[app:main]\nuse = call:benchmarks.ceiling:app_factory\ndir = {folder}\n\n"
            + waitress_section(port, threads)
            + _LOGGING
        )
    return path


def get(port: int, path: str, headers: dict | None = None, timeout: float = 10.0):
    """One GET on 127.0.0.1: (status, headers (case-insensitive), body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


class Server:
    """A ``pserve <ini>`` child process."""

    def __init__(self, ini: str, port: int, log_path: str):
        self.ini, self.port, self.log_path = ini, port, log_path
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> Server:
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        log = open(self.log_path, "ab")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "pserve"), self.ini],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, path: str = "/", timeout: float = 120.0) -> float:
        """Poll until ``path`` answers 200; return seconds since :meth:`start`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                status, _, _ = get(self.port, path, timeout=5)
                if status == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"server not ready after {timeout}s; see {self.log_path}")

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def cpu_ticks(pid: int) -> int:
    """User and system CPU of a process so far, in clock ticks (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kb(pid: int) -> int:
    """VmRSS of a process in KiB (from /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
