"""A SYNTHETIC basin water budget: storage, ET, P and R of a few basins, as the published files and the database hold them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

BASINS = ("B1", "B2", "B3", "B4")
REGIONS = {"B1": "North", "B2": "North", "B3": "South", "B4": ""}  # B4: no region (left out of the regions)
AREAS = {"B1": 1000.0, "B2": 3000.0, "B3": 500.0, "B4": 800.0}
MONTHS = pd.date_range("2003-01-01", "2008-12-01", freq="MS")


def terms(seed: int = 0) -> dict[str, pd.DataFrame]:
    """(time x basin) tables: ``p``, ``et``, ``et_gleam``, ``r`` (mm month-1) and ``s`` (storage anomaly, mm;
    a gap of three months in every basin, as GRACE has)."""
    rng = np.random.default_rng(seed)
    n, k = len(MONTHS), len(BASINS)
    season = np.sin(2 * np.pi * np.arange(n) / 12)[:, None]
    p = 80 + 40 * season + rng.gamma(2.0, 10.0, (n, k))
    et = 50 + 30 * season + rng.normal(0, 5, (n, k))
    r = 15 + 0.2 * p + rng.normal(0, 3, (n, k))
    # storage integrates the budget, plus noise: the closure is good but not exact
    s = np.cumsum(p - et - r, axis=0) + rng.normal(0, 2, (n, k))
    s = s - s.mean(axis=0)
    s[20:23] = np.nan
    frame = lambda a: pd.DataFrame(a, index=MONTHS, columns=list(BASINS))  # noqa: E731
    return {
        "p": frame(p),
        "et": frame(et),
        "et_gleam": frame(et * 1.1),
        "r": frame(r),
        "s": frame(s),
    }


def _timeseries(variables: dict[str, pd.DataFrame], **extra) -> xr.Dataset:
    ds = xr.Dataset(
        {name: (("station", "time"), table.T.to_numpy(), {"units": "mm"}) for name, table in variables.items()},
        coords={"time": ("time", MONTHS.values)},
    )
    ds["station_name"] = ("station", np.array(BASINS, dtype=object), {"cf_role": "timeseries_id"})
    for name, values in extra.items():
        ds[name] = ("station", values)
    ds.attrs["data_kind"] = "synthetic"
    return ds


def _with_error(ds: xr.Dataset, estimate: str) -> xr.Dataset:
    """``<estimate>_standard_error`` beside ``estimate``, as the products publish it (never a choice to close with)."""
    name = f"{estimate}_standard_error"
    ds[name] = ds[estimate].copy(data=np.full(ds[estimate].shape, 3.0))
    ds[name].attrs = {"units": "mm", "uncertainty_method": "member_spread"}
    ds[estimate].attrs["ancillary_variables"] = name
    return ds


def tws_file(t: dict[str, pd.DataFrame]) -> xr.Dataset:
    """Like ``tws_rec_basins.nc``: GRACE storage ``tws_jpl``, a reconstruction ``tws_jpl_rec`` with its standard
    error, regions and areas."""
    ds = _timeseries(
        {"tws_jpl": t["s"], "tws_jpl_rec": t["s"].interpolate(limit_area="inside")},
        continent=np.array([REGIONS[b] for b in BASINS], dtype=object),
        area=np.array([AREAS[b] for b in BASINS]),
    )
    return _with_error(ds, "tws_jpl_rec")


def et_file(t: dict[str, pd.DataFrame]) -> xr.Dataset:
    """Like ``et_basin_reconstruction.nc``: products, their reconstructions and the reconstructions' mean with its
    standard error (mm month-1)."""
    ds = _timeseries(
        {"et_era5land": t["et"], "et_gleam": t["et_gleam"], "et_era5land_rec": t["et"] + 1.0, "et_rec_mean": t["et"]}
    )
    return _with_error(ds, "et_rec_mean")
