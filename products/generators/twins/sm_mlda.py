"""The synthetic twin of the soil-moisture ML-DA chain (:mod:`products.generators.sm_mlda`), no Django.

A bucket model driven by synthetic forcing is the truth at N pixels; three products with known
scalings and independent errors of known variance, and in-situ stations (truth + small error) are
drawn from it (:func:`make_twin`), so the TC error standard deviations, the optimal nudging gain and
the ranking of the results are known in advance. :func:`run_twin` runs the whole chain of the
generator on it, with the checks only a twin allows (:func:`twin_uncertainty`: the standard error of the
nudged series and its coverage of the truth at the validation pixels); :func:`twin_dataset` writes it as a CF
timeSeries file. Every output of it is labelled :attr:`products.data_kind.DataKind.SYNTHETIC`.

This module imports the generator it tests (downward); the generator never imports it.

References
----------
Xu et al. (2025): Spatiotemporal seamless estimation of global surface soil moisture using triple
collocation, machine learning, and data assimilation. IEEE TGRS 63, doi:10.1109/TGRS.2025.3568034.
McColl, K. A., et al. (2014), Geophys. Res. Lett. 41, 6229-6236, doi:10.1002/2014GL061322 (TCR).
Houser, P. R., et al. (1998), Water Resour. Res. 34, 3405-3420 (nudging of soil moisture).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from products.data_kind import DataKind
from products.generators.sm_mlda import (
    PRODUCTS,
    SATURATION_ATTRS,
    SM_ATTRS,
    SM_ERROR_STD_NAME,
    Labels,
    ModelFit,
    add_features,
    fit_model,
    nudge_series,
    nudged_error_series,
    propagation_note,
    rescale_to,
    tc_labels,
    tc_nudging_gain,
    to_cf_timeseries,
    validate_against_insitu,
)
from products.methods import triple_collocation as tc
from products.methods import uncertainty as unc
from products.methods.cv import assert_disjoint

INSITU_OFFSET_STD = 0.02
"""Standard deviation of the twin stations' constant offset from the truth, m3 m-3 (:func:`make_twin`)."""
INSITU_NOISE_STD = 0.008
"""Standard deviation of the twin stations' daily noise, m3 m-3 (:func:`make_twin`)."""
INSITU_ERROR_STD = float(np.hypot(INSITU_OFFSET_STD, INSITU_NOISE_STD))
"""The twin station's error standard deviation about the truth, m3 m-3 (known by construction): the
``obs_error_std`` of the in-situ coverage of the standard error."""

# --- the synthetic twin ---------------------------------------------------------------------------


@dataclass
class Twin:
    """A synthetic truth with forcing, three products and in-situ stations (all arrays (pixel, time)).

    Attributes
    ----------
    pixels : pandas.DataFrame
        One row per pixel: ``pixel`` (str id), ``lat``, ``lon`` (degrees), ``climate`` (``dry`` or
        ``wet``), ``porosity`` and ``residual`` (m3 m-3), ``role`` (``training`` or ``validation``: the
        pixels holding an in-situ station, kept out of labels, training and the TC gain), ``short_record``
        (bool: satellites almost never available, to exercise the minimum-sample rule).
    times : pandas.DatetimeIndex
        Daily.
    forcing : pandas.DataFrame
        Long table (``pixel``, ``time``, ``tair``, ``rad``, ``precip``, ``rh``), units of :data:`products.generators.sm_mlda.UNITS`.
    truth : numpy.ndarray
        float64, m3 m-3.
    products : dict of str to numpy.ndarray
        ``passive`` (m3 m-3), ``active`` (% saturation), ``reanalysis`` (m3 m-3); NaN where no retrieval.
    insitu : numpy.ndarray
        float64, m3 m-3; NaN at training pixels (stations exist only at validation pixels).
    scale, offset, err_std : dict of str to float or numpy.ndarray
        Each product = offset + scale * truth + error with error standard deviation err_std (product
        units); ``active`` has scale 100 / porosity per pixel.
    known_err_std : dict of str to numpy.ndarray
        (pixel,) error standard deviation of each product in the units of the reference (``passive``),
        err_std_i * scale_passive / scale_i: what TC must recover.
    """

    pixels: pd.DataFrame
    times: pd.DatetimeIndex
    forcing: pd.DataFrame
    truth: np.ndarray
    products: dict
    insitu: np.ndarray
    scale: dict
    offset: dict
    err_std: dict
    known_err_std: dict


