"""The synthetic twin of the 1 km soil-moisture chain (:mod:`products.generators.sm_1km`), no Django.

:class:`Twin` is a world with a known 1 km truth whose every field is analytic, so any window can be
read alone (a :class:`products.generators.sm_1km.PredictorSource`); it also draws a coarse
satellite product with gaps, a biased reanalysis and stations. :func:`run_twin` runs the whole
chain of the generator on it (step 1, training, spatial-block and random hold-outs, the 1 km grid written window
by window) and :func:`score_against_truth` scores the result against the truth. Every output of it
is labelled :attr:`products.data_kind.DataKind.SYNTHETIC`.

This module imports the generator it tests (downward); the generator never imports it.

References
----------
Zheng, C., Jia, L., Zhao, T. (2023): A 21-year dataset (2000-2020) of gap-free global daily surface
soil moisture at 1-km grid resolution. Scientific Data 10, 139, doi:10.1038/s41597-023-01991-w.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import lightgbm
import netCDF4
import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import norm

from products.data_kind import DataKind
from products.generators.sm_1km import (
    COARSE_RES,
    FINE_PER_COARSE,
    FINE_RES,
    PREDICTORS,
    Grid,
    HeldOut,
    PredictorSource,
    Seamless,
    WriteStats,
    bilinear,
    block_mean,
    block_size_deg,
    empirical_variogram,
    fit_held_out,
    held_out_coverage,
    practical_range_km,
    predict_matrix,
    predict_standard_error,
    seamless_coarse,
    standard_error_attrs,
    station_table,
    window_features,
    write_product,
)
from products.methods import cf, chunked, uncertainty

VARIOGRAM_POINTS = 1500
"""Random 1 km cells of :meth:`Twin.residual_variogram` (about 1.1 million pairs a day)."""
VARIOGRAM_DAYS = 5
"""Days of :meth:`Twin.residual_variogram`, spread over the record."""

# --- the synthetic twin --------------------------------------------------------------------------


def _waves(y: np.ndarray, x: np.ndarray, params: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """Sum of plane waves, unit variance; ``params`` rows (kx, ky, phase, omega); y, x in km (cells)."""
    out = 0.0
    for kx, ky, phase, omega in params:
        tt = 0.0 if t is None else omega * t
        out = out + np.cos(kx * x + ky * y + phase + tt)
    return out * np.sqrt(2.0 / len(params))


def _wave_params(rng: np.random.Generator, n: int, wavelengths: tuple[float, float], omega: float = 0.0) -> np.ndarray:
    lam = rng.uniform(*wavelengths, n)
    angle = rng.uniform(0, np.pi, n)
    k = 2 * np.pi / lam
    return np.column_stack(
        [k * np.cos(angle), k * np.sin(angle), rng.uniform(0, 2 * np.pi, n), rng.uniform(-omega, omega, n)]
    )


def _hash_noise(t, y, x, seed: int) -> np.ndarray:
    """Deterministic N(0, 1)-like noise per (day, row, col) cell, computable for any window."""
    h = (
        np.asarray(t, dtype="uint64") * np.uint64(73856093)
        ^ np.asarray(y, dtype="uint64") * np.uint64(19349663)
        ^ np.asarray(x, dtype="uint64") * np.uint64(83492791)
        ^ np.uint64(seed * 2654435761 % 2**32)
    )
    h = (h ^ (h >> np.uint64(13))) * np.uint64(0x5BD1E995) & np.uint64(0xFFFFFFFF)
    h = h ^ (h >> np.uint64(15))
    u = (h & np.uint64(0xFFFFFF)).astype("float64") / float(0x1000000)
    return (u - 0.5) * np.sqrt(12.0)


class Twin(PredictorSource):
    """SYNTHETIC twin with a known 1 km truth; every field is analytic, so any window can be read alone.

    Truth (m3 m-3): ``0.22 + 0.06 large + 0.05 dynamic(t) + 0.035 veg_fine - 0.025 topo_fine``,
    clipped to 0.02..0.5, with ``large`` (150-500 km waves), ``dynamic`` (100-300 km waves moving
    with time), ``veg_fine`` (2-10 km) and ``topo_fine`` (3-12 km). Predictors: elevation (m) from
    the large and fine topography; NDVI from the large field and ``veg_fine``; albedo from NDVI and
    topography; LST (K) cooler where wetter (-30 K per m3 m-3) with a lapse rate and 0.5 K noise.
    Coarse satellite product: 0.25 degree block mean of the truth + N(0, 0.02) noise, a fraction of
    the cell-days missing; reanalysis: the block mean smoothed over neighbouring cells, compressed
    and biased (0.10 + 0.55 x), + N(0, 0.005); stations: truth at random 1 km cells + N(0, 0.01),
    10 % of days missing.

    Parameters
    ----------
    n_coarse_lat, n_coarse_lon : int
        Domain size in 0.25 degree cells (x 30 at 1 km).
    n_days : int
        Days from ``start``.
    n_stations : int
        Stations at random cells (distinct).
    seed : int
        Everything is drawn from it.
    gap_fraction : float
        Satellite cell-days missing.
    north, west : float
        Domain corner, degrees (default 40 N, 100 W).
    with_coarse : bool
        Build the coarse products and stations (False: predictors and truth only, e.g. for a benchmark).
    """

    def __init__(
        self,
        n_coarse_lat: int = 8,
        n_coarse_lon: int = 8,
        n_days: int = 30,
        n_stations: int = 120,
        *,
        seed: int = 42,
        gap_fraction: float = 0.3,
        north: float = 40.0,
        west: float = -100.0,
        start: str = "2019-06-01",
        with_coarse: bool = True,
    ):
        rng = np.random.default_rng(seed)
        f = FINE_PER_COARSE
        self.seed = seed
        self.grid = Grid(north, west, n_coarse_lat * f, n_coarse_lon * f, FINE_RES)
        self.coarse_grid = Grid(north, west, n_coarse_lat, n_coarse_lon, COARSE_RES)
        self.times = (np.datetime64(start, "D") + np.arange(n_days)).astype("datetime64[ns]")
        self._large = _wave_params(rng, 4, (150, 500))
        self._topo_large = _wave_params(rng, 4, (100, 400))
        self._dynamic = _wave_params(rng, 3, (100, 300), omega=0.3)
        self._veg = _wave_params(rng, 6, (2, 10))
        self._topo = _wave_params(rng, 6, (3, 12))
        self.satellite: np.ndarray | None = None  # (time, coarse lat, coarse lon), m3 m-3; None without coarse
        self.reanalysis: np.ndarray | None = None
        self.stations = pd.DataFrame(columns=["station", "lat", "lon", "row", "col"])
        self.insitu = pd.DataFrame(columns=["station", "time", "insitu"])
        if with_coarse:
            self._build_coarse(rng, gap_fraction)
            self._build_stations(rng, n_stations)

    def _fields(self, time: slice, lat: slice, lon: slice) -> dict[str, np.ndarray]:
        t = np.arange(time.start, time.stop, dtype="float64")[:, None, None]
        y = np.arange(lat.start, lat.stop, dtype="float64")[None, :, None]
        x = np.arange(lon.start, lon.stop, dtype="float64")[None, None, :]
        large = _waves(y, x, self._large)
        veg, topo = _waves(y, x, self._veg), _waves(y, x, self._topo)
        dynamic = _waves(y, x, self._dynamic, t)
        truth = np.clip(0.22 + 0.06 * large + 0.05 * dynamic + 0.035 * veg - 0.025 * topo, 0.02, 0.5)
        elevation = 400 + 250 * _waves(y, x, self._topo_large) + 60 * topo
        ndvi = np.clip(0.45 + 0.1 * large + 0.15 * veg + 0.02 * np.sin(t / 9.0), 0.0, 0.95)
        albedo = 0.22 - 0.08 * (ndvi - 0.45) + 0.01 * topo
        noise = _hash_noise(t, y, x, self.seed)
        lst = 300 + 3 * np.cos(t / 5.0) - 30 * (truth - 0.22) - 0.0065 * (elevation - 400) + 0.5 * noise
        shape = truth.shape
        return {
            "truth": truth,
            "lst": lst,
            "ndvi": np.broadcast_to(ndvi, shape),
            "albedo": np.broadcast_to(albedo, shape),
            "elevation": np.broadcast_to(elevation, shape),
        }

    def read(self, time: slice, lat: slice, lon: slice) -> dict[str, np.ndarray]:
        """SYNTHETIC predictors of a window (see :class:`PredictorSource`)."""
        fields = self._fields(time, lat, lon)
        return {p: np.asarray(fields[p], dtype="float64") for p in PREDICTORS}

    def truth(self, time: slice, lat: slice, lon: slice) -> np.ndarray:
        """The known 1 km soil moisture of a window, float64 (t, y, x), m3 m-3."""
        return self._fields(time, lat, lon)["truth"]

    def block_truth(self) -> np.ndarray:
        """0.25 degree block means of the truth, float64 (time, coarse lat, coarse lon), built one row of blocks at a time."""
        f, n_t = FINE_PER_COARSE, len(self.times)
        rows = [
            block_mean(self.truth(slice(0, n_t), slice(i * f, (i + 1) * f), slice(0, self.grid.n_lon)))
            for i in range(self.coarse_grid.n_lat)
        ]
        return np.concatenate(rows, axis=1)

    def residual_variogram(
        self, coarse: np.ndarray, *, n_points: int = VARIOGRAM_POINTS, n_days: int = VARIOGRAM_DAYS, seed: int = 0
    ):
        """Empirical variogram of the downscaling target ``truth - coarse bilinear`` at random 1 km cells.

        The model learns this residual, so its correlation range is the distance over which a training
        station can tell the answer at a held-out one. Read from the known truth over the whole grid (no
        station value), at ``n_points`` random cells (seeded) on ``n_days`` days spread over the record.

        Parameters
        ----------
        coarse : numpy.ndarray
            float (time, coarse lat, coarse lon), the seamless coarse field, m3 m-3.
        n_points, n_days : int
            Sample size (pairs grow as ``n_points**2 / 2`` per day).
        seed : int
            Cell sample.

        Returns
        -------
        pandas.DataFrame
            :func:`products.generators.sm_1km.empirical_variogram` (semivariance in (m3 m-3)^2).
        """
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, self.grid.n_lat, n_points)
        cols = rng.integers(0, self.grid.n_lon, n_points)
        lat, lon = self.grid.lat[rows], self.grid.lon[cols]
        days = np.unique(np.linspace(0, len(self.times) - 1, min(n_days, len(self.times))).round().astype(int))
        values = []
        for t in days:
            truth = self.truth(slice(t, t + 1), slice(0, self.grid.n_lat), slice(0, self.grid.n_lon))[0]
            values.append(truth[rows, cols] - bilinear(coarse[t], self.coarse_grid, lat, lon))
        return empirical_variogram(np.array(values), lat, lon)

    def _build_coarse(self, rng: np.random.Generator, gap_fraction: float) -> None:
        bm = self.block_truth()
        sat = bm + rng.normal(0, 0.02, bm.shape)
        sat[rng.random(bm.shape) < gap_fraction] = np.nan
        smooth = ndimage.uniform_filter(bm, size=(1, 3, 3), mode="nearest")
        self.satellite = np.clip(sat, 0.0, 1.0)
        self.reanalysis = 0.10 + 0.55 * smooth + rng.normal(0, 0.005, bm.shape)
        self.block_mean_truth = bm

    def _build_stations(self, rng: np.random.Generator, n: int) -> None:
        cells = rng.choice(self.grid.n_lat * self.grid.n_lon, size=n, replace=False)
        rows, cols = np.divmod(cells, self.grid.n_lon)
        codes = [f"twin-{k:04d}" for k in range(n)]
        self.stations = pd.DataFrame(
            {"station": codes, "lat": self.grid.lat[rows], "lon": self.grid.lon[cols], "row": rows, "col": cols}
        )
        n_t = len(self.times)
        frames = []
        for code, r, c in zip(codes, rows, cols, strict=True):
            truth = self.truth(slice(0, n_t), slice(r, r + 1), slice(c, c + 1)).reshape(-1)
            obs = truth + rng.normal(0, 0.01, n_t)
            keep = rng.random(n_t) >= 0.1
            frames.append(pd.DataFrame({"station": code, "time": self.times[keep], "insitu": obs[keep]}))
        self.insitu = pd.concat(frames, ignore_index=True)


# --- the chain on the twin -----------------------------------------------------------------------


class _Moments:
    """Streaming sums for pooled r, RMSE, bias, ubRMSE over many windows (ddof = 0)."""

    def __init__(self):
        self.n = 0
        self.s = self.o = self.ss = self.oo = self.so = 0.0

    def add(self, sim, obs) -> None:
        sim, obs = np.asarray(sim, dtype="float64").ravel(), np.asarray(obs, dtype="float64").ravel()
        ok = np.isfinite(sim) & np.isfinite(obs)
        s, o = sim[ok], obs[ok]
        self.n += s.size
        self.s += s.sum()
        self.o += o.sum()
        self.ss += (s * s).sum()
        self.oo += (o * o).sum()
        self.so += (s * o).sum()

    def result(self) -> dict:
        n = self.n
        if n < 2:
            return {"n": n, "r": np.nan, "rmse": np.nan, "bias": np.nan, "ubrmse": np.nan}
        ms, mo = self.s / n, self.o / n
        vs, vo, cov = self.ss / n - ms * ms, self.oo / n - mo * mo, self.so / n - ms * mo
        mse = (self.ss - 2 * self.so + self.oo) / n
        return {
            "n": n,
            "r": float(cov / np.sqrt(vs * vo)),
            "rmse": float(np.sqrt(max(mse, 0.0))),
            "bias": float(ms - mo),
            "ubrmse": float(np.sqrt(max(vs + vo - 2 * cov, 0.0))),
        }


@dataclass
class TwinResult:
    """Output of :func:`run_twin`.

    Attributes
    ----------
    seamless : Seamless
        Step 1 on the twin.
    coarse_scores : dict
        RMSE (m3 m-3) against the 0.25 degree block-mean truth on the satellite gaps: ``matched`` (the
        CDF-matched reanalysis that fills them) and ``raw`` (the reanalysis as it is).
    range_km : float
        Practical range (km) of the target ``truth - coarse bilinear`` (:meth:`Twin.residual_variogram`,
        :func:`products.generators.sm_1km.practical_range_km`): the buffer, and the least block edge.
    variogram : pandas.DataFrame
        That variogram.
    held_out : HeldOut
        Every split's fits (:func:`products.generators.sm_1km.fit_held_out`).
    train_stations, validation_stations, buffer_stations : list of str
        The spatial-block hold-out (disjoint; buffer stations are used nowhere).
    cv, validation : pandas.DataFrame
        The block splits' held-out rows (out-of-fold for ``cv``), columns ``station``, ``time``,
        ``insitu``, ``sm_1km``, ``coarse_bilinear``.
    truth_scores : dict
        ``sm_1km`` and ``coarse_bilinear`` against the known truth over every cell and day (pooled
        n, r, rmse, bias, ubrmse), read back from the written NetCDF file when one was written.
    model : lightgbm.LGBMRegressor
        The block hold-out's model (training stations only), which writes the 1 km grid.
    write : WriteStats or None
    coverage : dict
        Split name (:data:`SPLIT_NAMES`) -> :class:`products.methods.uncertainty.Coverage` of the
        90 % interval ``sm_1km +- 1.645 se`` at that split's held-out (out-of-fold) station rows
        against the in-situ values (:func:`products.generators.sm_1km.held_out_coverage`).
    truth_coverage : dict
        The same interval against the twin's known truth: ``"held_out_stations"`` (the
        ``twin_block_validation`` rows, truth at the station cell and day) and ``"grid"`` (every
        cell and day of the written file, read back; only when a NetCDF file was written), each
        ``{"nominal", "measured", "n"}``.
    """

    seamless: Seamless
    coarse_scores: dict
    range_km: float
    variogram: pd.DataFrame
    held_out: HeldOut
    train_stations: list
    validation_stations: list
    buffer_stations: list
    cv: pd.DataFrame
    validation: pd.DataFrame
    truth_scores: dict
    model: lightgbm.LGBMRegressor
    write: WriteStats | None = None
    coverage: dict = field(default_factory=dict)
    truth_coverage: dict = field(default_factory=dict)


def twin_held_out(
    twin: Twin,
    *,
    seed: int = 42,
    validation_fraction: float = 0.3,
    n_splits: int = 5,
    params: Mapping | None = None,
    range_fraction: float = 0.95,
):
    """Step 1, the station table, the residual's range and every split's fits on a twin (no grid written).

    Returns
    -------
    (Seamless, numpy.ndarray, pandas.DataFrame, float, pandas.DataFrame, HeldOut)
        Step 1, the coarse field (float64 (time, lat, lon)), the station table, the range (km), its
        variogram and the fits. The blocks are :func:`products.generators.sm_1km.block_size_deg` of
        the range and the buffer is the range; both come from the truth and the coarse field, never
        from a station value.

    Raises
    ------
    ValueError
        A twin built without coarse products, or too few stations for the splits.
    """
    satellite, reanalysis = twin.satellite, twin.reanalysis
    if satellite is None or reanalysis is None:
        raise ValueError("run_twin needs a twin with coarse products and stations (with_coarse=True)")
    seamless = seamless_coarse(satellite, reanalysis)
    coarse = seamless.sm.astype("float64")
    table = station_table(
        twin.stations, twin.insitu, source=twin, coarse=coarse, coarse_grid=twin.coarse_grid, times=twin.times
    )
    variogram = twin.residual_variogram(coarse, seed=seed)
    range_km = practical_range_km(variogram, range_fraction)
    held = fit_held_out(
        table,
        twin.stations,
        block_deg=block_size_deg(range_km),
        buffer_km=range_km,
        validation_fraction=validation_fraction,
        n_splits=n_splits,
        seed=seed,
        params=params,
    )
    return seamless, coarse, table, range_km, variogram, held


def run_twin(
    twin: Twin,
    *,
    seed: int = 42,
    validation_fraction: float = 0.3,
    n_splits: int = 5,
    params: Mapping | None = None,
    nc_path=None,
    tif_path=None,
    chunk: tuple[int, int] = (120, 120),
    attrs: Mapping | None = None,
    range_fraction: float = 0.95,
) -> TwinResult:
    """The whole chain on a synthetic twin: step 1, training, spatial-block and random hold-outs, 1 km grid, scores.

    Parameters
    ----------
    twin : Twin
        With coarse products and stations.
    seed : int
        Station split and model seed.
    validation_fraction : float
        Share of stations kept out of training for validation (by each hold-out).
    n_splits : int
        Station-grouped folds of the random CV (the block CV leaves one block out per fold).
    params : mapping, optional
        LightGBM parameters.
    nc_path, tif_path : path, optional
        Write the 1 km product (:func:`write_product`) with the block hold-out's model; the truth
        scores are then read back from the NetCDF file (so they include the packing).
    chunk : (int, int)
        Window (lat, lon) cells.
    attrs : mapping, optional
        Extra file attributes; ``data_kind`` is set to :attr:`products.data_kind.DataKind.SYNTHETIC`.
    range_fraction : float
        Share of the sill that defines the residual's range (:func:`products.generators.sm_1km.practical_range_km`).

    Returns
    -------
    TwinResult

    Raises
    ------
    ValueError
        Too few stations for the split, or a twin built without coarse products (``with_coarse=False``).
    """
    seamless, coarse, table, range_km, variogram, held = twin_held_out(
        twin,
        seed=seed,
        validation_fraction=validation_fraction,
        n_splits=n_splits,
        params=params,
        range_fraction=range_fraction,
    )
    if twin.satellite is None or twin.reanalysis is None:
        raise ValueError("the twin was built without coarse products (with_coarse=False)")
    gaps = np.isnan(twin.satellite)
    coarse_scores = {
        "matched": float(np.sqrt(np.nanmean((seamless.sm[gaps] - twin.block_mean_truth[gaps]) ** 2))),
        "raw": float(np.sqrt(np.nanmean((twin.reanalysis[gaps] - twin.block_mean_truth[gaps]) ** 2))),
    }
    fit = held.validation["block"]
    model = fit.model
    features = functools.partial(window_features, source=twin, coarse=coarse, coarse_grid=twin.coarse_grid)
    predict = functools.partial(predict_matrix, model=model)
    coverage = {name: held_out_coverage(held.frames[key], split=name) for key, name in SPLIT_NAMES.items()}
    headline = coverage[SPLIT_NAMES["block", "validation"]]
    stats = None
    if nc_path is not None or tif_path is not None:
        stats = write_product(
            features,
            predict,
            grid=twin.grid,
            times=twin.times,
            nc_path=nc_path,
            tif_path=tif_path,
            chunk=chunk,
            standard_error=functools.partial(predict_standard_error, models=fit.quantile_models),
            se_attrs=standard_error_attrs(
                "Fitted on the same training stations as the estimate's model (outside the held-out blocks "
                f"and their buffer). {uncertainty.calibration_comment(headline)}; {headline.note}. SYNTHETIC twin"
            ),
            global_attrs=cf.merge_attrs(
                {
                    "title": "1 km surface soil moisture, SYNTHETIC twin experiment",
                    "data_kind": DataKind.SYNTHETIC,
                    "source": "products.generators.twins.sm_1km.Twin (analytic truth)",
                    "comment": "SYNTHETIC: coarse product = 0.25 degree block mean of a known truth + "
                    "noise with gaps, gap-filled by a CDF-matched biased reanalysis; "
                    "LightGBM downscaling trained on the synthetic stations outside the held-out "
                    f"spatial blocks ({held.block_deg} degree) and their {range_km:g} km buffer; "
                    "sm_standard_error from two LightGBM quantile models (0.16, 0.84) on the same "
                    "stations",
                    "train_stations": len(fit.train_stations),
                    "validation_stations": len(fit.test_stations),
                    "buffer_stations": len(fit.buffer_stations),
                    **cf.soil_layer_attributes(0.0, 0.05),
                },
                attrs,
            ),
        )
    truth_scores = score_against_truth(twin, coarse, model=model, nc_path=nc_path, chunk=chunk)
    grid_coverage = truth_scores.pop("interval", None)
    truth_coverage = {"held_out_stations": _truth_coverage_at_stations(twin, held.frames["block", "validation"])}
    if grid_coverage is not None:
        truth_coverage["grid"] = grid_coverage
    return TwinResult(
        seamless,
        coarse_scores,
        range_km,
        variogram,
        held,
        list(fit.train_stations),
        list(fit.test_stations),
        list(fit.buffer_stations),
        held.frames["block", "cv"],
        held.frames["block", "validation"],
        truth_scores,
        model,
        stats,
        coverage,
        truth_coverage,
    )


def _truth_coverage_at_stations(twin: Twin, frame: pd.DataFrame, nominal: float = uncertainty.NOMINAL) -> dict:
    """Coverage of ``sm_1km +- z se`` of held-out rows against the twin's truth at the station cell and day."""
    cells = twin.stations.set_index("station").loc[frame["station"], ["row", "col"]].to_numpy()
    day = pd.Series(np.arange(len(twin.times)), index=pd.DatetimeIndex(twin.times))
    days = day.loc[pd.DatetimeIndex(frame["time"])].to_numpy()
    truth = np.array(
        [
            twin.truth(slice(t, t + 1), slice(r, r + 1), slice(c, c + 1)).item()
            for t, (r, c) in zip(days, cells, strict=True)
        ]
    )
    cov = uncertainty.interval_coverage(
        frame["sm_1km"].to_numpy(), frame["sm_1km_standard_error"].to_numpy(), truth, nominal=nominal
    )
    return {"nominal": cov.nominal, "measured": cov.measured, "n": cov.n}


