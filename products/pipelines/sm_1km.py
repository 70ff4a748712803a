"""The 1 km surface soil-moisture pipeline: the steps the real sample data allow, and the synthetic twin.

What runs on REAL data (``data_kind = "real"`` in the files, splits/labels ``real``):

* Step 1 on the GLDAS-2.1 Noah 0.25 degree files of 2016-01-01 (``gldas_testdata``, 3-hourly NetCDF-4):
  the daily mean of ``SoilMoi0_10cm_inst`` (kg m-2 / 100 = m3 m-3) is the reanalysis. No satellite
  (ESA CCI-like) product exists in the sample data, so no CDF can be learned: the rule of
  :func:`products.generators.sm_1km.seamless_coarse` falls back to the reanalysis as it is (source
  flag 3) and says so. Written as ``sm_coarse_real.nc`` / ``.tif`` (packed integers).
* Step 2 inputs on the MODIS MOD11A1 tile h14v09 of 2019-11-01 (``modis_lsttools``): the LST grid
  resampled onto the 1 km lat/lon grid of the tile's box, and the GLDAS coarse field bilinearly
  interpolated onto the same 1 km grid, written as ``sm_coarse_1km_real.nc`` / ``.tif`` (the
  coarse-only 1 km field, *not* a downscaled product); the LST coverage is in the summary.
* ISMN stations (reader kind ``ismn``, when ingested): daily surface values
  (:func:`products.generators.sm_mlda.ismn_daily`) in the station format the model trains on, and
  their collocation with the two real grids (inside the MODIS tile? GLDAS value at the station).

What could not run on real data, and why: the downscaling model (no NDVI, albedo or terrain grid in
the sample data; and no ISMN station inside the MODIS tile or on its day or on the GLDAS day, so
there is no training row), hence no real 1 km product and no real validation. The whole chain runs
on the SYNTHETIC twin (``sm_1km_twin.nc`` / ``.tif``, ``data_kind = "synthetic twin"``). Its splits:
``twin_block_validation`` (the headline: stations held out in whole spatial blocks, no training station
within the buffer, both sized from the variogram range of the model's target on the twin) and
``twin_block_cv`` (buffered leave-one-block-out over the training stations); ``twin_validation`` and
``twin_cv`` hold stations out at random, as before issue 16, and stay beside them to show the inflation
(a random held-out station has training neighbours inside the target's correlation range).

Uncertainty (issue 17): ``sm_standard_error`` beside ``sm`` in every NetCDF grid (GeoTIFFs hold the
estimate only). On the twin it is half the distance between two LightGBM quantile models (0.16, 0.84)
fitted on the same training stations as the point model, predicted window by window like the estimate;
its calibration is the coverage of ``sm +- 1.645 se`` at the held-out block stations
(``twin_block_validation``) against their in-situ values (no in-situ error added: the quantile models
learn station values). On the real files it is missing everywhere and not calibrated
(:data:`REAL_SE_REASON`). ``summary["uncertainty"]`` lists one entry per file.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from scipy.stats import norm

from ingestion.readers import gldas, modis
from products.data_kind import DataKind
from products.generators import sm_1km, sm_mlda
from products.generators.twins import sm_1km as sm_1km_twin
from products.lineage import (
    ProductOutput,
    RunError,
    Stages,
    ValidationRow,
    file_attributes,
    file_input,
    ingested_input,
    json_safe,
    metric_values,
    record_inputs,
    source_frames,
    twin_input,
)
from products.methods import cf, uncertainty
from products.methods.aggregate import validation_rows
from products.models import GenerationRun
from products.pipelines.compute import grid_compute

GLDAS_DAY = "gldas_testdata/img2ts_test/netcdf/2016/001"
MODIS_TILE = "modis_lsttools/MOD11A1.hdf"
ISMN_SOURCE = "ISMN"
DEFAULTS = {
    "seed": 42,
    "twin_coarse_cells": 4,
    "twin_days": 20,
    "twin_stations": 80,
    "validation_fraction": 0.3,
    "n_splits": 5,
    "n_estimators": 200,
    "chunk": 120,
    "real": True,
    "range_fraction": 0.95,
}


REAL_SE_REASON = (
    "no standard error on real data (every value of sm_standard_error is missing): the quantile models, like "
    "the downscaling model, need NDVI, albedo and terrain grids that the sample data lack and training rows "
    "from in-situ stations, and no ISMN station has an observation on the grids' day (2016-01-01) or lies "
    "inside the 1 km grid (the MODIS tile's box); for the same reason no coverage can be measured"
)
"""Why the real files' ``sm_standard_error`` holds no value and is not calibrated (issue 17)."""
CALIBRATION_SPLIT = "twin_block_validation"
"""The held-out split whose stations measure the coverage of the twin's standard error."""


