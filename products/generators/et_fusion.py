"""ET fusion, first product: monthly evapotranspiration from tower drivers with LightGBM (no Django).

Pipeline: :func:`build_training_table` (long tower observations -> wide table) ->
:func:`run` (leave-site-out cross-validation + final model) -> :func:`era5_monthly_drivers` and
:func:`predict` (apply the final model at ERA5 points) ->
:func:`products.generators.et_fusion_cf.to_cf_dataset` and :func:`products.methods.cf.write_netcdf`
(CF-1.8 timeSeries file). The stage-1 reconstruction and the stage-2 fusion below are stored by
:mod:`products.generators.et_fusion_cf` as well: this module holds the science, that one the files.

All ET values are mm d-1 of liquid water, numerically equal to kg m-2 d-1.

References
----------
Xu, Li, Wei, Lu, Wei, Lee, Dai (2025): A multimodal machine learning fused global 0.1 degree daily
evapotranspiration dataset from 1950-2022. Agric. For. Meteorol. 372, 110645.
Ke, G., et al. (2017): LightGBM: a highly efficient gradient boosting decision tree. NeurIPS 30.
Pastorello, G., et al. (2020): The FLUXNET2015 dataset. Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3.
Yang, Y., Bloom, A. A., et al.: CARDAMOM-FluxVal Version 1.0, in prep. for Geosci. Model Dev. Discuss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm
import numpy as np
import pandas as pd
import xarray as xr
from flaml import AutoML

from ingestion.readers.base import ReaderError
from products.methods.aggregate import per_group, validation_rows
from products.methods.anomalies import monthly_anomalies
from products.methods.cv import leave_station_out
from products.methods.metrics import summary
from products.methods.triple_collocation import tc_metrics
from products.methods.uncertainty import NOMINAL, Coverage, interval_coverage, quantile_standard_error

DRIVERS = ("tmin", "tmax", "ssrd", "vpd", "precip")
# Signed latitude: with month_sin/month_cos it lets the trees tell the seasons of the two hemispheres apart.
FEATURES = (*DRIVERS, "month_sin", "month_cos", "lat")
TARGET = "et"
TOWER_VARIABLES = (*DRIVERS, TARGET)
UNITS = {"tmin": "degC", "tmax": "degC", "ssrd": "MJ m-2 d-1", "vpd": "hPa", "precip": "mm d-1", "et": "mm d-1"}
DEFAULT_PARAMS = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "n_jobs": 2,
    "verbose": -1,
    "deterministic": True,
    "force_col_wise": True,
}
# The quantile pair beside each point model: the 16th and 84th percentiles of the predictive distribution
# (a central 68.27 % interval, +-1 sigma of a normal), turned into a standard error by
# products.methods.uncertainty.quantile_standard_error.
QUANTILES = (0.16, 0.84)
REFERENCES = (
    "CARDAMOM-FluxVal v1.0 (Yang et al., in prep., Geosci. Model Dev. Discuss.); "
    "FLUXNET2015: Pastorello et al. (2020), Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3; "
    "ERA5: Hersbach et al. (2023), ERA5 hourly data on single levels, Copernicus Climate Change Service, "
    "doi:10.24381/cds.adbb2d47; "
    "LightGBM: Ke et al. (2017), NeurIPS 30; "
    "method after Xu et al. (2025), Agric. For. Meteorol. 372, 110645"
)


@dataclass
class EtFusionResult:
    """Output of :func:`run`.

    Attributes
    ----------
    predictions : pandas.DataFrame
        One row per row of the training table: ``station``, ``time``, ``lat``, ``lon``
        (``land_cover`` when the table has it), ``et_obs`` and ``et_pred`` (float64, mm d-1),
        ``is_validation`` (bool), ``fold`` (int, the cross-validation fold that left the
        station out; ``et_pred`` comes from that fold's model), ``et_q16``, ``et_q84`` (float64,
        mm d-1, that fold's quantile pair) and ``et_standard_error`` (float64, mm d-1,
        ``(et_q84 - et_q16) / 2``, :func:`products.methods.uncertainty.quantile_standard_error`).
    final_model : lightgbm.LGBMRegressor
        Fitted on all training (non-validation) rows of all stations; for new places.
    metrics : dict
        :func:`products.methods.metrics.summary` dicts: ``metrics["validation"]["pooled"]``,
        ``["validation"]["site"][code]``, ``["validation"]["class"][land_cover]`` for the
        held-out validation rows, and ``metrics["cv"]["pooled"]`` for the cross-validated
        training rows.
    params : dict
        LightGBM parameters used (defaults merged with the caller's).
    fold_train_stations : list of frozenset
        Stations whose training rows fitted fold k's model (index k).
    n_splits, seed : int
        Cross-validation settings.
    fold_models : list of lightgbm.LGBMRegressor
        Fold k's fitted model (index k), kept so that what each fold fitted can be checked (the
        leakage tests compare them after changing the held-out targets).
    fold_quantile_models : list of tuple
        Fold k's quantile pair (lower, upper): ``LGBMRegressor`` with ``objective="quantile"`` and
        ``alpha`` = :data:`QUANTILES`, fitted on the same rows with the same parameters as
        ``fold_models[k]``. They give ``et_q16``, ``et_q84`` and ``et_standard_error`` of the
        predictions (out-of-fold, like ``et_pred``).
    final_quantile_models : tuple
        The quantile pair fitted on the rows of ``final_model`` (all training rows of all stations):
        the standard error of every prediction at new places (ERA5 points, the grid).
    quantiles : tuple of float
        The pair's ``alpha`` values.
    """

    predictions: pd.DataFrame
    final_model: lightgbm.LGBMRegressor
    metrics: dict
    params: dict
    fold_train_stations: list[frozenset] = field(default_factory=list)
    n_splits: int = 10
    seed: int = 42
    fold_models: list = field(default_factory=list)
    fold_quantile_models: list = field(default_factory=list)
    final_quantile_models: tuple = ()
    quantiles: tuple = QUANTILES


def add_calendar_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``month_sin`` and ``month_cos`` = sin/cos(2 pi (month - 0.5) / 12) from ``frame["time"]``.

    Parameters
    ----------
    frame : pandas.DataFrame
        With a ``time`` column (datetime64[ns]).

    Returns
    -------
    pandas.DataFrame
        ``frame`` with the two float64 columns added (modified in place and returned).
    """
    angle = 2 * np.pi * (frame["time"].dt.month.to_numpy() - 0.5) / 12
    frame["month_sin"], frame["month_cos"] = np.sin(angle), np.cos(angle)
    return frame


