"""Pure tests of portal.subsets.core (no database) on a SYNTHETIC cube written by the tests."""

import json
import pickle
import zipfile

import cftime
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import xarray as xr
import zarr
from rio_cogeo.cogeo import cog_validate

from portal.subsets import core, writers
from portal.subsets.core import SubsetError, SubsetRequest

# SYNTHETIC cube: 2-degree global grid, 4 daily steps, random float32 values with a few NaN.
LON = np.arange(-179.0, 180.0, 2.0)  # 180 centres, -180..180 frame
LAT = np.arange(-89.0, 90.0, 2.0)  # 90 centres, ascending
TIME = pd.date_range("2001-01-01", periods=4, freq="D")


def synthetic_cube(*, lon360=False, lat_descending=False):
    rng = np.random.default_rng(42)
    et = rng.random((TIME.size, LAT.size, LON.size), dtype=np.float32) * 5
    et[0, 45, 90] = np.nan
    sm = rng.random((TIME.size, LAT.size, LON.size), dtype=np.float32) * 0.5
    ds = xr.Dataset(
        {
            "et": (("time", "lat", "lon"), et, {"units": "mm day-1", "long_name": "evapotranspiration"}),
            "sm": (
                ("time", "lat", "lon"),
                sm,
                {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"},
            ),
        },
        coords={
            "time": TIME,
            "lat": ("lat", LAT, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", LON, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"title": "synthetic"},
    )
    if lon360:
        ds = ds.assign_coords(lon=("lon", np.mod(LON, 360.0), ds.lon.attrs)).sortby("lon")
    if lat_descending:
        ds = ds.isel(lat=slice(None, None, -1))
    return ds


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    """The SYNTHETIC cubes written to NetCDF and opened lazily, as the service will."""
    folder = tmp_path_factory.mktemp("cubes")
    opened = {}
    for key, kwargs in {
        "180": {},
        "360": {"lon360": True},
        "desc": {"lat_descending": True},
    }.items():
        path = folder / f"cube_{key}.nc"
        synthetic_cube(**kwargs).to_netcdf(path)
        opened[key] = xr.open_dataset(path)
    yield opened
    for ds in opened.values():
        ds.close()


def reference(sub, cube):
    """The cube's values at the subset's coordinates (lon taken modulo 360 into the cube's frame)."""
    lon = sub["lon"].values
    lon = np.mod(lon, 360.0) if float(cube.lon.max()) > 180 else np.mod(lon + 180.0, 360.0) - 180.0
    return cube.sel(time=sub.time, lat=sub.lat, lon=xr.DataArray(lon, dims="lon"))


def assert_same_values(sub, cube, names=("et", "sm")):
    ref = reference(sub, cube)
    for name in names:
        np.testing.assert_array_equal(sub[name].values, ref[name].values)


# --------------------------------------------------------------------------- select


@pytest.mark.parametrize("key", ["180", "360", "desc"])
def test_a_box_selects_the_cell_centres_inside_with_the_cubes_values(cubes, key):
    cube = cubes[key]
    sub = core.select(
        cube, SubsetRequest(variables=["et", "sm"], bbox=(10, -20, 30, 0), time=("2001-01-02", "2001-01-03"))
    )
    np.testing.assert_array_equal(sub.lon.values, np.arange(11.0, 30.0, 2.0))
    expected_lat = np.arange(-19.0, 0.0, 2.0)
    np.testing.assert_array_equal(sub.lat.values, expected_lat[::-1] if key == "desc" else expected_lat)
    assert list(sub.time.values) == list(TIME[1:3].values)
    assert sub.et.attrs["units"] == "mm day-1"
    assert_same_values(sub, cube)


@pytest.mark.parametrize("key", ["180", "360"])
def test_a_box_crossing_the_antimeridian_is_continuous_from_its_west_edge(cubes, key):
    cube = cubes[key]
    sub = core.select(cube, SubsetRequest(variables=["et"], bbox=(170, -4, -170, 4)))
    np.testing.assert_array_equal(sub.lon.values, np.arange(171.0, 190.0, 2.0))
    np.testing.assert_array_equal(sub.lat.values, [-3.0, -1.0, 1.0, 3.0])
    assert_same_values(sub, cube, ["et"])


def test_a_western_box_on_a_0_360_grid_keeps_the_requested_frame(cubes):
    sub = core.select(cubes["360"], SubsetRequest(variables=["sm"], bbox=(-20, 0, -10, 10)))
    np.testing.assert_array_equal(sub.lon.values, np.arange(-19.0, -10.0, 2.0))
    assert_same_values(sub, cubes["360"], ["sm"])


def test_a_box_round_the_globe_on_a_0_360_grid_is_returned_in_the_minus_180_frame(cubes):
    sub = core.select(cubes["360"], SubsetRequest(variables=["et"], bbox=(-180, 80, 180, 90)))
    np.testing.assert_array_equal(sub.lon.values, LON)
    assert_same_values(sub, cubes["360"], ["et"])


def test_selection_is_lazy(cubes):
    sub = core.select(cubes["180"], SubsetRequest(variables=["et"], bbox=(170, -4, -170, 4)))
    assert not sub["et"].variable._in_memory
    assert not cubes["180"]["et"].variable._in_memory


def test_strides_keep_every_nth_step_and_cell_from_the_first(cubes):
    cube = cubes["180"]
    request = SubsetRequest(bbox=(0, 0, 20, 20), time_stride=2, space_stride=3)
    sub = core.select(cube, request)
    np.testing.assert_array_equal(sub.lon.values, np.arange(1.0, 20.0, 2.0)[::3])
    np.testing.assert_array_equal(sub.lat.values, np.arange(1.0, 20.0, 2.0)[::3])
    assert list(sub.time.values) == list(TIME[::2].values)
    assert_same_values(sub, cube)


def test_strides_across_the_antimeridian(cubes):
    sub = core.select(cubes["360"], SubsetRequest(variables=["et"], bbox=(170, -4, -170, 4), space_stride=2))
    np.testing.assert_array_equal(sub.lon.values, np.arange(171.0, 190.0, 4.0))
    assert_same_values(sub, cubes["360"], ["et"])


TRIANGLE = [(0.0, 0.0), (20.0, 0.5), (5.5, 15.0)]


def inside_triangle(x, y, vertices=TRIANGLE):
    """Hand point-in-triangle test by the signs of the three edge cross products."""
    signs = []
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        signs.append((x2 - x1) * (y - y1) - (y2 - y1) * (x - x1))
    return all(s > 0 for s in signs) or all(s < 0 for s in signs)


@pytest.mark.parametrize(
    "polygon",
    [
        {"type": "Polygon", "coordinates": [[list(p) for p in TRIANGLE + TRIANGLE[:1]]]},
        "POLYGON ((0 0, 20 0.5, 5.5 15, 0 0))",
        {
            "type": "Feature",
            "properties": {},
            "geometry": {"type": "Polygon", "coordinates": [TRIANGLE + TRIANGLE[:1]]},
        },
    ],
    ids=["geojson", "wkt", "feature"],
)
@pytest.mark.parametrize("key", ["180", "desc"])
def test_a_triangle_keeps_exactly_the_cell_centres_inside(cubes, key, polygon):
    cube = cubes[key]
    sub = core.select(cube, SubsetRequest(variables=["et", "sm"], polygon=polygon))
    inside = np.array([[inside_triangle(x, y) for x in sub.lon.values] for y in sub.lat.values])
    assert inside.sum() > 10
    # the result covers the rows and columns holding a centre inside, no more
    assert inside.any(axis=1).all() and inside.any(axis=0).all()
    ref = reference(sub, cube)
    for name in ("et", "sm"):
        values = sub[name].values
        assert np.isnan(values[:, ~inside]).all()
        np.testing.assert_array_equal(values[:, inside], ref[name].values[:, inside])


def test_a_polygon_crossing_the_antimeridian_on_a_0_360_grid(cubes):
    # the same square given in 170..190 and split into two parts at the antimeridian
    whole = "POLYGON ((170 -4, 190 -4, 190 4, 170 4, 170 -4))"
    split = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[170, -4], [180, -4], [180, 4], [170, 4], [170, -4]]],
            [[[-180, -4], [-170, -4], [-170, 4], [-180, 4], [-180, -4]]],
        ],
    }
    for cube in (cubes["180"], cubes["360"]):
        a = core.select(cube, SubsetRequest(variables=["et"], polygon=whole))
        b = core.select(cube, SubsetRequest(variables=["et"], polygon=split))
        np.testing.assert_array_equal(a.lon.values, np.arange(171.0, 190.0, 2.0))
        xr.testing.assert_identical(a, b)
        assert_same_values(a, cube, ["et"])


