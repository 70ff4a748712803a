"""Freeze/thaw readers (SMAP L3 FT, SMOS L3 soil FT) and AMSR2 L3 brightness temperatures as FT predictors.

No real file of these products is in the sample data: the files are written here in the documented
layouts (see :mod:`ingestion.readers.freeze_thaw` and :mod:`ingestion.readers.amsr2`). No database.
"""

from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from rasterio.warp import transform as proj_transform

from ingestion.readers import amsr2, freeze_thaw, smap
from ingestion.readers.base import ReaderError
from products.generators import freeze_thaw as ft_generator


def write_smap_ft(folder: Path, date="20150105", shift_lat=0.0) -> Path:
    path = folder / f"SMAP_L3_FT_P_{date}_R18290_001.h5"
    rows, cols = 406, 964
    y, x, _, _ = smap.ease2_axes((rows, cols))
    lon = np.asarray(proj_transform("EPSG:6933", "EPSG:4326", x, np.zeros(cols))[0])
    lat = np.asarray(proj_transform("EPSG:6933", "EPSG:4326", np.zeros(rows), y)[1]) + shift_lat
    ft = np.full((2, rows, cols), 254, "u1")
    ft[0, 100, 500], ft[0, 50, 10], ft[0, 60, 20] = 1, 0, 7  # 7: not a state -> missing
    ft[1, 100, 500] = 0  # thawed by the evening
    with h5py.File(path, "w") as f:
        g = f.create_group(freeze_thaw.SMAP_GROUP)
        d = g.create_dataset("freeze_thaw", data=ft)
        d.attrs["_FillValue"] = np.uint8(254)
        g.create_dataset("latitude", data=np.where(ft[0] < 254, lat[:, None], -9999.0).astype("f4"))
        g.create_dataset("longitude", data=np.where(ft[0] < 254, lon[None, :], -9999.0).astype("f4"))
        f.create_group("Freeze_Thaw_Retrieval_Data_Polar")
    return path


def write_smos_ft(
    folder: Path,
    name="W_XX-ESA,SMOS,NH_25KM_EASE2_20150105_O_20150106T000000_l3soilft.nc",
    shape=(720, 720),
    x_offset=0.0,
) -> Path:
    path = folder / name
    y, x = (
        freeze_thaw.ease2_north_axes(shape)
        if shape == (720, 720)
        else (np.arange(shape[0]) * 25e3, np.arange(shape[1]) * 25e3)
    )
    l3ft = np.full((1, *shape), 255, "u1")
    if shape == (720, 720):
        l3ft[0, 360, 360], l3ft[0, 100, 200], l3ft[0, 500, 600] = 2, 1, 0  # pole frozen, partial, thawed
    ds = xr.Dataset(
        {
            "L3FT": (("time", "y", "x"), l3ft, {"long_name": "soil state"}),
            "PM": (("time", "y", "x"), np.zeros((1, *shape), "u1")),
        },
        coords={
            "time": ("time", np.array(["2015-01-05"], "datetime64[ns]")),
            "y": ("y", y, {"units": "m"}),
            "x": ("x", x + x_offset, {"units": "m"}),
        },
    )
    ds["L3FT"].encoding["_FillValue"] = np.uint8(255)
    ds.to_netcdf(path, format="NETCDF4")
    return path


def test_smap_ft_am_and_pm_states_open_on_the_ease2_36km_grid(tmp_path):
    ds = freeze_thaw.open_grid(write_smap_ft(tmp_path))
    assert ds.attrs["crs"] == "EPSG:6933" and set(ds.data_vars) == {"ft_state_am", "ft_state_pm"}
    am = ds["ft_state_am"]
    assert am.shape == (1, 406, 964) and am.dtype == np.uint8
    assert list(am.attrs["flag_values"]) == [0, 1] and am.attrs["flag_meanings"] == "thawed frozen"
    # file row 100 is row 305 from the south once latitudes ascend
    assert int(am[0, 405 - 100, 500]) == 1 and int(ds["ft_state_pm"][0, 405 - 100, 500]) == 0
    assert int(am[0, 405 - 50, 10]) == 0
    assert int(am[0, 405 - 60, 20]) == 255  # a value other than 0/1 is missing, not a state
    assert int((am < 255).sum()) == 2
    assert ds["time"].values[0] == np.datetime64("2015-01-05")


def test_smap_ft_file_with_one_pass_gives_the_am_state_only(tmp_path):
    path = write_smap_ft(tmp_path)
    with h5py.File(path, "a") as f:  # a 2-D layout (one pass)
        data = f[freeze_thaw.SMAP_GROUP]["freeze_thaw"][0]
        del f[freeze_thaw.SMAP_GROUP]["freeze_thaw"]
        f[freeze_thaw.SMAP_GROUP].create_dataset("freeze_thaw", data=data)
    ds = freeze_thaw.open_smap_ft(path)
    assert set(ds.data_vars) == {"ft_state_am"} and int(ds["ft_state_am"][0, 305, 500]) == 1


