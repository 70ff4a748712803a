"""Reader for TU Wien / H SAF scatterometer soil moisture time-series cells (ASCAT, ERS; no Django).

One NetCDF file holds one 5 x 5 degree cell of the WARP grid (12.5 km) as CF discrete sampling
geometry time series (``featureType = timeSeries``): per grid point (``gp`` / ``locations``
dimension) the id ``gpi`` or ``location_id``, ``lat``, ``lon`` and static layers; per observation
(``obs``) ``time``, ``sm`` (surface soil moisture, % of saturation), ``sm_noise``, ``proc_flag``,
``ssf`` (surface state flag), optionally ``corr_flag``, ``frozen_prob``, ``snow_prob``. The grid
point of an observation comes from ``row_size`` (contiguous ragged array: observations stored grid
point after grid point) or ``locationIndex`` (indexed ragged array). Older WARP 5.5 files keep
frozen and snow cover probability as a day-of-year climatology ``frozen`` / ``snow``
``(gp, dayofyear)``; they are attached to each observation by its day of year, as the ``ascat``
package does (``frozen[doy - 1]``).

Each grid point is a station (code = grid point index, network ``ASCAT`` or ``ERS``). Variables:
``ssm``, ``ssm_noise`` (%, degree of saturation), ``frozen_prob``, ``snow_prob`` (%). Quality flag of
``ssm`` / ``ssm_noise``: ``p<proc_flag>[c<corr_flag>][s<ssf>]``, e.g. ``p0s1`` (processing flag 0
= default, surface state 1 = unfrozen); ``frozen_prob`` / ``snow_prob`` have none. Records that
repeat a grid point and time (2,030 in cell 1358, 2012-11-19..21, six of them differing only in
``ssf``) are kept once, the first in the file.

Other files of the pytesmo test data, not read here: ``TUW_ASCAT_SSM_W55_gp<gpi>.dat`` (one grid
point of ASCAT SSM, WARP 5.5 binary user format: int32 YYYYMMDDHH, uint8 SSM and error x 0.5 %,
uint8 SSF; point data, but its coordinates are only in the TU Wien grid-info file, which is not
there) with ``<cell>_advisory-flags.dat`` (per grid point 366 daily snow and frozen probabilities,
wetland and topographic complexity); EUMETSAT ASCAT L2 SSM swath files (orbit geometry, 12.5 and
25 km; neither stations nor a regular grid) and H SAF H14 GRIB (gridded root-zone soil wetness
index on a reduced Gaussian grid, for ``open_grid``).

References
----------
Wagner, W., et al. (2013): The ASCAT soil moisture product: a review of its specifications,
validation results, and emerging applications. Meteorol. Z. 22, 5-33,
doi:10.1127/0941-2948/2013/0399.
EUMETSAT H SAF: ASCAT surface soil moisture climate data record, Product User Manual
(https://hsaf.meteoam.it). TU Wien ``ascat`` package (``ascat.read_native.cdr``), MIT.
CF conventions 1.6, H.2.4 contiguous and H.2.5 indexed ragged arrays.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import scipy.io

from .base import PointData, ReaderError

READER_VERSION = "1.0"
FILE_PATTERNS = ("TUW_METOP_ASCAT_*.nc", "TUW_ERS_AMI_*.nc")
# file variable -> (portal variable, UDUNITS units); all in percent
VARIABLES = {
    "sm": ("ssm", "%"),
    "sm_noise": ("ssm_noise", "%"),
    "frozen_prob": ("frozen_prob", "%"),
    "snow_prob": ("snow_prob", "%"),
}
CLIMATOLOGIES = {"frozen": "frozen_prob", "snow": "snow_prob"}  # (gp, dayofyear) layers of WARP 5.5 files
STATIC = {
    "topo": "topographic_complexity",
    "wetland": "wetland_fraction",
    "por_gldas": "porosity_gldas",
    "por_hwsd": "porosity_hwsd",
}  # per grid point -> extra station columns (%, %, m3 m-3, m3 m-3)
SECONDS = {"days": 86400, "day": 86400, "hours": 3600, "hour": 3600, "minutes": 60, "seconds": 1, "second": 1}


def _network(ds: netCDF4.Dataset, path: Path) -> str:
    text = (" ".join(str(getattr(ds, a, "")) for a in ("sensor", "platform", "title")) + " " + path.name).upper()
    for network, pattern in (("ASCAT", "ASCAT"), ("ERS", "ERS|AMI")):  # as a word: not in "USERS"
        if re.search(r"(?<![A-Z])(" + pattern + r")(?![A-Z])", text):
            return network
    raise ReaderError(path, "expected an ASCAT or ERS product (global attribute sensor/platform/title)", field="sensor")


def _times(var, path: Path) -> np.ndarray:
    match = re.fullmatch(r"\s*(\w+) since (.+?)\s*", getattr(var, "units", ""))
    if not match or match.group(1) not in SECONDS:
        raise ReaderError(
            path,
            f"expected units '<days|hours|minutes|seconds> since <date>', found {getattr(var, 'units', None)!r}",
            field="time",
        )
    if getattr(var, "calendar", "standard").lower() not in ("standard", "gregorian", "proleptic_gregorian"):
        raise ReaderError(path, f"expected a standard calendar, found {var.calendar!r}", field="time")
    values = var[:]
    if np.ma.is_masked(values) or not np.isfinite(np.ma.getdata(values)).all():
        raise ReaderError(path, "expected a time for every observation, found missing values", field="time")
    ref = pd.Timestamp(match.group(2))
    ref = ref.tz_convert("UTC").tz_localize(None) if ref.tzinfo else ref
    seconds = np.rint(np.ma.getdata(values).astype("float64") * SECONDS[match.group(1)]).astype("int64")
    return ref.to_datetime64().astype("datetime64[ns]") + seconds.astype("timedelta64[s]").astype("timedelta64[ns]")


def _locations(ds: netCDF4.Dataset, path: Path, n_gp: int, n_obs: int) -> np.ndarray:
    """Grid point index (0..n_gp-1) of every observation."""
    if "row_size" in ds.variables:
        rows = np.ma.getdata(ds["row_size"][:]).astype("int64")
        if (rows < 0).any() or rows.sum() != n_obs:
            raise ReaderError(
                path,
                f"expected row sizes adding up to the {n_obs} observations, found {int(rows.sum())}",
                field="row_size",
            )
        return np.repeat(np.arange(n_gp), rows)
    if "locationIndex" in ds.variables:
        index = np.ma.getdata(ds["locationIndex"][:]).astype("int64")
        if index.size != n_obs or ((index < 0) | (index >= n_gp)).any():
            raise ReaderError(path, f"expected {n_obs} location indices in [0, {n_gp - 1}]", field="locationIndex")
        return index
    raise ReaderError(
        path, "expected a ragged-array time series (variable row_size or locationIndex)", field="row_size"
    )


def _flags(ds: netCDF4.Dataset, n_obs: int) -> np.ndarray:
    """``p<proc_flag>[c<corr_flag>][s<ssf>]`` per observation (object array of str)."""
    parts = [
        (prefix, np.ma.filled(np.ma.asarray(ds[name][:]).astype("int64"), -1))
        for prefix, name in (("p", "proc_flag"), ("c", "corr_flag"), ("s", "ssf"))
        if name in ds.variables
    ]
    key = np.zeros(n_obs, dtype="int64")
    for _, values in parts:  # one int per combination (flags are < 999), formatted once per distinct value
        key = key * 1000 + np.clip(values, -1, 998) + 1
    unique, inverse = np.unique(key, return_inverse=True)
    text = []
    for k in unique:
        codes: list[int] = []
        for _ in parts:
            k, c = divmod(int(k), 1000)
            codes.insert(0, c - 1)
        text.append("".join(f"{p}{c}" for (p, _), c in zip(parts, codes, strict=True) if c >= 0))
    return np.array(text, dtype=object)[inverse]


def read_cell(path: str | os.PathLike) -> PointData:
    """Read one TU Wien / H SAF ASCAT or ERS soil moisture time-series cell file.

    Parameters
    ----------
    path : str or os.PathLike
        NetCDF file, e.g. ``TUW_METOP_ASCAT_WARP55R12_1358.nc`` (layout: module docstring).

    Returns
    -------
    PointData
        ``stations``: one row per grid point: code = grid point index (str), name ``<network>
        gpi <gpi>``, lat/lon (degrees, rounded to 1e-6), elevation NaN, land_cover "", network
        ``ASCAT`` or ``ERS``, source from the global attributes (title, product version,
        institution); extra columns ``cell`` and, where present, ``topographic_complexity``,
        ``wetland_fraction`` (%), ``porosity_gldas``, ``porosity_hwsd`` (m3 m-3), NaN when missing.
        ``observations``: ``ssm``, ``ssm_noise``, ``frozen_prob``, ``snow_prob`` (units ``%``) at
        the observation times (UTC, rounded to the second), missing values dropped, sorted by
        grid point and time; quality flag ``p<proc_flag>[c<corr_flag>][s<ssf>]`` for ``ssm`` and
        ``ssm_noise``, "" for the probabilities.

    Raises
    ------
    ReaderError
        A file that NetCDF cannot read (e.g. truncated), no grid point id / ``lat`` / ``lon`` /
        ``time`` / ``sm`` variable, no ``row_size`` or ``locationIndex``, row sizes that do not add
        up to the observations, time units other than ``<unit> since <date>``, missing times, or
        neither ASCAT nor ERS in the global attributes.

    References
    ----------
    Wagner et al. (2013), doi:10.1127/0941-2948/2013/0399; H SAF ASCAT SSM CDR Product User
    Manual; ``ascat.read_native.cdr.AscatGriddedNcTs`` (day-of-year probabilities).
    """
    path = Path(path)
    try:
        ds = netCDF4.Dataset(path)
    except OSError as exc:
        raise ReaderError(path, f"expected a readable NetCDF file: {exc}") from None
    field = None
    try:
        with ds:
            if ds.file_format.startswith("NETCDF3"):  # netCDF-C reads a truncated classic file as fill values
                try:
                    with scipy.io.netcdf_file(path, "r", mmap=False):  # reads every variable: fails when cut
                        pass
                except ValueError as exc:
                    raise ReaderError(
                        path, f"expected a complete NetCDF-3 file, its data stop early ({exc})", field="file size"
                    ) from None
            ds.set_auto_mask(True)
            network = _network(ds, path)
            id_name = "location_id" if "location_id" in ds.variables else "gpi"
            for required in (id_name, "lat", "lon", "time", "sm"):
                if required not in ds.variables:
                    raise ReaderError(path, f"expected a variable {required!r}", field=required)
            field = id_name
            gpi = np.ma.getdata(ds[id_name][:]).astype("int64")
            gp_dims, n_gp, n_obs = ds[id_name].dimensions, gpi.size, ds["time"].size
            field = "lat"
            lat = np.round(np.ma.filled(ds["lat"][:].astype("float64"), np.nan), 6)
            field = "lon"
            lon = np.round(np.ma.filled(ds["lon"][:].astype("float64"), np.nan), 6)
            field = "time"
            time = _times(ds["time"], path)
            gp = _locations(ds, path, n_gp, n_obs)
            field = "proc_flag"
            flags = _flags(ds, n_obs)
            field = "static layers"
            cell = re.search(r"(\d+)(?:\.nc)?$", str(getattr(ds, "id", "")) or path.stem)
            stations = pd.DataFrame(
                {
                    "code": gpi.astype(str).astype(object),
                    "name": [f"{network} gpi {g}" for g in gpi],
                    "lat": lat,
                    "lon": lon,
                    "elevation": np.full(n_gp, np.nan),
                    "land_cover": [""] * n_gp,
                    "network": [network] * n_gp,
                    "source": [
                        ", ".join(
                            str(getattr(ds, a)) for a in ("title", "product_version", "institution") if hasattr(ds, a)
                        )
                        or path.name
                    ]
                    * n_gp,
                    "cell": [cell.group(1) if cell else ""] * n_gp,
                    **{
                        col: np.ma.filled(ds[v][:].astype("float64"), np.nan)
                        for v, col in STATIC.items()
                        if v in ds.variables and ds[v].dimensions == gp_dims
                    },
                }
            )
            # observations in grid point and time order; repeated (grid point, time) records kept once
            order = np.lexsort((time, gp))
            keep = np.ones(n_obs, dtype=bool)
            keep[1:] = (gp[order][1:] != gp[order][:-1]) | (time[order][1:] != time[order][:-1])
            order = order[keep]
            gp, time, flags = gp[order], time[order], flags[order]
            doy = pd.DatetimeIndex(time).dayofyear.to_numpy() - 1
            columns = {}
            for var, (variable, _) in VARIABLES.items():
                field = var
                if var in ds.variables and ds[var].dimensions == ds["time"].dimensions:
                    columns[variable] = np.ma.asarray(ds[var][:])[order]
            for var, variable in CLIMATOLOGIES.items():
                field = var
                if variable not in columns and var in ds.variables and ds[var].dimensions[:1] == gp_dims:
                    columns[variable] = np.ma.asarray(ds[var][:])[gp, doy]
    except ReaderError:
        raise
    except (OSError, RuntimeError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise ReaderError(path, f"expected readable data: {type(exc).__name__}: {exc}", field=field) from None
    codes = stations["code"].to_numpy(object)
    parts = []
    for variable, values in columns.items():
        ok = ~np.ma.getmaskarray(values)
        n = int(ok.sum())
        units = dict(VARIABLES.values())[variable]
        parts.append(
            {
                "station": codes[gp[ok]],
                "variable": np.full(n, variable, dtype=object),
                "time": time[ok],
                "value": np.ma.getdata(values)[ok].astype("float64"),
                "units": np.full(n, units, dtype=object),
                "quality_flag": flags[ok] if variable in ("ssm", "ssm_noise") else np.full(n, "", dtype=object),
                "is_validation": np.zeros(n, dtype=bool),
            }
        )
    observations = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return PointData(stations, observations).validate(path)


# --- reader contract (ingestion/readers/base.py): one IngestRun per cell file -----------------


def read(path: str | os.PathLike) -> PointData:
    """One ASCAT / ERS time-series cell file (see :func:`read_cell`)."""
    return read_cell(path)