def make_twin(
    n_pixels: int = 60,
    n_days: int = 1095,
    *,
    seed: int = 42,
    validation_fraction: float = 0.3,
    short_fraction: float = 0.1,
    start: str = "2015-04-01",
    spinup_days: int = 120,
    precip_miss: float = 0.25,
) -> Twin:
    """Draw a synthetic twin: forcing, bucket-model truth, three products and in-situ stations.

    Truth (volumetric, m3 m-3): a bucket between the residual content r and the porosity phi of each
    pixel, s_t = r + (s_(t-1) - r) exp(-1 / tau_t) + (phi - s_(t-1)) (1 - exp(-P_t / 30 mm)), with the
    drying time scale tau_t = 25 d / (1 + 0.04 max(T_t, 0) + 0.002 R_t) shortened by temperature and
    radiation. Forcing: wet days (probability 0.12 at ``dry`` pixels, 0.35 at ``wet``) with
    exponential amounts, seasonal temperature and radiation, humidity higher on wet days.

    Products (known in advance): ``passive`` = 0.02 + 0.9 s + e, sd(e) = 0.04 m3 m-3, retrieved on 45 %
    of days; ``active`` = (100 / phi) s + e, sd(e) = 6 % saturation, 50 % of days; ``reanalysis`` =
    0.12 + 0.6 s + e, e an AR(1) series (lag-1 correlation 0.7) with sd 0.015 m3 m-3, every day.
    The errors are mutually independent and independent of the truth, the TC assumptions.
    At ``short_record`` pixels both satellites are available on 3 % of days only (below the TC
    minimum-sample rule). In-situ at validation pixels: truth + a station offset (sd 0.02) + noise
    (sd 0.008), every day. The forcing handed to the model is an imperfect observation of the true
    forcing (``precip_miss`` of the wet days missed, multiplicative log-normal noise of sd 0.5 on the
    amounts, 3 % false small events; air temperature noise sd 1 K), so the model has the persistent
    errors of a forcing-driven product that assimilation exists to correct.

    Parameters
    ----------
    n_pixels : int
        Number of pixels (>= 4).
    n_days : int
        Number of daily time steps after the spin-up (>= 60).
    seed : int
        numpy random seed.
    validation_fraction : float
        Share of pixels holding an in-situ validation station, in (0, 1).
    short_fraction : float
        Share of training pixels with short satellite records, in [0, 1).
    start : str
        First day (ISO date).
    spinup_days : int
        Days of bucket spin-up discarded.
    precip_miss : float
        Share of true wet days missing from the precipitation the model sees, in [0, 1).

    Returns
    -------
    Twin

    Raises
    ------
    ValueError
        Sizes or fractions out of range.
    """
    if n_pixels < 4 or n_days < 60 or not 0 < validation_fraction < 1 or not 0 <= short_fraction < 1:
        raise ValueError("need n_pixels >= 4, n_days >= 60, 0 < validation_fraction < 1, 0 <= short_fraction < 1")
    rng = np.random.default_rng(seed)
    n_all = n_days + spinup_days
    times_all = pd.date_range(pd.Timestamp(start) - pd.Timedelta(days=spinup_days), periods=n_all, freq="D")
    doy = times_all.dayofyear.to_numpy()
    climate = np.where(rng.random(n_pixels) < 0.5, "dry", "wet")
    wet_prob = np.where(climate == "dry", 0.12, 0.35)[:, None]
    lat = rng.uniform(-40, 60, n_pixels)
    lon = rng.uniform(-120, 140, n_pixels)
    hemi = np.where(lat >= 0, 1.0, -1.0)[:, None]
    season = np.sin(2 * np.pi * (doy[None, :] - 110) / 365.25) * hemi
    wet = rng.random((n_pixels, n_all)) < wet_prob
    precip = np.where(wet, rng.exponential(np.where(climate == "dry", 6.0, 8.0)[:, None], (n_pixels, n_all)), 0.0)
    tair = 14 + 4 * (climate == "dry")[:, None] + 10 * season + rng.normal(0, 3, (n_pixels, n_all))
    rad = np.clip(200 + 100 * season - 80 * wet + rng.normal(0, 25, (n_pixels, n_all)), 10, None)
    rh = np.clip(55 + 25 * wet - 10 * (climate == "dry")[:, None] + rng.normal(0, 8, (n_pixels, n_all)), 5, 100)
    porosity = rng.uniform(0.38, 0.50, n_pixels)
    residual = rng.uniform(0.02, 0.06, n_pixels)
    s = np.empty((n_pixels, n_all))
    state = (porosity + residual) / 2
    for t in range(n_all):
        tau = 25.0 / (1 + 0.04 * np.maximum(tair[:, t], 0) + 0.002 * rad[:, t])
        state = residual + (state - residual) * np.exp(-1 / tau) + (porosity - state) * (1 - np.exp(-precip[:, t] / 30))
        s[:, t] = state
    keep = slice(spinup_days, None)
    truth, times = s[:, keep], times_all[keep]
    shape = truth.shape
    n_val = max(2, round(validation_fraction * n_pixels))
    order = rng.permutation(n_pixels)
    role = np.full(n_pixels, "training", dtype=object)
    role[order[:n_val]] = "validation"
    short = np.zeros(n_pixels, dtype=bool)
    short[order[n_val : n_val + round(short_fraction * (n_pixels - n_val))]] = True
    scale: dict[str, float | np.ndarray] = {"passive": 0.9, "active": 100.0 / porosity, "reanalysis": 0.6}
    offset = {"passive": 0.02, "active": 0.0, "reanalysis": 0.12}
    err_std = {"passive": 0.04, "active": 6.0, "reanalysis": 0.015}
    available = {"passive": 0.45, "active": 0.50, "reanalysis": 1.0}
    products = {}
    for name in PRODUCTS:
        sc = np.broadcast_to(
            np.asarray(scale[name], dtype="float64").reshape(-1, 1) if np.ndim(scale[name]) else scale[name],
            (n_pixels, 1),
        )
        if name == "reanalysis":  # AR(1) errors: serially correlated, still independent of the other products
            rho, white = 0.7, rng.normal(0, err_std[name] * np.sqrt(1 - 0.7**2), shape)
            err = np.empty(shape)
            err[:, 0] = rng.normal(0, err_std[name], n_pixels)
            for t in range(1, shape[1]):
                err[:, t] = rho * err[:, t - 1] + white[:, t]
        else:
            err = rng.normal(0, err_std[name], shape)
        values = offset[name] + sc * truth + err
        p = np.where(short[:, None] & (name != "reanalysis"), 0.03, available[name])
        products[name] = np.where(rng.random(shape) < p, values, np.nan)
    insitu = truth + rng.normal(0, INSITU_OFFSET_STD, (n_pixels, 1)) + rng.normal(0, INSITU_NOISE_STD, shape)
    insitu[role != "validation"] = np.nan
    known = {
        name: err_std[name] * scale["passive"] / np.asarray(scale[name], dtype="float64") * np.ones(n_pixels)
        for name in PRODUCTS
    }
    ids = np.array([f"twin-{i:04d}" for i in range(n_pixels)], dtype=object)
    pixels = pd.DataFrame(
        {
            "pixel": ids,
            "lat": lat,
            "lon": lon,
            "climate": climate,
            "porosity": porosity,
            "residual": residual,
            "role": role,
            "short_record": short,
        }
    )
    # The forcing the model sees is an imperfect product of the true forcing (as MSWEP/ERA5 are):
    # precipitation with multiplicative noise, 25 % of the wet days missed and a few false small events.
    seen = np.where(wet, rng.random((n_pixels, n_all)) >= precip_miss, rng.random((n_pixels, n_all)) < 0.03)
    precip_seen = np.where(
        seen,
        np.where(wet, precip * rng.lognormal(0, 0.5, (n_pixels, n_all)), rng.exponential(2.0, (n_pixels, n_all))),
        0.0,
    )
    forcing = pd.DataFrame(
        {
            "pixel": np.repeat(ids, shape[1]),
            "time": np.tile(times.to_numpy(), n_pixels),
            "tair": (tair + rng.normal(0, 1.0, tair.shape))[:, keep].ravel(),
            "rad": rad[:, keep].ravel(),
            "precip": precip_seen[:, keep].ravel(),
            "rh": rh[:, keep].ravel(),
        }
    )
    return Twin(pixels, times, forcing, truth, products, insitu, scale, offset, err_std, known)


