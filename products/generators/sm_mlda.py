"""Soil moisture ML-DA, second product: TC-merged labels, LightGBM, Newtonian nudging (no Django).

The chain of Xu et al. (2025) in four steps and the uncertainty beside it, each a function of this module:

1. **Labels** (:func:`tc_labels`): per pixel/station, classical triple collocation
   (:func:`products.methods.triple_collocation.tc_metrics`) of three soil-moisture products of
   independent families (active satellite, passive satellite, model/reanalysis), then the
   TC-weighted merge (:func:`products.methods.triple_collocation.merge`, weights proportional to
   1 / error variance = R2 / (1 - R2) after rescaling to the reference product). Minimum-sample rule:
   a pixel with fewer than ``min_samples`` collocated days, or with every product flagged
   (negative error variance, R2 outside [0, 1]), gets no TC weights. Documented fallback
   (``tc_fallback``): ``"exclude"`` (default) leaves such a pixel without labels (it is not used for
   training; the model still predicts there); ``"equal"`` merges the products with equal weights after
   mean-standard-deviation matching to the reference.
2. **Model** (:func:`fit_model`): LightGBM (Ke et al. 2017) from daily forcing (air temperature,
   shortwave radiation, precipitation, relative humidity, antecedent precipitation indices, season)
   to the labels; ``n_splits``-fold cross-validation grouped by pixel
   (:func:`products.methods.cv.leave_station_out`), then a final model on all labelled pixels.
3. **Assimilation** (:func:`nudge_series`): Newtonian nudging (:func:`products.methods.nudging.nudge`)
   of the model series toward the satellite retrieval wherever it is valid, the retrieval first
   rescaled to the model climatology; gain G fixed or per pixel from TC error variances
   (:func:`products.methods.nudging.tc_gain`, :func:`tc_nudging_gain`) of a triplet whose errors are
   independent: (ML, passive, active) with the cross-fitted ML series (:meth:`ModelFit.cross_fitted`:
   at a training pixel the model of the fold that held it out, which never learnt the labels merged
   from that pixel's passive and active retrievals), which is also the series nudged. With ``memory_days`` > 0 the
   analysis increment persists into the following days, decaying as exp(-1 day / memory_days): the
   nudged state is carried forward as a model with soil-water memory would (0 = pointwise nudging).
4. **Uncertainty** (:func:`nudged_error_series`, :func:`lagged_tc`, :func:`withheld_uncertainty`): the
   standard error published beside the nudged estimate is the TC error standard deviation of the
   background (s_b) and of the retrieval (s_o) propagated through the nudging,
   ``sqrt((1-G)^2 s_b^2 + G^2 s_o^2)`` (:func:`products.methods.uncertainty.nudged_error_std`) with G = 0 on
   days without a retrieval; with increment memory the error is carried forward as the state is (the
   background's error taken as persistent over the memory time scale, the retrieval errors as white).
   On the twin s_b and s_o come from the TC of the nudging's triplet; on the real points, which have no
   second independent product, from the TC of the innovation with its own previous and next values
   (:func:`lagged_tc`). TC error variances describe random error about each series' own linear scale:
   an amplitude or offset error of the background is not in them (measured on the twin).
5. **Validation** (:func:`validate_against_insitu`): in-situ stations never used upstream (asserted
   with :func:`products.methods.cv.assert_disjoint`): per-station R and ubRMSE
   (:func:`products.methods.metrics.summary`), their medians with station counts
   (:func:`products.methods.aggregate.median_of_groups`), per class
   (:func:`products.methods.aggregate.per_class`), for the ML-DA series and, side by side, for the
   model without assimilation, the labels and each input product.

What runs on which data
-----------------------
* **Synthetic twin** (:mod:`products.generators.twins.sm_mlda`: ``make_twin``, ``run_twin``): the
  whole chain. A bucket model driven by synthetic forcing is the truth at N pixels; three products
  with known scalings and independent errors of known variance, and in-situ stations (truth + small
  error) are drawn from it, so the TC error standard deviations, the optimal nudging gain and the
  ranking of the results are known in advance. Every output of it is labelled ``synthetic twin``
  (:attr:`products.data_kind.DataKind.SYNTHETIC`).
* **Real data** (:func:`ismn_daily`, :func:`screen_retrievals`, :func:`climatology_background`,
  :func:`withheld_retrieval_check`, :func:`collocate`, :func:`validate_collocated`): ISMN in-situ
  series (daily means of good-quality hourly values), ASCAT/ERS retrievals (screened for frozen soil,
  snow and processing flags, daily), nudging of a climatological background toward the real
  retrievals scored on real retrievals withheld from both (:func:`withheld_check`: whole calendar
  months with a buffer for the increment memory; random days beside it to show the inflation), and the collocation of satellite grid points with ISMN
  stations (rescaling to the in-situ climatology and validation where a pair exists). What the sample
  data do NOT allow, and why: no real triple of collocated SM products exists (so no real TC and no
  real TC-merged labels), no forcing time series exists at the SM points (so no real LightGBM model),
  and no ASCAT/ERS cell of the sample data (cell 1358: 5-10 E, 40-45 N; cell 1395: 10-15 E, 45-50 N)
  holds an ISMN test station (USA, Alaska, south-west France), so the real in-situ validation of a
  satellite or ML-DA series finds no pair. GLDAS soil moisture exists for one day only.

Units: volumetric soil moisture in m3 m-3; ASCAT/ERS surface soil moisture in % (degree of
saturation); temperature degC; radiation W m-2; precipitation mm d-1; relative humidity %.

References
----------
Xu et al. (2025): Spatiotemporal seamless estimation of global surface soil moisture using triple
collocation, machine learning, and data assimilation. IEEE TGRS 63, doi:10.1109/TGRS.2025.3568034.
McColl, K. A., et al. (2014), Geophys. Res. Lett. 41, 6229-6236, doi:10.1002/2014GL061322 (TCR).
Gruber, A., et al. (2016), Int. J. Appl. Earth Obs. Geoinf. 45, 200-211, doi:10.1016/j.jag.2015.09.002.
Ke, G., et al. (2017): LightGBM: a highly efficient gradient boosting decision tree. NeurIPS 30.
Houser, P. R., et al. (1998), Water Resour. Res. 34, 3405-3420 (nudging of soil moisture).
Dorigo, W., et al. (2021): The International Soil Moisture Network: serving Earth system science for
over a decade. Hydrol. Earth Syst. Sci. 25, 5749-5804, doi:10.5194/hess-25-5749-2021.
Wagner, W., et al. (2013), Meteorol. Z. 22, 5-33, doi:10.1127/0941-2948/2013/0399 (ASCAT).
Kohler, M. A., Linsley, R. K. (1951): Predicting the runoff from storm rainfall. U.S. Weather Bureau
Research Paper 34 (antecedent precipitation index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm
import numpy as np
import pandas as pd
import sklearn
import xarray as xr

from products.data_kind import DataKind
from products.methods import triple_collocation as tc
from products.methods.aggregate import median_of_groups, per_class, per_group
from products.methods.cf import history_line, merge_attrs, timeseries_dataset
from products.methods.cv import leave_station_out
from products.methods.metrics import summary
from products.methods.nudging import nudge, tc_gain
from products.methods.uncertainty import interval_coverage as coverage
from products.methods.uncertainty import nudged_error_std
from products.registry import PRODUCTS as REGISTRY

FORCING = ("tair", "rad", "precip", "rh", "api_fast", "api_slow")
FEATURES = (*FORCING, "doy_sin", "doy_cos", "precip_clim")
UNITS = {
    "tair": "degC",
    "rad": "W m-2",
    "precip": "mm d-1",
    "rh": "%",
    "api_fast": "mm",
    "api_slow": "mm",
    "sm": "m3 m-3",
    "ssm": "%",
}
API_DECAY = {"api_fast": 0.80, "api_slow": 0.95}  # daily decay factors k of the antecedent precipitation indices
PRODUCTS = ("passive", "active", "reanalysis")  # the reference (first) is the passive retrieval, as SMAP L3
PRODUCT_UNITS = {"passive": "m3 m-3", "active": "%", "reanalysis": "m3 m-3"}
DEFAULT_PARAMS = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "n_jobs": 2,
    "verbose": -1,
    "deterministic": True,
    "force_col_wise": True,
}
_SEED = REGISTRY["sm_mlda"]
SEED_FIGURES = {
    "ml_da": {"r": _SEED.published["r_median"], "ubrmse": _SEED.published["ubrmse"]},
    **_SEED.compared,
    "stations": _SEED.published["stations"],
    "units": _SEED.published["ubrmse_units"],
}
"""The seed's published medians over its ISMN stations, of ML-DA and of the products it was compared with
(from :data:`products.registry.PRODUCTS`, their one home)."""
REFERENCES = (
    "method after Xu et al. (2025), IEEE TGRS 63, doi:10.1109/TGRS.2025.3568034; "
    "TCR: McColl et al. (2014), doi:10.1002/2014GL061322; TC: Gruber et al. (2016), doi:10.1016/j.jag.2015.09.002; "
    "LightGBM: Ke et al. (2017), NeurIPS 30; nudging: Houser et al. (1998), WRR 34, 3405-3420; "
    "ISMN: Dorigo et al. (2021), doi:10.5194/hess-25-5749-2021; ASCAT: Wagner et al. (2013), "
    "doi:10.1127/0941-2948/2013/0399"
)


# --- forcing features --------------------------------------------------------------------------


def antecedent_precipitation_index(precip, k: float) -> np.ndarray:
    """Antecedent precipitation index API_t = k API_(t-1) + P_t along the last axis (API_0 = P_0).

    Parameters
    ----------
    precip : array_like
        Shape (..., time), float, mm d-1 (daily totals); NaN counts as 0.
    k : float
        Daily decay factor in [0, 1).

    Returns
    -------
    numpy.ndarray
        Shape of ``precip``, float64, mm.

    Raises
    ------
    ValueError
        ``k`` outside [0, 1).

    References
    ----------
    Kohler & Linsley (1951), U.S. Weather Bureau Research Paper 34.
    """
    if not 0 <= k < 1:
        raise ValueError(f"k must be in [0, 1), found {k}")
    p = np.nan_to_num(np.asarray(precip, dtype="float64"))
    out = np.empty_like(p)
    acc = np.zeros(p.shape[:-1])
    for t in range(p.shape[-1]):
        acc = k * acc + p[..., t]
        out[..., t] = acc
    return out


def add_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the derived features of :data:`FEATURES` to a daily forcing table.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per (``pixel``, ``time``), sorted by pixel then time, daily without gaps per pixel;
        columns ``tair`` (degC), ``rad`` (W m-2), ``precip`` (mm d-1), ``rh`` (%).

    Returns
    -------
    pandas.DataFrame
        ``frame`` with ``api_fast``, ``api_slow`` (mm, :func:`antecedent_precipitation_index` with
        :data:`API_DECAY`), ``doy_sin``, ``doy_cos`` (day of year on the unit circle) and
        ``precip_clim`` (the pixel's mean precipitation, mm d-1: its climate) added (a copy).

    Raises
    ------
    ValueError
        A forcing column is missing.
    """
    missing = [c for c in ("pixel", "time", "tair", "rad", "precip", "rh") if c not in frame.columns]
    if missing:
        raise ValueError(f"forcing: missing columns {missing}")
    out = frame.copy()
    for name, k in API_DECAY.items():
        out[name] = np.concatenate(
            [antecedent_precipitation_index(g.to_numpy(), k) for _, g in out.groupby("pixel", sort=False)["precip"]]
        )
    angle = 2 * np.pi * (pd.DatetimeIndex(out["time"]).dayofyear.to_numpy() - 0.5) / 365.25
    out["doy_sin"], out["doy_cos"] = np.sin(angle), np.cos(angle)
    out["precip_clim"] = out.groupby("pixel", sort=False)["precip"].transform("mean")
    return out


