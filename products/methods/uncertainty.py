"""Uncertainty beside the estimate: how each product states it, in CF terms, and how well it holds.

Every reference product publishes, beside its estimate, either a **standard error** (a continuous
variable: ET, soil moisture, terrestrial water storage) or a **class probability** (freeze/thaw).
This module is the one place that

* writes their CF attributes (:func:`standard_error_attributes`, :func:`probability_attributes`) and
  links them to the estimate (:func:`link_ancillary`: CF 1.8 section 3.4, ``ancillary_variables``);
* turns what a method gives into a standard error: the spread of members (:func:`member_spread`),
  a pair of quantiles (:func:`quantile_standard_error`), an error propagated through a nudging
  update (:func:`nudged_error_std`);
* measures whether the stated uncertainty is calibrated at held-out observations: the coverage of
  the central interval (:func:`interval_coverage`) or the reliability of a probability
  (:func:`reliability`);
* describes the result for the run summary (:func:`summary_entry`), which the pages and the API
  read (``summary["uncertainty"]``: a list, one entry per uncertainty variable).

Pure numpy/scipy: no Django, no files.

References
----------
CF Conventions 1.8, section 3.3 and appendix C (standard name modifier ``standard_error``) and
section 3.4 (``ancillary_variables``).
Gneiting, T. & Raftery, A. E. (2007) Strictly proper scoring rules, prediction, and estimation.
JASA 102, 359-378 (coverage of central intervals; the Brier score).
Naeini, M. P., Cooper, G. & Hauskrecht, M. (2015) Obtaining well calibrated probabilities using
Bayesian binning. AAAI (expected calibration error).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr
from scipy.stats import norm

NOMINAL = 0.90
"""Default central interval whose coverage is measured (estimate +- z * standard error, z = 1.645)."""

TOLERANCE = 0.05
"""A stated interval is called calibrated when its measured coverage is within this of the nominal
(absolute), and a probability when its expected calibration error is at most this."""

STANDARD_ERROR = "standard_error"
PROBABILITY = "probability"
KINDS = (STANDARD_ERROR, PROBABILITY)

METHODS: dict[str, str] = {
    "quantile_regression": (
        "standard error from LightGBM quantile regression: (q84 - q16) / 2 of the predictive distribution, "
        "fitted on the training towers/stations only"
    ),
    "member_spread": "standard error from the spread (sample standard deviation, ddof=1) of the fused members",
    "mascon_spread": (
        "standard error from the spread between the reconstructions trained on each GRACE mascon solution "
        "(JPL, CSR): sample standard deviation, ddof=1"
    ),
    "tc_nudging": (
        "error standard deviation from triple collocation of the model and the retrieval, propagated "
        "through the nudging update: sqrt((1-G)^2 s_b^2 + G^2 s_o^2)"
    ),
    "class_probability": (
        "class probability from the classifier's predict_proba (the trees' mean leaf class fractions), "
        "fitted on the training blocks only"
    ),
    "cv_residual_model": (
        "standard error from a model of the absolute cross-validation residual (held-out folds only), "
        "scaled by sqrt(pi/2) to a standard deviation"
    ),
}
"""The ways the products obtain their uncertainty: key -> the English text written in the file's
``comment``. The pages describe the same keys in both languages (:mod:`portal.catalog.uncertainty`)."""


class UncertaintyError(ValueError):
    """Arrays that cannot be compared (shapes differ, a nominal outside (0, 1), an unknown method)."""


# --------------------------------------------------------------------------- CF attributes


def standard_error_attributes(
    estimate_attrs: Mapping, *, method: str, long_name: str | None = None, extra: str = ""
) -> dict:
    """CF attributes of the standard error of an estimate.

    Parameters
    ----------
    estimate_attrs : mapping
        The estimate's attributes: its ``standard_name`` (the modifier ``standard_error`` is appended,
        CF appendix C), ``units`` (the same) and ``long_name``.
    method : str
        A key of :data:`METHODS`; its text becomes the ``comment``.
    long_name : str, optional
        Defaults to ``"standard error of " + estimate long_name``.
    extra : str
        Appended to the comment (calibration figures, say).

    Returns
    -------
    dict
        ``standard_name`` (when the estimate has one), ``long_name``, ``units``,
        ``coverage_content_type = "qualityInformation"``, ``uncertainty_method`` and ``comment``.

    Raises
    ------
    UncertaintyError
        ``method`` is not a key of :data:`METHODS`.
    """
    text = _method_text(method)
    attrs: dict = {}
    name = estimate_attrs.get("standard_name")
    if name:
        attrs["standard_name"] = f"{str(name).split()[0]} {STANDARD_ERROR}"
    attrs["long_name"] = long_name or f"standard error of {estimate_attrs.get('long_name', 'the estimate')}"
    if "units" in estimate_attrs:
        attrs["units"] = estimate_attrs["units"]
    attrs["coverage_content_type"] = "qualityInformation"
    attrs["uncertainty_method"] = method
    attrs["comment"] = f"{text}. {extra}".strip().rstrip(".") + "."
    return attrs


def probability_attributes(class_meaning: str, *, method: str = "class_probability", extra: str = "") -> dict:
    """CF attributes of the probability of one class (CF has no standard name for it).

    Parameters
    ----------
    class_meaning : str
        The class, as in the flag variable's ``flag_meanings`` (``frozen``).
    method, extra : str
        As in :func:`standard_error_attributes`.

    Returns
    -------
    dict
        ``long_name``, ``units = "1"``, ``valid_range = [0, 1]`` (float32),
        ``coverage_content_type``, ``uncertainty_method``, ``comment``.
    """
    text = _method_text(method)
    return {
        "long_name": f"probability that the state is {class_meaning}",
        "units": "1",
        "valid_range": np.array([0.0, 1.0], dtype="float32"),
        "coverage_content_type": "qualityInformation",
        "uncertainty_method": method,
        "comment": f"{text}. {extra}".strip().rstrip(".") + ".",
    }


def ancillary_attributes(attrs: Mapping, *names: str) -> dict:
    """A copy of a variable's ``attrs`` with ``names`` appended once to its ``ancillary_variables``
    (for writers that set attributes with netCDF4 rather than xarray)."""
    have = str(attrs.get("ancillary_variables", "")).split()
    return {**attrs, "ancillary_variables": " ".join(have + [n for n in dict.fromkeys(names) if n not in have])}


def link_ancillary(ds: xr.Dataset, estimate: str, *names: str) -> xr.Dataset:
    """Name ``names`` in the ``ancillary_variables`` attribute of ``ds[estimate]`` (appended, once).

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``estimate`` and every name of ``names`` (modified in place and returned).

    Raises
    ------
    UncertaintyError
        A name is not a variable of ``ds``.
    """
    missing = [n for n in (estimate, *names) if n not in ds.variables]
    if missing:
        raise UncertaintyError(f"ancillary_variables: {missing} not in the dataset")
    ds[estimate].attrs = ancillary_attributes(ds[estimate].attrs, *names)
    return ds


def _method_text(method: str) -> str:
    if method not in METHODS:
        raise UncertaintyError(f"uncertainty method {method!r}: expected one of {sorted(METHODS)}")
    return METHODS[method]


# --------------------------------------------------------------------------- standard errors


def member_spread(members, axis: int = 0) -> np.ndarray:
    """Sample standard deviation (ddof=1) across ensemble members, NaN where fewer than two are finite.

    Parameters
    ----------
    members : array_like, float, shape (n_members, ...) along ``axis``
        In the estimate's units.

    Returns
    -------
    numpy.ndarray, float64
        The members' shape without ``axis``, same units.
    """
    a = np.asarray(members, dtype="float64")
    n = np.sum(np.isfinite(a), axis=axis)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # fewer than two members: NaN, set below
        out = np.nanstd(np.where(np.isfinite(a), a, np.nan), axis=axis, ddof=1) if a.size else np.array([])
    return np.where(n >= 2, out, np.nan)


def quantile_standard_error(lower, upper, nominal: float = 0.6827) -> np.ndarray:
    """Standard error from a central predictive interval: ``(upper - lower) / (2 z)``, ``z`` the
    normal quantile of ``0.5 + nominal / 2`` (nominal 0.6827: the 16th and 84th percentiles, z = 1).

    Parameters
    ----------
    lower, upper : array_like, float, same shape
        The interval's quantiles, in the estimate's units. Crossed quantiles give their absolute width.
    nominal : float in (0, 1)

    Raises
    ------
    UncertaintyError
        Shapes differ, or ``nominal`` is outside (0, 1).
    """
    lo, hi = np.asarray(lower, dtype="float64"), np.asarray(upper, dtype="float64")
    if lo.shape != hi.shape:
        raise UncertaintyError(f"quantiles: shapes {lo.shape} and {hi.shape} differ")
    return np.abs(hi - lo) / (2.0 * _z(nominal))


def nudged_error_std(err_std_model, err_std_obs, gain) -> np.ndarray:
    """Error standard deviation of a nudged (analysis) value ``x_a = x_b + G (y - x_b)``.

    With independent model and retrieval errors, ``var(e_a) = (1-G)^2 s_b^2 + G^2 s_o^2``; at the
    optimal gain ``G = s_b^2 / (s_b^2 + s_o^2)`` this is ``s_b^2 s_o^2 / (s_b^2 + s_o^2)``. Where
    there is no retrieval to nudge towards, pass ``gain = 0`` (the model's error stays).

    Parameters
    ----------
    err_std_model, err_std_obs : array_like, float
        Error standard deviations (for instance from triple collocation), same units.
    gain : array_like, float, in [0, 1]
        Broadcast against the others.

    Returns
    -------
    numpy.ndarray, float64
        Same units. Reference: Gelb (1974) Applied Optimal Estimation; Gruber et al. (2016) for the
        triple-collocation error variances.
    """
    sb, so, g = (np.asarray(x, dtype="float64") for x in (err_std_model, err_std_obs, gain))
    return np.sqrt((1.0 - g) ** 2 * sb**2 + g**2 * so**2)


def _z(nominal: float) -> float:
    if not 0.0 < float(nominal) < 1.0:
        raise UncertaintyError(f"nominal coverage {nominal!r}: expected a fraction in (0, 1)")
    return float(norm.ppf(0.5 + float(nominal) / 2.0))


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Coverage:
    """How often held-out observations fall inside estimate +- z * standard error.

    ``calibrated`` is True when ``|measured - nominal| <= tolerance`` with at least 30 pairs;
    ``too_narrow`` when the interval covers less than it states by more than the tolerance (the
    stated error is too small).
    """

    nominal: float
    measured: float
    n: int
    z: float
    tolerance: float
    calibrated: bool
    too_narrow: bool
    mean_standard_error: float
    rmse: float  # of estimate - observed over the same pairs: compare with mean_standard_error
    kind: str = "coverage"
    split: str = ""
    note: str = ""

    def as_dict(self) -> dict:
        return _plain(asdict(self))


@dataclass(frozen=True)
class Reliability:
    """How well class probabilities match the frequencies observed at held-out samples."""

    brier: float
    ece: float  # expected calibration error: sum over bins of count/n * |mean p - frequency|
    n: int
    tolerance: float
    calibrated: bool
    bins: list = field(default_factory=list)  # [{"p": mean p, "frequency": observed, "n": count}]
    kind: str = "reliability"
    split: str = ""
    note: str = ""

    def as_dict(self) -> dict:
        return _plain(asdict(self))


def interval_coverage(
    estimate,
    standard_error,
    observed,
    *,
    nominal: float = NOMINAL,
    tolerance: float = TOLERANCE,
    obs_error_std=0.0,
    split: str = "",
    note: str = "",
) -> Coverage:
    """Coverage of the central ``nominal`` interval ``estimate +- z * se`` at held-out observations.

    Parameters
    ----------
    estimate, standard_error, observed : array_like, float, same shape
        The product at the held-out samples, its standard error, and the independent observation,
        in the same units. Pairs where any is not finite (or the standard error is negative) are
        left out.
    nominal : float in (0, 1)
        The interval's stated coverage (0.90: z = 1.645).
    tolerance : float
        See :class:`Coverage`.
    obs_error_std : float or array_like
        The observation's own error standard deviation, added in quadrature (0: none assumed).
        Say in ``note`` what was assumed.
    split : str
        The held-out split the samples come from (as stored in the validation rows).

    Returns
    -------
    Coverage
        ``measured`` is NaN and ``calibrated`` False when no pair is left.

    Raises
    ------
    UncertaintyError
        Shapes differ, or ``nominal`` is outside (0, 1).
    """
    z = _z(nominal)
    est, se, obs = (np.asarray(x, dtype="float64") for x in (estimate, standard_error, observed))
    if not (est.shape == se.shape == obs.shape):
        raise UncertaintyError(f"coverage: shapes {est.shape}, {se.shape}, {obs.shape} differ")
    oe = np.broadcast_to(np.asarray(obs_error_std, dtype="float64"), est.shape)
    ok = np.isfinite(est) & np.isfinite(se) & np.isfinite(obs) & np.isfinite(oe) & (se >= 0)
    n = int(ok.sum())
    if n == 0:
        nan = float("nan")
        return Coverage(nominal, nan, 0, z, tolerance, False, False, nan, nan, split=split, note=note)
    width = z * np.sqrt(se[ok] ** 2 + oe[ok] ** 2)
    inside = np.abs(obs[ok] - est[ok]) <= width
    measured = float(inside.mean())
    return Coverage(
        nominal=float(nominal),
        measured=measured,
        n=n,
        z=z,
        tolerance=float(tolerance),
        calibrated=bool(n >= 30 and abs(measured - nominal) <= tolerance),
        too_narrow=bool(measured < nominal - tolerance),
        mean_standard_error=float(se[ok].mean()),
        rmse=float(np.sqrt(np.mean((est[ok] - obs[ok]) ** 2))),
        split=split,
        note=note,
    )


def reliability(
    probability, outcome, *, bins: int = 10, tolerance: float = TOLERANCE, split: str = "", note: str = ""
) -> Reliability:
    """Reliability of the probability of one class at held-out samples: the Brier score and the
    expected calibration error over ``bins`` equal-width probability bins.

    Parameters
    ----------
    probability : array_like, float in [0, 1]
        Stated probability of the class.
    outcome : array_like, bool or {0, 1}, same shape
        Whether the class was observed. Pairs with a non-finite probability are left out.

    Returns
    -------
    Reliability
        ``calibrated`` when at least 30 samples and ``ece <= tolerance``.

    Raises
    ------
    UncertaintyError
        Shapes differ, or a probability lies outside [0, 1].
    """
    p = np.asarray(probability, dtype="float64")
    y = np.asarray(outcome, dtype="float64")
    if p.shape != y.shape:
        raise UncertaintyError(f"reliability: shapes {p.shape} and {y.shape} differ")
    ok = np.isfinite(p) & np.isfinite(y)
    p, y = p[ok], y[ok]
    if np.any((p < 0) | (p > 1)):
        raise UncertaintyError("reliability: probabilities must lie in [0, 1]")
    n = int(p.size)
    if n == 0:
        nan = float("nan")
        return Reliability(nan, nan, 0, tolerance, False, [], split=split, note=note)
    which = np.minimum((p * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            mp, fr = float(p[m].mean()), float(y[m].mean())
            table.append({"p": mp, "frequency": fr, "n": int(m.sum())})
            ece += m.sum() / n * abs(mp - fr)
    return Reliability(
        brier=float(np.mean((p - y) ** 2)),
        ece=float(ece),
        n=n,
        tolerance=float(tolerance),
        calibrated=bool(n >= 30 and ece <= tolerance),
        bins=table,
        split=split,
        note=note,
    )


# --------------------------------------------------------------------------- run summary


def summary_entry(
    *,
    file: str,
    variable: str,
    estimate: str,
    kind: str,
    method: str,
    calibration: Coverage | Reliability | None = None,
    not_calibrated_reason: str = "",
) -> dict:
    """One entry of ``summary["uncertainty"]``: which variable of which published file states the
    uncertainty of which estimate, how it is obtained and how it held at held-out observations.

    Parameters
    ----------
    file, variable, estimate : str
        The published file's name and the two variables' names in it.
    kind : {"standard_error", "probability"}
    method : str
        A key of :data:`METHODS`.
    calibration : Coverage or Reliability, optional
        None when it could not be measured; then ``not_calibrated_reason`` must say why.

    Raises
    ------
    UncertaintyError
        Unknown kind or method, or neither a calibration nor a reason.
    """
    if kind not in KINDS:
        raise UncertaintyError(f"uncertainty kind {kind!r}: expected one of {KINDS}")
    _method_text(method)
    if calibration is None and not not_calibrated_reason:
        raise UncertaintyError(f"{file}:{variable}: no calibration measured and no reason given")
    return {
        "file": file,
        "variable": variable,
        "estimate": estimate,
        "kind": kind,
        "method": method,
        "calibration": calibration.as_dict() if calibration is not None else None,
        "not_calibrated_reason": not_calibrated_reason,
    }


def calibration_comment(calibration: Coverage | Reliability | None, reason: str = "") -> str:
    """A sentence for the file's ``comment``: the measured calibration, or why there is none."""
    if calibration is None:
        return f"Calibration not measured: {reason}"
    if isinstance(calibration, Coverage):
        verdict = "calibrated" if calibration.calibrated else "not calibrated"
        return (
            f"Coverage of the {calibration.nominal:.0%} interval at held-out observations"
            f"{' (' + calibration.split + ')' if calibration.split else ''}: {calibration.measured:.1%} "
            f"of {calibration.n} ({verdict}, tolerance {calibration.tolerance:.0%})"
        )
    verdict = "calibrated" if calibration.calibrated else "not calibrated"
    return (
        f"Reliability at held-out samples{' (' + calibration.split + ')' if calibration.split else ''}: "
        f"expected calibration error {calibration.ece:.3f}, Brier score {calibration.brier:.3f}, "
        f"n = {calibration.n} ({verdict}, tolerance {calibration.tolerance:.2f})"
    )


def _plain(value):
    """JSON-ready: numpy scalars to Python, NaN to None."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
