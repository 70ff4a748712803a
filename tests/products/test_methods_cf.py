"""products.methods.cf on synthetic cubes (no database): grids, packed and flag variables, point,
time-only and station series, and the chunked grid path, each checked with the standard checkers."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from products.methods import cf, chunked
from tests.cfcheck import check

# compliance-checker 6.1 warns about its own API on every run (third-party deprecation, not ours)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Passing the dataset to every single check is deprecated:DeprecationWarning"
)

# what the publisher stamps from a catalog record (portal.catalog.metadata.acdd_attributes), in full
RECORD = {
    "title": "Synthetic soil moisture cube",
    "summary": "A synthetic cube for the CF writer tests.",
    "keywords": "soil moisture, freeze/thaw",
    "keywords_vocabulary": "TPDC:TPDC keywords",
    "id": "test-cube",
    "naming_authority": "org.hydroportal",
    "history": "2024-01-01T00:00:00Z created by the test",
    "comment": "SYNTHETIC",
    "date_created": "2024-01-01T00:00:00Z",
    "date_modified": "2024-01-01T00:00:00Z",
    "date_issued": "2024-01-01T00:00:00Z",
    "date_metadata_modified": "2024-01-01T00:00:00Z",
    "creator_name": "A. Author",
    "creator_type": "person",
    "creator_institution": "Institute",
    "creator_email": "a@example.org",
    "creator_url": "https://example.org",
    "contributor_name": "B. Helper",
    "contributor_role": "contributor",
    "institution": "Institute",
    "project": "portal tests",
    "processing_level": "L4",
    "standard_name_vocabulary": "CF Standard Name Table v93",
    "license": "CC-BY-4.0",
    "publisher_name": "Portal",
    "publisher_type": "institution",
    "publisher_institution": "Portal",
    "publisher_url": "https://example.org",
    "publisher_email": "p@example.org",
    "source": "synthetic",
    "references": "https://example.org/ref",
    "product_version": "v1",
    "metadata_link": "https://example.org/m",
    "acknowledgement": "none",
    "platform": "none (synthetic)",
    "instrument": "none (synthetic)",
    "platform_vocabulary": "none",
    "instrument_vocabulary": "none",
    "program": "tests",
}


def grid(n_time: int = 3) -> xr.Dataset:
    """(time, lat, lon) cube: float32 ET, int16-packed soil moisture, uint8 freeze/thaw flags (255 fill)."""
    rng = np.random.default_rng(0)
    time = pd.date_range("2016-01-01", periods=n_time, freq="D")
    lat = np.arange(40.875, 39.9, -0.25)  # north-up, as the 1 km product
    lon = np.arange(90.125, 91.5, 0.25)
    shape = (n_time, lat.size, lon.size)
    sm = rng.uniform(0.05, 0.5, shape)
    sm[0, 0, 0] = np.nan
    state = rng.integers(0, 2, shape).astype("u1")
    state[0, 1, 1] = 255
    ds = xr.Dataset(
        {
            "et": (
                ("time", "lat", "lon"),
                rng.uniform(0, 5, shape).astype("float32"),
                {
                    "standard_name": "water_evapotranspiration_flux",
                    "units": "kg m-2 d-1",
                    "long_name": "ET",
                    "cell_methods": "time: mean",
                },
            ),
            "sm": (
                ("time", "lat", "lon"),
                sm,
                {
                    "standard_name": "volume_fraction_of_condensed_water_in_soil",
                    "units": "m3 m-3",
                    "long_name": "surface soil moisture",
                    "valid_range": np.array([0, 1000], "int16"),
                },
            ),
            "ft_state": (
                ("time", "lat", "lon"),
                state,
                {
                    "long_name": "freeze/thaw state",
                    "flag_meanings": "thawed frozen",
                    "flag_values": np.array([0, 1], "u1"),
                    "coverage_content_type": "thematicClassification",
                },
            ),
        },
        coords={"time": time, "lat": lat, "lon": lon},
        attrs=RECORD,
    )
    ds["et"].encoding = {"_FillValue": np.float32(-9999.0)}
    ds["sm"].encoding = {"dtype": "int16", "scale_factor": 0.001, "add_offset": 0.0, "_FillValue": np.int16(-9999)}
    ds["ft_state"].encoding = {"_FillValue": np.uint8(255)}
    return ds


def assert_passes(path) -> None:
    report = check(path)
    assert report.cf_errors == [], report.explain()
    assert report.score("cf:1.8") == 1.0, report.explain()
    assert report.score("acdd:1.3") >= 0.9, report.explain()


def test_a_grid_written_by_the_cf_writer_passes_cfchecker_and_the_ioos_cf_and_acdd_suites(tmp_path):
    path = cf.write_netcdf(grid(), tmp_path / "grid.nc", attrs=cf.soil_layer_attributes(0.0, 0.05))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.nc"]  # no temporary left
    assert_passes(path)


def test_grids_carry_the_epsg_4326_crs_bounds_and_coordinates_without_fill_values(tmp_path):
    path = cf.write_netcdf(grid(), tmp_path / "grid.nc")
    with netCDF4.Dataset(path) as nc:
        crs = nc["crs"]
        assert crs.grid_mapping_name == "latitude_longitude" and crs.crs_wkt == pyproj.CRS.from_epsg(4326).to_wkt()
        assert all(nc[v].grid_mapping == "crs" for v in ("et", "sm", "ft_state"))
        for axis in ("time", "lat", "lon"):
            assert nc[axis].bounds == f"{axis}_bnds" and "_FillValue" not in nc[axis].ncattrs()
            assert "_FillValue" not in nc[f"{axis}_bnds"].ncattrs() and nc[axis].long_name
            assert nc[axis].coverage_content_type == "coordinate"
        assert nc["time"].dtype == np.float64 and nc["time"].units.startswith("days since 1970-01-01")
        np.testing.assert_allclose(nc["lat_bnds"][0], [41.0, 40.75])  # north-up: edges follow the axis
        np.testing.assert_allclose(nc["lon_bnds"][-1], [91.25, 91.5])
        np.testing.assert_allclose(nc["time_bnds"][:, 1] - nc["time_bnds"][:, 0], 1.0)
        assert nc.Conventions == "CF-1.8, ACDD-1.3" and nc.geospatial_bounds_crs == "EPSG:4326"
        assert nc.geospatial_bounds == "POLYGON ((40 90, 41 90, 41 91.5, 40 91.5, 40 90))"  # latitude first
        assert nc.geospatial_lat_resolution == "0.25 degrees"
        assert (nc.time_coverage_start, nc.time_coverage_end) == ("2016-01-01T00:00:00Z", "2016-01-03T00:00:00Z")
        assert (nc.time_coverage_duration, nc.time_coverage_resolution) == ("P3D", "P1D")


def test_packed_soil_moisture_stays_int16_with_its_valid_range_in_packed_units(tmp_path):
    ds = grid()
    path = cf.write_netcdf(ds, tmp_path / "grid.nc")
    with netCDF4.Dataset(path) as nc:
        sm = nc["sm"]
        assert sm.dtype == np.int16 and sm.scale_factor == pytest.approx(0.001) and sm.add_offset == 0
        assert sm._FillValue == -9999 and list(sm.valid_range) == [0, 1000]
        assert sm.valid_range.dtype == np.int16
    with xr.open_dataset(path) as back:
        np.testing.assert_allclose(back["sm"].values, ds["sm"].values, atol=0.0005)  # NaN where it was NaN


def test_uint8_flags_are_stored_as_cf_bytes_and_read_back_as_uint8_with_fill_255(tmp_path):
    ds = grid()
    path = cf.write_netcdf(ds, tmp_path / "grid.nc")
    with netCDF4.Dataset(path) as nc:
        var = nc["ft_state"]
        assert var.dtype == np.int8 and var._Unsigned == "true" and var._FillValue == -1
        assert var.flag_values.dtype == np.int8 and list(var.flag_values) == [0, 1]
        var.set_auto_mask(False)
        np.testing.assert_array_equal(var[:], ds["ft_state"].values)  # uint8 again, 255 included
    with xr.open_dataset(path) as back:
        assert np.isnan(back["ft_state"].values[0, 1, 1]) and set(np.unique(back["ft_state"].values[1])) <= {0, 1}


def test_a_point_series_and_a_time_only_series_pass_the_checkers(tmp_path):
    months = pd.date_range("2003-01-01", periods=24, freq="MS")
    values = 0.3 + 0.1 * np.sin(np.arange(24.0))
    attrs = {
        "long_name": "monthly soil moisture",
        "units": "m3 m-3",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
    }
    point = xr.Dataset(
        {"sm": ("time", values, attrs)},
        coords={"time": months, "lat": 30.125, "lon": 90.375},
        attrs={**RECORD, "featureType": "timeSeries", **cf.soil_layer_attributes(0.0, 0.05)},
    )
    path = cf.write_netcdf(point, tmp_path / "point.nc")
    assert_passes(path)
    with netCDF4.Dataset(path) as nc:
        assert nc["sm"].grid_mapping == "crs" and nc.geospatial_bounds == "POINT (30.125 90.375)"
        assert nc.time_coverage_resolution == "P1M" and nc.time_coverage_duration == "P2Y"
        assert "lat_bnds" not in nc.variables  # a point has no cell
    series = point.drop_vars(["lat", "lon"])
    path = cf.write_netcdf(series, tmp_path / "series.nc")
    with netCDF4.Dataset(path) as nc:
        assert "crs" not in nc.variables and "geospatial_lat_min" not in nc.ncattrs()
        assert nc["time_bnds"][-1, 1] - nc["time_bnds"][-1, 0] == 31  # December


def test_station_series_write_names_as_character_arrays_and_pass_the_checkers(tmp_path):
    days = pd.date_range("2015-04-01", periods=10, freq="D")
    ds = xr.Dataset(
        {
            "sm": (
                ("station", "time"),
                np.random.default_rng(1).uniform(0.1, 0.4, (3, 10)),
                {
                    "standard_name": "volume_fraction_of_condensed_water_in_soil",
                    "units": "m3 m-3",
                    "long_name": "in-situ soil moisture",
                    "coverage_content_type": "physicalMeasurement",
                },
            )
        },
        coords={
            "time": days,
            "station_name": (
                "station",
                np.array(["SCAN:AAMU-jtg", "FR_Aqui:fraye", "x"], dtype=object),
                {"cf_role": "timeseries_id", "long_name": "station"},
            ),
            "lat": ("station", [34.8, 44.6, 45.0]),
            "lon": ("station", [-86.6, -0.6, 10.0]),
        },
        attrs={**RECORD, "featureType": "timeSeries"},
    )
    path = cf.write_netcdf(ds, tmp_path / "stations.nc", attrs=cf.soil_layer_attributes(0.0, 0.05))
    assert_passes(path)
    with netCDF4.Dataset(path) as nc:
        assert nc["station_name"].dtype == "S1" and nc["station_name"].dimensions == ("station", "station_name_strlen")
        assert nc.geospatial_bounds == "POLYGON ((34.8 -86.6, 45 -86.6, 45 10, 34.8 10, 34.8 -86.6))"
    with xr.open_dataset(path) as back:
        assert list(back["station_name"].values) == ["SCAN:AAMU-jtg", "FR_Aqui:fraye", "x"]


def test_time_and_axis_bounds_for_months_days_gaps_and_single_cells():
    months = pd.DatetimeIndex(["2003-01-01", "2003-02-01", "2003-05-01"])  # a gap
    np.testing.assert_array_equal(
        cf.time_bounds(months)[:, 1], pd.DatetimeIndex(["2003-02-01", "2003-03-01", "2003-06-01"]).values
    )
    days = pd.DatetimeIndex(["2016-01-01", "2016-01-02", "2016-01-04", "2016-01-05"])
    assert (np.diff(cf.time_bounds(days), axis=1) == np.timedelta64(1, "D")).all()
    assert cf.time_bounds(days[:1], "3h")[0, 1] == np.datetime64("2016-01-01T03:00")
    np.testing.assert_allclose(cf.axis_bounds([10.0], 0.25), [[9.875, 10.125]])
    assert cf.axis_bounds([10.0]) is None  # one value, no cell size: no bounds rather than a guess
    single = cf.add_bounds(xr.Dataset(coords={"lat": [10.0], "lon": [20.0]}), resolution={"lat": 0.5, "lon": 1.0})
    np.testing.assert_allclose(single["lon_bnds"], [[19.5, 20.5]])
    assert (
        cf.iso_duration("2000-01-01", "2021-01-01") == "P21Y"
        and cf.iso_duration("2016-01-01", "2016-01-01T03:00") == "PT3H"
    )


def test_the_chunked_grid_path_is_completed_to_the_same_form(tmp_path):
    days = pd.date_range("2016-01-01", periods=2, freq="D").values
    spec = chunked.GridSpec(
        name="sm",
        time=days,
        time_bounds=np.stack([days, days + np.timedelta64(1, "D")], axis=1),
        lat=np.array([30.125, 30.375]),
        lon=np.array([90.125, 90.375, 90.625]),
        attrs={
            "standard_name": "volume_fraction_of_condensed_water_in_soil",
            "units": "m3 m-3",
            "long_name": "soil moisture",
        },
        global_attrs=RECORD,
    )
    path = tmp_path / "sm.nc"
    with chunked.create_output(path, spec) as nc:
        nc["sm"][:] = np.full(spec.shape, 0.25, "float32")
    cf.complete_grid_file(path, time_step="1D", attrs=cf.soil_layer_attributes(0.0, 0.05))
    assert_passes(path)
    with netCDF4.Dataset(path) as nc:
        assert nc["sm"].grid_mapping == "crs" and nc["lon"].bounds == "lon_bnds" and nc["time"].bounds == "time_bnds"
        np.testing.assert_allclose(nc["lat_bnds"][:], [[30.0, 30.25], [30.25, 30.5]])
        assert "units" not in nc["time_bnds"].ncattrs()  # CF 7.1: inherited from time


def test_a_failed_write_leaves_no_file_and_keeps_an_older_one(tmp_path):
    path = cf.write_netcdf(grid(), tmp_path / "grid.nc")
    before = path.read_bytes()
    with pytest.raises(TypeError):
        cf.write_netcdf(grid().assign_attrs(bad={"not": "serialisable"}), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["grid.nc"]


def test_an_unknown_coverage_content_type_is_refused():
    ds = grid()
    ds["et"].attrs["coverage_content_type"] = "guess"
    with pytest.raises(ValueError, match="coverage_content_type"):
        cf.standardise(ds)


# --- the pieces the product and subset writers share ---------------------------------------------


def test_pack_and_unpack_are_the_cf_packing_of_the_1km_product_and_the_subset_geotiffs():
    values = np.array([0.1234, 0.1235, np.nan, -9999.0, 1.7, -0.2])
    packed = cf.pack(
        values, scale_factor=0.001, dtype="int16", fill=np.int16(-9999), valid_range=(0, 1000), missing=-9999.0
    )
    assert packed.dtype == np.int16 and packed.tolist() == [123, 124, -9999, -9999, 1000, 0]  # half to even
    back = cf.unpack(packed, scale_factor=0.001, fill=-9999)
    assert back.dtype == np.float32 and np.isnan(back[2:4]).all()
    np.testing.assert_allclose(back[[0, 1, 4]], [0.123, 0.124, 1.0], rtol=1e-6)
    single = np.array([0.1235, np.nan], dtype="float32")  # float32 data are packed in float32 arithmetic
    expected = np.where(np.isnan(single), -1, np.round((np.where(np.isnan(single), 0.0, single) - 0.0) / 0.001))
    np.testing.assert_array_equal(cf.pack(single, scale_factor=0.001, dtype="int16", fill=-1), expected)
    np.testing.assert_array_equal(cf.pack([0.0, 1.0], scale_factor=0.001), [0.0, 1000.0])  # valid_range in packed units


def test_global_attributes_put_conventions_first_keep_it_and_drop_none_values():
    attrs = cf.global_attributes(
        {"Conventions": "CF-1.6", "title": "t", "comment": None}, {"title": "u"}, module="products.generators.example"
    )
    assert list(attrs)[:2] == ["Conventions", "history"] and attrs["Conventions"] == cf.CONVENTIONS
    assert attrs["title"] == "u" and "comment" not in attrs
    assert attrs["history"].endswith("Z created by products.generators.example")
    assert cf.merge_attrs({"a": 1, "b": 2}, None, {"b": None}) == {"a": 1}


def test_the_crs_variable_is_the_one_add_crs_writes():
    var = cf.crs_variable()
    assert var.dims == () and var.dtype == np.int32 and var.attrs == cf.crs_attributes()
    ds = cf.add_crs(
        xr.Dataset({"v": (("lat", "lon"), np.zeros((2, 2)))}, coords={"lat": [0.0, 1.0], "lon": [0.0, 1.0]})
    )
    assert ds["crs"].attrs == var.attrs and ds["v"].attrs["grid_mapping"] == "crs"
    assert cf.crs_variable({"grid_mapping_name": "other"}).attrs == {"grid_mapping_name": "other"}


def _series_frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three stations (one without values) over four months with a gap; ``flag`` int8 with fill -1."""
    months = pd.date_range("2010-01-01", periods=4, freq="MS")
    frame = pd.DataFrame(
        {
            "station": ["b", "b", "a", "a", "a"],
            "time": months[[0, 3, 0, 1, 3]],
            "et": [1.0, 2.0, 3.0, np.nan, 5.0],
            "flag": np.array([0, 1, 1, 0, 1], "int8"),
        }
    )
    stations = pd.DataFrame(
        {
            "station": ["b", "a", "c"],
            "lat": [10.0, -5.0, 0.5],
            "lon": [20.0, 30.0, 40.0],
            "altitude": [100.0, 5.0, 0.0],
            "kind": ["tower", "tower", "point"],
            "fold": np.array([0, 1, -1], "int16"),
        }
    )
    return frame, stations


