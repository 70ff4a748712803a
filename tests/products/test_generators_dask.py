"""The generators' chunked grids on a Dask cluster give the files they give in one process (issue 18).

No database. SYNTHETIC inputs only: the ET grid's sub-daily forcing of ``tests.products.test_chunked``
(written to a NetCDF file, so the workers open it by path as they would on a real cluster), the
freeze/thaw twin and a made-up soil moisture field. One module-scoped :class:`distributed.LocalCluster`
of two worker processes (the real case: features, models and predict functions pickled to other
processes) serves every test. Outputs are compared bitwise: every path runs the same window functions
on the same windows; only the order in which windows reach the file differs. The workers unpickle
what they are sent without Django: nothing shipped may come from a module that needs it (this one
imports the pipelines' settings helper inside its test only).
"""

from __future__ import annotations

import functools

import netCDF4
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from products.data_kind import DataKind
from products.generators import et_grid, sm_1km
from products.generators import freeze_thaw as ft
from products.generators.twins import freeze_thaw as ft_twin
from products.methods import cluster
from tests.products.test_chunked import small_land, synthetic_forcing, synthetic_model
from tests.products.test_et_uncertainty import synthetic_pair


@pytest.fixture(scope="module")
def client():
    with cluster.local_client(2) as c:
        assert len(c.nthreads()) == 2
        yield c


def variables(path, names) -> dict[str, np.ndarray]:
    """Stored values (no masking or scaling) of ``names``."""
    with netCDF4.Dataset(path) as nc:
        out = {}
        for name in names:
            nc[name].set_auto_maskandscale(False)
            out[name] = nc[name][:]
        return out


def test_the_et_grid_and_its_standard_error_on_two_dask_workers_match_one_process(tmp_path, client):
    lat, lon = np.arange(-44.5, -24.5, 1.0), np.arange(100.5, 130.5, 1.0)
    times = pd.date_range("2016-01-31", periods=16, freq="3h")
    land = small_land((lat.size, lon.size))
    forcing = tmp_path / "forcing.nc"
    synthetic_forcing(lat, lon, times, land).to_netcdf(forcing)
    model, pair = synthetic_model(), synthetic_pair()
    with xr.open_dataset(forcing) as lazy:  # read window by window, by path, on the workers
        run = functools.partial(et_grid.predict_et_grid, model, lazy, chunk=(10, 16), quantile_models=pair)
        run(tmp_path / "here.nc")
        run(tmp_path / "dask.nc", client=client)
    here = variables(tmp_path / "here.nc", ["et", et_grid.SE_NAME])
    there = variables(tmp_path / "dask.nc", ["et", et_grid.SE_NAME])
    assert (here["et"] != -9999).sum() == 2 * land.sum() > 0  # two days of land cells predicted
    for name in here:
        np.testing.assert_array_equal(there[name], here[name])


def test_the_freeze_thaw_state_and_probability_on_two_dask_workers_match_one_process(tmp_path, client):
    twin = ft_twin.make_twin(n_lat=24, n_lon=48, n_days=2, seed=3)
    data = ft.samples(twin.predictors, twin.truth, twin.features)
    model = ft.fit_select(data, ft.block_split(data.lat, data.lon, 2.0, seed=1), n_estimators=10, seed=1).model
    run = functools.partial(
        ft.write_state_grid,
        predictors=twin.predictors,
        features=twin.features,
        predict=model.predict,
        probability=functools.partial(ft.class_probability, model),
        data_kind=DataKind.SYNTHETIC,
        chunk=(1, 10, 20),
        extra={"ft_reference": (twin.truth, ft.STATE_ATTRS)},
    )
    here, there = run(tmp_path / "here.nc"), run(tmp_path / "dask.nc", client=client)
    assert here["predicted"] == there["predicted"] == twin.truth.size and here["frozen"] == there["frozen"] > 0
    names = [ft.STATE_NAME, ft.PROBABILITY_NAME, "ft_reference"]
    a, b = variables(tmp_path / "here.nc", names), variables(tmp_path / "dask.nc", names)
    for name in names:
        np.testing.assert_array_equal(b[name], a[name])


def test_the_packed_1km_grid_and_its_geotiff_on_two_dask_workers_match_one_process(tmp_path, client):
    rng = np.random.default_rng(5)
    values = rng.uniform(0.05, 0.45, (1, 60, 90))  # SYNTHETIC m3 m-3
    values[0, :10, :20] = np.nan
    grid = sm_1km.Grid(10.0, 100.0, 60, 90, sm_1km.FINE_RES)
    run = functools.partial(
        sm_1km.write_product,
        functools.partial(sm_1km.field_features, values=values),
        sm_1km.first_column,
        grid=grid,
        times=np.array(["2016-01-01"], dtype="datetime64[ns]"),
        chunk=(30, 30),
        standard_error=functools.partial(np.multiply, 0.05),  # SYNTHETIC: 5 % of the value; pickles by name
        se_attrs=sm_1km.standard_error_attrs("SYNTHETIC test."),
        global_attrs={"data_kind": DataKind.SYNTHETIC},
    )
    here = run(nc_path=tmp_path / "here.nc", tif_path=tmp_path / "here.tif")
    there = run(nc_path=tmp_path / "dask.nc", tif_path=tmp_path / "dask.tif", client=client)
    assert here.n_valid == there.n_valid == np.isfinite(values).sum()
    assert here.extra == there.extra == {"n_standard_error": here.n_valid}
    names = ["sm", "sm" + sm_1km.SE_SUFFIX]
    a, b = variables(tmp_path / "here.nc", names), variables(tmp_path / "dask.nc", names)
    for name in names:
        np.testing.assert_array_equal(b[name], a[name])
    with rasterio.open(tmp_path / "here.tif") as x, rasterio.open(tmp_path / "dask.tif") as y:
        np.testing.assert_array_equal(y.read(), x.read())


@pytest.mark.fast
def test_the_pipelines_take_where_to_compute_from_the_settings():
    from django.test import override_settings

    from products.pipelines.compute import grid_compute, tree_options

    with override_settings(DASK_SCHEDULER_ADDRESS="", DASK_LOCAL_WORKERS=3):
        assert grid_compute() == {"workers": 1, "client": None}
    with override_settings(DASK_SCHEDULER_ADDRESS="local", DASK_LOCAL_WORKERS=3):
        assert grid_compute() == {"workers": 3, "client": "local"}
    with override_settings(DASK_SCHEDULER_ADDRESS=" tcp://10.0.0.5:8786 ", DASK_LOCAL_WORKERS=3):
        assert grid_compute() == {"workers": 1, "client": "tcp://10.0.0.5:8786"}
    with override_settings(GENERATION_COMPILED_TREES=False, GENERATION_TREES_CACHE="/somewhere"):
        assert tree_options() == {"compiled_trees": False, "trees_cache": "/somewhere"}