# --- the whole chain on the twin ------------------------------------------------------------------


@dataclass
class TwinResult:
    """Output of :func:`run_twin`.

    Attributes
    ----------
    twin : Twin
    labels : Labels
        TC table and labels (units of ``passive``, m3 m-3) for every pixel (validation pixels too, for
        comparison only: they never fit the model).
    fit : ModelFit
    series : dict of str to numpy.ndarray
        (pixel, time) float64, m3 m-3: ``ml`` (the ML member of the triplet, nudged: cross-fitted by
        default, see :data:`TRIPLETS`), ``ml_da`` (nudged), ``obs_rescaled`` (the
        passive retrieval rescaled to the model climatology), ``active_m3`` (active converted with the
        porosity: ssm / 100 * porosity).
    gain : pandas.DataFrame
        Per pixel: ``gain`` used, ``from_tc`` (bool), ``oracle_gain`` (from the true error variances of
        the nudged model series and the rescaled retrieval, computable only in a twin), ``training``
        (bool: the pixel's labels fitted the final model), and for each triplet t of :data:`TRIPLETS`
        ``tc_gain_<t>``, ``oracle_gain_<t>``, ``tc_err_var_ml_<t>``, ``oracle_err_var_ml_<t>``
        ((m3 m-3)**2, in the model's units): what TC of (ML, passive, active) estimates with that ML
        series, and the truth.
    tc_gain_bias : dict
        Per triplet: medians over the training pixels (where the dependent triplet shares errors) and
        over all pixels with a TC gain of the TC gain, the oracle gain, their difference and the ratio
        of the TC to the oracle model error variance (:func:`gain_bias`); at the training pixels also
        the RMSE against the truth (m3 m-3) of that triplet's ML series and of its nudged series.
    validation : dict
        :func:`validate_against_insitu` of ``ml_da``, ``ml``, ``labels``, ``passive``, ``active_m3``,
        ``reanalysis`` at the validation stations.
    cv : dict
        Same layout, model cross-validated against the labels at training pixels (``ml_cv``).
    truth_scores : dict
        RMSE against the truth (m3 m-3), twin only: per series over all pixel-days where it exists, and
        for ``ml`` / ``ml_da`` on retrieval days and on days without retrieval.
    train_pixels, validation_pixels : numpy.ndarray
        Disjoint pixel ids (asserted).
    settings : dict
    uncertainty : dict
        From :func:`twin_uncertainty`: the standard error of ``ml_da`` and its coverage at the validation
        pixels.
    """

    twin: Twin
    labels: Labels
    fit: ModelFit
    series: dict
    gain: pd.DataFrame
    validation: dict
    cv: dict
    truth_scores: dict
    train_pixels: np.ndarray
    validation_pixels: np.ndarray
    settings: dict
    tc_gain_bias: dict
    uncertainty: dict = field(default_factory=dict)


