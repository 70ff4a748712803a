"""1 km surface soil moisture: a seamless coarse field, then ML downscaling, window by window (no Django).

The method of Zheng, Jia and Zhao (2023) in two steps:

1. **Seamless coarse field (0.25 degree).** A satellite product (ESA CCI-like, with gaps) is
   gap-filled from a reanalysis by one documented rule (:func:`seamless_coarse`): the reanalysis is
   CDF-matched to the satellite product (piecewise-linear matching of percentiles, the
   ``lin_cdf_match`` of pytesmo) on the cell-days where both exist: per cell where that cell has at
   least ``min_samples`` common days, otherwise with one mapping pooled over the domain; every
   satellite gap is then filled with the matched reanalysis. A per-cell-day ``source`` flag says
   which value was used (1 satellite, 2 matched reanalysis, 3 unmatched reanalysis where no
   satellite value exists at all, so no CDF could be learned, 0 missing).
2. **Downscaling to 1 km (1/120 degree).** Gradient-boosted trees (LightGBM) learn, at in-situ
   stations, the difference between the station value and the coarse field bilinearly interpolated
   to the station (``sm - coarse``) from optical/thermal predictors (LST, NDVI, albedo, elevation)
   and their anomalies from the mean over their 0.25 degree cell (:data:`FEATURES`); the 1 km value
   is ``coarse_bilinear + model``. The model family is our choice (the paper's own model is
   described in its methods); the residual target keeps the 1 km field consistent with the coarse
   field where the predictors say nothing.
3. **Standard error (issue 17).** Two LightGBM quantile models (pinball loss, levels
   :data:`QUANTILE_ALPHAS` = 0.16 and 0.84) are fitted on the same training rows as the point model
   (:func:`fit_quantile_models`); the standard error is half their distance
   (:func:`predict_standard_error`), predicted window by window beside the estimate and written as
   ``sm_standard_error`` (float32) in the NetCDF file, named in the estimate's ``ancillary_variables``.
   Its calibration is the coverage of ``estimate +- 1.645 se`` at held-out stations
   (:func:`held_out_coverage`).

Memory: a global 1 km day is 43200 x 21600 cells. :func:`write_product` cuts the grid into
:class:`products.methods.chunked.Window` s (:func:`products.methods.chunked.windows`) and handles one
window at a time (:func:`products.methods.chunked.predict_window`): predictors are read for that
window only, and the encoded integers go straight into a pre-created chunked NetCDF-4 file and a
tiled GeoTIFF (rasterio windowed writes), rewritten at the end as a Cloud Optimized GeoTIFF with
overviews. Only the coarse field (1440 x 720 float32, 4 MB a day)
is held whole. Windows should be multiples of :data:`FINE_PER_COARSE` cells aligned with the coarse
grid so that the 0.25 degree anomalies are computed on whole coarse cells.

Storage as the seed: 16-bit integers, ``scale_factor`` = 0.001, ``add_offset`` = 0, fill
:data:`FILL_INT`, units ``m3 m-3``, valid range 0..1000 (0..1 m3 m-3) in both formats.

References
----------
Zheng, C., Jia, L., Zhao, T. (2023): A 21-year dataset (2000-2020) of gap-free global daily surface
soil moisture at 1-km grid resolution. Scientific Data 10, 139, doi:10.1038/s41597-023-01991-w.
Dorigo, W., et al. (2017): ESA CCI Soil Moisture for improved Earth system understanding. Remote
Sens. Environ. 203, 185-215, doi:10.1016/j.rse.2017.07.001 (gap-filled products, CDF matching).
Brocca, L., et al. (2011): Soil moisture estimation through ASCAT and AMSR-E sensors. Remote Sens.
Environ. 115, 3390-3408, doi:10.1016/j.rse.2011.08.003 (CDF matching); pytesmo ``scaling.lin_cdf_match``.
Ke, G., et al. (2017): LightGBM. NeurIPS 30.
Eaton, B., et al. (2020): CF Conventions 1.8, section 8.1 (packed data: scale_factor, add_offset).
GDAL GeoTIFF driver (TILED, COMPRESS, PREDICTOR, band scale/offset/nodata), https://gdal.org/drivers/raster/gtiff.html.
GDAL COG driver (OVERVIEWS, OVERVIEW_RESAMPLING), https://gdal.org/drivers/raster/cog.html.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import lightgbm
import netCDF4
import numpy as np
import pandas as pd
from rasterio.windows import Window as RasterWindow

from ingestion.readers.modis import RADIUS
from products.methods import cf, chunked, geotiff, uncertainty
from products.methods.cv import assert_disjoint, block_ids, leave_station_out
from products.methods.metrics import summary
from products.registry import PRODUCTS as REGISTRY

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

SCALE_FACTOR = 0.001
ADD_OFFSET = 0.0
FILL_INT = np.int16(-9999)
VALID_RANGE = (0, 1000)  # packed: 0 .. 1 m3 m-3
UNITS = "m3 m-3"
FINE_RES = 1.0 / 120.0  # degree: the 1 km grid (43200 x 21600 cells globally)
COARSE_RES = 0.25  # degree
FINE_PER_COARSE = 30
PREDICTORS = ("lst", "ndvi", "albedo", "elevation")
PREDICTOR_UNITS = {"lst": "K", "ndvi": "1", "albedo": "1", "elevation": "m"}
FEATURES = ("coarse", *PREDICTORS, *(f"{p}_anom" for p in PREDICTORS))
SOURCE_FLAGS = {
    0: "missing",
    1: "satellite",
    2: "reanalysis CDF-matched to the satellite product",
    3: "reanalysis, unmatched (no satellite value to learn a CDF from)",
}
SEED_FIGURES = {
    "r": REGISTRY["sm_1km"].published["r"],
    "ubrmse": REGISTRY["sm_1km"].published["ubrmse"],
    "stations": REGISTRY["sm_1km"].published["stations"],
    "units": UNITS,
}
"""The seed's published station figures (from :data:`products.registry.PRODUCTS`, their one home)."""
DEFAULT_PARAMS = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "n_jobs": 1,
    "verbose": -1,
}
SM_ATTRS = {
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "units": UNITS,
    "long_name": "surface soil moisture (0-5 cm)",
}
QUANTILE_ALPHAS = (0.16, 0.84)
"""Quantiles of the two LightGBM quantile models whose half distance is the standard error (issue 17)."""
QUANTILE_NOMINAL = QUANTILE_ALPHAS[1] - QUANTILE_ALPHAS[0]
"""Central share between :data:`QUANTILE_ALPHAS` (0.68: the half width is one standard error, z = 0.994)."""
SE_SUFFIX = "_" + uncertainty.STANDARD_ERROR
"""The standard error of variable ``v`` is written as ``v + SE_SUFFIX`` (``sm_standard_error``)."""


# --- grids ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A regular north-up lat/lon grid (the GeoTIFF layout): row 0 is the northernmost.

    Attributes
    ----------
    north, west : float
        Outer edges of the first row / column, degrees.
    n_lat, n_lon : int
        Rows and columns.
    res : float
        Cell size, degrees (:data:`FINE_RES` or :data:`COARSE_RES`).
    """

    north: float
    west: float
    n_lat: int
    n_lon: int
    res: float

    @property
    def lat(self) -> np.ndarray:
        """float64 (n_lat,) cell centres, degrees_north, decreasing."""
        return self.north - (np.arange(self.n_lat) + 0.5) * self.res

    @property
    def lon(self) -> np.ndarray:
        """float64 (n_lon,) cell centres, degrees_east, increasing."""
        return self.west + (np.arange(self.n_lon) + 0.5) * self.res

    @property
    def shape(self) -> tuple[int, int]:
        """(n_lat, n_lon)."""
        return (self.n_lat, self.n_lon)

    def index(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Row and column (int64) of the cells holding points ``lat``, ``lon`` (degrees); -1 outside."""
        row = np.floor((self.north - np.asarray(lat, dtype="float64")) / self.res).astype("int64")
        col = np.floor((np.asarray(lon, dtype="float64") - self.west) / self.res).astype("int64")
        inside = (row >= 0) & (row < self.n_lat) & (col >= 0) & (col < self.n_lon)
        return np.where(inside, row, -1), np.where(inside, col, -1)


