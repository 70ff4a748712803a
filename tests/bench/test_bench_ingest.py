"""Benchmark: loading observations with COPY + merge against the ORM's bulk_create (baseline).

Synthetic data (random values at made-up stations): the point is the load path, not the values.
Run with ``make bench``; prints the ratio, asserts only that both paths load the same rows.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from django.contrib.gis.geos import Point
from django.db import transaction

from ingestion.models import IngestRun, Observation, Station
from ingestion.readers.base import PointData
from ingestion.services import load_point_data

pytestmark = pytest.mark.django_db

N_STATIONS, N_TIMES, VARIABLES = 50, 1000, ["tmin", "tmax", "et", "precip"]


def synthetic_point_data() -> PointData:
    rng = np.random.default_rng(0)
    codes = [f"SYN-{i:03d}" for i in range(N_STATIONS)]
    stations = pd.DataFrame({"code": codes, "name": codes, "lat": rng.uniform(-60, 70, N_STATIONS),
                             "lon": rng.uniform(-180, 180, N_STATIONS), "elevation": np.nan, "land_cover": "",
                             "network": "SYNTHETIC", "source": "benchmark (synthetic)"})
    times = pd.date_range("1990-01-01", periods=N_TIMES, freq="D")
    index = pd.MultiIndex.from_product([codes, VARIABLES, times], names=["station", "variable", "time"])
    obs = index.to_frame(index=False)
    obs["value"] = rng.normal(size=len(obs))
    obs["units"], obs["quality_flag"], obs["is_validation"] = "1", "", False
    return PointData(stations, obs)


def _orm_load(data: PointData, run: IngestRun) -> int:
    ids = {}
    for row in data.stations.itertuples():
        ids[row.code] = Station.objects.update_or_create(
            network=row.network, code=row.code, defaults={"geom": Point(row.lon, row.lat, srid=4326)})[0].id
    objs = (Observation(station_id=ids[r.station], variable=r.variable, time=r.time.tz_localize("UTC"), value=r.value,
                        units=r.units, quality_flag=r.quality_flag, is_validation=r.is_validation, ingest_run=run)
            for r in data.observations.itertuples())
    Observation.objects.bulk_create(objs, batch_size=5000, ignore_conflicts=True)
    return Observation.objects.filter(station__network="SYNTHETIC").count()


def _timed(fn, data) -> tuple[float, int]:
    with transaction.atomic():
        run = IngestRun.objects.create(kind="bench", source_path="synthetic", checksum="-", reader="-", reader_version="-")
        start = time.perf_counter()
        result = fn(data, run)
        seconds = time.perf_counter() - start
        count = result[1] if isinstance(result, tuple) else result
        transaction.set_rollback(True)
    return seconds, count


def test_copy_load_against_orm_bulk_create():
    data = synthetic_point_data()
    rows = len(data.observations)
    baseline, n_orm = _timed(_orm_load, data)
    copy, n_copy = _timed(load_point_data, data)
    print(f"\n[bench ingest] {rows} observations: ORM bulk_create {baseline:.2f} s "
          f"({rows / baseline:,.0f} rows/s, baseline); COPY+merge {copy:.2f} s ({rows / copy:,.0f} rows/s); "
          f"speed-up {baseline / copy:.1f}x")
    assert n_orm == n_copy == rows