TRIPLETS = ("independent", "dependent")
"""The ML member of the TC triplet (ML, passive, active) that sets the nudging gain. ``independent``: the
cross-fitted series (:meth:`products.generators.sm_mlda.ModelFit.cross_fitted`: at a training pixel the
model of the fold that held the pixel out, which never saw that pixel's labels, hence its passive and
active errors; elsewhere the final model), which is also the series nudged. ``dependent`` (before issue
16): the final model everywhere, which at a training pixel learnt from labels merged from the very
passive and active retrievals it is collocated with, so its errors are correlated with theirs (TC
assumes they are not)."""


def oracle_gain(model, obs, truth) -> tuple[float, float, float]:
    """Optimal nudging gain from the true errors (twin only): error variances and covariance about the
    truth after removing each series' own linear scaling, the observation's in the model's units.

    Parameters
    ----------
    model, obs, truth : numpy.ndarray
        (time,) float64, m3 m-3 (``obs`` rescaled to the model climatology), NaN where missing.

    Returns
    -------
    gain : float
        The gain that minimises the analysis error variance, (s2_model - c) / (s2_model + s2_obs - 2 c)
        with c the covariance of the two errors (0 when they are independent: s2_model / (s2_model +
        s2_obs), what TC assumes), clipped to [0, 1]; NaN with 3 or fewer common days.
    err_var_model, err_var_obs : float
        (m3 m-3)**2, in the model's units (as TC with the model as reference reports them).
    """
    ok_m = np.isfinite(model) & np.isfinite(truth)
    ok_o = ok_m & np.isfinite(obs)
    if ok_o.sum() <= 3:
        return np.nan, np.nan, np.nan
    bm = np.polyfit(truth[ok_m], model[ok_m], 1)
    em = model - np.polyval(bm, truth)
    vm = float(np.var(em[ok_m]))
    bo = np.polyfit(truth[ok_o], obs[ok_o], 1)
    eo = (obs - np.polyval(bo, truth)) * (bm[0] / bo[0])
    vo = float(np.var(eo[ok_o]))
    c = float(np.mean((em[ok_o] - em[ok_o].mean()) * (eo[ok_o] - eo[ok_o].mean())))
    return float(np.clip((vm - c) / (vm + vo - 2 * c), 0, 1)), vm, vo


def gain_bias(table: pd.DataFrame) -> dict:
    """Medians of TC gain, oracle gain, their difference and the TC / oracle model error variance, per triplet.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`TwinResult.gain`.

    Returns
    -------
    dict
        ``{triplet: {"training_pixels": {...}, "all_pixels": {...}}}``, each with ``n_pixels``,
        ``tc_gain``, ``oracle_gain``, ``gain_bias`` (median of tc - oracle per pixel) and
        ``err_var_ml_ratio`` (median of TC / oracle model error variance) over the pixels with a finite
        TC gain.
    """
    out = {}
    for t in TRIPLETS:
        tc_g, or_g = table[f"tc_gain_{t}"], table[f"oracle_gain_{t}"]
        ratio = table[f"tc_err_var_ml_{t}"] / table[f"oracle_err_var_ml_{t}"]
        item = {}
        for scope, rows in (("training_pixels", table["training"]), ("all_pixels", np.ones(len(table), bool))):
            ok = np.asarray(rows, bool) & np.isfinite(tc_g) & np.isfinite(or_g)
            item[scope] = {
                "n_pixels": int(ok.sum()),
                "tc_gain": float(tc_g[ok].median()),
                "oracle_gain": float(or_g[ok].median()),
                "gain_bias": float((tc_g - or_g)[ok].median()),
                "err_var_ml_ratio": float(ratio[ok].median()),
            }
        out[t] = item
    return out


def _rmse(a, b, mask=None):
    ok = np.isfinite(a) & np.isfinite(b) & (True if mask is None else mask)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2))) if ok.sum() else np.nan