def global_fine_grid() -> Grid:
    """The global 1 km grid of the seed: 21600 x 43200 cells of 1/120 degree, 90 N to 90 S."""
    return Grid(90.0, -180.0, 21600, 43200, FINE_RES)


def bilinear(coarse: np.ndarray, grid: Grid, lat, lon) -> np.ndarray:
    """NaN-aware bilinear interpolation of a coarse 2-D field at points.

    Parameters
    ----------
    coarse : numpy.ndarray
        float (grid.n_lat, grid.n_lon), NaN where missing (ocean, gaps).
    grid : Grid
        The coarse field's grid.
    lat, lon : array_like
        Points, degrees, broadcastable to one shape (e.g. a window's ``lat[:, None]``, ``lon[None, :]``).

    Returns
    -------
    numpy.ndarray
        float64 of the broadcast shape: the weighted mean of the (up to) four surrounding cell
        centres, the weights of the missing ones dropped (renormalised); NaN where all four are
        missing. Beyond the outer cell centres the edge values are used.
    """
    lat, lon = np.broadcast_arrays(np.asarray(lat, dtype="float64"), np.asarray(lon, dtype="float64"))
    fi = np.clip((grid.north - lat) / grid.res - 0.5, 0, grid.n_lat - 1)
    fj = np.clip((lon - grid.west) / grid.res - 0.5, 0, grid.n_lon - 1)
    i0, j0 = np.floor(fi).astype("intp"), np.floor(fj).astype("intp")
    i1, j1 = np.minimum(i0 + 1, grid.n_lat - 1), np.minimum(j0 + 1, grid.n_lon - 1)
    wi, wj = fi - i0, fj - j0
    total = np.zeros(lat.shape)
    weight = np.zeros(lat.shape)
    for ii, jj, w in (
        (i0, j0, (1 - wi) * (1 - wj)),
        (i0, j1, (1 - wi) * wj),
        (i1, j0, wi * (1 - wj)),
        (i1, j1, wi * wj),
    ):
        v = coarse[ii, jj]
        ok = np.isfinite(v) & (w > 0)
        total += np.where(ok, v * w, 0.0)
        weight += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)


