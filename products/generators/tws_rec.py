"""Terrestrial water storage (TWS) reconstruction from GRACE/GRACE-FO mascons and water fluxes (no Django).

The GTWS-MLrec method (Yin et al. 2023) on the data the portal holds: monthly basin means of GRACE
mascon TWS anomalies (JPL, CSR; ITSG as an independent solution), precipitation (P),
evapotranspiration (ET) and runoff (R). Pipeline:

1. :func:`to_arrays` / :func:`mask_gaps`: long observations -> one (time x basin) table per
   variable on a regular monthly axis; storage values in the GRACE/GRACE-FO gap (flagged
   ``gap_filled`` by the reader, 2017-07..2018-05) become gaps, they are never used as data.
2. :func:`baseline_anomaly` (the GRACE convention: minus the 2004.0-2009.999 mean of the months
   present), :func:`deseasonalise` (minus the calendar-month climatology of that baseline, reusing
   :mod:`products.methods.anomalies`), :func:`detrend` (minus the least-squares line in decimal
   years) and :func:`variants`.
3. :func:`flux_features`: predictors computed from P, ET and R alone, identical for basins and grid
   cells (columns of a (time x cell) table): the fluxes, their deseasonalised anomalies, the net
   flux N = P - ET - R and its anomaly with 1-3 month lags, and exponentially filtered sums of N
   (time scales 3, 6, 12 months for the anomaly relative to the baseline mean, 6, 12, 24 months
   for the deseasonalised anomaly). The filter is the linear-reservoir memory of GRACE-REC
   (Humphrey & Gudmundsson 2019): a storage anomaly is approximately the water-balance residual
   integrated with a decay, S_t = N_t + exp(-1/tau) S_{t-1}; cumulative sums without decay drift
   with every bias of P, ET or R. Basin climate (baseline means of P, ET and R) and the calendar
   month complete the table.
4. :func:`reconstruct`: one LightGBM model per mascon solution and variant (``anomaly`` and
   ``dd``, detrended and deseasonalised, as the seed publishes both), trained on the GRACE months
   pooled over basins; skill from blocks of 3 calendar years held out with 2 buffer years on either
   side (:func:`held_out`, :func:`products.methods.cv.year_blocks_held_out`; the features remember up
   to 24 months), and from single years without buffer beside it to show the inflation. Inside each
   fold the target's baseline mean, climatology and trend are fitted on the training years only
   (:func:`fit_target_statistics`) and applied to the held-out years; the reconstruction comes
   from a model fitted on all GRACE months (statistics of the whole record) and predicted on every
   month with predictors (ERA5-Land P, ET, R: 1981-01..2020-08).
5. :func:`compare_to_reference` (held-out predictions against ITSG, which no model saw),
   :func:`region_means` (area-weighted means over the basins of each region),
   :func:`water_balance` (dS/dt against P - ET - R per basin: validation for GRACE storage, only a
   consistency diagnostic for the reconstruction, which is built from P - ET - R).
6. :func:`reconstruct_grid`: the same features and model on a mascon-layout cube (time x lat x lon,
   ``lwe_thickness`` in cm, :func:`ingestion.readers.grace.open_grid`), written chunk by chunk with
   :func:`products.methods.chunked.apply_chunked`.
7. Uncertainty (:func:`mascon_spread`): the standard error of each reconstruction is the spread
   (sample standard deviation, ddof=1; with two members ``|JPL - CSR| / sqrt(2)``) between the
   reconstructions trained on each mascon solution, published as ``<estimate>_standard_error`` and
   named in the estimate's ``ancillary_variables``; for the regions, the spread between the
   area-weighted region means of those reconstructions. Its calibration is measured on the held-out
   year blocks (:func:`held_out_coverage`, :func:`held_out_region_coverage`): the out-of-fold
   predictions of every solution give the spread, and their coverage of the GRACE anomalies of
   those years is counted. The spread shows only how much the solutions disagree, not the model's
   error, so it is expected to be too narrow; the files and the run summary say how narrow.

Storage values are mm of liquid water equivalent (1 mm = 1 kg m-2); fluxes mm month-1.

References
----------
Yin, J., et al. (2023): GTWS-MLrec: global terrestrial water storage reconstruction by machine
learning from 1940 to present. Earth Syst. Sci. Data 15, 5597-5615, doi:10.5194/essd-15-5597-2023.
Humphrey, V., Gudmundsson, L. (2019): GRACE-REC: a reconstruction of climate-driven water storage
changes over the last century. Earth Syst. Sci. Data 11, 1153-1170, doi:10.5194/essd-11-1153-2019.
Li, F., et al. (2021): Long-term (1979-present) total water storage anomalies over the global land
derived by reconstructing GRACE data. Geophys. Res. Lett. 48, e2021GL093492, doi:10.1029/2021GL093492.
Watkins, M. M., et al. (2015): Improved methods for observing Earth's time variable mass distribution
with GRACE using spherical cap mascons. J. Geophys. Res. Solid Earth 120, 2648-2671,
doi:10.1002/2014JB011547.
Ke, G., et al. (2017): LightGBM: a highly efficient gradient boosting decision tree. NeurIPS 30.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import lightgbm
import numpy as np
import pandas as pd
import xarray as xr

from products.data_kind import DataKind
from products.methods import cf
from products.methods.anomalies import monthly_anomalies
from products.methods.cf import CONVENTIONS, history_line, merge_attrs
from products.methods.chunked import GridSpec, Window, apply_chunked, windows
from products.methods.cv import assert_disjoint, year_blocks_held_out
from products.methods.files import atomic_path
from products.methods.metrics import pearson_r, summary
from products.methods.uncertainty import (
    NOMINAL,
    Coverage,
    calibration_comment,
    interval_coverage,
    link_ancillary,
    member_spread,
    standard_error_attributes,
)

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

BASELINE = ("2004-01-01", "2009-12-31")  # 2004.0-2009.999, the GRACE mascon reference period
SOLUTIONS = ("tws_jpl", "tws_csr")  # one reconstruction per mascon solution (the seed: JPL, CSR, GSFC)
REFERENCE = "tws_itsg"  # ITSG-Grace2018: never trained on, validation only
VARIANTS = ("anomaly", "dd")  # dd = detrended and deseasonalised
PREDICTORS = {"p": "p_era5land", "et": "et_era5land", "r": "r_era5land"}  # one consistent span, 1981-01..2020-08
GAP_FLAGS = ("gap_filled",)
TAUS = (3, 6, 12)  # months, e-folding times of the filtered net flux (anomaly vs the baseline mean)
TAUS_DESEASONALISED = (6, 12, 24)  # months, for the deseasonalised net flux
LAGS = (1, 2, 3)
TWS_UNITS = "mm"
DEFAULT_PARAMS = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "n_jobs": 1,
    "verbose": -1,
    "deterministic": True,
    "force_col_wise": True,
}
"""LightGBM parameters of the reconstruction models, tws_rec's own (the values the ET fusion uses, which it
borrowed before; ``n_jobs`` 1, see :func:`model_parameters`)."""
REFERENCES = (
    "Yin et al. (2023), ESSD 15, 5597-5615, doi:10.5194/essd-15-5597-2023 (GTWS-MLrec, the seed); "
    "Humphrey & Gudmundsson (2019), ESSD 11, 1153-1170, doi:10.5194/essd-11-1153-2019 (GRACE-REC); "
    "Li et al. (2021), GRL 48, e2021GL093492, doi:10.1029/2021GL093492; "
    "JPL RL06 mascons: Watkins et al. (2015), doi:10.1002/2014JB011547; CSR RL06 mascons: Save et al. (2016), "
    "doi:10.1002/2016JB013007; ITSG-Grace2018: Kvas et al. (2019), doi:10.1029/2019JB017415; "
    "ERA5-Land: Munoz-Sabater et al. (2021), doi:10.5194/essd-13-4349-2021; LightGBM: Ke et al. (2017), NeurIPS 30; "
    "basin tables: lehmannfa/water_storage_changes results/hydrology"
)


# --- anomalies, deseasonalising, detrending ------------------------------------------------------
def decimal_year(times) -> np.ndarray:
    """Decimal years of month starts (2004-01-01 -> 2004.0, 2004-07-01 -> 2004.5).

    Parameters
    ----------
    times : array_like
        datetime64 month starts.

    Returns
    -------
    numpy.ndarray
        float64, year + (month - 1) / 12.
    """
    index = pd.DatetimeIndex(np.asarray(times))
    return (index.year + (index.month - 1) / 12.0).to_numpy(dtype="float64")


def _baseline_rows(index: pd.DatetimeIndex, baseline: tuple[str, str]) -> np.ndarray:
    return np.asarray((index >= pd.Timestamp(baseline[0])) & (index <= pd.Timestamp(baseline[1])))


def baseline_anomaly(frame, *, baseline: tuple[str, str] = BASELINE):
    """Values minus their mean over the baseline months present (the GRACE anomaly convention).

    Parameters
    ----------
    frame : pandas.Series or pandas.DataFrame
        Index: DatetimeIndex of month starts; columns: basins or cells; float, any units; NaN = gap.
    baseline : (start, end)
        Inclusive ISO dates, default 2004-01-01..2009-12-31 (2004.0-2009.999).

    Returns
    -------
    Same type and shape as ``frame``, float64, units of ``frame``; a column without a baseline
    value is all NaN (its reference level is unknown).

    Raises
    ------
    TypeError
        The index is not a DatetimeIndex.

    References
    ----------
    Watkins et al. (2015), doi:10.1002/2014JB011547 (mascon anomalies relative to 2004.0-2009.999).
    """
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise TypeError("expected a DatetimeIndex of month starts")
    mean = frame[_baseline_rows(frame.index, baseline)].mean()
    return (frame - mean).astype("float64")


def deseasonalise(frame, *, baseline: tuple[str, str] = BASELINE):
    """Values minus the climatology of their calendar month over the baseline (months present).

    A thin use of :func:`products.methods.anomalies.monthly_anomalies` column by column (it accepts a
    DataFrame of month starts as it does a Series).

    Parameters
    ----------
    frame : pandas.Series or pandas.DataFrame
        Index: DatetimeIndex of month starts; float, any units; NaN = gap (gaps stay gaps and do not
        enter the climatology).
    baseline : (start, end)
        Inclusive ISO dates.

    Returns
    -------
    Same type and shape, float64, units of ``frame``; NaN where the value or the calendar month's
    climatology is missing.

    Raises
    ------
    TypeError
        The index is not a DatetimeIndex.

    References
    ----------
    METHODS.md (anomalies); WMO-No. 1203 (2017), climate normals.
    """
    return monthly_anomalies(frame, baseline=baseline)


def linear_trend(series: pd.Series) -> tuple[float, float]:
    """Least-squares line through the finite values against decimal years.

    Parameters
    ----------
    series : pandas.Series
        Index DatetimeIndex of month starts; float.

    Returns
    -------
    slope, intercept : float
        Units of ``series`` per year and units of ``series`` at year 0; NaN when fewer than 2 values.
    """
    x, y = decimal_year(series.index), series.to_numpy(dtype="float64")
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return np.nan, np.nan
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    return float(slope), float(intercept)


def detrend(frame):
    """Values minus their least-squares line in decimal years, column by column (METHODS.md).

    Parameters
    ----------
    frame : pandas.Series or pandas.DataFrame
        Index DatetimeIndex of month starts; float; NaN = gap (not used in the fit, kept as NaN).

    Returns
    -------
    Same type and shape, float64; a column with fewer than 2 values is all NaN.
    """
    if isinstance(frame, pd.Series):
        slope, intercept = linear_trend(frame)
        return (frame - (intercept + slope * decimal_year(frame.index))).astype("float64")
    return frame.apply(detrend).astype("float64")


def variants(frame, *, baseline: tuple[str, str] = BASELINE) -> dict:
    """The four storage variants of a (time x basin) table.

    Returns
    -------
    dict
        ``anomaly`` (:func:`baseline_anomaly`), ``deseasonalised``, ``detrended`` (of the anomaly) and
        ``dd`` (detrended and deseasonalised), each like ``frame``, float64.
    """
    anomaly = baseline_anomaly(frame, baseline=baseline)
    deseasonalised = deseasonalise(anomaly, baseline=baseline)
    return {
        "anomaly": anomaly,
        "deseasonalised": deseasonalised,
        "detrended": detrend(anomaly),
        "dd": detrend(deseasonalised),
    }


# --- from long observations to (time x basin) tables ----------------------------------------------
def mask_gaps(observations: pd.DataFrame, flags: tuple[str, ...] = GAP_FLAGS) -> pd.DataFrame:
    """Drop observations whose ``quality_flag`` names a gap that the source filled (they stay gaps).

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table with ``quality_flag`` (str; may hold several comma-separated flags).

    Returns
    -------
    pandas.DataFrame
        The rows without any of ``flags``.
    """
    flagged = (
        observations["quality_flag"]
        .fillna("")
        .astype(str)
        .str.split(",")
        .map(lambda parts: any(p.strip() in flags for p in parts))
    )
    return observations[~flagged.to_numpy(dtype=bool)]


def to_arrays(observations: pd.DataFrame, variables, *, stations=None, start=None, end=None) -> dict[str, pd.DataFrame]:
    """One (time x station) table per variable on a regular monthly axis.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table (``station``, ``variable``, ``time`` month start, ``value``).
    variables : iterable of str
        Variables to return (absent ones come back all NaN).
    stations : list of str, optional
        Column order; default every station of ``observations``, sorted.
    start, end : timestamp-like, optional
        Monthly axis limits; default the span of ``observations``.

    Returns
    -------
    dict of str -> pandas.DataFrame
        Index DatetimeIndex (``MS`` frequency, named ``time``), columns the stations, float64.

    Raises
    ------
    ValueError
        ``observations`` is empty and no ``start``/``end`` is given.
    """
    if observations.empty and (start is None or end is None):
        raise ValueError("observations: empty")
    times = pd.to_datetime(observations["time"])
    start = pd.Timestamp(start if start is not None else times.min()).to_period("M").to_timestamp()
    end = pd.Timestamp(end if end is not None else times.max()).to_period("M").to_timestamp()
    axis = pd.date_range(start, end, freq="MS", name="time")
    columns = sorted(observations["station"].unique()) if stations is None else list(stations)
    out = {}
    for variable in variables:
        rows = observations[observations["variable"] == variable]
        table = rows.pivot_table(index="time", columns="station", values="value", aggfunc="mean")
        table.index = pd.DatetimeIndex(table.index).to_period("M").to_timestamp()
        out[variable] = table.reindex(index=axis, columns=columns).astype("float64")
        out[variable].columns.name = "station"
    return out


# --- predictors -------------------------------------------------------------------------------------
def exponential_filter(values: np.ndarray, tau: float) -> np.ndarray:
    """Linear-reservoir memory S_t = x_t + exp(-1/tau) S_{t-1} along axis 0 (S_{-1} = 0).

    Parameters
    ----------
    values : numpy.ndarray
        (time, ...) float, e.g. mm month-1; NaN inputs add nothing (the state decays) and give NaN.
    tau : float
        e-folding time in time steps (months), > 0.

    Returns
    -------
    numpy.ndarray
        Same shape, float64, units of ``values`` x month.

    Raises
    ------
    ValueError
        ``tau`` <= 0.

    References
    ----------
    Humphrey & Gudmundsson (2019), doi:10.5194/essd-11-1153-2019 (exponentially filtered forcing).
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, found {tau}")
    x = np.asarray(values, dtype="float64")
    decay = np.exp(-1.0 / tau)
    out = np.empty_like(x)
    state = np.zeros(x.shape[1:])
    for t in range(x.shape[0]):
        valid = np.isfinite(x[t])
        state = decay * state + np.where(valid, x[t], 0.0)
        out[t] = np.where(valid, state, np.nan)
    return out