# --- step 1: labels by triple collocation -------------------------------------------------------


@dataclass
class Labels:
    """Output of :func:`tc_labels`.

    Attributes
    ----------
    labels : numpy.ndarray
        (pixel, time), float64, units of the reference product; NaN where no label.
    table : pandas.DataFrame
        One row per pixel: ``n`` (collocated days), ``too_few_samples``, ``rule`` (``tc``, ``equal``
        or ``excluded``) and per product p ``err_std_<p>`` (units of the reference), ``tcr_<p>``,
        ``snr_db_<p>``, ``beta_<p>``, ``weight_<p>``, ``flag_<p>`` (negative error variance or R2 out
        of [0, 1]).
    """

    labels: np.ndarray
    table: pd.DataFrame


def _mean_std_match(values, reference):
    both = np.isfinite(values) & np.isfinite(reference)
    if both.sum() < 3 or np.nanstd(values[both]) == 0:
        return np.full_like(values, np.nan)
    v, r = values[both], reference[both]
    return r.mean() + (values - v.mean()) * (r.std() / v.std())


def tc_labels(products: dict, *, min_samples: int = 100, fallback: str = "exclude") -> Labels:
    """Per-pixel triple collocation and TC-weighted merge of three products into training labels.

    Parameters
    ----------
    products : dict of str to array_like
        Exactly three products, each (pixel, time) float with NaN where missing; the first key is the
        reference: labels and error standard deviations are in its units (e.g. m3 m-3). The three
        should come from independent families (TC assumption, see
        :mod:`products.methods.triple_collocation`).
    min_samples : int
        Minimum collocated days per pixel (``tc_metrics`` minimum-sample rule).
    fallback : {"exclude", "equal"}
        Pixels failing the rule (too few samples, or no product valid): ``exclude`` gives them no
        labels; ``equal`` averages the products with equal weights after mean-std matching each to
        the reference over their common days.

    Returns
    -------
    Labels

    Raises
    ------
    ValueError
        Not three products, shapes differ, or an unknown ``fallback``.

    References
    ----------
    McColl et al. (2014), doi:10.1002/2014GL061322; Gruber et al. (2016), doi:10.1016/j.jag.2015.09.002;
    Yilmaz et al. (2012), doi:10.1029/2011WR011682.
    """
    if len(products) != 3:
        raise ValueError(f"triple collocation needs exactly three products, found {len(products)}")
    if fallback not in ("exclude", "equal"):
        raise ValueError(f"fallback must be 'exclude' or 'equal', found {fallback!r}")
    names = list(products)
    arrays = [np.asarray(products[n], dtype="float64") for n in names]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"products must be 2-D (pixel, time) of one shape, found {[a.shape for a in arrays]}")
    labels = np.full(arrays[0].shape, np.nan)
    rows = []
    for i in range(arrays[0].shape[0]):
        x, y, z = (a[i] for a in arrays)
        res = tc.tc_metrics(x, y, z, min_samples=min_samples)
        flags = res.negative_error_variance | res.r2_out_of_range
        row: dict[str, object] = {"n": res.n, "too_few_samples": res.too_few_samples}
        if not res.too_few_samples and res.valid.any():
            labels[i] = tc.merge(x, y, z, res)
            weights = tc.merge_weights(np.where(res.valid, res.err_var, np.nan))
            row["rule"] = "tc"
        elif fallback == "equal":
            rescaled = np.vstack([x, _mean_std_match(y, x), _mean_std_match(z, x)])
            present = np.isfinite(rescaled)
            count = present.sum(axis=0)
            labels[i] = np.where(count > 0, np.where(present, rescaled, 0).sum(axis=0) / np.maximum(count, 1), np.nan)
            weights = np.full(3, 1 / 3)
            row["rule"] = "equal"
        else:
            weights = np.full(3, np.nan)
            row["rule"] = "excluded"
        for j, name in enumerate(names):
            row.update(
                {
                    f"err_std_{name}": res.err_std[j],
                    f"tcr_{name}": res.tcr[j],
                    f"snr_db_{name}": res.snr_db[j],
                    f"beta_{name}": res.beta[j],
                    f"weight_{name}": weights[j],
                    f"flag_{name}": bool(flags[j]),
                }
            )
        rows.append(row)
    return Labels(labels, pd.DataFrame(rows))


# --- step 2: LightGBM from forcing to the labels ----------------------------------------------------


@dataclass
class ModelFit:
    """Output of :func:`fit_model`.

    Attributes
    ----------
    cv_pred : numpy.ndarray
        (len(table),) float64, out-of-fold prediction at the training pixels (NaN elsewhere), units of the labels.
    pred : numpy.ndarray
        (len(table),) float64, final model's prediction at every row.
    fold : numpy.ndarray
        (len(table),) int, the fold that held the pixel out (-1: not a training pixel). Folds are drawn
        over the training pixels, labelled or not (a pixel without labels fits no model).
    model : lightgbm.LGBMRegressor
        Fitted on all labelled rows of the training pixels.
    train_pixels : numpy.ndarray
        Pixel ids whose labels fitted the final model.
    params : dict
    fold_models : list of lightgbm.LGBMRegressor
        The model of fold k, fitted on the labelled training pixels of the other folds only.
    fold_train_rows : list of numpy.ndarray
        Row positions (into the table) that fitted each fold's model.
    """

    cv_pred: np.ndarray
    pred: np.ndarray
    fold: np.ndarray
    model: lightgbm.LGBMRegressor
    train_pixels: np.ndarray
    params: dict = field(default_factory=dict)
    fold_models: list = field(default_factory=list)
    fold_train_rows: list = field(default_factory=list)

    def cross_fitted(self) -> np.ndarray:
        """Each row's prediction by a model that never saw its pixel's labels, (len(table),) float64.

        The out-of-fold prediction at the training pixels, the final model's elsewhere (pixels it was
        never fitted on). Its errors share nothing with the labels, hence with the retrieval errors,
        of the pixel: the member a triple collocation with those retrievals needs.
        """
        return np.where(self.fold >= 0, self.cv_pred, self.pred)