def test_it_rejects_smap_ft_coordinates_off_the_grid_and_other_grids(tmp_path):
    with pytest.raises(ReaderError, match="latitude"):
        freeze_thaw.open_grid(write_smap_ft(tmp_path, shift_lat=0.3))
    path = tmp_path / "SMAP_L3_FT_P_20150106_R18290_001.h5"
    with h5py.File(path, "w") as f:
        f.create_group(freeze_thaw.SMAP_GROUP).create_dataset("freeze_thaw", data=np.zeros((2, 10, 20), "u1"))
    with pytest.raises(ReaderError, match="406 x 964"):
        freeze_thaw.open_grid(path)
    renamed = tmp_path / "smap_ft.h5"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(ReaderError, match="neither"):
        freeze_thaw.open_grid(renamed)


def test_smos_ft_classes_and_binary_state_on_the_ease2_north_25km_grid(tmp_path):
    ds = freeze_thaw.open_grid(write_smos_ft(tmp_path))
    assert ds.attrs["crs"] == "EPSG:6931" and ds["ft_class"].shape == (1, 720, 720)
    assert ds["ft_class"].attrs["flag_meanings"] == "thawed partially_frozen frozen"
    cls, state = ds["ft_class"].values[0], ds["ft_state"].values[0]
    assert (cls[360, 360], cls[100, 200], cls[500, 600]) == (2, 1, 0)
    assert (state[360, 360], state[100, 200], state[500, 600]) == (1, 1, 0)  # partially frozen -> frozen
    assert int((cls < 255).sum()) == 3 and int((state < 255).sum()) == 3
    # the cell next to the pole: lat close to 90, and PROJ agrees with the 2-D lat/lon
    assert float(ds["lat"][360, 360]) > 89.7
    lon, lat = proj_transform("EPSG:6931", "EPSG:4326", [float(ds["x"][200])], [float(ds["y"][100])])
    assert float(ds["lat"][100, 200]) == pytest.approx(lat[0]) and float(ds["lon"][100, 200]) == pytest.approx(lon[0])
    thawed = freeze_thaw.open_smos_ft(write_smos_ft(tmp_path), partial_as="thawed")
    assert int(thawed["ft_state"][0, 100, 200]) == 0


def test_it_rejects_smos_ft_on_another_grid_or_without_l3ft(tmp_path):
    with pytest.raises(ReaderError, match="720 x 720"):
        freeze_thaw.open_grid(write_smos_ft(tmp_path, shape=(10, 12)))
    with pytest.raises(ReaderError, match="EASE-Grid 2.0 North"):
        freeze_thaw.open_grid(write_smos_ft(tmp_path, name="b_l3soilft.nc", x_offset=12500.0))
    path = tmp_path / "c_l3soilft.nc"
    xr.Dataset({"other": (("time", "y", "x"), np.zeros((1, 2, 2), "u1"))}).to_netcdf(path)
    with pytest.raises(ReaderError, match="L3FT"):
        freeze_thaw.open_grid(path)


def test_ft_states_sample_onto_a_latlon_grid_by_nearest_cell(tmp_path):
    smos = freeze_thaw.open_grid(write_smos_ft(tmp_path))
    lat0, lon0 = float(smos["lat"][100, 200]), float(smos["lon"][100, 200])
    out = freeze_thaw.to_latlon(smos["ft_state"], [lat0, -45.0], [lon0], crs=smos.attrs["crs"])
    assert out.shape == (1, 2, 1) and out[0, 0, 0] == 1 and out[0, 1, 0] == 255  # southern hemisphere: off grid
    sm = freeze_thaw.open_grid(write_smap_ft(tmp_path))
    lat1, lon1 = float(sm["lat"][305]), float(sm["lon"][500])
    grid = freeze_thaw.to_latlon(sm["ft_state_am"], [lat1], [lon1, lon1 + 0.1], crs=sm.attrs["crs"])
    assert grid.tolist() == [[[1, 1]]]


def test_amsr2_channels_of_several_files_become_named_ft_predictors(tmp_path):
    paths = []
    for freq, scale in (("36", 25000), ("18", 24000)):
        path = tmp_path / f"GW1AM2_20150105_01D_EQMD_L3SGT{freq}LA2220220.h5"
        tb = np.full((720, 1440), 65534, "u2")
        tb[0, 0] = scale
        with h5py.File(path, "w") as f:
            for pol, off in (("H", 0), ("V", 1000)):
                d = f.create_dataset(f"Brightness Temperature ({pol})", data=np.where(tb < 65534, tb + off, tb))
                d.attrs["SCALE FACTOR"] = np.array([0.01], "f4")
        paths.append(path)
    cube = ft_generator.tb_predictors([amsr2.open_grid(p) for p in paths])
    assert set(cube.data_vars) >= {"tb36h_d", "tb36v_d", "tb18h_d", "tb18v_d", "npr36_d", "sg_36v_18v_d"}
    cell = cube.sel(lat=89.875, lon=0.125).isel(time=0)
    assert float(cell["tb36v_d"]) == pytest.approx(260.0, abs=1e-3) and float(cell["tb18h_d"]) == pytest.approx(240.0)
    assert float(cell["npr36_d"]) == pytest.approx((260 - 250) / (260 + 250), abs=1e-6)
    assert float(cell["sg_36v_18v_d"]) == pytest.approx((260 - 250) / (36.5 - 18.7), abs=1e-4)
    with pytest.raises(ValueError, match="twice"):
        ft_generator.tb_predictors([amsr2.open_grid(paths[0]), amsr2.open_grid(paths[0])])