def flux_features(
    p: pd.DataFrame, et: pd.DataFrame, r: pd.DataFrame, *, baseline: tuple[str, str] = BASELINE
) -> dict[str, pd.DataFrame]:
    """Predictors of TWS from precipitation, evapotranspiration and runoff (the same for basins and cells).

    Parameters
    ----------
    p, et, r : pandas.DataFrame
        (time x cell) tables, same index (regular monthly DatetimeIndex) and columns, mm month-1;
        NaN where missing.
    baseline : (start, end)
        Reference period of the anomalies and climatologies.

    Returns
    -------
    dict of str -> pandas.DataFrame
        Same shape each, float64: ``p``, ``et``, ``r``, ``net`` (P - ET - R, mm month-1);
        ``p_anom``, ``et_anom``, ``r_anom``, ``net_anom`` (deseasonalised); ``net_anom_lag1..3``;
        ``net_ewm<tau>`` (filtered net flux minus its baseline mean, mm, tau in :data:`TAUS`),
        ``net_anom_ewm<tau>`` (filtered deseasonalised net flux, mm, :data:`TAUS_DESEASONALISED`);
        ``p_mean``, ``et_mean``, ``r_mean`` (baseline means, mm month-1, the cell's climate);
        ``month_sin``, ``month_cos``.

    References
    ----------
    Humphrey & Gudmundsson (2019), doi:10.5194/essd-11-1153-2019; Li et al. (2021),
    doi:10.1029/2021GL093492 (water-balance predictors of TWS).
    """
    net = p - et - r
    out = {"p": p, "et": et, "r": r, "net": net}
    for name, frame in (("p", p), ("et", et), ("r", r), ("net", net)):
        out[f"{name}_anom"] = deseasonalise(frame, baseline=baseline)
    for lag in LAGS:
        out[f"net_anom_lag{lag}"] = out["net_anom"].shift(lag)
    centred = baseline_anomaly(net, baseline=baseline)
    for tau in TAUS:
        out[f"net_ewm{tau}"] = pd.DataFrame(
            exponential_filter(centred.to_numpy(), tau), index=net.index, columns=net.columns
        )
    for tau in TAUS_DESEASONALISED:
        out[f"net_anom_ewm{tau}"] = pd.DataFrame(
            exponential_filter(out["net_anom"].to_numpy(), tau), index=net.index, columns=net.columns
        )
    base = _baseline_rows(net.index, baseline)
    for name, frame in (("p", p), ("et", et), ("r", r)):
        out[f"{name}_mean"] = pd.DataFrame(
            np.broadcast_to(frame[base].mean().to_numpy(), frame.shape), index=frame.index, columns=frame.columns
        )
    angle = 2 * np.pi * (net.index.month.to_numpy() - 0.5) / 12
    for name, values in (("month_sin", np.sin(angle)), ("month_cos", np.cos(angle))):
        out[name] = pd.DataFrame(np.broadcast_to(values[:, None], net.shape), index=net.index, columns=net.columns)
    return {k: v.astype("float64") for k, v in out.items()}


FEATURES = (
    "p",
    "et",
    "r",
    "net",
    "p_anom",
    "et_anom",
    "r_anom",
    "net_anom",
    *(f"net_anom_lag{lag}" for lag in LAGS),
    *(f"net_ewm{tau}" for tau in TAUS),
    *(f"net_anom_ewm{tau}" for tau in TAUS_DESEASONALISED),
    "p_mean",
    "et_mean",
    "r_mean",
    "month_sin",
    "month_cos",
)