def twin_uncertainty(
    twin: Twin,
    model: np.ndarray,
    ml_da: np.ndarray,
    has_obs: np.ndarray,
    gain: np.ndarray,
    *,
    err_var_ml: np.ndarray,
    err_var_obs: np.ndarray,
    tc_ok: np.ndarray,
    memory_days: float,
    nominal: float = unc.NOMINAL,
) -> dict:
    """Standard error of the twin's ML-DA series and its coverage at the validation pixels.

    The TC error standard deviations of the nudging's triplet (the ML member and the passive retrieval
    rescaled to it, (m3 m-3), per pixel, from the pixel's own satellite series: no in-situ value and no
    truth enters) are propagated through the nudging (:func:`products.generators.sm_mlda.nudged_error_series`:
    gain G on retrieval days, 0 without one, the increment memory carried as the state is). Pixels where
    TC failed the rule or flagged a member get the median over the pixels where it did not.

    Parameters
    ----------
    twin : Twin
    model, ml_da : numpy.ndarray
        (pixel, time) float64, m3 m-3: the ML member (the background) and the nudged series.
    has_obs : numpy.ndarray
        (pixel, time) bool: the days a retrieval was assimilated.
    gain : numpy.ndarray
        (pixel,) float64, the gains used.
    err_var_ml, err_var_obs : numpy.ndarray
        (pixel,) float64, (m3 m-3)**2: TC error variances of the ML member and of the retrieval in its units.
    tc_ok : numpy.ndarray
        (pixel,) bool: TC passed the rule and both variances are valid.
    memory_days : float
    nominal : float
        The central interval whose coverage is measured.

    Returns
    -------
    dict
        ``standard_error`` ((pixel, time) float64, m3 m-3, NaN where ``ml_da`` is), ``err_std_ml``,
        ``err_std_obs`` ((pixel,), m3 m-3), ``from_tc`` ((pixel,) bool), and three
        :class:`products.methods.uncertainty.Coverage` at the validation pixels (split ``twin_insitu``,
        never used for labels, model, gain or TC): ``coverage_truth`` (against the synthetic truth, the
        headline), ``coverage_insitu`` (against the twin stations, their known error std
        :data:`INSITU_ERROR_STD` added as ``obs_error_std``) and ``coverage_truth_own_scale`` (a twin-only
        diagnostic: against the truth rescaled per pixel to the ML member's own linear scale, least squares
        on the truth, i.e. the random error TC describes, without the amplitude and offset error of the
        ML series, which TC by construction does not count).

    Raises
    ------
    ValueError
        Shapes that differ (from the propagation).
    """
    ok = np.asarray(tc_ok, bool) & (np.asarray(err_var_ml) > 0) & (np.asarray(err_var_obs) > 0)
    s_m, s_o = (
        np.where(ok, np.sqrt(np.where(ok, v, 1.0)), np.nanmedian(np.sqrt(np.asarray(v)[ok])) if ok.any() else np.nan)
        for v in (err_var_ml, err_var_obs)
    )
    se = nudged_error_series(s_m, s_o, gain, has_obs, memory_days=memory_days, defined=np.isfinite(ml_da))
    val = (twin.pixels["role"] == "validation").to_numpy()
    k = int(val.sum())
    where = f"the {k} validation pixels (split twin_insitu: never used for labels, model, gain or TC)"
    own_scale = np.full_like(twin.truth, np.nan)
    for i in np.flatnonzero(val):
        fit = np.isfinite(model[i]) & np.isfinite(twin.truth[i])
        if fit.sum() >= 3:
            own_scale[i] = np.polyval(np.polyfit(twin.truth[i, fit], model[i, fit], 1), twin.truth[i])
    return {
        "standard_error": se,
        "err_std_ml": s_m,
        "err_std_obs": s_o,
        "from_tc": ok,
        "coverage_truth": unc.interval_coverage(
            ml_da[val],
            se[val],
            twin.truth[val],
            nominal=nominal,
            split="twin_insitu",
            note=f"against the synthetic truth at {where}; obs_error_std 0 (the truth has no error); n counts "
            "pixel-days",
        ),
        "coverage_insitu": unc.interval_coverage(
            ml_da[val],
            se[val],
            twin.insitu[val],
            nominal=nominal,
            obs_error_std=INSITU_ERROR_STD,
            split="twin_insitu",
            note=f"against the synthetic in-situ stations at {where}; obs_error_std {INSITU_ERROR_STD:.4f} m3 m-3, "
            f"the stations' known error (offset sd {INSITU_OFFSET_STD}, noise sd {INSITU_NOISE_STD}, in quadrature)",
        ),
        "coverage_truth_own_scale": unc.interval_coverage(
            ml_da[val],
            se[val],
            own_scale[val],
            nominal=nominal,
            split="twin_insitu",
            note=f"diagnostic (twin only): against the truth rescaled, per pixel, to the ML member's own linear "
            f"scale (least squares of the ML series on the truth) at {where}: the random error about that scale, "
            "which is what TC error variances describe; the difference from coverage_truth is the ML series' "
            "amplitude and offset error, which TC does not count",
        ),
    }


