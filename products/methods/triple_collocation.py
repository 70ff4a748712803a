"""Triple collocation (TC) error characterisation and TC-weighted merging (no Django).

Three collocated series x, y, z of the same geophysical signal (e.g. surface soil moisture from an
active satellite, a passive satellite and a land-surface model) are modelled as
``i = alpha_i + beta_i * theta + eps_i`` with zero-mean errors eps_i that are mutually independent
and independent of the truth theta. With C the 3 x 3 sample covariance matrix of (x, y, z)
(ddof = 1, over the time steps where all three are finite) the classical covariance notation
(McColl et al. 2014; Gruber et al. 2016, eqs. 6-10) gives, with x as the reference:

* rescaling factors to x: beta_x = 1, beta_y = C_xz / C_yz, beta_z = C_xy / C_yz;
* error variances in the units of x after rescaling:
  s2_x = C_xx - C_xy C_xz / C_yz, s2_y = beta_y**2 C_yy - C_xy C_xz / C_yz,
  s2_z = beta_z**2 C_zz - C_xy C_xz / C_yz;
* squared TC correlation with the unknown truth (TCR, "R" in McColl et al. 2014):
  R2_x = C_xy C_xz / (C_xx C_yz), R2_y = C_xy C_yz / (C_yy C_xz), R2_z = C_xz C_yz / (C_zz C_xy);
* signal-to-noise ratio in dB (Gruber et al. 2016): SNR_i = 10 log10(R2_i / (1 - R2_i)), i.e.
  -10 log10(C_xx C_yz / (C_xy C_xz) - 1) for x.

The products are NOT rescaled before TC (the estimates are invariant to it). Sampling noise can make
an error variance negative or R2 fall outside [0, 1]; these are reported as flags and the derived
quantities (error standard deviation, TCR, SNR) set to NaN instead of being clipped silently.

Correlated errors and extended collocation
------------------------------------------
TC assumes the three errors are mutually uncorrelated. When two products share an error source
(two passive-microwave retrievals with the same ancillary temperature, or a model and a retrieval
forced by the same precipitation), the cross-covariance C_ij contains the error covariance, the
error variances of the two correlated products are underestimated, that of the third overestimated,
and TCR is biased accordingly. Extended collocation (EC; Gruber et al. 2016, pytesmo ``ecol``)
estimates error cross-covariances, but each error covariance adds an unknown and needs at least
four collocated products (one more than the number of correlated pairs to be resolved). This portal
uses three products from three independent families (active satellite, passive satellite, model),
which is the setting in which classical TC is unbiased, and has no fourth product, so EC is not
implemented here. A machine-learning model trained on labels merged from two members is NOT independent
of them where it learnt those labels (its errors partly copy theirs): the soil-moisture nudging gain
therefore collocates the retrievals with a cross-fitted model, one that never saw the pixel's labels
(:data:`products.generators.twins.sm_mlda.TRIPLETS`), and the bias of the dependent triplet is measured
on the synthetic twin, where the truth is known.

References
----------
McColl, K. A., Vogelzang, J., Konings, A. G., Entekhabi, D., Piles, M., Stoffelen, A. (2014):
Extended triple collocation: estimating errors and correlation coefficients with respect to an
unknown target. Geophys. Res. Lett. 41, 6229-6236, doi:10.1002/2014GL061322.
Gruber, A., Su, C.-H., Zwieback, S., Crow, W., Dorigo, W., Wagner, W. (2016): Recent advances in
(soil moisture) triple collocation analysis. Int. J. Appl. Earth Obs. Geoinf. 45, 200-211,
doi:10.1016/j.jag.2015.09.002.
Yilmaz, M. T., Crow, W. T., Anderson, M. C., Hain, C. (2012): An objective methodology for merging
satellite- and model-based soil moisture products. Water Resour. Res. 48, W11502,
doi:10.1029/2011WR011682 (least-squares merging weights from TC error variances).
Gruber, A., Dorigo, W. A., Crow, W., Wagner, W. (2017): Triple collocation-based merging of
satellite soil moisture retrievals. IEEE Trans. Geosci. Remote Sens. 55, 6780-6792,
doi:10.1109/TGRS.2017.2734070.
Xu et al. (2025), IEEE TGRS 63, doi:10.1109/TGRS.2025.3568034 (TC-merged labels; see METHODS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRODUCTS = ("x", "y", "z")


@dataclass(frozen=True)
class TCResult:
    """Triple-collocation estimates; every array has shape (3,), ordered (x, y, z), float64 unless noted.

    Attributes
    ----------
    err_var : numpy.ndarray
        Error variance after rescaling to x, (units of x)**2; may be negative (see flags).
    err_std : numpy.ndarray
        sqrt(err_var), units of x; NaN where err_var < 0.
    r2 : numpy.ndarray
        Squared TC correlation with the truth, dimensionless; may fall outside [0, 1] (see flags).
    tcr : numpy.ndarray
        TC correlation with the truth R = sqrt(r2), dimensionless; NaN where r2 is outside [0, 1].
    snr_db : numpy.ndarray
        Signal-to-noise ratio 10 log10(r2 / (1 - r2)), dB; NaN where r2 is outside (0, 1).
    beta : numpy.ndarray
        Multiplicative rescaling factor of each product to x (beta[0] = 1), units of x per unit of i.
    mean : numpy.ndarray
        Mean of each product over the collocated samples, units of each product (for mean matching).
    n : int
        Number of collocated time steps (all three finite).
    negative_error_variance : numpy.ndarray
        bool, err_var < 0.
    r2_out_of_range : numpy.ndarray
        bool, r2 outside [0, 1] or not finite.
    too_few_samples : bool
        n < min_samples; all estimates are then NaN.
    """

    err_var: np.ndarray
    err_std: np.ndarray
    r2: np.ndarray
    tcr: np.ndarray
    snr_db: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    n: int
    negative_error_variance: np.ndarray
    r2_out_of_range: np.ndarray
    too_few_samples: bool

    @property
    def valid(self) -> np.ndarray:
        """bool (3,): products usable for merging (finite, positive err_var and r2 within [0, 1])."""
        return np.isfinite(self.err_var) & (self.err_var > 0) & ~self.negative_error_variance & ~self.r2_out_of_range


def _stack(x, y, z) -> np.ndarray:
    arrs = [np.asarray(a, dtype="float64") for a in (x, y, z)]
    if not (arrs[0].shape == arrs[1].shape == arrs[2].shape) or arrs[0].ndim != 1:
        raise ValueError(f"x, y, z must be 1-D of equal length, found {[a.shape for a in arrs]}")
    return np.vstack(arrs)


def tc_metrics(x, y, z, *, min_samples: int = 100) -> TCResult:
    """Classical (covariance-notation) triple collocation of three collocated series.

    Parameters
    ----------
    x, y, z : array_like
        1-D, shape (time,), float; the same time steps. x is the reference whose units the error
        variances are expressed in. A time step with NaN or inf in any product is dropped.
    min_samples : int, default 100
        Minimum number of collocated time steps; below it all estimates are NaN and
        ``too_few_samples`` is set.

    Returns
    -------
    TCResult
        Per product (x, y, z): error variance / standard deviation in units of x, TCR, SNR (dB),
        rescaling factor beta to x, sample mean, the sample size n and the flags
        ``negative_error_variance``, ``r2_out_of_range`` and ``too_few_samples``.

    Raises
    ------
    ValueError
        The inputs are not 1-D arrays of equal length.

    References
    ----------
    McColl et al. (2014), doi:10.1002/2014GL061322; Gruber et al. (2016), doi:10.1016/j.jag.2015.09.002.
    """
    d = _stack(x, y, z)
    d = d[:, np.isfinite(d).all(axis=0)]
    n = int(d.shape[1])
    nan3 = np.full(3, np.nan)
    if n < max(min_samples, 3):
        f3 = np.zeros(3, dtype=bool)
        return TCResult(nan3, nan3, nan3, nan3, nan3, nan3, nan3, n, f3, f3.copy(), True)
    c = np.cov(d)
    cxy, cxz, cyz = c[0, 1], c[0, 2], c[1, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.array([1.0, cxz / cyz, cxy / cyz])
        signal = cxy * cxz / cyz  # beta_x**2 * var(theta), units of x squared
        err_var = beta**2 * np.diag(c) - signal
        r2 = np.array([cxy * cxz / (c[0, 0] * cyz), cxy * cyz / (c[1, 1] * cxz), cxz * cyz / (c[2, 2] * cxy)])
        neg = err_var < 0
        out = ~((r2 >= 0) & (r2 <= 1))
        inside = (r2 > 0) & (r2 < 1)
        err_std = np.where(neg, np.nan, np.sqrt(np.abs(err_var)))
        tcr = np.where(out, np.nan, np.sqrt(np.abs(r2)))
        snr = np.where(inside, 10 * np.log10(np.where(inside, r2 / (1 - r2), 1.0)), np.nan)
    return TCResult(err_var, err_std, r2, tcr, snr, beta, d.mean(axis=1), n, neg, out, False)


def merge_weights(err_var) -> np.ndarray:
    """Least-squares merging weights w_i proportional to 1 / err_var_i, normalised to sum to 1.

    Parameters
    ----------
    err_var : array_like
        Shape (k,), float, error variances of k products rescaled to a common reference (units of
        the reference squared, e.g. ``TCResult.err_var``). NaN entries are excluded (weight 0).

    Returns
    -------
    numpy.ndarray
        Shape (k,), float64, dimensionless weights >= 0 summing to 1.

    Raises
    ------
    ValueError
        A finite error variance is <= 0 (infinite weight), or no entry is finite.

    References
    ----------
    Yilmaz et al. (2012), doi:10.1029/2011WR011682; Gruber et al. (2017), doi:10.1109/TGRS.2017.2734070.
    For uncorrelated errors this equals w_i proportional to R_i**2 / (1 - R_i**2) (METHODS.md).
    """
    e = np.asarray(err_var, dtype="float64")
    ok = np.isfinite(e)
    if not ok.any():
        raise ValueError("no finite error variance to weight")
    if np.any(e[ok] <= 0):
        raise ValueError(f"error variances must be > 0, found {e}")
    inv = np.where(ok, 1.0 / np.where(ok, e, 1.0), 0.0)
    return inv / inv.sum()


def merge(x, y, z, tc_result: TCResult) -> np.ndarray:
    """TC-weighted merge of the products rescaled to the climatology of x.

    Each valid product is rescaled as ``mean_x + beta_i * (i - mean_i)`` (mean-matched and scaled by
    beta, so its signal matches x) and the rescaled products are summed with :func:`merge_weights`.
    Products flagged invalid (negative error variance, R2 out of [0, 1], non-finite) are skipped. At a
    time step where some used product is missing the weights are renormalised over those present;
    the merged value is NaN where none is present.

    Parameters
    ----------
    x, y, z : array_like
        1-D, shape (time,), float, the series passed to :func:`tc_metrics` (any time steps may be used,
        e.g. the full record).
    tc_result : TCResult
        Output of :func:`tc_metrics` for these products.

    Returns
    -------
    numpy.ndarray
        Shape (time,), float64, units of x.

    Raises
    ------
    ValueError
        No product is valid (e.g. ``too_few_samples``), or the inputs are not 1-D of equal length.

    References
    ----------
    Yilmaz et al. (2012), doi:10.1029/2011WR011682; Gruber et al. (2017), doi:10.1109/TGRS.2017.2734070.
    """
    d = _stack(x, y, z)
    use = tc_result.valid
    if not use.any():
        raise ValueError("no valid product to merge (too few samples or all flagged)")
    w = merge_weights(np.where(use, tc_result.err_var, np.nan))
    r = tc_result.mean[0] + tc_result.beta[:, None] * (d - tc_result.mean[:, None])
    present = np.isfinite(r) & use[:, None]
    ww = np.where(present, w[:, None], 0.0)
    tot = ww.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.where(present, r, 0.0) * ww).sum(axis=0) / tot
    return np.where(tot > 0, out, np.nan)
