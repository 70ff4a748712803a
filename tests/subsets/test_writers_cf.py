"""Every file the subset writers write passes the standard checkers and keeps what the source says.

Pure tests (no database) on SYNTHETIC cubes that mimic the three kinds of published products:

* ``et``: float32 evapotranspiration (kg m-2 d-1 = mm/day) with a ``crs`` grid mapping whose
  ``crs_wkt`` does not parse (as sm_1km's generator used to write) and cell bounds;
* ``sm_1km``: soil moisture packed as int16 x 0.001 with ``_FillValue`` -9999 and ``valid_range``
  in packed units, a ``crs`` and time bounds;
* ``ft_state``: the uint8 freeze/thaw flags (fill 255, ``flag_values`` / ``flag_meanings``), no
  grid mapping and no bounds (the writers make them).

Each cube is written to NetCDF and opened as the service opens the published grids: from its
cube store (:func:`portal.subsets.store.build_stores`, which copies only the (time, lat, lon)
variables) and, for comparison, from the NetCDF itself. Selections go through
:func:`portal.subsets.core.select` / ``point_series`` / ``area_mean`` (box, antimeridian box,
polygon), then every writer. The checkers (:func:`tests.cfcheck.check`): cfchecker without errors,
IOOS ``cf:1.8`` at 100 %, ``acdd:1.3`` at 90 % or more.

The global attributes of the sources are those of a published file: the record's (what
:func:`portal.catalog.metadata.acdd_attributes` returns, which the service also passes) and the
product's own. The product's own include ``platform`` / ``instrument`` (with vocabularies) and the
vertical extent: ACDD 90 % on a one-variable answer needs them (the writers make every other ACDD
attribute), see :func:`test_the_writers_leave_only_the_products_own_discovery_attributes_to_the_source`.
"""

from __future__ import annotations

import csv
import json
import zipfile

import netCDF4
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
import xarray as xr
import zarr

from portal.subsets import core, store, writers
from portal.subsets.core import SubsetError, SubsetRequest
from tests.cfcheck import check

# the IOOS checker's own deprecation (compliance-checker 6.1), raised inside tests.cfcheck.check
pytestmark = pytest.mark.filterwarnings("ignore:Passing the dataset to every single check is deprecated")

LON = np.arange(-179.5, 180.0, 1.0)
LAT = np.arange(-89.5, 90.0, 1.0)
TIME = pd.date_range("2001-01-01", periods=4, freq="D")