def fit_model(
    table: pd.DataFrame, *, train: np.ndarray, n_splits: int = 10, seed: int = 42, params: dict | None = None
) -> ModelFit:
    """LightGBM regression of the labels on forcing, cross-validated by pixel, then a final model.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`add_features` with a ``label`` column (float, NaN where none) and ``pixel``.
    train : numpy.ndarray
        bool (len(table),): rows allowed for fitting (the training pixels); rows with NaN labels are
        dropped from fitting in any case.
    n_splits : int
        Folds of ``GroupKFold`` by pixel over the training pixels, labelled or not (2 <= n_splits <= number
        of labelled training pixels).
    seed : int
        LightGBM ``random_state``.
    params : dict, optional
        ``LGBMRegressor`` parameters overriding :data:`DEFAULT_PARAMS`.

    Returns
    -------
    ModelFit

    Raises
    ------
    ValueError
        A feature is missing or ``n_splits`` is out of range.

    References
    ----------
    Ke et al. (2017), NeurIPS 30; scikit-learn ``GroupKFold`` (:func:`products.methods.cv.leave_station_out`).
    """
    missing = [c for c in (*FEATURES, "label", "pixel") if c not in table.columns]
    if missing:
        raise ValueError(f"table: missing columns {missing}")
    train_rows = np.flatnonzero(np.asarray(train, dtype=bool))
    labelled = np.isfinite(table["label"].to_numpy(dtype="float64"))
    fit_rows = train_rows[labelled[train_rows]]
    pixels = table["pixel"].to_numpy()
    n_groups = len(set(pixels[fit_rows]))
    if n_splits < 2 or n_splits > n_groups:
        raise ValueError(f"n_splits must be in 2..{n_groups} (labelled training pixels), found {n_splits}")
    params = {**DEFAULT_PARAMS, "random_state": seed, **(params or {})}
    x, y = table[list(FEATURES)], table["label"].to_numpy(dtype="float64")
    cv_pred, fold = np.full(len(table), np.nan), np.full(len(table), -1)
    fold_models, fold_rows = [], []
    # Folds are drawn over the training pixels' rows whether labelled or not, so that which pixels of a
    # held-out fold got labels (TC's minimum-sample rule and flags depend on the products' values there)
    # cannot move pixels between folds: nothing about a fold's targets shapes the other folds.
    for k, (tr, te) in enumerate(leave_station_out(pixels[train_rows], n_splits)):
        rows = train_rows[tr][labelled[train_rows[tr]]]
        if not rows.size:
            raise ValueError(f"fold {k}: no labelled training pixel outside the fold (too few labelled pixels)")
        model = lightgbm.LGBMRegressor(**params).fit(x.iloc[rows], y[rows])
        held = np.isin(pixels, np.unique(pixels[train_rows[te]]))
        cv_pred[held], fold[held] = model.predict(x[held]), k
        fold_models.append(model)
        fold_rows.append(rows)
    model = lightgbm.LGBMRegressor(**params).fit(x.iloc[fit_rows], y[fit_rows])
    return ModelFit(
        cv_pred,
        np.asarray(model.predict(x), dtype="float64"),
        fold,
        model,
        np.unique(pixels[fit_rows]),
        params,
        fold_models,
        fold_rows,
    )


# --- step 3: nudging ------------------------------------------------------------------------------


def rescale_to(values, reference, beta=None) -> np.ndarray:
    """Rescale a series to the climatology of a reference: mean matching with slope ``beta`` or std ratio.

    Parameters
    ----------
    values, reference : array_like
        1-D, shape (time,), float, NaN where missing; any units.
    beta : float, optional
        Slope (units of reference per unit of values), e.g. a TC rescaling factor; None uses the ratio
        of standard deviations over the common time steps (mean-standard-deviation matching).

    Returns
    -------
    numpy.ndarray
        (time,) float64 in the units of ``reference``; all NaN with fewer than 3 common time steps.

    References
    ----------
    Gruber et al. (2016), doi:10.1016/j.jag.2015.09.002 (rescaling); pytesmo ``scaling.mean_std``.
    """
    v, r = np.asarray(values, dtype="float64"), np.asarray(reference, dtype="float64")
    if beta is None:
        return _mean_std_match(v, r)
    both = np.isfinite(v) & np.isfinite(r)
    if both.sum() < 3:
        return np.full_like(v, np.nan)
    return r[both].mean() + beta * (v - v[both].mean())


def tc_nudging_gain(model, obs, third, *, min_samples: int = 100, fallback_gain: float = 0.5):
    """Nudging gain G = s2_model / (s2_model + s2_obs) from triple collocation of (model, obs, third).

    Parameters
    ----------
    model, obs, third : array_like
        1-D (time,), float: the model series (reference of the TC, so s2 are in model units), the
        retrieval to assimilate and an independent third product (NaN where missing).
    min_samples : int
        TC minimum-sample rule.
    fallback_gain : float
        G used when TC fails the rule or flags the model or the observation.

    Returns
    -------
    gain : float
        In [0, 1].
    beta_obs : float or None
        TC rescaling factor of ``obs`` to the model (None when TC failed: rescale by std matching).
    from_tc : bool
        Whether G came from TC.

    References
    ----------
    METHODS.md (Newtonian nudging); :func:`products.methods.nudging.tc_gain`; McColl et al. (2014).
    """
    res = tc.tc_metrics(model, obs, third, min_samples=min_samples)
    if res.too_few_samples or not (res.valid[0] and res.valid[1]):
        return float(fallback_gain), None, False
    return float(tc_gain(res.err_var[0], res.err_var[1])), float(res.beta[1]), True


def nudge_series(model, obs, gain, *, memory_days: float = 0.0) -> np.ndarray:
    """Sequential Newtonian nudging of model series toward observations, with increment memory.

    At each day t the background is the model value plus the previous analysis increment decayed by
    a = exp(-1 / memory_days) (a = 0 when ``memory_days`` is 0); where the observation is finite the
    background is nudged, x_a = x_b + G (y - x_b) (:func:`products.methods.nudging.nudge`), else
    x_a = x_b. With ``memory_days`` = 0 this equals ``nudge(model, obs, gain)``.

    Parameters
    ----------
    model : array_like
        (pixel, time) or (time,), float, model (background) series, any units.
    obs : array_like
        Same shape and units (already rescaled to the model climatology); NaN = no retrieval.
    gain : float or array_like
        G in [0, 1], scalar or (pixel,).
    memory_days : float
        e-folding time of the increment in days (>= 0).

    Returns
    -------
    numpy.ndarray
        float64, shape of ``model``: the analysis series.

    Raises
    ------
    ValueError
        Shapes differ, ``memory_days`` < 0, or a gain outside [0, 1].

    References
    ----------
    Houser et al. (1998), WRR 34, 3405-3420; Xu et al. (2025), doi:10.1109/TGRS.2025.3568034.
    """
    m, y = np.asarray(model, dtype="float64"), np.asarray(obs, dtype="float64")
    if m.shape != y.shape:
        raise ValueError(f"model and obs must have the same shape, found {m.shape} and {y.shape}")
    if memory_days < 0:
        raise ValueError(f"memory_days must be >= 0, found {memory_days}")
    squeeze = m.ndim == 1
    m2, y2 = np.atleast_2d(m), np.atleast_2d(y)
    g = np.broadcast_to(np.asarray(gain, dtype="float64"), (m2.shape[0],))
    if memory_days == 0:
        out = nudge(m2, y2, g[:, None])
        return out[0] if squeeze else out
    a = np.exp(-1.0 / memory_days)
    out = np.empty_like(m2)
    increment = np.zeros(m2.shape[0])
    for t in range(m2.shape[1]):
        background = m2[:, t] + a * increment
        out[:, t] = nudge(background, y2[:, t], g)
        increment = np.nan_to_num(out[:, t] - m2[:, t])
    return out[0] if squeeze else out


# --- uncertainty: TC error standard deviations propagated through the nudging ---------------------------


