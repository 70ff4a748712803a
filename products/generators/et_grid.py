"""ET fusion, gridded path: daily ET maps from a gridded forcing cube, chunk by chunk (no Django).

The model of :mod:`products.generators.et_fusion` (LightGBM on tmin, tmax, ssrd, vpd, precip,
month_sin, month_cos, lat) is applied to every land cell of a (time, lat, lon) forcing cube with
:func:`products.methods.chunked.apply_chunked`: each window of the output grid reads only its own
forcing, derives the daily drivers (:func:`daily_drivers`), predicts and is written into a CF-1.8
NetCDF-4 grid. A global 0.1 degree daily run is more windows (and more workers), not more memory.

Forcing (default names: GLDAS-2.1 Noah 0.25 degree 3-hourly, :data:`GLDAS_FORCING`): near-surface
air temperature (K), downward shortwave radiation (W m-2), total precipitation rate (kg m-2 s-1),
specific humidity (kg kg-1) and surface pressure (Pa). Steps are grouped by the UTC calendar date of
their time stamps; each date gives one output day:

- tmin, tmax = min / max of the day's air temperature steps - 273.15 (degC). From 3-hourly
  instantaneous values, so the daily range is somewhat underestimated;
- ssrd = mean shortwave x 0.0864 (W m-2 -> MJ m-2 d-1);
- precip = mean precipitation rate x 86400 (kg m-2 s-1 -> mm d-1);
- vpd = mean over the steps of max(e_s(T) - e_a, 0) x 10 (kPa -> hPa), e_s from
  :func:`products.generators.et_fusion.saturation_vapour_pressure` (FAO-56 eq. 11) and the actual
  vapour pressure e_a = q p / (0.622 + 0.378 q) from specific humidity q and surface pressure p;
- month_sin, month_cos from the date (:func:`products.generators.et_fusion.add_calendar_features`);
  lat = the cell's latitude (degrees_north).

A cell is predicted where every forcing value of the day is finite (GLDAS leaves ocean, inland
water and Antarctica missing); elsewhere the output holds ``_FillValue``.

Caveat of the method, not of the code: the model learns *monthly mean* ET from *monthly mean*
tower drivers; applied to one day's drivers it gives the ET rate a month with such drivers would
have, which smooths day-to-day variability (e.g. the day after rain). The output says so in its
``comment`` attribute.

References
----------
Xu et al. (2025), Agric. For. Meteorol. 372, 110645 (method); Ke et al. (2017), LightGBM, NeurIPS 30.
Rodell, M., et al. (2004): The Global Land Data Assimilation System. Bull. Amer. Meteor. Soc. 85,
381-394, doi:10.1175/BAMS-85-3-381; Beaudoing & Rodell, GLDAS Noah L4 3-hourly 0.25 degree V2.1,
doi:10.5067/E7TYRXPJKWOQ.
Allen, R. G., et al. (1998): FAO Irrigation and Drainage Paper 56, eq. 11 (saturation vapour pressure).
Wallace, J. M., Hobbs, P. V. (2006): Atmospheric Science, 2nd ed., section 3.1 (specific humidity and
vapour pressure, epsilon = 0.622).
CF Conventions 1.8; CF standard name table (``water_evapotranspiration_flux``, canonical units
kg m-2 s-1: any physically equivalent units are allowed, here kg m-2 d-1 = mm d-1 of water).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import lightgbm
import numpy as np
import pandas as pd
import xarray as xr

from ingestion.readers.base import ReaderError
from ingestion.readers.grids import open_any
from ingestion.readers.units import normalise_units
from products.generators.et_fusion import (
    FEATURES,
    REFERENCES,
    add_calendar_features,
    predict,
    predict_standard_error,
    saturation_vapour_pressure,
)
from products.methods import cf
from products.methods.chunked import (
    FILL_VALUE,
    ComputeFunction,
    GridSpec,
    ReadFunction,
    Window,
    create_output,
    float_grid_variable,
    predict_given,
    run_windows,
    windows,
)
from products.methods.files import atomic_path
from products.methods.uncertainty import (
    Coverage,
    calibration_comment,
    interval_coverage,
    link_ancillary,
    quantile_standard_error,
    standard_error_attributes,
)

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from products.methods.compiled_trees import CompiledTrees

# driver role -> GLDAS-2.1 variable name; Rainf_f_tavg is total precipitation (Rainf_tavg: rain only)
GLDAS_FORCING = {
    "tair": "Tair_f_inst",
    "swdown": "SWdown_f_tavg",
    "rainf": "Rainf_f_tavg",
    "qair": "Qair_f_inst",
    "psurf": "Psurf_f_inst",
}
FORCING_UNITS = {"tair": "K", "swdown": "W m-2", "rainf": "kg m-2 s-1", "qair": "kg kg-1", "psurf": "Pa"}
EPSILON = 0.622  # ratio of the gas constants of dry air and water vapour
# Which model makes the grid (the page and the file say so): the tower model, not the stage-2 fusion.
GRID_MODEL = (
    "the five-driver LightGBM tower model (products.generators.et_fusion.run, final model: tmin, tmax, ssrd, "
    "vpd, precip, month_sin, month_cos, lat), fitted on the training months of the CARDAMOM-FluxVal towers; "
    "not the stage-2 fusion, whose inputs (the ECOSTRESS ET products) are not gridded here"
)
DAY_DEFINITION = (
    "days are UTC calendar days of the forcing time stamps (00:00 to 24:00 UTC), not local solar days: "
    "away from the prime meridian a day's mean mixes parts of two local days"
)
ET_ATTRS = {
    "standard_name": "water_evapotranspiration_flux",
    "units": "kg m-2 d-1",
    "long_name": "evapotranspiration predicted by the five-driver LightGBM tower model from gridded forcing",
    "cell_methods": "time: mean",
    "comment": "daily mean rate over a UTC calendar day (not a local solar day); 1 kg m-2 d-1 = 1 mm d-1 of "
    "liquid water. The model was trained on monthly means of tower drivers and ET and is applied here to one "
    "day's drivers.",
}
SE_NAME = "et_standard_error"
SE_METHOD = "quantile_regression"
SE_TEXT = (
    "From the final quantile pair (LightGBM quantile models at {0:g} and {1:g} with the point model's parameters, "
    "fitted on the training months of all towers), applied to the same daily drivers chunk by chunk like et"
)
REFERENCES_GRID = (
    REFERENCES + "; GLDAS: Rodell et al. (2004), Bull. Amer. Meteor. Soc. 85, 381-394, "
    "doi:10.1175/BAMS-85-3-381; vapour pressure: FAO-56 eq. 11 (Allen et al. 1998)"
)


def vapour_pressure(q, p):
    """Actual vapour pressure from specific humidity and air pressure, e = q p / (0.622 + 0.378 q).

    Parameters
    ----------
    q : array_like
        Specific humidity, kg kg-1.
    p : array_like
        Air pressure, Pa.

    Returns
    -------
    numpy.ndarray
        Vapour pressure, Pa (same shape).

    References
    ----------
    Wallace & Hobbs (2006), Atmospheric Science, eq. 3.57 with w = q / (1 - q).
    """
    q = np.asarray(q, dtype="float64")
    return q * np.asarray(p, dtype="float64") / (EPSILON + (1.0 - EPSILON) * q)


def daily_drivers(tair, swdown, rainf, qair, psurf, day_starts) -> dict[str, np.ndarray]:
    """Daily model drivers from sub-daily forcing steps.

    Parameters
    ----------
    tair, swdown, rainf, qair, psurf : numpy.ndarray
        (n_steps, ...) float: air temperature (K), downward shortwave (W m-2), precipitation rate
        (kg m-2 s-1), specific humidity (kg kg-1), surface pressure (Pa); NaN where missing.
    day_starts : sequence of int
        Index of the first step of each day along axis 0 (strictly increasing, first 0); day k
        is steps ``day_starts[k]`` up to the next start (or the end).

    Returns
    -------
    dict of numpy.ndarray
        float64, (n_days, ...): ``tmin``, ``tmax`` (degC), ``ssrd`` (MJ m-2 d-1), ``vpd`` (hPa),
        ``precip`` (mm d-1). NaN wherever a step of that day is missing.

    Raises
    ------
    ValueError
        Arrays of different shapes, or bad ``day_starts``.

    References
    ----------
    Allen et al. (1998), FAO-56 eq. 11 (:func:`products.generators.et_fusion.saturation_vapour_pressure`).
    """
    arrays = [np.asarray(a, dtype="float64") for a in (tair, swdown, rainf, qair, psurf)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim < 1:
        raise ValueError(f"forcing arrays must share one shape (n_steps, ...), found {[a.shape for a in arrays]}")
    tair, swdown, rainf, qair, psurf = arrays
    starts = np.asarray(day_starts, dtype="intp")
    n_steps = tair.shape[0]
    if starts.ndim != 1 or starts.size == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= n_steps:
        raise ValueError(f"day_starts must start at 0 and increase strictly below {n_steps}, found {starts.tolist()}")
    counts = np.diff(np.append(starts, n_steps)).reshape(-1, *([1] * (tair.ndim - 1)))
    t_degc = tair - 273.15
    vpd_steps = np.maximum(  # np.maximum propagates NaN (missing steps stay missing)
        saturation_vapour_pressure(t_degc) - vapour_pressure(qair, psurf) / 1000.0, 0.0
    )
    ends = np.append(starts[1:], n_steps)

    def per_day(ufunc):  # ufunc.reduce per day: the values of reduceat for min/max, ~20 x quicker along axis 0
        return np.stack([ufunc.reduce(t_degc[s:e], axis=0) for s, e in zip(starts, ends, strict=True)])

    return {
        "tmin": per_day(np.minimum),
        "tmax": per_day(np.maximum),
        "ssrd": np.add.reduceat(swdown, starts, axis=0) / counts * 0.0864,
        "vpd": np.add.reduceat(vpd_steps, starts, axis=0) / counts * 10.0,
        "precip": np.add.reduceat(rainf, starts, axis=0) / counts * 86400.0,
    }


class ForcingCube:
    """Sub-daily forcing on one (lat, lon) grid, possibly spread over several files (one per step).

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
        Each with the variables named in ``variables`` on dims (time, lat, lon), lazily opened
        (e.g. :func:`ingestion.readers.grids.open_any` of GLDAS files or of their cubes, see
        ``ingestion.services.cube_for``); same ``lat``/``lon``; times increasing across them.
    variables : mapping
        Driver role (keys of :data:`FORCING_UNITS`) -> variable name.

    Attributes
    ----------
    times : numpy.ndarray
        datetime64[ns], all steps in order.
    lat, lon : numpy.ndarray
        float64 axes.
    sources : list of str
        Source file names (for the output's ``source`` attribute).

    Raises
    ------
    ReaderError
        A missing variable (field = its name), units other than :data:`FORCING_UNITS`
        (field ``<name>.units``), other dims, a different grid, or times not strictly increasing.
    """

    def __init__(self, datasets: Sequence[xr.Dataset], variables: Mapping[str, str] = GLDAS_FORCING):
        if not datasets:
            raise ValueError("forcing: no dataset given")
        missing_roles = set(FORCING_UNITS) - set(variables)
        if missing_roles:
            raise ValueError(f"variables: no name for {sorted(missing_roles)} (needed: {', '.join(FORCING_UNITS)})")
        self.datasets, self.variables = list(datasets), dict(variables)
        self.sources = [_source(ds) for ds in self.datasets]
        first = self.datasets[0]
        for ds, source in zip(self.datasets, self.sources, strict=True):
            absent = [name for name in self.variables.values() if name not in ds.variables]
            if absent:
                raise ReaderError(
                    source,
                    f"no forcing variable {absent} (the ET grid needs {', '.join(self.variables.values())}); "
                    f"found {sorted(map(str, ds.data_vars))}",
                    field=absent[0],
                )
            for role, name in self.variables.items():
                var = ds[name]
                if var.dims != ("time", "lat", "lon"):
                    raise ReaderError(source, f"expected dims (time, lat, lon), found {var.dims}", field=name)
                units = normalise_units(var.attrs.get("units"))
                if units != FORCING_UNITS[role]:
                    raise ReaderError(
                        source,
                        f"expected units {FORCING_UNITS[role]!r} for {role}, found {var.attrs.get('units')!r}",
                        field=f"{name}.units",
                    )
            if not (
                np.array_equal(ds["lat"].values, first["lat"].values)
                and np.array_equal(ds["lon"].values, first["lon"].values)
            ):
                raise ReaderError(source, "lat/lon differ from the first forcing dataset's grid", field="lat")
        self.lat = first["lat"].values.astype("float64")
        self.lon = first["lon"].values.astype("float64")
        times = [np.asarray(ds["time"].values, dtype="datetime64[ns]").reshape(-1) for ds in self.datasets]
        self.times = np.concatenate(times)
        if self.times.size == 0 or np.any(np.diff(self.times) <= np.timedelta64(0, "ns")):
            raise ReaderError(
                self.sources[0],
                "forcing times must be strictly increasing across the datasets (one step per time stamp)",
                field="time",
            )
        self._offsets = np.cumsum([0, *(t.size for t in times)])

    def read(self, role: str, steps: slice, lat: slice, lon: slice) -> np.ndarray:
        """Forcing values of one driver in a window.

        Parameters
        ----------
        role : str
            Key of :data:`FORCING_UNITS`.
        steps, lat, lon : slice
            Index ranges into :attr:`times`, :attr:`lat`, :attr:`lon` (step None).

        Returns
        -------
        numpy.ndarray
            float64 (n_steps, n_lat, n_lon) in the units of :data:`FORCING_UNITS`, NaN where missing.
        """
        name, blocks = self.variables[role], []
        for k, ds in enumerate(self.datasets):
            lo, hi = max(steps.start, self._offsets[k]), min(steps.stop, self._offsets[k + 1])
            if lo < hi:
                local = slice(int(lo - self._offsets[k]), int(hi - self._offsets[k]))
                blocks.append(np.asarray(ds.variables[name][local, lat, lon].values, dtype="float64"))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)

    def days(self) -> tuple[np.ndarray, np.ndarray]:
        """Output days and the index of each day's first step.

        Returns
        -------
        days : numpy.ndarray
            datetime64[ns] midnight UTC of each date present, increasing.
        starts : numpy.ndarray
            int, index into :attr:`times` of each day's first step; (n_days + 1,) with the number
            of steps appended.
        """
        dates = self.times.astype("datetime64[D]")
        starts = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1]])
        return dates[starts].astype("datetime64[ns]"), np.append(starts, self.times.size)


def _source(ds: xr.Dataset) -> str:
    return str(ds.encoding.get("source") or ds.attrs.get("source_file") or "forcing dataset")


def read_forcing(window: Window, *, cube: ForcingCube, starts: np.ndarray) -> tuple[dict[str, np.ndarray], None]:
    """The forcing of one output window (the file-reading half of :func:`window_features`).

    Returns
    -------
    forcing : dict of numpy.ndarray
        Role -> float64 (n_steps, n_lat, n_lon) of the window's days (see :meth:`ForcingCube.read`).
    None
        (the second item of a ``features`` pair of :func:`products.methods.chunked.run_windows`)
    """
    steps = slice(int(starts[window.time.start]), int(starts[window.time.stop]))
    return {role: cube.read(role, steps, window.lat, window.lon) for role in FORCING_UNITS}, None


def forcing_features(
    window: Window,
    forcing: Mapping[str, np.ndarray],
    *,
    lat: np.ndarray,
    starts: np.ndarray,
    month_sin: np.ndarray,
    month_cos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix of one window from its forcing (the computing half of :func:`window_features`)."""
    day_lo, day_hi = window.time.start, window.time.stop
    drivers = daily_drivers(**forcing, day_starts=starts[day_lo:day_hi] - starts[day_lo])
    valid = np.ones(window.shape, dtype=bool)
    for values in drivers.values():
        valid &= np.isfinite(values)
    day_of_cell = np.broadcast_to(np.arange(day_lo, day_hi)[:, None, None], window.shape)[valid]
    lat_of_cell = np.broadcast_to(lat[window.lat][None, :, None], window.shape)[valid]
    columns = {
        **{name: values[valid] for name, values in drivers.items()},
        "month_sin": month_sin[day_of_cell],
        "month_cos": month_cos[day_of_cell],
        "lat": lat_of_cell,
    }
    return np.column_stack([columns[name] for name in FEATURES]), valid


def window_features(
    window: Window, *, cube: ForcingCube, starts: np.ndarray, month_sin: np.ndarray, month_cos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix of the valid cells of one output window (the ``features`` of apply_chunked).

    Parameters
    ----------
    window : Window
        Output window: days ``window.time`` (indices into ``days``) x lat x lon.
    cube : ForcingCube
        The forcing.
    starts : numpy.ndarray
        From :meth:`ForcingCube.days` (first step of each day, then the number of steps).
    month_sin, month_cos : numpy.ndarray
        float64 (n_days,), calendar features of each day.

    Returns
    -------
    matrix : numpy.ndarray
        float64 (n_valid, 8), columns in the order of :data:`products.generators.et_fusion.FEATURES`.
    valid : numpy.ndarray
        bool ``window.shape``: every forcing value of the day finite.
    """
    forcing, _ = read_forcing(window, cube=cube, starts=starts)
    return forcing_features(window, forcing, lat=cube.lat, starts=starts, month_sin=month_sin, month_cos=month_cos)


def grid_values(
    window: Window,
    forcing: Mapping[str, np.ndarray],
    _unused: None,
    *,
    lat: np.ndarray,
    starts: np.ndarray,
    month_sin: np.ndarray,
    month_cos: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    standard_error: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``compute`` of :func:`predict_et_grid`: daily drivers, then ET and its standard error of one window.

    Returns
    -------
    et, se : numpy.ndarray
        float32 ``window.shape`` (:func:`products.methods.chunked.predict_window`); ``se`` None without
        ``standard_error``.
    """
    matrix, valid = forcing_features(window, forcing, lat=lat, starts=starts, month_sin=month_sin, month_cos=month_cos)
    return matrix_values(window, matrix, valid, predict=predict, standard_error=standard_error)


def matrix_values(
    window: Window,
    matrix: np.ndarray,
    valid: np.ndarray,
    *,
    predict: Callable[[np.ndarray], np.ndarray],
    standard_error: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """ET and its standard error of one window from its features (:func:`window_features`); see :func:`grid_values`."""
    et = predict_given(window, matrix, valid, predict=predict)
    se = None if standard_error is None else predict_given(window, matrix, valid, predict=standard_error)
    return et, se


def predict_matrix(matrix: np.ndarray, *, model: lightgbm.LGBMRegressor) -> np.ndarray:
    """:func:`products.generators.et_fusion.predict` on a feature matrix in :data:`FEATURES` order (mm d-1)."""
    return predict(model, pd.DataFrame(matrix, columns=list(FEATURES), copy=False))


def standard_error_matrix(matrix: np.ndarray, *, pair: tuple) -> np.ndarray:
    """:func:`products.generators.et_fusion.predict_standard_error` on a feature matrix in :data:`FEATURES`
    order: ``|q84 - q16| / 2`` of the quantile pair, float64 (n_rows,), mm d-1, non-negative."""
    return predict_standard_error(pair, pd.DataFrame(matrix, columns=list(FEATURES), copy=False))


def compiled_matrix(matrix: np.ndarray, *, trees: CompiledTrees) -> np.ndarray:
    """ET (mm d-1, float64 (n_rows,)) of a feature matrix in :data:`FEATURES` order from the compiled model."""
    return trees.predict(matrix)


def compiled_standard_error_matrix(
    matrix: np.ndarray, *, lower: CompiledTrees, upper: CompiledTrees, nominal: float
) -> np.ndarray:
    """:func:`standard_error_matrix` from the compiled quantile pair (``nominal``: the pair's central interval)."""
    return quantile_standard_error(lower.predict(matrix), upper.predict(matrix), nominal=nominal)


def _compiled_predictors(model, quantile_models, cache, predict_et, predict_se):
    """The compiled ``predict`` functions where every model compiles and checks, else the given ones; and
    the ``prediction_engine`` attribute saying which."""
    from products.methods import compiled_trees

    models = [model, *(quantile_models or ())]
    compiled, reasons = [], []
    for m in models:
        trees, why = compiled_trees.compiled_or_none(m, cache_dir=cache)
        compiled.append(trees)
        if trees is None:
            reasons.append(why)
    if reasons:
        return predict_et, predict_se, f"LightGBM {lightgbm.__version__} (compiled trees not used: {reasons[0]})"
    predict_et = functools.partial(compiled_matrix, trees=compiled[0])
    if quantile_models is not None:
        lo, hi = (float(m.get_params()["alpha"]) for m in quantile_models)
        predict_se = functools.partial(
            compiled_standard_error_matrix, lower=compiled[1], upper=compiled[2], nominal=hi - lo
        )
    worst = max(t.max_difference for t in compiled)
    return (
        predict_et,
        predict_se,
        f"{compiled_trees.versions()} compiled forest of the LightGBM {lightgbm.__version__} model(s), checked "
        f"against LightGBM on {compiled_trees.CHECK_ROWS} rows each (largest difference {worst:.2g} mm d-1)",
    )


def standard_error_attrs(quantiles, calibration: Coverage | None = None, reason: str = "") -> dict:
    """CF attributes of :data:`SE_NAME`: the CF ``standard_error`` modifier of ET, its method, the pair's
    ``quantiles`` (float64 attribute) and its calibration (measured at held-out tower months) or why there
    is none."""
    lo, hi = (float(q) for q in quantiles)
    return {
        **standard_error_attributes(
            {**ET_ATTRS, "long_name": "evapotranspiration predicted from gridded forcing"},
            method=SE_METHOD,
            extra=SE_TEXT.format(lo, hi) + ". " + calibration_comment(calibration, reason or "not yet measured"),
        ),
        "cell_methods": ET_ATTRS["cell_methods"],
        "quantiles": np.array([lo, hi], dtype="float64"),
    }


def describe_standard_error(path: str | os.PathLike, calibration: Coverage | None, reason: str = "") -> None:
    """Write the measured calibration (or the reason there is none) into the grid's standard error, in place.

    Parameters
    ----------
    path : str or os.PathLike
        A file of :func:`predict_et_grid` written with ``quantile_models``.
    calibration : products.methods.uncertainty.Coverage or None
        From :func:`grid_calibration`; None with a ``reason``.

    Raises
    ------
    KeyError
        The file has no :data:`SE_NAME`.
    """
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        quantiles = np.asarray(nc[SE_NAME].getncattr("quantiles"), dtype="float64").reshape(-1)
        nc[SE_NAME].setncattr("comment", standard_error_attrs(quantiles, calibration, reason)["comment"])


def open_forcing(forcing) -> tuple[list[xr.Dataset], list[xr.Dataset]]:
    """The datasets of ``forcing`` (see :func:`predict_et_grid`) and those opened here, to be closed."""
    items = [forcing] if isinstance(forcing, xr.Dataset | str | os.PathLike) else list(forcing)
    datasets, opened = [], []
    try:
        for item in items:
            if isinstance(item, xr.Dataset):
                datasets.append(item)
            else:
                opened.append(open_any(item))
                datasets.append(opened[-1])
    except BaseException:
        for ds in opened:
            ds.close()
        raise
    return datasets, opened


def predict_et_grid(
    model: lightgbm.LGBMRegressor,
    forcing,
    out_path: str | os.PathLike,
    *,
    chunk: tuple[int, int] = (256, 256),
    days_per_chunk: int = 1,
    variables: Mapping[str, str] = GLDAS_FORCING,
    workers: int = 1,
    attrs: Mapping | None = None,
    quantile_models: tuple | None = None,
    client: Client | str | None = None,
    compiled_trees: bool = False,
    trees_cache: str | os.PathLike | None = None,
) -> Path:
    """Daily ET grid from a fitted ET fusion model and a sub-daily forcing cube, chunk by chunk.

    Parameters
    ----------
    model : lightgbm.LGBMRegressor
        Fitted on :data:`products.generators.et_fusion.FEATURES` (e.g.
        ``et_fusion.run(table).final_model``), predicting ET in mm d-1.
    forcing : xarray.Dataset, path, or sequence of datasets/paths
        Sub-daily forcing on dims (time, lat, lon), lazily opened: one dataset with all steps, or
        one per step (the GLDAS-2.1 3-hourly files of a day, or their cubes from
        ``ingestion.services.cube_for``); paths are opened with
        :func:`ingestion.readers.grids.open_any` and closed at the end. Variables (names from
        ``variables``, float): air temperature (K), downward shortwave (W m-2), precipitation rate
        (kg m-2 s-1), specific humidity (kg kg-1), surface pressure (Pa); NaN over non-land.
        Steps are grouped by UTC date; every date present gives one output day (days with
        fewer steps are averaged over the steps present; the counts go into the attribute
        ``forcing_steps_per_day``).
    out_path : str or os.PathLike
        NetCDF-4 file to write; its folder must exist. Written to a temporary name and moved
        into place: on any error nothing is left at ``out_path`` (an older file there is kept).
    chunk : (int, int)
        Window size in (lat, lon) cells; memory is about 5 drivers x steps x window cells x 8
        bytes, twice (the next window is read while the current one is predicted).
    days_per_chunk : int
        Output days per window.
    variables : mapping
        Driver role -> variable name; default :data:`GLDAS_FORCING`.
    workers : int
        Local processes computing windows (see :func:`products.methods.chunked.apply_chunked`);
        with ``workers > 1`` pass paths, not in-memory datasets.
    attrs : mapping, optional
        Global attributes added last (e.g. ``data_kind``, validation scores); None values dropped.
    quantile_models : (lightgbm.LGBMRegressor, lightgbm.LGBMRegressor), optional
        The final quantile pair (``EtFusionResult.final_quantile_models``): adds
        :data:`SE_NAME` (``et_standard_error``, float32, kg m-2 d-1, same fill and grid as ``et``,
        CF ``water_evapotranspiration_flux standard_error``, named in ``et``'s
        ``ancillary_variables``), predicted window by window from the same features as ``et`` (one
        pass: each window's forcing is read once). Its ``comment`` says the calibration is not yet measured until
        :func:`describe_standard_error` writes it.
    client : distributed.Client or str, optional
        Compute the windows on a Dask cluster (see :func:`products.methods.chunked.run_windows`):
        ``"local"`` (a :class:`distributed.LocalCluster` of ``workers`` processes, started for the
        run), a scheduler address (e.g. the portal's ``DASK_SCHEDULER_ADDRESS``) or a client.
        Pass forcing paths, not in-memory datasets, so the workers open the files themselves. Same
        output as in one process.
    compiled_trees : bool
        Predict with the models compiled to machine code (:mod:`products.methods.compiled_trees`,
        lleaves; 3 to 5 times faster than LightGBM's predict), each checked against LightGBM on rows
        spanning its training range before use (float64 differences of about 1e-14; the float32
        values written are the same but for rare last-bit roundings). Where compiling is not possible
        (lleaves missing, an error, a mismatch) LightGBM predicts. The global attribute
        ``prediction_engine`` says which did and why.
    trees_cache : str or os.PathLike, optional
        Folder of compiled models reused across runs (compiling the ET model takes seconds; loading
        it milliseconds). None: compile for this call only.

    Returns
    -------
    pathlib.Path
        ``out_path``: CF-1.8 grid, dims (time = days, lat, lon) with ``lat``/``lon`` of the
        forcing (float64, degrees_north/east), ``time`` (midnight UTC, days since 1970-01-01,
        bounds ``time_bnds`` = [day, next day)), ``lat_bnds``/``lon_bnds``, the ``crs`` grid
        mapping (EPSG:4326), ``et`` (float32, kg m-2 d-1 = mm d-1, standard_name
        water_evapotranspiration_flux, ``_FillValue`` -9999 where the forcing is missing: ocean,
        inland water, Antarctica), chunked (1, 256, 256), zlib level 4; ACDD extent attributes
        (:func:`products.methods.cf.complete_grid_file`).

    Raises
    ------
    ReaderError
        Forcing without one of the variables (field = the variable), in other units, on other
        dims, on different grids, or with times not strictly increasing.
    ValueError
        Bad ``chunk``/``days_per_chunk``/``workers``, or ``variables`` missing a role.
    OSError
        The output folder is not writable.

    References
    ----------
    See the module docstring: Xu et al. (2025); Ke et al. (2017); Rodell et al. (2004); FAO-56.
    """
    if len(chunk) != 2 or min(chunk) < 1 or days_per_chunk < 1:
        raise ValueError(
            f"chunk must be two positive ints (lat, lon) and days_per_chunk >= 1, found {chunk}, {days_per_chunk}"
        )
    datasets, opened = open_forcing(forcing)
    try:
        cube = ForcingCube(datasets, variables)
        days, starts = cube.days()
        calendar = add_calendar_features(pd.DataFrame({"time": days}))
        steps_per_day = np.diff(starts)
        sources = sorted(set(cube.sources))
        predict_et = functools.partial(predict_matrix, model=model)
        predict_se = (
            functools.partial(standard_error_matrix, pair=tuple(quantile_models))
            if quantile_models is not None
            else None
        )
        engine = None
        if compiled_trees:
            predict_et, predict_se, engine = _compiled_predictors(
                model, quantile_models, trees_cache, predict_et, predict_se
            )
        spec = GridSpec(
            name="et",
            time=days,
            lat=cube.lat,
            lon=cube.lon,
            attrs=ET_ATTRS,
            time_bounds=np.stack([days, days + np.timedelta64(1, "D")], axis=1),
            global_attrs=cf.merge_attrs(
                {
                    "Conventions": cf.CONVENTIONS,
                    "title": "Daily evapotranspiration from gridded forcing (LightGBM ET fusion model)",
                    "institution": "data portal ET fusion pipeline",
                    "source": f"LightGBM {lightgbm.__version__} model of ET on {', '.join(FEATURES)} (trained on tower "
                    f"monthly means), applied to daily drivers from the forcing "
                    f"{', '.join(sources[:3])}{' ...' if len(sources) > 3 else ''} "
                    f"({len(sources)} file(s), variables {', '.join(cube.variables.values())})",
                    "history": cf.history_line("products.generators.et_grid"),
                    "references": REFERENCES_GRID,
                    "comment": f"ET from {GRID_MODEL}. Days: {DAY_DEFINITION}. tmin/tmax from the sub-daily "
                    "air temperature steps; ssrd, precip, vpd = means of the steps (vpd from specific humidity "
                    "and surface pressure, FAO-56 eq. 11). Cells are missing where any forcing step of the day "
                    "is missing.",
                    "model": GRID_MODEL,
                    "day_definition": DAY_DEFINITION,
                    "forcing_steps_per_day": steps_per_day.astype("int32"),
                    "prediction_engine": engine,
                },
                attrs,
            ),
        )
        calendar_features = {
            "starts": starts,
            "month_sin": calendar["month_sin"].to_numpy(),
            "month_cos": calendar["month_cos"].to_numpy(),
        }
        features: ReadFunction
        compute: ComputeFunction
        if engine is not None and engine.startswith("lleaves"):
            # a fast predict: the daily drivers go to the compute thread, the I/O thread only reads and writes
            features = functools.partial(read_forcing, cube=cube, starts=starts)
            compute = functools.partial(
                grid_values, lat=cube.lat, **calendar_features, predict=predict_et, standard_error=predict_se
            )
        else:
            # LightGBM's predict is the long part: the I/O thread also builds the features, beside it
            features = functools.partial(window_features, cube=cube, **calendar_features)
            compute = functools.partial(matrix_values, predict=predict_et, standard_error=predict_se)
        with atomic_path(out_path) as tmp:
            nc = create_output(tmp, spec)
            try:
                et_var, se_var = nc["et"], None
                if quantile_models is not None:
                    quantiles = [m.get_params()["alpha"] for m in quantile_models]
                    se_var = float_grid_variable(nc, SE_NAME, et_var.chunking(), standard_error_attrs(quantiles))
                    se_var.set_auto_mask(False)  # float32 with FILL_VALUE already in place

                def write(window: Window, result: tuple[np.ndarray, np.ndarray | None]) -> int:
                    et, se = result
                    n = int(np.count_nonzero(et != FILL_VALUE))
                    if n:  # an all-fill window keeps its chunks unallocated
                        et_var[window.key] = et
                    if se_var is not None and se is not None and np.any(se != FILL_VALUE):
                        se_var[window.key] = se
                    return n

                # one pass: each window's forcing is read once (on the I/O thread when in process) for both
                run_windows(
                    windows(spec.shape, (days_per_chunk, *chunk)),
                    features,
                    compute,
                    write,
                    workers=workers,
                    client=client,
                )
            finally:
                nc.close()
            if se_var is not None:
                _link_in_file(tmp, "et", SE_NAME)
            cf.complete_grid_file(tmp, time_step="1D")  # bounds, crs grid mapping, ACDD extents
    finally:
        for ds in opened:
            ds.close()
    return Path(out_path)


def _link_in_file(path, estimate: str, name: str) -> None:
    """:func:`products.methods.uncertainty.link_ancillary` on a file written by netCDF4: ``estimate`` names
    ``name`` in its ``ancillary_variables``."""
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        have = xr.Dataset(
            {estimate: ((), 0, {"ancillary_variables": getattr(nc[estimate], "ancillary_variables", "")}), name: 0}
        )
        nc[estimate].setncattr(
            "ancillary_variables", link_ancillary(have, estimate, name)[estimate].attrs["ancillary_variables"]
        )


# --- the grid itself against towers ---------------------------------------------------------------------
def _cell_index(ds: xr.Dataset, axis: str, values: np.ndarray) -> np.ndarray:
    """Index along ``axis`` of the cell holding each value (its ``<axis>_bnds`` if present, else the
    nearest centre within half a spacing), -1 where no cell holds it."""
    centres = ds[axis].values.astype("float64")
    values = np.asarray(values, dtype="float64")
    if f"{axis}_bnds" in ds:
        bounds = np.sort(ds[f"{axis}_bnds"].values.astype("float64"), axis=1)
        inside = (values[:, None] >= bounds[None, :, 0]) & (values[:, None] < bounds[None, :, 1])
        return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
    half = np.median(np.abs(np.diff(centres))) / 2 if centres.size > 1 else 0.0
    nearest = np.abs(values[:, None] - centres[None, :]).argmin(axis=1)
    return np.where(np.abs(centres[nearest] - values) <= half + 1e-9, nearest, -1)


def sample_at_points(grid: str | os.PathLike | xr.Dataset, points: pd.DataFrame) -> pd.DataFrame:
    """Daily gridded ET in the cell of each point (e.g. each tower).

    Parameters
    ----------
    grid : path or xarray.Dataset
        A file of :func:`predict_et_grid` (``et`` on (time, lat, lon), kg m-2 d-1 = mm d-1,
        ``lat_bnds``/``lon_bnds``); longitudes in the convention of ``points``.
    points : pandas.DataFrame
        ``station``, ``lat`` (degrees_north), ``lon`` (degrees_east).

    Returns
    -------
    pandas.DataFrame
        ``station``, ``time`` (the grid's day, datetime64[ns], a UTC calendar day), ``et_grid``
        (float64, mm d-1) and, when the grid has :data:`SE_NAME`, ``et_grid_standard_error``
        (float64, mm d-1): one row per point and day with a finite value; points outside the grid
        give no rows.
    """
    ds = grid if isinstance(grid, xr.Dataset) else xr.open_dataset(grid)
    try:
        i = _cell_index(ds, "lat", points["lat"].to_numpy())
        j = _cell_index(ds, "lon", points["lon"].to_numpy())
        inside = (i >= 0) & (j >= 0)
        names = {"et": "et_grid", **({SE_NAME: "et_grid_standard_error"} if SE_NAME in ds else {})}
        columns = ["station", "time", *names.values()]
        if not inside.any():
            types = ("object", "datetime64[ns]", *(["float64"] * len(names)))
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(columns, types, strict=True)})
        cells = {"lat": xr.DataArray(i[inside], dims="point"), "lon": xr.DataArray(j[inside], dims="point")}
        values = {
            column: ds[name].isel(cells).transpose("time", "point").values.astype("float64").ravel()
            for name, column in names.items()
        }
        days = ds["time"].values.astype("datetime64[ns]")
    finally:
        if not isinstance(grid, xr.Dataset):
            ds.close()
    frame = pd.DataFrame(
        {
            "station": np.tile(points["station"].to_numpy()[inside].astype(object), days.size),
            "time": np.repeat(days, inside.sum()),
            **values,
        }
    )
    return frame[np.isfinite(frame["et_grid"])].reset_index(drop=True)


def grid_at_held_out_towers(daily: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """The gridded ET's monthly means beside the tower ET of the months the final model never saw.

    The grid is made by the final tower model (fitted on the training months of every tower), so it
    is scored on the held-out (validation) months only: held out in time at those towers, not in
    space (the model saw other months of the same towers).

    Parameters
    ----------
    daily : pandas.DataFrame
        From :func:`sample_at_points` (``station``, ``time`` day, ``et_grid`` mm d-1).
    predictions : pandas.DataFrame
        ``EtFusionResult.predictions`` (``station``, ``time`` month start, ``et_obs`` mm d-1,
        ``is_validation``, optionally ``land_cover``).

    Returns
    -------
    pandas.DataFrame
        One row per held-out tower month with at least one grid day: ``station``, ``time``,
        ``et_obs`` (the tower's monthly mean), ``et_grid`` (mean of the grid days of that month
        present in the forcing, mm d-1), ``n_days`` (int, how many), ``land_cover`` (empty string
        when unknown); with ``et_grid_standard_error`` in ``daily``, its mean over the same days
        (the standard error of the monthly mean if the daily errors are fully correlated within the
        month, as a model's error mostly is). Empty when the forcing's days never fall in a held-out
        tower month.
    """
    held_out = predictions[predictions["is_validation"]]
    keep = ["station", "time", "et_obs", *(["land_cover"] if "land_cover" in held_out.columns else [])]
    extra = {"et_grid_standard_error": ("et_grid_standard_error", "mean")} if "et_grid_standard_error" in daily else {}
    monthly = (
        daily.assign(time=daily["time"].dt.to_period("M").dt.to_timestamp())
        .groupby(["station", "time"], as_index=False)
        .agg(et_grid=("et_grid", "mean"), n_days=("et_grid", "size"), **extra)
    )
    frame = held_out[keep].merge(monthly, on=["station", "time"], how="inner")
    if "land_cover" not in frame.columns:
        frame["land_cover"] = ""
    return frame.assign(land_cover=frame["land_cover"].fillna("").astype(str)).astype({"n_days": "int64"})


def grid_calibration(frame: pd.DataFrame, *, split: str, nominal: float = 0.90) -> Coverage:
    """Coverage of ``et_grid +- z et_grid_standard_error`` against the tower ET of held-out months.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`grid_at_held_out_towers` of a grid with :data:`SE_NAME` (``et_grid``,
        ``et_grid_standard_error``, ``et_obs``, mm d-1), non-empty.
    split : str
        The stored split's name (``grid_at_held_out_towers``).
    nominal : float in (0, 1)
        The interval's stated coverage.

    Returns
    -------
    products.methods.uncertainty.Coverage

    Raises
    ------
    KeyError
        ``frame`` has no ``et_grid_standard_error``.
    """
    return interval_coverage(
        frame["et_grid"],
        frame["et_grid_standard_error"],
        frame["et_obs"],
        nominal=nominal,
        split=split,
        note="held out in time only: the tower months the final model and its quantile pair never saw (they saw "
        "other months of the same towers); grid monthly mean of the forcing days present, its standard error the "
        "mean of the daily ones; tower ET taken as exact",
    )
