"""Agreement metrics between a product (sim) and a reference (obs) (no Django).

Every function takes two arrays of the same shape (any shape; flattened), drops the pairs where
either value is NaN (or infinite), and returns NaN when fewer than 2 valid pairs remain.
Standard deviations use ddof = 0. Scores are pooled over all pairs passed in; aggregate per
station by calling the functions per station.

Scores that divide by the observed mean (KGE through its bias ratio beta, :data:`MEAN_RATIO_SCORES`)
mean nothing when that mean is zero by construction (anomalies, detrended or deseasonalised series,
storage changes) or near zero against the spread: beta = mean_sim / mean_obs then takes any value
(a KGE of -5e10 for a detrended anomaly). :func:`summary` gives them as NaN and says why in
``not_meaningful`` (:func:`mean_ratio_reason`); r, NSE, RMSE, ubRMSE, bias and alpha stay.

References
----------
Gupta, H. V., Kling, H., Yilmaz, K. K., Martinez, G. F. (2009): Decomposition of the mean squared
error and NSE performance criteria. J. Hydrol. 377, 80-91, doi:10.1016/j.jhydrol.2009.08.003.
Kling, H., Fuchs, M., Paulin, M. (2012): Runoff conditions in the upper Danube basin under an
ensemble of climate change scenarios. J. Hydrol. 424-425, 264-277, doi:10.1016/j.jhydrol.2012.01.011.
Nash, J. E., Sutcliffe, J. V. (1970): River flow forecasting through conceptual models part I.
J. Hydrol. 10, 282-290, doi:10.1016/0022-1694(70)90255-6.
Entekhabi, D., Reichle, R. H., Koster, R. D., Crow, W. T. (2010): Performance metrics for soil
moisture retrievals and application requirements. J. Hydrometeorol. 11, 832-840,
doi:10.1175/2010JHM1223.1 (ubRMSE).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

MIN_PAIRS = 2
#: Scores that divide by the observed mean: no number where :func:`mean_ratio_reason` gives a reason.
MEAN_RATIO_SCORES = ("kge", "beta")
#: |mean(obs)| below this fraction of std(obs): the observed mean counts as zero against its spread.
NEAR_ZERO_MEAN = 0.1
ZERO_MEAN_ANOMALY = "zero-mean anomaly"
NEAR_ZERO_MEAN_REASON = f"observed mean near zero against its spread (|mean| < {NEAR_ZERO_MEAN:g} standard deviation)"


class KGE(NamedTuple):
    """Kling-Gupta efficiency and its components (Gupta et al. 2009)."""

    kge: float
    r: float
    alpha: float
    beta: float


class KGEPrime(NamedTuple):
    """Modified Kling-Gupta efficiency and its components (Kling et al. 2012)."""

    kge_prime: float
    r: float
    gamma: float
    beta: float


def valid_pairs(sim, obs) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ``sim`` and ``obs`` to float64 and keep the pairs where both are finite.

    Parameters
    ----------
    sim, obs : array_like
        Same shape, any number of dimensions, any units (the same for both).

    Returns
    -------
    sim, obs : numpy.ndarray
        1-D float64 arrays of equal length.

    Raises
    ------
    ValueError
        ``sim`` and ``obs`` have different shapes.
    """
    sim, obs = np.asarray(sim, dtype="float64"), np.asarray(obs, dtype="float64")
    if sim.shape != obs.shape:
        raise ValueError(f"sim and obs must have the same shape, found {sim.shape} and {obs.shape}")
    keep = np.isfinite(sim) & np.isfinite(obs)
    return sim[keep].ravel(), obs[keep].ravel()


def _pairs_or_none(sim, obs):
    s, o = valid_pairs(sim, obs)
    return (s, o) if s.size >= MIN_PAIRS else (None, None)


def pearson_r(sim, obs) -> float:
    """Pearson correlation coefficient r.

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.

    Returns
    -------
    float
        r in [-1, 1]; NaN with fewer than 2 valid pairs or when either series is constant.

    Raises
    ------
    ValueError
        Shapes differ.
    """
    s, o = _pairs_or_none(sim, obs)
    if s is None:
        return np.nan
    ds, do = s - s.mean(), o - o.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(ds * do) / np.sqrt(np.sum(ds**2) * np.sum(do**2)))


def bias(sim, obs) -> float:
    """Mean bias, mean(sim) - mean(obs).

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.

    Returns
    -------
    float
        Units of the inputs; positive when the product is too high; NaN with fewer than 2 valid pairs.

    Raises
    ------
    ValueError
        Shapes differ.
    """
    s, o = _pairs_or_none(sim, obs)
    return np.nan if s is None else float(s.mean() - o.mean())


def rmse(sim, obs) -> float:
    """Root-mean-square error sqrt(mean((sim - obs)**2)).

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.

    Returns
    -------
    float
        Units of the inputs, >= 0; NaN with fewer than 2 valid pairs.

    Raises
    ------
    ValueError
        Shapes differ.
    """
    s, o = _pairs_or_none(sim, obs)
    return np.nan if s is None else float(np.sqrt(np.mean((s - o) ** 2)))


def ubrmse(sim, obs) -> float:
    """Unbiased RMSE sqrt(mean(((sim - mean(sim)) - (obs - mean(obs)))**2)) = sqrt(RMSE**2 - bias**2).

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.

    Returns
    -------
    float
        Units of the inputs, >= 0; NaN with fewer than 2 valid pairs.

    Raises
    ------
    ValueError
        Shapes differ.

    References
    ----------
    Entekhabi et al. (2010), doi:10.1175/2010JHM1223.1; pytesmo ``ubrmsd``.
    """
    s, o = _pairs_or_none(sim, obs)
    return np.nan if s is None else float(np.sqrt(np.mean(((s - s.mean()) - (o - o.mean())) ** 2)))


