"""Files on each comparison target: the URL its own page links, and a large wheel up and down.

Part of issue 17's comparison (:mod:`benchmarks.compare`): :func:`file_url` finds the
download URL a target's project page gives for a file (every index has its own URL
layout); :func:`big_file` streams a large wheel up and reads it back several times,
sampling the server's RSS.
"""

from __future__ import annotations

import html.parser
import os
import statistics
import time
import urllib.parse

from packaging.utils import canonicalize_name

from . import corpus, load, twine_upload
from .largefile import RssSampler, download
from .peers import Target
from .server import cpu_ticks, get

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
DOWNLOADS = 6  # downloads of the large wheel per round and target (two rounds: a median of 12)


def _upload(target: Target, auth: str, dist: corpus.Dist, path: str) -> tuple[dict, str]:
    """One large wheel up: seconds, the server's RSS growth, and the file's sha256."""
    with RssSampler(target.server.pid) as rss:
        started = time.perf_counter()
        expected = load.stream_upload(target.port, auth, dist, path, url_path=target.upload_path)
        seconds = time.perf_counter() - started
    return {"upload_s": round(seconds, 2), "upload_rss_growth_mb": rss.growth_mb}, expected


def _download(target: Target, url: str, size: int, expected: str) -> dict:
    """One large wheel down: seconds, the server's RSS growth and the CPU it used."""
    ticks = cpu_ticks(target.server.pid)
    with RssSampler(target.server.pid) as rss:
        started = time.perf_counter()
        got, sha = download(target.port, url)
        seconds = time.perf_counter() - started
    if got != size or sha != expected:
        raise RuntimeError(f"{target.label}: downloaded {got} bytes of {size}, or other bytes")
    cpu = (cpu_ticks(target.server.pid) - ticks) / os.sysconf("SC_CLK_TCK")
    return {"download_s": seconds, "download_rss_growth_mb": rss.growth_mb, "server_cpu_s": cpu}


def big_file(
    targets: list[Target],
    auth: str,
    directory: str,
    megabytes: float,
    rounds: int = 2,
    downloads: int = DOWNLOADS,
    log=print,
) -> dict:
    """Seconds and server RSS growth of a large wheel streamed up and read back.

    ``rounds`` rounds (a new version each, as an index keeps the first upload of a
    file), every other one in reverse order; the best upload seconds count. After
    each round's uploads, ``downloads`` downloads of the file from every target,
    the targets alternating in order: a download takes a fifth of a second, so
    one or two of them say more about the machine's other load than about the
    server, and the median of all of them counts (with the best beside it, and
    the server's CPU per download). The highest RSS growth of each way counts.
    """
    os.makedirs(directory, exist_ok=True)
    twine_upload.login(targets, auth)
    ups: dict[str, list[dict]] = {t.key: [] for t in targets}
    downs: dict[str, list[dict]] = {t.key: [] for t in targets}
    size = 0
    for n in range(rounds):
        version = f"1.0.{n}"
        path = corpus.write_large_wheel(directory, int(megabytes * 1024 * 1024), BIG_NAME, version)
        size, filename = os.path.getsize(path), os.path.basename(path)
        dist = corpus.Dist(BIG_NAME, version, "wheel", filename, b"", b"", True)
        urls, sums = {}, {}
        for target in targets if n % 2 == 0 else targets[::-1]:
            figures, sums[target.key] = _upload(target, auth, dist, path)
            ups[target.key].append(figures)
            urls[target.key] = file_url(target, dist.name, dist.filename)
            log(f"  {size / 2**20:.0f} MiB up, round {n + 1}, {target.label}: {figures}")
        os.unlink(path)
        for d in range(downloads):
            for target in targets if (n + d) % 2 == 0 else targets[::-1]:
                downs[target.key].append(_download(target, urls[target.key], size, sums[target.key]))
        for target in targets:
            done = sorted(run["download_s"] for run in downs[target.key][-downloads:])
            log(
                f"  {size / 2**20:.0f} MiB down, round {n + 1}, {target.label}: {[round(s, 3) for s in done]} s"
            )
    out: dict = {"bytes": size, "rounds": rounds, "downloads": rounds * downloads}
    for target in targets:
        up, down = ups[target.key], downs[target.key]
        out[target.key] = {
            "upload_s": min(run["upload_s"] for run in up),
            "upload_rss_growth_mb": max(run["upload_rss_growth_mb"] for run in up),
            "download_s": round(statistics.median(run["download_s"] for run in down), 3),
            "download_best_s": round(min(run["download_s"] for run in down), 3),
            "download_rss_growth_mb": max(run["download_rss_growth_mb"] for run in down),
            "download_server_cpu_s": round(statistics.median(run["server_cpu_s"] for run in down), 3),
            "runs": up,
        }
    return out
