"""Load test: 20 users over pages and API calls for 3 minutes with 0 errors, and the home page's p95 while
two heavy downloads run against the same figure without them.

A real gunicorn as ``make run`` starts it (tests/conftest.py ``web_server``: ``-c portal/gunicorn.conf.py``,
2 sync workers) on the session's test database (tests/conftest.py: the catalog records, the
CARDAMOM-FluxVal towers, an ET product) plus a SYNTHETIC 0.5-degree global grid of 20 days (20 MB,
tests/grids.py ``publish_grid``) published as a version of the freeze/thaw record; loopback only.
Rate limits and quotas are raised for this server (``RATE_*_PER_MINUTE``, ``QUOTA_*``: far above what
the run sends), so that the run measures the portal's capacity, not its limits; a 429 would fail it.

:func:`test_twenty_users_for_three_minutes_without_an_error`: locust 2.47 headless
(tests/bench/locustfile.py), ``BENCH_LOAD_USERS`` users (default 20) spawned 5 a second for
``BENCH_LOAD_SECONDS`` (default 180). Asserted: requests were made and none failed (any non-2xx or a
timeout is a failure). Printed and saved: requests, rps, median / p95 / max per request name.

:func:`test_home_page_p95_while_two_heavy_downloads_run`: the home page fetched ``BENCH_HOME_SAMPLES``
times (default 30) one after the other, alone, then while two clients download the 20 MB grid file
reading it slowly (``BENCH_SLOW_READ_BYTES_PER_S``, default 1 MiB/s, so about 20 s each) through a
64 KiB receive window; the p95 of
both and their ratio are printed and saved. No timed assertion: only that every home page answered 200.

Beside the times, each test saves and prints the peak and current resident memory of every gunicorn
process (master and web workers, from ``/proc``, read while the server runs) and of the bench process
(:mod:`tests.bench.memory`).

Results go to ``var/bench/load/`` (``BENCH_LOAD_DIR``): locust's CSV files and ``results.json``.
Run with ``make bench`` or ``.venv/bin/python -m pytest tests/bench/test_load.py -p no:cacheprovider -q -s``;
``BENCH_LOAD_SECONDS=30`` for a quick try.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.bench import memory
from tests.conftest import web_server
from tests.grids import FT, committed_grid

pytestmark = pytest.mark.django_db

USERS = int(os.environ.get("BENCH_LOAD_USERS", 20))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", 180))
HOME_SAMPLES = int(os.environ.get("BENCH_HOME_SAMPLES", 30))
SLOW_READ = int(os.environ.get("BENCH_SLOW_READ_BYTES_PER_S", 2**20))
NO_LIMITS = {
    "RATE_USER_PER_MINUTE": "1000000",
    "RATE_ANON_PER_MINUTE": "1000000",
    "QUOTA_USER_CONCURRENT_JOBS": "1000000",
    "QUOTA_ANON_CONCURRENT_JOBS": "1000000",
    "QUOTA_USER_BYTES_PER_DAY": str(2**50),
    "QUOTA_ANON_BYTES_PER_DAY": str(2**50),
}


def _out_dir() -> Path:
    path = Path(os.environ.get("BENCH_LOAD_DIR", Path(settings.BASE_DIR) / "var" / "bench" / "load"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save(key: str, value: dict) -> None:
    path = _out_dir() / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = value
    path.write_text(json.dumps(results, indent=1))


@pytest.fixture(scope="module")
def load_grid(django_db_setup, django_db_blocker):
    """The SYNTHETIC 0.5-degree, 20-day grid (20 MB) published and committed; removed with what the
    server wrote about it (download logs, jobs) at the end."""
    with committed_grid(django_db_blocker, FT, days=20, step=0.5) as version:
        yield version


@pytest.fixture(scope="module")
def load_url(service_env, load_grid):
    with web_server(dict(service_env, **NO_LIMITS), log=_out_dir() / "gunicorn.log") as url:
        yield url


def test_twenty_users_for_three_minutes_without_an_error(load_url, load_grid):
    prefix = _out_dir() / "locust"
    env = dict(os.environ, LOAD_DATASET=FT, LOAD_VERSION=str(load_grid.number))
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(Path(__file__).with_name("locustfile.py")),
        "--headless",
        "-u",
        str(USERS),
        "-r",
        "5",
        "-t",
        f"{SECONDS}s",
        "--host",
        load_url,
        "--csv",
        str(prefix),
        "--exit-code-on-error",
        "1",
        "--only-summary",
        "--stop-timeout",
        "30",
        "--loglevel",
        "WARNING",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=SECONDS + 180)
    print(done.stdout[-6000:], done.stderr[-6000:])
    with open(f"{prefix}_stats.csv") as f:
        rows = list(csv.DictReader(f))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    summary = {
        r["Name"]: {
            "requests": int(r["Request Count"]),
            "failures": int(r["Failure Count"]),
            "median_ms": float(r["Median Response Time"]),
            "p95_ms": float(r["95%"] or 0),
            "max_ms": float(r["Max Response Time"]),
            "rps": float(r["Requests/s"]),
        }
        for r in rows
    }
    _save(
        "mix",
        {
            "users": USERS,
            "seconds": SECONDS,
            "stats": summary,
            "rate_limits": "raised for the run: " + ", ".join(f"{k}={v}" for k, v in NO_LIMITS.items()),
            "memory": _memory(),
        },
    )
    print(
        f"\nload: {USERS} users, {SECONDS} s: {total['Request Count']} requests ({float(total['Requests/s']):.1f}/s), "
        f"{total['Failure Count']} failures, median {total['Median Response Time']} ms, p95 {total['95%']} ms"
    )
    for name, s in summary.items():
        print(
            f"  {name:24s} n={s['requests']:6d} fail={s['failures']:4d} median={s['median_ms']:7.0f} ms "
            f"p95={s['p95_ms']:7.0f} ms max={s['max_ms']:7.0f} ms"
        )
    print(f"  {memory.summary(memory.tree('gunicorn'))}")
    if Path(f"{prefix}_failures.csv").exists():
        print(Path(f"{prefix}_failures.csv").read_text()[:3000])
    assert int(total["Request Count"]) > USERS, "locust made (almost) no request"
    assert int(total["Failure Count"]) == 0, "failed requests (above and in locust_failures.csv)"
    assert done.returncode == 0, done.stderr[-2000:]


def _memory() -> dict:
    """Peak and current RSS of each gunicorn process (master and web workers, read while they run) and the peak
    of this process, in MiB (:mod:`tests.bench.memory`)."""
    return {
        "web_processes": [
            {"pid": p.pid, "rss_mib": p.rss // memory.MIB, "peak_mib": p.peak // memory.MIB}
            for p in memory.tree("gunicorn")
        ],
        "bench_process_peak_mib": memory.peak_rss_self() // memory.MIB,
    }


def _home_times(url: str, n: int, keep_going=lambda: True) -> list[float]:
    times = []
    for _ in range(n):
        if not keep_going():
            break
        start = time.monotonic()
        with urllib.request.urlopen(url + "/", timeout=120) as r:
            r.read()
            assert r.status == 200
        times.append(time.monotonic() - start)
    return times


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


class _SlowClient(http.client.HTTPConnection):
    """A client with a small receive window (64 KiB, as over a long link), so that the server's send waits for
    the reader: on loopback the kernel's autotuned buffers (up to 32 MiB here) would take a whole file at once."""

    def connect(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))