def score_against_truth(
    twin: Twin, coarse: np.ndarray, *, model=None, nc_path=None, chunk: tuple[int, int] = (120, 120)
) -> dict:
    """Pooled scores of the 1 km field and of the bilinear coarse field against the twin's truth, window by window.

    The 1 km values come from ``nc_path`` (decoded packed integers) when given, otherwise from
    ``model``. Returns ``{"sm_1km": {...}, "coarse_bilinear": {...}}`` with n, r, rmse, bias, ubrmse;
    when the file holds ``sm_standard_error`` also ``"interval"``: ``{"nominal", "measured", "n"}``,
    the share of cells (every day) whose truth lies in ``sm +- 1.645 sm_standard_error``.
    """
    ours, base = _Moments(), _Moments()
    nc = netCDF4.Dataset(nc_path) if nc_path is not None else None
    with_se = nc is not None and "sm_standard_error" in nc.variables
    z = float(norm.ppf(0.5 + uncertainty.NOMINAL / 2))  # 1.645: the 90 % interval
    inside = counted = 0
    try:
        for window in chunked.windows((len(twin.times), *twin.grid.shape), (1, *chunk)):
            truth = twin.truth(window.time, window.lat, window.lon)
            _, valid = window_features(window, source=twin, coarse=coarse, coarse_grid=twin.coarse_grid)
            lat, lon = twin.grid.lat[window.lat], twin.grid.lon[window.lon]
            interp = np.stack(
                [
                    bilinear(coarse[t], twin.coarse_grid, lat[:, None], lon[None, :])
                    for t in range(window.time.start, window.time.stop)
                ]
            )
            if nc is not None:
                values = np.ma.filled(nc["sm"][window.key].astype("float64"), np.nan)
                if with_se:
                    se = np.ma.filled(nc["sm_standard_error"][window.key].astype("float64"), np.nan)
                    ok = valid & np.isfinite(values) & np.isfinite(se)
                    inside += int(np.count_nonzero(np.abs(values[ok] - truth[ok]) <= z * se[ok]))
                    counted += int(ok.sum())
            else:
                values = chunked.predict_window(
                    window,
                    lambda w: window_features(w, source=twin, coarse=coarse, coarse_grid=twin.coarse_grid),
                    lambda m: predict_matrix(m, model=model),
                ).astype("float64")
                values[values == float(chunked.FILL_VALUE)] = np.nan
            ours.add(values[valid], truth[valid])
            base.add(interp[valid], truth[valid])  # the same cells
    finally:
        if nc is not None:
            nc.close()
    out = {"sm_1km": ours.result(), "coarse_bilinear": base.result()}
    if with_se:
        out["interval"] = {
            "nominal": uncertainty.NOMINAL,
            "measured": inside / counted if counted else float("nan"),
            "n": counted,
        }
    return out


SPLIT_NAMES = {
    ("block", "validation"): "twin_block_validation",
    ("block", "cv"): "twin_block_cv",
    ("random", "validation"): "twin_validation",
    ("random", "cv"): "twin_cv",
}
"""Validation split of each (hold-out, kind): the spatial-block splits are the headline, the random ones
(stations at random, as before issue 16) are kept beside them to show the inflation."""


def validation_frames(result: TwinResult) -> dict[tuple[str, str], pd.DataFrame]:
    """Long frames (``station``, ``sim``, ``obs``) per (split, variable) for :func:`products.methods.aggregate.validation_rows`.

    Splits: :data:`SPLIT_NAMES`; variables ``sm_1km`` and ``coarse_bilinear``.
    """
    out = {}
    for key, split in SPLIT_NAMES.items():
        frame = result.held_out.frames[key]
        for variable in ("sm_1km", "coarse_bilinear"):
            out[split, variable] = frame[["station", "time"]].assign(sim=frame[variable], obs=frame["insitu"])
    return out
