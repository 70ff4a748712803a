"""The ET fusion pipeline: gathers tower observations and forcing, calls :mod:`products.generators.et_fusion`."""

from __future__ import annotations

from pathlib import Path

import xarray as xr
from django.conf import settings

from products.data_kind import DataKind
from products.generators import et_fusion, et_fusion_cf, et_grid
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
    observations_frame,
    record_inputs,
    stations_frame,
)
from products.methods import cf
from products.methods import uncertainty as unc
from products.methods.aggregate import validation_rows
from products.models import GenerationRun
from products.pipelines.compute import grid_compute, tree_options

CARDAMOM_NETWORK = "FLUXNET2015"
ERA5_POINTS = "xclim_era5_cities/daily_surface_cancities_1990-1993.nc"
BASIN_NETWORK = "GRDC-MRB"
ECOSTRESS_NETWORK = "AmeriFlux"
RECONSTRUCTION_METRICS = ("n", "kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse")
FILES = {
    "et_fusion_timeseries.nc": "CF-1.8 timeSeries (DSG): monthly ET observed and predicted at FLUXNET2015 towers "
    "(CARDAMOM-FluxVal) and predicted at five ERA5 points, 1990-1993",
    "et_basin_reconstruction.nc": "CF-1.8 timeSeries (DSG): stage 1, the five basin ET products and their "
    "LightGBM reconstructions over the predictors' span, GRDC major river basins, with their mean and the spread "
    "between them as its standard error",
    "et_basin_triple_collocation.csv": "Triple collocation of GLEAM, ERA5-Land and MOD16 monthly ET anomalies "
    "per basin: error std (mm month-1), TCR, SNR (dB), beta, flags, data_kind",
    "et_fused_ecostress_towers.nc": "CF-1.8 point: stage 2, ET fused from inputs available off-tower and the five "
    "ECOSTRESS model ET estimates against tower ET at ECOSTRESS cal/val towers (leave-tower-out); "
    "et_fused_tower_met, with the tower's own meteorology, is an upper bound only",
}


# Every parameter the pipeline uses, with its default (stored resolved in the version's lineage).
DEFAULTS = {
    "sites": None,  # CARDAMOM towers (None: all)
    "n_splits": 10,  # leave-site-out folds of the tower model
    "seed": 42,
    "basins": None,  # GRDC basin codes (None: all)
    "basin_splits": 5,  # leave-basin-out folds of stage 1
    "fusion_sites": None,  # ECOSTRESS towers (None: all)
    "fusion_splits": 5,  # outer leave-tower-out folds of stage 2
    "fusion_inner_splits": 3,  # FLAML's tuning folds (grouped by tower) inside each outer fold
    "fusion_max_iter": 20,  # FLAML trials per outer fold
    "fusion_upper_bound": True,  # also fit the labelled upper bound with the tower's own meteorology
    "forcing_grid": [],  # sub-daily gridded forcing files (none in the shared sample data)
    "forcing_data_kind": str(DataKind.REAL),
    # the uncertainty beside the estimates: the quantile pair's alphas (a central pair) and the stated interval
    # whose coverage is measured at held-out towers
    "uncertainty_quantiles": list(et_fusion.QUANTILES),
    "uncertainty_nominal_coverage": unc.NOMINAL,
    **et_fusion.DEFAULT_PARAMS,  # LightGBM parameters of the tower model (random_state = seed)
}
# LightGBM parameters a run may set for the tower model besides those of DEFAULT_PARAMS
LIGHTGBM_EXTRA = ("max_depth", "reg_alpha", "reg_lambda", "min_split_gain", "min_child_weight", "max_bin")
GRID_SPLIT = "grid_at_held_out_towers"
UPPER_BOUND_SPLIT = "fusion_upper_bound_tower_met"
FUSION_SPLIT = "fusion_held_out"
TOWER_SPLIT = "validation"
STATISTICS_FITTED_ON = {
    "LightGBM tower model (five drivers)": "training months of the training towers of each leave-site-out fold; "
    "the published final model (ERA5 points, gridded ET) on the training months of all towers, never on the "
    "validation months",
    "stage-1 LightGBM reconstruction, one model per product": "training basins of each leave-basin-out fold; the "
    "stored reconstruction from all basins",
    "stage-1 basin-mean precipitation predictor": "each basin's own precipitation over all its months (a "
    "predictor, not the target)",
    "triple-collocation anomalies (calendar-month climatology)": "each basin's own common months of each triplet (a "
    "diagnostic, no held-out data)",
    "stage-2 fusion model (FLAML LightGBM, off-tower inputs)": "training towers of each outer leave-tower-out fold",
    "FLAML hyper-parameters": "inner folds grouped by tower within each outer fold's training towers",
    "stage-2 upper bound (tower meteorology)": "as the fusion: training towers of each outer fold, hyper-parameters "
    "on their inner grouped folds",
    "tower model quantile pair (et_standard_error)": "the rows of the point model: training months of the training "
    "towers of each leave-site-out fold (out-of-fold standard errors, calibrated on the held-out towers' validation "
    "months); the final pair (ERA5 points, grid) on the training months of all towers",
    "stage-2 fusion quantile pair (et_fused_standard_error)": "training towers of each outer leave-tower-out fold, "
    "with the parameters FLAML chose for that fold's fused model",
}


