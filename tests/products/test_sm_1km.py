"""1 km soil moisture: storage round trip, step 1 (CDF matching), the synthetic twin with a known truth,
the real-data pieces (GLDAS day, MODIS tile) and the pipeline through ``execute_run``."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import ndimage

from products.data_kind import DataKind
from products.generators import sm_1km
from products.generators.twins import sm_1km as sm_1km_twin
from products.methods import chunked
from products.methods.cv import assert_disjoint, block_ids

SMALL = {"n_estimators": 60}


@pytest.fixture(scope="module")
def twin():
    return sm_1km_twin.Twin(4, 4, 12, 60, seed=3)


@pytest.fixture(scope="module")
def result(twin, tmp_path_factory):
    out = tmp_path_factory.mktemp("sm1km")
    return sm_1km_twin.run_twin(
        twin, seed=3, params=SMALL, nc_path=out / "twin.nc", tif_path=out / "twin.tif", chunk=(60, 60)
    )


# --- storage ---------------------------------------------------------------------------------------


def _field():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 0.6, (2, 70, 90))
    values[0, :5, :7] = np.nan
    values[1, 30:40, 50:60] = np.nan
    return values


def test_packed_files_round_trip_within_half_a_unit_and_keep_the_gaps(tmp_path):
    values = _field()
    grid = sm_1km.Grid(10.0, 20.0, 70, 90, sm_1km.FINE_RES)
    times = np.array(["2019-06-01", "2019-06-02"], dtype="datetime64[ns]")
    sm_1km.write_product(
        functools.partial(sm_1km.field_features, values=values),
        sm_1km.first_column,
        grid=grid,
        times=times,
        nc_path=tmp_path / "a.nc",
        tif_path=tmp_path / "a.tif",
        chunk=(30, 30),
        global_attrs={"data_kind": DataKind.SYNTHETIC},
    )
    with xr.open_dataset(tmp_path / "a.nc") as ds:
        sm = ds["sm"]
        assert sm.encoding["dtype"] == np.dtype("int16") and sm.encoding["scale_factor"] == pytest.approx(0.001)
        assert sm.encoding["_FillValue"] == -9999 and sm.attrs["units"] == "m3 m-3"
        assert sm.encoding["zlib"] and ds.attrs["data_kind"] == "synthetic twin"
        back = sm.values
        np.testing.assert_allclose(ds["lat"].values, grid.lat)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(values))
    assert np.nanmax(np.abs(back - values)) <= 0.0005 + 1e-7

    import rasterio

    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.dtypes == ("int16", "int16") and src.nodata == -9999
        assert src.scales == (0.001, 0.001) and src.offsets == (0.0, 0.0)
        assert src.profile["tiled"] and src.profile["compress"] == "deflate" and src.crs.to_epsg() == 4326
        assert src.tags()["data_kind"] == "synthetic twin"
        band = src.read(masked=True)
    tif = np.where(band.mask, np.nan, band.filled(0) * 0.001)
    np.testing.assert_array_equal(np.isnan(tif), np.isnan(values))
    assert np.nanmax(np.abs(tif - values)) <= 0.0005 + 1e-7


def test_encode_clips_to_the_valid_range_and_maps_nan_and_float_fill_to_the_integer_fill():
    packed = sm_1km.encode([-0.2, 0.0004, 0.0006, 1.7, np.nan, -9999.0])
    np.testing.assert_array_equal(packed, [0, 0, 1, 1000, -9999, -9999])
    decoded = sm_1km.decode(packed)
    assert np.isnan(decoded[-2:]).all() and decoded[2] == pytest.approx(0.001)


def test_a_failing_window_leaves_no_file_and_keeps_an_older_one(tmp_path):
    grid = sm_1km.Grid(10.0, 20.0, 60, 60, sm_1km.FINE_RES)
    (tmp_path / "a.nc").write_text("older")

    def features(window):
        if window.index == 2:
            raise RuntimeError("disk on fire")
        return sm_1km.field_features(window, values=np.full((1, 60, 60), 0.2))

    with pytest.raises(RuntimeError, match="disk on fire"):
        sm_1km.write_product(
            features,
            sm_1km.first_column,
            grid=grid,
            times=np.array(["2019-06-01"], "datetime64[ns]"),
            nc_path=tmp_path / "a.nc",
            tif_path=tmp_path / "a.tif",
            chunk=(30, 30),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"] and (tmp_path / "a.nc").read_text() == "older"


def test_the_generator_reads_one_window_at_a_time_on_the_global_1km_grid():
    grid = sm_1km.global_fine_grid()
    assert grid.shape == (21600, 43200)
    coarse_grid = sm_1km.Grid(90.0, -180.0, 720, 1440, sm_1km.COARSE_RES)
    coarse = np.full((1, 720, 1440), 0.25)

    class Source(sm_1km.PredictorSource):
        def __init__(self):
            self.grid, self.shapes = grid, []

        def read(self, time, lat, lon):
            shape = (time.stop - time.start, lat.stop - lat.start, lon.stop - lon.start)
            self.shapes.append(shape)
            return {p: np.ones(shape) for p in sm_1km.PREDICTORS}

    source = Source()
    todo = chunked.windows((1, *grid.shape), (1, 240, 240))
    assert len(todo) == 90 * 180
    matrix, valid = sm_1km.window_features(todo[5000], source=source, coarse=coarse, coarse_grid=coarse_grid)
    assert source.shapes == [(1, 240, 240)] and valid.all() and matrix.shape == (240 * 240, len(sm_1km.FEATURES))
    np.testing.assert_allclose(matrix[:, 0], 0.25)


# --- step 1 and building blocks ---------------------------------------------------------------------


def test_cdf_matching_gives_the_reference_distribution():
    rng = np.random.default_rng(1)
    ref = rng.beta(2, 5, 5000) * 0.5
    src = 0.1 + 0.4 * rng.beta(2, 5, 5000) * 0.5
    matched = sm_1km.cdf_match(src, sm_1km.cdf_breakpoints(src), sm_1km.cdf_breakpoints(ref))
    np.testing.assert_allclose(np.percentile(matched, [10, 50, 90]), np.percentile(ref, [10, 50, 90]), atol=0.005)
    assert np.isnan(sm_1km.cdf_match([np.nan], sm_1km.cdf_breakpoints(src), sm_1km.cdf_breakpoints(ref))).all()


def test_seamless_keeps_satellite_values_fills_gaps_and_flags_the_source(result, twin):
    s = result.seamless
    sat = np.isfinite(twin.satellite)
    np.testing.assert_allclose(s.sm[sat], np.clip(twin.satellite[sat], 0, 1), atol=1e-6)
    assert (s.source[sat] == 1).all() and (s.source[~sat] == 2).all() and np.isfinite(s.sm).all()
    assert result.coarse_scores["matched"] < 0.75 * result.coarse_scores["raw"]


def test_without_a_satellite_product_the_reanalysis_is_used_unmatched():
    rea = np.full((1, 3, 4), 0.3)
    rea[0, 0, 0] = np.nan
    s = sm_1km.seamless_coarse(None, rea)
    assert (s.rule == "none").all() and s.source[0, 0, 0] == 0 and (s.source.ravel()[1:] == 3).all()
    np.testing.assert_allclose(s.sm[0].ravel()[1:], 0.3)


def test_bilinear_is_exact_on_a_plane_and_skips_missing_neighbours():
    grid = sm_1km.Grid(10.0, 0.0, 4, 5, 0.25)
    plane = 0.1 + 0.02 * grid.lat[:, None] + 0.01 * grid.lon[None, :]
    lat, lon = np.array([9.6, 9.3]), np.array([0.3, 0.8])
    np.testing.assert_allclose(sm_1km.bilinear(plane, grid, lat, lon), 0.1 + 0.02 * lat + 0.01 * lon)
    holed = plane.copy()
    holed[1, 1] = np.nan
    assert np.isfinite(sm_1km.bilinear(holed, grid, 9.6, 0.3))


def test_gldas_mass_per_area_becomes_volumetric_soil_moisture():
    assert sm_1km.gldas_top_layer(25.0) == pytest.approx(0.25)


# --- the synthetic twin: known truth ----------------------------------------------------------------


def test_the_twin_recovers_the_1km_truth_better_than_the_bilinear_coarse_field(result):
    ours, base = result.truth_scores["sm_1km"], result.truth_scores["coarse_bilinear"]
    assert ours["n"] == base["n"] > 100_000
    assert ours["rmse"] < 0.7 * base["rmse"] and ours["ubrmse"] < 0.7 * base["ubrmse"]
    assert ours["r"] > base["r"] + 0.05


def test_validation_stations_are_never_in_training_and_score_better_than_bilinear(result):
    assert_disjoint(result.train_stations, result.validation_stations)
    assert_disjoint(result.train_stations + result.validation_stations, result.buffer_stations)
    assert set(result.cv["station"]) <= set(result.train_stations) and result.cv["station"].nunique() > 10
    assert set(result.validation["station"]) == set(result.validation_stations)
    v = result.validation
    ours = sm_1km.summary(v["sm_1km"].to_numpy(), v["insitu"].to_numpy())
    base = sm_1km.summary(v["coarse_bilinear"].to_numpy(), v["insitu"].to_numpy())
    assert ours["ubrmse"] < base["ubrmse"] and ours["rmse"] < base["rmse"]


def test_the_written_twin_file_is_labelled_and_matches_the_model(result):
    nc, tif = result.write.paths
    with xr.open_dataset(nc) as ds:
        assert ds.attrs["data_kind"] == "synthetic twin" and ds["sm"].dims == ("time", "lat", "lon")
        assert ds.sizes["lat"] == 120 and np.isfinite(ds["sm"].values).all()
    assert result.write.max_window_cells == 60 * 60


# --- spatial blocks sized from the target's variogram ----------------------------------------------


def _variogram(ratios, sill=2.0, pairs=100):
    edges = np.arange(len(ratios) + 1) * 10.0
    frame = pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "gamma": np.asarray(ratios) * sill, "pairs": pairs})
    frame.attrs["sill"] = sill
    return frame


def test_the_practical_range_is_where_the_semivariance_stays_at_the_sill():
    assert sm_1km.practical_range_km(_variogram([0.2, 0.6, 0.9, 0.97, 1.0])) == 30.0
    # a dip after a first peak (hole effect) moves the range out to where it stays
    assert sm_1km.practical_range_km(_variogram([0.5, 1.0, 0.8, 0.97, 1.0])) == 30.0
    assert sm_1km.practical_range_km(_variogram([0.2, 0.5, 0.7])) == 30.0  # never reached: a lower bound
    thin = _variogram([0.2, 0.5, 0.99, 0.4, 1.0])
    thin.loc[3, "pairs"] = 5  # too few pairs to count
    assert sm_1km.practical_range_km(thin) == 20.0
    assert np.isnan(sm_1km.practical_range_km(_variogram([0.5, 1.0], sill=0.0)))


def test_the_empirical_variogram_of_uncorrelated_and_of_smooth_fields():
    rng = np.random.default_rng(0)
    lat, lon = 40 + rng.uniform(0, 1.5, 300), -100 + rng.uniform(0, 2.0, 300)
    noise = sm_1km.empirical_variogram(rng.normal(0, 1, (4, 300)), lat, lon)
    assert noise.attrs["sill"] == pytest.approx(1.0, rel=0.1)
    assert sm_1km.practical_range_km(noise) <= 10.0
    # white noise smoothed with a Gaussian of sigma = 8 cells of 1/120 degree: correlation exp(-h^2 / (4 sigma^2))
    # falls under 5 % at about 26 km along a meridian
    grid = sm_1km.Grid(40.0, -100.0, 240, 240, sm_1km.FINE_RES)
    fields = np.stack([ndimage.gaussian_filter(rng.normal(0, 1, grid.shape), 8.0, mode="wrap") for _ in range(4)])
    rows, cols = rng.integers(0, 240, 600), rng.integers(0, 240, 600)
    smooth = sm_1km.empirical_variogram(fields[:, rows, cols], grid.lat[rows], grid.lon[cols])
    assert 15.0 <= sm_1km.practical_range_km(smooth) <= 40.0
    with pytest.raises(ValueError, match="n_days, n_points"):
        sm_1km.empirical_variogram(np.zeros((2, 5)), lat, lon)


def test_a_block_is_at_least_the_range_in_whole_coarse_cells():
    assert sm_1km.block_size_deg(15.0) == 0.25 and sm_1km.block_size_deg(27.7) == 0.25
    assert sm_1km.block_size_deg(28.0) == 0.5
    with pytest.raises(ValueError):
        sm_1km.block_size_deg(float("nan"))


def test_the_block_hold_out_keeps_whole_blocks_and_a_buffer():
    rng = np.random.default_rng(1)
    lat, lon = 40 - rng.uniform(0, 1.0, 120), -100 + rng.uniform(0, 1.0, 120)
    labels = sm_1km.block_holdout(lat, lon, block_deg=0.25, buffer_km=15.0, fraction=0.3, seed=2)
    ids = block_ids(lat, lon, 0.25)
    held = set(ids[labels == 1])
    assert held.isdisjoint(ids[labels != 1])  # whole blocks
    assert 0.25 <= (labels == 1).mean() <= 0.45 and (labels == 0).sum() >= 40
    d = sm_1km.great_circle_km(lat[labels == 0][:, None], lon[labels == 0][:, None], lat[labels == 1], lon[labels == 1])
    assert d.min() > 15.0 and (labels == 2).any()
    np.testing.assert_array_equal(labels, sm_1km.block_holdout(lat, lon, block_deg=0.25, buffer_km=15.0, seed=2))
    folds = list(sm_1km.buffered_block_folds(lat, lon, block_deg=0.25, buffer_km=15.0))
    assert sorted(np.concatenate([te for _, te in folds])) == list(range(120))
    for tr, te in folds:
        assert len(set(ids[te])) == 1
        assert sm_1km.great_circle_km(lat[tr][:, None], lon[tr][:, None], lat[te], lon[te]).min() > 15.0
    with pytest.raises(ValueError, match="at least two"):
        sm_1km.block_holdout(lat, lon, block_deg=10.0, buffer_km=1.0)


def test_the_twin_blocks_are_sized_from_the_targets_range_and_beat_the_bilinear_field(result):
    assert 5.0 <= result.range_km <= 60.0 and result.held_out.buffer_km == result.range_km
    assert result.held_out.block_deg == sm_1km.block_size_deg(result.range_km)
    frames = result.held_out.frames
    scores = {k: sm_1km.summary(f["sm_1km"].to_numpy(), f["insitu"].to_numpy()) for k, f in frames.items()}
    assert all(s["n"] > 50 for s in scores.values())
    base = sm_1km.summary(
        frames["block", "validation"]["coarse_bilinear"].to_numpy(), frames["block", "validation"]["insitu"].to_numpy()
    )
    assert scores["block", "validation"]["ubrmse"] < base["ubrmse"]


# --- real data: the pieces that exist ---------------------------------------------------------------


def test_the_real_modis_tile_lands_on_the_1km_lonlat_grid(shared_data):
    from ingestion.readers import modis

    with modis.open_grid(shared_data / "modis_lsttools" / "MOD11A1.hdf") as ds:
        lst = np.asarray(ds["LST_Day_1km"].values[0], dtype="float64")
        x, y, lat, lon = ds["x"].values, ds["y"].values, ds["lat"].values, ds["lon"].values
    grid = sm_1km.lonlat_grid_for(lat.min(), lat.max(), lon.min(), lon.max())
    assert (grid.north, grid.west) == (0.0, -40.75) and grid.n_lat == 1200
    on_grid = sm_1km.modis_lst_on_grid(lst, x, y, grid)
    assert 0.9 < np.isfinite(on_grid).sum() / np.isfinite(lst).sum() < 1.1  # ~one lat/lon cell per tile cell
    i, j = 600, 300  # a tile cell: its centre must pick itself on the lat/lon grid
    if np.isfinite(lst[i, j]):
        r, c = grid.index(lat[i, j], lon[i, j])
        assert on_grid[r, c] == lst[i, j]
    assert 250 < np.nanmean(on_grid) < 330


# --- the pipeline through execute_run --------------------------------------------------------------

PARAMS = {"twin_coarse_cells": 4, "twin_days": 10, "twin_stations": 50, "n_estimators": 50, "chunk": 60}


@pytest.fixture(scope="module")
def sm_run(django_db_setup, django_db_blocker, shared_data):
    from ingestion.services import ingest
    from products.models import GenerationRun
    from products.services import create_run, execute_run

    with django_db_blocker.unblock():
        assert not ingest("ismn", shared_data / "ismn_testdata").failed
        # tests/products/test_cf_published.py may have published it already
        run = GenerationRun.objects.filter(
            product="sm_1km", status="succeeded", parameters=PARAMS
        ).first() or execute_run(create_run("sm_1km", parameters=PARAMS).id)
    assert run.status == "succeeded", run.error
    return run


@pytest.mark.django_db
def test_generate_publishes_real_and_synthetic_files_with_lineage(sm_run):
    from pathlib import Path

    from django.conf import settings

    version = sm_run.version
    names = set(version.files.values_list("name", flat=True))
    assert names == {
        "sm_coarse_real.nc",
        "sm_coarse_real.tif",
        "sm_coarse_1km_real.nc",
        "sm_coarse_1km_real.tif",
        "sm_1km_twin.nc",
        "sm_1km_twin.tif",
    }
    root = Path(settings.DATA_ROOT)
    with xr.open_dataset(root / version.files.get(name="sm_coarse_real.nc").path) as ds:
        assert ds.attrs["data_kind"] == "real" and ds.sizes["lat"] == 600
        sm = ds["sm"].values
        assert 0.05 < np.nanmean(sm) < 0.5 and np.isnan(sm).mean() > 0.5  # land only
    with xr.open_dataset(root / version.files.get(name="sm_1km_twin.nc").path) as ds:
        assert ds.attrs["data_kind"] == "synthetic twin"
    real = sm_run.summary["real"]
    assert real["gldas"]["source_flags"]["reanalysis, unmatched (no satellite value to learn a CDF from)"] > 100_000
    assert real["modis"]["lst_valid_cells_on_grid"] > 0 and real["ismn"]["ingested"]
    assert real["ismn"]["training_rows"] == 0 and real["ismn"]["stations_inside_modis_tile"] == 0
    roles = " ".join(i["role"] for i in sm_run.inputs)
    assert "GLDAS" in roles and "MODIS" in roles and "ISMN" in roles and "synthetic" in roles
    assert all(i.get("sha256") for i in sm_run.inputs if "GLDAS" in i["role"] or "MODIS" in i["role"])


@pytest.mark.django_db
def test_validation_rows_are_labelled_synthetic_and_beat_the_bilinear_baseline(sm_run):
    from products.models import ValidationResult

    rows = ValidationResult.objects.filter(version=sm_run.version)
    assert set(rows.values_list("split", flat=True)) == {
        "twin_block_validation",
        "twin_block_cv",
        "twin_validation",
        "twin_cv",
    }
    for row in rows.filter(scope="pooled"):
        assert row.label.startswith("synthetic twin: ") and row.units == "m3 m-3"
    for split in ("twin_block_validation", "twin_validation"):
        pooled = {r.variable: r for r in rows.filter(scope="pooled", split=split)}
        assert pooled["sm_1km"].ubrmse < pooled["coarse_bilinear"].ubrmse
    truth = sm_run.summary["twin"]["truth_scores"]
    assert truth["sm_1km"]["rmse"] < truth["coarse_bilinear"]["rmse"]
    sites = pd.DataFrame(rows.filter(scope="site").values("label", "split"))
    for held, cv in (("twin_block_validation", "twin_block_cv"), ("twin_validation", "twin_cv")):
        assert set(sites.loc[sites["split"] == held, "label"]).isdisjoint(sites.loc[sites["split"] == cv, "label"])


@pytest.mark.django_db
def test_the_lineage_records_every_parameter_and_where_each_statistic_was_fitted(sm_run):
    from products.pipelines.sm_1km import DEFAULTS

    lineage = sm_run.version.lineage
    used, blocks = lineage["parameters"], sm_run.summary["twin"]["spatial_blocks"]
    assert {**DEFAULTS, **PARAMS}.items() <= used.items()  # defaults included, not only what was asked
    assert used["lightgbm"]["n_estimators"] == PARAMS["n_estimators"] and "num_leaves" in used["lightgbm"]
    assert used["buffer_km (measured)"] == blocks["buffer_km"] == blocks["residual_range_km"] > 0
    assert used["block_deg (measured)"] == blocks["block_deg"] >= blocks["residual_range_km"] / 111.2
    fitted = lineage["statistics_fitted_on"]
    assert any("twin_block_validation" in k and "training stations only" in v for k, v in fitted.items())
    assert any(k.startswith("residual range") and "no station value" in v for k, v in fitted.items())


@pytest.mark.django_db
def test_the_dataset_page_shows_the_twin_validation_beside_the_bilinear_baseline(sm_run, client):
    from products.models import ValidationResult

    html = client.get(f"/datasets/{sm_run.dataset_id}/").content.decode()
    start = html.index('id="validation-twin_block_validation"')
    table = html[start : html.index("</table>", start)]
    for row in ValidationResult.objects.filter(version=sm_run.version, split="twin_block_validation", scope="pooled"):
        assert f"<td>{row.variable}</td><td>{row.n}</td><td>{row.kge:.3f}</td><td>{row.r:.3f}</td>" in table
    assert 'data-kind="synthetic twin"' in html[html.rindex("<h3>", 0, start) : start]