def build_training_table(observations: pd.DataFrame, stations: pd.DataFrame) -> pd.DataFrame:
    """Wide table of monthly drivers and ET per station and month.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table as :class:`ingestion.readers.base.PointData.observations` (``station``,
        ``variable``, ``time``, ``value``, ``units``, ``is_validation``) with the variables of
        :data:`TOWER_VARIABLES` in the units of :data:`UNITS`; other variables are ignored.
    stations : pandas.DataFrame
        ``code``, ``lat``, ``lon`` (degrees) and optionally ``land_cover``.

    Returns
    -------
    pandas.DataFrame
        One row per ET value: ``station``, ``time``, ``lat``, ``lon``, (``land_cover``),
        the drivers (NaN where a driver is missing; LightGBM handles missing values),
        ``month_sin``, ``month_cos``, ``et`` (mm d-1), ``is_validation``. Drivers come from the
        non-validation rows of the same station and month, also for validation rows: only the
        targets are held out, the cbf files hold drivers for every month.

    Raises
    ------
    ValueError
        A driver or ET is absent, a variable is in other units, a (station, month, variable)
        appears twice, a month is both a training and a validation target (leakage), or a
        station is missing from ``stations``.
    """
    obs = observations[observations["variable"].isin(TOWER_VARIABLES)].astype({"is_validation": bool})
    for variable in TOWER_VARIABLES:
        units = set(obs.loc[obs["variable"] == variable, "units"].unique())
        if not units:
            raise ValueError(f"observations: no rows of variable {variable!r} (needed: {', '.join(TOWER_VARIABLES)})")
        if units != {UNITS[variable]}:
            raise ValueError(
                f"observations: variable {variable!r} must be in {UNITS[variable]!r}, found {sorted(units)}"
            )
    keys = ["station", "time"]
    driver_rows = obs[~obs["is_validation"] & obs["variable"].isin(DRIVERS)]
    if driver_rows.duplicated([*keys, "variable"]).any():
        row = driver_rows[driver_rows.duplicated([*keys, "variable"])].iloc[0]
        raise ValueError(f"observations: {row['variable']} at {row['station']} {row['time']:%Y-%m} appears twice")
    drivers = driver_rows.pivot(index=keys, columns="variable", values="value").reindex(columns=list(DRIVERS))
    drivers = drivers.reset_index()
    targets = obs.loc[obs["variable"] == TARGET, [*keys, "value", "is_validation"]].rename(columns={"value": TARGET})
    if targets.duplicated(keys).any():
        row = targets[targets.duplicated(keys)].iloc[0]
        raise ValueError(
            f"observations: et at {row['station']} {row['time']:%Y-%m} appears twice (a validation "
            "month must not also be a training target)"
        )
    site_columns = [c for c in ("code", "lat", "lon", "land_cover") if c in stations.columns]
    sites = stations[site_columns].rename(columns={"code": "station"})
    missing = set(targets["station"]) - set(sites["station"])
    if missing:
        raise ValueError(f"stations: no row for {sorted(missing)[:5]}")
    table = targets.merge(drivers, on=keys, how="left").merge(sites, on="station", how="left")
    table["time"] = table["time"].astype("datetime64[ns]")
    add_calendar_features(table)
    columns = [
        "station",
        "time",
        "lat",
        "lon",
        *site_columns[3:],
        *DRIVERS,
        "month_sin",
        "month_cos",
        TARGET,
        "is_validation",
    ]
    return table[columns].sort_values(keys).reset_index(drop=True).astype({"is_validation": bool})


def _metrics(predictions: pd.DataFrame) -> dict:
    val, cv = predictions[predictions["is_validation"]], predictions[~predictions["is_validation"]]
    out = {
        "validation": {
            "pooled": summary(val["et_pred"], val["et_obs"]),
            "site": {s: summary(g["et_pred"], g["et_obs"]) for s, g in val.groupby("station")},
        },
        "cv": {"pooled": summary(cv["et_pred"], cv["et_obs"])},
    }
    if "land_cover" in val.columns:
        out["validation"]["class"] = {c: summary(g["et_pred"], g["et_obs"]) for c, g in val.groupby("land_cover")}
    return out


def check_quantiles(quantiles) -> tuple[float, float]:
    """``(lower, upper)`` as floats when they are a central pair ``0 < lower < 0.5 < upper < 1`` with
    ``lower + upper = 1``; ValueError naming them otherwise."""
    lo, hi = (float(q) for q in quantiles)
    if not (0.0 < lo < 0.5 < hi < 1.0 and abs(lo + hi - 1.0) < 1e-9):
        raise ValueError(f"quantiles must be a central pair (q, 1 - q) with 0 < q < 0.5, found {list(quantiles)}")
    return lo, hi