def _parameters(run: GenerationRun) -> dict:
    """:data:`DEFAULTS` updated with the run's parameters; RunError naming any unknown one."""
    unknown = set(run.parameters) - set(DEFAULTS) - set(LIGHTGBM_EXTRA)
    if unknown:
        raise RunError(
            f"unknown et_fusion parameter(s) {sorted(unknown)}: expected some of {sorted({*DEFAULTS, *LIGHTGBM_EXTRA})}"
        )
    return {**DEFAULTS, **run.parameters}


def et_fusion_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """The ET product in four stored parts, each validated on data its models never saw.

    1. Tower model: monthly ET at the CARDAMOM-FluxVal towers from five drivers (LightGBM,
       leave-site-out), applied at the ERA5 points (``et_fusion_timeseries.nc``; split
       ``validation``; the ERA5-point series are never validated there, the file says so).
    2. Stage 1, reconstruction: each of the five basin ET products learned from precipitation and
       runoff and extended over the predictors' span (``et_basin_reconstruction.nc``; split
       ``reconstruction_held_out``, leave-basin-out).
    3. Triple collocation of GLEAM, ERA5-Land and MOD16 anomalies per basin, a diagnostic
       (``et_basin_triple_collocation.csv``; medians in the summary, with the limit of that triplet,
       GLEAM and ERA5-Land sharing ERA5 forcing, and the medians of a triplet with separate
       meteorology, ERA5-Land / GLDAS-2.1 Noah / MOD16, as its sensitivity).
    4. Stage 2, fusion: FLAML AutoML from the five ECOSTRESS model ET estimates and inputs available
       off-tower (their satellite inputs; the gridded meteorology at the tower's pixel) to tower ET, validated
       by leaving towers out, beside each single product on the same samples
       (``et_fused_ecostress_towers.nc``; split ``fusion_held_out``). The same fusion with the
       tower's own meteorology is kept only as a labelled upper bound (variable
       ``et_fused_tower_met``, split ``fusion_upper_bound_tower_met``).

    Uncertainty beside each estimate (``summary["uncertainty"]``, one entry per variable): a LightGBM
    quantile pair (``uncertainty_quantiles``, default 0.16 and 0.84, the point model's parameters) fitted
    in the same folds as the tower model and as each outer fold of the fusion gives out-of-fold standard
    errors (``et_standard_error``, ``et_fused_standard_error``), whose coverage of the
    ``uncertainty_nominal_coverage`` interval is measured at the held-out towers (splits ``validation``
    and ``fusion_held_out``); the final pair gives the ERA5 points' and the grid's (calibrated on split
    ``grid_at_held_out_towers`` when the forcing overlaps held-out tower months). The basin file states
    the spread of the five reconstructions as the standard error of their mean, not calibrated (no
    independent basin ET).

    Parameters (``run.parameters``): see :data:`DEFAULTS` (every one, with its default, is stored
    in the version's lineage); ``forcing_grid`` (sub-daily GLDAS-2.1-style forcing files, absolute
    or relative to ``SHARED_DATA_DIR``) adds a daily ET grid predicted chunk by chunk with the
    five-driver tower model (``et_grid_daily.nc``, :mod:`products.generators.et_grid`), labelled
    with ``forcing_data_kind``, and scored at the towers' held-out months (split
    ``grid_at_held_out_towers``). The shared sample data hold no gridded forcing (the GLDAS sample
    files carry soil moisture and soil temperature only), so a default run writes no grid.

    Raises
    ------
    RunError
        An unknown parameter (named), or an input is missing (names the ``manage.py ingest``
        command that provides it).
    """
    resolved = _parameters(run)
    seed = int(resolved["seed"])
    cv = {"n_splits": int(resolved["n_splits"]), "seed": seed}
    lgbm = {k: resolved[k] for k in (*et_fusion.DEFAULT_PARAMS, *LIGHTGBM_EXTRA) if k in resolved}
    basin_splits = int(resolved["basin_splits"])
    forcing_grid = [Path(settings.SHARED_DATA_DIR) / f for f in resolved["forcing_grid"] or []]
    forcing_kind = str(resolved["forcing_data_kind"])
    try:
        quantiles = et_fusion.check_quantiles(resolved["uncertainty_quantiles"])
        nominal = float(resolved["uncertainty_nominal_coverage"])
        if not 0.0 < nominal < 1.0:
            raise ValueError(f"the nominal coverage must lie in (0, 1), found {nominal}")
    except (TypeError, ValueError) as error:
        raise RunError(f"uncertainty_quantiles / uncertainty_nominal_coverage: {error}") from error
    fusion = {
        "n_splits": int(resolved["fusion_splits"]),
        "inner_splits": int(resolved["fusion_inner_splits"]),
        "max_iter": int(resolved["fusion_max_iter"]),
        "seed": seed,
    }
    stages = Stages(run)
    with stages("load_inputs"):
        obs, stations, era5_path, basin_obs, ecostress_obs, ecostress_stations = _inputs(
            run,
            sites=resolved["sites"],
            basins=resolved["basins"],
            fusion_sites=resolved["fusion_sites"],
            forcing_grid=forcing_grid,
            forcing_kind=forcing_kind,
        )
        table = et_fusion.build_training_table(obs, stations)

    with stages("tower_model"):
        result = et_fusion.run(table, **cv, params=lgbm, quantiles=quantiles)
        tower_coverage = et_fusion.tower_calibration(result, split=TOWER_SPLIT, nominal=nominal)

    with stages("tower_predict_and_write"):
        with xr.open_dataset(era5_path) as era5:
            drivers = et_fusion.era5_monthly_drivers(era5)
        drivers["et_pred"] = et_fusion.predict(result.final_model, drivers)
        drivers["et_standard_error"] = et_fusion.predict_standard_error(result.final_quantile_models, drivers)
        attrs = file_attributes(run)
        files = dict(FILES)
        cf.write_netcdf(
            et_fusion_cf.to_cf_dataset(result, drivers, attrs=attrs, coverage=tower_coverage),
            workdir / "et_fusion_timeseries.nc",
        )
    uncertainty = [
        unc.summary_entry(
            file="et_fusion_timeseries.nc",
            variable="et_standard_error",
            estimate="et",
            kind=unc.STANDARD_ERROR,
            method="quantile_regression",
            calibration=tower_coverage,
        )
    ]

    grid_rows, grid_summary = (
        [],
        {
            "model": et_grid.GRID_MODEL,
            "written": bool(forcing_grid),
            "day_definition": et_grid.DAY_DEFINITION,
        },
    )
    if forcing_grid:
        with stages("grid_predict_and_write"):
            et_grid.predict_et_grid(
                result.final_model,
                forcing_grid,
                workdir / "et_grid_daily.nc",
                attrs={**attrs, "data_kind": forcing_kind},
                quantile_models=result.final_quantile_models,
                **grid_compute(),
                **tree_options(),
            )
            files["et_grid_daily.nc"] = (
                f"CF-1.8 grid: daily ET (UTC calendar days) predicted chunk by chunk from {forcing_kind} "
                f"gridded forcing ({len(forcing_grid)} files) with the five-driver tower model (not the fusion)"
            )
        with stages("grid_at_held_out_towers"):
            grid_rows, grid_summary["validation"] = _grid_validation(
                workdir / "et_grid_daily.nc", stations, result, forcing_kind
            )
            grid_coverage, reason = _grid_calibration(workdir / "et_grid_daily.nc", stations, result, nominal)
            et_grid.describe_standard_error(workdir / "et_grid_daily.nc", grid_coverage, reason)
            uncertainty.append(
                unc.summary_entry(
                    file="et_grid_daily.nc",
                    variable=et_grid.SE_NAME,
                    estimate="et",
                    kind=unc.STANDARD_ERROR,
                    method=et_grid.SE_METHOD,
                    calibration=grid_coverage,
                    not_calibrated_reason=reason,
                )
            )

    with stages("stage1_reconstruction"):
        reconstruction = et_fusion.reconstruct_products(basin_obs, n_splits=basin_splits, seed=seed)
        cf.write_netcdf(
            et_fusion_cf.reconstruction_to_cf(reconstruction, attrs=attrs), workdir / "et_basin_reconstruction.nc"
        )
        uncertainty.append(
            unc.summary_entry(
                file="et_basin_reconstruction.nc",
                variable=f"{et_fusion_cf.BASIN_ENSEMBLE}_standard_error",
                estimate=et_fusion_cf.BASIN_ENSEMBLE,
                kind=unc.STANDARD_ERROR,
                method="member_spread",
                not_calibrated_reason=et_fusion_cf.BASIN_SE_REASON,
            )
        )

    with stages("triple_collocation"):
        tc = et_fusion.basin_triple_collocation(basin_obs)
        tc_sensitivity = et_fusion.basin_triple_collocation(basin_obs, products=et_fusion.TC_SENSITIVITY_PRODUCTS)
        tc.assign(data_kind=str(DataKind.REAL)).to_csv(  # a CSV has no global attributes: a column says it
            workdir / "et_basin_triple_collocation.csv", index=False, float_format="%.6g"
        )

    with stages("stage2_fusion"):
        fused = et_fusion.fuse_at_towers(
            ecostress_obs, forcing=et_fusion.OFF_TOWER_INPUTS, quantiles=quantiles, **fusion
        )
        fusion_coverage = et_fusion.fusion_calibration(fused, split=FUSION_SPLIT, nominal=nominal)
    upper = None
    if resolved["fusion_upper_bound"]:
        with stages("stage2_upper_bound_tower_met"):
            upper = et_fusion.fuse_at_towers(ecostress_obs, forcing=et_fusion.TOWER_FORCING, quantiles=None, **fusion)
    cf.write_netcdf(
        et_fusion_cf.fusion_to_cf(fused, ecostress_stations, attrs=attrs, upper_bound=upper, coverage=fusion_coverage),
        workdir / "et_fused_ecostress_towers.nc",
    )
    uncertainty.append(
        unc.summary_entry(
            file="et_fused_ecostress_towers.nc",
            variable="et_fused_standard_error",
            estimate="et_fused",
            kind=unc.STANDARD_ERROR,
            method="quantile_regression",
            calibration=fusion_coverage,
        )
    )

    validation = [
        ValidationRow("et", "mm d-1", split, scope, label, metrics, network=CARDAMOM_NETWORK)
        for split, scope, label, metrics in et_fusion.metric_rows(result)
    ]
    validation += grid_rows
    validation += [
        ValidationRow(
            f"{product}_rec",
            "mm month-1",
            "reconstruction_held_out",
            "pooled",
            "all",
            {k: row[k] for k in RECONSTRUCTION_METRICS},
        )
        for product, row in reconstruction.cv.iterrows()
    ]
    land_cover = dict(zip(ecostress_stations["code"], ecostress_stations["land_cover"], strict=True))
    validation += [
        ValidationRow(variable, "mm h-1", FUSION_SPLIT, scope, label, metrics, network=ECOSTRESS_NETWORK)
        for variable, scope, label, metrics in et_fusion.fusion_metric_rows(fused, land_cover)
    ]
    if upper is not None:
        validation += [
            ValidationRow(
                "et_fused_tower_met", "mm h-1", UPPER_BOUND_SPLIT, scope, label, metrics, network=ECOSTRESS_NETWORK
            )
            for variable, scope, label, metrics in et_fusion.fusion_metric_rows(upper, land_cover)
            if variable == "et_fused"
        ]
    pooled = next(v.metrics for v in validation if v.split == TOWER_SPLIT and v.scope == "pooled")
    single = fused.table.drop(index="et_fused")
    summary = {
        "towers": int(table["station"].nunique()),
        "validation_rows": int(pooled["n"]),
        "kge": pooled["kge"],
        "rmse": pooled["rmse"],
        "r": pooled["r"],
        "bias": pooled["bias"],
        "era5_points": int(drivers["station"].nunique()),
        "era5_points_validated": False,
        "gridded_et": grid_summary,
        "day_definition": et_grid.DAY_DEFINITION,
        "reconstruction": {
            p: metric_values({"kge": row["kge"], "rmse": row["rmse"], "n": row["n"]})
            | {
                "basins": int(row["basins"]),
                "product_span": [f"{row['product_start']:%Y-%m}", f"{row['product_end']:%Y-%m}"],
                "reconstructed_span": [f"{row['reconstructed_start']:%Y-%m}", f"{row['reconstructed_end']:%Y-%m}"],
            }
            for p, row in reconstruction.cv.iterrows()
        },
        "triple_collocation": {
            **_tc_medians(tc, et_fusion.TC_PRODUCTS),
            "limits": et_fusion.TC_LIMITS,
            "sensitivity": _tc_medians(tc_sensitivity, et_fusion.TC_SENSITIVITY_PRODUCTS)
            | {
                "note": "members with separate meteorology: ERA5-Land (ECMWF ERA5), GLDAS-2.1 Noah (NCEP GDAS, "
                "GPCP precipitation, AGRMET radiation), MOD16 (NASA GMAO, MODIS); error std in units of the "
                "first member's anomalies, so compare TCR across triplets"
            },
        },
        "fusion": {
            "inputs": list(fused.features),
            "inputs_available_off_tower": True,
            "towers": int(fused.predictions["station"].nunique()),
            "samples": int(fused.table.loc["et_fused", "n"]),
            "kge": json_safe(fused.table.loc["et_fused", "kge"]),
            "r": json_safe(fused.table.loc["et_fused", "r"]),
            "rmse": json_safe(fused.table.loc["et_fused", "rmse"]),
            "best_single_product": str(single["kge"].idxmax()),
            "best_single_kge": json_safe(single["kge"].max()),
            "beats_every_product": bool(
                (fused.table.loc["et_fused", "kge"] > single["kge"]).all()
                and (fused.table.loc["et_fused", "rmse"] < single["rmse"]).all()
            ),
            "best_config_per_fold": [json_safe(c) for c in fused.best_configs],
        },
    }
    if upper is not None:
        summary[UPPER_BOUND_SPLIT] = {
            "inputs": list(upper.features),
            "inputs_available_off_tower": False,
            "samples": int(upper.table.loc["et_fused", "n"]),
            "kge": json_safe(upper.table.loc["et_fused", "kge"]),
            "r": json_safe(upper.table.loc["et_fused", "r"]),
            "rmse": json_safe(upper.table.loc["et_fused", "rmse"]),
            "note": "upper bound, not a product: takes the radiation, air temperature and humidity measured at "
            "the tower it is scored at, which no grid cell has",
        }
    summary["uncertainty"] = uncertainty
    return ProductOutput(
        files=files,
        validation=validation,
        summary=summary,
        notes="Monthly ET (mm d-1) at flux towers and ERA5 points (the ERA5-point series are never validated "
        "there); stage-1 reconstruction of five ET products over GRDC basins; triple collocation diagnostic; "
        "stage-2 AutoML fusion at ECOSTRESS towers from inputs available off-tower (with the tower-meteorology "
        "variant only as a labelled upper bound). Gridded ET, when forcing is given, comes from the five-driver "
        "tower model on UTC calendar days. Every score comes from towers, months or basins the scoring model "
        "never saw.",
        parameters=json_safe(resolved),
        statistics_fitted_on=dict(STATISTICS_FITTED_ON),
    )