# --------------------------------------------------------------------------- estimate


@pytest.mark.parametrize(
    "request_",
    [
        SubsetRequest(bbox=(10, -20, 30, 0)),
        SubsetRequest(variables=["et"], bbox=(170, -4, -170, 4), time=("2001-01-02", None)),
        SubsetRequest(variables=["sm"], polygon="POLYGON ((0 0, 20 0.5, 5.5 15, 0 0))"),
        SubsetRequest(bbox=(0, 0, 40, 40), time_stride=3, space_stride=4),
        SubsetRequest(variables=["et"]),
    ],
)
def test_the_size_estimate_equals_the_uncompressed_selection(cubes, request_):
    cube = cubes["360"]
    estimate = core.estimate_bytes(cube, request_)
    assert not cube["et"].variable._in_memory
    assert estimate == core.select(cube, request_).load().nbytes


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bbox": (0, 50, 10, 40)}, "bbox: min_lat 50 > max_lat 40"),
        ({"bbox": (0, 0, 10)}, "bbox: expected 4 numbers"),
        ({"bbox": (0, -95, 10, 0)}, "bbox: min_lat -95 outside -90..90"),
        ({"bbox": (0, 0, 400, 10)}, "bbox: max_lon 400 outside -180..360"),
        (
            {"bbox": (0, 0, 1, 1), "polygon": "POLYGON ((0 0, 1 0, 1 1, 0 0))"},
            "bbox: give a bbox or a polygon, not both",
        ),
        ({"polygon": "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"}, "polygon: invalid geometry (Self-intersection"),
        ({"polygon": "POINT (1 2)"}, "polygon: expected a Polygon or MultiPolygon, got Point"),
        ({"polygon": "not wkt"}, "polygon: not a GeoJSON or WKT polygon"),
        ({"polygon": {"type": "Polygon"}}, "polygon: not a GeoJSON or WKT polygon"),
        ({"time": ("2001-02-01", "2001-01-01")}, "time: start 2001-02-01 > end 2001-01-01"),
        ({"time": ("yesterday", None)}, "time: start 'yesterday' is not an ISO 8601 date"),
        ({"time_stride": 0}, "time_stride: expected an integer >= 1, got 0"),
        ({"space_stride": 1.5}, "space_stride: expected an integer >= 1, got 1.5"),
        ({"format": "xls"}, "format: 'xls' not in ['netcdf', 'geotiff', 'csv', 'zarr', 'coveragejson']"),
    ],
)
def test_a_malformed_request_names_the_field(kwargs, message):
    with pytest.raises(SubsetError) as info:
        SubsetRequest(**kwargs)
    assert str(info.value).startswith(message)