def run(
    table: pd.DataFrame,
    *,
    n_splits: int = 10,
    seed: int = 42,
    params: dict | None = None,
    quantiles: tuple[float, float] = QUANTILES,
) -> EtFusionResult:
    """Leave-site-out cross-validation of a LightGBM ET model, and a final model on all towers.

    ``sklearn.model_selection.GroupKFold`` with the station as group puts every station in the
    test part of exactly one of the ``n_splits`` folds. Fold k's model is fitted on the
    training (non-validation) rows of the stations outside fold k and predicts all rows
    (training and held-out validation) of the stations in fold k, so each prediction comes from
    a model that never saw that station. The final model is fitted on the training rows of
    all stations; validation rows are never used for fitting.

    Beside each point model, a quantile pair (:func:`fit_quantile_pair`: the same parameters with the
    pinball loss at the 16th and 84th percentiles) is fitted on the same rows, so the standard error
    ``et_standard_error = (q84 - q16) / 2`` of each prediction is out-of-fold like the prediction
    itself, and its calibration at the held-out towers (:func:`tower_calibration`) is honest. That
    is three fits per fold instead of one.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`build_training_table` (``station``, :data:`FEATURES`, ``et`` in mm d-1,
        ``is_validation``).
    n_splits : int
        Number of folds (at most the number of stations).
    seed : int
        ``random_state`` of LightGBM (row and column subsampling).
    params : dict, optional
        ``lightgbm.LGBMRegressor`` parameters overriding :data:`DEFAULT_PARAMS`.
    quantiles : (float, float)
        ``alpha`` of the quantile pair, a central pair (default :data:`QUANTILES`, 0.16 and 0.84).

    Returns
    -------
    EtFusionResult
        Predictions (mm d-1) with fold numbers and standard errors, final model and quantile pair,
        metrics, parameters.

    Raises
    ------
    ValueError
        Fewer stations than ``n_splits``, a missing feature column, or ``quantiles`` not a central pair.

    References
    ----------
    scikit-learn ``GroupKFold``; LightGBM ``LGBMRegressor`` (Ke et al. 2017).
    """
    missing = [c for c in ("station", *FEATURES, TARGET, "is_validation") if c not in table.columns]
    if missing:
        raise ValueError(f"table: missing columns {missing}")
    n_stations = table["station"].nunique()
    if n_splits < 2 or n_stations < n_splits:
        raise ValueError(f"n_splits must be in 2..{n_stations} (number of stations), found {n_splits}")
    quantiles = check_quantiles(quantiles)
    params = {**DEFAULT_PARAMS, "random_state": seed, **(params or {})}
    x, y = table[list(FEATURES)], table[TARGET].to_numpy(dtype="float64")
    stations, is_train = table["station"].to_numpy(), ~table["is_validation"].to_numpy(dtype=bool)
    predicted, fold = np.full(len(table), np.nan), np.full(len(table), -1)
    bounds = np.full((2, len(table)), np.nan)
    fold_train_stations, fold_models, fold_quantile_models = [], [], []
    for k, (train_idx, test_idx) in enumerate(leave_station_out(stations, n_splits)):
        train_idx = train_idx[is_train[train_idx]]  # training rows of the other stations only
        model = lightgbm.LGBMRegressor(**params).fit(x.iloc[train_idx], y[train_idx])
        pair = fit_quantile_pair(params, x.iloc[train_idx], y[train_idx], quantiles)
        predicted[test_idx], fold[test_idx] = model.predict(x.iloc[test_idx]), k
        bounds[:, test_idx] = [q.predict(x.iloc[test_idx]) for q in pair]
        fold_train_stations.append(frozenset(stations[train_idx]))
        fold_models.append(model)
        fold_quantile_models.append(pair)
    final_model = lightgbm.LGBMRegressor(**params).fit(x[is_train], y[is_train])
    final_pair = fit_quantile_pair(params, x[is_train], y[is_train], quantiles)
    keep = ["station", "time", "lat", "lon", *(["land_cover"] if "land_cover" in table.columns else [])]
    predictions = table[keep].assign(
        et_obs=y,
        et_pred=predicted,
        is_validation=~is_train,
        fold=fold,
        et_q16=bounds[0],
        et_q84=bounds[1],
        et_standard_error=quantile_standard_error(bounds[0], bounds[1], nominal=quantiles[1] - quantiles[0]),
    )
    return EtFusionResult(
        predictions,
        final_model,
        _metrics(predictions),
        params,
        fold_train_stations,
        n_splits,
        seed,
        fold_models,
        fold_quantile_models,
        final_pair,
        quantiles,
    )


def quantile_params(params: dict, alpha: float) -> dict:
    """The point model's LightGBM parameters with the quantile (pinball) loss at ``alpha``.

    Parameters
    ----------
    params : dict
        ``lightgbm.LGBMRegressor`` parameters of the point model (any ``objective``/``alpha`` in them
        is replaced).
    alpha : float in (0, 1)
        The quantile.

    Returns
    -------
    dict
        ``params`` with ``objective="quantile"`` and ``alpha``.
    """
    return {**params, "objective": "quantile", "alpha": float(alpha)}


def fit_quantile_pair(params: dict, x, y, quantiles: tuple[float, float] = QUANTILES) -> tuple:
    """Fit the lower and upper quantile models on the rows a point model is fitted on.

    Parameters
    ----------
    params : dict
        The point model's ``lightgbm.LGBMRegressor`` parameters (same trees, learning rate, seed).
    x : pandas.DataFrame or numpy.ndarray, shape (n, n_features)
        Training features (NaN allowed: LightGBM's missing-value handling).
    y : array_like, float, shape (n,)
        Training target.
    quantiles : (float, float)
        ``alpha`` of the lower and upper model (default :data:`QUANTILES`, the 16th and 84th percentiles).

    Returns
    -------
    tuple of lightgbm.LGBMRegressor
        (lower, upper), fitted.

    References
    ----------
    Koenker, R. & Bassett, G. (1978) Regression quantiles. Econometrica 46, 33-50 (pinball loss);
    LightGBM ``objective="quantile"`` (Ke et al. 2017).
    """
    return tuple(lightgbm.LGBMRegressor(**quantile_params(params, a)).fit(x, y) for a in quantiles)


def predict_standard_error(pair, drivers: pd.DataFrame) -> np.ndarray:
    """Standard error (mm d-1) of the point model's ET from a fitted quantile pair.

    Parameters
    ----------
    pair : (lightgbm.LGBMRegressor, lightgbm.LGBMRegressor)
        E.g. ``EtFusionResult.final_quantile_models``.
    drivers : pandas.DataFrame
        With the columns of :data:`FEATURES` (see :func:`predict`).

    Returns
    -------
    numpy.ndarray
        float64, shape (len(drivers),), ``|q84 - q16| / 2`` in mm d-1, non-negative.

    Raises
    ------
    ValueError
        A feature column is missing.
    """
    lower, upper = (predict(model, drivers) for model in pair)
    return quantile_standard_error(lower, upper, nominal=_pair_nominal(pair))