def nudged_error_series(err_std_model, err_std_obs, gain, has_obs, *, memory_days: float = 0.0, defined=None):
    """Error standard deviation of the :func:`nudge_series` analysis, propagated as the state is.

    Each day the analysis error is that of a nudging update, :func:`products.methods.uncertainty.nudged_error_std`
    (``sqrt((1-G)^2 s_b^2 + G^2 s_o^2)``) with G the gain on days with a retrieval and 0 without one.
    With ``memory_days`` > 0 the background of day t is the model plus the previous increment decayed
    by ``a = exp(-1 / memory_days)`` (:func:`nudge_series`), so its error is
    ``e_b(t) = e_m + a (e_a(t-1) - e_m)``; it is propagated under two assumptions, stated in the files:
    the model's error ``e_m`` persists over the memory time scale (a forcing-driven model or a
    climatology errs for weeks, not days), and the retrieval errors are white and independent of it.
    The analysis error is then ``c(t) e_m + (retrieval errors)`` with ``c_b(t) = 1 - a + a c(t-1)``,
    ``c(t) = (1 - G_t) c_b(t)`` and the retrieval part's variance ``v(t) = (1-G_t)^2 a^2 v(t-1) + G_t^2 s_o^2``,
    so ``s_b(t)^2 = c_b(t)^2 s_m^2 + a^2 v(t-1)`` and ``s_a(t) = nudged_error_std(s_b(t), s_o, G_t)``.
    With ``memory_days`` = 0 this is the pointwise ``nudged_error_std(s_m, s_o, G)`` on retrieval days and
    ``s_m`` elsewhere. Where the analysis is not defined the increment restarts at 0 (as in
    :func:`nudge_series`): ``c = 1``, ``v = 0``.

    Parameters
    ----------
    err_std_model, err_std_obs : float or array_like
        Error standard deviations of the model (background) and of the retrieval rescaled to the
        model, e.g. from triple collocation; scalar or (pixel,), float, the model's units, >= 0.
    gain : float or array_like
        G in [0, 1], scalar or (pixel,), the gain :func:`nudge_series` used.
    has_obs : array_like
        (pixel, time) or (time,) bool: the days a retrieval was assimilated (finite ``obs`` of
        :func:`nudge_series`).
    memory_days : float
        e-folding time of the increment, days (>= 0), as in :func:`nudge_series`.
    defined : array_like, optional
        bool, shape of ``has_obs``: where the analysis exists (default everywhere); NaN elsewhere.

    Returns
    -------
    numpy.ndarray
        float64, shape of ``has_obs``: the analysis error standard deviation, the model's units; NaN where
        not ``defined`` or where a needed error standard deviation is NaN.

    Raises
    ------
    ValueError
        ``memory_days`` < 0, a gain outside [0, 1], or a ``defined`` of another shape.

    References
    ----------
    Gelb, A. (1974): Applied Optimal Estimation, MIT Press (error propagation of a linear update);
    Gruber et al. (2016), doi:10.1016/j.jag.2015.09.002 (TC error variances).
    """
    if memory_days < 0:
        raise ValueError(f"memory_days must be >= 0, found {memory_days}")
    obs_days = np.asarray(has_obs, dtype=bool)
    squeeze = obs_days.ndim == 1
    obs2 = np.atleast_2d(obs_days)
    n_pix, n_t = obs2.shape
    ok = np.ones_like(obs2) if defined is None else np.atleast_2d(np.asarray(defined, dtype=bool))
    if ok.shape != obs2.shape:
        raise ValueError(f"defined must have the shape of has_obs {obs2.shape}, found {ok.shape}")
    g = np.broadcast_to(np.asarray(gain, dtype="float64"), (n_pix,))
    if not np.all(np.isfinite(g) & (g >= 0) & (g <= 1)):
        raise ValueError("gain must be finite and within [0, 1]")
    sm = np.broadcast_to(np.asarray(err_std_model, dtype="float64"), (n_pix,))
    so = np.broadcast_to(np.asarray(err_std_obs, dtype="float64"), (n_pix,))
    a = np.exp(-1.0 / memory_days) if memory_days > 0 else 0.0
    out = np.full((n_pix, n_t), np.nan)
    c, v = np.ones(n_pix), np.zeros(n_pix)
    for t in range(n_t):
        gt = np.where(obs2[:, t], g, 0.0)
        c_b, v_b = 1.0 - a + a * c, a**2 * v
        s_b = np.sqrt(c_b**2 * sm**2 + v_b)
        s_o = np.where(gt > 0, so, 0.0)  # no retrieval: its error does not enter
        out[:, t] = np.where(ok[:, t], nudged_error_std(s_b, s_o, gt), np.nan)
        c = np.where(ok[:, t], (1.0 - gt) * c_b, 1.0)
        v = np.where(ok[:, t], (1.0 - gt) ** 2 * v_b + gt**2 * s_o**2, 0.0)
    return out[0] if squeeze else out


def propagation_note(memory_days: float) -> str:
    """One sentence for the files: how the error is propagated through :func:`nudge_series` with ``memory_days``."""
    if memory_days == 0:
        return "pointwise nudging: sqrt((1-G)^2 s_b^2 + G^2 s_o^2) with G = 0 on days without a retrieval."
    return (
        f"propagated as the nudged state is (increment memory, e-folding {memory_days:g} days; "
        "products.generators.sm_mlda.nudged_error_series): G = 0 on days without a retrieval, the background's "
        "error assumed persistent over the memory time scale and the retrieval errors white and independent of it."
    )


def lagged_tc(innovation, *, max_gap_days: int = 5, min_samples: int = 100) -> pd.DataFrame:
    """Error standard deviations of a retrieval and of its background from one series: triple collocation
    of the innovation with its own previous and next values.

    Where no second independent product exists (the real ASCAT/ERS points), the innovation
    ``d = y - b`` (retrieval minus background) at each retrieval day is collocated
    (:func:`products.methods.triple_collocation.tc_metrics`) with ``d`` at the station's previous and next
    retrieval days, each within ``max_gap_days``. The innovation is the background's error
    ``theta - b`` plus the retrieval's error; with that background error autocorrelated as
    ``exp(-lag / T)`` (first-order Markov, Delworth & Manabe 1988) and the retrieval errors white and
    independent of it, the TC "signal" variance ``C_xy C_xz / C_yz`` is the background's error variance
    and the TC error variance of the first member is the retrieval's (the lag-instrument idea of
    Su et al. 2014); with independent gaps before and after a day this holds for gaps of any length.
    A slowly varying part of the background error (a year's anomaly) makes the signal variance low
    and the retrieval's error variance high (a conservative bias).

    Parameters
    ----------
    innovation : pandas.DataFrame
        (station x day) retrieval minus background on consecutive days, NaN where nothing was
        assimilated (the retrievals used must be the assimilated ones only), units of the retrieval.
    max_gap_days : int
        Largest gap, days, to the previous and to the next retrieval (>= 1).
    min_samples : int
        TC minimum-sample rule (collocated triples).

    Returns
    -------
    pandas.DataFrame
        Index the stations; ``n`` (int, triples), ``err_std_obs`` and ``err_std_background`` (float64,
        units of the retrieval), ``from_tc`` (bool): the station's own triples passed the rule (at least
        ``min_samples``, a positive error variance and R2 within [0, 1]); ``source``: ``station``, else
        ``pooled`` (the TC of every station's triples together, the values the station gets) or ``none``
        (NaN: the pooled TC failed too). ``table.attrs`` holds ``n_pooled`` and the pooled estimates.

    Raises
    ------
    ValueError
        ``max_gap_days`` < 1.

    References
    ----------
    Su, C.-H., Ryu, D., Crow, W. T., Western, A. W. (2014): Beyond triple collocation: applications to soil
    moisture monitoring. J. Geophys. Res. Atmos. 119, 6419-6439, doi:10.1002/2013JD021043.
    Delworth, T. L., Manabe, S. (1988), J. Climate 1, 523-547 (first-order Markov soil moisture anomalies).
    McColl et al. (2014), doi:10.1002/2014GL061322.
    """
    if max_gap_days < 1:
        raise ValueError(f"max_gap_days must be >= 1, found {max_gap_days}")
    values = innovation.to_numpy(dtype="float64")
    triples = []
    for i in range(values.shape[0]):
        idx = np.flatnonzero(np.isfinite(values[i]))
        mid = np.arange(1, max(idx.size - 1, 1))
        if idx.size >= 3:
            mid = mid[((idx[mid] - idx[mid - 1]) <= max_gap_days) & ((idx[mid + 1] - idx[mid]) <= max_gap_days)]
        else:
            mid = mid[:0]
        triples.append(np.vstack([values[i, idx[mid + k]] for k in (0, -1, 1)]) if mid.size else np.empty((3, 0)))

    def collocate(d):
        res = tc.tc_metrics(d[0], d[1], d[2], min_samples=min_samples)
        if res.too_few_samples or not res.valid[0]:
            return res.n, np.nan, np.nan, False
        signal = float(res.r2[0] * np.var(d[0], ddof=1))  # C_xy C_xz / C_yz: the background's error variance
        return res.n, float(res.err_std[0]), float(np.sqrt(signal)), True

    rows = [
        dict(zip(("n", "err_std_obs", "err_std_background", "from_tc"), collocate(d), strict=True)) for d in triples
    ]
    table = pd.DataFrame(rows, index=innovation.index)
    n_pooled, s_o, s_b, ok = collocate(np.hstack(triples) if triples else np.empty((3, 0)))
    table["source"] = np.where(table["from_tc"], "station", "pooled" if ok else "none")
    table.loc[~table["from_tc"], ["err_std_obs", "err_std_background"]] = (s_o, s_b)
    table.attrs.update({"n_pooled": int(n_pooled), "err_std_obs_pooled": s_o, "err_std_background_pooled": s_b})
    return table