def test_a_subset_error_survives_pickling_with_its_field():
    error = pickle.loads(pickle.dumps(SubsetError("bbox", "min_lat 50 > max_lat 40")))
    assert (error.field, str(error)) == ("bbox", "bbox: min_lat 50 > max_lat 40")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variables": ["foo"]}, "variables: 'foo' not in ['et', 'sm']"),
        (
            {"time": ("2030-01-01", "2030-02-01")},
            "time: 2030-01-01..2030-02-01 is outside the dataset's 2001-01-01..2001-01-04",
        ),
        ({"bbox": (0.2, 0.2, 0.8, 0.8)}, "bbox: no cell centre within lat 0.2..0.8"),
        ({"bbox": (100, 10, 120, 20)}, "bbox: lon 100..120 selects no cell centre of the dataset's lon 131..149"),
        ({"bbox": (130, 50, 150, 60)}, "bbox: lat 50..60 is outside the dataset's lat -19..19"),
        (
            {"polygon": "POLYGON ((130.2 0.2, 131.7 0.2, 130.2 1.7, 130.2 0.2))"},
            "polygon: no cell centre falls inside the polygon",
        ),
    ],
)
def test_an_empty_or_out_of_extent_selection_is_an_error_not_the_full_grid(cubes, kwargs, message):
    regional = cubes["180"].sel(lon=slice(130, 150), lat=slice(-20, 20))
    request = SubsetRequest(**kwargs)
    for call in (core.select, core.estimate_bytes, core.area_mean):
        with pytest.raises(SubsetError) as info:
            call(regional, request)
        assert str(info.value).startswith(message)