def _pair_nominal(pair) -> float:
    """The central interval a fitted quantile pair spans (``alpha`` of the upper minus the lower)."""
    return float(pair[1].get_params()["alpha"]) - float(pair[0].get_params()["alpha"])


def tower_calibration(result: EtFusionResult, *, split: str = "validation", nominal: float = NOMINAL) -> Coverage:
    """Coverage of the 90 % interval ``et_pred +- 1.645 et_standard_error`` at held-out towers.

    Every row of ``result.predictions`` comes from a fold that never saw its tower; the rows scored
    are the held-out validation months (``is_validation``), the rows of the stored split
    ``validation``. With ``split="cv"`` the cross-validated training months are scored instead
    (also out-of-fold for their tower).

    Parameters
    ----------
    result : EtFusionResult
        From :func:`run`.
    split : {"validation", "cv"}
    nominal : float in (0, 1)
        The interval's stated coverage (default 0.90, z = 1.645).

    Returns
    -------
    products.methods.uncertainty.Coverage
        With ``split`` and a note saying no observation error is assumed.
    """
    pred = result.predictions
    rows = pred[pred["is_validation"] if split == "validation" else ~pred["is_validation"]]
    return interval_coverage(
        rows["et_pred"],
        rows["et_standard_error"],
        rows["et_obs"],
        nominal=nominal,
        split=split,
        note="leave-tower-out: each tower's months predicted by the fold models (point and quantile pair) that "
        "never saw the tower; tower ET taken as exact (no observation error added)",
    )


def metric_rows(result: EtFusionResult) -> list[tuple[str, str, str, dict]]:
    """``(split, scope, label, metrics)`` rows of ``result.metrics`` for ValidationResult records.

    Parameters
    ----------
    result : EtFusionResult
        From :func:`run`.

    Returns
    -------
    list of tuple
        split ``validation`` (held-out rows) or ``cv`` (cross-validated training rows); scope
        ``pooled`` (label "all sites"), ``site`` (label = station code) or ``class`` (label =
        IGBP land cover); metrics as :func:`products.methods.metrics.summary` (ET in mm d-1).
    """
    rows = []
    for split, scopes in result.metrics.items():
        rows.append((split, "pooled", "all sites", scopes["pooled"]))
        for scope in ("site", "class"):
            rows.extend((split, scope, label, m) for label, m in scopes.get(scope, {}).items())
    return rows


_TEMPERATURE = {"K": lambda x: x - 273.15, "degC": lambda x: x, "celsius": lambda x: x, "°C": lambda x: x}
_CONVERSIONS = {  # variable -> {units attribute: conversion to the tower units}
    "tasmin": _TEMPERATURE,
    "tasmax": _TEMPERATURE,
    "tas": _TEMPERATURE,
    "tdps": _TEMPERATURE,
    "rsds": {"W m-2": lambda x: x * 0.0864, "W/m2": lambda x: x * 0.0864, "W m**-2": lambda x: x * 0.0864},
    "pr": {
        "kg m-2 s-1": lambda x: x * 86400.0,
        "kg/m2/s": lambda x: x * 86400.0,
        "kg m**-2 s**-1": lambda x: x * 86400.0,
        "mm d-1": lambda x: x,
        "mm/day": lambda x: x,
    },
}


def saturation_vapour_pressure(t_degc):
    """Saturation vapour pressure over water, FAO-56 Tetens form e(T) = 0.6108 exp(17.27 T / (T + 237.3)).

    Parameters
    ----------
    t_degc : array_like or xarray.DataArray
        Temperature in degC.

    Returns
    -------
    same type as input
        Vapour pressure in kPa.

    References
    ----------
    Allen, R. G., Pereira, L. S., Raes, D., Smith, M. (1998): Crop evapotranspiration. FAO Irrigation
    and Drainage Paper 56, eq. 11.
    """
    return 0.6108 * np.exp(17.27 * t_degc / (t_degc + 237.3))