# --- step 4: validation on independent stations --------------------------------------------------


def validate_against_insitu(
    frame: pd.DataFrame,
    series: list[str],
    *,
    obs: str = "insitu",
    group: str = "station",
    cls: str | None = None,
    min_n: int = 30,
) -> dict:
    """Per-station, pooled, median and per-class agreement of several series with in-situ data.

    Each series is scored on the days it has a value (a product with gaps on its own days, as the
    seed compares products).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per (station, day): ``group``, ``obs`` (m3 m-3) and each name of ``series`` (same units),
        optionally ``cls``.
    series : list of str
        Columns to validate.
    obs, group, cls : str
        Column names of the reference, the station id and the class (constant per station).
    min_n : int
        Minimum valid pairs for a station to count.

    Returns
    -------
    dict
        Per series name: ``pooled`` (:func:`products.methods.metrics.summary` over all pairs),
        ``site`` (dict station -> summary), ``median`` (dict: ``n_stations`` and the median of each
        score over stations), ``class`` (dict class -> pooled summary with ``n_stations`` and medians).

    References
    ----------
    :mod:`products.methods.aggregate`; Xu et al. (2025) report medians over 1094 ISMN stations.
    """
    out = {}
    for name in series:
        sub = frame[[group, obs, name, *([cls] if cls else [])]]
        sites = per_group(sub, name, obs, group, min_n=min_n)
        med = {
            "n_stations": int(len(sites)),
            **{m: median_of_groups(sites, m) for m in ("kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse")},
        }
        item = {
            "pooled": summary(sub[name], sub[obs]),
            "site": {k: dict(v) for k, v in sites.iterrows()},
            "median": med,
        }
        if cls:
            table = per_class(sub, name, obs, group, cls, min_n=min_n)
            item["class"] = {k: dict(v) for k, v in table.iterrows()}
        out[name] = item
    return out


def validation_rows(results: dict, *, split: str, kind: str, units: str, variable_prefix: str = "sm") -> list[dict]:
    """ValidationResult-ready dicts from :func:`validate_against_insitu` output.

    Parameters
    ----------
    results : dict
        From :func:`validate_against_insitu` (or the same layout).
    split : str
        E.g. ``twin_insitu``, ``twin_cv``, ``real_withheld`` (<= 30 characters).
    kind : str
        A :class:`products.data_kind.DataKind` (``synthetic twin`` or ``real``); written into each
        pooled/class label.
    units : str
        Units of the compared series.
    variable_prefix : str
        The variable is ``<prefix>_<series name>``.

    Returns
    -------
    list of dict
        Keys ``variable``, ``units``, ``split``, ``scope`` (``pooled`` | ``site`` | ``class``), ``label``
        and the metrics of :func:`products.methods.metrics.summary` (``n``, ``kge``, ``r``, ...).
        Pooled rows: label ``<kind>: all stations (pooled)`` (n = pairs). Site rows: label =
        station id (medians over stations are formed from these rows where shown, and kept in
        the run summary). Class rows: label ``<kind>: <class> (<k> stations, pooled)``.
    """
    keys = ("n", "kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse")
    rows = []
    for name, item in results.items():
        base = {"variable": f"{variable_prefix}_{name}", "units": units, "split": split}
        rows.append({**base, "scope": "pooled", "label": f"{kind}: all stations (pooled)", **item["pooled"]})
        rows.extend(
            {**base, "scope": "site", "label": str(station), **{k: m[k] for k in keys}}
            for station, m in item["site"].items()
        )
        for label, m in item.get("class", {}).items():
            rows.append(
                {
                    **base,
                    "scope": "class",
                    "label": f"{kind}: {label} ({int(m['n_stations'])} stations, pooled)",
                    **{k: m[k] for k in keys},
                }
            )
    return rows


# --- real data pieces -------------------------------------------------------------------------------


def _depth_to(variable: str) -> float:
    try:
        return float(variable.split("_")[2])
    except (IndexError, ValueError):
        return np.nan


def ismn_daily(
    observations: pd.DataFrame,
    *,
    good_flags: tuple[str, ...] = ("G", "U"),
    max_depth: float = 0.10,
    min_hours: int = 12,
) -> pd.DataFrame:
    """Daily surface soil moisture per ISMN station from hourly observations.

    Per station the shallowest soil-moisture variable with depth_to <= ``max_depth`` is used; values
    with an ISMN quality flag not in ``good_flags`` are dropped (``G`` good; ``U`` is written by the
    SCAN and SOILSCAPE files of the sample, which carry no ISMN check); the daily mean is kept where at
    least ``min_hours`` values remain.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table (``station``, ``variable`` like ``sm_0.05_0.05``, ``time`` UTC, ``value`` m3 m-3,
        ``units``, ``quality_flag``), e.g. ISMN rows of the observation table.
    good_flags : tuple of str
        Accepted ISMN flags (the whole flag string must be one of them).
    max_depth : float
        Deepest accepted lower sensor depth, m.
    min_hours : int
        Minimum hourly values per day.

    Returns
    -------
    pandas.DataFrame
        ``station``, ``time`` (day, datetime64[ns]), ``insitu`` (float64, m3 m-3), ``n_hours`` (int),
        ``variable``; sorted by station and time. Empty when nothing qualifies.

    Raises
    ------
    ValueError
        A soil-moisture row is not in m3 m-3.

    References
    ----------
    Dorigo et al. (2021), doi:10.5194/hess-25-5749-2021; ISMN flags https://ismn.earth/en/data/flag-overview/.
    """
    sm = observations[observations["variable"].str.startswith("sm_")].copy()
    bad_units = set(sm["units"]) - {"m3 m-3"}
    if bad_units:
        raise ValueError(f"ISMN soil moisture must be in 'm3 m-3', found {sorted(bad_units)}")
    sm["depth_to"] = sm["variable"].map(_depth_to)
    sm = sm[(sm["depth_to"] <= max_depth) & sm["quality_flag"].isin(good_flags)]
    columns = ["station", "time", "insitu", "n_hours", "variable"]
    if sm.empty:
        return pd.DataFrame(columns=columns)
    shallowest = sm.groupby("station")["depth_to"].transform("min")
    sm = sm[sm["depth_to"] == shallowest]
    first_var = sm.groupby("station")["variable"].transform("first")
    sm = sm[sm["variable"] == first_var]
    sm["day"] = pd.DatetimeIndex(sm["time"]).floor("D")
    daily = (
        sm.groupby(["station", "day"])
        .agg(insitu=("value", "mean"), n_hours=("value", "size"), variable=("variable", "first"))
        .reset_index()
        .rename(columns={"day": "time"})
    )
    daily = daily[daily["n_hours"] >= min_hours]
    daily["time"] = daily["time"].astype("datetime64[ns]")
    return daily[columns].sort_values(["station", "time"]).reset_index(drop=True)