def run_twin(
    twin: Twin,
    *,
    n_splits: int = 10,
    seed: int = 42,
    params: dict | None = None,
    gain="tc",
    memory_days: float = 3.0,
    min_samples: int = 100,
    tc_fallback: str = "exclude",
    triplet: str = "independent",
    nominal: float = unc.NOMINAL,
) -> TwinResult:
    """The whole ML-DA chain on a synthetic twin, with checks only a twin allows.

    Steps: :func:`tc_labels` (all pixels) -> :func:`fit_model` on the labelled training pixels ->
    per-pixel :func:`tc_nudging_gain` of the (ML, passive, active) triplet (or a fixed gain) and
    :func:`nudge_series` of the ML series toward the passive retrieval -> :func:`validate_against_insitu`
    at the validation pixels, never used for labels, training or gain estimation
    (:func:`products.methods.cv.assert_disjoint`). The ML series is the member named by ``triplet``
    (:data:`TRIPLETS`); the TC gain and the oracle gain of both members are computed at every pixel
    either way, so the bias of the dependent triplet is measured (:attr:`TwinResult.tc_gain_bias`).

    Parameters
    ----------
    twin : Twin
        From :func:`make_twin`.
    n_splits, seed, params
        See :func:`fit_model`.
    gain : "tc" or float
        ``"tc"``: per-pixel gain from TC of (model, passive, active), 0.5 where TC fails; a float in
        [0, 1]: that gain everywhere.
    memory_days : float
        Increment memory of :func:`nudge_series`.
    min_samples, tc_fallback
        See :func:`tc_labels`.
    triplet : {"independent", "dependent"}
        ML member of the TC triplet and the series nudged (:data:`TRIPLETS`).
    nominal : float
        Central interval whose coverage is measured (:func:`twin_uncertainty`).

    Returns
    -------
    TwinResult

    Raises
    ------
    ValueError
        Bad gain, or any error of the steps.
    """
    if not (gain == "tc" or (isinstance(gain, int | float) and 0 <= float(gain) <= 1)):
        raise ValueError(f"gain must be 'tc' or a number in [0, 1], found {gain!r}")
    if triplet not in TRIPLETS:
        raise ValueError(f"triplet must be one of {TRIPLETS}, found {triplet!r}")
    pixels = twin.pixels
    is_val = (pixels["role"] == "validation").to_numpy()
    n_pix, n_t = twin.truth.shape
    labels = tc_labels({name: twin.products[name] for name in PRODUCTS}, min_samples=min_samples, fallback=tc_fallback)
    table = add_features(twin.forcing)
    table["label"] = labels.labels.ravel()
    train_rows = np.repeat(~is_val, n_t)
    fit = fit_model(table, train=train_rows, n_splits=n_splits, seed=seed, params=params)
    val_ids = pixels.loc[is_val, "pixel"].to_numpy()
    assert_disjoint(fit.train_pixels, val_ids)
    members = {"independent": fit.cross_fitted().reshape(n_pix, n_t), "dependent": fit.pred.reshape(n_pix, n_t)}
    per: dict[str, dict[str, np.ndarray]] = {}
    for t, member in members.items():  # the gain each triplet gives, its nudged series, and the truth (twin only)
        d = {
            "obs_rescaled": np.full_like(member, np.nan),
            "gain": np.empty(n_pix),
            "from_tc": np.zeros(n_pix, bool),
            "tc_ok": np.zeros(n_pix, bool),
            **{
                k: np.full(n_pix, np.nan)
                for k in ("tc_gain", "oracle_gain", "tc_err_var_ml", "oracle_err_var_ml", "tc_err_var_obs")
            },
        }
        for i in range(n_pix):
            p, a = twin.products["passive"][i], twin.products["active"][i]
            res = tc.tc_metrics(member[i], p, a, min_samples=min_samples)
            g, beta, ok = tc_nudging_gain(member[i], p, a, min_samples=min_samples)
            if ok:
                d["tc_gain"][i], d["tc_err_var_ml"][i], d["tc_err_var_obs"][i] = g, res.err_var[0], res.err_var[1]
                d["tc_ok"][i] = True
            d["gain"][i], d["from_tc"][i] = (g, ok) if gain == "tc" else (float(gain), False)
            d["obs_rescaled"][i] = rescale_to(p, member[i], beta)
            d["oracle_gain"][i], d["oracle_err_var_ml"][i], _ = oracle_gain(
                member[i], d["obs_rescaled"][i], twin.truth[i]
            )
        d["ml_da"] = nudge_series(member, d["obs_rescaled"], d["gain"], memory_days=memory_days)
        per[t] = d
    ml, chosen = members[triplet], per[triplet]
    obs_rescaled, gains, from_tc, oracle, ml_da = (
        chosen[k] for k in ("obs_rescaled", "gain", "from_tc", "oracle_gain", "ml_da")
    )
    bias_cols = {
        f"{k}_{t}": per[t][k]
        for t in TRIPLETS
        for k in ("tc_gain", "oracle_gain", "tc_err_var_ml", "oracle_err_var_ml")
    }
    active_m3 = twin.products["active"] / 100.0 * pixels["porosity"].to_numpy()[:, None]
    series = {"ml": ml, "ml_da": ml_da, "obs_rescaled": obs_rescaled, "active_m3": active_m3}
    compare = {
        "ml_da": ml_da,
        "ml": ml,
        "labels": labels.labels,
        "passive": twin.products["passive"],
        "active_m3": active_m3,
        "reanalysis": twin.products["reanalysis"],
    }
    frame = pd.DataFrame(
        {
            "station": np.repeat(pixels["pixel"].to_numpy(), n_t),
            "climate": np.repeat(pixels["climate"].to_numpy(), n_t),
            "insitu": twin.insitu.ravel(),
            **{k: v.ravel() for k, v in compare.items()},
        }
    )
    frame = frame[np.repeat(is_val, n_t)]
    insitu_stations = frame.loc[frame["insitu"].notna(), "station"].unique()
    assert_disjoint(fit.train_pixels, insitu_stations)
    validation = validate_against_insitu(frame, list(compare), cls="climate")
    cv_frame = pd.DataFrame({"station": table["pixel"], "label": table["label"], "ml_cv": fit.cv_pred})
    cv = validate_against_insitu(cv_frame[train_rows], ["ml_cv"], obs="label")
    has_obs = np.isfinite(obs_rescaled)
    truth_scores = {name: _rmse(v, twin.truth) for name, v in compare.items() if name != "active_m3"}
    truth_scores.update(
        {
            "ml_on_retrieval_days": _rmse(ml, twin.truth, has_obs),
            "ml_da_on_retrieval_days": _rmse(ml_da, twin.truth, has_obs),
            "ml_without_retrieval": _rmse(ml, twin.truth, ~has_obs),
            "ml_da_without_retrieval": _rmse(ml_da, twin.truth, ~has_obs),
        }
    )
    for name in PRODUCTS:  # each product rescaled to the truth units by its known linear relation
        sc = np.asarray(twin.scale[name], dtype="float64")
        sc = sc[:, None] if sc.ndim else sc
        truth_scores[f"{name}_rescaled"] = _rmse(
            (twin.products[name] - twin.offset[name]) / sc * 0.9 + 0.02, 0.9 * twin.truth + 0.02
        )
    truth_scores["labels_vs_reference_units"] = _rmse(labels.labels, 0.9 * twin.truth + 0.02)
    gain_table = pd.DataFrame(
        {
            "pixel": pixels["pixel"],
            "gain": gains,
            "from_tc": from_tc,
            "oracle_gain": oracle,
            "training": pixels["pixel"].isin(fit.train_pixels).to_numpy(),
            **bias_cols,
        }
    )
    bias = gain_bias(gain_table)
    training = gain_table["training"].to_numpy()[:, None]
    for t in TRIPLETS:  # what each choice does to the series at the training pixels, against the truth
        bias[t]["training_pixels"]["rmse_vs_truth_ml"] = _rmse(members[t], twin.truth, training)
        bias[t]["training_pixels"]["rmse_vs_truth_ml_da"] = _rmse(per[t]["ml_da"], twin.truth, training)
    uncertainty = twin_uncertainty(
        twin,
        ml,
        ml_da,
        has_obs,
        gains,
        err_var_ml=chosen["tc_err_var_ml"],
        err_var_obs=chosen["tc_err_var_obs"],
        tc_ok=chosen["tc_ok"],
        memory_days=memory_days,
        nominal=nominal,
    )
    settings = {
        "n_splits": n_splits,
        "seed": seed,
        "gain": gain,
        "memory_days": memory_days,
        "min_samples": min_samples,
        "tc_fallback": tc_fallback,
        "triplet": triplet,
        "nominal": nominal,
        "params": fit.params,
    }
    return TwinResult(
        twin,
        labels,
        fit,
        series,
        gain_table,
        validation,
        cv,
        truth_scores,
        fit.train_pixels,
        val_ids,
        settings,
        bias,
        uncertainty,
    )