RECORD = {  # as portal.catalog.metadata.acdd_attributes returns them
    "title": "Global high-resolution evapotranspiration dataset",
    "title_zh": "全球蒸散发数据集",
    "summary": "Daily evapotranspiration fused from 13 products with machine learning.",
    "keywords": "evapotranspiration, land surface",
    "keywords_vocabulary": "TPDC:TPDC keywords",
    "standard_name_vocabulary": "CF Standard Name Table v93",
    "id": "e22aef74-4534-4624-8e2e-f4eab129675b",
    "naming_authority": "org.hydroportal",
    "doi": "10.11888/Terre.tpdc.000000",
    "creator_name": "A. Author",
    "creator_type": "person",
    "creator_institution": "An Institute",
    "creator_email": "author@example.org",
    "creator_url": "https://data.tpdc.ac.cn",
    "contributor_name": "A. Author",
    "contributor_role": "contributor",
    "institution": "An Institute",
    "publisher_name": "TPDC",
    "publisher_type": "institution",
    "publisher_institution": "TPDC",
    "publisher_url": "https://data.tpdc.ac.cn",
    "publisher_email": "data@tpdc.ac.cn",
    "license": "CC-BY-4.0 (https://creativecommons.org/licenses/by/4.0/)",
    "references": "https://doi.org/10.11888/Terre.tpdc.000000",
    "metadata_link": "https://doi.org/10.11888/x",
    "acknowledgement": "Cite the dataset as given in citation.",
    "citation": "Author, A. (2024): ET. TPDC.",
    "processing_level": "L4",
    "source": "machine learning fusion",
    "project": "Land-surface hydrology data portal",
    "date_created": "2024-01-01T00:00:00+00:00",
    "date_modified": "2024-02-01T00:00:00+00:00",
    "date_metadata_modified": "2024-02-01T00:00:00+00:00",
    "product_version": "v1",
    "date_issued": "2024-02-02T00:00:00+00:00",
}
PRODUCT = {  # a product's own discovery attributes (not in the record)
    "platform": "Models/Analyses",
    "platform_vocabulary": "GCMD Platform Keywords",
    "instrument": "Computer",
    "instrument_vocabulary": "GCMD Instrument Keywords",
    "geospatial_vertical_min": 0.0,
    "geospatial_vertical_max": 0.0,
    "geospatial_vertical_units": "m",
    "geospatial_vertical_positive": "up",
}
STALE = {  # the published grid's own extent: a subset must not repeat it
    "geospatial_lat_min": -89.5,
    "geospatial_lat_max": 89.5,
    "geospatial_lon_min": -179.5,
    "geospatial_lon_max": 179.5,
    "time_coverage_start": "2001-01-01T00:00:00Z",
    "history": "2024-02-02T00:00:00Z published by products.services.publish",
    "data-kind": "synthetic twin",
}
CRS_BAD_WKT = {
    "grid_mapping_name": "latitude_longitude",
    "semi_major_axis": 6378137.0,
    "inverse_flattening": 298.257223563,
    "crs_wkt": 'GEOGCS["WGS 84",DATUM["WGS_1984"]]',
}
POLYGON = "POLYGON ((0 0, 20 0.5, 5.5 15, 0 0))"
SELECTIONS = ("box", "antimeridian", "polygon", "point", "area_box", "area_polygon")


