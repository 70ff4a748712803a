"""Per-station and per-class aggregation of agreement metrics (no Django).

Two aggregations are reported side by side (METHODS.md): pooled scores over all samples of a class,
and the median of per-station scores (the soil-moisture paper, Xu et al. 2025,
doi:10.1109/TGRS.2025.3568034, reports medians), with the number of stations behind each.
Metrics are those of :func:`products.methods.metrics.summary`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from products.methods.metrics import summary

SCORES = ("kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse")


def per_group(
    frame: pd.DataFrame, sim: str, obs: str, by: str | list[str], min_n: int = 2, *, anomaly: bool = False
) -> pd.DataFrame:
    """Metrics of :func:`~products.methods.metrics.summary` for each group (e.g. each station).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per sample; columns ``sim`` and ``obs`` (float, same units) and the ``by`` column(s).
    sim, obs : str
        Column names of the product and the reference.
    by : str or list of str
        Grouping column(s), e.g. ``"station"``.
    min_n : int, default 2
        Groups with fewer valid (both finite) pairs are dropped.
    anomaly : bool, default False
        The reference is zero-mean by construction (:func:`products.methods.metrics.mean_ratio_reason`).

    Returns
    -------
    pandas.DataFrame
        Indexed by the group key(s), columns ``n`` (int) and the float scores ``kge``, ``r``, ``alpha``,
        ``beta``, ``rmse``, ``bias``, ``ubrmse`` (units of the inputs), ``nse``, and ``not_meaningful``
        (str, why ``kge`` and ``beta`` are NaN, else ''); empty when no group qualifies.

    Raises
    ------
    KeyError
        A column is missing.
    """
    rows = {k: summary(g[sim].to_numpy(), g[obs].to_numpy(), anomaly=anomaly) for k, g in frame.groupby(by, sort=True)}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["n", *SCORES, "not_meaningful"])
    table.index.names = [by] if isinstance(by, str) else by
    return table[table["n"] >= min_n].astype({"n": "int64"})


def median_of_groups(table: pd.DataFrame, metric: str) -> float:
    """Median of a metric over the groups of a :func:`per_group` table, ignoring NaN.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`per_group`.
    metric : str
        Column name, e.g. ``"kge"``.

    Returns
    -------
    float
        Median in the metric's units; NaN when no finite value.

    Raises
    ------
    KeyError
        ``metric`` is not a column.
    """
    v = table[metric].to_numpy(dtype="float64")
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


def per_class(frame: pd.DataFrame, sim: str, obs: str, group: str, cls: str, min_n: int = 2) -> pd.DataFrame:
    """Pooled metrics, station count and median per-station metrics for each class (land cover, climate).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per sample; columns ``sim``, ``obs`` (float, same units), ``group`` (station id) and
        ``cls`` (class label, constant per station).
    sim, obs, group, cls : str
        Column names.
    min_n : int, default 2
        Minimum valid pairs for a station to count in ``n_stations`` and the medians.

    Returns
    -------
    pandas.DataFrame
        Indexed by class: pooled ``n`` and scores over all samples of the class (as :func:`per_group`),
        ``n_stations`` (int, stations with >= min_n pairs) and ``median_<score>`` for each score
        (median over those stations).

    Raises
    ------
    KeyError
        A column is missing.
    """
    pooled = per_group(frame, sim, obs, cls, min_n=0)
    out = []
    for _, g in frame.groupby(cls, sort=True):
        st = per_group(g, sim, obs, group, min_n=min_n)
        out.append({"n_stations": len(st), **{f"median_{m}": median_of_groups(st, m) for m in SCORES}})
    return pooled.join(pd.DataFrame(out, index=pooled.index))


def validation_rows(
    frame: pd.DataFrame,
    sim: str,
    obs: str,
    group: str,
    cls: str | None = None,
    min_n: int = 2,
    *,
    anomaly: bool = False,
) -> list[tuple[str, str, dict]]:
    """``(scope, label, metrics)`` rows for storage: pooled, one per station, one per class.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per sample; columns ``sim``, ``obs`` (float, same units), ``group`` (station id) and,
        if given, ``cls`` (class label, constant per station).
    sim, obs, group : str
        Column names.
    cls : str, optional
        Class column; no ``class`` rows without it. Empty labels are skipped.
    min_n : int, default 2
        Stations and classes with fewer valid pairs are left out.
    anomaly : bool, default False
        The reference is zero-mean by construction (:func:`products.methods.metrics.mean_ratio_reason`).

    Returns
    -------
    list of tuple
        ``("pooled", "all", summary)``, then ``("site", station, summary)`` and
        ``("class", label, summary)`` rows, ``summary`` as :func:`products.methods.metrics.summary`.
    """
    rows = [("pooled", "all", summary(frame[sim].to_numpy(), frame[obs].to_numpy(), anomaly=anomaly))]
    for scope, key in (("site", group), ("class", cls)):
        if key is None:
            continue
        table = per_group(frame[frame[key].astype(str) != ""], sim, obs, key, min_n=min_n, anomaly=anomaly)
        rows.extend((scope, str(label), metrics) for label, metrics in table.to_dict(orient="index").items())
    return rows
