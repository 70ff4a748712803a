"""The ET product's CF files: the stored form of :mod:`products.generators.et_fusion`'s results (no Django).

* :func:`to_cf_dataset` -- monthly ET at the towers and ERA5 points (``timeSeries``);
* :func:`reconstruction_to_cf` -- stage 1, the basin ET products and their reconstructions
  (``timeSeries``);
* :func:`fusion_to_cf` -- stage 2, the fused ET and each product at the ECOSTRESS towers (``point``).

Each says which variables its file holds, with their standard names, long names and comments;
:func:`products.methods.cf.timeseries_dataset` builds the discrete sampling geometry and
:func:`products.methods.cf.write_netcdf` writes it.

References
----------
CF Conventions 1.8, section 9 (Discrete Sampling Geometries) and appendix H.
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import sklearn
import xarray as xr

from products.data_kind import DataKind
from products.generators.et_fusion import (
    FEATURES,
    REFERENCES,
    EtFusionResult,
    ReconstructionResult,
    TowerFusionResult,
    fusion_calibration,
    tower_calibration,
)
from products.methods.cf import CONVENTIONS, history_line, merge_attrs, time_encoding, timeseries_dataset
from products.methods.uncertainty import (
    Coverage,
    calibration_comment,
    link_ancillary,
    member_spread,
    standard_error_attributes,
)

SE_FILL = np.float32(np.nan)
BASIN_ENSEMBLE = "et_rec_mean"
BASIN_SE_REASON = (
    "no independent basin ET: the five products are the only basin ET there is (the water balance P - R - dS/dt "
    "shares the precipitation and runoff the reconstructions are learnt from), so the spread between their "
    "reconstructions cannot be checked against an observation"
)


def to_cf_dataset(
    result: EtFusionResult,
    era5_predictions: pd.DataFrame | None = None,
    *,
    attrs: dict | None = None,
    coverage: Coverage | None = None,
) -> xr.Dataset:
    """CF-1.8 discrete sampling geometry (timeSeries, orthogonal multidimensional array) of ET.

    Towers carry the observed ET and the leave-site-out prediction of the fold that held the
    tower out (``EtFusionResult.predictions``); ERA5 points carry the final model's prediction.
    Beside ``et`` is its standard error ``et_standard_error`` (named in ``et``'s
    ``ancillary_variables``): at the towers from the quantile pair of the same fold, at the ERA5
    points from the final quantile pair; its ``comment`` gives the coverage measured at the
    held-out towers (:func:`~products.generators.et_fusion.tower_calibration`).

    ET is stored as ``water_evapotranspiration_flux`` in ``kg m-2 d-1``: CF allows any units
    convertible to the canonical kg m-2 s-1, and 1 kg m-2 d-1 of water is 1 mm d-1, so the
    values are the mm d-1 of the tower data unchanged ("mm d-1" itself is a length rate and
    not convertible to that standard name).

    Parameters
    ----------
    result : EtFusionResult
        From :func:`~products.generators.et_fusion.run`.
    era5_predictions : pandas.DataFrame, optional
        ``station``, ``time``, ``lat``, ``lon``, ``et_pred`` (mm d-1), e.g. the output of
        :func:`~products.generators.et_fusion.era5_monthly_drivers` with
        :func:`~products.generators.et_fusion.predict` added as ``et_pred``, and optionally
        ``et_standard_error`` (mm d-1, :func:`~products.generators.et_fusion.predict_standard_error`
        with the final quantile pair; NaN there without it).
    attrs : dict, optional
        Global attributes added last (override the defaults); None values are dropped.
    coverage : products.methods.uncertainty.Coverage, optional
        The standard error's calibration written in its comment; default
        :func:`~products.generators.et_fusion.tower_calibration` of ``result`` (90 % interval, split
        ``validation``).

    Returns
    -------
    xarray.Dataset
        Dims (station, time) [and nv = 2]: ``station_name`` (cf_role timeseries_id), ``lat``
        (degrees_north), ``lon`` (degrees_east), ``time`` (month start, encoded as days since
        1970-01-01, bounds ``time_bnds``), ``et`` and ``et_obs`` (float64, kg m-2 d-1, NaN fill),
        ``et_standard_error`` (float32, kg m-2 d-1, NaN fill),
        ``is_validation`` (int8 flag, -1 fill), ``site_type`` (int8 flag: flux_tower,
        era5_point), ``cv_fold`` (int16, -1 for ERA5 points).

    Raises
    ------
    ValueError
        A station name is both a tower and an ERA5 point, or a (station, month) repeats.

    References
    ----------
    CF Conventions 1.8, section 9 (Discrete Sampling Geometries) and appendix H.2.1.
    """
    towers = result.predictions
    coverage = coverage if coverage is not None else tower_calibration(result)
    frames = [towers.assign(site_type=0)]
    if era5_predictions is not None:
        if set(era5_predictions["station"]) & set(towers["station"]):
            raise ValueError("era5_predictions: station names collide with tower codes")
        columns = ["station", "time", "lat", "lon", "et_pred"]
        columns += ["et_standard_error"] if "et_standard_error" in era5_predictions.columns else []
        frames.append(era5_predictions[columns].assign(site_type=1, fold=-1))
    rows = pd.concat(frames, ignore_index=True)
    if rows.duplicated(["station", "time"]).any():
        raise ValueError("predictions: a (station, month) appears twice")
    sites = rows.groupby("station", sort=False)[["lat", "lon", "site_type", "fold"]].first().reset_index()
    rows = rows.assign(
        et=rows["et_pred"],
        et_obs=rows["et_obs"] if "et_obs" in rows else np.nan,
        et_standard_error=rows["et_standard_error"] if "et_standard_error" in rows else np.nan,
        is_validation=rows["is_validation"].map({False: 0, True: 1}).fillna(-1).astype("int8"),
    )
    et_attrs = {
        "standard_name": "water_evapotranspiration_flux",
        "units": "kg m-2 d-1",
        "cell_methods": "time: mean",
        "comment": "monthly mean; 1 kg m-2 d-1 = 1 mm d-1 of liquid water",
    }
    variables: dict[str, dict] = {
        "et": {
            **et_attrs,
            "coverage_content_type": "modelResult",
            "long_name": "evapotranspiration predicted by LightGBM (towers: leave-site-out cross-validation model; "
            "ERA5 points: final model)",
            "comment": "monthly mean; 1 kg m-2 d-1 = 1 mm d-1 of liquid water. At the ERA5 points (site_type = "
            "era5_point) the values are predictions never validated at those points: there is no observation "
            "there, and ERA5 drivers differ from the tower drivers the model learnt from.",
            "validated_at_era5_points": "no",
        },
        "et_standard_error": {
            **standard_error_attributes(
                {**et_attrs, "long_name": "evapotranspiration predicted by LightGBM"},
                method="quantile_regression",
                extra=f"Quantiles {result.quantiles[0]:g} and {result.quantiles[1]:g} from LightGBM quantile models with the "
                "point model's parameters; at the towers the pair of the fold that left the tower out, at the ERA5 "
                "points the pair fitted on all training towers (not validated there). "
                + calibration_comment(coverage)
                + (
                    " (the interval covers less than it states: the standard error is too small)"
                    if coverage.too_narrow and coverage.n
                    else ""
                ),
            ),
            "cell_methods": "time: mean",
            "_FillValue": SE_FILL,
        },
        "et_obs": {
            **et_attrs,
            "long_name": "evapotranspiration observed at the flux tower (FLUXNET2015 via CARDAMOM-FluxVal v1.0)",
            "ancillary_variables": "is_validation",
            "coverage_content_type": "physicalMeasurement",
        },
        "is_validation": {
            "long_name": "role of the observed value",
            "flag_values": np.array([0, 1], dtype="int8"),
            "flag_meanings": "training held_out_validation",
            "coverage_content_type": "auxiliaryInformation",
            "_FillValue": np.int8(-1),
        },
    }
    pooled = result.metrics["validation"]["pooled"]
    base = {
        "uncertainty_coverage_nominal": coverage.nominal,
        "uncertainty_coverage_measured": coverage.measured,
        "uncertainty_coverage_n": coverage.n,
        "uncertainty_coverage_split": coverage.split,
        "data_kind": DataKind.REAL,
        "title": "Monthly evapotranspiration at FLUXNET2015 towers and ERA5 points (LightGBM ET fusion)",
        "institution": "data portal ET fusion pipeline",
        "source": f"LightGBM {lightgbm.__version__} regression of monthly ET on tower drivers "
        f"({', '.join(FEATURES)}); leave-site-out GroupKFold ({result.n_splits} folds, scikit-learn "
        f"{sklearn.__version__}); training data CARDAMOM-FluxVal v1.0, application ERA5 daily points",
        "history": history_line("products.generators.et_fusion"),
        "references": REFERENCES,
        "comment": "Validation scores use the CARDAMOM-FluxVal held-out months only, each predicted by a model "
        "that did not see the tower. The ERA5-point series (site_type = era5_point) are predictions of the final "
        "model that have never been validated at those points (no observations there). ERA5 VPD = e_s(tas) - "
        "e_a(tdps) (FAO-56 eq. 11), a daily-mean approximation of the tower VPD.",
        "era5_points_validated": "no",
        "validation_n": pooled["n"],
        "validation_kge": pooled["kge"],
        "validation_rmse_mm_per_day": pooled["rmse"],
        "validation_bias_mm_per_day": pooled["bias"],
        "validation_r": pooled["r"],
    }
    ds = timeseries_dataset(
        rows,
        variables,
        stations=sites.astype({"site_type": "int8"}).assign(cv_fold=sites["fold"].astype("int16")),
        id_attrs={"long_name": "FLUXNET2015 site code or ERA5 point name"},
        station_variables={
            "site_type": {
                "long_name": "kind of site",
                "flag_values": np.array([0, 1], dtype="int8"),
                "flag_meanings": "flux_tower era5_point",
                "coverage_content_type": "auxiliaryInformation",
                "_FillValue": None,
            }
        },
        auxiliary={
            "cv_fold": {  # a label of each tower
                "long_name": "cross-validation fold in which the tower was left out (GroupKFold by station)",
                "units": "1",
                "comment": "-1 at ERA5 points (not cross-validated)",
                "coverage_content_type": "auxiliaryInformation",
            }
        },
        time_attrs={"long_name": "start of the month"},
        time_step="MS",
        attrs=merge_attrs(base, merge_attrs(attrs)),
    )
    return link_ancillary(ds, "et", "et_standard_error")


def reconstruction_to_cf(reconstruction: ReconstructionResult, *, attrs: dict | None = None) -> xr.Dataset:
    """CF-1.8 ``timeSeries`` of the stage-1 reconstruction: basins x months, each product and its reconstruction.

    Parameters
    ----------
    reconstruction : ReconstructionResult
        From :func:`~products.generators.et_fusion.reconstruct_products`; values are monthly basin-mean
        ET in mm month-1.
    attrs : dict, optional
        Global attributes added last; None values dropped.

    Returns
    -------
    xarray.Dataset
        Dims (station, time): per product ``p``, ``p`` (the product, NaN where it has no value)
        and ``p_rec`` (the reconstruction), float64, ``water_evapotranspiration_amount`` in
        kg m-2 per month (``cell_methods: time: sum``); ``et_rec_mean`` (float64, the mean of the
        reconstructions) and ``et_rec_mean_standard_error`` (float32, NaN fill: the spread of the
        reconstructions, :func:`products.methods.uncertainty.member_spread`, ddof=1, not divided by
        the square root of their number since their errors are not independent; not calibrated,
        :data:`BASIN_SE_REASON`; named in ``et_rec_mean``'s ``ancillary_variables``);
        ``station_name`` (GRDC basin, cf_role timeseries_id), ``time`` (month start, bounds
        ``time_bnds``). Basins have no coordinates in the source, so there are no lat/lon variables.

    References
    ----------
    CF Conventions 1.8, section 9 (featureType timeSeries).
    """
    variables: dict[str, dict[str, Any]] = {
        name: {
            "standard_name": "water_evapotranspiration_amount",
            "units": "kg m-2",
            "cell_methods": "time: sum (interval: 1 month)",
            "coverage_content_type": "modelResult",
            "comment": "1 kg m-2 = 1 mm of liquid water",
            "long_name": (
                f"{name.removesuffix('_rec')} reconstructed by LightGBM from precipitation and runoff"
                if name.endswith("_rec")
                else f"{name} basin mean (lehmannfa/water_storage_changes)"
            ),
        }
        for name in reconstruction.series.columns
        if name not in ("station", "time")
    }
    series = reconstruction.series
    members = [name for name in series.columns if name.endswith("_rec")]
    values = series[members].to_numpy(dtype="float64").T  # (n_members, n_rows)
    complete = np.isfinite(values).all(axis=0)  # the ensemble only where every member has a value
    series = series.assign(
        **{
            BASIN_ENSEMBLE: np.where(complete, values.mean(axis=0), np.nan),
            f"{BASIN_ENSEMBLE}_standard_error": np.where(complete, member_spread(values, axis=0), np.nan),
        }
    )
    amount = {
        "standard_name": "water_evapotranspiration_amount",
        "units": "kg m-2",
        "cell_methods": "time: sum (interval: 1 month)",
        "long_name": f"mean of the {len(members)} reconstructed ET products",
    }
    variables[BASIN_ENSEMBLE] = {
        **amount,
        "coverage_content_type": "modelResult",
        "comment": f"1 kg m-2 = 1 mm of liquid water; mean of {', '.join(members)} where all of them have a value",
    }
    variables[f"{BASIN_ENSEMBLE}_standard_error"] = {
        **standard_error_attributes(
            amount,
            method="member_spread",
            extra=f"Members: {', '.join(members)}; the spread itself, not divided by the square root of their "
            "number (their errors share forcing and are not independent). "
            + calibration_comment(None, BASIN_SE_REASON),
        ),
        "cell_methods": amount["cell_methods"],
        "_FillValue": SE_FILL,
    }
    base = {
        "data_kind": DataKind.REAL,
        "title": "Stage-1 reconstruction of five ET products over GRDC major river basins",
        "comment": "Basin means of each product and their reconstruction from basin precipitation and runoff; "
        "skill is scored on basins left out of training. GRDC basins carry no coordinates in the "
        "source tables, so the file has no latitude/longitude.",
        "source": f"LightGBM {lightgbm.__version__}, one model per product; skill by leaving basins out",
        "references": REFERENCES,
        "history": history_line("products.generators.et_fusion"),
    }
    ds = timeseries_dataset(
        series,
        variables,
        id_attrs={"long_name": "GRDC major river basin"},
        time_attrs={"long_name": "start of the month"},
        time_step="MS",
        attrs=merge_attrs(base, merge_attrs(attrs)),
    )
    return link_ancillary(ds, BASIN_ENSEMBLE, f"{BASIN_ENSEMBLE}_standard_error")


def fusion_to_cf(
    fusion: TowerFusionResult,
    stations: pd.DataFrame,
    *,
    reference: str = "et",
    attrs: dict | None = None,
    upper_bound: TowerFusionResult | None = None,
    coverage: Coverage | None = None,
) -> xr.Dataset:
    """CF-1.8 ``point`` dataset of the stage-2 fusion at the towers (one row per overpass).

    Parameters
    ----------
    fusion : TowerFusionResult
        From :func:`~products.generators.et_fusion.fuse_at_towers` with inputs available off-tower
        (the headline fused ET); samples are instantaneous ET at ECOSTRESS overpasses (mm h-1).
    upper_bound : TowerFusionResult, optional
        The same fusion with the tower's own meteorology among the inputs
        (:data:`~products.generators.et_fusion.TOWER_FORCING`), stored as ``et_fused_tower_met``, an
        upper bound; on the same samples as ``fusion``.
    stations : pandas.DataFrame
        ``code``, ``lat``, ``lon`` (degrees) of the towers.
    reference : tower ET column.
    attrs : dict, optional
        Global attributes added last; None values dropped.
    coverage : products.methods.uncertainty.Coverage, optional
        The calibration written in the standard error's comment; default
        :func:`~products.generators.et_fusion.fusion_calibration` of ``fusion``.

    Returns
    -------
    xarray.Dataset
        Dim ``obs`` (in time order): ``time``, ``lat``, ``lon``, ``station_name`` (coordinates), ``et_obs``,
        ``et_fused``, ``et_fused_tower_met`` (with ``upper_bound``) and one ``et_<model>`` per product
        (float64, kg m-2 h-1 = mm h-1, NaN fill), ``cv_fold`` (int16, outer fold that held the tower out),
        and, when ``fusion`` has its quantile pair, ``et_fused_standard_error`` (float32, kg m-2 h-1, NaN
        fill; named in ``et_fused``'s ``ancillary_variables``).

    Raises
    ------
    ValueError
        A tower of the predictions has no coordinates in ``stations``, or ``upper_bound`` is not on
        the same samples.

    References
    ----------
    CF Conventions 1.8, section 9 (featureType point).
    """
    rows = fusion.predictions
    if upper_bound is not None:
        bound = upper_bound.predictions[["station", "time", "et_fused"]].rename(
            columns={"et_fused": "et_fused_tower_met"}
        )
        rows = rows.merge(bound, on=["station", "time"], how="left", validate="one_to_one")
        if len(bound) != len(rows) or rows["et_fused_tower_met"].isna().any():
            raise ValueError("upper_bound: not on the samples of fusion")
    rows = rows.sort_values(["time", "station"], kind="stable")  # obs in time order (ACDD extents)
    where = stations.set_index("code")[["lat", "lon"]]
    unknown = sorted(set(rows["station"]) - set(where.index))
    if unknown:
        raise ValueError(f"stations: no coordinates for towers {unknown[:5]}")
    et_attrs = {
        "standard_name": "water_evapotranspiration_flux",
        "units": "kg m-2 h-1",
        "comment": "instantaneous rate at the ECOSTRESS overpass; 1 kg m-2 h-1 = 1 mm h-1 of liquid water",
        "coordinates": "time lat lon station_name cv_fold",
        "coverage_content_type": "modelResult",
    }
    data = {
        "et_obs": (reference, "evapotranspiration observed at the tower (LE converted to ET)"),
        "et_fused": (
            "et_fused",
            "fused evapotranspiration from inputs available off-tower (FLAML AutoML, model that never saw the "
            f"tower; inputs {', '.join(fusion.features)})",
        ),
    }
    if upper_bound is not None:
        data["et_fused_tower_met"] = (
            "et_fused_tower_met",
            "UPPER BOUND, not a product: fused evapotranspiration with the radiation, air temperature and "
            f"humidity measured at the scored tower among the inputs ({', '.join(upper_bound.features)})",
        )
    data.update(
        {
            p: (p, f"{p.removeprefix('et_').upper()} model evapotranspiration (ECOSTRESS cal/val tables)")
            for p in fusion.table.index
            if p != "et_fused"
        }
    )
    ds = xr.Dataset(
        {
            name: ("obs", rows[column].to_numpy(dtype="float64"), {**et_attrs, "long_name": long_name})
            for name, (column, long_name) in data.items()
        },
        coords={
            "time": (
                "obs",
                rows["time"].to_numpy().astype("datetime64[ns]"),
                {"standard_name": "time", "long_name": "time of the ECOSTRESS overpass (UTC)", "axis": "T"},
            ),
            "lat": (
                "obs",
                where.loc[rows["station"], "lat"].to_numpy(dtype="float64"),
                {"standard_name": "latitude", "long_name": "tower latitude", "units": "degrees_north"},
            ),
            "lon": (
                "obs",
                where.loc[rows["station"], "lon"].to_numpy(dtype="float64"),
                {"standard_name": "longitude", "long_name": "tower longitude", "units": "degrees_east"},
            ),
            "station_name": ("obs", rows["station"].to_numpy(dtype=str).astype(object), {"long_name": "tower code"}),
            "cv_fold": (
                "obs",
                rows["fold"].to_numpy(dtype="int16"),
                {
                    "long_name": "outer leave-tower-out fold in which the tower was held out",
                    "units": "1",
                    "coverage_content_type": "auxiliaryInformation",
                },
            ),
        },
    )
    ds["et_obs"].attrs["coverage_content_type"] = "physicalMeasurement"
    for name in data:
        ds[name].encoding["_FillValue"] = np.nan
    if "et_fused_standard_error" in rows.columns:
        coverage = coverage if coverage is not None else fusion_calibration(fusion, reference=reference)
        ds["et_fused_standard_error"] = (
            "obs",
            rows["et_fused_standard_error"].to_numpy(dtype="float32"),
            {
                **standard_error_attributes(
                    {**et_attrs, "long_name": "fused evapotranspiration"},
                    method="quantile_regression",
                    extra=f"Quantiles {fusion.quantiles[0]:g} and {fusion.quantiles[1]:g} from LightGBM quantile "
                    "models with the parameters FLAML chose for the outer fold's fused model, fitted on that "
                    "fold's training towers. "
                    + calibration_comment(coverage)
                    + (
                        " (the interval covers less than it states: the standard error is too small)"
                        if coverage.too_narrow and coverage.n
                        else ""
                    ),
                ),
                "coordinates": et_attrs["coordinates"],
            },
        )
        ds["et_fused_standard_error"].encoding["_FillValue"] = SE_FILL
        link_ancillary(ds, "et_fused", "et_fused_standard_error")
    ds["time"].encoding.update(time_encoding("seconds since 1970-01-01"))
    fused = fusion.table.loc["et_fused"]
    ds.attrs = {
        "Conventions": CONVENTIONS,
        "featureType": "point",
        "data_kind": DataKind.REAL,
        "title": "Stage-2 ET fusion at ECOSTRESS cal/val towers, validated by leaving towers out",
        "source": "FLAML AutoML (LightGBM) from the ECOSTRESS model ET estimates and inputs available off-tower "
        f"({', '.join(fusion.features)}) to tower ET",
        "comment": "et_fused uses only inputs a grid cell without a tower has (the products and their satellite "
        "inputs); it is the headline fused ET. "
        + (
            "et_fused_tower_met also takes the radiation, air temperature and humidity measured at the tower it "
            "is scored at: an upper bound of the method, not something that can run where there is no tower."
            if upper_bound is not None
            else ""
        ),
        "references": REFERENCES,
        "fused_inputs": ", ".join(fusion.features),
        "validation_n": int(fused["n"]),
        "validation_kge": float(fused["kge"]),
        "best_estimator_per_fold": ", ".join(map(str, fusion.best_estimators)),
        "history": history_line("products.generators.et_fusion"),
    }
    if upper_bound is not None:
        ds.attrs["upper_bound_inputs"] = ", ".join(upper_bound.features)
        ds.attrs["upper_bound_validation_kge"] = float(upper_bound.table.loc["et_fused", "kge"])
    ds.attrs.update({k: v for k, v in (attrs or {}).items() if v is not None})
    return ds