def _tc_medians(tc, products) -> dict:
    """Summary of a triple-collocation table: members, basins, medians of TCR and error std over unflagged basins."""
    usable = tc[~tc["too_few_samples"]]
    return {
        "products": list(products),
        "basins": int(len(tc)),
        "basins_used": int(len(usable)),
        **{f"median_tcr_{p}": json_safe(usable.loc[~usable[f"flag_{p}"], f"tcr_{p}"].median()) for p in products},
        **{
            f"median_err_std_{p}": json_safe(usable.loc[~usable[f"flag_{p}"], f"err_std_{p}"].median())
            for p in products
        },
    }


def _grid_validation(grid_path: Path, stations, result, forcing_kind: str) -> tuple[list[ValidationRow], dict]:
    """Rows of split ``grid_at_held_out_towers`` and the summary of that check.

    The grid's cell of each CARDAMOM tower, averaged over the grid days of each month, against the
    tower's held-out (validation) months, which the final model that makes the grid never saw. When
    the forcing's days fall in no held-out tower month, no row is stored and the summary says so.
    The pooled row's label names the forcing's data kind when it is not real (``"synthetic: all"``).
    """
    daily = et_grid.sample_at_points(grid_path, stations.rename(columns={"code": "station"}))
    frame = et_grid.grid_at_held_out_towers(daily, result.predictions)
    held_out = result.predictions[result.predictions["is_validation"]]
    with xr.open_dataset(grid_path) as ds:
        days = ds["time"].values
    info = {
        "split": GRID_SPLIT,
        "forcing_days": [str(days.min())[:10], str(days.max())[:10]] if days.size else [],
        "held_out_tower_months": [f"{held_out['time'].min():%Y-%m}", f"{held_out['time'].max():%Y-%m}"]
        if len(held_out)
        else [],
        "towers_in_grid": int(daily["station"].nunique()),
        "held_out_in": "time (the validation months of each tower; the final model saw its other months)",
    }
    if frame.empty:
        return [], info | {
            "status": "no_overlap",
            "reason": "the forcing's days fall in no held-out month of a tower inside the grid: the grid is "
            "not validated at towers in this version",
        }
    rows = [
        ValidationRow(
            "et_grid",
            "mm d-1",
            GRID_SPLIT,
            scope,
            f"{forcing_kind}: {label}" if scope == "pooled" and forcing_kind != DataKind.REAL else label,
            metrics,
            network=CARDAMOM_NETWORK,
        )
        for scope, label, metrics in validation_rows(frame, "et_grid", "et_obs", "station", "land_cover")
    ]
    pooled = rows[0].metrics
    return rows, info | {
        "status": "validated",
        "towers": int(frame["station"].nunique()),
        "months": int(len(frame)),
        "median_days_per_month": float(frame["n_days"].median()),
        **{k: json_safe(pooled[k]) for k in ("n", "kge", "r", "rmse", "bias")},
    }


