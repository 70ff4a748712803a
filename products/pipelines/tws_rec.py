"""The TWS reconstruction pipeline: gathers basin observations, calls :mod:`products.generators.tws_rec`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from django.conf import settings

from ingestion.readers.basins import read_basins_dbf, read_basins_xlsx
from products.data_kind import DataKind
from products.generators import tws_rec
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
)
from products.methods.aggregate import validation_rows
from products.methods.cf import write_netcdf
from products.methods.uncertainty import NOMINAL, TOLERANCE, summary_entry
from products.models import GenerationRun

BASIN_NETWORK, ITSG_NETWORK = "GRDC-MRB", "GRDC-ITSG"
BASIN_FOLDER = "lehmannfa_basin_water_budget"
METRICS = ("n", "kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse", "not_meaningful")
# Every parameter of a run and its default; any other key is a LightGBM parameter (tws_rec.DEFAULT_PARAMS).
DEFAULTS = {
    "basins": None,  # all GRDC-MRB basins with observations
    "seed": 42,
    "solutions": list(tws_rec.SOLUTIONS),
    "itsg_area_tolerance": 0.2,
    "min_area_fraction": 0.9,
}
# The seed's six land regions include Greenland and Antarctica; the GRDC basin attributes name six
# other regions (CONTINENT of basins.dbf). No GRDC basin lies on Greenland or Antarctica.
NOT_FORMED = ("Greenland", "Antarctica")
BUDGET = "p_minus_et_minus_r"  # the obs of the water-balance rows: ERA5-Land P - ET - R per basin
BASINS_FILE, REGIONS_FILE = "tws_rec_basins.nc", "tws_rec_regions.nc"


def _rows(frame: pd.DataFrame, *, variable: str, units: str, split: str, continent: dict) -> list[ValidationRow]:
    """Pooled, per-basin (``site``, network GRDC-MRB) and per-region (``class``) rows of ``sim`` against ``obs``.

    Every series scored here (storage anomalies, their detrended-deseasonalised form, dS/dt) is zero-mean by
    construction: KGE and beta are stored as reasons, not numbers (``not_meaningful``)."""
    frame = frame.assign(continent=frame["station"].map(continent).fillna("").astype(str))
    return [
        ValidationRow(
            variable,
            units,
            split,
            scope,
            label,
            {k: metrics[k] for k in METRICS},
            network=BASIN_NETWORK if scope == "site" else None,
        )
        for scope, label, metrics in validation_rows(frame, "sim", "obs", "station", "continent", anomaly=True)
    ]


def tws_rec_pipeline(run: GenerationRun, workdir: Path) -> ProductOutput:
    """Terrestrial water storage anomalies over GRDC basins: GRACE JPL/CSR, their LightGBM reconstruction
    back to 1981, region means and the basin water balance (all real data).

    Parameters (``run.parameters``): ``basins`` (GRDC-MRB basin codes; default all), ``seed``,
    ``solutions`` (default ``["tws_jpl", "tws_csr"]``), ``itsg_area_tolerance`` (0.2: ITSG basins
    pair with GRDC-MRB basins of the same name whose area differs by at most 20 %),
    ``min_area_fraction`` (0.9, region means); any other key is a LightGBM parameter.

    Outputs: ``tws_rec_basins.nc`` (CF-1.8 timeSeries, station x month), ``tws_rec_regions.nc``
    (CF-1.8 timeSeries, region x month), ``tws_water_balance.csv``. Beside every reconstruction of
    both NetCDF files, ``<reconstruction>_standard_error``: the spread (ddof=1) between the
    reconstructions of the same variant trained on each mascon solution (for the regions, between
    their area-weighted region means), named in the reconstruction's ``ancillary_variables``; its
    coverage at the held-out year blocks (``year_block_held_out``: out-of-fold predictions of each
    solution's model against that solution's GRACE anomalies) is measured and written in its comment
    and in ``summary["uncertainty"]`` (one entry per standard error and file). With a single
    solution there is no spread: no standard error is written and the summary says so.

    ValidationResult rows with the splits ``year_block_held_out`` (blocks of 3 calendar years
    predicted by a model that saw neither them nor the 2 years on either side; the target's baseline
    mean, climatology and trend fitted on the training years of each fold), ``year_held_out`` (the same with one year and no buffer,
    kept to show how much a one-year split inflates the score), ``independent_itsg`` (the blocked
    held-out predictions, and the mascon solutions themselves, against ITSG-Grace2018, which no
    model saw), ``water_balance`` (variable ``dsdt_<solution>_vs_p_minus_et_minus_r``: dS/dt of
    GRACE storage as ``sim`` against P - ET - R as ``obs``, independent storage against the budget)
    and ``consistency_diagnostic`` (``dsdt_<solution>_rec_vs_p_minus_et_minus_r``: the
    reconstruction is built from P - ET - R, so its agreement with the budget is a consistency
    check of the model, not validation), each pooled, per basin (``site``, network GRDC-MRB) and
    per region (``class``).

    Basin areas and regions are not stored on the Station rows (the reader returns them as extra
    columns that the loader does not keep), so they are read here from ``basins.dbf`` and
    ``basins.xlsx`` with :func:`ingestion.readers.basins.read_basins_dbf` / ``read_basins_xlsx``
    (both recorded in the lineage).

    Raises
    ------
    RunError
        Basin observations or the basin attribute files are missing.
    """
    params = {**DEFAULTS, **run.parameters}
    basins = params.pop("basins")
    seed = int(params.pop("seed"))
    solutions = tuple(params.pop("solutions"))
    tolerance = float(params.pop("itsg_area_tolerance"))
    min_area_fraction = float(params.pop("min_area_fraction"))
    used = {
        "basins": basins,
        "seed": seed,
        "solutions": list(solutions),
        "itsg_area_tolerance": tolerance,
        "min_area_fraction": min_area_fraction,
        "lightgbm": tws_rec.model_parameters(params or None, seed),
        "block_years": tws_rec.BLOCK_YEARS,
        "buffer_years": tws_rec.BUFFER_YEARS,
        "uncertainty": {
            "method": tws_rec.UNCERTAINTY_METHOD,
            "members": list(solutions),
            "ddof": 1,
            "nominal_coverage": NOMINAL,
            "tolerance": TOLERANCE,
            "calibration_split": tws_rec.HEADLINE_SPLIT,
        },
    }
    stages = Stages(run)

    with stages("load_inputs"):
        variables = [*solutions, *tws_rec.PREDICTORS.values()]
        obs = observations_frame(network=BASIN_NETWORK, variables=variables, stations=basins)
        missing = [v for v in variables if not (obs["variable"] == v).any()]
        if missing:
            raise RunError(
                f"no {BASIN_NETWORK} observations of {', '.join(missing)} in the database: run "
                f"'manage.py ingest basins <{BASIN_FOLDER}>' first"
            )
        itsg = observations_frame(network=ITSG_NETWORK, variables=[tws_rec.REFERENCE])
        folder = Path(settings.SHARED_DATA_DIR) / BASIN_FOLDER
        dbf, xlsx = folder / "basins.dbf", folder / "basins.xlsx"
        for path in (dbf, xlsx):
            if not path.is_file():
                raise RunError(f"{path}: basin attributes not found (SHARED_DATA_DIR={settings.SHARED_DATA_DIR})")
        attributes, itsg_attributes = read_basins_dbf(dbf), read_basins_xlsx(xlsx)
        record_inputs(
            run,
            [
                ingested_input("basin TWS (GRACE JPL, CSR, ITSG), precipitation, ET and runoff", "basins"),
                file_input("GRDC major river basin attributes (region, area)", dbf),
                file_input("GRDC basin attributes of the ITSG table (area)", xlsx),
            ],
        )

    with stages("train_validate_reconstruct"):
        result = tws_rec.reconstruct(obs, solutions=solutions, params=params or None, seed=seed)

    with stages("validate"):
        continent = attributes["continent"].to_dict()
        validation: list[ValidationRow] = []
        for (solution, variant, split), _ in result.cv.iterrows():
            name = solution if variant == "anomaly" else f"{solution}_dd"
            validation += _rows(
                tws_rec.validation_frame(result, solution, variant, split),
                variable=f"{name}_rec",
                units="mm",
                split=split,
                continent=continent,
            )
        stations = sorted(result.series.index.get_level_values("station").unique())
        matches = tws_rec.match_basins(
            attributes["area_km2"].reindex(stations).dropna(), itsg_attributes["area_km2"], tolerance=tolerance
        )
        itsg_summary: dict = {"matched_basins": int(len(matches))}
        if len(matches) and not itsg.empty:
            reference = tws_rec.to_arrays(itsg, [tws_rec.REFERENCE])[tws_rec.REFERENCE]
            for name, frame in tws_rec.compare_to_reference(result, reference, matches).items():
                rows = _rows(frame, variable=name, units="mm", split="independent_itsg", continent=continent)
                validation += rows
                pooled = next(r.metrics for r in rows if r.scope == "pooled")
                itsg_summary[name] = {k: pooled[k] for k in ("n", "r", "nse", "rmse")}
        wide = result.series.unstack("station")
        net = wide["net"]
        balance = []
        # GRACE storage is independent of P - ET - R: its closure is validation (of the budget and the storage).
        # The reconstruction is built from P - ET - R and its filtered sums: its closure is a consistency
        # diagnostic of the model, never validation.
        checks = [(s, "water_balance", "validation: independent storage (GRACE) against the budget") for s in solutions]
        checks.append(
            (
                f"{solutions[0]}_rec",
                "consistency_diagnostic",
                "consistency diagnostic: the reconstruction is built from P - ET - R (not validation)",
            )
        )
        for series, split, use in checks:
            table = tws_rec.water_balance(wide[series], net)
            balance.append(
                table.assign(series=series, use=use, continent=table.index.map(continent).fillna("")).reset_index()
            )
            change = tws_rec.storage_change(wide[series])
            frame = tws_rec.stack({"sim": change, "obs": net.reindex_like(change)}).dropna().reset_index()
            validation += _rows(
                frame, variable=f"dsdt_{series}_vs_{BUDGET}", units="mm month-1", split=split, continent=continent
            )
        balance = pd.concat(balance, ignore_index=True).assign(data_kind=str(DataKind.REAL))[
            [
                "series",
                "use",
                "station",
                "continent",
                "n",
                "r",
                "std_ratio",
                "slope",
                "mean_imbalance",
                "rmse",
                "data_kind",  # a CSV has no global attributes: a column says it
            ]
        ]
        balance.to_csv(workdir / "tws_water_balance.csv", index=False, float_format="%.6g")

        # Uncertainty: the spread between the solutions' models, calibrated on the held-out year blocks only.
        reconstructions = (
            [(s, v, f"{tws_rec.series_name(s, v)}_rec") for s in solutions for v in tws_rec.VARIANTS]
            if len(solutions) > 1
            else []
        )
        basin_coverage = {name: tws_rec.held_out_coverage(result, s, v) for s, v, name in reconstructions}
        region_coverage = {
            name: tws_rec.held_out_region_coverage(result, attributes, s, v, min_area_fraction=min_area_fraction)
            for s, v, name in reconstructions
        }

    with stages("write"):
        attrs = file_attributes(run)
        write_netcdf(
            tws_rec.to_cf_basins(result, attributes, data_kind=DataKind.REAL, attrs=attrs, calibration=basin_coverage),
            workdir / BASINS_FILE,
        )
        means, regions = {}, None
        for column in [c for c in wide.columns.get_level_values(0).unique() if not c.endswith("_cv") and c != "net"]:
            means[column], regions = tws_rec.region_means(wide[column], attributes, min_area_fraction=min_area_fraction)
        region_attrs = {
            **attrs,
            "regions_not_formed": ", ".join(NOT_FORMED) + ": no GRDC basin there (the seed's "
            "six regions include both); basins without a basins.dbf row (the Amazon sub-basins) are left out",
        }
        write_netcdf(
            tws_rec.to_cf_regions(
                means, regions, data_kind=DataKind.REAL, attrs=region_attrs, calibration=region_coverage
            ),
            workdir / REGIONS_FILE,
        )

    cv = {
        split: {
            f"{s}_{v}": metric_values({k: row[k] for k in ("n", "kge", "r", "nse", "rmse", "not_meaningful")})
            | {"folds": int(row["folds"])}
            for (s, v, p), row in result.cv.iterrows()
            if p == split
        }
        for split in tws_rec.SPLITS
    }
    first = result.cv.iloc[0]

    def closure(use: str) -> dict:
        return {
            s: {
                "basins": int(g["r"].notna().sum()),
                "median_r": json_safe(g["r"].median()),
                "median_std_ratio": json_safe(g["std_ratio"].median()),
                "median_mean_imbalance_mm_month-1": json_safe(g["mean_imbalance"].median()),
            }
            for s, g in balance[balance["use"] == use].groupby("series", sort=False)
        }

    summary = {
        "basins": len(stations),
        "data_kind": DataKind.REAL,
        "training_span": [f"{first['train_start']:%Y-%m}", f"{first['train_end']:%Y-%m}"],
        "reconstructed_span": [f"{first['reconstructed_start']:%Y-%m}", f"{first['reconstructed_end']:%Y-%m}"],
        "predictors": result.predictors,
        "held_out_year_blocks": cv["year_block_held_out"],
        "held_out_years": cv["year_held_out"],
        "splits": {
            "year_block_held_out": f"blocks of {tws_rec.BLOCK_YEARS} consecutive years held out, "
            f"{tws_rec.BUFFER_YEARS} years on either side left out of training (the features remember up to "
            "24 months); the headline",
            "year_held_out": "one calendar year held out, no buffer: inflated by the features' memory, shown "
            "beside the blocks to measure that",
        },
        "itsg": itsg_summary,
        "water_balance": closure(checks[0][2]),
        "consistency_diagnostic": closure(checks[-1][2]),
        "regions": {str(k): int(v) for k, v in regions["basins"].items()} if regions is not None else {},
        "regions_not_formed": list(NOT_FORMED),
        "uncertainty": [
            summary_entry(
                file=file,
                variable=tws_rec.standard_error_name(name),
                estimate=name,
                kind="standard_error",
                method=tws_rec.UNCERTAINTY_METHOD,
                calibration=coverage[name],
            )
            for file, coverage in ((BASINS_FILE, basin_coverage), (REGIONS_FILE, region_coverage))
            for _, _, name in reconstructions
        ],
    }
    if not reconstructions:
        summary["uncertainty_note"] = (
            f"one mascon solution ({', '.join(solutions)}): no spread between solutions, no standard error written"
        )
    files = {
        BASINS_FILE: "CF-1.8 timeSeries (DSG): monthly TWS anomalies (mm) per GRDC major river basin: GRACE "
        "JPL/CSR mascons (gaps kept), LightGBM reconstructions 1981 onwards (anomaly and "
        "detrended-deseasonalised) with their standard errors (the spread between the reconstructions trained on "
        "each mascon solution; coverage at held-out year blocks in each comment) and held-out-year predictions",
        REGIONS_FILE: "CF-1.8 timeSeries (DSG): area-weighted means of the same series over the basins of each "
        "GRDC region and over all basins, with the spread between the solutions' region means as standard error",
        "tws_water_balance.csv": "Water balance per basin: dS/dt (central difference) against P - ET - R (ERA5-Land): "
        "n, r, std ratio, slope, mean imbalance and RMSE (mm month-1); column use says which rows are validation "
        "(GRACE storage) and which a consistency diagnostic (the reconstruction, built from P - ET - R)",
    }
    return ProductOutput(
        files=files,
        validation=validation,
        summary=summary,
        parameters=used,
        statistics_fitted_on={
            "tws baseline, climatology, trend": "training years of each fold (outside the held-out block and its "
            "buffer); for the reconstruction, the whole GRACE record",
            "LightGBM models": "training years of each fold; the reconstruction's on every GRACE month",
            "predictor anomalies, filters and basin means": "P, ET and R over the baseline (inputs known for "
            "every month, no storage value)",
            "standard errors (mascon spread)": "nothing fitted: the spread between the final models' reconstructions; "
            "its coverage from the out-of-fold predictions of the held-out year blocks only",
        },
        notes="Real data: GRACE JPL/CSR mascon basin means and ERA5-Land P, ET, R over GRDC major river basins "
        "(lehmannfa/water_storage_changes). Skill from blocks of 3 years held out with a 2-year buffer "
        "(baseline, climatology and trend fitted on the training years of each fold; one-year hold-outs "
        "shown beside them) and against ITSG-Grace2018, which no model saw. The water balance validates "
        "GRACE storage against P - ET - R; the reconstruction's is a consistency diagnostic only (it is built "
        "from P - ET - R). KGE and its bias ratio mean nothing for zero-mean anomalies and are not computed: "
        "read r, NSE and RMSE. The standard error of each reconstruction is the spread between the reconstructions "
        "trained on JPL and CSR: it shows how much the solutions disagree, not the model's error, and its interval's "
        "coverage at the held-out year blocks is measured (see summary['uncertainty']).",
    )
