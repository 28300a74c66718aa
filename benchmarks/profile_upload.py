"""Profile pypicloud's upload path in-process (no waitress, no sockets), with cProfile.

    .venv/bin/python -m benchmarks.profile_upload                  # 100 small uploads
    .venv/bin/python -m benchmarks.profile_upload --big-mb 200     # one 200 MB wheel
    .venv/bin/python -m benchmarks.profile_upload --no-profile     # the time only, unprofiled

The app is built as ``pserve`` builds it (file storage, SQLite, Basic auth as the
admin); each upload is a fresh file (an upload of bytes the index already has does
no work), posted as twine posts it (``load._form_parts``), the body in a file-backed
``wsgi.input`` as waitress hands it over. One login first, so the argon2id check is
not counted. Prints the time per upload, the top pypicloud functions by cumulative time (below
the tweens) and the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import sys
import tempfile
import time
import uuid

from . import corpus, load, matrix
from .inprocess import build_app, call, environ_for
from .server import ADMIN_PASSWORD, ADMIN_USER

INNER = r"pypicloud/(?!wsgi|requestlog|crosssite|app\.py)"


def upload_environ(auth: str, dist: corpus.Dist, body_dir: str, path: str | None = None) -> dict:
    """A ``POST /simple/`` environ; the body on disk (``path``: the file's bytes from there)."""
    boundary = uuid.uuid4().hex
    data = dist.data
    if path is not None:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    else:
        digest = hashlib.sha256(data).hexdigest()
    head, tail = load._form_parts(dist, digest, boundary)
    body = tempfile.TemporaryFile(dir=body_dir)
    body.write(head)
    if path is None:
        body.write(data)
    else:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(load.CHUNK), b""):
                body.write(block)
    body.write(tail)
    length = body.tell()
    body.seek(0)
    environ = environ_for(matrix.Case("upload", "/simple/"), auth)
    environ.update(
        REQUEST_METHOD="POST",
        CONTENT_TYPE=f"multipart/form-data; boundary={boundary}",
        CONTENT_LENGTH=str(length),
    )
    environ["wsgi.input"] = body
    return environ


def _fresh(count: int) -> list[corpus.Dist]:
    dists: list[corpus.Dist] = []
    i = 0
    while len(dists) < count:
        dists += corpus.release(f"Profile.Upload_{i}", "1.0.0")
        i += 1
    return dists[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_upload", description=__doc__)
    parser.add_argument("--uploads", type=int, default=100, help="small uploads profiled (100)")
    parser.add_argument("--big-mb", type=float, default=0.0, help="profile one wheel of this size instead")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument(
        "--no-profile", action="store_true", help="time the uploads without cProfile (its cost is per call)"
    )
    args = parser.parse_args(argv)
    auth = load.basic_auth(ADMIN_USER, ADMIN_PASSWORD)
    with tempfile.TemporaryDirectory(prefix="ppc-profile-upload-") as root:
        app = build_app(root, 10)
        call(app, environ_for(matrix.Case("login", "/simple/"), auth))
        if args.big_mb > 0:
            big = corpus.write_large_wheel(root, int(args.big_mb * 1024 * 1024), name="Profile_Big.Upload")
            name = os.path.basename(big)
            dist = corpus.Dist("Profile_Big.Upload", corpus.LARGE_VERSION, "wheel", name, b"", b"", True)
            environs = [upload_environ(auth, dist, root, big)]
        else:
            environs = [upload_environ(auth, d, root) for d in _fresh(args.uploads)]
        profile = cProfile.Profile()
        started, cpu = time.perf_counter(), time.process_time()
        if not args.no_profile:
            profile.enable()
        statuses = {call(app, environ) for environ in environs}
        profile.disable()
        seconds = (time.perf_counter() - started) / len(environs)
        cpu = (time.process_time() - cpu) / len(environs)
        if statuses != {"200 OK"}:
            raise SystemExit(f"uploads answered {statuses}")
        if args.no_profile:
            print(
                f"{len(environs)} upload(s): {seconds * 1000:.2f} ms each in-process, CPU {cpu * 1000:.2f} ms"
            )
            return 0
        print(f"{len(environs)} upload(s): {seconds * 1000:.1f} ms each in-process, profiled\n")
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        # Below the tweens: where the upload's own time goes.
        stats.sort_stats("cumulative").print_stats(INNER, args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue().replace(sys.prefix, "<venv>"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