def test_a_stride_that_skips_every_cell_of_a_polygon_is_an_error(cubes):
    # a diagonal band holding the centres (1, 3) and (3, 1) but not (1, 1) or (3, 3)
    band = "POLYGON ((0.5 3.5, 1.5 3.5, 3.5 1.5, 3.5 0.5, 2.5 0.5, 0.5 2.5, 0.5 3.5))"
    sub = core.select(cubes["180"], SubsetRequest(variables=["sm"], polygon=band))
    np.testing.assert_array_equal(np.isfinite(sub.sm.values[0]), [[False, True], [True, False]])
    with pytest.raises(SubsetError, match=r"^space_stride: a stride of 2 skips every cell centre inside"):
        core.select(cubes["180"], SubsetRequest(variables=["sm"], polygon=band, space_stride=2))


# --------------------------------------------------------------------------- point and area series


@pytest.mark.parametrize("key", ["180", "360"])
def test_a_point_series_takes_the_nearest_cell_and_reports_its_centre(cubes, key):
    cube = cubes[key]
    series, centre = core.point_series(cube, -170.4, 45.9, ["et"], ("2001-01-02", None))
    assert centre == (-171.0, 45.0)
    assert float(series.lon) == -171.0 and float(series.lat) == 45.0
    assert series.et.dims == ("time",)
    lon_in_cube = -171.0 if key == "180" else 189.0
    np.testing.assert_array_equal(series.et.values, cube.et.sel(lon=lon_in_cube, lat=45.0).values[1:])


def test_a_point_series_across_the_antimeridian_picks_the_nearer_side(cubes):
    _, centre = core.point_series(cubes["180"], 179.9, 0.2, ["sm"])
    assert centre == (179.0, 1.0)
    _, centre = core.point_series(cubes["180"], 180.1, 0.2, ["sm"])  # nearer to -179 = 181
    assert centre == (181.0, 1.0)


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        (100.0, 0.0, "lon: 100 is outside the dataset's lon 131..149"),
        (140.0, 30.0, "lat: 30 is outside"),
        (140.0, 95.0, "lat: 95 outside -90..90"),
    ],
)
def test_a_point_outside_the_extent_is_an_error(cubes, lon, lat, message):
    regional = cubes["180"].sel(lon=slice(130, 150), lat=slice(-20, 20))
    with pytest.raises(SubsetError) as info:
        core.point_series(regional, lon, lat)
    assert str(info.value).startswith(message)


