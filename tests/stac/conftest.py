"""Fixtures of the STAC API tests: SYNTHETIC grid versions committed for a real server, then removed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from portal.catalog.models import Dataset, DatasetVersion
from portal.subsets.models import DownloadLog
from tests.publishing import publish_version, unpublish

SM1KM = "30131436-88d1-4be3-8e3d-14905a29d6d6"  # versions of one grid each (one crosses the antimeridian)
TWS = "6b23bed9-627c-4653-8157-2ddd5b323888"  # one version with two grids, made login-access here


@dataclass(frozen=True)
class Grid:
    """A SYNTHETIC grid: 1-degree cells whose centres span ``lon`` x ``lat`` (degrees), daily from ``start``."""

    lon: tuple[float, float]
    lat: tuple[float, float]
    start: str
    days: int = 3


def grid_dataset(grid: Grid) -> xr.Dataset:
    """The grid as CF NetCDF content: ``sm`` (float32, m3 m-3) = day * 100 + lat + lon / 1000."""
    lon = np.arange(grid.lon[0] + 0.5, grid.lon[1], 1.0)
    lat = np.arange(grid.lat[0] + 0.5, grid.lat[1], 1.0)
    time = pd.date_range(grid.start, periods=grid.days, freq="D")
    values = np.arange(grid.days)[:, None, None] * 100 + lat[None, :, None] + lon[None, None, :] / 1000
    return xr.Dataset(
        {
            "sm": (
                ("time", "lat", "lon"),
                values.astype("float32"),
                {"units": "m3 m-3", "long_name": "surface soil moisture (SYNTHETIC)"},
            )
        },
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


def publish_grids(dataset_id: str, grids: dict[str, Grid], notes: str = "") -> DatasetVersion:
    """Publish ``grids`` (file name -> Grid) as the next version of ``dataset_id`` through
    ``products.services.publish`` (:func:`tests.publishing.publish_version`: real checksums, cube stores built)."""
    return publish_version(
        dataset_id,
        {name: grid_dataset(grid) for name, grid in grids.items()},
        notes=notes,
        descriptions={name: f"SYNTHETIC grid {name}" for name in grids},
    )


@pytest.fixture(scope="module")
def stac_versions(django_db_setup, django_db_blocker):
    """SYNTHETIC versions COMMITTED for the live server (removed afterwards, the TWS record restored):

    * SM1KM v(n+1): Tibet 80-100 E, 28-38 N, 2015-01-01..03; v(n+2): the same, 2016-01-01..03;
      v(n+3): the Pacific across the antimeridian, 170 E - 170 W, 20-10 S, 2017-01-01..03;
    * TWS v(m+1): two grids (``a.nc`` 0-10 E, ``b.nc`` 20-30 E; 2018-01-01..03), login-access.

    Returns a dict: ``sm`` (the three SM1KM versions), ``tws`` (the TWS version).
    """
    with django_db_blocker.unblock():
        logs = set(DownloadLog.objects.values_list("id", flat=True))
        tws = Dataset.objects.get(id=TWS)
        share_type = tws.share_type
        sm = [
            publish_grids(SM1KM, {"sm.nc": Grid((80, 100), (28, 38), "2015-01-01")}, notes="Tibet 2015"),
            publish_grids(SM1KM, {"sm.nc": Grid((80, 100), (28, 38), "2016-01-01")}, notes="Tibet 2016"),
            publish_grids(SM1KM, {"sm.nc": Grid((170, 190), (-20, -10), "2017-01-01")}, notes="Pacific"),
        ]
        two = publish_grids(
            TWS, {"a.nc": Grid((0, 10), (40, 50), "2018-01-01"), "b.nc": Grid((20, 30), (40, 50), "2018-01-01")}
        )
        Dataset.objects.filter(id=TWS).update(share_type=Dataset.ShareType.LOGIN)
    try:
        yield {"sm": sm, "tws": two}
    finally:
        with django_db_blocker.unblock():
            Dataset.objects.filter(id=TWS).update(share_type=share_type)
            DownloadLog.objects.exclude(id__in=logs).delete()  # the store reads the server logged
            for version in [*sm, two]:
                unpublish(version)