def screen_retrievals(observations: pd.DataFrame, *, max_frozen: float = 10.0, max_snow: float = 10.0) -> pd.DataFrame:
    """Daily ASCAT/ERS surface soil moisture with frozen, snow and processing screening.

    A retrieval is kept when its quality flag has processing flag 0 (``p0``) and no surface state flag
    other than 0 (unknown) or 1 (unfrozen) (``s2`` frozen, ``s3`` melting/water, ``s4`` ice are
    dropped), and the frozen and snow probabilities of the same time step (when given) are <=
    ``max_frozen`` / ``max_snow`` %. The daily value is the mean of the retrievals of the day.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table of reader kind ``ascat``: ``station`` (grid point), ``variable`` (``ssm``,
        ``frozen_prob``, ``snow_prob``), ``time``, ``value`` (%), ``units``, ``quality_flag``
        (``p<proc>[c<corr>][s<ssf>]``).
    max_frozen, max_snow : float
        Thresholds, %.

    Returns
    -------
    pandas.DataFrame
        ``station``, ``time`` (day, datetime64[ns]), ``ssm`` (float64, % saturation), ``n_retrievals``
        (int); sorted. Empty when nothing passes.

    Raises
    ------
    ValueError
        No ``ssm`` rows, or ssm not in %.

    References
    ----------
    Wagner et al. (2013), doi:10.1127/0941-2948/2013/0399; H SAF ASCAT SSM CDR Product User Manual.
    """
    ssm = observations[observations["variable"] == "ssm"]
    if ssm.empty:
        raise ValueError("observations: no 'ssm' rows (ASCAT/ERS surface soil moisture)")
    if set(ssm["units"]) != {"%"}:
        raise ValueError(f"ssm must be in '%', found {sorted(set(ssm['units']))}")
    keys = ["station", "time"]
    wide = ssm[[*keys, "value", "quality_flag"]].rename(columns={"value": "ssm"})
    for name in ("frozen_prob", "snow_prob"):
        part = observations.loc[observations["variable"] == name, [*keys, "value"]].rename(columns={"value": name})
        wide = wide.merge(part.drop_duplicates(keys), on=keys, how="left")
    flag = wide["quality_flag"].fillna("").astype(str)
    ok = flag.str.match(r"^p0(?:c\d+)?(?:s[01])?$")
    ok &= ~(wide["frozen_prob"] > max_frozen) & ~(wide["snow_prob"] > max_snow)
    kept = wide[ok & wide["ssm"].notna()].copy()
    if kept.empty:
        return pd.DataFrame(columns=["station", "time", "ssm", "n_retrievals"])
    kept["day"] = pd.DatetimeIndex(kept["time"]).floor("D")
    daily = kept.groupby(["station", "day"]).agg(ssm=("ssm", "mean"), n_retrievals=("ssm", "size")).reset_index()
    daily = daily.rename(columns={"day": "time"})
    daily["time"] = daily["time"].astype("datetime64[ns]")
    return daily.sort_values(keys).reset_index(drop=True)


