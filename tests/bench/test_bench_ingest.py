"""Benchmark: loading observations through the ingestion path against a raw COPY (baseline).

Synthetic data (random values at made-up stations): the point is the load path, not the values.
Both are measured in the same run on the same rows: the baseline is PostgreSQL ``COPY`` of the
rows, already formatted as CSV, into a bare (logged, not temporary) table without indexes or
constraints; the measured
path is :func:`ingestion.services.load_point_data` from a PointData table (format, COPY into a
staging table, merge into the indexed observation table with ON CONFLICT). Run with
``make bench`` (``BENCH_ROWS`` sets the size, default 5 million). Prints rows/s and the ratio;
asserts only that both loaded every row.
"""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pandas as pd
import pytest
from django.db import connection, transaction

from ingestion.models import IngestRun, Observation
from ingestion.readers.base import PointData
from ingestion.services import load_point_data

pytestmark = pytest.mark.django_db

ROWS = int(os.environ.get("BENCH_ROWS", 5_000_000))
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


def through_ingestion(data: PointData) -> tuple[float, int]:
    with transaction.atomic():
        run = IngestRun.objects.create(
            kind="bench", source_path="synthetic", checksum="-", reader="-", reader_version="-"
        )
        start = time.perf_counter()
        _, inserted, _ = load_point_data(data, run)
        seconds = time.perf_counter() - start
        count = Observation.objects.filter(ingest_run=run).count()
        assert count == inserted
        transaction.set_rollback(True)
    return seconds, count


def test_ingestion_load_rate_against_raw_copy():
    data = synthetic_point_data(ROWS)
    baseline, n_raw = raw_copy(data)
    measured, n_loaded = through_ingestion(data)
    print(
        f"\n[bench ingest] {ROWS:,} observations: raw COPY into a bare table {baseline:.1f} s "
        f"({ROWS / baseline:,.0f} rows/s, baseline); ingestion load (format + COPY + merge into the indexed "
        f"table) {measured:.1f} s ({ROWS / measured:,.0f} rows/s); ratio {baseline / measured:.2f} "
        f"of the raw COPY rate"
    )
    assert n_raw == n_loaded == ROWS
