"""A moto S3 server on 127.0.0.1 in a child process, and S3 storage settings for it.

The server runs in its own process (``python -m benchmarks.s3 PORT``) so that it
does not share a GIL with the code being measured. It stops by itself after
``--lifetime`` seconds, and the benchmark stops it by PID before that.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from .server import REPO

REGION = "us-east-1"
CREDENTIALS = {"storage.aws_access_key_id": "testing", "storage.aws_secret_access_key": "testing"}


def available() -> str | None:
    """None when S3 storage can be measured, else why not."""
    try:
        import moto.server  # noqa: F401

        from pypicloud.storage.s3 import S3Storage  # noqa: F401
    except Exception as exc:  # any import problem means "not measurable here"
        return f"{type(exc).__name__}: {exc}"
    return None


def settings(endpoint: str, bucket: str) -> dict[str, str]:
    """``[app:main]`` storage keys of an S3 store on the moto server."""
    return {
        "pypi.storage": "s3",
        "storage.bucket": bucket,
        "storage.endpoint_url": endpoint,
        "storage.region_name": REGION,
        **CREDENTIALS,
    }


def storage(endpoint: str, bucket: str, **options):
    from pypicloud.storage.s3 import S3Storage

    store = S3Storage(
        bucket,
        endpoint_url=endpoint,
        region_name=REGION,
        credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        **options,
    )
    store.ensure_bucket()
    return store


class MotoServer:
    def __init__(self, port: int, log_path: str, lifetime: float = 3600):
        self.port, self.log_path, self.lifetime = port, log_path, lifetime
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        from .server import get

        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONPATH=REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.s3", str(self.port), "--lifetime", str(self.lifetime)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited; see {self.log_path}")
            try:
                get(self.port, "/", timeout=2)
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("moto server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description="moto S3 server on 127.0.0.1 for the benchmarks")
    parser.add_argument("port", type=int)
    parser.add_argument("--lifetime", type=float, default=3600, help="stop after this many seconds")
    args = parser.parse_args()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        time.sleep(args.lifetime)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
