"""The ET fusion pipeline: gathers tower observations and forcing, calls :mod:`products.generators.et_fusion`."""

from __future__ import annotations

from pathlib import Path

import xarray as xr
from django.conf import settings

from products.data_kind import DataKind
from products.generators import et_fusion, et_fusion_cf
from products.generators.et_grid import predict_et_grid
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
from products.models import GenerationRun

CARDAMOM_NETWORK = "FLUXNET2015"
ERA5_POINTS = "xclim_era5_cities/daily_surface_cancities_1990-1993.nc"
BASIN_NETWORK = "GRDC-MRB"
ECOSTRESS_NETWORK = "AmeriFlux"
RECONSTRUCTION_METRICS = ("n", "kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse")
FILES = {
    "et_fusion_timeseries.nc": "CF-1.8 timeSeries (DSG): monthly ET observed and predicted at FLUXNET2015 towers "
    "(CARDAMOM-FluxVal) and predicted at five ERA5 points, 1990-1993",
    "et_basin_reconstruction.nc": "CF-1.8 timeSeries (DSG): stage 1, the five basin ET products and their "
    "LightGBM reconstructions over the predictors' span, GRDC major river basins",
    "et_basin_triple_collocation.csv": "Triple collocation of GLEAM, ERA5-Land and MOD16 monthly ET anomalies "
    "per basin: error std (mm month-1), TCR, SNR (dB), beta, flags",
    "et_fused_ecostress_towers.nc": "CF-1.8 point: stage 2, fused ET and the five ECOSTRESS model ET estimates "
    "against tower ET at ECOSTRESS cal/val towers (leave-tower-out)",
}


