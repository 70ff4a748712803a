"""Fixtures for the subset service tests: a published SYNTHETIC grid version."""

from __future__ import annotations

import io
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from portal.catalog.models import DatasetVersion
from portal.subsets.models import DownloadLog, SubsetJob
from tests.publishing import publish_version, unpublish

FT = "f52826e1-c61c-4b79-a43c-4ece3a8eca18"  # any imported record: the version below is rolled back after each test


def grid_values(time_index, lat, lon):
    """The synthetic grid's value at (time index, lat, lon): it encodes the cell, so tests can check positions."""
    return time_index * 1e5 + (lat + 90) * 1e3 + (lon + 180)


def publish_grid(dataset_id: str = FT, days: int = 3, step: float = 1.0) -> DatasetVersion:
    """Publish a SYNTHETIC global grid of ``days`` daily steps at ``step`` degrees as a new version.

    One variable ``sm`` (float32, "m3 m-3") whose values are :func:`grid_values` of the cell, in
    ``grid.nc``, published through ``products.services.publish`` (:func:`tests.publishing.publish_version`:
    the record's attributes stamped, the real checksum, the cube stores built; the record's search document
    follows the new version by itself: portal/catalog/apps.py).
    """
    lat, lon = np.arange(-90 + step / 2, 90, step), np.arange(-180 + step / 2, 180, step)
    time = pd.date_range("2015-01-01", periods=days, freq="D")
    values = grid_values(np.arange(days)[:, None, None], lat[None, :, None], lon[None, None, :])
    ds = xr.Dataset(
        {"sm": (("time", "lat", "lon"), values.astype("float32"), {"units": "m3 m-3"})},
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )
    return publish_version(dataset_id, {"grid.nc": ds})


@pytest.fixture
def grid_version(django_db_setup) -> DatasetVersion:
    """A published version holding one SYNTHETIC 1-degree global grid of 3 days (values encode the cell).

    Created inside the test's transaction: visible to the Django test client only.
    """
    return publish_grid()


@pytest.fixture(scope="session")
def live_grid(django_db_setup, django_db_blocker) -> DatasetVersion:
    """:func:`publish_grid` COMMITTED, for tests that use a real server or worker (``portal_url``,
    a Celery worker); removed at the end of the session. A 0.5-degree grid of 20 days (41 MB)."""
    with django_db_blocker.unblock():
        version = publish_grid(days=20, step=0.5)
    yield version
    with django_db_blocker.unblock():
        unpublish(version)


def csv_table(data: bytes):
    """A CSV answer as a DataFrame whose columns are the bare names (the header says ``name [units]``)."""
    table = pd.read_csv(io.BytesIO(data))
    assert all("[" in c for c in table.columns if c not in ("time",)), list(table.columns)  # units in the header
    return table.rename(columns=lambda c: c.split(" [")[0])


@contextmanager
def committed_grid(django_db_blocker, dataset_id: str = FT, days: int = 3, step: float = 1.0):
    """:func:`publish_grid`, committed for servers in other processes; yields the version, then deletes it with
    the jobs and download logs written meanwhile (tests run in rolled-back transactions; servers commit)."""
    with django_db_blocker.unblock():
        jobs, logs = (
            set(SubsetJob.objects.values_list("id", flat=True)),
            set(DownloadLog.objects.values_list("id", flat=True)),
        )
        version = publish_grid(dataset_id, days=days, step=step)
    try:
        yield version
    finally:
        with django_db_blocker.unblock():
            SubsetJob.objects.exclude(id__in=jobs).delete()
            DownloadLog.objects.exclude(id__in=logs).delete()
            unpublish(version)
