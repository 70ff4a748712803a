"""Water-balance closure of GRDC basins: P - ET - R against dS/dt of terrestrial water storage.

Pure computation (NumPy, pandas, xarray; no Django): the service (:mod:`portal.closure.services`)
gathers the published TWS and ET versions and the basin inputs, this module computes.

For each basin and month t, the closure residual is

    residual_t = (P_t - ET_t - R_t) - dS/dt_t        (mm month-1)

with dS/dt the central difference of the storage anomaly, (S_{t+1} - S_{t-1}) / 2
(:func:`products.generators.tws_rec.storage_change`: the change over month t of a monthly mean).
A positive residual means the fluxes bring more water than storage gains. Statistics per basin
come from :func:`products.generators.tws_rec.water_balance` (n, r, std ratio, slope, mean
imbalance = mean residual, RMSE of the residual) plus the residual's standard deviation; region
statistics from area-weighted means of the basins' storage and fluxes
(:func:`products.generators.tws_rec.region_means`).

References
----------
Rodell, M., et al. (2015): The observed state of the water cycle in the early twenty-first century.
J. Climate 28, 8289-8318, doi:10.1175/JCLI-D-14-00555.1. Landerer, F. W., et al. (2010), doi:10.1175/2010JHM1248.1
(dS/dt of monthly means).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from products.generators.tws_rec import region_means, storage_change, water_balance

#: Columns of a statistics table (index: basin or region), in this order.
STATISTICS = ("n", "mean_residual", "residual_std", "rmse", "r", "std_ratio", "slope")
#: Units of the fluxes, the storage change and the residual.
FLUX_UNITS = "mm month-1"
METHOD = "central"
ALL_BASINS = "All basins"  # the region of every basin with a region and an area (region_means)


@dataclass(frozen=True)
class Closure:
    """The closure of a set of basins (or regions).

    Attributes
    ----------
    net : pandas.DataFrame
        (time x basin) P - ET - R, float64, mm month-1.
    dsdt : pandas.DataFrame
        (time x basin) dS/dt, float64, mm month-1 (central difference; NaN next to gaps and at the ends).
    residual : pandas.DataFrame
        (time x basin) ``net - dsdt``, float64, mm month-1; NaN where either is.
    statistics : pandas.DataFrame
        Index basin; columns :data:`STATISTICS`: ``n`` (int, months with both), ``mean_residual``
        (mm month-1), ``residual_std`` (population std, mm month-1), ``rmse`` (mm month-1), ``r``
        (Pearson of dS/dt and P - ET - R), ``std_ratio`` (std dS/dt / std (P - ET - R)), ``slope``
        (least squares dS/dt on P - ET - R). NaN scores below ``min_n`` months.
    """

    net: pd.DataFrame
    dsdt: pd.DataFrame
    residual: pd.DataFrame
    statistics: pd.DataFrame


def basin_table(ds: xr.Dataset, variable: str, *, instance_dim: str = "station") -> pd.DataFrame:
    """A (time x basin) table of one variable of a CF-1.8 ``timeSeries`` file (dims ``instance_dim``, time).

    Parameters
    ----------
    ds : xarray.Dataset
        With ``<instance_dim>_name`` (the basin code, cf_role timeseries_id) and ``variable``.
    variable : str

    Returns
    -------
    pandas.DataFrame
        Index month start (DatetimeIndex, sorted), columns basin codes (str), float64.

    Raises
    ------
    KeyError
        ``variable`` or the name variable is not in ``ds``.
    """
    names = [str(n) for n in np.asarray(ds[f"{instance_dim}_name"].values)]
    da = ds[variable].transpose("time", instance_dim)
    times = pd.DatetimeIndex(np.asarray(ds["time"].values)).to_period("M").to_timestamp()
    frame = pd.DataFrame(np.asarray(da.values, dtype="float64"), index=times, columns=names)
    return frame.sort_index()


def long_to_table(observations: pd.DataFrame, variable: str) -> pd.DataFrame:
    """A (time x basin) table of one variable from a long table of basin observations.

    Parameters
    ----------
    observations : pandas.DataFrame
        Columns ``station``, ``variable``, ``time`` (datetime64), ``value`` (float), as
        :func:`products.lineage.observations_frame` returns.
    variable : str

    Returns
    -------
    pandas.DataFrame
        Index month start, columns basin codes, float64 (mean of duplicates); empty when absent.
    """
    rows = observations[observations["variable"] == variable]
    if rows.empty:
        return pd.DataFrame(dtype="float64")
    months = pd.DatetimeIndex(rows["time"]).to_period("M").to_timestamp()
    table = rows.assign(time=months).pivot_table(index="time", columns="station", values="value", aggfunc="mean")
    table.columns = [str(c) for c in table.columns]
    table.columns.name = None
    return table.sort_index().astype("float64")


def _align(tables: Mapping[str, pd.DataFrame], basins) -> dict[str, pd.DataFrame]:
    index = sorted(set().union(*(t.index for t in tables.values())))
    return {k: t.reindex(index=pd.DatetimeIndex(index), columns=list(basins)) for k, t in tables.items()}


def _statistics(storage: pd.DataFrame, net: pd.DataFrame, residual: pd.DataFrame, min_n: int) -> pd.DataFrame:
    table = water_balance(storage, net, method=METHOD, min_n=min_n)
    std = residual.std(ddof=0).reindex(table.index)
    table["residual_std"] = std.where(table["n"] >= max(min_n, 2))
    table = table.rename(columns={"mean_imbalance": "mean_residual"})
    table.index.name = "basin"
    return table[list(STATISTICS)]


def closure(
    precipitation: pd.DataFrame,
    evapotranspiration: pd.DataFrame,
    runoff: pd.DataFrame,
    storage: pd.DataFrame,
    *,
    min_n: int = 24,
) -> Closure:
    """Closure residual and statistics of each basin present in all four tables.

    Parameters
    ----------
    precipitation, evapotranspiration, runoff : pandas.DataFrame
        (time x basin) monthly sums, mm month-1 (1 kg m-2 = 1 mm); index month starts.
    storage : pandas.DataFrame
        (time x basin) terrestrial water storage anomaly, mm; NaN = gap (GRACE gaps stay gaps).
    min_n : int
        Basins with fewer months of both residual terms get NaN statistics (``n`` still counted).

    Returns
    -------
    Closure
        Tables on a regular monthly index from the first to the last month with a value of any term
        in these basins, basins sorted.

    Raises
    ------
    ValueError
        No basin is in all four tables.
    """
    basins = sorted(
        set(precipitation.columns) & set(evapotranspiration.columns) & set(runoff.columns) & set(storage.columns)
    )
    if not basins:
        raise ValueError("no basin has precipitation, evapotranspiration, runoff and storage")
    t = _align({"p": precipitation, "et": evapotranspiration, "r": runoff, "s": storage}, basins)
    present = pd.concat([v.notna().any(axis=1) for v in t.values()], axis=1).any(axis=1)
    if not present.any():
        raise ValueError("no month has a value of any term in the common basins")
    start, end = present[present].index.min(), present[present].index.max()  # the span of these basins' terms
    months = pd.date_range(start, end, freq="MS")
    t = {k: v.reindex(months) for k, v in t.items()}
    net = (t["p"] - t["et"] - t["r"]).astype("float64")
    dsdt = storage_change(t["s"], method=METHOD)
    residual = net - dsdt
    return Closure(net, dsdt, residual, _statistics(t["s"], net, residual, min_n))


def region_closure(
    precipitation: pd.DataFrame,
    evapotranspiration: pd.DataFrame,
    runoff: pd.DataFrame,
    storage: pd.DataFrame,
    attributes: pd.DataFrame,
    *,
    min_area_fraction: float = 0.9,
    min_n: int = 24,
) -> Closure:
    """Closure of regions: area-weighted means of the basins' P - ET - R and storage, then as :func:`closure`.

    Parameters
    ----------
    precipitation, evapotranspiration, runoff, storage : pandas.DataFrame
        As :func:`closure`.
    attributes : pandas.DataFrame
        Index basin; ``continent`` (region name, str) and ``area_km2`` (float). Basins without
        either are left out; ``All basins`` is every basin with both.
    min_area_fraction : float
        A month whose basins with values cover less than this fraction of the region's area is a gap.

    Returns
    -------
    Closure
        Columns regions (sorted, then ``All basins``).
    """
    basin = closure(precipitation, evapotranspiration, runoff, storage, min_n=min_n)
    storage = storage.reindex(index=basin.net.index, columns=basin.net.columns)
    # a month counts in a region's mean only where every term of that basin is present
    present = basin.net.notna() & storage.notna()
    net, _ = region_means(basin.net.where(present), attributes, min_area_fraction=min_area_fraction)
    mean_storage, _ = region_means(storage.where(present), attributes, min_area_fraction=min_area_fraction)
    dsdt = storage_change(mean_storage, method=METHOD)
    residual = net - dsdt
    return Closure(net, dsdt, residual, _statistics(mean_storage, net, residual, min_n))


def records(statistics: pd.DataFrame) -> list[dict]:
    """Rows of a statistics table as JSON-safe dicts (``name`` first; NaN -> None; n an int)."""
    out = []
    for name, row in statistics.iterrows():
        item: dict = {"name": str(name)}
        for key in STATISTICS:
            value = row[key]
            if key == "n":
                item[key] = int(value)
            else:
                item[key] = float(value) if np.isfinite(value) else None
        out.append(item)
    return out


def series(result: Closure, name: str) -> dict:
    """The series of one basin or region: months (``YYYY-MM``) and P - ET - R, dS/dt, residual (None = gap).

    Raises
    ------
    KeyError
        ``name`` is not a column of ``result``.
    """
    if name not in result.residual.columns:
        raise KeyError(name)

    def values(frame: pd.DataFrame) -> list:
        return [float(v) if np.isfinite(v) else None for v in frame[name].to_numpy(dtype="float64")]

    return {
        "time": [f"{t:%Y-%m}" for t in result.residual.index],
        "p_minus_et_minus_r": values(result.net),
        "dsdt": values(result.dsdt),
        "residual": values(result.residual),
        "units": FLUX_UNITS,
    }