# --- CF output --------------------------------------------------------------------------------------


def twin_dataset(result: TwinResult, *, attrs: dict | None = None) -> xr.Dataset:
    """The twin as a CF timeSeries file labelled ``data_kind = "synthetic twin"``.

    Parameters
    ----------
    result : TwinResult
        From :func:`run_twin`.
    attrs : dict, optional
        Extra global attributes.

    Returns
    -------
    xarray.Dataset
        Dims (station = pixel, time): ``truth``, ``insitu``, ``passive``, ``active`` (%), ``reanalysis``,
        ``labels``, ``sm_ml``, ``sm_mlda`` (m3 m-3 unless noted); per pixel ``role``, ``climate``, the
        TC rule, gain, recovered and known error standard deviations; twin figures as attributes.
    """
    twin, n_t = result.twin, result.twin.truth.shape[1]
    pix = twin.pixels.rename(columns={"pixel": "station"}).copy()
    pix = pix.assign(
        tc_rule=result.labels.table["rule"].to_numpy(),
        nudging_gain=result.gain["gain"].to_numpy(),
        oracle_gain=result.gain["oracle_gain"].to_numpy(),
        nudging_err_std_ml=result.uncertainty["err_std_ml"],
        nudging_err_std_obs=result.uncertainty["err_std_obs"],
    )
    station_vars = {
        "role": {"long_name": "pixel role: training (labels, model, gain) or validation (in-situ station)"},
        "climate": {"long_name": "synthetic climate class"},
        "tc_rule": {"long_name": "label rule: tc (TC-weighted merge), equal (fallback), excluded"},
        "nudging_gain": {"long_name": "nudging gain G used", "units": "1"},
        "oracle_gain": {"long_name": "optimal gain from the true error variances (twin only)", "units": "1"},
        **{
            f"nudging_err_std_{m}": {
                "long_name": f"TC error standard deviation of the {what} in the nudging triplet (ML, passive, active), "
                "in ML units; median of the other pixels where TC failed",
                "units": "m3 m-3",
                "standard_name": SM_ERROR_STD_NAME,
                "coverage_content_type": "qualityInformation",
            }
            for m, what in (("ml", "ML member (background)"), ("obs", "passive retrieval rescaled to the ML member"))
        },
    }
    for name in PRODUCTS:
        pix[f"tc_err_std_{name}"] = result.labels.table[f"err_std_{name}"].to_numpy()
        pix[f"known_err_std_{name}"] = twin.known_err_std[name]
        station_vars[f"tc_err_std_{name}"] = {
            "long_name": f"TC error standard deviation of {name}, in passive units",
            "units": "m3 m-3",
            "standard_name": SM_ERROR_STD_NAME,
            "coverage_content_type": "qualityInformation",
        }
        station_vars[f"known_err_std_{name}"] = {
            "long_name": f"known error standard deviation of {name}, in passive units",
            "units": "m3 m-3",
            "standard_name": SM_ERROR_STD_NAME,
            "coverage_content_type": "qualityInformation",
        }
    frame = pd.DataFrame(
        {
            "station": np.repeat(pix["station"].to_numpy(), n_t),
            "time": np.tile(twin.times.to_numpy(), len(pix)),
            "truth": twin.truth.ravel(),
            "insitu": twin.insitu.ravel(),
            **{k: v.ravel() for k, v in twin.products.items()},
            "labels": result.labels.labels.ravel(),
            "sm_ml": result.series["ml"].ravel(),
            "sm_mlda": result.series["ml_da"].ravel(),
            SE_NAME: result.uncertainty["standard_error"].ravel(),
        }
    )
    variables: dict[str, dict[str, Any]] = {
        "truth": {
            **SM_ATTRS,
            "long_name": "synthetic truth (bucket model)",
            "coverage_content_type": "referenceInformation",
        },
        "insitu": {
            **SM_ATTRS,
            "long_name": "synthetic in-situ station (validation pixels only)",
            "coverage_content_type": "physicalMeasurement",
        },
        "passive": {**SM_ATTRS, "long_name": "synthetic passive-microwave retrieval (SMAP L3-like)"},
        "active": {**SATURATION_ATTRS, "long_name": "synthetic active-microwave degree of saturation (ASCAT-like)"},
        "reanalysis": {**SM_ATTRS, "long_name": "synthetic model/reanalysis soil moisture"},
        "labels": {**SM_ATTRS, "long_name": "TC-weighted merge of passive, active, reanalysis (training labels)"},
        "sm_ml": {
            **SM_ATTRS,
            "long_name": "LightGBM soil moisture from forcing, no assimilation; at training pixels the model of the "
            "fold that held the pixel out (cross-fitted)"
            if result.settings.get("triplet") == "independent"
            else "LightGBM soil moisture from forcing, no assimilation (final model)",
        },
        "sm_mlda": {**SM_ATTRS, "long_name": "ML-DA soil moisture: LightGBM nudged toward the passive retrieval"},
    }
    variables[SE_NAME] = {**standard_error_attrs(result, variables["sm_mlda"]), "_FillValue": np.float32(np.nan)}
    med = {k: v["median"] for k, v in result.validation.items()}
    a = {
        "data_kind": DataKind.SYNTHETIC,
        "title": "Soil moisture ML-DA twin experiment (synthetic truth, known errors)",
        "comment": "SYNTHETIC: every value in this file is drawn from a synthetic twin (products.generators.twins."
        "sm_mlda.make_twin); it checks the method, it is not a soil-moisture product.",
        "twin_median_r_ml_da": med["ml_da"]["r"],
        "twin_median_ubrmse_ml_da": med["ml_da"]["ubrmse"],
        "twin_validation_stations": med["ml_da"]["n_stations"],
        "settings": str({k: v for k, v in result.settings.items() if k != "params"}),
        **(attrs or {}),
    }
    ds = to_cf_timeseries(frame, variables, stations=pix, station_variables=station_vars, attrs=a)
    return unc.link_ancillary(ds, "sm_mlda", SE_NAME)