def nse(sim, obs) -> float:
    """Nash-Sutcliffe efficiency NSE = 1 - sum((sim - obs)**2) / sum((obs - mean(obs))**2).

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.

    Returns
    -------
    float
        Dimensionless, <= 1; NaN with fewer than 2 valid pairs, -inf or NaN when obs is constant.

    Raises
    ------
    ValueError
        Shapes differ.

    References
    ----------
    Nash & Sutcliffe (1970), doi:10.1016/0022-1694(70)90255-6; checked against ``hydroeval.nse``.
    """
    s, o = _pairs_or_none(sim, obs)
    if s is None:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(1 - np.sum((s - o) ** 2) / np.sum((o - o.mean()) ** 2))


def kge(sim, obs) -> KGE:
    """Kling-Gupta efficiency KGE = 1 - sqrt((r - 1)**2 + (alpha - 1)**2 + (beta - 1)**2).

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.

    Returns
    -------
    KGE
        ``(kge, r, alpha, beta)``: alpha = sigma_sim / sigma_obs, beta = mean_sim / mean_obs
        (all dimensionless); all NaN with fewer than 2 valid pairs.

    Raises
    ------
    ValueError
        Shapes differ.

    References
    ----------
    Gupta et al. (2009), doi:10.1016/j.jhydrol.2009.08.003, eq. 9; checked against ``hydroeval.kge``.
    """
    s, o = _pairs_or_none(sim, obs)
    if s is None:
        return KGE(np.nan, np.nan, np.nan, np.nan)
    r = pearson_r(s, o)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha, beta = s.std() / o.std(), s.mean() / o.mean()
    return KGE(float(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)), r, float(alpha), float(beta))


def kge_prime(sim, obs) -> KGEPrime:
    """Modified Kling-Gupta efficiency KGE' = 1 - sqrt((r - 1)**2 + (gamma - 1)**2 + (beta - 1)**2).

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.

    Returns
    -------
    KGEPrime
        ``(kge_prime, r, gamma, beta)``: gamma = (sigma_sim / mean_sim) / (sigma_obs / mean_obs),
        the ratio of coefficients of variation, beta = mean_sim / mean_obs; all NaN with fewer
        than 2 valid pairs.

    Raises
    ------
    ValueError
        Shapes differ.

    References
    ----------
    Kling et al. (2012), doi:10.1016/j.jhydrol.2012.01.011; checked against ``hydroeval.kgeprime``.
    """
    s, o = _pairs_or_none(sim, obs)
    if s is None:
        return KGEPrime(np.nan, np.nan, np.nan, np.nan)
    r = pearson_r(s, o)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma, beta = (s.std() / s.mean()) / (o.std() / o.mean()), s.mean() / o.mean()
    return KGEPrime(float(1 - np.sqrt((r - 1) ** 2 + (gamma - 1) ** 2 + (beta - 1) ** 2)), r, float(gamma), float(beta))


def mean_ratio_reason(obs, *, anomaly: bool = False) -> str:
    """Why a ratio over the observed mean means nothing for ``obs`` ('' when it does mean something).

    Parameters
    ----------
    obs : array_like
        The reference's valid values (any shape; NaN ignored), any units.
    anomaly : bool, default False
        The series is zero-mean by construction (an anomaly, a detrended or deseasonalised series, a
        storage change): the reason is :data:`ZERO_MEAN_ANOMALY` whatever the sample's mean.

    Returns
    -------
    str
        :data:`ZERO_MEAN_ANOMALY`; :data:`NEAR_ZERO_MEAN_REASON` when ``|mean| < NEAR_ZERO_MEAN * std``
        (ddof = 0) and the spread is not zero; else ''. '' with fewer than 2 finite values (every
        score is NaN then anyway).
    """
    o = np.asarray(obs, dtype="float64").ravel()
    o = o[np.isfinite(o)]
    if o.size < MIN_PAIRS:
        return ""
    if anomaly:
        return ZERO_MEAN_ANOMALY
    spread = o.std()
    return NEAR_ZERO_MEAN_REASON if spread > 0 and abs(o.mean()) < NEAR_ZERO_MEAN * spread else ""


def summary(sim, obs, *, anomaly: bool = False) -> dict:
    """All scores of one comparison, as stored in a ValidationResult row.

    Parameters
    ----------
    sim, obs : array_like
        Product and reference, same shape and units.
    anomaly : bool, default False
        The reference is zero-mean by construction (see :func:`mean_ratio_reason`).

    Returns
    -------
    dict
        ``n`` (int, valid pairs), ``kge``, ``r``, ``alpha``, ``beta`` (:func:`kge`), ``rmse``,
        ``bias``, ``ubrmse`` (units of the inputs), ``nse``; Python floats, NaN when n < 2.
        ``not_meaningful`` (str): '' or why the :data:`MEAN_RATIO_SCORES` (``kge``, ``beta``) are
        NaN although there are pairs (:func:`mean_ratio_reason`).

    Raises
    ------
    ValueError
        Shapes differ.
    """
    s, o = valid_pairs(sim, obs)
    k = kge(s, o)
    out = {
        "n": int(s.size),
        "kge": k.kge,
        "r": k.r,
        "alpha": k.alpha,
        "beta": k.beta,
        "rmse": rmse(s, o),
        "bias": bias(s, o),
        "ubrmse": ubrmse(s, o),
        "nse": nse(s, o),
        "not_meaningful": mean_ratio_reason(o, anomaly=anomaly),
    }
    if out["not_meaningful"]:
        out.update(dict.fromkeys(MEAN_RATIO_SCORES, np.nan))
    return out
