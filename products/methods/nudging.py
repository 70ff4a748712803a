"""Newtonian nudging of a model state toward observations (no Django).

x_a = x_m + G (y - x_m) where the observation y is valid (finite), x_a = x_m elsewhere, 0 <= G <= 1.
With G = s2_m / (s2_m + s2_o) (error variances of model and observation, e.g. from triple
collocation, :mod:`products.methods.triple_collocation`) the update is a scalar optimal-interpolation
analysis; repeated nudging toward a constant observation shrinks the error by (1 - G)**k.

References
----------
Hoke, J. E., Anthes, R. A. (1976): The initialization of numerical models by a dynamic-initialization
technique. Mon. Weather Rev. 104, 1551-1556, doi:10.1175/1520-0493(1976)104<1551:TIMOIA>2.0.CO;2.
Stauffer, D. R., Seaman, N. L. (1990), Mon. Weather Rev. 118, 1250-1277; Houser, P. R., et al. (1998),
Water Resour. Res. 34, 3405-3420 (nudging of soil moisture); see /work/shared/METHODS.md.
Xu et al. (2025), IEEE TGRS 63, doi:10.1109/TGRS.2025.3568034 (TC + ML + nudging for soil moisture).
"""

from __future__ import annotations

import numpy as np


def nudge(model, obs, gain) -> np.ndarray:
    """Nudge a model state toward observations: x_m + G (y - x_m) where y is finite, x_m elsewhere.

    Parameters
    ----------
    model : array_like
        Model (background) state x_m, any shape, e.g. (time,) or (time, lat, lon), float, any units.
    obs : array_like
        Observations y, broadcastable to ``model``, same units; NaN/inf marks a missing observation.
    gain : float or array_like
        Nudging gain G, dimensionless, each value in [0, 1], broadcastable to ``model`` (e.g. per
        pixel from :func:`tc_gain`).

    Returns
    -------
    numpy.ndarray
        Analysis x_a, float64, shape of ``np.broadcast(model, obs, gain)``, units of ``model``.
        NaN in ``model`` stays NaN.

    Raises
    ------
    ValueError
        Any gain is outside [0, 1] or not finite, or the shapes do not broadcast.

    References
    ----------
    Hoke & Anthes (1976), doi:10.1175/1520-0493(1976)104<1551:TIMOIA>2.0.CO;2; METHODS.md.
    """
    xm, y, g = (np.asarray(a, dtype="float64") for a in (model, obs, gain))
    if not np.all(np.isfinite(g) & (g >= 0) & (g <= 1)):
        raise ValueError("gain must be finite and within [0, 1]")
    xm, y, g = np.broadcast_arrays(xm, y, g)
    ok = np.isfinite(y)
    return np.where(ok, xm + g * (np.where(ok, y, 0.0) - xm), xm)


def tc_gain(err_var_model, err_var_obs) -> np.ndarray | float:
    """Optimal-interpolation nudging gain G = s2_m / (s2_m + s2_o) from error variances.

    Parameters
    ----------
    err_var_model, err_var_obs : float or array_like
        Error variances of model and observations in the same (squared) units, broadcastable, >= 0,
        e.g. ``TCResult.err_var`` entries after rescaling to a common reference.

    Returns
    -------
    float or numpy.ndarray
        G in [0, 1], dimensionless, float64; NaN where both variances are 0 or either is NaN.

    Raises
    ------
    ValueError
        A (non-NaN) error variance is negative (e.g. a flagged TC estimate).

    References
    ----------
    METHODS.md (Newtonian nudging); Hoke & Anthes (1976), doi:10.1175/1520-0493(1976)104<1551:TIMOIA>2.0.CO;2.
    """
    m, o = np.asarray(err_var_model, dtype="float64"), np.asarray(err_var_obs, dtype="float64")
    if np.any(m < 0) or np.any(o < 0):
        raise ValueError("error variances must be >= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        g = m / (m + o)
    return float(g) if g.ndim == 0 else g