def era5_monthly_drivers(ds: xr.Dataset) -> pd.DataFrame:
    """Monthly model drivers at ERA5 points from daily CF variables.

    tmin/tmax: monthly mean of daily ``tasmin``/``tasmax`` (degC); ssrd = mean ``rsds`` (W m-2)
    x 0.0864 (MJ m-2 d-1); precip = mean ``pr`` (kg m-2 s-1) x 86400 (mm d-1); vpd = monthly mean
    of daily e_s(tas) - e_a(tdps) (hPa, clipped at 0) with :func:`saturation_vapour_pressure`.
    Monthly means are over the days present. The VPD is a documented approximation: the
    CARDAMOM-FluxVal drivers come from tower VPD and may follow another definition (e.g. a
    daily maximum VPD), so ERA5 VPD can be biased relative to the training VPD.

    Parameters
    ----------
    ds : xarray.Dataset
        Dims (station-like dimension, ``time``) with ``time`` datetime64 (daily), variables
        ``tas``, ``tasmax``, ``tasmin``, ``tdps`` (K or degC), ``rsds`` (W m-2), ``pr``
        (kg m-2 s-1), coordinates ``lat``, ``lon`` (degrees) along the station dimension, e.g.
        xclim-testdata ``ERA5/daily_surface_cancities_1990-1993.nc``.

    Returns
    -------
    pandas.DataFrame
        ``station`` (the station coordinate's names), ``time`` (first day of the month,
        datetime64[ns]), ``lat``, ``lon``, ``tmin``, ``tmax`` (degC), ``ssrd`` (MJ m-2 d-1),
        ``vpd`` (hPa), ``precip`` (mm d-1), ``month_sin``, ``month_cos``.

    Raises
    ------
    ReaderError
        A missing variable or coordinate, unexpected ``units`` (field ``<variable>.units``),
        or variables not on (station, time) with a datetime64 ``time``.

    References
    ----------
    Allen et al. (1998), FAO-56, eq. 11; ERA5 doi:10.24381/cds.adbb2d47.
    """
    source = ds.encoding.get("source", "ERA5 dataset")
    converted = {}
    for name, table in _CONVERSIONS.items():
        if name not in ds:
            raise ReaderError(source, f"missing variable {name!r}", field=name)
        units = ds[name].attrs.get("units")
        if units not in table:
            raise ReaderError(
                source, f"expected units one of {', '.join(table)}, found {units!r}", field=f"{name}.units"
            )
        converted[name] = table[units](ds[name].astype("float64"))
    dims = ds["tas"].dims
    if len(dims) != 2 or "time" not in dims or not np.issubdtype(ds["time"].dtype, np.datetime64):
        raise ReaderError(source, f"expected dims (station, time) with datetime64 time, found {dims}", field="tas")
    station_dim = next(d for d in dims if d != "time")
    for name, da in converted.items():
        if set(da.dims) != set(dims):
            raise ReaderError(source, f"expected dims {dims} like tas, found {da.dims}", field=name)
    for name in ("lat", "lon"):
        if name not in ds or ds[name].dims != (station_dim,):
            raise ReaderError(source, f"expected a {name} coordinate along {station_dim!r}", field=name)
    vpd = 10.0 * (saturation_vapour_pressure(converted["tas"]) - saturation_vapour_pressure(converted["tdps"]))
    daily = xr.Dataset(
        {
            "tmin": converted["tasmin"],
            "tmax": converted["tasmax"],
            "ssrd": converted["rsds"],
            "vpd": vpd.clip(min=0),
            "precip": converted["pr"],
        }
    )
    monthly = daily.resample(time="MS").mean().transpose(station_dim, "time")
    n_stations, n_months = monthly.sizes[station_dim], monthly.sizes["time"]
    names = ds[station_dim].values.astype(str) if station_dim in ds.coords else np.arange(n_stations).astype(str)
    frame = pd.DataFrame(
        {
            "station": np.repeat(names.astype(object), n_months),
            "time": np.tile(monthly["time"].values.astype("datetime64[ns]"), n_stations),
            "lat": np.repeat(ds["lat"].values.astype("float64"), n_months),
            "lon": np.repeat(ds["lon"].values.astype("float64"), n_months),
            **{name: monthly[name].values.ravel() for name in DRIVERS},
        }
    )
    add_calendar_features(frame)
    return frame


def predict(model: lightgbm.LGBMRegressor, drivers: pd.DataFrame) -> np.ndarray:
    """Monthly ET (mm d-1) from a fitted model.

    Parameters
    ----------
    model : lightgbm.LGBMRegressor
        E.g. ``EtFusionResult.final_model``.
    drivers : pandas.DataFrame
        With the columns of :data:`FEATURES` in the units of :data:`UNITS` (e.g. from
        :func:`era5_monthly_drivers`).

    Returns
    -------
    numpy.ndarray
        float64, shape (len(drivers),), mm d-1.

    Raises
    ------
    ValueError
        A feature column is missing.
    """
    missing = [c for c in FEATURES if c not in drivers.columns]
    if missing:
        raise ValueError(f"drivers: missing feature columns {missing}")
    return np.asarray(model.predict(drivers[list(FEATURES)]), dtype="float64")


# --- triple collocation across ET product families (diagnostic) ------------------------------
TC_PRODUCTS = ("et_gleam", "et_era5land", "et_mod16")  # satellite-model hybrid, reanalysis, satellite
# GLEAM (v3) takes ERA5 radiation and air temperature, the forcing of ERA5-Land: errors of the default triplet
# are correlated (shared error counts as signal). Said beside the numbers; the sensitivity triplet below has
# members with separate meteorology: ECMWF ERA5 (ERA5-Land), NCEP GDAS with GPCP precipitation and AGRMET
# radiation (GLDAS-2.1 Noah), NASA GMAO (MOD16, with MODIS vegetation).
TC_LIMITS = (
    "GLEAM is driven partly by ERA5 forcing (radiation, air temperature), as ERA5-Land is: the errors of the "
    "GLEAM / ERA5-Land / MOD16 triplet are correlated, so part of their shared error counts as signal (error "
    "variances too small, TCR too large for GLEAM and ERA5-Land). A diagnostic, not a validation."
)
TC_SENSITIVITY_PRODUCTS = ("et_era5land", "et_gldas", "et_mod16")


