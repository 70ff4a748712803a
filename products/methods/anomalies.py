"""Climatologies and anomalies of monthly series (no Django).

The climatology of a calendar month is the mean of that month's values over a baseline period,
from the months present (missing months stay missing, they are not filled); the anomaly is the
value minus the climatology of its calendar month (WMO-No. 1203, 2017: Guidelines on the
Calculation of Climate Normals).
"""

from __future__ import annotations

import pandas as pd


def monthly_climatology(series: pd.Series, *, baseline: tuple[str, str] | None = None) -> pd.Series:
    """Mean of each calendar month over the baseline.

    Parameters
    ----------
    series : pandas.Series
        Values (any units) indexed by a DatetimeIndex of month starts; NaN = missing.
    baseline : (start, end), optional
        Inclusive ISO dates limiting the months used, e.g. ``("2004-01-01", "2009-12-31")``;
        None uses the whole series.

    Returns
    -------
    pandas.Series
        Index 1..12 (calendar month), float64, units of ``series``; NaN for a month absent from
        the baseline.

    Raises
    ------
    TypeError
        The index is not a DatetimeIndex.
    """
    if not isinstance(series.index, pd.DatetimeIndex):
        raise TypeError("series: expected a DatetimeIndex of month starts")
    base = series if baseline is None else series.loc[baseline[0] : baseline[1]]
    return base.groupby(base.index.month).mean().reindex(range(1, 13)).astype("float64")


def monthly_anomalies(series: pd.Series, *, baseline: tuple[str, str] | None = None) -> pd.Series:
    """``series`` minus the climatology of each value's calendar month (see :func:`monthly_climatology`).

    Returns
    -------
    pandas.Series
        Same index as ``series``, float64, units of ``series``; NaN where the value or the
        month's climatology is missing.
    """
    climatology = monthly_climatology(series, baseline=baseline)
    return (series - climatology.reindex(series.index.month).to_numpy()).astype("float64")