def block_anomaly(values: np.ndarray, factor: int = FINE_PER_COARSE) -> np.ndarray:
    """``values`` minus the NaN-mean of their ``factor`` x ``factor`` block (the coarse cell).

    Parameters
    ----------
    values : numpy.ndarray
        float (..., n_y, n_x) of a window whose first row/column start a block; a partial block at
        the end is averaged over the cells present.
    factor : int
        Fine cells per coarse cell along each axis.

    Returns
    -------
    numpy.ndarray
        float64, same shape; NaN where ``values`` is NaN.
    """
    *lead, ny, nx = values.shape
    by, bx = math.ceil(ny / factor), math.ceil(nx / factor)
    padded = np.full((*lead, by * factor, bx * factor), np.nan)
    padded[..., :ny, :nx] = values
    blocks = padded.reshape(*lead, by, factor, bx, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks give NaN
        means = np.nanmean(blocks, axis=(-3, -1))
    expanded = np.repeat(np.repeat(means, factor, axis=-2), factor, axis=-1)[..., :ny, :nx]
    return values - expanded


def block_mean(values: np.ndarray, factor: int = FINE_PER_COARSE) -> np.ndarray:
    """NaN-mean over ``factor`` x ``factor`` blocks: (..., ny, nx) -> (..., ceil(ny/f), ceil(nx/f)), float64."""
    *lead, ny, nx = values.shape
    by, bx = math.ceil(ny / factor), math.ceil(nx / factor)
    padded = np.full((*lead, by * factor, bx * factor), np.nan)
    padded[..., :ny, :nx] = values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks give NaN
        return np.nanmean(padded.reshape(*lead, by, factor, bx, factor), axis=(-3, -1))


# --- step 1: seamless coarse field ---------------------------------------------------------------


def cdf_breakpoints(values, n_quantiles: int = 21) -> np.ndarray:
    """Percentiles 0, 5, ..., 100 (``n_quantiles`` evenly spaced) of the finite values, float64."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.full(n_quantiles, np.nan)
    return np.percentile(v, np.linspace(0, 100, n_quantiles))


def cdf_match(values, src_q: np.ndarray, ref_q: np.ndarray) -> np.ndarray:
    """Map ``values`` from the source distribution to the reference one (piecewise-linear CDF matching).

    Parameters
    ----------
    values : array_like
        Source values (float, any shape; NaN stays NaN).
    src_q, ref_q : numpy.ndarray
        Matching percentiles (:func:`cdf_breakpoints`) of source and reference on the common samples.

    Returns
    -------
    numpy.ndarray
        float64: linear between the breakpoints, extended beyond them with the end segments' slopes
        (as pytesmo's ``lin_cdf_match``). Repeated source breakpoints are merged first.

    References
    ----------
    Brocca et al. (2011), doi:10.1016/j.rse.2011.08.003; pytesmo ``scaling.lin_cdf_match``.
    """
    v = np.asarray(values, dtype="float64")
    src_q, idx = np.unique(np.asarray(src_q, dtype="float64"), return_index=True)
    ref_q = np.asarray(ref_q, dtype="float64")[idx]
    if src_q.size < 2 or not np.all(np.isfinite(src_q)) or not np.all(np.isfinite(ref_q)):
        return v + (np.nanmean(ref_q) - np.nanmean(src_q))  # degenerate: a shift of the means
    out = np.interp(v, src_q, ref_q)
    lo_slope = (ref_q[1] - ref_q[0]) / (src_q[1] - src_q[0])
    hi_slope = (ref_q[-1] - ref_q[-2]) / (src_q[-1] - src_q[-2])
    out = np.where(v < src_q[0], ref_q[0] + (v - src_q[0]) * lo_slope, out)
    return np.where(v > src_q[-1], ref_q[-1] + (v - src_q[-1]) * hi_slope, out)


@dataclass
class Seamless:
    """Output of :func:`seamless_coarse`.

    Attributes
    ----------
    sm : numpy.ndarray
        float32 (time, lat, lon), m3 m-3, NaN where neither input has a value.
    source : numpy.ndarray
        int8 (time, lat, lon), keys of :data:`SOURCE_FLAGS`.
    rule : numpy.ndarray
        <U6 (lat, lon): ``pixel`` (own CDF), ``pooled`` (domain CDF) or ``none`` (no satellite at all).
    pooled_q : (numpy.ndarray, numpy.ndarray)
        Reanalysis and satellite breakpoints of the pooled mapping.
    """

    sm: np.ndarray
    source: np.ndarray
    rule: np.ndarray
    pooled_q: tuple[np.ndarray, np.ndarray]


def seamless_coarse(
    satellite: np.ndarray | None, reanalysis: np.ndarray, *, min_samples: int = 30, n_quantiles: int = 21
) -> Seamless:
    """Gap-fill a satellite soil-moisture product with a CDF-matched reanalysis (step 1).

    Parameters
    ----------
    satellite : numpy.ndarray or None
        float (time, lat, lon), m3 m-3, NaN in gaps (ESA CCI-like). None: no satellite product.
    reanalysis : numpy.ndarray
        float (time, lat, lon), m3 m-3 (e.g. GLDAS or ERA5 top layer), NaN over non-land.
    min_samples : int
        Common cell-days a cell needs for its own mapping; cells with fewer use the pooled mapping
        (all common cell-days of the domain).
    n_quantiles : int
        Breakpoints of the piecewise-linear matching.

    Returns
    -------
    Seamless
        The filled field and its source flags. Where no satellite value exists anywhere (no
        common samples), the reanalysis is used as it is (flag 3) and ``rule`` is ``none``.

    Raises
    ------
    ValueError
        Shapes differ or are not 3-D.

    References
    ----------
    Zheng et al. (2023), doi:10.1038/s41597-023-01991-w; Dorigo et al. (2017); Brocca et al. (2011).
    """
    rea = np.asarray(reanalysis, dtype="float64")
    sat = np.full(rea.shape, np.nan) if satellite is None else np.asarray(satellite, dtype="float64")
    if rea.ndim != 3 or sat.shape != rea.shape:
        raise ValueError(
            f"satellite and reanalysis must share one (time, lat, lon) shape, found {sat.shape}, {rea.shape}"
        )
    both = np.isfinite(sat) & np.isfinite(rea)
    pooled = (cdf_breakpoints(rea[both], n_quantiles), cdf_breakpoints(sat[both], n_quantiles))
    matched = np.full(rea.shape, np.nan)
    rule = np.full(rea.shape[1:], "none", dtype="<U6")
    counts = both.sum(axis=0)
    if both.any():
        matched = cdf_match(rea, *pooled)
        rule[:] = "pooled"
        for i, j in zip(*np.nonzero(counts >= min_samples), strict=True):
            common = both[:, i, j]
            src = cdf_breakpoints(rea[common, i, j], n_quantiles)
            ref = cdf_breakpoints(sat[common, i, j], n_quantiles)
            matched[:, i, j] = cdf_match(rea[:, i, j], src, ref)
            rule[i, j] = "pixel"
    has_sat = np.isfinite(sat)
    source = np.zeros(rea.shape, dtype="int8")
    source[has_sat] = 1
    fill_matched = ~has_sat & np.isfinite(matched)
    source[fill_matched] = 2
    fill_raw = ~has_sat & ~np.isfinite(matched) & np.isfinite(rea)
    source[fill_raw] = 3
    sm = np.where(has_sat, sat, np.where(fill_matched, matched, np.where(fill_raw, rea, np.nan)))
    return Seamless(np.clip(sm, 0.0, 1.0).astype("float32"), source, rule, pooled)


def gldas_top_layer(soil_moisture_kg_m2, layer_depth_m: float = 0.1) -> np.ndarray:
    """GLDAS ``SoilMoi0_10cm_inst`` (kg m-2) as volumetric soil moisture (m3 m-3): / (1000 kg m-3 x depth).

    Parameters
    ----------
    soil_moisture_kg_m2 : array_like
        float, kg m-2 (mass of water in the 0-10 cm layer), NaN over non-land.
    layer_depth_m : float
        Layer thickness, m.

    Returns
    -------
    numpy.ndarray
        float64, m3 m-3.

    References
    ----------
    GLDAS-2 README (GES DISC): ``SoilMoi0_10cm_inst`` in kg m-2; Rodell et al. (2004), doi:10.1175/BAMS-85-3-381.
    """
    return np.asarray(soil_moisture_kg_m2, dtype="float64") / (1000.0 * layer_depth_m)


# --- step 2: features, model, prediction ---------------------------------------------------------


class PredictorSource:
    """Where the 1 km predictors come from; :meth:`read` returns one window only.

    Subclasses (the synthetic :class:`products.generators.twins.sm_1km.Twin`, a set of rasters) implement :meth:`read`.
    """

    grid: Grid

    def read(self, time: slice, lat: slice, lon: slice) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        """Predictors of a window: ``{name: float (n_time, n_lat, n_lon)}`` for every name of :data:`PREDICTORS`
        (units :data:`PREDICTOR_UNITS`), NaN where missing."""
        raise NotImplementedError


def features_from(predictors: Mapping[str, np.ndarray], coarse_interp: np.ndarray, factor: int = FINE_PER_COARSE):
    """Feature cube of one window.

    Parameters
    ----------
    predictors : mapping
        :data:`PREDICTORS` -> float (t, y, x) of a window aligned with the coarse grid.
    coarse_interp : numpy.ndarray
        float (t, y, x), the coarse field bilinearly interpolated to the window's cells, m3 m-3.
    factor : int
        Fine cells per coarse cell.

    Returns
    -------
    numpy.ndarray
        float64 (t, y, x, len(FEATURES)) in :data:`FEATURES` order.
    """
    cols = (
        [coarse_interp]
        + [predictors[p] for p in PREDICTORS]
        + [block_anomaly(predictors[p], factor) for p in PREDICTORS]
    )
    return np.stack([np.asarray(c, dtype="float64") for c in cols], axis=-1)


def window_features(
    window: chunked.Window, *, source: PredictorSource, coarse: np.ndarray, coarse_grid: Grid
) -> tuple[np.ndarray, np.ndarray]:
    """The ``features`` of :func:`products.methods.chunked.predict_window` for the 1 km grid.

    Parameters
    ----------
    window : Window
        (time, lat, lon) index ranges into ``source.grid`` and the days.
    source : PredictorSource
        The 1 km predictors.
    coarse : numpy.ndarray
        float (time, coarse lat, coarse lon), the seamless coarse field (m3 m-3) of every day.
    coarse_grid : Grid
        Its grid.

    Returns
    -------
    matrix : numpy.ndarray
        float64 (n_valid, len(FEATURES)).
    valid : numpy.ndarray
        bool window.shape: every feature finite.
    """
    grid = source.grid
    lat, lon = grid.lat[window.lat], grid.lon[window.lon]
    interp = np.stack(
        [
            bilinear(coarse[t], coarse_grid, lat[:, None], lon[None, :])
            for t in range(window.time.start, window.time.stop)
        ]
    )
    cube = features_from(source.read(window.time, window.lat, window.lon), interp)
    valid = np.isfinite(cube).all(axis=-1)
    return cube[valid], valid


def predict_matrix(matrix: np.ndarray, *, model: lightgbm.LGBMRegressor) -> np.ndarray:
    """1 km soil moisture = coarse (column 0) + the model's residual, clipped to 0..1 m3 m-3 (float64)."""
    if len(matrix) == 0:
        return np.zeros(0)
    residual = model.predict(pd.DataFrame(matrix, columns=list(FEATURES), copy=False))
    return np.clip(matrix[:, 0] + residual, 0.0, 1.0)


def fit_model(table: pd.DataFrame, *, seed: int = 42, params: Mapping | None = None) -> lightgbm.LGBMRegressor:
    """Fit the residual model on station rows.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`station_table`: :data:`FEATURES` columns and ``insitu`` (m3 m-3).
    seed : int
        Random state.
    params : mapping, optional
        LightGBM parameters over :data:`DEFAULT_PARAMS`.

    Returns
    -------
    lightgbm.LGBMRegressor
        Predicting ``insitu - coarse`` from :data:`FEATURES`.

    Raises
    ------
    ValueError
        Fewer than 20 complete rows.
    """
    ok = table[list(FEATURES) + ["insitu"]].notna().all(axis=1)
    if ok.sum() < 20:
        raise ValueError(f"only {int(ok.sum())} complete station rows; the downscaling model needs at least 20")
    rows = table[ok]
    model = lightgbm.LGBMRegressor(**{**DEFAULT_PARAMS, **(params or {}), "random_state": seed})
    return model.fit(rows[list(FEATURES)], rows["insitu"] - rows["coarse"])


def fit_quantile_models(
    table: pd.DataFrame, *, seed: int = 42, params: Mapping | None = None, alphas: tuple = QUANTILE_ALPHAS
) -> tuple[lightgbm.LGBMRegressor, ...]:
    """Fit one LightGBM quantile model per ``alphas`` on the rows :func:`fit_model` trains on (issue 17).

    Same target (``insitu - coarse``), features, rows and parameters as the point model, with the
    pinball loss (``objective="quantile"``, ``alpha``): the conditional quantiles of the station value
    about the coarse field, in-situ noise included.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`station_table` (the fold's training stations only).
    seed : int
        Random state.
    params : mapping, optional
        LightGBM parameters over :data:`DEFAULT_PARAMS` (``objective`` and ``alpha`` are set here).
    alphas : tuple of float in (0, 1)
        Increasing quantile levels; default :data:`QUANTILE_ALPHAS`.

    Returns
    -------
    tuple of lightgbm.LGBMRegressor
        One per alpha, in the order of ``alphas``.

    Raises
    ------
    ValueError
        Fewer than 20 complete rows, or ``alphas`` not increasing inside (0, 1).

    References
    ----------
    Koenker, R. & Bassett, G. (1978) Regression quantiles. Econometrica 46, 33-50; LightGBM
    ``objective="quantile"`` (Ke et al. 2017).
    """
    a = np.asarray(alphas, dtype="float64")
    if a.ndim != 1 or a.size < 2 or not np.all((a > 0) & (a < 1)) or not np.all(np.diff(a) > 0):
        raise ValueError(f"quantile levels must increase inside (0, 1), found {alphas}")
    ok = table[list(FEATURES) + ["insitu"]].notna().all(axis=1)
    if ok.sum() < 20:
        raise ValueError(f"only {int(ok.sum())} complete station rows; the quantile models need at least 20")
    rows = table[ok]
    out = []
    for alpha in a:
        model = lightgbm.LGBMRegressor(
            **{**DEFAULT_PARAMS, **(params or {}), "objective": "quantile", "alpha": float(alpha), "random_state": seed}
        )
        out.append(model.fit(rows[list(FEATURES)], rows["insitu"] - rows["coarse"]))
    return tuple(out)


def predict_standard_error(matrix: np.ndarray, *, models: tuple, nominal: float = QUANTILE_NOMINAL) -> np.ndarray:
    """Standard error (m3 m-3, float64) of the 1 km value from the outer two quantile models.

    ``lower = clip(coarse + q_lo)`` and ``upper = clip(coarse + q_hi)`` (clipped to 0..1 m3 m-3 as
    :func:`predict_matrix`), then :func:`products.methods.uncertainty.quantile_standard_error`:
    ``|upper - lower| / (2 z)``, ``z`` the normal quantile of ``0.5 + nominal / 2`` (1 for 0.16/0.84).

    Parameters
    ----------
    matrix : numpy.ndarray
        float (n, len(FEATURES)), column 0 the coarse field.
    models : tuple of lightgbm.LGBMRegressor
        :func:`fit_quantile_models` (the first and last are used).
    nominal : float
        Central share between their levels.

    Returns
    -------
    numpy.ndarray
        float64 (n,), non-negative.
    """
    if len(matrix) == 0:
        return np.zeros(0)
    frame = pd.DataFrame(matrix, columns=list(FEATURES), copy=False)
    lower = np.clip(matrix[:, 0] + models[0].predict(frame), 0.0, 1.0)
    upper = np.clip(matrix[:, 0] + models[-1].predict(frame), 0.0, 1.0)
    return uncertainty.quantile_standard_error(lower, upper, nominal)


def station_table(
    stations: pd.DataFrame,
    insitu: pd.DataFrame,
    *,
    source: PredictorSource,
    coarse: np.ndarray,
    coarse_grid: Grid,
    times: np.ndarray,
) -> pd.DataFrame:
    """Features at the station cells on the station days (reads one coarse cell block per station).

    Parameters
    ----------
    stations : pandas.DataFrame
        ``station``, ``lat``, ``lon`` (degrees).
    insitu : pandas.DataFrame
        ``station``, ``time`` (day), ``insitu`` (m3 m-3).
    source : PredictorSource
        The 1 km predictors (grid ``source.grid``).
    coarse : numpy.ndarray
        float (time, coarse lat, coarse lon), m3 m-3, one layer per entry of ``times``.
    coarse_grid : Grid
        Its grid.
    times : numpy.ndarray
        datetime64 days of the layers of ``coarse`` and of the predictors.

    Returns
    -------
    pandas.DataFrame
        ``station``, ``time``, ``insitu``, ``row``, ``col``, and :data:`FEATURES` (NaN where a
        predictor is missing). Stations outside the grid and days outside ``times`` are dropped.
    """
    grid, f = source.grid, FINE_PER_COARSE
    day_index = pd.Series(np.arange(len(times)), index=pd.DatetimeIndex(times).normalize())
    rows, cols = grid.index(stations["lat"], stations["lon"])
    out = []
    for code, row, col in zip(stations["station"], rows, cols, strict=True):
        if row < 0:
            continue
        obs = insitu[insitu["station"] == code]
        t = day_index.reindex(pd.DatetimeIndex(obs["time"]).normalize()).to_numpy()
        keep = np.isfinite(t)
        if not keep.any():
            continue
        r0, c0 = (row // f) * f, (col // f) * f
        block = source.read(
            slice(0, len(times)), slice(r0, min(r0 + f, grid.n_lat)), slice(c0, min(c0 + f, grid.n_lon))
        )
        lat, lon = grid.lat[row], grid.lon[col]
        interp = np.array([bilinear(coarse[k], coarse_grid, lat, lon) for k in range(len(times))])
        cube = features_from(block, np.broadcast_to(interp[:, None, None], block["lst"].shape))
        at = cube[:, row - r0, col - c0, :]
        ti = t[keep].astype("intp")
        frame = pd.DataFrame(at[ti], columns=list(FEATURES))
        frame.insert(0, "station", code)
        frame.insert(1, "time", pd.DatetimeIndex(times)[ti])
        frame.insert(2, "insitu", obs["insitu"].to_numpy()[keep])
        frame.insert(3, "row", row)
        frame.insert(4, "col", col)
        out.append(frame)
    columns = ["station", "time", "insitu", "row", "col", *FEATURES]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)


# --- storage: packed integers in NetCDF-4 and GeoTIFF --------------------------------------------


def encode(values) -> np.ndarray:
    """float m3 m-3 -> int16 = round(value / 0.001), clipped to :data:`VALID_RANGE`; NaN and -9999 -> :data:`FILL_INT`."""
    return cf.pack(
        np.asarray(values, dtype="float64"),
        scale_factor=SCALE_FACTOR,
        add_offset=ADD_OFFSET,
        dtype="int16",
        fill=FILL_INT,
        valid_range=VALID_RANGE,
        missing=float(chunked.FILL_VALUE),
    )


def decode(packed) -> np.ndarray:
    """int16 -> float32 m3 m-3 (value x 0.001 + 0), NaN at :data:`FILL_INT`."""
    return cf.unpack(packed, scale_factor=SCALE_FACTOR, add_offset=ADD_OFFSET, fill=FILL_INT, dtype="float32")


@dataclass
class WriteStats:
    """What :func:`write_product` did: files, windows, valid cells, largest window (cells), seconds."""

    paths: list[Path]
    n_windows: int
    n_valid: int
    n_cells: int
    max_window_cells: int
    seconds: float
    extra: dict = field(default_factory=dict)


def _tmp(path: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(name)


def _create_netcdf(
    path: Path,
    grid: Grid,
    times: np.ndarray,
    name: str,
    attrs: Mapping,
    global_attrs: Mapping,
    chunk: tuple[int, int],
    se_attrs: Mapping | None = None,
) -> netCDF4.Dataset:
    coords = cf.grid_coordinates(
        times, grid.lat, grid.lon, time_step="1D", resolution={"lat": grid.res, "lon": grid.res}, attrs=global_attrs
    )
    ds = cf.create_grid_netcdf(path, coords)
    try:
        chunks = (1, min(chunk[0], grid.n_lat), min(chunk[1], grid.n_lon))
        var = ds.createVariable(
            name,
            "i2",
            ("time", "lat", "lon"),
            zlib=True,
            complevel=4,
            shuffle=True,
            chunksizes=chunks,
            fill_value=FILL_INT,
        )
        var_attrs = dict(attrs)
        if se_attrs is not None:
            var_attrs = uncertainty.ancillary_attributes(var_attrs, name + SE_SUFFIX)
        var.setncatts(
            cf.grid_variable_attributes(
                {
                    **var_attrs,
                    "scale_factor": np.float32(SCALE_FACTOR),
                    "add_offset": np.float32(ADD_OFFSET),
                    "valid_range": np.array(VALID_RANGE, dtype="int16"),
                }
            )
        )
        var.set_auto_maskandscale(False)  # packed ints are written as they are
        if se_attrs is not None:
            se = chunked.float_grid_variable(ds, name + SE_SUFFIX, chunks)
            se.setncatts(
                cf.grid_variable_attributes(
                    {**se_attrs, "valid_min": np.float32(0.0)},
                    coverage_content_type=se_attrs.get("coverage_content_type", "qualityInformation"),
                )
            )
            se.set_auto_maskandscale(False)  # float32 with FILL_VALUE already in place
    except BaseException:
        ds.close()
        raise
    return ds


def standard_error_attrs(extra: str, attrs: Mapping | None = None) -> dict:
    """CF attributes of ``sm_standard_error``: :func:`products.methods.uncertainty.standard_error_attributes`
    of :data:`SM_ATTRS` (or ``attrs``), method ``quantile_regression``, ``extra`` appended to its comment."""
    return uncertainty.standard_error_attributes(attrs or SM_ATTRS, method="quantile_regression", extra=extra)


def write_product(
    features: chunked.FeatureFunction,
    predict: chunked.PredictFunction,
    *,
    grid: Grid,
    times: np.ndarray,
    nc_path: str | os.PathLike | None = None,
    tif_path: str | os.PathLike | None = None,
    name: str = "sm",
    attrs: Mapping | None = None,
    global_attrs: Mapping | None = None,
    chunk: tuple[int, int] = (240, 240),
    standard_error: chunked.PredictFunction | None = None,
    se_attrs: Mapping | None = None,
    workers: int = 1,
    client: Client | str | None = None,
) -> WriteStats:
    """Predict the grid window by window and write packed-integer NetCDF-4 and/or GeoTIFF files atomically.

    Parameters
    ----------
    features, predict : callable
        As for :func:`products.methods.chunked.predict_window`; values in m3 m-3.
    grid : Grid
        Output grid (north-up).
    times : numpy.ndarray
        datetime64 days, (n_time,); one NetCDF time step and one GeoTIFF band each.
    nc_path, tif_path : path, optional
        Outputs (at least one). NetCDF: ``name`` int16 (time, lat, lon), chunks (1, 256, 256) or
        smaller, zlib 4, ``scale_factor`` 0.001, ``add_offset`` 0, ``_FillValue`` -9999, ``valid_range``
        0..1000, CF ``crs`` grid mapping. GeoTIFF (:func:`products.methods.geotiff.create`, then
        :func:`products.methods.geotiff.to_cog`): a Cloud Optimized GeoTIFF with overviews, int16,
        one band per day, tiled 256 x 256, deflate with horizontal predictor, band scale 0.001 /
        offset 0, nodata -9999, EPSG:4326, BigTIFF when needed; ``global_attrs`` as dataset tags.
    name : str
        Variable name.
    attrs, global_attrs : mapping, optional
        Variable and file attributes (None values dropped); defaults :data:`SM_ATTRS`.
    chunk : (int, int)
        Window in (lat, lon) cells; one day per window. Use multiples of :data:`FINE_PER_COARSE`
        (the coarse-cell anomalies are computed inside a window) and of 16 for GeoTIFF tiles where
        possible. Memory: a few windows of predictors and features.
    standard_error : callable, optional
        ``standard_error(matrix) -> values`` (m3 m-3, one per row), called on the same feature
        matrix as ``predict`` in each window (e.g. :func:`predict_standard_error`). With
        ``se_attrs``, the NetCDF file gets ``name + "_standard_error"``: float32 (time, lat, lon),
        the estimate's chunks, ``_FillValue`` -9999 (:data:`products.methods.chunked.FILL_VALUE`)
        wherever the estimate is missing or the standard error is not finite, ``valid_min`` 0, named
        in the estimate's ``ancillary_variables``. The GeoTIFF holds the estimate only.
    se_attrs : mapping, optional
        Attributes of the standard error (:func:`standard_error_attrs`); required with ``standard_error``.
    workers, client
        Where the windows are computed (:func:`products.methods.chunked.run_windows`): in this process
        (default; the next window is read and the previous one written on an I/O thread while the
        current one is predicted), in ``workers`` local processes, or on a Dask cluster (``client``:
        ``"local"``, a scheduler address or a ``distributed.Client``; ``features``, ``predict`` and
        ``standard_error`` must then pickle). The files are written by this process only; the output
        does not depend on where windows were computed.

    Returns
    -------
    WriteStats
        ``extra["n_standard_error"]``: cells with a standard error written (when one is).

    Raises
    ------
    ValueError
        No output path, or features/predictions of the wrong size (see ``predict_window``).
    Exception
        Whatever ``features`` or ``predict`` raise; in every case the temporary files are removed
        and nothing is left at the targets (older files there are untouched).
    """
    targets = [Path(p) for p in (nc_path, tif_path) if p is not None]
    if not targets:
        raise ValueError("write_product: give nc_path, tif_path or both")
    if (standard_error is None) != (se_attrs is None):
        raise ValueError("write_product: give standard_error and se_attrs together")
    with_se = standard_error is not None and nc_path is not None
    start = time.perf_counter()
    times = np.asarray(times, dtype="datetime64[ns]")
    todo = chunked.windows((len(times), grid.n_lat, grid.n_lon), (1, *chunk))
    tmps = {p: _tmp(p) for p in targets}
    tif_target = Path(tif_path) if tif_path is not None else None
    staging = _tmp(tif_target) if tif_target is not None else None  # tiled GeoTIFF, rewritten as a COG
    nc = tif = None
    n_valid = n_se = 0
    gattrs = cf.global_attributes(global_attrs, module="products.generators.sm_1km")
    try:
        if nc_path is not None:
            nc = _create_netcdf(
                tmps[Path(nc_path)],
                grid,
                times,
                name,
                attrs or SM_ATTRS,
                gattrs,
                (256, 256),
                se_attrs=se_attrs if with_se else None,
            )
        if staging is not None:
            tif = geotiff.create(
                staging,
                width=grid.n_lon,
                height=grid.n_lat,
                count=len(times),
                dtype="int16",
                transform=geotiff.north_up_transform(grid.west, grid.north, grid.res, grid.res),
                nodata=int(FILL_INT),
                predictor=2,
                bigtiff="IF_SAFER",
                scales=[SCALE_FACTOR] * len(times),
                offsets=[ADD_OFFSET] * len(times),
                units=[UNITS] * len(times),
                descriptions=[f"{name} {np.datetime_as_string(t, unit='D')}" for t in times],
                tags=gattrs,
            )
        counted = {"se": 0}

        def write(window: chunked.Window, result: tuple[np.ndarray, np.ndarray | None]) -> int:
            packed, se = result
            n = int(np.count_nonzero(packed != FILL_INT))
            if nc is not None and n:
                nc[name][window.key] = packed
            if se is not None and nc is not None:
                counted["se"] += int(np.count_nonzero(se != chunked.FILL_VALUE))
                nc[name + SE_SUFFIX][window.key] = se
            if tif is not None:
                rw = RasterWindow(window.lon.start, window.lat.start, window.shape[2], window.shape[1])
                tif.write(packed[0], window.time.start + 1, window=rw)
            return n

        n_valid = chunked.run_windows(
            todo,
            features,
            functools.partial(window_values, predict=predict, standard_error=standard_error if with_se else None),
            write,
            workers=workers,
            client=client,
        )
        n_se = counted["se"]
        for handle in (nc, tif):
            if handle is not None:
                handle.close()
        nc = tif = None
        if staging is not None and tif_target is not None:
            geotiff.to_cog(staging, tmps[tif_target])
            staging.unlink()
        for target, tmp in tmps.items():
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
    except BaseException:
        for handle in (nc, tif):
            if handle is not None:
                handle.close()
        for tmp in (*tmps.values(), *([staging] if staging is not None else [])):
            tmp.unlink(missing_ok=True)
        raise
    return WriteStats(
        targets,
        len(todo),
        n_valid,
        len(times) * grid.n_lat * grid.n_lon,
        max((math.prod(w.shape) for w in todo), default=0),
        time.perf_counter() - start,
        {"n_standard_error": n_se} if with_se else {},
    )


def window_values(
    window: chunked.Window,
    matrix: np.ndarray,
    valid: np.ndarray,
    *,
    predict: chunked.PredictFunction,
    standard_error: chunked.PredictFunction | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``compute`` of :func:`write_product`: one window's packed estimate and its standard error.

    Returns
    -------
    packed : numpy.ndarray
        int16 ``window.shape`` (:func:`encode` of the prediction; :data:`FILL_INT` where missing).
    se : numpy.ndarray or None
        float32 ``window.shape``, m3 m-3, :data:`products.methods.chunked.FILL_VALUE` where the
        estimate is missing or the standard error is not finite or negative; None without
        ``standard_error`` or when the window has no estimate.
    """
    packed = encode(chunked.predict_given(window, matrix, valid, predict=predict))
    if standard_error is None or not np.any(packed != FILL_INT):
        return packed, None
    se = chunked.predict_given(window, matrix, valid, predict=standard_error)
    se[(packed == FILL_INT) | ~(se >= 0)] = chunked.FILL_VALUE
    return packed, se


def field_features(window: chunked.Window, *, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``features`` for writing an in-memory (time, lat, lon) field as it is (predict = column 0)."""
    block = np.asarray(values[window.key], dtype="float64")
    valid = np.isfinite(block)
    return block[valid][:, None], valid


def first_column(matrix: np.ndarray) -> np.ndarray:
    """``predict`` that returns column 0 (used with :func:`field_features` and :func:`interp_features`)."""
    return matrix[:, 0]


def interp_features(window: chunked.Window, *, grid: Grid, coarse: np.ndarray, coarse_grid: Grid):
    """``features``: the coarse field bilinearly interpolated to ``grid`` (the coarse-only 1 km baseline)."""
    lat, lon = grid.lat[window.lat], grid.lon[window.lon]
    interp = np.stack(
        [
            bilinear(coarse[t], coarse_grid, lat[:, None], lon[None, :])
            for t in range(window.time.start, window.time.stop)
        ]
    )
    valid = np.isfinite(interp)
    return interp[valid][:, None], valid


# --- statistics of station frames -------------------------------------------------------------

IN_SITU_NOTE = (
    "observed: the in-situ values of the held-out stations; no in-situ error added (obs_error_std = 0): "
    "the quantile models are fitted to station values, so their spread already holds the in-situ error"
)
"""The ``note`` of the coverage at held-out stations (what was compared, and why no error is added)."""


def held_out_coverage(frame: pd.DataFrame, *, split: str, nominal: float = uncertainty.NOMINAL):
    """Coverage of ``sm_1km +- z * sm_1km_standard_error`` at the held-out rows of a split (issue 17).

    Parameters
    ----------
    frame : pandas.DataFrame
        A frame of :attr:`HeldOut.frames`: ``sm_1km``, ``sm_1km_standard_error``, ``insitu`` (m3 m-3),
        held-out (or out-of-fold) rows only.
    split : str
        The validation split's name as stored (``twin_block_validation``).
    nominal : float
        Stated coverage of the interval (default 0.90, z = 1.645).

    Returns
    -------
    products.methods.uncertainty.Coverage
        Against the in-situ values as they are (``obs_error_std`` 0, see :data:`IN_SITU_NOTE`).
    """
    return uncertainty.interval_coverage(
        frame["sm_1km"].to_numpy(dtype="float64"),
        frame["sm_1km_standard_error"].to_numpy(dtype="float64"),
        frame["insitu"].to_numpy(dtype="float64"),
        nominal=nominal,
        obs_error_std=0.0,
        split=split,
        note=IN_SITU_NOTE,
    )


def station_medians(frame: pd.DataFrame) -> dict:
    """Median over stations of per-station r and ubRMSE (the seed reports station statistics), with counts."""
    per = [summary(g["sim"].to_numpy(), g["obs"].to_numpy()) for _, g in frame.groupby("station")]
    per = [p for p in per if p["n"] >= 2]
    return {
        "n_stations": len(per),
        "r": float(np.nanmedian([p["r"] for p in per])) if per else np.nan,
        "ubrmse": float(np.nanmedian([p["ubrmse"] for p in per])) if per else np.nan,
    }


# --- real inputs ---------------------------------------------------------------------------------


def modis_lst_on_grid(
    lst: np.ndarray, x: np.ndarray, y: np.ndarray, grid: Grid, *, rows: slice | None = None, cols: slice | None = None
) -> np.ndarray:
    """Nearest-neighbour resampling of a MODIS sinusoidal tile onto (a window of) a lat/lon grid.

    Parameters
    ----------
    lst : numpy.ndarray
        float (n_y, n_x), the tile (e.g. ``LST_Day_1km``, K), NaN where not retrieved.
    x, y : numpy.ndarray
        float64 (n_x,), (n_y,) cell centres of the tile, m on the MODIS sphere (``y`` descending).
    grid : Grid
        Target grid; ``rows``/``cols`` pick a window (default all).

    Returns
    -------
    numpy.ndarray
        float64 (rows, cols), NaN outside the tile.

    References
    ----------
    MODIS sinusoidal grid: x = R lon cos(lat), y = R lat, R = 6371007.181 m (Wan 2013, MOD11 User's Guide).
    """
    rows = rows or slice(0, grid.n_lat)
    cols = cols or slice(0, grid.n_lon)
    lat = np.deg2rad(grid.lat[rows])[:, None]
    lon = np.deg2rad(grid.lon[cols])[None, :]
    tx, ty = RADIUS * lon * np.cos(lat), np.broadcast_to(RADIUS * lat, (lat.size, lon.size))
    dx, dy = x[1] - x[0], y[0] - y[1]
    j = np.floor((tx - (x[0] - dx / 2)) / dx).astype("int64")
    i = np.floor(((y[0] + dy / 2) - ty) / dy).astype("int64")
    inside = (i >= 0) & (i < y.size) & (j >= 0) & (j < x.size)
    out = np.full(inside.shape, np.nan)
    out[inside] = lst[i[inside], j[inside]]
    return out


def lonlat_grid_for(lat_min: float, lat_max: float, lon_min: float, lon_max: float, res: float = FINE_RES) -> Grid:
    """The smallest grid of ``res`` cells aligned with the global 0.25 degree grid that covers a box (degrees)."""
    north = math.ceil(lat_max / COARSE_RES) * COARSE_RES
    south = math.floor(lat_min / COARSE_RES) * COARSE_RES
    west = math.floor(lon_min / COARSE_RES) * COARSE_RES
    east = math.ceil(lon_max / COARSE_RES) * COARSE_RES
    return Grid(north, west, int(round((north - south) / res)), int(round((east - west) / res)), res)


# --- spatial hold-out: blocks sized from the data, with a buffer ------------------------------------

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), km, for great-circle distances between stations."""
RANGE_BINS_KM = (0.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 200.0)
"""Distance classes (km) of :func:`empirical_variogram`."""


def great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Haversine distance (km) between points, broadcast; degrees in, float64 out (sphere of :data:`EARTH_RADIUS_KM`)."""
    p1, p2 = np.deg2rad(np.asarray(lat1, dtype="float64")), np.deg2rad(np.asarray(lat2, dtype="float64"))
    dl = np.deg2rad(np.asarray(lon2, dtype="float64") - np.asarray(lon1, dtype="float64"))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def empirical_variogram(values, lat, lon, bins_km=RANGE_BINS_KM) -> pd.DataFrame:
    """Empirical semivariogram of a field sampled at points, from pairs of points on the same day.

    Parameters
    ----------
    values : array_like
        float (n_days, n_points), any units (the semivariance is in those units squared); NaN skipped.
    lat, lon : array_like
        (n_points,), degrees.
    bins_km : sequence of float
        Increasing distance class edges, km.

    Returns
    -------
    pandas.DataFrame
        One row per class: ``lower``, ``upper``, ``centre`` (km), ``gamma`` (mean of
        ``(v_i - v_j)**2 / 2`` over the pairs of the class and the days), ``pairs`` (point pairs x
        days); ``attrs["sill"]``: the variance of the values about each day's mean, pooled over days
        (the semivariance of uncorrelated pairs).

    Raises
    ------
    ValueError
        ``values`` is not 2-D with one column per point.

    References
    ----------
    Cressie, N. (1993): Statistics for Spatial Data, Wiley, section 2.4 (the classical estimator).
    """
    v = np.atleast_2d(np.asarray(values, dtype="float64"))
    lat, lon = np.asarray(lat, dtype="float64"), np.asarray(lon, dtype="float64")
    if v.ndim != 2 or v.shape[1] != lat.size or lon.size != lat.size:
        raise ValueError(f"values must be (n_days, n_points) with {lat.size} points, found {v.shape}")
    iu = np.triu_indices(lat.size, 1)
    dist = great_circle_km(lat[iu[0]], lon[iu[0]], lat[iu[1]], lon[iu[1]])
    edges = np.asarray(bins_km, dtype="float64")
    cls = np.digitize(dist, edges) - 1
    inside = (cls >= 0) & (cls < edges.size - 1)
    sums, counts = np.zeros(edges.size - 1), np.zeros(edges.size - 1)
    for day in v:
        d2 = (day[iu[0]] - day[iu[1]]) ** 2 / 2
        ok = np.isfinite(d2) & inside
        sums += np.bincount(cls[ok], weights=d2[ok], minlength=edges.size - 1)
        counts += np.bincount(cls[ok], minlength=edges.size - 1)
    out = pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "centre": (edges[:-1] + edges[1:]) / 2,
            "gamma": np.where(counts > 0, sums / np.maximum(counts, 1), np.nan),
            "pairs": counts.astype("int64"),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days
        anomalies = v - np.nanmean(v, axis=1, keepdims=True)
    out.attrs["sill"] = float(np.nanmean(anomalies**2)) if np.isfinite(anomalies).any() else float("nan")
    return out


def practical_range_km(variogram: pd.DataFrame, fraction: float = 0.95, min_pairs: int = 30) -> float:
    """The distance (km) beyond which the semivariance stays at or above ``fraction`` of the sill.

    The upper edge of the last distance class whose semivariance is below ``fraction`` x sill (every
    farther class reaches it: pairs that far apart are correlated by less than ``1 - fraction``).
    "Stays" rather than "first reaches": periodic fields dip again after a first peak (the hole effect).
    Classes with fewer than ``min_pairs`` pairs are skipped. When even the last class is below, its
    upper edge is returned (a lower bound of the range); when every class is above, the first class's
    upper edge. NaN without a sill.

    References
    ----------
    Cressie (1993), section 2.3.1 (sill, range); Roberts et al. (2017), doi:10.1111/ecog.02881 (blocks at
    least the range of the residuals' autocorrelation).
    """
    sill = variogram.attrs.get("sill", np.nan)
    usable = variogram[(variogram["pairs"] >= min_pairs) & variogram["gamma"].notna()]
    if not np.isfinite(sill) or sill <= 0 or usable.empty:
        return float("nan")
    below = np.flatnonzero(usable["gamma"].to_numpy() < fraction * sill)
    return float(usable["upper"].iloc[below[-1] if below.size else 0])


def block_size_deg(range_km: float, step: float = COARSE_RES) -> float:
    """Block edge (degrees) at least ``range_km`` along a meridian, rounded up to whole ``step`` (coarse cells)."""
    if not np.isfinite(range_km) or range_km <= 0:
        raise ValueError(f"a block needs a positive finite range, found {range_km}")
    degrees = range_km / (np.pi * EARTH_RADIUS_KM / 180.0)
    return float(math.ceil(round(degrees / step, 9)) * step)


def _beyond(lat, lon, test: np.ndarray, buffer_km: float) -> np.ndarray:
    """bool (n,): not in ``test`` and farther than ``buffer_km`` from every station of ``test``."""
    lat, lon = np.asarray(lat, dtype="float64"), np.asarray(lon, dtype="float64")
    if not test.any():
        return np.ones(lat.size, dtype=bool)
    nearest = great_circle_km(lat[:, None], lon[:, None], lat[None, test], lon[None, test]).min(axis=1)
    return ~test & (nearest > buffer_km)


def block_holdout(lat, lon, *, block_deg: float, buffer_km: float, fraction: float = 0.3, seed: int = 0) -> np.ndarray:
    """Hold out a compact cluster of whole spatial blocks, and leave a buffer around it out of training.

    Stations are binned into ``block_deg`` blocks (:func:`products.methods.cv.block_ids`). From a
    start block, blocks are added nearest first (distance between block centres), as many as bring
    the held-out stations closest to ``fraction`` of all (at least one block); training stations are the others farther than ``buffer_km``
    from every held-out station; those within it are ``buffer`` (used nowhere). The start block is the
    one that leaves the most training stations (ties: a seeded order). Only the station positions are
    read, never a value, so the split cannot depend on the held-out targets.

    Parameters
    ----------
    lat, lon : array_like
        (n_stations,), degrees.
    block_deg : float
        Block edge, degrees (> 0): at least the correlation range (:func:`block_size_deg`).
    buffer_km : float
        Minimum distance (km, >= 0) between a training and a held-out station.
    fraction : float
        Share of the stations held out (0 < fraction < 1).
    seed : int
        Order of the candidate start blocks (ties only).

    Returns
    -------
    numpy.ndarray
        int8 (n_stations,): 0 training, 1 held out, 2 buffer.

    Raises
    ------
    ValueError
        Bad ``fraction`` or ``buffer_km``, fewer than two blocks, or no split leaves a training station.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881 (blocked cross-validation with buffers).
    """
    if not 0 < fraction < 1 or buffer_km < 0:
        raise ValueError(f"fraction must be in (0, 1) and buffer_km >= 0, found {fraction}, {buffer_km}")
    lat, lon = np.asarray(lat, dtype="float64"), np.asarray(lon, dtype="float64")
    ids = block_ids(lat, lon, block_deg)
    blocks, inverse = np.unique(ids, return_inverse=True)
    if blocks.size < 2:
        raise ValueError(f"{blocks.size} block(s) of {block_deg} degree: a block hold-out needs at least two")
    clat = np.array([lat[inverse == b].mean() for b in range(blocks.size)])
    clon = np.array([lon[inverse == b].mean() for b in range(blocks.size)])
    counts = np.bincount(inverse, minlength=blocks.size)
    best: np.ndarray | None = None
    for start in np.random.default_rng(seed).permutation(blocks.size):
        order = np.argsort(great_circle_km(clat[start], clon[start], clat, clon), kind="stable")
        n_take = int(np.argmin(np.abs(np.cumsum(counts[order]) - fraction * lat.size)) + 1)
        test = np.isin(inverse, order[: min(n_take, blocks.size - 1)])
        train = _beyond(lat, lon, test, buffer_km)
        labels = np.where(test, 1, np.where(train, 0, 2)).astype("int8")
        if best is None or (labels == 0).sum() > (best == 0).sum():
            best = labels
    if best is None or not (best == 0).any():
        raise ValueError(f"no block hold-out leaves a training station beyond {buffer_km} km")
    return best


def buffered_block_folds(lat, lon, *, block_deg: float, buffer_km: float):
    """Leave-one-block-out folds over stations with a buffer: each block is the test set of one fold.

    Parameters
    ----------
    lat, lon : array_like
        (n_stations,), degrees.
    block_deg : float
        Block edge, degrees.
    buffer_km : float
        Training stations of a fold are farther than this from every test station (km).

    Yields
    ------
    train, test : numpy.ndarray
        int64 station positions; folds whose training set is empty are skipped.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881 (buffered leave-one-block-out).
    """
    ids = block_ids(lat, lon, block_deg)
    for block in np.unique(ids):
        test = ids == block
        train = _beyond(lat, lon, test, buffer_km)
        if train.any():
            yield np.flatnonzero(train).astype("int64"), np.flatnonzero(test).astype("int64")


# --- the held-out splits of the downscaling model -------------------------------------------------

SPLITS = {
    "block": "whole spatial blocks held out, training stations beyond a buffer of the residual's range",
    "random": "stations held out at random (neighbours of training stations: inflated, shown for comparison)",
}


@dataclass
class FoldFit:
    """One fitted fold: who trained and who was held out, the model and its predictions.

    Attributes
    ----------
    train_stations, test_stations, buffer_stations : list of str
        Disjoint station codes; buffer stations are neither trained on nor scored in this fold.
    model : lightgbm.LGBMRegressor
        Fitted on the training stations' rows only.
    train_prediction, test_prediction : numpy.ndarray
        float64, the 1 km values (m3 m-3) the model gives the training rows and the held-out rows
        (in the order of the table's rows of those stations).
    quantile_models : tuple of lightgbm.LGBMRegressor
        :func:`fit_quantile_models` on the same training rows (levels :data:`QUANTILE_ALPHAS`).
    train_standard_error, test_standard_error : numpy.ndarray
        float64, :func:`predict_standard_error` of the training rows and of the held-out rows (m3 m-3).
    """

    train_stations: list
    test_stations: list
    buffer_stations: list
    model: lightgbm.LGBMRegressor
    train_prediction: np.ndarray
    test_prediction: np.ndarray
    quantile_models: tuple = ()
    train_standard_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    test_standard_error: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class HeldOut:
    """Output of :func:`fit_held_out`.

    Attributes
    ----------
    block_deg, buffer_km : float
        The spatial blocks (degrees) and the buffer (km) of the block splits.
    labels : pandas.Series
        int8 per station code: 0 training, 1 held out (block validation), 2 buffer.
    validation : dict
        ``{"block": FoldFit, "random": FoldFit}``: one hold-out each (the block one's model writes the grid).
    cv : dict
        ``{"block": [FoldFit, ...], "random": [FoldFit, ...]}``: buffered leave-one-block-out folds and
        station-grouped folds, over that split's training stations only.
    frames : dict
        ``{(split, "validation" | "cv"): DataFrame}`` with ``station``, ``time``, ``insitu``, ``sm_1km``,
        ``coarse_bilinear``, ``sm_1km_standard_error`` (held-out rows; out-of-fold for the CV: the
        quantile models of the fold that held the row out).
    """

    block_deg: float
    buffer_km: float
    labels: pd.Series
    validation: dict
    cv: dict
    frames: dict


def _fit_fold(table: pd.DataFrame, train, test, buffer, *, seed: int, params) -> FoldFit:
    assert_disjoint(train, test)
    assert_disjoint(train, buffer)
    tr = table[table["station"].isin(train)]
    te = table[table["station"].isin(test)]
    model = fit_model(tr, seed=seed, params=params)
    quantiles = fit_quantile_models(tr, seed=seed, params=params)  # the same training rows (issue 17)
    x_tr, x_te = tr[list(FEATURES)].to_numpy(), te[list(FEATURES)].to_numpy()
    return FoldFit(
        sorted(train),
        sorted(test),
        sorted(buffer),
        model,
        predict_matrix(x_tr, model=model),
        predict_matrix(x_te, model=model),
        quantiles,
        predict_standard_error(x_tr, models=quantiles),
        predict_standard_error(x_te, models=quantiles),
    )


def _held_out_frame(table: pd.DataFrame, fits: list[FoldFit]) -> pd.DataFrame:
    parts = []
    for fit in fits:
        te = table[table["station"].isin(fit.test_stations)]
        parts.append(
            te[["station", "time", "insitu"]].assign(
                sm_1km=fit.test_prediction,
                coarse_bilinear=te["coarse"].to_numpy(),
                sm_1km_standard_error=fit.test_standard_error,
            )
        )
    columns = ["station", "time", "insitu", "sm_1km", "coarse_bilinear", "sm_1km_standard_error"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def fit_held_out(
    table: pd.DataFrame,
    stations: pd.DataFrame,
    *,
    block_deg: float,
    buffer_km: float,
    validation_fraction: float = 0.3,
    n_splits: int = 5,
    seed: int = 42,
    params: Mapping | None = None,
) -> HeldOut:
    """Fit the downscaling model on every split: a spatial-block hold-out and a random one, each with its CV.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`station_table` rows (``station``, ``time``, ``insitu`` m3 m-3, :data:`FEATURES`).
    stations : pandas.DataFrame
        ``station``, ``lat``, ``lon`` (degrees) of the stations of ``table``.
    block_deg, buffer_km : float
        Spatial blocks (:func:`block_size_deg`) and buffer (km), both at least the correlation range of
        the model's target (``insitu - coarse``), chosen without any station value.
    validation_fraction : float
        Share of stations held out by each hold-out.
    n_splits : int
        Station-grouped folds of the random CV (the block CV leaves one block out per fold).
    seed : int
        Random station draw, block order on ties and model seed.
    params : mapping, optional
        LightGBM parameters over :data:`DEFAULT_PARAMS`.

    Returns
    -------
    HeldOut
        Every model (the point model and its two quantile models, :func:`fit_quantile_models`) is
        fitted on its fold's training stations only; the split depends on the
        station positions and ``seed`` only (no value of a held-out station is read before scoring).

    Raises
    ------
    ValueError
        Too few stations or blocks for the splits, a fold with fewer than 20 training rows.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881.
    """
    codes = np.array(sorted(table["station"].unique()))
    if codes.size < max(2 * n_splits, 4):
        raise ValueError(f"{codes.size} stations with data: too few for {n_splits} folds and a validation set")
    pos = stations.drop_duplicates("station").set_index("station").loc[codes]
    lat, lon = pos["lat"].to_numpy(dtype="float64"), pos["lon"].to_numpy(dtype="float64")

    # spatial blocks with a buffer (the headline)
    labels = pd.Series(
        block_holdout(lat, lon, block_deg=block_deg, buffer_km=buffer_km, fraction=validation_fraction, seed=seed),
        index=codes,
        name="block_label",
    )
    train_codes = codes[labels.to_numpy() == 0]
    block_val = _fit_fold(
        table, train_codes, codes[labels.to_numpy() == 1], codes[labels.to_numpy() == 2], seed=seed, params=params
    )
    in_train = labels.to_numpy() == 0
    block_cv = []
    for tr, te in buffered_block_folds(lat[in_train], lon[in_train], block_deg=block_deg, buffer_km=buffer_km):
        rest = np.setdiff1d(np.arange(in_train.sum()), np.concatenate([tr, te]))
        block_cv.append(_fit_fold(table, train_codes[tr], train_codes[te], train_codes[rest], seed=seed, params=params))

    # stations at random (as before issue 16; inflated by neighbours, kept beside the blocks)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(validation_fraction * codes.size)))
    random_val = np.array(sorted(rng.choice(codes, n_val, replace=False)))
    random_train = np.array(sorted(set(codes) - set(random_val)))
    rand_val = _fit_fold(table, random_train, random_val, [], seed=seed, params=params)
    train = table[table["station"].isin(random_train)].reset_index(drop=True)
    rand_cv = [
        _fit_fold(
            table,
            np.unique(train["station"].iloc[tr]),
            np.unique(train["station"].iloc[te]),
            [],
            seed=seed,
            params=params,
        )
        for tr, te in leave_station_out(train["station"], n_splits=n_splits)
    ]
    frames = {
        ("block", "validation"): _held_out_frame(table, [block_val]),
        ("block", "cv"): _held_out_frame(table, block_cv),
        ("random", "validation"): _held_out_frame(table, [rand_val]),
        ("random", "cv"): _held_out_frame(table, rand_cv),
    }
    return HeldOut(
        float(block_deg),
        float(buffer_km),
        labels,
        {"block": block_val, "random": rand_val},
        {"block": block_cv, "random": rand_cv},
        frames,
    )