def basin_triple_collocation(
    observations: pd.DataFrame, *, products: tuple[str, str, str] = TC_PRODUCTS, min_samples: int = 100
) -> pd.DataFrame:
    """Triple collocation of three ET products of independent families at each basin.

    TC runs on monthly anomalies (each product minus its own calendar-month climatology over the
    common months), so the shared seasonal cycle does not count as agreement. Error standard
    deviations are in the units of the first product (its anomalies, mm month-1).

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table (PointData observations): ``station`` (basin), ``variable`` (the three names in
        ``products``), ``time`` (month start), ``value`` (mm month-1).
    products : three variable names; the first is the reference of the rescaling.
    min_samples : fewer common months than this flags the basin (metrics NaN).

    Returns
    -------
    pandas.DataFrame
        One row per basin: ``n`` and, per product p, ``err_std_<p>`` (mm month-1), ``tcr_<p>``,
        ``snr_db_<p>``, ``beta_<p>``, ``flag_<p>`` (bool: negative error variance or R² outside
        [0, 1]); ``too_few_samples`` (bool).

    References
    ----------
    McColl et al. (2014), doi:10.1002/2014GL061322; Gruber et al. (2016),
    doi:10.1016/j.jag.2015.09.002 (see :mod:`products.methods.triple_collocation`).
    """
    wide = observations[observations["variable"].isin(products)].pivot_table(
        index=["station", "time"], columns="variable", values="value"
    )
    missing = [p for p in products if p not in wide.columns]
    if missing:
        raise ValueError(f"observations: no values of {missing}")
    rows = []
    for basin, table in wide.groupby(level="station"):
        series = table.droplevel("station").dropna()
        anomalies = [monthly_anomalies(series[p]) for p in products]
        result = tc_metrics(*(a.to_numpy() for a in anomalies), min_samples=min_samples)
        row = {"station": basin, "n": result.n, "too_few_samples": result.too_few_samples}
        for i, p in enumerate(products):
            row.update(
                {
                    f"err_std_{p}": result.err_std[i],
                    f"tcr_{p}": result.tcr[i],
                    f"snr_db_{p}": result.snr_db[i],
                    f"beta_{p}": result.beta[i],
                    f"flag_{p}": bool(result.negative_error_variance[i] or result.r2_out_of_range[i]),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


# --- each input ET product against the same towers (side-by-side validation) ------------------
ECOSTRESS_PRODUCTS = ("et_stic", "et_bess", "et_mod16", "et_ptjplsm", "et_jet")


def products_against_towers(
    observations: pd.DataFrame, *, reference: str = "et", products: tuple[str, ...] = ECOSTRESS_PRODUCTS
) -> pd.DataFrame:
    """Metrics of each ET product against tower ET over the same samples.

    Only samples where the tower and every product have a value are used, so the products are
    compared on identical (tower, time) pairs.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table (PointData observations), e.g. the ECOSTRESS cal/val towers: ``station``,
        ``variable`` (``reference`` and ``products``), ``time``, ``value`` (same units for all,
        e.g. instantaneous mm h-1).
    reference : tower ET variable.
    products : product ET variables.

    Returns
    -------
    pandas.DataFrame
        One row per product (index = variable name) with :func:`products.methods.metrics.summary`
        pooled over the common samples (``n``, ``kge``, ``r``, ``alpha``, ``beta``, ``rmse``,
        ``bias``, ``ubrmse``, ``nse``), plus ``n_stations`` and ``median_kge`` (median of the
        per-tower KGE over towers with at least 2 common samples).

    Raises
    ------
    ValueError
        A variable is missing, or no sample has all of them.
    """
    names = [reference, *products]
    wide = observations[observations["variable"].isin(names)].pivot_table(
        index=["station", "time"], columns="variable", values="value"
    )
    missing = [n for n in names if n not in wide.columns]
    if missing:
        raise ValueError(f"observations: no values of {missing}")
    common = wide[names].dropna().reset_index()
    if common.empty:
        raise ValueError(f"observations: no (station, time) with all of {names}")
    rows = {}
    for p in products:
        per_tower = per_group(common, p, reference, "station")
        rows[p] = {
            **summary(common[p], common[reference]),
            "n_stations": int(len(per_tower)),
            "median_kge": float(per_tower["kge"].median()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# --- stage 2: AutoML fusion of the products at towers, validated by leaving towers out -------
# What a grid cell has without a tower: the satellite inputs of the ECOSTRESS products at the overpass
# pixel (LST, NDVI, albedo), and gridded forcing sampled at the tower (the ECOSTRESS
# L3 meteorology: GEOS-5 FP air temperature and humidity, and the ECOSTRESS net and global radiation; the
# cal/val tables hold them as Ta, RH, Rn, Rg, ingested by the ECOSTRESS reader since READER_VERSION 1.1).
SATELLITE_INPUTS = ("lst", "ndvi", "albedo")
GRIDDED_FORCING = ("ta_geos5", "rh_geos5", "netrad_ecostress", "sw_in_ecostress")
OFF_TOWER_INPUTS = (*SATELLITE_INPUTS, *GRIDDED_FORCING)
# Measured at the very tower the fusion is scored at: only for the labelled upper bound.
TOWER_MET = ("ta", "rh", "sw_in", "netrad")
TOWER_FORCING = (*TOWER_MET, *SATELLITE_INPUTS)


@dataclass
class TowerFusionResult:
    """Output of :func:`fuse_at_towers`.

    Attributes
    ----------
    predictions : pandas.DataFrame
        ``station``, ``time``, the reference, each product and ``et_fused`` (same units as the
        inputs), ``fold`` (outer fold that held the tower out).
    table : pandas.DataFrame
        :func:`products.methods.metrics.summary` of ``et_fused`` and of every single product
        against the reference on the same samples (index: ``et_fused`` then the products).
    best_estimators : list of str
        FLAML's chosen learner per outer fold.
    features : list of str
        The model's inputs (the products, then the forcing variables present in the data).
    best_configs : list of dict
        FLAML's chosen hyper-parameters per outer fold (tuned on that fold's training towers).
    fold_models : list of flaml.AutoML
        Outer fold k's fitted model (index k), kept so that what each fold fitted can be checked.
    fold_quantile_models : list of tuple
        Outer fold k's quantile pair (lower, upper): LightGBM with the parameters of fold k's fitted
        model (FLAML's choice) and ``objective="quantile"``, fitted on the same training towers; they
        give ``et_fused_q16``, ``et_fused_q84`` and ``et_fused_standard_error`` of the predictions.
        Empty when :func:`fuse_at_towers` was asked for no quantiles.
    quantiles : tuple of float
        The pair's ``alpha`` values (empty without a pair).
    """

    predictions: pd.DataFrame
    table: pd.DataFrame
    best_estimators: list
    features: list = field(default_factory=list)
    best_configs: list = field(default_factory=list)
    fold_models: list = field(default_factory=list)
    fold_quantile_models: list = field(default_factory=list)
    quantiles: tuple = ()


def fuse_at_towers(
    observations: pd.DataFrame,
    *,
    reference: str = "et",
    products: tuple[str, ...] = ECOSTRESS_PRODUCTS,
    forcing: tuple[str, ...] = OFF_TOWER_INPUTS,
    n_splits: int = 5,
    inner_splits: int = 3,
    max_iter: int = 20,
    seed: int = 42,
    quantiles: tuple[float, float] | None = QUANTILES,
) -> TowerFusionResult:
    """Fuse several ET products (and forcing) into tower ET with AutoML, validated on unseen towers.

    Outer loop: :func:`products.methods.cv.leave_station_out` (each tower held out once). In each
    outer fold, FLAML ``AutoML`` (LightGBM search space, ``split_type="group"`` by tower for its
    own tuning folds, a fixed number of trials ``max_iter`` rather than a time budget so runs
    repeat) is fitted on the other towers' samples, from the products and the forcing to the
    tower ET, and predicts the held-out towers. Only samples with the reference and every
    product present are used, so the fused estimate and each product are scored on the same
    samples; forcing may be missing (LightGBM handles NaN), and forcing variables absent from
    ``observations`` are left out (``TowerFusionResult.features`` lists what was used).

    The default ``forcing`` (:data:`OFF_TOWER_INPUTS`) holds only inputs a grid cell without a
    tower has, so the fused model can run anywhere and its comparison with the products is fair.
    With :data:`TOWER_FORCING` (radiation, air temperature and humidity measured at the tower the
    model is scored at) the result is an upper bound, not a product: no grid cell has those.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table (PointData observations), e.g. the ECOSTRESS cal/val towers (instantaneous
        ET in mm h-1; forcing in its own units).
    reference, products, forcing : variable names.
    n_splits : outer folds (at most the number of towers).
    inner_splits : FLAML's tuning folds (grouped by tower; fewer when an outer fold trains on fewer towers).
    max_iter : FLAML trials per outer fold.
    seed : random seed of FLAML and LightGBM.
    quantiles : (float, float) or None
        A central pair of quantiles (default :data:`QUANTILES`): in each outer fold a LightGBM
        quantile pair with the parameters of the fold's fitted model (FLAML's chosen configuration,
        ``objective="quantile"``) is fitted on the same training towers and predicts the held-out
        ones, giving the out-of-fold standard error ``et_fused_standard_error = (q84 - q16) / 2``
        (:func:`fusion_calibration`). None: no pair (the upper bound needs none).

    Returns
    -------
    TowerFusionResult

    Raises
    ------
    ValueError
        The reference or a product is missing, fewer than ``max(n_splits, 3)`` towers, or
        ``quantiles`` not a central pair.

    References
    ----------
    Wang, C., Wu, Q., Weimer, M., Zhu, E. (2021): FLAML: a fast and lightweight AutoML library.
    MLSys 3. Method after Xu et al. (2025), see METHODS.md.
    """
    names = [reference, *products]
    wide = observations[observations["variable"].isin([*names, *forcing])].pivot_table(
        index=["station", "time"], columns="variable", values="value"
    )
    missing = [n for n in names if n not in wide.columns]
    if missing:
        raise ValueError(f"observations: no values of {missing}")
    data = wide.dropna(subset=names).reset_index()
    features = [*products, *[f for f in forcing if f in data.columns]]
    stations = data["station"].to_numpy()
    if len(set(stations)) < max(n_splits, 3):
        raise ValueError(
            f"n_splits={n_splits} needs at least max(n_splits, 3) towers with the reference and every "
            f"product; found {len(set(stations))}"
        )
    levels: tuple[float, float] | tuple[()] = check_quantiles(quantiles) if quantiles is not None else ()
    fused, fold = np.full(len(data), np.nan), np.full(len(data), -1)
    bounds = np.full((2, len(data)), np.nan)
    chosen, configs, models, pairs = [], [], [], []
    for k, (train, test) in enumerate(leave_station_out(stations, n_splits)):
        automl = AutoML()
        automl.fit(
            data[features].iloc[train],
            data[reference].iloc[train],
            task="regression",
            metric="rmse",
            estimator_list=["lgbm"],
            split_type="group",
            groups=stations[train],
            n_splits=min(inner_splits, len(set(stations[train]))),
            max_iter=max_iter,
            time_budget=-1,
            seed=seed,
            verbose=0,
        )
        fused[test], fold[test] = automl.predict(data[features].iloc[test]), k
        chosen.append(automl.best_estimator)
        configs.append(dict(automl.best_config))
        models.append(automl)
        if levels:
            # the parameters of the fitted LGBMRegressor of FLAML's choice, seeded like the run
            params = {**automl.model.estimator.get_params(), "random_state": seed}
            pair = fit_quantile_pair(params, data[features].iloc[train], data[reference].iloc[train].to_numpy(), levels)
            bounds[:, test] = [q.predict(data[features].iloc[test]) for q in pair]
            pairs.append(pair)
    predictions = data[["station", "time", *names]].assign(et_fused=fused, fold=fold)
    if levels:
        predictions = predictions.assign(
            et_fused_q16=bounds[0],
            et_fused_q84=bounds[1],
            et_fused_standard_error=quantile_standard_error(bounds[0], bounds[1], nominal=levels[1] - levels[0]),
        )
    table = pd.DataFrame.from_dict(
        {name: summary(predictions[name], predictions[reference]) for name in ["et_fused", *products]}, orient="index"
    )
    return TowerFusionResult(predictions, table, chosen, features, configs, models, pairs, levels)


def fusion_calibration(
    fusion: TowerFusionResult, *, reference: str = "et", split: str = "fusion_held_out", nominal: float = NOMINAL
) -> Coverage:
    """Coverage of the interval ``et_fused +- z et_fused_standard_error`` at the held-out towers.

    Every sample of ``fusion.predictions`` was predicted by the outer fold (point model and quantile
    pair) that held its tower out, so all of them are scored: the samples of the stored split
    ``fusion_held_out``.

    Parameters
    ----------
    fusion : TowerFusionResult
        From :func:`fuse_at_towers` with quantiles.
    reference : tower ET column.
    split : the stored split's name.
    nominal : float in (0, 1)
        The interval's stated coverage (default 0.90).

    Returns
    -------
    products.methods.uncertainty.Coverage

    Raises
    ------
    KeyError
        ``fusion`` has no standard error (fitted without quantiles).
    """
    pred = fusion.predictions
    return interval_coverage(
        pred["et_fused"],
        pred["et_fused_standard_error"],
        pred[reference],
        nominal=nominal,
        split=split,
        note="leave-tower-out: each overpass predicted by the outer fold's fused model and quantile pair, which "
        "never saw the tower; tower ET (from LE) taken as exact (no observation error added)",
    )


# --- stage 1: reconstruct each ET product over the span of the predictors ---------------------
BASIN_PREDICTORS = ("p_era5land", "p_gpcc", "p_mswep", "r_era5land")
BASIN_ET_PRODUCTS = ("et_era5land", "et_fluxcom", "et_gldas", "et_gleam", "et_mod16")


@dataclass
class ReconstructionResult:
    """Output of :func:`reconstruct_products`.

    Attributes
    ----------
    series : pandas.DataFrame
        ``station``, ``time`` and, per product p, ``p`` (the product where it exists) and
        ``p_rec`` (the reconstruction on every month with predictors), mm month-1.
    cv : pandas.DataFrame
        Per product: :func:`products.methods.metrics.summary` of the leave-basin-out predictions
        against the product, the number of basins, the span the product was learned on (its own
        months that have predictors) and the reconstructed span.
    """

    series: pd.DataFrame
    cv: pd.DataFrame


def basin_features(wide: pd.DataFrame, predictors: tuple[str, ...] = BASIN_PREDICTORS) -> pd.DataFrame:
    """Predictor table: the monthly predictors, 1- and 2-month lags of the first, season, basin mean.

    Parameters
    ----------
    wide : pandas.DataFrame
        Index (station, time) sorted, columns including ``predictors`` (mm month-1).

    Returns
    -------
    pandas.DataFrame
        Same index; the predictors, ``<p0>_lag1``, ``<p0>_lag2`` (previous months of the first
        predictor: soil-water memory), ``month_sin``, ``month_cos``, ``<p0>_basin_mean`` (the
        basin's mean of the first predictor over all months: its climate).
    """
    first = predictors[0]
    out = wide[list(predictors)].copy()
    by_basin = out.groupby(level="station")[first]
    out[f"{first}_lag1"], out[f"{first}_lag2"] = by_basin.shift(1), by_basin.shift(2)
    out[f"{first}_basin_mean"] = by_basin.transform("mean")
    angle = 2 * np.pi * (out.index.get_level_values("time").month.to_numpy() - 0.5) / 12
    out["month_sin"], out["month_cos"] = np.sin(angle), np.cos(angle)
    return out


def reconstruct_products(
    observations: pd.DataFrame,
    *,
    products: tuple[str, ...] = BASIN_ET_PRODUCTS,
    predictors: tuple[str, ...] = BASIN_PREDICTORS,
    n_splits: int = 5,
    seed: int = 42,
    params: dict | None = None,
) -> ReconstructionResult:
    """Stage 1 of the ET fusion: one LightGBM model per product, from forcing to that product.

    Each product is learned where it exists and predicted on every month that has the first
    predictor, so all products share one site set and one time span (that of the predictors).
    Skill is measured by leaving whole basins out (:func:`products.methods.cv.leave_station_out`);
    the reconstruction itself comes from a model fitted on all basins.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table of basin means (PointData observations; ``variable`` among ``products`` and
        ``predictors``, ``value`` in mm month-1, ``time`` month start).
    products, predictors : variable names.
    n_splits : leave-basin-out folds.
    seed : LightGBM random state.
    params : LightGBM parameters overriding :data:`DEFAULT_PARAMS`.

    Returns
    -------
    ReconstructionResult

    Raises
    ------
    ValueError
        A product or the first predictor is missing.

    References
    ----------
    Ke et al. (2017), LightGBM, NeurIPS 30; method after Xu et al. (2025), see METHODS.md.
    """
    wide = (
        observations[observations["variable"].isin([*products, *predictors])]
        .pivot_table(index=["station", "time"], columns="variable", values="value")
        .sort_index()
    )
    missing = [n for n in (*products, predictors[0]) if n not in wide.columns]
    if missing:
        raise ValueError(f"observations: no values of {missing}")
    wide = wide[wide[predictors[0]].notna()]
    x = basin_features(wide.reindex(columns=[*wide.columns.union(list(predictors))]), predictors)
    model_params = {**DEFAULT_PARAMS, "random_state": seed, **(params or {})}
    series = wide.reindex(columns=list(products)).copy()
    cv_rows = {}
    for product in products:
        known = series[product].notna().to_numpy()
        xs, ys = x[known], series[product].to_numpy()[known]
        groups = xs.index.get_level_values("station").to_numpy()
        predicted = np.full(len(ys), np.nan)
        for train, test in leave_station_out(groups, min(n_splits, len(set(groups)))):
            predicted[test] = (
                lightgbm.LGBMRegressor(**model_params).fit(xs.iloc[train], ys[train]).predict(xs.iloc[test])
            )
        series[f"{product}_rec"] = lightgbm.LGBMRegressor(**model_params).fit(xs, ys).predict(x)
        times = xs.index.get_level_values("time")
        cv_rows[product] = {
            **summary(predicted, ys),
            "basins": int(len(set(groups))),
            "product_start": times.min(),
            "product_end": times.max(),
            "reconstructed_start": x.index.get_level_values("time").min(),
            "reconstructed_end": x.index.get_level_values("time").max(),
        }
    return ReconstructionResult(series.reset_index(), pd.DataFrame.from_dict(cv_rows, orient="index"))


# --- stored outputs of stages 1 and 2 ----------------------------------------------------------
def fusion_metric_rows(
    fusion: TowerFusionResult, land_cover: dict[str, str] | None = None, *, reference: str = "et"
) -> list[tuple[str, str, str, dict]]:
    """``(variable, scope, label, metrics)`` rows of the fused estimate and of every input product.

    All variables are scored against ``reference`` on the same samples (those of
    ``fusion.predictions``), pooled, per tower and per land-cover class.

    Parameters
    ----------
    fusion : TowerFusionResult
        From :func:`fuse_at_towers`.
    land_cover : dict, optional
        Tower code -> IGBP class; towers without one get no class row.
    reference : tower ET column.

    Returns
    -------
    list of tuple
        ``variable`` is ``et_fused`` or a product name; scope/label/metrics as
        :func:`products.methods.aggregate.validation_rows` (units of the inputs, mm h-1 for the
        ECOSTRESS towers).
    """
    frame = fusion.predictions.assign(
        land_cover=fusion.predictions["station"].map(land_cover or {}).fillna("").astype(str)
    )
    return [
        (variable, scope, label, metrics)
        for variable in fusion.table.index
        for scope, label, metrics in validation_rows(frame, variable, reference, "station", "land_cover")
    ]