def test_the_timeseries_builder_makes_the_dsg_the_product_files_share(tmp_path):
    frame, stations = _series_frame()
    ds = cf.timeseries_dataset(
        frame,
        {
            "et": {"standard_name": "water_evapotranspiration_flux", "units": "kg m-2 d-1", "long_name": "ET"},
            "flag": {
                "long_name": "role",
                "flag_values": np.array([0, 1], "int8"),
                "flag_meanings": "a b",
                "_FillValue": np.int8(-1),
            },
        },
        stations=stations,
        id_attrs={"long_name": "site code"},
        station_variables={"kind": {"long_name": "kind"}},
        auxiliary={"fold": {"long_name": "fold", "units": "1"}},
        time_attrs={"long_name": "start of the month"},
        time_step="MS",
        attrs={**RECORD, "comment": None, "title": "series"},
    )
    assert list(ds.attrs)[:2] == ["Conventions", "featureType"] and ds.attrs["featureType"] == "timeSeries"
    assert ds.attrs["title"] == "series" and "comment" not in ds.attrs  # None values are dropped
    assert list(ds.data_vars) == ["et", "flag", "kind", "time_bnds"]
    assert list(ds.coords) == ["time", "station_name", "fold", "lat", "lon", "alt"]
    assert list(ds["station_name"].values) == ["b", "a", "c"] and ds["station_name"].attrs["cf_role"] == "timeseries_id"
    assert ds["et"].dims == ("station", "time") and ds["et"].dtype == np.float64
    np.testing.assert_array_equal(ds["et"].values, [[1, np.nan, 2], [3, np.nan, 5], [np.nan] * 3])  # March: no row
    assert ds["flag"].dtype == np.int8 and ds["flag"].values.tolist() == [[0, -1, 1], [1, 0, 1], [-1] * 3]
    assert ds["flag"].encoding["_FillValue"] == -1 and "_FillValue" not in ds["flag"].attrs
    assert ds["et"].encoding["coordinates"] == "time lat lon alt station_name fold"
    assert ds["kind"].attrs == {"coverage_content_type": "auxiliaryInformation", "long_name": "kind"}
    assert ds["time"].attrs["bounds"] == "time_bnds" and ds["time"].encoding["units"] == "days since 1970-01-01"
    assert ds["time_bnds"].values[-1, 1] == np.datetime64("2010-05-01")  # calendar months
    assert ds["lat"].attrs == {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"}
    path = cf.write_netcdf(ds, tmp_path / "series.nc", attrs=cf.soil_layer_attributes(0.0, 0.05))
    assert_passes(path)
    with netCDF4.Dataset(path) as nc:
        assert nc["flag"].dtype == np.int8 and nc["alt"].units == "m" and nc["alt"].positive == "up"
        assert "_FillValue" not in nc["lat"].ncattrs() and "_FillValue" not in nc["fold"].ncattrs()


def test_the_timeseries_builder_without_stations_sorts_the_series_and_has_no_location():
    frame, _ = _series_frame()
    ds = cf.timeseries_dataset(
        frame.rename(columns={"station": "region"}),
        {"et": {"units": "mm"}},
        station_col="region",
        instance_dim="region",
    )
    assert list(ds["region_name"].values) == ["a", "b"] and ds["et"].dims == ("region", "time")
    assert "lat" not in ds and "time_bnds" not in ds and ds["et"].encoding["coordinates"] == "time region_name"


def test_the_timeseries_builder_refuses_repeats_and_unknown_stations():
    frame, stations = _series_frame()
    with pytest.raises(ValueError, match="appears twice"):
        cf.timeseries_dataset(pd.concat([frame, frame.iloc[:1]]), {"et": {}})
    with pytest.raises(ValueError, match="missing from stations"):
        cf.timeseries_dataset(frame, {"et": {}}, stations=stations[stations["station"] != "a"])
    with pytest.raises(ValueError, match="appears twice"):
        cf.timeseries_dataset(frame, {"et": {}}, stations=pd.concat([stations, stations.iloc[:1]]))