def _no_standard_error(matrix: np.ndarray) -> np.ndarray:
    """``standard_error`` of the real grids: missing everywhere (see :data:`REAL_SE_REASON`)."""
    return np.full(len(matrix), np.nan)


def _real_se_attrs() -> dict:
    return sm_1km.standard_error_attrs(uncertainty.calibration_comment(None, REAL_SE_REASON) + ". REAL")


def _parameters(run: GenerationRun) -> dict:
    """:data:`DEFAULTS` updated with the run's parameters; RunError for an unknown one or a bad ``chunk``."""
    unknown = set(run.parameters) - set(DEFAULTS)
    if unknown:
        raise RunError(f"unknown sm_1km parameter(s) {sorted(unknown)}: expected some of {sorted(DEFAULTS)}")
    params = {**DEFAULTS, **run.parameters}
    if int(params["chunk"]) % 30:
        raise RunError(f"chunk must be a multiple of 30 (1 km cells per 0.25 degree cell), found {params['chunk']}")
    return params


def _rows(frame: pd.DataFrame, *, variable: str, split: str, kind: str) -> list[ValidationRow]:
    """Pooled (labelled ``"<kind>: all stations (pooled)"``) and per-station rows of ``sim`` against ``obs`` (m3 m-3)."""
    return [
        ValidationRow(
            variable, "m3 m-3", split, scope, f"{kind}: all stations (pooled)" if scope == "pooled" else label, metrics
        )
        for scope, label, metrics in validation_rows(frame, "sim", "obs", "station")
    ]


def _real_coarse(files: list[Path], workdir: Path, attrs: dict) -> dict:
    """GLDAS day -> seamless rule -> packed files; returns the field, its grid and facts for the summary."""
    layers = []
    for path in files:
        ds = gldas.open_grid(path)
        try:
            layers.append(np.asarray(ds["SoilMoi0_10cm_inst"].values[0], dtype="float64"))
            lat = ds["lat"].values.astype("float64")
        finally:
            ds.close()
    daily = sm_1km.gldas_top_layer(np.mean(layers, axis=0))[::-1]  # north-up
    grid = sm_1km.Grid(float(lat.max()) + 0.125, -180.0, lat.size, 1440, sm_1km.COARSE_RES)
    seamless = sm_1km.seamless_coarse(None, daily[None])
    day = np.array(["2016-01-01"], dtype="datetime64[ns]")
    sm_1km.write_product(
        functools.partial(sm_1km.field_features, values=seamless.sm),
        sm_1km.first_column,
        grid=grid,
        times=day,
        nc_path=workdir / "sm_coarse_real.nc",
        tif_path=workdir / "sm_coarse_real.tif",
        chunk=(300, 720),
        standard_error=_no_standard_error,
        se_attrs=_real_se_attrs(),
        **grid_compute(),
        global_attrs={
            **attrs,
            "data_kind": DataKind.REAL,
            **cf.soil_layer_attributes(0.0, 0.1),
            "title": "Seamless coarse (0.25 degree) surface soil moisture, step 1 (REAL)",
            "source": f"GLDAS-2.1 Noah SoilMoi0_10cm_inst, daily mean of {len(files)} 3-hourly files "
            "of 2016-01-01, kg m-2 / 100 = m3 m-3",
            "comment": "REAL. No satellite (ESA CCI-like) product in the sample data: no CDF matching "
            "possible, the reanalysis is used as it is (source flag 3 everywhere).",
        },
    )
    flags = {
        sm_1km.SOURCE_FLAGS[k]: int(v) for k, v in zip(*np.unique(seamless.source, return_counts=True), strict=True)
    }
    return {
        "field": seamless.sm[0].astype("float64"),
        "grid": grid,
        "files": len(files),
        "source_flags": flags,
        "land_cells": int(np.isfinite(daily).sum()),
        "mean": float(np.nanmean(daily)),
    }