def _slow_download(url: str, started: threading.Event, done: threading.Event, record: dict) -> None:
    """Download ``url`` reading about SLOW_READ bytes a second, as a slow client does."""
    parts = urlsplit(url)
    connection = _SlowClient(parts.hostname, parts.port, timeout=300)
    start = time.monotonic()
    size = 0
    try:
        connection.request("GET", parts.path)
        r = connection.getresponse()
        started.set()
        while chunk := r.read(65536):
            size += len(chunk)
            ahead = size / SLOW_READ - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        record.update(bytes=size, seconds=time.monotonic() - start, status=r.status)
    finally:
        connection.close()
        done.set()


def test_home_page_p95_while_two_heavy_downloads_run(load_url, load_grid):
    file_url = f"{load_url}/datasets/{FT}/versions/{load_grid.number}/files/grid.nc"
    _home_times(load_url, 3)  # warm both workers
    alone = _home_times(load_url, HOME_SAMPLES)

    threads, records, dones = [], [{}, {}], [threading.Event(), threading.Event()]
    for record, done in zip(records, dones, strict=True):
        started = threading.Event()
        thread = threading.Thread(target=_slow_download, args=(file_url, started, done, record), daemon=True)
        thread.start()
        assert started.wait(120), "a heavy download did not start"
        threads.append(thread)
    busy = _home_times(load_url, HOME_SAMPLES, keep_going=lambda: not any(d.is_set() for d in dones))
    for thread in threads:
        thread.join(timeout=600)
    assert busy, "the downloads ended before the first home page was measured"
    result = {
        "home_p95_alone_s": _p95(alone),
        "home_p95_with_downloads_s": _p95(busy),
        "home_median_alone_s": statistics.median(alone),
        "home_median_with_downloads_s": statistics.median(busy),
        "samples_alone": len(alone),
        "samples_with_downloads": len(busy),
        "downloads": records,
        "slow_read_bytes_per_s": SLOW_READ,
    }
    result["p95_ratio"] = result["home_p95_with_downloads_s"] / result["home_p95_alone_s"]
    result["memory"] = _memory()
    _save("home_with_heavy_downloads", result)
    print(
        f"\nhome page p95: {result['home_p95_alone_s'] * 1000:.0f} ms alone, "
        f"{result['home_p95_with_downloads_s'] * 1000:.0f} ms during two slow downloads of the grid file "
        f"({len(busy)} samples): ratio {result['p95_ratio']:.1f}; downloads: "
        + ", ".join(f"{r.get('bytes', 0) / 2**20:.0f} MiB in {r.get('seconds', 0):.1f} s" for r in records)
        + f"\n  {memory.summary(memory.tree('gunicorn'))}"
    )
    size = (Path(settings.DATA_ROOT) / load_grid.files.get().path).stat().st_size
    assert all(r.get("status") == 200 and r.get("bytes") == size for r in records), (size, records)
