"""Catalogue search at 100,000 records: p50/p95 per query type through the real server, against a plain
``ILIKE`` baseline in the same run.

The records are SYNTHETIC (tests/bench/synthetic_catalog.py: ids ``synthetic-*``, labelled in their
titles and source), generated from the portal's vocabulary, loaded into the bench's test database
beside the five real ones. ``BENCH_CATALOG_RECORDS`` (default 100000) sets how many.

Query types, each ``BENCH_SEARCH_SAMPLES`` times (default 40) with varied words, boxes and periods
(facet counts always included):
``english`` (one English word), ``chinese`` (one Chinese word), ``typo`` (a misspelt English word),
``combined`` (a keyword facet + a box + a period, no words) and ``empty`` (no words, facets only).

Figures per type:
- ``cold``: the portal's API (``/api/datasets/``) through gunicorn, each request a search not answered
  before (a new catalogue generation before every request, so no cached answer is reused);
- ``warm``: the same requests again (answers cached per generation; what repeated searches cost);
- ``baseline``: the search this portal had before (every word ``ILIKE`` in titles and abstracts of
  ``catalog_dataset``, joined with tags) with its count, first page and category counts, run in the
  bench process on the same database (no such endpoint exists any more).

Peak resident memory beside the times (:mod:`tests.bench.memory`): of each gunicorn process (master and web
workers, ``VmHWM`` read before the server stops) and of the bench process (which loads the records and runs
the baseline).

Results go to ``var/bench/search/results.json`` and are printed. No timed assertion: only that every
request answered 200 and found records where it must.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from tests.bench import memory, synthetic_catalog
from tests.conftest import web_server

pytestmark = pytest.mark.django_db

RECORDS = int(os.environ.get("BENCH_CATALOG_RECORDS", 100_000))
SAMPLES = int(os.environ.get("BENCH_SEARCH_SAMPLES", 40))
ENGLISH = [
    "soil",
    "evapotranspiration",
    "precipitation",
    "runoff",
    "permafrost",
    "snow",
    "temperature",
    "leaf",
    "assimilation",
    "downscaling",
    "Tibetan",
    "Africa",
    "Europe",
    "basin",
    "forest",
    "moisture",
    "storage",
]
CHINESE = [
    "土壤水分",
    "蒸散发",
    "降水",
    "径流",
    "冻融",
    "地表温度",
    "积雪",
    "青藏高原",
    "黄河流域",
    "机器学习",
    "数据同化",
    "降尺度",
    "叶面积指数",
    "多年冻土",
    "长江流域",
    "随机森林",
    "陆地储水",
]
TYPOS = [
    "evapotranspration",
    "precipitaton",
    "permafrst",
    "temperture",
    "assimilaton",
    "downscalng",
    "moistre",
    "Tibetn",
    "Afrika",
    "runof",
    "storge",
    "forrest",
]
KEYWORDS = ["土壤水分", "蒸散发", "冻融", "降水", "径流", "积雪", "机器学习", "全球", "青藏高原", "中国"]
NO_LIMITS = {"RATE_USER_PER_MINUTE": "1000000", "RATE_ANON_PER_MINUTE": "1000000"}


def _queries(kind: str, rng) -> list[dict]:
    out = []
    for i in range(SAMPLES):
        if kind == "english":
            out.append({"q": ENGLISH[i % len(ENGLISH)]})
        elif kind == "chinese":
            out.append({"q": CHINESE[i % len(CHINESE)]})
        elif kind == "typo":
            out.append({"q": TYPOS[i % len(TYPOS)]})
        elif kind == "combined":
            west, south = float(rng.uniform(-170, 150)), float(rng.uniform(-50, 50))
            start = int(rng.integers(1960, 2015))
            out.append(
                {
                    "keyword": KEYWORDS[i % len(KEYWORDS)],
                    "bbox": f"{west:.1f},{south:.1f},{west + rng.uniform(5, 30):.1f},{south + rng.uniform(5, 20):.1f}",
                    "time": f"{start}/{start + int(rng.integers(1, 10))}",
                }
            )
        else:
            out.append({})
    return out


def _percentiles(ms: list[float]) -> dict:
    values = sorted(ms)
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "p95": round(values[min(len(values) - 1, int(np.ceil(0.95 * len(values))) - 1)], 1),
        "max": round(values[-1], 1),
    }


def _baseline(query: dict) -> float:
    """The old search: each word ILIKE in the four texts or a tag, count + first page + category counts."""
    words = query.get("q", "").split()
    cond, args = [], []
    for word in words:
        like = f"%{word}%"
        cond.append(
            "(d.title_cn ILIKE %s OR d.title_en ILIKE %s OR d.abstract_cn ILIKE %s OR d.abstract_en ILIKE %s "
            "OR d.id IN (SELECT dt.dataset_id FROM catalog_dataset_tags dt JOIN catalog_tag t ON t.id = dt.tag_id "
            "WHERE t.name ILIKE %s))"
        )
        args += [like] * 5
    if "keyword" in query:
        cond.append(
            "d.id IN (SELECT dt.dataset_id FROM catalog_dataset_tags dt JOIN catalog_tag t ON t.id = dt.tag_id "
            "WHERE t.name = %s)"
        )
        args.append(query["keyword"])
    if "bbox" in query:
        cond.append("ST_Intersects(d.bbox, ST_MakeEnvelope(%s, %s, %s, %s, 4326))")
        args += [float(v) for v in query["bbox"].split(",")]
    if "time" in query:
        start, end = query["time"].split("/")
        cond += [
            "(d.acq_end IS NULL OR extract(year FROM d.acq_end) >= %s)",
            "(d.acq_start IS NULL OR extract(year FROM d.acq_start) <= %s)",
        ]
        args += [int(start), int(end)]
    where = f" WHERE {' AND '.join(cond)}" if cond else ""
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM catalog_dataset d{where}", args)
        cursor.fetchone()
        cursor.execute(f"SELECT d.id, d.title_en FROM catalog_dataset d{where} ORDER BY d.title_en LIMIT 20", args)
        cursor.fetchall()
        cursor.execute(f"SELECT d.category, count(*) FROM catalog_dataset d{where} GROUP BY d.category", args)
        cursor.fetchall()
    return (time.perf_counter() - t0) * 1000


def _get(url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.loads(response.read())
    return (time.perf_counter() - t0) * 1000, body


@pytest.fixture(scope="module")
def synthetic_records(django_db_setup, django_db_blocker):
    """The SYNTHETIC records, committed (the server is another process), removed afterwards."""
    from portal.catalog.models import Dataset

    with django_db_blocker.unblock():
        t0 = time.perf_counter()
        loaded = synthetic_catalog.load(RECORDS)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE catalog_searchdocument")
            cursor.execute("VACUUM ANALYZE catalog_dataset")
        yield loaded, time.perf_counter() - t0
        Dataset.objects.filter(id__startswith="synthetic-").delete()  # their search documents cascade


def test_search_at_catalogue_scale(service_env, synthetic_records, django_db_blocker):
    from portal.catalog import search

    loaded, load_seconds = synthetic_records
    with django_db_blocker.unblock():  # the baseline reads the same database from this process
        rng = np.random.default_rng(7)
        results = {"records": loaded + 5, "synthetic": loaded, "load_seconds": round(load_seconds, 1), "types": {}}
        env = {**service_env, **NO_LIMITS}
        with web_server(env, workers=2) as url:
            _get(f"{url}/api/datasets/?limit=1")  # workers warm (imports, jieba's dictionary)
            _get(f"{url}/api/datasets/?q=warm&limit=1")
            for kind in ("english", "chinese", "typo", "combined", "empty"):
                queries = _queries(kind, rng)
                cold, warm, baseline, totals = [], [], [], []
                for query in queries:
                    search._bump_generation()  # a new generation: no cached answer
                    address = f"{url}/api/datasets/?{urllib.parse.urlencode(query)}"
                    ms, body = _get(address)
                    cold.append(ms)
                    assert body["facets"] or body["count"] == 0, (kind, query)  # counts come with any match
                    totals.append(body["count"])
                    warm.append(_get(address)[0])
                    baseline.append(_baseline(query))
                assert sum(totals) > 0, kind
                results["types"][kind] = {
                    "cold": _percentiles(cold),
                    "warm": _percentiles(warm),
                    "baseline_ilike": _percentiles(baseline),
                    "cold_over_baseline_p95": round(_percentiles(cold)["p95"] / _percentiles(baseline)["p95"], 2),
                    "median_matches": int(statistics.median(totals)),
                }
            server = memory.tree("gunicorn")  # the master and its workers, read while they still run
            results["memory"] = {
                "web_processes": [
                    {"pid": p.pid, "rss_mib": p.rss // memory.MIB, "peak_mib": p.peak // memory.MIB} for p in server
                ],
                "bench_process_peak_mib": memory.peak_rss_self() // memory.MIB,
            }
        out = Path(os.environ.get("BENCH_SEARCH_DIR", Path(settings.BASE_DIR) / "var" / "bench" / "search"))
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
        print(json.dumps(results, indent=2))
        print(f"[bench search] {memory.summary(server)}")
        assert server, "no gunicorn process found below this one"