def _real_fine(tile: Path, coarse: dict, workdir: Path, attrs: dict) -> dict:
    """MODIS LST tile -> 1 km lat/lon grid; the coarse field bilinear on it, written packed."""
    ds = modis.open_grid(tile)
    try:
        lst = np.asarray(ds["LST_Day_1km"].values[0], dtype="float64")
        x, y = ds["x"].values, ds["y"].values
        lat, lon = ds["lat"].values, ds["lon"].values
        granule, day = ds.attrs.get("granule", ""), ds["time"].values[0]
    finally:
        ds.close()
    grid = sm_1km.lonlat_grid_for(float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max()))
    on_grid = sm_1km.modis_lst_on_grid(lst, x, y, grid)
    interp = sm_1km.bilinear(coarse["field"], coarse["grid"], grid.lat[:, None], grid.lon[None, :])
    sm_1km.write_product(
        functools.partial(sm_1km.interp_features, grid=grid, coarse=coarse["field"][None], coarse_grid=coarse["grid"]),
        sm_1km.first_column,
        grid=grid,
        times=np.array(["2016-01-01"], dtype="datetime64[ns]"),
        nc_path=workdir / "sm_coarse_1km_real.nc",
        tif_path=workdir / "sm_coarse_1km_real.tif",
        chunk=(240, 240),
        standard_error=_no_standard_error,
        se_attrs=_real_se_attrs(),
        **grid_compute(),
        global_attrs={
            **attrs,
            "data_kind": DataKind.REAL,
            **cf.soil_layer_attributes(0.0, 0.1),
            "title": "GLDAS coarse soil moisture bilinearly interpolated to 1 km over MODIS tile "
            f"{granule} (REAL; the coarse-only input of step 2, not a downscaled product)",
            "source": "sm_coarse_real.nc (GLDAS-2.1 Noah, 2016-01-01) interpolated bilinearly onto "
            f"the 1 km latitude/longitude grid of MODIS tile {granule}",
            "comment": "REAL. The downscaling model could not run: no NDVI, albedo or terrain grids "
            "and no ISMN training rows on this tile or day.",
        },
    )
    return {
        "granule": granule,
        "lst_day": str(np.datetime_as_string(day, unit="D")),
        "grid": {"north": grid.north, "west": grid.west, "n_lat": grid.n_lat, "n_lon": grid.n_lon},
        "lst_valid_fraction_tile": float(np.isfinite(lst).mean()),
        "lst_valid_cells_on_grid": int(np.isfinite(on_grid).sum()),
        "coarse_valid_cells_on_grid": int(np.isfinite(interp).sum()),
        "cells_with_lst_and_coarse": int((np.isfinite(on_grid) & np.isfinite(interp)).sum()),
        "lst_mean_k": json_safe(np.nanmean(on_grid) if np.isfinite(on_grid).any() else np.nan),
        "box": [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())],
    }


def _real_ismn(coarse: dict, fine: dict | None) -> dict:
    """The ISMN stations in the station format the model trains on, and their collocation with the two real grids."""
    obs, stations, networks = source_frames(ISMN_SOURCE, variable_prefix="sm_")
    if not networks:
        return {"ingested": False, "note": "no ISMN stations: run 'manage.py ingest ismn <ismn_testdata>'"}
    daily = sm_mlda.ismn_daily(obs)
    at_gldas = sm_1km.bilinear(coarse["field"], coarse["grid"], stations["lat"].to_numpy(), stations["lon"].to_numpy())
    inside = 0
    if fine is not None:
        g = fine["grid"]
        grid = sm_1km.Grid(g["north"], g["west"], g["n_lat"], g["n_lon"], sm_1km.FINE_RES)
        inside = int((grid.index(stations["lat"], stations["lon"])[0] >= 0).sum())
    days = pd.DatetimeIndex(daily["time"]) if not daily.empty else pd.DatetimeIndex([])
    same_day = {
        d: int((days == pd.Timestamp(d)).sum()) for d in ("2016-01-01", fine["lst_day"] if fine else "2019-11-01")
    }
    return {
        "ingested": True,
        "stations": int(len(stations)),
        "stations_with_daily_surface_sm": int(daily["station"].nunique()) if not daily.empty else 0,
        "daily_rows": int(len(daily)),
        "period": [f"{days.min():%Y-%m-%d}", f"{days.max():%Y-%m-%d}"] if len(days) else [],
        "stations_inside_modis_tile": inside,
        "station_days_on_the_gldas_or_modis_day": same_day,
        "gldas_2016_01_01_at_stations": {c: json_safe(v) for c, v in zip(stations["code"], at_gldas, strict=True)},
        "training_rows": 0,
    }


