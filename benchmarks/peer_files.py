"""Files on each comparison target: the URL its own page links, and a large wheel up and down.

Part of issue 17's comparison (:mod:`benchmarks.compare`): :func:`file_url` finds the
download URL a target's project page gives for a file (every index has its own URL
layout); :func:`big_file` streams a large wheel up and reads it back, sampling the
server's RSS.
"""

from __future__ import annotations

import html.parser
import os
import time
import urllib.parse

from packaging.utils import canonicalize_name

from . import corpus, load, twine_upload
from .largefile import RssSampler, download
from .peers import Target
from .server import get

HTML = {"Accept": "text/html"}
SLOW_GET_S = 60.0  # one page of pypiserver at 100,000 files takes seconds (it lists its folder)


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.hrefs.append(href)


def file_url(target: Target, project: str, filename: str) -> str:
    """The path of ``filename`` as the target's project page links it."""
    page = target.page_path(canonicalize_name(project))
    status, _, body = get(target.port, page, HTML, timeout=SLOW_GET_S)
    if status != 200:
        raise RuntimeError(f"{target.label}: {page} answered {status}")
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    for href in parser.hrefs:
        url = urllib.parse.urlsplit(urllib.parse.urljoin(f"http://127.0.0.1{page}", href))
        if url.path.rsplit("/", 1)[-1] == filename:
            return url.path
    raise RuntimeError(f"{target.label}: {page} does not link {filename}")


BIG_NAME = "Big_Upload.Peers"


def _transfer(target: Target, auth: str, dist: corpus.Dist, path: str) -> dict:
    """One large wheel up and back down: seconds and the server's RSS growth each way."""
    size = os.path.getsize(path)
    with RssSampler(target.server.pid) as up_rss:
        started = time.perf_counter()
        expected = load.stream_upload(target.port, auth, dist, path, url_path=target.upload_path)
        up = time.perf_counter() - started
    url = file_url(target, dist.name, dist.filename)
    with RssSampler(target.server.pid) as down_rss:
        started = time.perf_counter()
        got, sha = download(target.port, url)
        down = time.perf_counter() - started
    if got != size or sha != expected:
        raise RuntimeError(f"{target.label}: downloaded {got} bytes of {size}, or other bytes")
    return {
        "upload_s": round(up, 2),
        "upload_rss_growth_mb": up_rss.growth_mb,
        "download_s": round(down, 2),
        "download_rss_growth_mb": down_rss.growth_mb,
    }


def big_file(
    targets: list[Target], auth: str, directory: str, megabytes: float, rounds: int = 2, log=print
) -> dict:
    """Seconds and server RSS growth of a large wheel streamed up and read back.

    ``rounds`` rounds (a new version each, as an index keeps the first upload of a
    file), every other one in reverse order; the best seconds and the highest RSS
    growth of each target count.
    """
    os.makedirs(directory, exist_ok=True)
    twine_upload.login(targets, auth)
    runs: dict[str, list[dict]] = {t.key: [] for t in targets}
    size = 0
    for n in range(rounds):
        version = f"1.0.{n}"
        path = corpus.write_large_wheel(directory, int(megabytes * 1024 * 1024), BIG_NAME, version)
        size, filename = os.path.getsize(path), os.path.basename(path)
        dist = corpus.Dist(BIG_NAME, version, "wheel", filename, b"", b"", True)
        for target in targets if n % 2 == 0 else targets[::-1]:
            runs[target.key].append(_transfer(target, auth, dist, path))
            log(f"  {size / 2**20:.0f} MiB, round {n + 1}, {target.label}: {runs[target.key][-1]}")
        os.unlink(path)
    out: dict = {"bytes": size, "rounds": rounds}
    for key, done in runs.items():
        out[key] = {
            figure: (min if figure.endswith("_s") else max)(run[figure] for run in done) for figure in done[0]
        }
        out[key]["runs"] = done
    return out