def test_the_area_mean_weights_finite_cells_by_cos_latitude():
    cube = synthetic_cube()
    cube["et"][0, 45, 90] = np.nan  # lat 1, lon 1: inside the box
    box = (0, 0, 6, 60)  # lon 1, 3, 5; lat 1..59
    result = core.area_mean(cube, SubsetRequest(variables=["et"], bbox=box))
    for t in range(TIME.size):
        total, weight = 0.0, 0.0
        for lat in np.arange(1.0, 60.0, 2.0):
            for lon in (1.0, 3.0, 5.0):
                value = float(cube.et.sel(time=TIME[t], lat=lat, lon=lon))
                if np.isfinite(value):
                    total += np.cos(np.radians(lat)) * value
                    weight += np.cos(np.radians(lat))
        assert result.et.values[t] == pytest.approx(total / weight, rel=1e-12)
    assert result.et.dims == ("time",)
    assert result.et.attrs["units"] == "mm day-1"
    # the requested box, as ACDD writes it (latitude first)
    assert core.region_of(result.attrs["geospatial_bounds"]).equals(shapely.box(0, 0, 6, 60))
    assert result.attrs["geospatial_bounds"].startswith("POLYGON ((0 0, 60 0, 60 6")
    assert (result.attrs["geospatial_lat_min"], result.attrs["geospatial_lat_max"]) == (0, 60)


def test_the_area_mean_over_a_polygon_uses_the_cells_inside_and_is_nan_where_none_is_finite():
    cube = synthetic_cube()
    polygon = "POLYGON ((0 0, 20 0.5, 5.5 15, 0 0))"
    sub = core.select(cube, SubsetRequest(variables=["et"], polygon=polygon))
    cube["et"].loc[{"time": TIME[2]}] = np.nan
    result = core.area_mean(cube, SubsetRequest(variables=["et"], polygon=polygon))
    w = np.cos(np.radians(sub.lat.values))[:, None] * np.isfinite(sub.et.values[0])
    hand = np.nansum(sub.et.values[0] * w) / w.sum()
    assert result.et.values[0] == pytest.approx(hand, rel=1e-12)
    assert np.isnan(result.et.values[2])


# --------------------------------------------------------------------------- writers


@pytest.fixture
def box(cubes):
    return core.select(cubes["360"], SubsetRequest(bbox=(170, -10, -170, 10), time=("2001-01-01", "2001-01-03")))


def test_netcdf_is_compressed_cf_with_the_citation_and_the_cubes_values(cubes, box, tmp_path):
    path = writers.to_netcdf(
        box, tmp_path / "out.nc", citation="Doe et al. (2024) doi:10.1234/x", attrs={"title": "ET"}
    )
    assert path == tmp_path / "out.nc"
    with xr.open_dataset(path) as ds:
        assert ds.attrs["citation"] == "Doe et al. (2024) doi:10.1234/x"
        assert ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3" and ds.attrs["title"] == "ET"
        assert ds.et.encoding["zlib"] is True
        assert ds.lon.attrs["units"] == "degrees_east"
        np.testing.assert_array_equal(ds.lon.values, np.arange(171.0, 190.0, 2.0))
        assert_same_values(ds, cubes["360"])
    assert list(tmp_path.iterdir()) == [path]


def test_zipped_zarr_opens_in_xarray_with_the_cubes_values(cubes, box, tmp_path):
    path = writers.to_zarr_zip(box, tmp_path / "out.zip", attrs={"citation": "cite me"})
    assert zipfile.is_zipfile(path)
    store = zarr.storage.ZipStore(path, mode="r")
    with xr.open_zarr(store) as ds:
        assert ds.attrs["citation"] == "cite me"
        assert_same_values(ds.load(), cubes["360"])
    store.close()
    assert list(tmp_path.iterdir()) == [path]