def sm_1km_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """Real step-1/step-2 inputs and the synthetic twin of the 1 km chain; see the module docstring.

    Parameters (``run.parameters``, defaults :data:`DEFAULTS`): ``seed``; ``twin_coarse_cells`` (twin
    domain side in 0.25 degree cells, x 30 at 1 km), ``twin_days``, ``twin_stations``,
    ``validation_fraction`` (stations kept out of training), ``n_splits`` (leave-station-out folds),
    ``n_estimators``; ``chunk`` (window side in 1 km cells, a multiple of 30); ``real`` (false skips
    the real part, for quick runs).

    Raises
    ------
    RunError
        Unknown parameters, or a real input file is missing.
    """
    params = _parameters(run)
    stages = Stages(run)
    attrs = file_attributes(run)
    shared = Path(settings.SHARED_DATA_DIR)
    files: dict[str, str] = {}
    summary: dict = {"seed": sm_1km.SEED_FIGURES}
    validation: list[ValidationRow] = []

    with stages("real_inputs"):
        inputs = []
        real: dict = {}
        if params["real"]:
            gldas_files = sorted((shared / GLDAS_DAY).glob("GLDAS_NOAH025_3H.A20160101.*.nc4"))
            tile = shared / MODIS_TILE
            if not gldas_files:
                raise RunError(f"{shared / GLDAS_DAY}: no GLDAS-2.1 files of 2016-01-01 (SHARED_DATA_DIR={shared})")
            if not tile.is_file():
                raise RunError(f"{tile}: MODIS MOD11A1 tile not found (SHARED_DATA_DIR={shared})")
            inputs += [
                file_input("GLDAS-2.1 Noah 0-10 cm soil moisture, 2016-01-01 (reanalysis of step 1, REAL)", p)
                for p in gldas_files
            ]
            inputs.append(file_input("MODIS MOD11A1 LST tile (step-2 LST predictor grid, REAL)", tile))
            inputs.append(
                ingested_input("ISMN in-situ soil moisture (station format; no usable training rows)", "ismn")
            )
        inputs.append(
            twin_input(
                "products.generators.twins.sm_1km.Twin",
                {
                    k: params[k]
                    for k in ("seed", "twin_coarse_cells", "twin_days", "twin_stations", "validation_fraction")
                },
            )
        )
        record_inputs(run, inputs)
        if params["real"]:
            coarse = _real_coarse(gldas_files, workdir, attrs)
            files["sm_coarse_real.nc"] = (
                "REAL: step 1, 0.25 degree seamless field from GLDAS-2.1 of 2016-01-01 (no "
                "satellite product to CDF-match: reanalysis as it is), NetCDF-4 int16 x 0.001; "
                "sm_standard_error is there but missing everywhere (no model or station on real data)"
            )
            files["sm_coarse_real.tif"] = (
                "REAL: the same field as a tiled, deflate GeoTIFF (int16, scale 0.001, nodata -9999); "
                "the estimate only (the standard error is a NetCDF variable)"
            )
            fine = _real_fine(tile, coarse, workdir, attrs)
            files["sm_coarse_1km_real.nc"] = (
                "REAL: the GLDAS coarse field bilinearly interpolated to 1 km over the MODIS "
                "tile's box (step-2 input, not downscaled), NetCDF-4 int16 x 0.001; "
                "sm_standard_error is there but missing everywhere (no model or station on real data)"
            )
            files["sm_coarse_1km_real.tif"] = (
                "REAL: the same 1 km field as a tiled, deflate GeoTIFF; the estimate only (the standard error "
                "is a NetCDF variable)"
            )
            real = {
                "gldas": {k: v for k, v in coarse.items() if k not in ("field", "grid")},
                "modis": fine,
                "ismn": _real_ismn(coarse, fine),
                "not_run": "downscaling model, real 1 km product and real validation: no NDVI/albedo/terrain grids in "
                "the sample data, and no ISMN station inside the MODIS tile or with data on 2016-01-01 or "
                f"{fine['lst_day']} (no training row); no satellite product for CDF matching",
            }
            summary["real"] = {**real, "data_kind": DataKind.REAL}

    with stages("twin_chain"):
        n = int(params["twin_coarse_cells"])
        twin = sm_1km_twin.Twin(n, n, int(params["twin_days"]), int(params["twin_stations"]), seed=int(params["seed"]))
        chunk = (int(params["chunk"]), int(params["chunk"]))
        result = sm_1km_twin.run_twin(
            twin,
            seed=int(params["seed"]),
            validation_fraction=float(params["validation_fraction"]),
            n_splits=int(params["n_splits"]),
            params={"n_estimators": int(params["n_estimators"])},
            nc_path=workdir / "sm_1km_twin.nc",
            tif_path=workdir / "sm_1km_twin.tif",
            chunk=chunk,
            attrs=attrs,
            range_fraction=float(params["range_fraction"]),
        )
        files["sm_1km_twin.nc"] = (
            "SYNTHETIC twin: 1 km daily surface soil moisture downscaled from a gap-filled coarse "
            "field (LightGBM on the synthetic stations outside the held-out spatial blocks and their "
            "buffer), NetCDF-4 int16 x 0.001, with sm_standard_error (float32, m3 m-3) from LightGBM "
            "quantile regression (0.16, 0.84) on the same stations"
        )
        files["sm_1km_twin.tif"] = (
            "SYNTHETIC twin: the same 1 km field as a tiled GeoTIFF, one band per day; the estimate only (the "
            "standard error is in the NetCDF file)"
        )

    frames = sm_1km_twin.validation_frames(result)
    for (split, variable), frame in frames.items():
        validation += _rows(frame, variable=variable, split=split, kind=DataKind.SYNTHETIC)
    held = result.held_out
    random_fit = held.validation["random"]
    summary["twin"] = {
        "data_kind": DataKind.SYNTHETIC,
        "grid_1km": list(twin.grid.shape),
        "days": len(twin.times),
        "train_stations": len(result.train_stations),
        "validation_stations": len(result.validation_stations),
        "buffer_stations": len(result.buffer_stations),
        "spatial_blocks": {
            "residual_range_km": result.range_km,
            "block_deg": held.block_deg,
            "buffer_km": held.buffer_km,
            "block_cv_folds": len(held.cv["block"]),
            "variogram": {
                "of": "truth - coarse bilinear (the model's target) at random 1 km cells, (m3 m-3)^2",
                "sill": result.variogram.attrs["sill"],
                "classes": result.variogram.to_dict(orient="records"),
            },
        },
        "random_split": {
            "train_stations": len(random_fit.train_stations),
            "validation_stations": len(random_fit.test_stations),
        },
        "splits": {name: sm_1km.SPLITS[kind] for (kind, _), name in sm_1km_twin.SPLIT_NAMES.items()},
        "coarse_gap_fill_rmse": metric_values(result.coarse_scores),
        "truth_scores": {k: metric_values(v) for k, v in result.truth_scores.items()},
        "station_medians": {f"{s}/{v}": metric_values(sm_1km.station_medians(f)) for (s, v), f in frames.items()},
        "write": {
            "windows": result.write.n_windows,
            "max_window_cells": result.write.max_window_cells,
            "seconds": round(result.write.seconds, 3),
        },
        "standard_error": {
            "coverage_at_held_out_stations": {split: c.as_dict() for split, c in result.coverage.items()},
            "coverage_against_the_truth": result.truth_coverage,
            "cells_with_standard_error": result.write.extra.get("n_standard_error"),
        },
    }
    headline = result.coverage[CALIBRATION_SPLIT]
    summary["uncertainty"] = [
        uncertainty.summary_entry(
            file="sm_1km_twin.nc",
            variable="sm_standard_error",
            estimate="sm",
            kind=uncertainty.STANDARD_ERROR,
            method="quantile_regression",
            calibration=headline,
        )
    ] + [
        uncertainty.summary_entry(
            file=name,
            variable="sm_standard_error",
            estimate="sm",
            kind=uncertainty.STANDARD_ERROR,
            method="quantile_regression",
            not_calibrated_reason=REAL_SE_REASON,
        )
        for name in ("sm_coarse_real.nc", "sm_coarse_1km_real.nc")
        if name in files
    ]

    def pooled(split: str, variable: str) -> dict:
        return next(
            v.metrics for v in validation if v.split == split and v.variable == variable and v.scope == "pooled"
        )

    block, base = pooled("twin_block_validation", "sm_1km"), pooled("twin_block_validation", "coarse_bilinear")
    rand = pooled("twin_validation", "sm_1km")
    truth = result.truth_scores
    notes = (
        f"1 km soil moisture. SYNTHETIC twin: against the known truth r {truth['sm_1km']['r']:.3f}, ubRMSE "
        f"{truth['sm_1km']['ubrmse']:.4f} m3 m-3 (coarse field bilinearly interpolated: r "
        f"{truth['coarse_bilinear']['r']:.3f}, ubRMSE {truth['coarse_bilinear']['ubrmse']:.4f}); at "
        f"{len(result.validation_stations)} twin stations held out in whole {held.block_deg:g} degree blocks, "
        f"no training station within {held.buffer_km:g} km (the range of the model's target), r {block['r']:.3f}, "
        f"ubRMSE {block['ubrmse']:.4f} (bilinear {base['r']:.3f}, {base['ubrmse']:.4f}); stations held out at "
        f"random, beside it to show the inflation: r {rand['r']:.3f}, ubRMSE {rand['ubrmse']:.4f}. Twin scores "
        "check the method on made-up data and are not comparable with the seed's published figures. "
        + (
            "REAL: step 1 on GLDAS 2016-01-01 (no satellite product, so no CDF matching), the coarse field at 1 km "
            "over the MODIS LST tile; no real downscaling or validation (no NDVI/albedo/terrain, no collocated "
            "ISMN rows)."
            if params["real"]
            else "Real part skipped (parameter real=false)."
        )
        + f" Standard error (twin, LightGBM quantile regression 0.16/0.84 on the training stations): the "
        f"{headline.nominal:.0%} interval held {headline.measured:.1%} of {headline.n} held-out block station-days "
        f"({'calibrated' if headline.calibrated else 'not calibrated'}"
        f"{', too narrow' if headline.too_narrow and not headline.calibrated else ''})"
        + ("; no standard error on the real files (no model or station there)." if params["real"] else ".")
    )
    used = {
        **params,
        "lightgbm": {
            **sm_1km.DEFAULT_PARAMS,
            "n_estimators": int(params["n_estimators"]),
            "random_state": params["seed"],
        },
        "variogram": {
            "points": sm_1km_twin.VARIOGRAM_POINTS,
            "days": sm_1km_twin.VARIOGRAM_DAYS,
            "bins_km": list(sm_1km.RANGE_BINS_KM),
            "range_fraction": params["range_fraction"],
        },
        "cdf_matching": {"min_samples": 30, "n_quantiles": 21},
        "uncertainty": {
            "variable": "sm_standard_error",
            "method": "quantile_regression",
            "quantile_alphas": list(sm_1km.QUANTILE_ALPHAS),
            "standard_error": f"(q84 - q16) / (2 z), z = {norm.ppf(0.5 + sm_1km.QUANTILE_NOMINAL / 2):.4f} for the "
            f"central {sm_1km.QUANTILE_NOMINAL:.0%} between the two quantiles",
            "lightgbm": "the point model's parameters with objective='quantile' and alpha",
            "interval_nominal_coverage": uncertainty.NOMINAL,
            "interval_z": headline.z,
            "obs_error_std": 0.0,
            "calibration_split": CALIBRATION_SPLIT,
        },
        "block_deg (measured)": held.block_deg,
        "buffer_km (measured)": held.buffer_km,
    }
    return ProductOutput(
        files=files,
        validation=validation,
        summary=summary,
        notes=notes,
        parameters=used,
        statistics_fitted_on={
            "seamless coarse field (CDF matching of the reanalysis to the satellite product)": "satellite and "
            "reanalysis cell-days of the whole domain and record (no station value); real run: nothing fitted "
            "(no satellite product)",
            "residual range, spatial block size and buffer": "the twin's known truth minus the coarse field at "
            "random 1 km cells (no station value)",
            "LightGBM downscaling model (twin_block_validation) and the 1 km grid it writes": "training stations "
            "only: outside the held-out blocks and farther than the buffer from every held-out station",
            "LightGBM models of twin_block_cv": "each fold's training stations: outside its block and beyond the "
            "buffer",
            "LightGBM models of twin_validation and twin_cv": "the random split's training stations (each CV fold's "
            "training stations)",
            "LightGBM quantile models (0.16, 0.84) of sm_standard_error": "in every split and fold, the same "
            "training stations as that fold's point model; the grid's from twin_block_validation's training "
            "stations; its coverage measured at the held-out block stations only",
            "hyper-parameters": "none selected on data (fixed LightGBM parameters, see parameters)",
            "real data": "nothing fitted on stations (no real training rows)",
        },
    )