def to_wide(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """(station x day) table of one column of a daily long table, every day of the span present.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``station``, ``time`` (days), ``value``.
    value : str
        Column to spread.

    Returns
    -------
    pandas.DataFrame
        Index station, columns a daily DatetimeIndex, float64, NaN where missing.
    """
    wide = frame.pivot_table(index="station", columns="time", values=value, aggfunc="mean")
    days = pd.date_range(wide.columns.min(), wide.columns.max(), freq="D")
    return wide.reindex(columns=days).astype("float64")


def climatology_background(wide: pd.DataFrame, *, window_days: int = 31, min_years: int = 2) -> pd.DataFrame:
    """Seamless background from the day-of-year climatology of the other years (leave-year-out).

    For each station and year the background of a day is the mean of the station's values within
    +-``window_days``//2 days of year (circular) in all OTHER years, so a year's own values never
    enter its background. Stations with fewer than ``min_years`` years of data get NaN.

    Parameters
    ----------
    wide : pandas.DataFrame
        From :func:`to_wide` (station x day), any units.
    window_days : int
        Width of the day-of-year window (odd, >= 1).
    min_years : int
        Minimum number of years with data.

    Returns
    -------
    pandas.DataFrame
        Same index and columns, float64, units of ``wide``.

    References
    ----------
    WMO-No. 1203 (2017), climatological normals; leave-year-out as in
    :func:`products.methods.cv.year_held_out`.
    """
    days = pd.DatetimeIndex(wide.columns)
    doy = np.minimum(days.dayofyear.to_numpy(), 365) - 1
    years = days.year.to_numpy()
    half = window_days // 2
    out = np.full(wide.shape, np.nan)
    values = wide.to_numpy(dtype="float64")
    for i in range(values.shape[0]):
        v = values[i]
        ok = np.isfinite(v)
        present_years = np.unique(years[ok])
        if present_years.size < min_years:
            continue
        for yr in np.unique(years):
            other = ok & (years != yr)
            sums, counts = np.zeros(365), np.zeros(365)
            np.add.at(sums, doy[other], v[other])
            np.add.at(counts, doy[other], 1)
            kernel = np.ones(2 * half + 1)
            cs = np.convolve(np.concatenate([sums[-half:], sums, sums[:half]]), kernel, "valid") if half else sums
            cc = (
                np.convolve(np.concatenate([counts[-half:], counts, counts[:half]]), kernel, "valid")
                if half
                else counts
            )
            clim = np.where(cc > 0, cs / np.where(cc > 0, cc, 1), np.nan)
            sel = years == yr
            out[i, sel] = clim[doy[sel]]
    return pd.DataFrame(out, index=wide.index, columns=wide.columns)


WITHHELD_BLOCKS = ("month", "day")
"""How :func:`withheld_check` withholds retrievals: whole calendar months (the headline, split
``real_withheld_months``) or single random days (split ``real_withheld``, kept beside it to show how much
day-to-day autocorrelation inflates a random-day check)."""


def memory_buffer_days(memory_days: float, *, residual: float = 0.05) -> int:
    """Days after which the nudging increment has decayed below ``residual`` of its size: ceil(-memory_days ln residual).

    Parameters
    ----------
    memory_days : float
        e-folding time of the increment (:func:`nudge_series`), days (>= 0).
    residual : float
        Share of the increment left after the buffer, in (0, 1); 0.05 gives 3 e-folding times.

    Returns
    -------
    int
        Buffer length, days (0 when ``memory_days`` is 0).

    Raises
    ------
    ValueError
        ``memory_days`` < 0 or ``residual`` outside (0, 1).
    """
    if memory_days < 0 or not 0 < residual < 1:
        raise ValueError(f"need memory_days >= 0 and 0 < residual < 1, found {memory_days}, {residual}")
    return int(np.ceil(-memory_days * np.log(residual)))


def withheld_masks(
    valid: np.ndarray,
    days,
    *,
    block: str = "month",
    fraction: float = 0.2,
    seed: int = 42,
    buffer_days: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Which retrievals are withheld from the nudging (and scored), and which are left out as a buffer.

    ``block = "month"``: for each station (grid point) independently, round(``fraction`` x its months
    with a retrieval) calendar months (at least one) are drawn at random and every retrieval in them is
    withheld; the ``buffer_days`` days before each withheld month (outside withheld months) are
    neither assimilated nor scored, so the nudging's increment memory cannot carry an assimilated
    retrieval into the month (the nudging runs forward in time, :func:`nudge_series`: days after a
    month never reach it). ``block = "day"``: each valid retrieval is withheld with probability
    ``fraction``, no buffer (the pre-issue-16 check, inflated by day-to-day autocorrelation).

    Parameters
    ----------
    valid : numpy.ndarray
        (station, day) bool, where a retrieval (and a background) exists.
    days : array_like
        (day,) datetime64, consecutive days.
    block : {"month", "day"}
    fraction : float
        Share of months (or of retrievals) withheld, in (0, 1).
    seed : int
        numpy random seed.
    buffer_days : int
        Days before each withheld month left out of the nudging (>= 0; month blocks only).

    Returns
    -------
    withheld : numpy.ndarray
        (station, day) bool, subset of ``valid``: scored, never assimilated.
    buffer : numpy.ndarray
        (station, day) bool, subset of ``valid``, disjoint from ``withheld``: neither assimilated nor scored.

    Raises
    ------
    ValueError
        Unknown ``block``, ``fraction`` outside (0, 1), ``buffer_days`` < 0 or shapes that differ.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881 (blocked cross-validation with buffers).
    """
    if block not in WITHHELD_BLOCKS:
        raise ValueError(f"block must be one of {WITHHELD_BLOCKS}, found {block!r}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), found {fraction}")
    if buffer_days < 0:
        raise ValueError(f"buffer_days must be >= 0, found {buffer_days}")
    valid = np.asarray(valid, dtype=bool)
    index = pd.DatetimeIndex(np.asarray(days))
    if valid.ndim != 2 or valid.shape[1] != len(index):
        raise ValueError(f"valid must be (station, day) with {len(index)} days, found {valid.shape}")
    rng = np.random.default_rng(seed)
    if block == "day":
        return valid & (rng.random(valid.shape) < fraction), np.zeros_like(valid)
    month = (index.year * 12 + index.month - 1).to_numpy()
    withheld_days = np.zeros_like(valid)
    for i in range(valid.shape[0]):
        months = np.unique(month[valid[i]])
        if months.size == 0:
            continue
        chosen = rng.choice(months, max(1, int(round(fraction * months.size))), replace=False)
        withheld_days[i] = np.isin(month, chosen)
    opens = withheld_days & ~np.concatenate([np.zeros((valid.shape[0], 1), bool), withheld_days[:, :-1]], axis=1)
    before = np.zeros_like(valid)
    for lag in range(1, min(buffer_days, valid.shape[1] - 1) + 1):  # day t is a buffer day if day t + lag opens a month
        before[:, :-lag] |= opens[:, lag:]
    return valid & withheld_days, valid & before & ~withheld_days


@dataclass
class WithheldCheck:
    """Output of :func:`withheld_check` (all tables (station x day), the index and columns of ``obs``).

    Attributes
    ----------
    results : dict
        :func:`validate_against_insitu` layout for ``background`` and ``nudged`` against the withheld retrievals.
    analysis, background : pandas.DataFrame
        The nudged series and its background, units of ``obs``.
    withheld, buffer, assimilated : pandas.DataFrame
        bool: scored (never assimilated), left out as a buffer, assimilated.
    block : str
    buffer_days : int
    """

    results: dict
    analysis: pd.DataFrame
    background: pd.DataFrame
    withheld: pd.DataFrame
    buffer: pd.DataFrame
    assimilated: pd.DataFrame
    block: str
    buffer_days: int


def withheld_check(
    obs: pd.DataFrame,
    background,
    *,
    block: str = "month",
    gain: float = 0.5,
    memory_days: float = 3.0,
    fraction: float = 0.2,
    seed: int = 42,
    buffer_days: int | None = None,
    min_n: int = 30,
) -> WithheldCheck:
    """Score nudging toward retrievals on retrievals withheld from the nudging AND from its background.

    Retrievals are withheld by :func:`withheld_masks` (whole calendar months with a memory buffer
    before each, or random days); the background is fitted on the assimilated retrievals only (when
    ``background`` is a function of them, e.g. :func:`climatology_background`), the series nudged
    (:func:`nudge_series`) toward the assimilated retrievals, and background and analysis compared
    with the withheld retrievals, which neither saw: changing them changes nothing fitted.

    Parameters
    ----------
    obs : pandas.DataFrame
        (station x day) retrievals, NaN where none (e.g. :func:`to_wide` of :func:`screen_retrievals`, %).
    background : pandas.DataFrame or callable
        A (station x day) table of the same index, columns and units fitted on nothing of ``obs``, or
        a function of the assimilated retrievals (a table like ``obs``, NaN elsewhere) returning one.
    block : {"month", "day"}
        See :func:`withheld_masks`.
    gain, memory_days
        See :func:`nudge_series`.
    fraction, seed
        See :func:`withheld_masks`.
    buffer_days : int, optional
        Default :func:`memory_buffer_days` (``memory_days``) for month blocks (3 e-folding times:
        under 5 % of an increment reaches the month), 0 for days.
    min_n : int
        Minimum withheld pairs per station.

    Returns
    -------
    WithheldCheck

    Raises
    ------
    ValueError
        The background's index or columns differ from ``obs``, or a bad block, fraction or buffer.
    """
    if buffer_days is None:
        buffer_days = memory_buffer_days(memory_days) if block == "month" else 0
    y = obs.to_numpy(dtype="float64")
    withheld, buffer = withheld_masks(
        np.isfinite(y), obs.columns, block=block, fraction=fraction, seed=seed, buffer_days=buffer_days
    )
    assimilated = np.isfinite(y) & ~withheld & ~buffer
    fitted_on = obs.where(assimilated)
    bg = background(fitted_on) if callable(background) else background
    if not bg.index.equals(obs.index) or not bg.columns.equals(obs.columns):
        raise ValueError("background and obs must share stations and days")
    b = bg.to_numpy(dtype="float64")
    analysis = nudge_series(b, fitted_on.to_numpy(dtype="float64"), gain, memory_days=memory_days)
    scored = withheld & np.isfinite(b)
    frame = pd.DataFrame(
        {
            "station": np.repeat(obs.index.to_numpy().astype(str), y.shape[1]),
            "withheld": np.where(scored, y, np.nan).ravel(),
            "background": b.ravel(),
            "nudged": analysis.ravel(),
        }
    )[scored.ravel()]
    results = validate_against_insitu(frame, ["background", "nudged"], obs="withheld", min_n=min_n)

    def table(values):
        return pd.DataFrame(values, index=obs.index, columns=obs.columns)

    return WithheldCheck(
        results, table(analysis), bg, table(withheld), table(buffer), table(assimilated), block, int(buffer_days)
    )


def withheld_retrieval_check(
    background: pd.DataFrame,
    obs: pd.DataFrame,
    *,
    gain: float = 0.5,
    memory_days: float = 3.0,
    fraction: float = 0.2,
    seed: int = 42,
    min_n: int = 30,
    block: str = "day",
    buffer_days: int | None = None,
) -> tuple[dict, pd.DataFrame]:
    """:func:`withheld_check` with a fixed background, returning (``results``, ``analysis``).

    With ``memory_days`` = 0 the analysis equals the background on withheld days; with memory the
    increments of nearby assimilated days carry information (which a month block with a buffer
    removes). See :func:`withheld_check` for the parameters; ``block`` defaults to random days here.

    Raises
    ------
    ValueError
        Indices or columns differ, or ``fraction`` out of range.
    """
    check = withheld_check(
        obs,
        background,
        block=block,
        gain=gain,
        memory_days=memory_days,
        fraction=fraction,
        seed=seed,
        buffer_days=buffer_days,
        min_n=min_n,
    )
    return check.results, check.analysis


@dataclass
class WithheldUncertainty:
    """Output of :func:`withheld_uncertainty`.

    Attributes
    ----------
    standard_error : pandas.DataFrame
        (station x day) float64, units of the retrievals: the analysis error standard deviation.
    tc : pandas.DataFrame
        :func:`lagged_tc` of the assimilated innovations (per station; pooled figures in ``tc.attrs``).
    coverage : products.methods.uncertainty.Coverage
        At the withheld retrievals, the retrieval's TC error std as ``obs_error_std``.
    coverage_assimilated : products.methods.uncertainty.Coverage
        The same on the assimilated retrievals (in sample: the analysis was nudged toward them; a
        contrast, never a calibration).
    """

    standard_error: pd.DataFrame
    tc: pd.DataFrame
    coverage: object
    coverage_assimilated: object


def withheld_uncertainty(
    check: WithheldCheck,
    obs: pd.DataFrame,
    *,
    gain: float,
    memory_days: float,
    max_gap_days: int = 5,
    min_samples: int = 100,
    nominal: float = 0.90,
    split: str = "real_withheld_months",
) -> WithheldUncertainty:
    """Standard error of the nudged retrievals of :func:`withheld_check` and its coverage at the withheld ones.

    The background's and the retrieval's error standard deviations come from :func:`lagged_tc` of the
    innovation on the assimilated retrievals only (withheld and buffer days never enter); they are
    propagated through the nudging with the gain it used (:func:`nudged_error_series`). The coverage of
    the central ``nominal`` interval is measured at the withheld retrievals with the retrieval's own TC
    error std added (``obs_error_std``): a retrieval is not the truth, and since the analysis on a
    withheld day is (within the buffer's 5 %) its background, this tests ``s_b^2 + s_o^2`` together,
    not how TC splits it.

    Parameters
    ----------
    check : WithheldCheck
        From :func:`withheld_check` (its ``background``, ``analysis``, ``assimilated``, ``withheld``).
    obs : pandas.DataFrame
        (station x day) the retrievals given to :func:`withheld_check`, units of the retrievals (%).
    gain, memory_days : float
        As passed to :func:`withheld_check`.
    max_gap_days, min_samples : int
        See :func:`lagged_tc`.
    nominal : float
        Central interval whose coverage is measured, in (0, 1).
    split : str
        The split the withheld retrievals are stored under.

    Returns
    -------
    WithheldUncertainty

    Raises
    ------
    ValueError
        ``obs`` does not share the check's stations and days, or bad ``max_gap_days`` / ``nominal``.
    """
    if not obs.index.equals(check.analysis.index) or not obs.columns.equals(check.analysis.columns):
        raise ValueError("obs and the check must share stations and days")
    assimilated = check.assimilated.to_numpy(dtype=bool)
    table = lagged_tc((obs - check.background).where(assimilated), max_gap_days=max_gap_days, min_samples=min_samples)
    analysis, y = check.analysis.to_numpy(dtype="float64"), obs.to_numpy(dtype="float64")
    se = nudged_error_series(
        table["err_std_background"].to_numpy(),
        table["err_std_obs"].to_numpy(),
        gain,
        assimilated,
        memory_days=memory_days,
        defined=np.isfinite(analysis),
    )
    s_o = np.broadcast_to(table["err_std_obs"].to_numpy()[:, None], se.shape)
    scored = check.withheld.to_numpy(dtype=bool) & np.isfinite(check.background.to_numpy(dtype="float64"))
    note = (
        "against the withheld retrievals (whole months, never assimilated nor in the background), the "
        "retrieval's TC error std (lagged TC) added as obs_error_std: the retrieval is not independent truth"
    )
    return WithheldUncertainty(
        pd.DataFrame(se, index=obs.index, columns=obs.columns),
        table,
        coverage(
            analysis[scored], se[scored], y[scored], nominal=nominal, obs_error_std=s_o[scored], split=split, note=note
        ),
        coverage(
            analysis[assimilated],
            se[assimilated],
            y[assimilated],
            nominal=nominal,
            obs_error_std=s_o[assimilated],
            split="assimilated (in sample)",
            note="in sample: the retrievals the analysis was nudged toward; a contrast, not a calibration",
        ),
    )


def collocate(stations: pd.DataFrame, points: pd.DataFrame, *, max_km: float = 12.5) -> pd.DataFrame:
    """Nearest satellite grid point of each in-situ station within ``max_km`` (great-circle distance).

    Parameters
    ----------
    stations, points : pandas.DataFrame
        ``code``, ``lat``, ``lon`` (degrees).
    max_km : float
        Largest accepted distance, km (12.5 km = half the 25 km ASCAT sampling, WARP grid spacing).

    Returns
    -------
    pandas.DataFrame
        ``station``, ``point``, ``distance_km`` (float64); one row per station with a point within range.
    """
    if stations.empty or points.empty:
        return pd.DataFrame(columns=["station", "point", "distance_km"])
    la1, lo1 = (
        np.radians(stations["lat"].to_numpy(float))[:, None],
        np.radians(stations["lon"].to_numpy(float))[:, None],
    )
    la2, lo2 = np.radians(points["lat"].to_numpy(float))[None, :], np.radians(points["lon"].to_numpy(float))[None, :]
    h = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    d = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
    j = d.argmin(axis=1)
    dist = d[np.arange(len(stations)), j]
    keep = dist <= max_km
    return pd.DataFrame(
        {
            "station": stations["code"].to_numpy()[keep],
            "point": points["code"].to_numpy()[j[keep]],
            "distance_km": dist[keep],
        }
    )


RESCALINGS = ("leave_year_out", "same_days")
"""How :func:`validate_collocated` rescales a satellite series to the in-situ climatology: with the mean and
standard deviation of the station's OTHER years (the scored year's in-situ values never fit its rescaling),
or of the very days scored (the common practice, which fits bias and spread on the reference)."""


def rescale_leave_year_out(values, reference, times) -> np.ndarray:
    """Mean-standard-deviation matching of ``values`` to ``reference``, each year's parameters fitted on the other years.

    Parameters
    ----------
    values, reference : array_like
        (time,) float, NaN where missing; any units (the result is in those of ``reference``).
    times : array_like
        (time,) datetime64.

    Returns
    -------
    numpy.ndarray
        (time,) float64; NaN in a year whose other years have fewer than 3 common time steps (a
        one-year record is never rescaled, hence never scored) or a constant series.

    References
    ----------
    Gruber et al. (2016), doi:10.1016/j.jag.2015.09.002 (rescaling); leave-year-out as in
    :func:`products.methods.cv.year_held_out`.
    """
    v, r = np.asarray(values, dtype="float64"), np.asarray(reference, dtype="float64")
    years = pd.DatetimeIndex(np.asarray(times)).year.to_numpy()
    both = np.isfinite(v) & np.isfinite(r)
    out = np.full_like(v, np.nan)
    for year in np.unique(years):
        fit = both & (years != year)
        if fit.sum() < 3 or np.std(v[fit]) == 0:
            continue
        sel = years == year
        out[sel] = r[fit].mean() + (v[sel] - v[fit].mean()) * (r[fit].std() / v[fit].std())
    return out


def validate_collocated(
    pairs: pd.DataFrame, insitu: pd.DataFrame, series: dict, *, min_n: int = 30, rescaling: str = "leave_year_out"
) -> dict:
    """Satellite-derived series rescaled to each station's in-situ climatology, scored against it.

    Parameters
    ----------
    pairs : pandas.DataFrame
        From :func:`collocate`.
    insitu : pandas.DataFrame
        From :func:`ismn_daily` (``station``, ``time``, ``insitu`` m3 m-3).
    series : dict of str to pandas.DataFrame
        Named (point x day) tables, e.g. ``{"ascat": obs, "ascat_nudged": analysis}`` (%).
    min_n : int
        Minimum common days per station.
    rescaling : {"leave_year_out", "same_days"}
        ``leave_year_out`` (default): each year is rescaled with the mean and standard deviation fitted
        on the station's other years (:func:`rescale_leave_year_out`), so the scored in-situ values never
        fit their own rescaling; a station with one year of common data is not scored. ``same_days``:
        mean-std matching over the very days scored (the usual practice for % saturation retrievals,
        which makes the bias 0 and ubRMSE depend on the matched variance; R is unaffected either way).

    Returns
    -------
    dict
        :func:`validate_against_insitu` layout, m3 m-3. Empty when ``pairs`` is empty.

    Raises
    ------
    ValueError
        Unknown ``rescaling``.
    """
    if rescaling not in RESCALINGS:
        raise ValueError(f"rescaling must be one of {RESCALINGS}, found {rescaling!r}")
    if pairs.empty:
        return {}
    rows = []
    for station, point in zip(pairs["station"], pairs["point"], strict=True):
        ref = insitu[insitu["station"] == station].set_index("time")["insitu"]
        row = pd.DataFrame({"station": station, "insitu": ref})
        for name, table in series.items():
            if point in table.index:
                sat = table.loc[point].reindex(ref.index).to_numpy(dtype="float64")
                row[name] = (
                    rescale_leave_year_out(sat, ref.to_numpy(dtype="float64"), ref.index)
                    if rescaling == "leave_year_out"
                    else rescale_to(sat, ref.to_numpy(dtype="float64"))
                )
            else:
                row[name] = np.nan
        rows.append(row)
    return validate_against_insitu(pd.concat(rows, ignore_index=True), list(series), min_n=min_n)


# --- CF output --------------------------------------------------------------------------------------


def to_cf_timeseries(
    frame: pd.DataFrame,
    variables: dict,
    *,
    stations: pd.DataFrame,
    station_variables: dict | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """CF-1.8 timeSeries DSG (orthogonal multidimensional array) from a daily long table.

    The ML-DA files' wording (station or pixel id, daily times, references, source) over
    :func:`products.methods.cf.timeseries_dataset`.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``station``, ``time`` (days, datetime64) and the columns of ``variables``.
    variables : dict of str to dict
        Column -> variable attributes (``units``, ``long_name``, optional ``standard_name``).
    stations : pandas.DataFrame
        ``station``, ``lat``, ``lon`` (degrees) and the columns of ``station_variables``.
    station_variables : dict of str to dict, optional
        Per-station column -> attributes.
    attrs : dict, optional
        Global attributes (must include ``data_kind``); None values are dropped.

    Returns
    -------
    xarray.Dataset
        Dims (station, time): the variables (float64, NaN fill), ``station_name`` (cf_role
        timeseries_id), ``lat``, ``lon``, ``time`` (days since 1970-01-01).

    Raises
    ------
    ValueError
        A (station, day) repeats, or ``data_kind`` is missing from ``attrs``.

    References
    ----------
    CF Conventions 1.8, section 9 and appendix H.2.1.
    """
    attrs = merge_attrs(attrs)
    if attrs.get("data_kind") not in (DataKind.SYNTHETIC, DataKind.REAL):
        raise ValueError(f"attrs['data_kind'] must be {DataKind.SYNTHETIC.value!r} or {DataKind.REAL.value!r}")
    if frame.duplicated(["station", "time"]).any():
        raise ValueError("frame: a (station, day) appears twice")
    return timeseries_dataset(
        frame,
        variables,
        stations=stations,
        id_attrs={"long_name": "station or pixel id"},
        station_variables={
            k: {"coverage_content_type": "auxiliaryInformation", **a} for k, a in (station_variables or {}).items()
        },
        time_attrs={"long_name": "day (UTC)"},
        attrs={
            "references": REFERENCES,
            "history": history_line("products.generators.sm_mlda"),
            "source": f"LightGBM {lightgbm.__version__}, scikit-learn {sklearn.__version__}",
            **attrs,
        },
    )


SM_ATTRS = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil"}
SATURATION_ATTRS = {"units": "%", "standard_name": "volume_fraction_of_condensed_water_in_soil_pores"}
"""Degree of saturation (ASCAT surface soil moisture): the water-filled fraction of the pore volume."""
SM_ERROR_STD_NAME = "volume_fraction_of_condensed_water_in_soil standard_error"
"""CF standard name with the ``standard_error`` modifier (CF appendix C): an error standard deviation."""