SE_NAME = "sm_mlda_standard_error"
"""The twin file's uncertainty variable: the standard error of ``sm_mlda``."""


def standard_error_attrs(result: TwinResult, estimate_attrs: dict) -> dict:
    """CF attributes of :data:`SE_NAME`: how it is obtained and its coverages at the validation pixels.

    Parameters
    ----------
    result : TwinResult
    estimate_attrs : dict
        The attributes of ``sm_mlda`` (standard name, units, long name).

    Returns
    -------
    dict
        From :func:`products.methods.uncertainty.standard_error_attributes` (method ``tc_nudging``).
    """
    u, memory = result.uncertainty, result.settings["memory_days"]
    cov, ins, own = u["coverage_truth"], u["coverage_insitu"], u["coverage_truth_own_scale"]
    extra = (
        "Error standard deviations: triple collocation of (ML, passive, active) per pixel on its satellite series "
        f"(no in-situ value, no truth); {propagation_note(memory)} "
        f"{unc.calibration_comment(cov)}: against the synthetic truth at the validation pixels "
        f"(RMSE {cov.rmse:.4f} against a mean standard error {cov.mean_standard_error:.4f} m3 m-3"
        f"{'; the interval is too narrow' if cov.too_narrow else ''}). Against the synthetic in-situ stations, "
        f"their known error std {INSITU_ERROR_STD:.4f} m3 m-3 added in quadrature: {ins.measured:.1%} of {ins.n}. "
        f"Against the truth rescaled to the ML series' own linear scale (twin-only diagnostic): {own.measured:.1%}: "
        "TC error variances describe the random error about each series' own scale, not the amplitude and offset "
        "error of the LightGBM series, which is why the interval is narrower than the error against the truth"
    )
    return unc.standard_error_attributes(
        estimate_attrs,
        method="tc_nudging",
        long_name="standard error of the ML-DA soil moisture (TC error standard deviations propagated through "
        "the nudging)",
        extra=extra,
    )