def test_geotiff_is_a_valid_cog_with_one_band_per_time_step(cubes, box, tmp_path):
    path = writers.to_geotiff(box, tmp_path / "et.tif", variable="et")
    valid, errors, _ = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.count == 3
        assert src.descriptions == ("2001-01-01", "2001-01-02", "2001-01-03")
        assert src.crs.to_epsg() == 4326
        assert np.isnan(src.nodata)
        assert src.scales == (1.0, 1.0, 1.0) and src.offsets == (0.0, 0.0, 0.0)
        assert tuple(src.bounds) == (170.0, -10.0, 190.0, 10.0)
        data = src.read()
        # cell centres of each pixel, to look up the cube independently of the writer's layout
        rows, cols = np.meshgrid(np.arange(src.height), np.arange(src.width), indexing="ij")
        xs, ys = rasterio.transform.xy(src.transform, rows.ravel(), cols.ravel())
    lons, lats = np.mod(np.asarray(xs), 360.0), np.asarray(ys)
    expected = (
        cubes["360"].et.isel(time=slice(0, 3)).sel(lon=xr.DataArray(lons, dims="p"), lat=xr.DataArray(lats, dims="p"))
    )
    np.testing.assert_array_equal(data.reshape(3, -1), expected.values)


def test_geotiff_keeps_integer_packing_as_scale_offset_and_nodata(tmp_path):
    cube = synthetic_cube().sel(lon=slice(0, 20), lat=slice(0, 20))[["sm"]]
    packed = tmp_path / "packed.nc"
    cube.to_netcdf(
        packed, encoding={"sm": {"dtype": "int16", "scale_factor": 0.001, "add_offset": 0.0, "_FillValue": -9999}}
    )
    with xr.open_dataset(packed) as ds:
        ds["sm"][1, 2, 3] = np.nan
        sub = core.select(ds, SubsetRequest(variables=["sm"], bbox=(0, 0, 20, 20)))
        path = writers.to_geotiff(sub, tmp_path / "sm.tif")
        with rasterio.open(path) as src:
            assert src.dtypes[0] == "int16" and src.nodata == -9999
            assert src.scales[0] == pytest.approx(0.001) and src.offsets[0] == 0.0
            raw = src.read(masked=True)
        values = raw.astype("float64") * 0.001
        expected = sub.sm.values[:, ::-1, :]  # north-up rows
        assert raw.mask[1, ::-1, :][2, 3]
        np.testing.assert_allclose(values.filled(np.nan), expected, rtol=0, atol=1e-9)


def test_geotiff_needs_one_variable(box, tmp_path):
    with pytest.raises(SubsetError, match=r"^variables: a GeoTIFF holds one variable"):
        writers.to_geotiff(box, tmp_path / "x.tif")
    assert list(tmp_path.iterdir()) == []


def test_csv_is_long_form_with_the_cubes_values(cubes, box, tmp_path):
    path = writers.to_csv(box, tmp_path / "out.csv")
    frame = pd.read_csv(path).rename(columns=lambda c: c.split(" [")[0])  # headers "name [units]"
    assert list(pd.read_csv(path).columns) == [
        "time",
        "lat [degrees_north]",
        "lon [degrees_east]",
        "et [mm day-1]",
        "sm [m3 m-3]",
    ]
    assert len(frame) == 3 * box.sizes["lat"] * box.sizes["lon"]
    assert frame.time.iloc[0] == "2001-01-01"
    cube = cubes["360"]
    ref = cube.sel(
        time=xr.DataArray(pd.to_datetime(frame.time).values, dims="r"),
        lat=xr.DataArray(frame.lat.values, dims="r"),
        lon=xr.DataArray(np.mod(frame.lon.values, 360.0), dims="r"),
    )
    for name in ("et", "sm"):
        np.testing.assert_array_equal(frame[name].values.astype("float32"), ref[name].values)


def test_csv_of_a_polygon_can_leave_out_the_cells_outside(cubes, tmp_path):
    sub = core.select(cubes["180"], SubsetRequest(variables=["et"], polygon="POLYGON ((0 0, 20 0.5, 5.5 15, 0 0))"))
    frame = pd.read_csv(writers.to_csv(sub, tmp_path / "p.csv", drop_empty=True)).rename(
        columns=lambda c: c.split(" [")[0]
    )
    assert all(inside_triangle(x, y) for x, y in zip(frame.lon, frame.lat, strict=True))
    assert len(frame) == int(np.isfinite(sub.et.values).sum())