def et_fusion_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """The ET product in four stored parts, each validated on data its models never saw.

    1. Tower model: monthly ET at the CARDAMOM-FluxVal towers from five drivers (LightGBM,
       leave-site-out), applied at the ERA5 points (``et_fusion_timeseries.nc``; split
       ``validation``).
    2. Stage 1, reconstruction: each of the five basin ET products learned from precipitation and
       runoff and extended over the predictors' span (``et_basin_reconstruction.nc``; split
       ``reconstruction_held_out``, leave-basin-out).
    3. Triple collocation of GLEAM, ERA5-Land and MOD16 anomalies per basin, a diagnostic
       (``et_basin_triple_collocation.csv``; medians in the summary).
    4. Stage 2, fusion: FLAML AutoML from the five ECOSTRESS model ET estimates and tower forcing
       to tower ET, validated by leaving towers out, beside each single product on the same
       samples (``et_fused_ecostress_towers.nc``; split ``fusion_held_out``).

    Parameters (``run.parameters``): ``sites`` (CARDAMOM towers), ``n_splits``, ``seed``;
    ``basins`` (GRDC basin codes) and ``basin_splits``; ``fusion_sites`` (ECOSTRESS towers),
    ``fusion_splits``, ``fusion_max_iter``; ``forcing_grid`` (sub-daily GLDAS-2.1-style forcing
    files, absolute or relative to ``SHARED_DATA_DIR``) adds a daily ET grid predicted chunk by
    chunk with the tower model (``et_grid_daily.nc``, :mod:`products.generators.et_grid`), labelled
    with ``forcing_data_kind`` (default ``real``); any other key is a LightGBM parameter of the
    tower model. The shared sample data hold no gridded forcing (the GLDAS sample files carry soil
    moisture and soil temperature only), so a default run writes no grid.

    Raises
    ------
    RunError
        An input is missing (names the ``manage.py ingest`` command that provides it).
    """
    params = dict(run.parameters)
    sites = params.pop("sites", None)
    seed = int(params.pop("seed", 42))
    cv = {"n_splits": int(params.pop("n_splits", 10)), "seed": seed}
    basins = params.pop("basins", None)
    basin_splits = int(params.pop("basin_splits", 5))
    fusion_sites = params.pop("fusion_sites", None)
    forcing_grid = [Path(settings.SHARED_DATA_DIR) / f for f in params.pop("forcing_grid", [])]
    forcing_kind = str(params.pop("forcing_data_kind", DataKind.REAL))
    fusion = {
        "n_splits": int(params.pop("fusion_splits", 5)),
        "max_iter": int(params.pop("fusion_max_iter", 20)),
        "seed": seed,
    }
    stages = Stages(run)
    with stages("load_inputs"):
        obs, stations, era5_path, basin_obs, ecostress_obs, ecostress_stations = _inputs(
            run,
            sites=sites,
            basins=basins,
            fusion_sites=fusion_sites,
            forcing_grid=forcing_grid,
            forcing_kind=forcing_kind,
        )
        table = et_fusion.build_training_table(obs, stations)

    with stages("tower_model"):
        result = et_fusion.run(table, **cv, params=params or None)

    with stages("tower_predict_and_write"):
        with xr.open_dataset(era5_path) as era5:
            drivers = et_fusion.era5_monthly_drivers(era5)
        drivers["et_pred"] = et_fusion.predict(result.final_model, drivers)
        attrs = file_attributes(run)
        files = dict(FILES)
        cf.write_netcdf(et_fusion_cf.to_cf_dataset(result, drivers, attrs=attrs), workdir / "et_fusion_timeseries.nc")

    if forcing_grid:
        with stages("grid_predict_and_write"):
            predict_et_grid(
                result.final_model,
                forcing_grid,
                workdir / "et_grid_daily.nc",
                attrs={**attrs, "data_kind": forcing_kind},
            )
            files["et_grid_daily.nc"] = (
                f"CF-1.8 grid: daily ET predicted chunk by chunk from {forcing_kind} "
                f"gridded forcing ({len(forcing_grid)} files) with the tower model"
            )

    with stages("stage1_reconstruction"):
        reconstruction = et_fusion.reconstruct_products(basin_obs, n_splits=basin_splits, seed=seed)
        cf.write_netcdf(
            et_fusion_cf.reconstruction_to_cf(reconstruction, attrs=attrs), workdir / "et_basin_reconstruction.nc"
        )

    with stages("triple_collocation"):
        tc = et_fusion.basin_triple_collocation(basin_obs)
        tc.to_csv(workdir / "et_basin_triple_collocation.csv", index=False, float_format="%.6g")

    with stages("stage2_fusion"):
        fused = et_fusion.fuse_at_towers(ecostress_obs, **fusion)
        cf.write_netcdf(
            et_fusion_cf.fusion_to_cf(fused, ecostress_stations, attrs=attrs), workdir / "et_fused_ecostress_towers.nc"
        )

    validation = [
        ValidationRow("et", "mm d-1", split, scope, label, metrics, network=CARDAMOM_NETWORK)
        for split, scope, label, metrics in et_fusion.metric_rows(result)
    ]
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
        ValidationRow(variable, "mm h-1", "fusion_held_out", scope, label, metrics, network=ECOSTRESS_NETWORK)
        for variable, scope, label, metrics in et_fusion.fusion_metric_rows(fused, land_cover)
    ]
    pooled = next(v.metrics for v in validation if v.split == "validation" and v.scope == "pooled")
    single = fused.table.drop(index="et_fused")
    usable = tc[~tc["too_few_samples"]]
    summary = {
        "towers": int(table["station"].nunique()),
        "validation_rows": int(pooled["n"]),
        "kge": pooled["kge"],
        "rmse": pooled["rmse"],
        "r": pooled["r"],
        "bias": pooled["bias"],
        "era5_points": int(drivers["station"].nunique()),
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
            "products": list(et_fusion.TC_PRODUCTS),
            "basins": int(len(tc)),
            "basins_used": int(len(usable)),
            **{
                f"median_tcr_{p}": json_safe(usable.loc[~usable[f"flag_{p}"], f"tcr_{p}"].median())
                for p in et_fusion.TC_PRODUCTS
            },
            **{
                f"median_err_std_{p}": json_safe(usable.loc[~usable[f"flag_{p}"], f"err_std_{p}"].median())
                for p in et_fusion.TC_PRODUCTS
            },
        },
        "fusion": {
            "towers": int(fused.predictions["station"].nunique()),
            "samples": int(fused.table.loc["et_fused", "n"]),
            "kge": json_safe(fused.table.loc["et_fused", "kge"]),
            "rmse": json_safe(fused.table.loc["et_fused", "rmse"]),
            "best_single_product": str(single["kge"].idxmax()),
            "best_single_kge": json_safe(single["kge"].max()),
            "beats_every_product": bool(
                (fused.table.loc["et_fused", "kge"] > single["kge"]).all()
                and (fused.table.loc["et_fused", "rmse"] < single["rmse"]).all()
            ),
        },
    }
    return ProductOutput(
        files=files,
        validation=validation,
        summary=summary,
        notes="Monthly ET (mm d-1) at flux towers and ERA5 points; stage-1 reconstruction of five ET products over "
        "GRDC basins; triple collocation diagnostic; stage-2 AutoML fusion at ECOSTRESS towers. Every score "
        "comes from towers or basins the scoring model never saw.",
    )


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
    tower_names = ["et", *et_fusion.ECOSTRESS_PRODUCTS, *et_fusion.TOWER_FORCING]
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