def _coords(bounds: bool) -> dict:
    coords = {
        "time": ("time", TIME, {"standard_name": "time", "axis": "T"}),
        "lat": ("lat", LAT, {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "lon": ("lon", LON, {"standard_name": "longitude", "units": "degrees_east", "axis": "X"}),
    }
    if bounds:
        for name in coords:
            coords[name][2]["bounds"] = f"{name}_bnds"
    return coords


def _bounds() -> dict:
    return {
        "time_bnds": (("time", "nv"), np.stack([TIME.values, (TIME + pd.Timedelta(days=1)).values], axis=1)),
        "lat_bnds": (("lat", "nv"), np.stack([LAT - 0.5, LAT + 0.5], axis=1)),
        "lon_bnds": (("lon", "nv"), np.stack([LON - 0.5, LON + 0.5], axis=1)),
    }


TIME_ENCODING = {"units": "days since 1970-01-01", "dtype": "float64", "_FillValue": None}


def write_products(folder) -> dict[str, object]:
    """The three SYNTHETIC published products as NetCDF files: {key: path}."""
    rng = np.random.default_rng(7)
    shape = (TIME.size, LAT.size, LON.size)
    attrs = {**RECORD, **PRODUCT, **STALE, "Conventions": "CF-1.8, ACDD-1.3"}
    no_fill = {name: {"_FillValue": None} for name in ("lat", "lon", "lat_bnds", "lon_bnds")}
    paths = {}

    et = rng.random(shape, dtype=np.float32) * 5
    et[0, 100, 100] = np.nan
    et[:, :3] = 0.139  # a value float32 cannot hold exactly
    ds = xr.Dataset(
        {
            "et": (
                ("time", "lat", "lon"),
                et,
                {
                    "standard_name": "water_evapotranspiration_flux",
                    "long_name": "evapotranspiration",
                    "units": "kg m-2 d-1",
                    "cell_methods": "time: mean",
                    "grid_mapping": "crs",
                    "coverage_content_type": "modelResult",
                },
            ),
            "crs": ((), np.int32(0), CRS_BAD_WKT),
            **_bounds(),
        },
        coords=_coords(True),
        attrs=attrs,
    )
    paths["et"] = folder / "et.nc"
    ds.to_netcdf(
        paths["et"],
        encoding={
            "time": TIME_ENCODING,
            "time_bnds": TIME_ENCODING,
            **no_fill,
            "et": {"_FillValue": np.float32(np.nan)},
        },
    )

    sm = np.round(rng.random(shape) * 0.5, 3)
    sm[:, :20] = np.nan
    sm[1, 95, 10] = np.nan
    ds = xr.Dataset(
        {
            "sm_1km": (
                ("time", "lat", "lon"),
                sm,
                {
                    "standard_name": "volume_fraction_of_condensed_water_in_soil",
                    "long_name": "surface soil moisture",
                    "units": "m3 m-3",
                    "grid_mapping": "crs",
                    "valid_range": np.array([0, 1000], "int16"),
                },
            ),
            "crs": ((), np.int32(0), CRS_BAD_WKT),
            "time_bnds": _bounds()["time_bnds"],
        },
        coords={
            k: (v[0], v[1], {a: b for a, b in v[2].items() if k == "time" or a != "bounds"})
            for k, v in _coords(True).items()
        },
        attrs=attrs,
    )
    paths["sm_1km"] = folder / "sm_1km.nc"
    ds.to_netcdf(
        paths["sm_1km"],
        encoding={
            "time": TIME_ENCODING,
            "time_bnds": TIME_ENCODING,
            "lat": {"_FillValue": None},
            "lon": {"_FillValue": None},
            "sm_1km": {
                "dtype": "int16",
                "scale_factor": np.float32(0.001),
                "add_offset": np.float32(0.0),
                "_FillValue": np.int16(-9999),
            },
        },
    )

    ft = rng.integers(0, 2, shape).astype("uint8")
    ft[:, :30] = 255
    ft[2, 92, 5] = 255
    ds = xr.Dataset(
        {
            "ft_state": (
                ("time", "lat", "lon"),
                ft,
                {
                    "long_name": "surface soil freeze/thaw state",
                    "flag_values": np.array([0, 1], "u1"),
                    "flag_meanings": "thawed frozen",
                    "valid_range": np.array([0, 1], "u1"),
                    "units": "1",
                },
            )
        },
        coords=_coords(False),
        attrs=attrs,
    )
    paths["ft"] = folder / "ft.nc"
    ds.to_netcdf(
        paths["ft"],
        encoding={
            "time": TIME_ENCODING,
            "lat": {"_FillValue": None},
            "lon": {"_FillValue": None},
            "ft_state": {"dtype": "uint8", "_FillValue": np.uint8(255)},
        },
    )
    return paths


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    """{(key, opened from): Dataset}: each product opened from its cube store (as the service does)
    and from its NetCDF."""
    folder = tmp_path_factory.mktemp("products")
    opened = {}
    for key, path in write_products(folder).items():
        store.build_stores(path)
        opened[key, "store"] = store.open_store(store.store_paths(path)["map"])
        opened[key, "netcdf"] = xr.open_dataset(path)
    yield opened
    for ds in opened.values():
        ds.close()


def answer(ds: xr.Dataset, selection: str) -> xr.Dataset:
    """What the service computes for ``selection`` (see :data:`SELECTIONS`)."""
    if selection == "box":
        return core.select(ds, SubsetRequest(bbox=(10, -20, 30, 0), time=("2001-01-02", None)))
    if selection == "antimeridian":
        return core.select(ds, SubsetRequest(bbox=(170, -10, -170, 10), space_stride=2))
    if selection == "polygon":
        return core.select(ds, SubsetRequest(polygon=POLYGON))
    if selection == "point":
        return core.point_series(ds, 10.2, 20.3)[0]
    if selection == "area_box":
        return core.area_mean(ds, SubsetRequest(bbox=(170, -10, -170, 10)))
    return core.area_mean(ds, SubsetRequest(polygon=POLYGON))


def raw(path, name):
    """The stored (packed) values and attributes of a variable, as netCDF-C holds them."""
    with netCDF4.Dataset(path) as nc:
        var = nc[name]
        var.set_auto_maskandscale(False)
        return var[...], {k: var.getncattr(k) for k in var.ncattrs()}, var.dtype


# --------------------------------------------------------------------------- the checkers


@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("key", ["et", "sm_1km", "ft"])
@pytest.mark.parametrize("opened", ["store", "netcdf"])
def test_every_netcdf_answer_passes_cfchecker_and_the_ioos_cf_and_acdd_suites(
    products, key, opened, selection, tmp_path
):
    path = writers.write(answer(products[key, opened], selection), tmp_path / "answer.nc", "netcdf", attrs=RECORD)
    report = check(path)
    assert report.cf_errors == [], report.explain()
    assert report.score("cf:1.8") == 1.0, report.explain()
    assert report.score("acdd:1.3") >= 0.9, report.explain()


def test_the_writers_leave_only_the_products_own_discovery_attributes_to_the_source(products, tmp_path):
    sub = answer(products["et", "store"], "box")
    sub.attrs = {}  # a source without any global attribute; the record's only
    report = check(writers.to_netcdf(sub, tmp_path / "bare.nc", attrs=RECORD))
    assert report.cf_errors == [] and report.score("cf:1.8") == 1.0, report.explain()
    missing = " ".join(report.failures["acdd:1.3"])
    for name in ("platform", "instrument", "geospatial_vertical_min", "program"):
        assert f"{name} not present" in missing
    others = [
        m
        for m in missing.split(";")
        if "not present" in m and not any(k in m for k in ("platform", "instrument", "vertical", "program"))
    ]
    assert others == [], report.explain()


# --------------------------------------------------------------------------- what is kept


@pytest.mark.parametrize("opened", ["store", "netcdf"])
def test_packed_soil_moisture_stays_int16_with_its_packing_also_after_a_polygon_mask(products, opened, tmp_path):
    source = products["sm_1km", opened]
    for selection in ("box", "polygon", "point"):
        sub = answer(source, selection)
        path = writers.to_netcdf(sub, tmp_path / f"{selection}.nc", attrs=RECORD)
        values, attrs, dtype = raw(path, "sm_1km")
        assert dtype == np.int16
        assert attrs["scale_factor"] == np.float32(0.001) and attrs["scale_factor"].dtype == np.float32
        assert attrs["add_offset"] == 0 and attrs["_FillValue"] == -9999 and attrs["_FillValue"].dtype == np.int16
        assert attrs["valid_range"].dtype == np.int16 and list(attrs["valid_range"]) == [0, 1000]
        expected = sub["sm_1km"].values
        assert ((values == -9999) == np.isnan(expected)).all()
        np.testing.assert_array_equal(values[values != -9999], np.round(expected[~np.isnan(expected)] / 0.001))
        if selection == "polygon":
            inside = shapely.contains_xy(shapely.from_wkt(POLYGON), *np.meshgrid(sub.lon, sub.lat))
            assert (values[:, ~inside] == -9999).all()
        with xr.open_dataset(path) as back:  # float32 packing: the values to float32 precision
            np.testing.assert_allclose(back["sm_1km"].values, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("opened", ["store", "netcdf"])
def test_freeze_thaw_flags_stay_unsigned_bytes_with_flag_values_of_the_same_type(products, opened, tmp_path):
    sub = answer(products["ft", opened], "polygon")
    path = writers.to_netcdf(sub, tmp_path / "ft.nc", attrs=RECORD)
    values, attrs, dtype = raw(path, "ft_state")
    # CF-1.8 has no unsigned types: a byte with the NUG _Unsigned attribute, read back as uint8
    assert dtype == np.int8 and attrs["_Unsigned"] == "true" and attrs["_FillValue"] == np.int8(-1)
    assert attrs["flag_values"].dtype == np.int8 and list(attrs["flag_values"]) == [0, 1]
    assert attrs["flag_meanings"] == "thawed frozen" and attrs["valid_range"].dtype == np.int8
    with netCDF4.Dataset(path) as nc:
        read = nc["ft_state"][...]
    assert read.dtype == np.uint8
    expected = sub["ft_state"].values
    np.testing.assert_array_equal(read.mask, np.isnan(expected))
    np.testing.assert_array_equal(read.compressed(), expected[~np.isnan(expected)])
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["ft_state"].values, expected)
        assert back["ft_state"].encoding["_Unsigned"] == "true"


@pytest.mark.parametrize("key", ["et", "sm_1km", "ft"])
def test_the_grid_mapping_and_the_bounds_come_along_subset_to_the_selection(products, key, tmp_path):
    source = products[key, "store"]  # the store holds neither: they are made from the source's coordinates
    sub = answer(source, "antimeridian")
    path = writers.to_netcdf(sub, tmp_path / "a.nc", attrs=RECORD)
    with netCDF4.Dataset(path) as nc:
        assert nc[key if key != "ft" else "ft_state"].grid_mapping == "crs"
        assert pyproj.CRS.from_wkt(nc["crs"].crs_wkt).to_epsg() == 4326
        lon, lon_bnds = nc["lon"][:], nc["lon_bnds"][:]
        lat, lat_bnds = nc["lat"][:], nc["lat_bnds"][:]
        assert nc["lon"].bounds == "lon_bnds" and nc["lat"].bounds == "lat_bnds" and nc["time"].bounds == "time_bnds"
        time = netCDF4.num2date(nc["time"][:], nc["time"].units)
        time_bnds = netCDF4.num2date(nc["time_bnds"][:], nc["time"].units)
        for name in ("lat", "lon", "time", "lat_bnds", "lon_bnds", "time_bnds", "crs"):
            assert "_FillValue" not in nc[name].ncattrs(), name
        assert nc["time"].dtype == np.float64 and nc["time_bnds"].dtype == np.float64
    # the antimeridian box: lon continuous 170.5 .. 188.5 (stride 2), each cell 1 degree as in the source
    np.testing.assert_array_equal(lon, np.arange(170.5, 190.0, 2.0))
    np.testing.assert_array_equal(lon_bnds, np.stack([lon - 0.5, lon + 0.5], axis=1))
    np.testing.assert_array_equal(lat_bnds, np.stack([lat - 0.5, lat + 0.5], axis=1))
    assert [(b - a).days for a, b in time_bnds] == [1] * len(time) and list(time_bnds[:, 0]) == list(time)


def test_global_attributes_are_the_records_and_the_extent_of_the_answer(products, tmp_path):
    sub = answer(products["et", "store"], "antimeridian")
    path = writers.to_netcdf(sub, tmp_path / "a.nc", attrs={**RECORD, "title": "The record's title"})
    with netCDF4.Dataset(path) as nc:
        g = {k: nc.getncattr(k) for k in nc.ncattrs()}
        variables = {name: {k: v.getncattr(k) for k in v.ncattrs()} for name, v in nc.variables.items()}
    assert g["title"] == "The record's title" and g["citation"] == RECORD["citation"] and g["doi"] == RECORD["doi"]
    assert g["Conventions"] == "CF-1.8, ACDD-1.3" and g["platform"] == "Models/Analyses"
    assert "data_kind" in g and not any("-" in k for k in g)
    assert (g["geospatial_lat_min"], g["geospatial_lat_max"]) == (-9.5, 8.5)  # every second row
    assert (g["geospatial_lon_min"], g["geospatial_lon_max"]) == (170.5, 188.5)  # 0..360 frame, as the data
    assert g["geospatial_lat_resolution"] == "2 degrees" == g["geospatial_lon_resolution"]  # the stride
    assert g["geospatial_bounds_crs"] == "EPSG:4326"
    region = core.region_of(g["geospatial_bounds"])  # split at 180, latitude first
    assert g["geospatial_bounds"].startswith("MULTIPOLYGON") and region.bounds == (-180.0, -10.0, 180.0, 9.0)
    assert region.area == pytest.approx(19 * 19)  # round the outer edges: lon 170..189, lat -10..9
    assert (g["time_coverage_start"], g["time_coverage_end"]) == ("2001-01-01T00:00:00Z", "2001-01-04T00:00:00Z")
    assert g["time_coverage_duration"] == "P4D" and g["time_coverage_resolution"] == "P1D"
    history = g["history"].splitlines()
    assert history[0] == STALE["history"] and "subset of et.nc" in history[-1] and "lon 170.5..188.5" in history[-1]
    assert pd.Timestamp(history[-1].split()[0]) == pd.Timestamp(g["date_created"])
    assert g["date_created"].endswith("Z") and g["date_created"] != RECORD["date_created"]
    assert variables["et"]["coverage_content_type"] == "modelResult"
    assert all(variables[c]["coverage_content_type"] == "coordinate" for c in ("time", "lat", "lon"))


def test_a_point_series_is_a_dsg_time_series_with_scalar_coordinates(products, tmp_path):
    series = answer(products["sm_1km", "store"], "point")
    path = writers.to_netcdf(series, tmp_path / "p.nc", attrs=RECORD)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["featureType"] == "timeSeries"
        assert ds["lat"].ndim == 0 and float(ds["lat"]) == 20.5 and float(ds["lon"]) == 10.5
        assert ds["cell_id"].attrs["cf_role"] == "timeseries_id" and ds["sm_1km"].dims == ("time",)
        assert ds.attrs["geospatial_bounds"] == "POINT (20.5 10.5)"
        assert ds.attrs["geospatial_lat_resolution"] == "1 degrees"


@pytest.mark.parametrize("key", ["et", "ft"])
def test_an_area_mean_has_cell_methods_and_the_region(products, key, tmp_path):
    mean = answer(products[key, "store"], "area_box")
    path = writers.to_netcdf(mean, tmp_path / "m.nc", attrs=RECORD)
    name = "et" if key == "et" else "ft_state"
    with xr.open_dataset(path) as ds:
        attrs = ds[name].attrs
        assert attrs["cell_methods"].endswith("area: mean (cos(latitude) weights, finite values only)")
        assert region_equals(ds.attrs["geospatial_bounds"], shapely.box(170, -10, 190, 10))
        assert (ds.attrs["geospatial_lon_min"], ds.attrs["geospatial_lon_max"]) == (170.0, 190.0)
        assert "time_bnds" in ds.variables
        if key == "et":
            assert attrs["cell_methods"].startswith("time: mean ") and attrs["units"] == "kg m-2 d-1"
        else:  # the mean of the 0/1 codes: the frozen fraction, not a flag any more
            assert attrs["units"] == "1" and "flag_values" not in attrs and "0 thawed, 1 frozen" in attrs["long_name"]
            assert 0 <= float(ds[name].min()) and float(ds[name].max()) <= 1


def region_equals(wkt: str, lonlat: shapely.Geometry) -> bool:
    """An ACDD geospatial_bounds (split at 180) covers the lon/lat shape ``lonlat`` (lon may exceed 180)."""
    region = core.region_of(wkt)
    moved = shapely.union_all([region, shapely.transform(region, lambda xy: xy + [360.0, 0.0])])
    return moved.intersection(lonlat).area == pytest.approx(lonlat.area)


# --------------------------------------------------------------------------- CSV


def read_csv_text(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_headers_give_units_and_values_keep_their_precision(products, tmp_path):
    et = answer(products["et", "store"], "box")
    rows = read_csv_text(writers.to_csv(et, tmp_path / "et.csv"))
    assert list(rows[0]) == ["time", "lat [degrees_north]", "lon [degrees_east]", "et [kg m-2 d-1]"]
    values = et["et"].transpose("time", "lat", "lon").values.ravel()
    assert [r["et [kg m-2 d-1]"] for r in rows] == ["" if np.isnan(v) else str(np.float32(v)) for v in values]
    corner = core.select(products["et", "store"], SubsetRequest(bbox=(0, -89.9, 1, -88)))  # et = 0.139 there
    assert {r["et [kg m-2 d-1]"] for r in read_csv_text(writers.to_csv(corner, tmp_path / "c.csv"))} == {"0.139"}

    sm = answer(products["sm_1km", "store"], "box")
    rows = read_csv_text(writers.to_csv(sm, tmp_path / "sm.csv"))
    texts = [r["sm_1km [m3 m-3]"] for r in rows]
    assert all(t == "" or (len(t.split(".")[-1]) <= 3 and float(t) == round(float(t), 3)) for t in texts)
    np.testing.assert_allclose(
        [float(t) if t else np.nan for t in texts],
        sm["sm_1km"].transpose("time", "lat", "lon").values.ravel(),
        atol=1e-6,
    )

    ft = answer(products["ft", "store"], "polygon")
    rows = read_csv_text(writers.to_csv(ft, tmp_path / "ft.csv", drop_empty=True))
    assert list(rows[0])[-1] == "ft_state [1]" and {r["ft_state [1]"] for r in rows} <= {"0", "1"}
    assert len(rows) == int(np.isfinite(ft["ft_state"].values).sum())


def test_csv_of_a_point_series_and_an_area_mean(products, tmp_path):
    series = answer(products["et", "store"], "point")
    rows = read_csv_text(writers.to_csv(series, tmp_path / "p.csv"))
    assert list(rows[0]) == ["time", "lat [degrees_north]", "lon [degrees_east]", "et [kg m-2 d-1]"]
    assert {(r["lat [degrees_north]"], r["lon [degrees_east]"]) for r in rows} == {("20.5", "10.5")}
    mean = answer(products["et", "store"], "area_polygon")
    rows = read_csv_text(writers.to_csv(mean, tmp_path / "m.csv"))
    assert list(rows[0]) == ["time", "et [kg m-2 d-1]"] and len(rows) == TIME.size
    np.testing.assert_array_equal([float(r["et [kg m-2 d-1]"]) for r in rows], mean["et"].values)


# --------------------------------------------------------------------------- CoverageJSON


def test_coveragejson_flags_are_categories_and_floats_keep_float32_precision(products, tmp_path):
    ft = answer(products["ft", "store"], "polygon")
    path = writers.write(ft, tmp_path / "ft.json", "coveragejson", attrs=RECORD)
    document = json.loads(path.read_text())
    parameter = document["parameters"]["ft_state"]
    categories = parameter["observedProperty"]["categories"]
    assert [c["label"]["en"] for c in categories] == ["thawed", "frozen"]
    assert parameter["categoryEncoding"] == {categories[0]["id"]: 0, categories[1]["id"]: 1}
    assert "unit" not in parameter
    values = document["ranges"]["ft_state"]["values"]
    assert document["ranges"]["ft_state"]["dataType"] == "integer" and set(values) <= {0, 1, None}
    expected = ft["ft_state"].values.ravel()
    assert [v is None for v in values] == list(np.isnan(expected))

    et = core.select(products["et", "store"], SubsetRequest(bbox=(0, -89.9, 1, -88)))
    text = writers.write(et, tmp_path / "et.json", "coveragejson", attrs=RECORD).read_text()
    assert "0.139," in text and "0.13900000" not in text
    values = json.loads(text)["ranges"]["et"]["values"]
    np.testing.assert_array_equal(np.array(values, dtype="float32"), et["et"].values.ravel())

    mean = answer(products["et", "store"], "area_box")
    polygon = writers.to_coveragejson(mean)
    assert polygon["domain"]["domainType"] == "PolygonSeries"
    parts = [shapely.Polygon(p[0]) for p in polygon["domain"]["axes"]["composite"]["values"]]
    assert shapely.union_all(parts).bounds == (-180.0, -10.0, 180.0, 10.0)  # split at the antimeridian


# --------------------------------------------------------------------------- Zarr and the dispatcher


def test_the_zipped_zarr_opens_with_the_documented_line_and_holds_what_the_netcdf_holds(products, tmp_path):
    sub = answer(products["sm_1km", "store"], "polygon")
    path = str(writers.write(sub, tmp_path / "sm.zip", "zarr", attrs=RECORD))
    nc = writers.write(sub, tmp_path / "sm.nc", "netcdf", attrs=RECORD)
    assert zipfile.is_zipfile(path)

    ds = xr.open_zarr(zarr.storage.ZipStore(path, mode="r"))  # the line of to_zarr_zip's docstring

    with ds, xr.open_dataset(nc) as reference:

        def plain(attrs):
            return {k: np.asarray(v).tolist() for k, v in attrs.items()}

        assert plain(ds["sm_1km"].attrs) == plain(reference["sm_1km"].attrs)
        np.testing.assert_allclose(ds["sm_1km"].values, reference["sm_1km"].values, rtol=0, atol=1e-7)
        assert ds["sm_1km"].encoding["dtype"] == np.int16 and ds["sm_1km"].encoding["scale_factor"] == np.float32(0.001)
        assert ds["lon_bnds"].shape == (sub.sizes["lon"], 2) and "crs_wkt" in ds["crs"].attrs
        assert {k: v for k, v in ds.attrs.items() if k not in ("date_created", "history")} == {
            k: v for k, v in reference.attrs.items() if k not in ("date_created", "history")
        }


@pytest.mark.parametrize(
    ("fmt", "check_file"),
    [
        ("netcdf", lambda p: xr.open_dataset(p).close()),
        ("geotiff", lambda p: p.read_bytes()[:2] in (b"II", b"MM")),
        ("csv", lambda p: pd.read_csv(p)),
        ("zarr", zipfile.is_zipfile),
        ("coveragejson", lambda p: json.loads(p.read_text())["type"] == "Coverage"),
    ],
)
def test_write_dispatches_to_the_writer_of_the_format(products, fmt, check_file, tmp_path):
    sub = answer(products["et", "store"], "box")
    path = writers.write(sub, tmp_path / "nested" / f"answer.{fmt}", fmt, attrs=RECORD)
    assert path == tmp_path / "nested" / f"answer.{fmt}"
    assert check_file(path) is not False
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_write_refuses_an_unknown_format_naming_f(products, tmp_path):
    with pytest.raises(SubsetError) as info:
        writers.write(answer(products["et", "store"], "box"), tmp_path / "x", "xlsx", attrs=RECORD)
    assert info.value.field == "f"
    assert list(tmp_path.iterdir()) == []


def test_csv_text_of_packed_values_and_integers():
    packed = xr.Variable(
        ("x",),
        np.array([0.123, np.nan, 0.5], "float32"),
        encoding={"dtype": np.dtype("int16"), "scale_factor": np.float32(0.001), "_FillValue": -9999},
    )
    assert list(writers.text_values(packed)) == ["0.123", "", "0.5"]
    flags = xr.Variable(("x",), np.array([1.0, np.nan, 0.0], "float32"), attrs={"flag_values": np.array([0, 1], "u1")})
    assert list(writers.text_values(flags)) == ["1", "", "0"]
    assert list(writers.text_values(xr.Variable(("x",), np.array([0.1, 1 / 3])))) == ["0.1", "0.3333333333333333"]
    assert list(writers.text_values(xr.Variable(("x",), np.array([0.139], "float32")))) == ["0.139"]
