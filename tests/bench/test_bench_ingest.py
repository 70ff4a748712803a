"""Benchmark: loading observations through the ingestion path against a raw COPY (baseline).

SYNTHETIC data (random values at made-up stations): the point is the load path, not the values.
Both are measured in the same run on the same rows: the baseline is PostgreSQL ``COPY`` of the
rows, already formatted as CSV, into a bare (logged, not temporary) table without indexes or
constraints; the measured path is :func:`ingestion.services.load_point_data` from a PointData
table, up to the point where the transaction could commit: its deferred foreign-key checks are
run (``SET CONSTRAINTS ALL IMMEDIATE``) inside the clock, since a merge queues one per row for
the commit. The synthetic stations are new, so the run loads into a partition of its own; the
merge path (any run below ``PARTITION_MIN_ROWS`` or of stations already observed) is measured too
at ``BENCH_MERGE_ROWS`` rows (default 200,000; 0 skips it). Run with ``make bench``
(``BENCH_ROWS`` sets the size, default 5 million). Prints rows/s, the ratio, the time of each
step and the peak resident memory of this process (``ru_maxrss``); asserts only that every row
was loaded.
"""

from __future__ import annotations

import io
import os
import resource
import time

import numpy as np
import pandas as pd
import pytest
from django.db import connection, transaction

from ingestion import services
from ingestion.models import IngestRun, Observation
from ingestion.readers.base import PointData
from ingestion.services import load_point_data

pytestmark = pytest.mark.django_db

ROWS = int(os.environ.get("BENCH_ROWS", 5_000_000))
MERGE_ROWS = int(os.environ.get("BENCH_MERGE_ROWS", 200_000))
VARIABLES = ["ta", "le", "et", "p", "swc"]


def synthetic_point_data(rows: int) -> PointData:
    rng = np.random.default_rng(0)
    n_stations = 100
    n_times = -(-rows // (n_stations * len(VARIABLES)))
    codes = np.array([f"SYN-{i:03d}" for i in range(n_stations)], dtype=object)
    stations = pd.DataFrame(
        {
            "code": codes,
            "name": codes,
            "lat": rng.uniform(-60, 70, n_stations),
            "lon": rng.uniform(-180, 180, n_stations),
            "elevation": np.nan,
            "land_cover": "",
            "network": "SYNTHETIC",
            "source": "benchmark (synthetic)",
        }
    )
    times = pd.date_range("1990-01-01", periods=n_times, freq="30min").to_numpy()
    obs = pd.DataFrame(
        {
            "station": np.repeat(codes, len(VARIABLES) * n_times),
            "variable": np.tile(np.repeat(np.array(VARIABLES, dtype=object), n_times), n_stations),
            "time": np.tile(times, n_stations * len(VARIABLES)),
        }
    ).iloc[:rows]
    obs["value"] = rng.normal(size=len(obs))
    obs["units"], obs["quality_flag"], obs["is_validation"] = "1", "0", False
    return PointData(stations, obs.reset_index(drop=True))


def raw_copy(data: PointData) -> tuple[float, int]:
    """Baseline: COPY of the same rows (CSV prepared beforehand, not timed) into a bare table."""
    buffer = io.StringIO()
    data.observations.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%dT%H:%M:%S+00:00")
    text = buffer.getvalue()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_bare_observation (station text, variable text, time timestamptz, "
            "value double precision, units text, quality_flag text, is_validation boolean)"
        )
        start = time.perf_counter()
        with cursor.cursor.copy("COPY bench_bare_observation FROM STDIN (FORMAT csv)") as copy:
            for i in range(0, len(text), 1 << 22):
                copy.write(text[i : i + (1 << 22)])
        seconds = time.perf_counter() - start
        cursor.execute("SELECT count(*) FROM bench_bare_observation")
        count = cursor.fetchone()[0]
        transaction.set_rollback(True)
    return seconds, count


def through_ingestion(data: PointData) -> tuple[float, int, dict[str, float]]:
    """Seconds of :func:`load_point_data` and its deferred foreign-key checks, rows loaded, time per step."""
    steps: dict[str, float] = {}
    with transaction.atomic():
        run = IngestRun.objects.create(
            kind="bench", source_path="synthetic", checksum="-", reader="-", reader_version="-"
        )
        start = time.perf_counter()
        _, inserted, _ = load_point_data(data, run, timings=steps)
        clock = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what the commit would check
        steps["deferred_checks"] = time.perf_counter() - clock
        seconds = time.perf_counter() - start
        count = Observation.objects.filter(ingest_run=run).count()
        assert count == inserted
        transaction.set_rollback(True)
    return seconds, count, steps


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report(label: str, rows: int, baseline: float, measured: float, steps: dict[str, float]) -> str:
    detail = ", ".join(f"{name} {seconds:.2f}" for name, seconds in steps.items())
    return (
        f"\n[bench ingest] {label}, {rows:,} observations: raw COPY into a bare table {baseline:.1f} s "
        f"({rows / baseline:,.0f} rows/s, baseline); ingestion load {measured:.1f} s "
        f"({rows / measured:,.0f} rows/s); ratio {baseline / measured:.2f} of the raw COPY rate; "
        f"steps (s): {detail}; peak RSS {peak_rss_mib():,.0f} MiB"
    )


def test_ingestion_load_rate_against_raw_copy():
    data = synthetic_point_data(ROWS)
    baseline, n_raw = raw_copy(data)
    measured, n_loaded, steps = through_ingestion(data)
    assert "indexes" in steps  # new stations: a partition of their own
    print(_report("new stations (own partition)", ROWS, baseline, measured, steps))
    assert n_raw == n_loaded == ROWS


@pytest.mark.skipif(MERGE_ROWS == 0, reason="BENCH_MERGE_ROWS=0")
def test_merge_load_rate_against_raw_copy(monkeypatch):
    monkeypatch.setattr(services, "PARTITION_MIN_ROWS", MERGE_ROWS + 1)
    data = synthetic_point_data(MERGE_ROWS)
    baseline, n_raw = raw_copy(data)
    measured, n_loaded, steps = through_ingestion(data)
    assert "merge" in steps
    print(_report("merge into the parent table", MERGE_ROWS, baseline, measured, steps))
    assert n_raw == n_loaded == MERGE_ROWS