def test_csv_of_a_point_series_has_the_cell_centre(cubes, tmp_path):
    series, centre = core.point_series(cubes["360"], -170.4, 45.9, ["et", "sm"])
    frame = pd.read_csv(writers.to_csv(series, tmp_path / "point.csv")).rename(columns=lambda c: c.split(" [")[0])
    assert list(frame.columns) == ["time", "lat", "lon", "et", "sm"]
    assert (frame.lon == centre[0]).all() and (frame.lat == centre[1]).all()
    np.testing.assert_array_equal(frame.et.values.astype("float32"), cubes["360"].et.sel(lon=189.0, lat=45.0).values)


def test_coveragejson_grid_pointseries_and_polygonseries(cubes, box):
    grid = writers.to_coveragejson(box)
    json.dumps(grid, allow_nan=False)
    assert grid["domain"]["domainType"] == "Grid"
    assert grid["domain"]["axes"]["t"]["values"] == ["2001-01-01", "2001-01-02", "2001-01-03"]
    et = grid["ranges"]["et"]
    assert et["axisNames"] == ["t", "y", "x"] and et["shape"] == [3, box.sizes["lat"], box.sizes["lon"]]
    np.testing.assert_array_equal(np.array(et["values"], dtype="float32").reshape(et["shape"]), box.et.values)
    assert grid["parameters"]["et"]["unit"] == {"symbol": "mm day-1"}

    series, centre = core.point_series(cubes["180"], 0.5, 0.5, ["et"])
    point = writers.to_coveragejson(series)
    json.dumps(point, allow_nan=False)
    assert point["domain"]["domainType"] == "PointSeries"
    assert point["domain"]["axes"]["x"]["values"] == [centre[0]]
    assert point["ranges"]["et"]["values"][0] is None  # the SYNTHETIC NaN at (1, 1) on day 1

    mean = core.area_mean(cubes["180"], SubsetRequest(variables=["et"], polygon="POLYGON ((0 0, 20 0.5, 5.5 15, 0 0))"))
    polygon = writers.to_coveragejson(mean)
    json.dumps(polygon, allow_nan=False)
    assert polygon["domain"]["domainType"] == "PolygonSeries"
    assert polygon["domain"]["axes"]["composite"]["values"][0][0][1] == [20.0, 0.5]
    assert polygon["ranges"]["et"]["values"] == pytest.approx(list(mean.et.values))


def test_a_failing_writer_leaves_no_file_and_keeps_the_previous_one(box, tmp_path):
    target = tmp_path / "out.nc"
    target.write_bytes(b"previous")
    with pytest.raises(TypeError):
        writers.to_netcdf(box, target, citation="c", attrs={"bad": {"nested": "dicts are not netCDF attributes"}})
    assert target.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [target]

    with pytest.raises(TypeError):
        writers.to_zarr_zip(box, tmp_path / "out.zip", attrs={"bad": object()})
    with pytest.raises(SubsetError):
        writers.to_geotiff(box.isel(lat=[0]), tmp_path / "out.tif", variable="et")
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    "values",
    [
        np.array(["2000-01-01", "2000-01-02T12:00", "1999-12-31T23:59:59", "NaT"], dtype="datetime64[ns]"),
        np.array(["2000-01-01T00:00:00.5", "2000-01-02"], dtype="datetime64[ns]"),  # sub-second: pandas' text
        np.array(["2001-02-03"], dtype="datetime64[D]"),
        np.datetime64("2001-02-03T06"),  # a scalar
        np.array([cftime.DatetimeNoLeap(2000, 2, 28), cftime.DatetimeNoLeap(2000, 3, 1, 6)], dtype=object),
    ],
)
def test_iso_times_writes_what_iso_time_writes_for_each_value(values):
    assert core.iso_times(values) == [core.iso_time(v) for v in np.atleast_1d(values)]