def stack(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """(time x cell) tables -> one long table indexed (station, time), one column per table."""
    long = {name: frame.stack(future_stack=True) for name, frame in tables.items()}
    out = pd.DataFrame(long)
    out.index = out.index.set_names(["time", "station"])
    return out.reorder_levels(["station", "time"]).sort_index()


# --- statistics of the target, fitted on training months only --------------------------------------
@dataclass(frozen=True)
class TargetStatistics:
    """The statistics that turn a storage record into a model target, fitted on one set of months.

    Attributes
    ----------
    mean : pandas.Series
        Per basin, mm: mean over the reference months (the anomaly's reference level).
    climatology : pandas.DataFrame
        Index calendar month 1..12, columns basins, mm: mean anomaly of each calendar month over the
        reference months (NaN where the month is absent).
    slope, intercept : pandas.Series
        Per basin: least-squares line of the deseasonalised anomaly against decimal years over the
        fitted months (mm year-1 and mm at year 0).
    reference : str
        Which months the mean and climatology come from (words, for the lineage and the summary).
    """

    mean: pd.Series
    climatology: pd.DataFrame
    slope: pd.Series
    intercept: pd.Series
    reference: str


def fit_target_statistics(frame: pd.DataFrame, fitted, *, baseline: tuple[str, str] = BASELINE) -> TargetStatistics:
    """Baseline mean, calendar-month climatology and trend of a storage table, from the ``fitted`` months only.

    Inside a cross-validation fold ``fitted`` holds the training months: no held-out value shapes
    the statistics that define its own target. The mean and climatology come from the fitted months
    within ``baseline`` when these cover all twelve calendar months, else (the held-out block and
    its buffer take the baseline) from all fitted months; the trend from all fitted months.
    With every month fitted this gives exactly the statistics of :func:`variants`.

    Parameters
    ----------
    frame : pandas.DataFrame
        (time x basin) storage, mm, DatetimeIndex of month starts; NaN = gap.
    fitted : array_like
        bool, shape (n_times,): months whose values may be used.
    baseline : (start, end)
        Inclusive ISO dates of the preferred reference period.

    Returns
    -------
    TargetStatistics

    Raises
    ------
    ValueError
        ``fitted`` does not match the rows of ``frame`` or selects no month.
    """
    fitted = np.asarray(fitted, dtype=bool)
    if fitted.shape != (len(frame),) or not fitted.any():
        raise ValueError("fitted: one bool per month of frame, at least one True")
    index = pd.DatetimeIndex(frame.index)
    present = frame.notna().any(axis=1).to_numpy()
    reference = fitted & _baseline_rows(index, baseline)
    if len(set(index.month[reference & present])) == 12:
        words = f"fitted months within the baseline {baseline[0]}/{baseline[1]}"
    else:
        reference, words = fitted, "all fitted months (the baseline is held out or buffered)"
    mean = frame[reference].mean()
    anomaly = frame - mean
    climatology = anomaly[reference].groupby(index[reference].month).mean().reindex(range(1, 13))
    deseasonalised = anomaly - climatology.reindex(index.month).to_numpy()
    lines = {c: linear_trend(deseasonalised[c].where(fitted)) for c in frame.columns}
    slope = pd.Series({c: v[0] for c, v in lines.items()}, dtype="float64").reindex(frame.columns)
    intercept = pd.Series({c: v[1] for c, v in lines.items()}, dtype="float64").reindex(frame.columns)
    return TargetStatistics(mean, climatology, slope, intercept, words)


def apply_target_statistics(frame: pd.DataFrame, statistics: TargetStatistics) -> dict[str, pd.DataFrame]:
    """The ``anomaly``, ``deseasonalised`` and ``dd`` targets of every month from fitted statistics.

    Parameters
    ----------
    frame : pandas.DataFrame
        (time x basin) storage, mm, DatetimeIndex of month starts.
    statistics : TargetStatistics
        From :func:`fit_target_statistics` (on the training months of a fold, or on all months).

    Returns
    -------
    dict of str -> pandas.DataFrame
        Like ``frame``, float64, mm: ``anomaly`` (minus the mean), ``deseasonalised`` (minus the
        climatology), ``dd`` (also minus the trend line).
    """
    index = pd.DatetimeIndex(frame.index)
    anomaly = (frame - statistics.mean).astype("float64")
    deseasonalised = (anomaly - statistics.climatology.reindex(index.month).to_numpy()).astype("float64")
    line = statistics.intercept.to_numpy()[None, :] + np.outer(decimal_year(index), statistics.slope.to_numpy())
    return {"anomaly": anomaly, "deseasonalised": deseasonalised, "dd": (deseasonalised - line).astype("float64")}


# --- the model ----------------------------------------------------------------------------------
BLOCK_YEARS = 3
BUFFER_YEARS = 2
"""Years on either side of a held-out block left out of training: the longest memory of the features,
``net_anom_ewm24`` (an e-folding time of 24 months; the other filters 3-12 months, lags 1-3 months), so
more than 24 months separate every training month from every test month."""
SPLITS = {"year_block_held_out": (BLOCK_YEARS, BUFFER_YEARS), "year_held_out": (1, 0)}
"""Held-out splits, name -> (years per block, buffer years): blocks of 3 consecutive years with a 2-year buffer
(the headline, the ``_cv`` series), and one year without buffer (leave-one-year-out, kept to show how much
the features' memory inflates a one-year split)."""
HEADLINE_SPLIT = "year_block_held_out"


@dataclass
class Fold:
    """One fold of a held-out split: what was fitted without the test years.

    Attributes
    ----------
    test_years, excluded_years : tuple of int
        Years scored, and years kept out of fitting (the test years and their buffer).
    statistics : TargetStatistics
        Fitted on the months outside ``excluded_years``.
    model : lightgbm.LGBMRegressor
        Fitted on the training rows.
    train_rows, test_rows : numpy.ndarray
        int64 positions into the rows of :attr:`HeldOut.rows` (basin-months with storage and predictors).
    """

    test_years: tuple
    excluded_years: tuple
    statistics: TargetStatistics
    model: lightgbm.LGBMRegressor
    train_rows: np.ndarray
    test_rows: np.ndarray


@dataclass
class HeldOut:
    """Held-out predictions of one (solution, variant, split).

    Attributes
    ----------
    rows : pandas.MultiIndex
        (station, time) of the basin-months with storage and predictors.
    sim, obs : numpy.ndarray
        float64 mm per row: the prediction of the fold that held the row out, and the row's target under
        that fold's statistics (NaN where not scored).
    folds : list of Fold
    """

    rows: pd.MultiIndex
    sim: np.ndarray
    obs: np.ndarray
    folds: list

    def frame(self) -> pd.DataFrame:
        """``station``, ``time``, ``sim``, ``obs`` (mm) for the scored rows."""
        out = pd.DataFrame({"sim": self.sim, "obs": self.obs}, index=self.rows).dropna()
        return out.reset_index()


@dataclass
class ModelInputs:
    """Tables every model of :func:`reconstruct` shares (see :func:`model_inputs`)."""

    arrays: dict
    table: pd.DataFrame
    has_predictors: np.ndarray


@dataclass
class TwsResult:
    """Output of :func:`reconstruct`.

    Attributes
    ----------
    series : pandas.DataFrame
        Index (station, time) over every month with predictors or storage; per solution s
        (``tws_jpl``, ``tws_csr``): ``s`` (observed anomaly, mm; NaN at gaps), ``s_dd`` (observed,
        detrended and deseasonalised; both with the statistics of the whole record), ``s_rec`` and
        ``s_dd_rec`` (reconstructions, mm, every month with predictors), ``s_cv`` and ``s_dd_cv``
        (predictions for held-out year blocks, :data:`HEADLINE_SPLIT`, GRACE months only, each relative
        to its fold's statistics); ``net`` (P - ET - R, mm month-1).
    cv : pandas.DataFrame
        One row per (solution, variant, split): :func:`products.methods.metrics.summary` of the held-out
        predictions against the fold targets, ``basins``, ``folds``, training span and reconstructed span.
    predictors : dict
        Role (p, et, r) -> variable.
    features : tuple of str
        Feature names in model order.
    models : dict
        (solution, variant) -> fitted ``lightgbm.LGBMRegressor`` (all GRACE months).
    held_out : dict
        (solution, variant, split) -> :class:`HeldOut` (predictions, targets and folds).
    """

    series: pd.DataFrame
    cv: pd.DataFrame
    predictors: dict
    features: tuple
    models: dict = field(default_factory=dict)
    held_out: dict = field(default_factory=dict)


def model_parameters(params: Mapping | None, seed: int) -> dict:
    """The LightGBM parameters of a run: :data:`DEFAULT_PARAMS`, ``random_state=seed``, then ``params`` (dict)."""
    # n_jobs 1: on a shared 2-core machine OpenMP threads that wait for each other made a 4000-row
    # fit ~45 times slower with n_jobs=2 than with 1 (measured); many small fits gain nothing from threads.
    return {**DEFAULT_PARAMS, "random_state": seed, **(params or {})}


def model_inputs(
    observations: pd.DataFrame,
    *,
    solutions: tuple[str, ...] = SOLUTIONS,
    predictors: Mapping[str, str] = PREDICTORS,
    baseline: tuple[str, str] = BASELINE,
) -> ModelInputs:
    """(time x basin) tables of the storage solutions and predictors, and the stacked feature table.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long basin observations (``station``, ``variable``, ``time``, ``value``, ``quality_flag``);
        storage flagged ``gap_filled`` is a gap.
    solutions, predictors, baseline
        As for :func:`reconstruct`.

    Returns
    -------
    ModelInputs
        ``arrays`` (variable -> (time x basin) DataFrame), ``table`` (features, index (station, time),
        the columns of :data:`FEATURES`), ``has_predictors`` (bool per row of ``table``).

    Raises
    ------
    ValueError
        A solution or predictor has no values.
    """
    clean = mask_gaps(observations)
    names = [*solutions, *predictors.values()]
    missing = [n for n in names if not (clean["variable"] == n).any()]
    if missing:
        raise ValueError(f"observations: no values of {missing}")
    arrays = to_arrays(clean, names)
    features = flux_features(*(arrays[predictors[k]] for k in ("p", "et", "r")), baseline=baseline)
    table = stack(features)
    return ModelInputs(arrays, table, table[["p", "et", "r"]].notna().all(axis=1).to_numpy())


def held_out(
    inputs: ModelInputs,
    solution: str,
    variant: str,
    *,
    split: str = HEADLINE_SPLIT,
    baseline: tuple[str, str] = BASELINE,
    params: Mapping | None = None,
    seed: int = 42,
    min_train_years: int = 3,
) -> HeldOut:
    """Predictions for held-out years with every statistic and model fitted inside the fold.

    In each fold the target's baseline mean, climatology and trend (:func:`fit_target_statistics`)
    are fitted on the months outside the test years and their buffer, applied to every month, and
    the model is trained on the training rows of that target; the test rows are scored against the
    same fold's target. The predictors depend on P, ET and R only (known for every month, also
    where storage is reconstructed), so they are computed once.

    Parameters
    ----------
    inputs : ModelInputs
        From :func:`model_inputs`.
    solution : str
        Storage variable of ``inputs.arrays``.
    variant : {"anomaly", "dd"}
    split : str
        A key of :data:`SPLITS`.
    baseline, params, seed, min_train_years
        As for :func:`reconstruct`.

    Returns
    -------
    HeldOut

    Raises
    ------
    ValueError
        Unknown ``variant`` or ``split``; a fold that would put a year in train and test.

    References
    ----------
    :func:`products.methods.cv.year_blocks_held_out`; Roberts et al. (2017), doi:10.1111/ecog.02881.
    """
    if variant not in VARIANTS or split not in SPLITS:
        raise ValueError(f"variant in {VARIANTS} and split in {tuple(SPLITS)}, found {variant!r}, {split!r}")
    block, buffer = SPLITS[split]
    raw = inputs.arrays[solution]
    long = stack({"y": raw})["y"].reindex(inputs.table.index)
    candidate = long.notna().to_numpy() & inputs.has_predictors
    rows = inputs.table.index[candidate]
    xs = inputs.table.loc[candidate, list(FEATURES)]
    times = rows.get_level_values("time")
    years = times.year.to_numpy()
    month_years = pd.DatetimeIndex(raw.index).year.to_numpy()
    sim, obs = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    folds = []
    model_params = model_parameters(params, seed)
    for train, test in year_blocks_held_out(times.to_numpy(), block=block, buffer=buffer):
        if len(np.unique(years[train])) < min_train_years:
            continue
        assert_disjoint(years[train], years[test])
        test_years = np.unique(years[test])
        excluded = np.arange(test_years.min() - buffer, test_years.max() + buffer + 1)
        statistics = fit_target_statistics(raw, ~np.isin(month_years, excluded), baseline=baseline)
        target = stack({"y": apply_target_statistics(raw, statistics)[variant]})["y"].reindex(rows).to_numpy()
        train = train[np.isfinite(target[train])]
        test = test[np.isfinite(target[test])]
        model = lightgbm.LGBMRegressor(**model_params).fit(xs.iloc[train], target[train])
        if len(test):
            sim[test] = model.predict(xs.iloc[test])
            obs[test] = target[test]
        folds.append(Fold(tuple(test_years.tolist()), tuple(excluded.tolist()), statistics, model, train, test))
    return HeldOut(rows, sim, obs, folds)


def reconstruct(
    observations: pd.DataFrame,
    *,
    solutions: tuple[str, ...] = SOLUTIONS,
    predictors: Mapping[str, str] = PREDICTORS,
    baseline: tuple[str, str] = BASELINE,
    params: Mapping | None = None,
    seed: int = 42,
    min_train_years: int = 3,
) -> TwsResult:
    """Train one LightGBM model per mascon solution and variant, score it on held-out years, reconstruct.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long basin observations (``station``, ``variable``, ``time``, ``value``, ``quality_flag``):
        the ``solutions`` (mm, anomalies) and the ``predictors`` (mm month-1). Storage values flagged
        ``gap_filled`` are treated as gaps.
    solutions : tuple of str
        Storage variables to learn, one model each (target of the ``anomaly`` variant: the anomaly
        relative to the baseline mean; of the ``dd`` variant: the detrended, deseasonalised anomaly).
    predictors : mapping
        ``{"p": ..., "et": ..., "r": ...}`` variable names; the reconstruction spans the months where
        all three exist (ERA5-Land: 1981-01..2020-08).
    baseline : (start, end)
        Reference period.
    params : mapping, optional
        LightGBM parameters over :data:`DEFAULT_PARAMS`.
    seed : int
        LightGBM random state.
    min_train_years : int
        A held-out block is scored only when at least this many other years train the model.

    Returns
    -------
    TwsResult
        Held-out skill for every split of :data:`SPLITS` (statistics and model fitted inside each
        fold, :func:`held_out`); the reconstruction from a model fitted on all GRACE months, its target
        from the statistics of the whole record.

    Raises
    ------
    ValueError
        A solution or predictor has no values, or a fold would put a year in train and test.

    References
    ----------
    Yin et al. (2023), doi:10.5194/essd-15-5597-2023; Humphrey & Gudmundsson (2019),
    doi:10.5194/essd-11-1153-2019; Ke et al. (2017); :func:`products.methods.cv.year_blocks_held_out`.
    """
    inputs = model_inputs(observations, solutions=solutions, predictors=predictors, baseline=baseline)
    table, has_predictors = inputs.table, inputs.has_predictors
    x = table[list(FEATURES)]
    series = pd.DataFrame(index=table.index)
    series["net"] = table["net"]
    model_params = model_parameters(params, seed)
    rec_times = table.index.get_level_values("time")[has_predictors]
    cv_rows, models, scored = {}, {}, {}
    for solution in solutions:
        raw = inputs.arrays[solution]
        forms = apply_target_statistics(
            raw, fit_target_statistics(raw, np.ones(len(raw), dtype=bool), baseline=baseline)
        )
        for variant in VARIANTS:
            name = solution if variant == "anomaly" else f"{solution}_dd"
            y = stack({"y": forms[variant]})["y"].reindex(table.index)
            series[name] = y
            known = y.notna().to_numpy() & has_predictors
            final = lightgbm.LGBMRegressor(**model_params).fit(x[known], y.to_numpy()[known])
            models[solution, variant] = final
            rec = np.full(len(table), np.nan)
            rec[has_predictors] = final.predict(x[has_predictors])
            series[f"{name}_rec"] = rec
            times = table.index.get_level_values("time")[known]
            for split in SPLITS:
                result = held_out(
                    inputs,
                    solution,
                    variant,
                    split=split,
                    baseline=baseline,
                    params=params,
                    seed=seed,
                    min_train_years=min_train_years,
                )
                scored[solution, variant, split] = result
                if split == HEADLINE_SPLIT:
                    series[f"{name}_cv"] = pd.Series(result.sim, index=result.rows).reindex(table.index)
                ok = np.isfinite(result.sim)
                cv_rows[solution, variant, split] = {
                    **summary(result.sim[ok], result.obs[ok], anomaly=True),
                    "basins": int(result.rows[ok].get_level_values("station").nunique()),
                    "folds": len(result.folds),
                    "train_start": times.min(),
                    "train_end": times.max(),
                    "reconstructed_start": rec_times.min(),
                    "reconstructed_end": rec_times.max(),
                }
    cv_table = pd.DataFrame.from_dict(cv_rows, orient="index")
    cv_table.index = cv_table.index.set_names(["solution", "variant", "split"])
    keep = series.drop(columns="net").notna().any(axis=1).to_numpy()
    return TwsResult(series[keep], cv_table, dict(predictors), FEATURES, models, scored)


def validation_frame(result: TwsResult, solution: str, variant: str, split: str = HEADLINE_SPLIT) -> pd.DataFrame:
    """Held-out predictions and the fold's target of one model and split, one row per basin-month.

    Returns
    -------
    pandas.DataFrame
        ``station``, ``time``, ``sim`` (held-out prediction, mm), ``obs`` (the target under the statistics
        of the fold that held the month out, mm); rows where both exist.
    """
    return result.held_out[solution, variant, split].frame()


# --- the independent solution (ITSG) --------------------------------------------------------------
def normalise_basin_name(name: str) -> str:
    """Upper-case basin name without a trailing ``RIVER``/``RIO`` or a parenthesised note."""
    name = re.sub(r"\(.*$", "", str(name).upper()).strip()
    return re.sub(r"\s+(RIVER|RIO)$", "", name).strip()


def match_basins(areas: pd.Series, other_areas: pd.Series, *, tolerance: float = 0.2) -> pd.Series:
    """Pair basins of two GRDC basin sets by name where their areas agree.

    The ITSG table uses other outlines than the GRDC major river basins (``SEINE`` in both, with
    different areas), so a pair counts only when the areas differ by at most ``tolerance``.

    Parameters
    ----------
    areas, other_areas : pandas.Series
        Basin name -> area (km2, float) of each set.
    tolerance : float
        Largest accepted ``|other / area - 1|``.

    Returns
    -------
    pandas.Series
        Index: names of ``areas``; values: the matching name of ``other_areas`` (str).
    """
    lookup: dict[str, object] = {}
    for name in other_areas.index:
        lookup.setdefault(normalise_basin_name(name), name)
    pairs = {}
    for name, area in areas.items():
        other = lookup.get(normalise_basin_name(name))
        if other is None:
            continue
        ratio = other_areas[other] / area
        if np.isfinite(ratio) and abs(ratio - 1) <= tolerance:
            pairs[name] = other
    return pd.Series(pairs, dtype=object, name="match")


def compare_to_reference(
    result: TwsResult, reference: pd.DataFrame, matches: pd.Series, *, baseline: tuple[str, str] = BASELINE
) -> dict[str, pd.DataFrame]:
    """Held-out predictions (and the mascon solution itself) against an independent solution per basin.

    Both series are re-referenced to their own mean over the baseline months they share, since the
    reference (ITSG) has another baseline; the ``dd`` variant is compared with the reference's
    detrended, deseasonalised series.

    Parameters
    ----------
    result : TwsResult
    reference : pandas.DataFrame
        (time x basin) independent storage anomalies (mm), columns named as ``matches`` values.
    matches : pandas.Series
        Basin of ``result`` -> basin of ``reference`` (:func:`match_basins`).
    baseline : (start, end)

    Returns
    -------
    dict
        variable -> DataFrame (``station``, ``time``, ``sim``, ``obs``): per solution s, the held-out
        predictions ``<s>_rec`` and ``<s>_dd_rec`` and the solution itself, ``<s>`` and ``<s>_dd``.
    """
    wide = result.series.unstack("station")
    out = {}
    ref = reference.rename(columns={v: k for k, v in matches.items()}).reindex(columns=list(matches.index))
    for solution in dict.fromkeys(result.cv.index.get_level_values("solution")):
        for variant in VARIANTS:
            name = solution if variant == "anomaly" else f"{solution}_dd"
            for variable, column in ((f"{name}_rec", f"{name}_cv"), (name, name)):
                sim = wide[column].reindex(columns=ref.columns)
                common = pd.DataFrame(index=sim.index.union(ref.index))
                s, o = sim.reindex(common.index), ref.reindex(common.index)
                both = s.notna() & o.notna()
                s, o = s.where(both), o.where(both)
                if variant == "dd":
                    s, o = detrend(deseasonalise(s, baseline=baseline)), detrend(deseasonalise(o, baseline=baseline))
                else:
                    s, o = baseline_anomaly(s, baseline=baseline), baseline_anomaly(o, baseline=baseline)
                frame = stack({"sim": s, "obs": o}).dropna().reset_index()
                out[variable] = frame
    return out


# --- regions ------------------------------------------------------------------------------------
def region_means(
    frame: pd.DataFrame,
    attributes: pd.DataFrame,
    *,
    region: str = "continent",
    area: str = "area_km2",
    min_area_fraction: float = 0.9,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Area-weighted means over the basins of each region, and over all basins (``All basins``).

    Parameters
    ----------
    frame : pandas.DataFrame
        (time x basin), mm.
    attributes : pandas.DataFrame
        Index basin name; ``region`` (str) and ``area`` (km2) columns. Basins without a region or area
        are left out.
    min_area_fraction : float
        A month whose basins with values cover less than this fraction of the region's area is NaN
        (a gap, not a mean of fewer basins).

    Returns
    -------
    means : pandas.DataFrame
        (time x region), float64, mm: sum(area_i * x_i) / sum(area_i) over basins with a value.
    regions : pandas.DataFrame
        Per region: ``basins`` (int) and ``area_km2`` (sum).

    References
    ----------
    METHODS.md (regional means are area-weighted); Yin et al. (2023) regional series.
    """
    attrs = attributes.reindex(frame.columns)
    ok = attrs[region].fillna("").astype(str).ne("") & np.isfinite(attrs[area].astype("float64"))
    attrs = attrs[ok]
    groups = {str(k): list(v.index) for k, v in attrs.groupby(region, sort=True)}
    groups["All basins"] = list(attrs.index)
    means, info = {}, {}
    for name, basins in groups.items():
        w = attrs.loc[basins, area].to_numpy(dtype="float64")
        values = frame[basins].to_numpy(dtype="float64")
        present = np.isfinite(values)
        covered = (present * w).sum(axis=1)
        mean = np.nansum(values * w, axis=1) / np.where(covered > 0, covered, np.nan)
        mean[covered < min_area_fraction * w.sum()] = np.nan
        means[name] = mean
        info[name] = {"basins": len(basins), "area_km2": float(w.sum())}
    return pd.DataFrame(means, index=frame.index), pd.DataFrame.from_dict(info, orient="index")


# --- water balance -------------------------------------------------------------------------------
def storage_change(frame, *, method: str = "central"):
    """Monthly storage change dS/dt (mm month-1) of a (time x basin) storage table.

    Parameters
    ----------
    frame : pandas.Series or pandas.DataFrame
        Storage (mm) on a regular monthly index; NaN = gap.
    method : {"central", "backward"}
        ``central``: (S_{t+1} - S_{t-1}) / 2, the change over month t when S is a monthly mean
        (Landerer et al. 2010, doi:10.1175/2010JHM1248.1); ``backward``: S_t - S_{t-1}.

    Returns
    -------
    Same type and shape, float64, mm month-1; NaN next to gaps and at the ends.

    Raises
    ------
    ValueError
        Unknown ``method``.
    """
    if method == "central":
        return ((frame.shift(-1) - frame.shift(1)) / 2.0).astype("float64")
    if method == "backward":
        return (frame - frame.shift(1)).astype("float64")
    raise ValueError(f"method must be 'central' or 'backward', found {method!r}")


def water_balance(
    storage: pd.DataFrame, net: pd.DataFrame, *, method: str = "central", min_n: int = 24
) -> pd.DataFrame:
    """dS/dt against P - ET - R per basin: correlation, ratio of variability, mean imbalance.

    Parameters
    ----------
    storage : pandas.DataFrame
        (time x basin) storage anomalies, mm (gaps NaN).
    net : pandas.DataFrame
        (time x basin) P - ET - R, mm month-1, same labels.
    method : str
        See :func:`storage_change`.
    min_n : int
        Basins with fewer valid months get NaN scores.

    Returns
    -------
    pandas.DataFrame
        Index basin: ``n`` (int), ``r`` (Pearson), ``std_ratio`` (std dS/dt / std (P-ET-R)),
        ``slope`` (least-squares dS/dt on P-ET-R), ``mean_imbalance`` (mean of P-ET-R - dS/dt,
        mm month-1: the closure error, positive when the fluxes add more water than storage gains),
        ``rmse`` (mm month-1).

    References
    ----------
    Rodell, M., et al. (2015): The observed state of the water cycle in the early twenty-first
    century. J. Climate 28, 8289-8318, doi:10.1175/JCLI-D-14-00555.1; Yin et al. (2023), basin water
    balance of 341 basins.
    """
    ds = storage_change(storage, method=method)
    net = net.reindex(index=ds.index, columns=ds.columns)
    rows = {}
    for basin in ds.columns:
        a, b = ds[basin].to_numpy(), net[basin].to_numpy()
        ok = np.isfinite(a) & np.isfinite(b)
        n = int(ok.sum())
        if n < max(min_n, 2):
            rows[basin] = {
                "n": n,
                "r": np.nan,
                "std_ratio": np.nan,
                "slope": np.nan,
                "mean_imbalance": np.nan,
                "rmse": np.nan,
            }
            continue
        a, b = a[ok], b[ok]
        sb = b.std()
        rows[basin] = {
            "n": n,
            "r": pearson_r(a, b),
            "std_ratio": float(a.std() / sb) if sb > 0 else np.nan,
            "slope": float(np.polyfit(b, a, 1)[0]) if sb > 0 else np.nan,
            "mean_imbalance": float(np.mean(b - a)),
            "rmse": float(np.sqrt(np.mean((b - a) ** 2))),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "station"
    return out.astype({"n": "int64"})


# --- uncertainty: the spread between the mascon solutions' reconstructions --------------------------
UNCERTAINTY_METHOD = "mascon_spread"
"""Key of :data:`products.methods.uncertainty.METHODS` the files and the run summary name."""
STANDARD_ERROR_SUFFIX = "_standard_error"


def standard_error_name(estimate: str) -> str:
    """``<estimate>_standard_error``: the name of an estimate's standard error in the published files."""
    return f"{estimate}{STANDARD_ERROR_SUFFIX}"


def series_name(solution: str, variant: str) -> str:
    """The storage series of a solution and variant: ``tws_jpl`` (anomaly) or ``tws_jpl_dd``."""
    return solution if variant == "anomaly" else f"{solution}_dd"


def members(names, suffix: str = "_rec") -> dict[str, list[str]]:
    """The members of each variant's ensemble: the names ending with ``suffix``, grouped by variant.

    Parameters
    ----------
    names : iterable of str
        Series names (``tws_jpl_rec``, ``tws_csr_dd_rec``, ``tws_jpl_cv``, ...); other names are ignored.
    suffix : str
        ``"_rec"`` (reconstructions) or ``"_cv"`` (held-out predictions).

    Returns
    -------
    dict
        ``"anomaly"`` / ``"dd"`` -> the member names in the order given (one per solution).
    """
    out: dict[str, list[str]] = {}
    for name in names:
        name = str(name)
        if name.endswith(suffix) and not name.endswith(STANDARD_ERROR_SUFFIX):
            variant = "dd" if name[: -len(suffix)].endswith("_dd") else "anomaly"
            out.setdefault(variant, []).append(name)
    return out


def _like(template, values: np.ndarray):
    if isinstance(template, pd.DataFrame):
        return pd.DataFrame(values, index=template.index, columns=template.columns)
    if isinstance(template, pd.Series):
        return pd.Series(values, index=template.index, name=template.name)
    return values


def mascon_spread(tables: Mapping, suffix: str = "_rec") -> dict:
    """Standard error of every reconstruction: the spread between the reconstructions of its variant
    trained on each mascon solution.

    The spread (:func:`products.methods.uncertainty.member_spread`: sample standard deviation,
    ddof=1; with two members ``|a - b| / sqrt(2)``) is the same for every member of a variant, and
    each member gets it under its own name, since each is a published estimate.

    Parameters
    ----------
    tables : mapping
        Series name -> values (pandas.Series, pandas.DataFrame or numpy.ndarray, mm), the members of a
        variant on the same labels (pandas objects are aligned on the first member's labels): the
        basin series (index (station, time)) or the region means (time x region).
    suffix : str
        Which members: ``"_rec"`` (reconstructions) or ``"_cv"`` (held-out predictions).

    Returns
    -------
    dict
        Member name -> its standard error, the type and labels of the first member, float64, mm;
        NaN where fewer than two members are finite. Variants with a single member are left out
        (no spread).
    """
    out = {}
    for names in members(tables, suffix).values():
        if len(names) < 2:
            continue
        first = tables[names[0]]
        stack_ = [
            tables[n].reindex_like(first) if isinstance(first, (pd.Series, pd.DataFrame)) else tables[n] for n in names
        ]
        spread = member_spread(np.stack([np.asarray(t, dtype="float64") for t in stack_]))
        for name in names:
            out[name] = _like(first, spread)
    return out


def _solutions(result: TwsResult) -> list[str]:
    return list(dict.fromkeys(result.cv.index.get_level_values("solution")))


def held_out_predictions(result: TwsResult, variant: str, split: str = HEADLINE_SPLIT) -> pd.DataFrame:
    """Out-of-fold predictions of every solution's model, side by side, with the spread between them.

    Returns
    -------
    pandas.DataFrame
        Index (station, time) over the rows any solution scored; one column per solution (its
        held-out prediction, mm, NaN where it was not scored) and ``spread`` (member spread, mm, NaN
        where fewer than two solutions were scored).

    Raises
    ------
    KeyError
        ``result`` holds no held-out predictions of ``variant`` and ``split``.
    """
    sims = {}
    for solution in _solutions(result):
        held = result.held_out[solution, variant, split]
        sims[solution] = pd.Series(held.sim, index=held.rows)
    frame = pd.DataFrame(sims)
    frame["spread"] = member_spread(frame[list(sims)].to_numpy().T)
    return frame


def _coverage_note(solution: str, split: str, what: str = "out-of-fold predictions") -> str:
    block, buffer = SPLITS[split]
    return (
        f"{what} of the {solution} model for blocks of {block} year(s) held out "
        f"({buffer}-year buffer), each with the spread between the out-of-fold predictions of the models trained "
        f"on each mascon solution, against the GRACE {solution.split('_')[-1].upper()} anomalies of those years "
        "under the statistics of each fold's training years; no observation error assumed"
    )


def held_out_coverage(
    result: TwsResult, solution: str, variant: str, *, split: str = HEADLINE_SPLIT, nominal: float = NOMINAL
) -> Coverage:
    """Coverage of ``estimate +- z * spread`` at the held-out basin-months of one solution's model.

    The estimate is the out-of-fold prediction of ``solution``'s model, the standard error the
    spread between the out-of-fold predictions of every solution's model for the same basin-month
    (:func:`held_out_predictions`), the observation ``solution``'s GRACE anomaly under the fold's
    statistics (:attr:`HeldOut.obs`): nothing here was fitted on the month it scores.

    Parameters
    ----------
    result : TwsResult
        With held-out predictions of at least two solutions.
    solution : str
    variant : {"anomaly", "dd"}
    split : str
        A key of :data:`SPLITS` (default the headline, ``year_block_held_out``).
    nominal : float in (0, 1)
        Central interval whose coverage is counted (0.90).

    Returns
    -------
    products.methods.uncertainty.Coverage
        Over the basin-months where the prediction, the spread and the observation are finite.
    """
    held = result.held_out[solution, variant, split]
    spread = held_out_predictions(result, variant, split)["spread"].reindex(held.rows).to_numpy()
    return interval_coverage(
        held.sim, spread, held.obs, nominal=nominal, split=split, note=_coverage_note(solution, split)
    )


def held_out_region_coverage(
    result: TwsResult,
    attributes: pd.DataFrame,
    solution: str,
    variant: str,
    *,
    split: str = HEADLINE_SPLIT,
    min_area_fraction: float = 0.9,
    nominal: float = NOMINAL,
) -> Coverage:
    """Coverage of the region means' ``estimate +- z * spread`` at the held-out months.

    The out-of-fold predictions of every solution's model and ``solution``'s fold targets are
    averaged over the basins of each region as the published region means are (:func:`region_means`,
    area-weighted, ``min_area_fraction``); the standard error is the spread between the solutions'
    region means (the method of the published region files), the estimate ``solution``'s region
    mean, the observation the region mean of its GRACE anomalies under each fold's statistics.
    Every region series of the file counts, ``All basins`` included.

    Parameters
    ----------
    result : TwsResult
    attributes : pandas.DataFrame
        Index basin; ``continent`` (str) and ``area_km2`` (km2), as for :func:`region_means`.
    solution, variant, split, nominal
        As for :func:`held_out_coverage`.
    min_area_fraction : float
        As for :func:`region_means` (the run's value).

    Returns
    -------
    products.methods.uncertainty.Coverage
        Over the region-months where all three are finite.
    """
    stations = sorted(result.series.index.get_level_values("station").unique())
    times = result.series.index.get_level_values("time").unique().sort_values()

    def wide(values, rows) -> pd.DataFrame:
        table = pd.Series(values, index=rows).unstack("station")
        return table.reindex(index=times, columns=stations)

    means = {}
    for s in _solutions(result):
        held = result.held_out[s, variant, split]
        means[s], _ = region_means(wide(held.sim, held.rows), attributes, min_area_fraction=min_area_fraction)
    held = result.held_out[solution, variant, split]
    observed, _ = region_means(wide(held.obs, held.rows), attributes, min_area_fraction=min_area_fraction)
    estimate = means[solution]
    spread = member_spread(np.stack([means[s].reindex_like(estimate).to_numpy() for s in means]))
    note = _coverage_note(solution, split, "area-weighted region means of the out-of-fold predictions")
    return interval_coverage(
        estimate.to_numpy(),
        spread,
        observed.reindex_like(estimate).to_numpy(),
        nominal=nominal,
        split=split,
        note=note + "; every region series of the file, All basins included",
    )


def uncertainty_comment(calibration: Coverage | None, estimate_members=(), *, reason: str = "") -> str:
    """The sentences appended to the standard error's ``comment``: the members, the measured coverage
    (:func:`products.methods.uncertainty.calibration_comment`) and what the measurement says.

    Parameters
    ----------
    calibration : Coverage or None
        None: not measured, ``reason`` says why.
    estimate_members : sequence of str
        The reconstructions whose spread it is.
    """
    parts = []
    if estimate_members:
        parts.append(f"Members: {', '.join(estimate_members)} (with two members the spread is |a - b| / sqrt(2))")
    if calibration is None:
        parts.append(calibration_comment(None, reason or "no held-out predictions were given"))
        return ". ".join(parts)
    parts.append(calibration_comment(calibration))
    if calibration.n:
        if calibration.calibrated:
            verdict = "within the tolerance"
        elif calibration.too_narrow:
            verdict = "too narrow: the interval understates the reconstruction's error"
        else:
            verdict = "too wide: the interval overstates the reconstruction's error"
        parts.append(
            "The spread shows only how much the reconstructions trained on the mascon solutions disagree, not the "
            f"model's own error: at the same held-out months the RMSE against GRACE is {calibration.rmse:.1f} mm "
            f"and the mean standard error {calibration.mean_standard_error:.1f} mm ({verdict}). The published "
            "standard error is the spread of the final models (all GRACE months); its calibration is that of the "
            "same spread between the out-of-fold models"
        )
    return ". ".join(parts)


def _with_standard_errors(
    frame: pd.DataFrame,
    variables: dict,
    calibration: Mapping[str, Coverage | None] | None,
    reason: str,
) -> tuple[pd.DataFrame, dict, list[str]]:
    """Add ``<estimate>_standard_error`` columns (float32) and their CF attributes after each reconstruction."""
    columns = [c for c in frame.columns if c in variables]
    spread = mascon_spread({c: frame[c] for c in columns})
    groups = members(columns)
    out_vars: dict = {}
    added = []
    new_columns = {}
    for name, attrs in variables.items():
        out_vars[name] = attrs
        if name not in spread:
            continue
        se = standard_error_name(name)
        group = next(g for g in groups.values() if name in g)
        cov = (calibration or {}).get(name)
        out_vars[se] = {
            **standard_error_attributes(
                attrs,
                method=UNCERTAINTY_METHOD,
                extra=uncertainty_comment(cov, group, reason=reason),
            ),
            "_FillValue": np.float32(np.nan),
        }
        new_columns[se] = spread[name].astype("float32")
        added.append(name)
    return frame.assign(**new_columns), out_vars, added


# --- CF output --------------------------------------------------------------------------------
def _long_name(name: str) -> str:
    solution = name.split("_")[1].upper()
    what = (
        "detrended and deseasonalised terrestrial water storage anomaly"
        if "_dd" in name
        else "terrestrial water storage anomaly relative to the 2004.0-2009.999 mean"
    )
    if name.endswith("_rec"):
        return f"{what}, LightGBM reconstruction trained on GRACE {solution} mascons"
    if name.endswith("_cv"):
        return (
            f"{what}, LightGBM prediction for blocks of {BLOCK_YEARS} years held out of training with a "
            f"{BUFFER_YEARS}-year buffer, relative to the statistics of its fold's training years "
            f"(GRACE {solution} mascons)"
        )
    return f"{what}, GRACE/GRACE-FO {solution} mascons (basin mean; gaps kept)"


def _storage_attrs(name: str) -> dict:
    return {
        "long_name": _long_name(name),
        "units": TWS_UNITS,
        "coverage_content_type": "modelResult" if name.endswith(("_rec", "_cv")) else "physicalMeasurement",
        "comment": "liquid water equivalent thickness; 1 mm = 1 kg m-2. No CF standard name fits: "
        "land_water_amount is the absolute terrestrial water storage, and the CF table has no "
        "name for its anomaly from a baseline.",
    }


def to_cf_basins(
    result: TwsResult,
    attributes: pd.DataFrame | None = None,
    *,
    data_kind: str = DataKind.REAL,
    attrs: Mapping | None = None,
    calibration: Mapping[str, Coverage | None] | None = None,
) -> xr.Dataset:
    """CF-1.8 ``timeSeries`` of the basin series: observed, reconstructed and held-out storage anomalies,
    and the standard error of each reconstruction.

    Parameters
    ----------
    result : TwsResult
    attributes : pandas.DataFrame, optional
        Index basin; ``continent`` (str) and ``area_km2`` (float) become auxiliary variables.
    data_kind : str
        A :class:`products.data_kind.DataKind` (global attribute).
    attrs : mapping, optional
        Global attributes added last; None values dropped.
    calibration : mapping, optional
        Reconstruction name (``tws_jpl_rec``) -> its measured :class:`~products.methods.uncertainty.Coverage`
        (written in the standard error's comment); default :func:`held_out_coverage` of each, at the
        headline split.

    Returns
    -------
    xarray.Dataset
        Dims (station, time): every storage column of ``result.series`` (float64, mm, NaN fill);
        ``<reconstruction>_standard_error`` after each reconstruction (float32, mm, NaN fill: the
        spread between the reconstructions of the same variant trained on each mascon solution,
        :func:`mascon_spread`; named in the reconstruction's ``ancillary_variables``; absent with a
        single solution); ``station_name`` (cf_role timeseries_id), ``continent``, ``area`` (km2),
        ``time`` (month start, bounds ``time_bnds``). Basins carry no coordinates in the source: no lat/lon.

    References
    ----------
    CF Conventions 1.8, section 9 (featureType timeSeries).
    """
    frame = result.series[[c for c in result.series.columns if c != "net"]].reset_index()
    stations: pd.DataFrame | None = None
    auxiliary: dict[str, dict] | None = None
    if attributes is not None:  # descriptors of each basin: auxiliary coordinates of the series (CF 9)
        names = np.sort(frame["station"].unique())
        a = attributes.reindex(names)
        stations = pd.DataFrame(
            {
                "station": names,
                "continent": a["continent"].fillna("").astype(str).to_numpy(object),
                "area": a["area_km2"].to_numpy(dtype="float64"),
            }
        )
        auxiliary = {
            "continent": {
                "long_name": "GRDC region of the basin (basins.dbf CONTINENT)",
                "coverage_content_type": "auxiliaryInformation",
            },
            "area": {
                "long_name": "basin area (basins.dbf RASTAREA)",
                "units": "km2",
                "coverage_content_type": "auxiliaryInformation",
                "_FillValue": np.nan,
            },
        }
    base: dict[str, object] = {
        "data_kind": data_kind,
        "title": "Terrestrial water storage anomalies over GRDC major river basins: GRACE mascons and their "
        "LightGBM reconstruction",
        "source": f"LightGBM {lightgbm.__version__}; predictors P, ET, R ({', '.join(result.predictors.values())}), "
        f"features {', '.join(result.features)}",
        "baseline": f"{BASELINE[0]}/{BASELINE[1]}",
        "comment": "Anomalies relative to the baseline mean of each calendar month present; *_rec are "
        "reconstructions over the predictors' span, *_cv predictions for blocks of "
        f"{BLOCK_YEARS} years held out of training ({BUFFER_YEARS}-year buffer on either side; baseline mean, "
        "climatology and trend fitted on the training years of each fold), *_dd the detrended and "
        "deseasonalised variants. GRDC basins carry no "
        "coordinates in the source tables, so the file has no latitude/longitude.",
        "references": REFERENCES,
        "history": history_line("products.generators.tws_rec"),
    }
    for (solution, variant, split), row in result.cv.iterrows():
        base[f"{solution}_{variant}_{split}_nse"] = float(row["nse"])
        base[f"{solution}_{variant}_{split}_r"] = float(row["r"])
    variables = {name: _storage_attrs(name) for name in frame.columns if name not in ("station", "time")}
    if calibration is None and len(_solutions(result)) > 1:
        calibration = {
            f"{series_name(s, v)}_rec": held_out_coverage(result, s, v)
            for s in _solutions(result)
            for v in VARIANTS
            if (s, v, HEADLINE_SPLIT) in result.held_out
        }
    frame, variables, estimates = _with_standard_errors(
        frame, variables, calibration, "no held-out predictions of every solution"
    )
    if estimates:
        base["comment"] = str(base["comment"]) + (
            " *_rec_standard_error: the spread between the reconstructions trained on each mascon solution "
            "(it shows how much the solutions disagree, not the model's error; the measured coverage of its "
            "interval at held-out year blocks is in its comment)."
        )
    ds = cf.timeseries_dataset(
        frame,
        variables,
        stations=stations,
        auxiliary=auxiliary,
        id_attrs={"long_name": "GRDC major river basin"},
        time_attrs={"long_name": "start of the month"},
        time_step="MS",
        attrs=merge_attrs(base, merge_attrs(attrs)),
    )
    for name in estimates:
        link_ancillary(ds, name, standard_error_name(name))
    return ds


def to_cf_regions(
    means: Mapping[str, pd.DataFrame],
    regions: pd.DataFrame,
    *,
    data_kind: str = DataKind.REAL,
    attrs: Mapping | None = None,
    calibration: Mapping[str, Coverage | None] | None = None,
) -> xr.Dataset:
    """CF-1.8 ``timeSeries`` of region means, one variable per storage series, and the standard error of
    each reconstruction's region mean.

    Parameters
    ----------
    means : mapping
        Variable name -> (time x region) DataFrame (mm), e.g. from :func:`region_means`.
    regions : pandas.DataFrame
        Per region ``basins`` and ``area_km2``.
    calibration : mapping, optional
        Reconstruction name -> its measured coverage (:func:`held_out_region_coverage`), written in
        the standard error's comment; missing ones are said to be not measured.

    Returns
    -------
    xarray.Dataset
        Dims (region, time): one float64 variable (mm) per entry of ``means``;
        ``<reconstruction>_standard_error`` after each reconstruction (float32, mm: the spread between
        the region means of the reconstructions of the same variant trained on each mascon solution,
        :func:`mascon_spread`; named in its ``ancillary_variables``); ``region_name``
        (cf_role timeseries_id), ``n_basins``, ``basin_area`` (km2).
    """
    names = list(regions.index)
    frame = pd.concat(
        {name: table.reindex(columns=names).stack(future_stack=True) for name, table in means.items()}, axis=1
    )
    frame.index.names = ["time", "region"]
    stations = pd.DataFrame(
        {
            "region": names,
            "n_basins": regions["basins"].to_numpy(dtype="int32"),
            "basin_area": regions["area_km2"].to_numpy(dtype="float64"),
        }
    )
    variables = {
        name: {**_storage_attrs(name), "cell_methods": "area: mean (area-weighted over the region's basins)"}
        for name in means
    }
    auxiliary = {  # descriptors of each region: auxiliary coordinates of the series (CF 9)
        "n_basins": {
            "long_name": "number of basins averaged",
            "units": "1",
            "coverage_content_type": "auxiliaryInformation",
        },
        "basin_area": {
            "long_name": "total area of the basins averaged",
            "units": "km2",
            "coverage_content_type": "auxiliaryInformation",
        },
    }
    base = {
        "data_kind": data_kind,
        "title": "Area-weighted regional means of terrestrial water storage anomalies over GRDC basins",
        "comment": "means over the basin-covered part of each region only, not the whole region",
        "references": REFERENCES,
        "history": history_line("products.generators.tws_rec"),
    }
    frame, variables, estimates = _with_standard_errors(
        frame.reset_index(), variables, calibration, "no held-out region means were given"
    )
    if estimates:
        base["comment"] += (
            "; *_rec_standard_error: the spread between the region means of the reconstructions trained on each "
            "mascon solution (how much the solutions disagree, not the model's error; its measured coverage at "
            "held-out year blocks is in its comment)"
        )
    ds = cf.timeseries_dataset(
        frame,
        variables,
        stations=stations,
        station_col="region",
        instance_dim="region",
        id_attrs={"long_name": "GRDC region (basins.dbf CONTINENT)"},
        auxiliary=auxiliary,
        time_attrs={"long_name": "start of the month"},
        time_step="MS",
        attrs=merge_attrs(base, attrs),
    )
    for name in estimates:
        link_ancillary(ds, name, standard_error_name(name))
    return ds


# --- gridded path (mascon-layout cubes) -------------------------------------------------------------
def _month_starts(times) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(times)).to_period("M").to_timestamp()


def _cells(da: xr.DataArray, lat: slice, lon: slice, times: pd.DatetimeIndex) -> pd.DataFrame:
    """(time x cell) DataFrame of a (time, lat, lon) window, rows on ``times`` (month starts)."""
    values = np.asarray(da.isel(lat=lat, lon=lon).values, dtype="float64")
    frame = pd.DataFrame(values.reshape(values.shape[0], -1), index=_month_starts(da["time"].values))
    return frame.groupby(level=0).mean().reindex(times)


def grid_features(
    window: Window,
    *,
    p: xr.DataArray,
    et: xr.DataArray,
    r: xr.DataArray,
    times: pd.DatetimeIndex,
    baseline: tuple[str, str] = BASELINE,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the valid cells of one (all-months x lat x lon) window: ``features`` of apply_chunked.

    Parameters
    ----------
    window : Window
        Must span the whole time axis (the filters need each cell's history).
    p, et, r : xarray.DataArray
        (time, lat, lon) mm month-1 on the output grid (read lazily, window by window).
    times : pandas.DatetimeIndex
        Output months (month starts).
    mask : numpy.ndarray, optional
        bool (lat, lon): cells to predict (land); default all.

    Returns
    -------
    matrix : numpy.ndarray
        float64 (n_valid, len(FEATURES)).
    valid : numpy.ndarray
        bool ``window.shape``: cell in ``mask`` with P, ET and R present.

    Raises
    ------
    ValueError
        The window does not span the whole time axis.
    """
    if window.time.start != 0 or window.time.stop != len(times):
        raise ValueError("grid windows must span the whole time axis (the features need each cell's history)")
    tables = [_cells(da, window.lat, window.lon, times) for da in (p, et, r)]
    features = flux_features(*tables, baseline=baseline)
    valid = np.isfinite(np.stack([t.to_numpy() for t in tables])).all(axis=0).reshape(window.shape)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)[window.lat, window.lon][None, :, :]
    matrix = np.column_stack([features[name].to_numpy().reshape(window.shape)[valid] for name in FEATURES])
    return matrix, valid


def _predict(matrix: np.ndarray, *, model: lightgbm.LGBMRegressor) -> np.ndarray:
    return model.predict(pd.DataFrame(matrix, columns=list(FEATURES), copy=False))


def mascon_mm(mascon: xr.Dataset, *, apply_scale_factor: bool = True) -> xr.DataArray:
    """``lwe_thickness`` of a JPL mascon dataset in mm (x 10 from cm), gain factors applied where present.

    Parameters
    ----------
    mascon : xarray.Dataset
        From :func:`ingestion.readers.grace.open_grid` (``lwe_thickness`` in cm, optional
        ``scale_factor``).

    Returns
    -------
    xarray.DataArray
        (time, lat, lon) float64 mm, ``time`` as month starts.

    Raises
    ------
    ValueError
        ``lwe_thickness`` is not in cm or mm.

    References
    ----------
    Watkins et al. (2015); Wiese et al. (2016), doi:10.1002/2016WR019344 (CLM4 gain factors).
    """
    lwe = mascon["lwe_thickness"]
    units = lwe.attrs.get("units")
    if units not in ("cm", "mm"):
        raise ValueError(f"lwe_thickness: units {units!r}, expected cm or mm")
    out = lwe.astype("float64") * (10.0 if units == "cm" else 1.0)
    if apply_scale_factor and "scale_factor" in mascon:
        out = out * mascon["scale_factor"]
    return out.assign_coords(time=_month_starts(out["time"].values).to_numpy())


def reconstruct_grid(
    mascon: xr.Dataset,
    p: xr.DataArray,
    et: xr.DataArray,
    r: xr.DataArray,
    out_path: str | os.PathLike,
    *,
    variant: str = "anomaly",
    baseline: tuple[str, str] = BASELINE,
    chunk: tuple[int, int] = (32, 32),
    max_training_rows: int = 200_000,
    params: Mapping | None = None,
    seed: int = 42,
    data_kind: str = DataKind.REAL,
    attrs: Mapping | None = None,
    workers: int = 1,
    client: Client | str | None = None,
) -> dict:
    """The TWS reconstruction on a mascon-layout grid, trained on its GRACE months and written chunk by chunk.

    Parameters
    ----------
    mascon : xarray.Dataset
        JPL mascon layout as :func:`ingestion.readers.grace.open_grid` returns it: ``lwe_thickness``
        (time, lat, lon) in cm relative to 2004.0-2009.999, optional ``land_mask`` and ``scale_factor``.
    p, et, r : xarray.DataArray
        (time, lat, lon) monthly precipitation, ET and runoff, mm month-1, on the mascon's lat/lon grid;
        their time axis is the output's (the reconstruction span).
    out_path : str or os.PathLike
        NetCDF-4 file (written atomically by :func:`products.methods.chunked.apply_chunked`).
    variant : {"anomaly", "dd"}
        Target: the baseline anomaly, or its detrended and deseasonalised form.
    chunk : (int, int)
        Window (lat, lon) cells; every window spans all months.
    max_training_rows : int
        Training cell-months sampled (seeded) from the GRACE months of land cells.
    params, seed : LightGBM parameters and random state.
    data_kind : str
        A :class:`products.data_kind.DataKind` (global attribute).
    workers, client
        Where the windows are predicted (:func:`products.methods.chunked.apply_chunked`): in this
        process (default), ``workers`` local processes, or a Dask cluster (``"local"``, a scheduler
        address or a ``distributed.Client``). Same output everywhere.

    Returns
    -------
    dict
        ``path``, ``training_rows``, ``in_sample`` (:func:`products.methods.metrics.summary` of the
        fitted model on its training rows, mm), ``windows``, ``valid_cells``.

    Raises
    ------
    ValueError
        Grids differ, no overlapping GRACE and predictor months, or a bad ``variant``.

    References
    ----------
    Yin et al. (2023); Humphrey & Gudmundsson (2019); Watkins et al. (2015).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, found {variant!r}")
    tws = mascon_mm(mascon)
    for da in (p, et, r):
        for c in ("lat", "lon"):
            if da[c].size != tws[c].size or not np.allclose(da[c].values, tws[c].values, atol=1e-6):
                raise ValueError(f"predictor {da.name!r}: {c} differs from the mascon grid")
    times = pd.DatetimeIndex(sorted(set(_month_starts(p["time"].values))))
    shape = (len(times), tws["lat"].size, tws["lon"].size)
    mask = (np.asarray(mascon["land_mask"].values) > 0.5) if "land_mask" in mascon else None
    full = Window(0, slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    # Training rows: every land cell's GRACE months (the cube is small enough per window; sample rows).
    rows_x, rows_y = [], []
    for w in _windows_all_time(shape, chunk):
        matrix, valid = grid_features(w, p=p, et=et, r=r, times=times, baseline=baseline, mask=mask)
        target = _cells(tws, w.lat, w.lon, times)
        target = variants(target, baseline=baseline)[variant].to_numpy().reshape(w.shape)
        y = target[valid]
        keep = np.isfinite(y)
        rows_x.append(matrix[keep])
        rows_y.append(y[keep])
    x, y = np.concatenate(rows_x), np.concatenate(rows_y)
    if not len(y):
        raise ValueError("no month with both GRACE storage and predictors")
    rng = np.random.default_rng(seed)
    if len(y) > max_training_rows:
        pick = np.sort(rng.choice(len(y), max_training_rows, replace=False))
        x, y = x[pick], y[pick]
    model = lightgbm.LGBMRegressor(**model_parameters(params, seed)).fit(pd.DataFrame(x, columns=list(FEATURES)), y)
    in_sample = summary(_predict(x, model=model), y, anomaly=True)
    name = "tws_rec" if variant == "anomaly" else "tws_dd_rec"
    spec = GridSpec(
        name=name,
        time=times.to_numpy().astype("datetime64[ns]"),
        lat=tws["lat"].values,
        lon=tws["lon"].values,
        attrs={
            **_storage_attrs(f"tws_grace{'_dd' if variant == 'dd' else ''}_rec"),
            "cell_methods": "area: mean (mascon cells)",
        },
        time_bounds=np.stack([times.to_numpy(), (times + pd.offsets.MonthBegin(1)).to_numpy()], axis=1).astype(
            "datetime64[ns]"
        ),
        global_attrs=merge_attrs(
            {
                "Conventions": CONVENTIONS,
                "data_kind": data_kind,
                "title": "Terrestrial water storage anomaly reconstructed on a mascon grid (LightGBM)",
                "source": f"LightGBM {lightgbm.__version__} trained on the GRACE months of the mascon cube "
                f"({len(y)} cell-months), features {', '.join(FEATURES)}",
                "baseline": f"{baseline[0]}/{baseline[1]}",
                "variant": variant,
                "in_sample_nse": float(in_sample["nse"]),
                "in_sample_r": float(in_sample["r"]),
                "references": REFERENCES,
                "history": history_line("products.generators.tws_rec"),
            },
            attrs,
        ),
    )
    features = functools.partial(grid_features, p=p, et=et, r=r, times=times, baseline=baseline, mask=mask)
    with atomic_path(out_path) as tmp:
        stats = apply_chunked(
            features,
            functools.partial(_predict, model=model),
            spec,
            tmp,
            chunk=(full.shape[0], *chunk),
            workers=workers,
            client=client,
        )
        cf.complete_grid_file(tmp, time_step="MS")  # bounds, crs grid mapping, ACDD extents
    return {
        "path": Path(out_path),
        "training_rows": int(len(y)),
        "in_sample": in_sample,
        "windows": stats.n_windows,
        "valid_cells": stats.n_valid,
    }


def _windows_all_time(shape, chunk):
    return windows(shape, (shape[0], *chunk))