def _grid_calibration(grid_path: Path, stations, result, nominal: float) -> tuple[unc.Coverage | None, str]:
    """The grid's standard error against the towers' held-out months (split ``grid_at_held_out_towers``).

    Returns
    -------
    tuple
        (:class:`~products.methods.uncertainty.Coverage`, "") when the forcing's days fall in held-out tower
        months, else (None, the reason).
    """
    daily = et_grid.sample_at_points(grid_path, stations.rename(columns={"code": "station"}))
    frame = et_grid.grid_at_held_out_towers(daily, result.predictions)
    if frame.empty:
        return None, (
            "the forcing's days fall in no held-out month of a tower inside the grid, so the grid's interval "
            "could not be checked at held-out towers in this version"
        )
    return et_grid.grid_calibration(frame, split=GRID_SPLIT, nominal=nominal), ""


def _inputs(run: GenerationRun, *, sites, basins, fusion_sites, forcing_grid: list[Path], forcing_kind: str):
    """Read the four inputs' observations and stations, check they are there and record them on the run.

    Returns
    -------
    tuple
        CARDAMOM tower observations and stations, the ERA5 point file's path, the basin observations,
        the ECOSTRESS tower observations and stations.

    Raises
    ------
    RunError
        An input is missing (names the ``manage.py ingest`` command that provides it).
    """
    obs = observations_frame(network=CARDAMOM_NETWORK, variables=list(et_fusion.TOWER_VARIABLES), stations=sites)
    stations = stations_frame(network=CARDAMOM_NETWORK, stations=sites)
    if obs.empty:
        raise RunError(
            f"no {CARDAMOM_NETWORK} tower observations in the database: run "
            "'manage.py ingest cardamom <cardamom_fluxval>' first"
        )
    era5_path = Path(settings.SHARED_DATA_DIR) / ERA5_POINTS
    basin_obs = observations_frame(
        network=BASIN_NETWORK,
        stations=basins,
        variables=sorted({*et_fusion.BASIN_ET_PRODUCTS, *et_fusion.BASIN_PREDICTORS, *et_fusion.TC_PRODUCTS}),
    )
    tower_names = ["et", *et_fusion.ECOSTRESS_PRODUCTS, *et_fusion.OFF_TOWER_INPUTS, *et_fusion.TOWER_MET]
    ecostress_obs = observations_frame(network=ECOSTRESS_NETWORK, variables=tower_names, stations=fusion_sites)
    ecostress_stations = stations_frame(network=ECOSTRESS_NETWORK, stations=fusion_sites)
    for frame, what, command in (
        (basin_obs, f"{BASIN_NETWORK} basin", "ingest basins <lehmannfa_basin_water_budget>"),
        (ecostress_obs, "ECOSTRESS tower", "ingest ecostress <ecov002_calval_tables>"),
    ):
        if frame.empty:
            raise RunError(f"no {what} observations in the database: run 'manage.py {command}' first")
    for path in (era5_path, *forcing_grid):
        if not path.is_file():
            raise RunError(f"{path}: forcing file not found (SHARED_DATA_DIR={settings.SHARED_DATA_DIR})")
    record_inputs(
        run,
        [
            ingested_input("tower observations (CARDAMOM-FluxVal)", "cardamom"),
            file_input("ERA5 point forcing", era5_path),
            ingested_input("basin ET, precipitation and runoff", "basins"),
            ingested_input("ECOSTRESS cal/val towers: model ET and tower ET", "ecostress"),
            *(file_input(f"gridded forcing ({forcing_kind})", path) for path in forcing_grid),
        ],
    )
    return obs, stations, era5_path, basin_obs, ecostress_obs, ecostress_stations
