"""Reader for REddyProc half-hourly input text files, e.g. the package example ``Example_DETha98.txt`` (no Django).

Layout (REddyProc ``fLoadTXTIntoDataframe``): tab-separated; line 1 the column names, line 2 their
units, then one row per half-hour (or hour); -9999 for missing values; any line ends (the example
uses CR). Time stamp columns ``Year``, ``DoY`` (1-366) and ``Hour`` (decimal hour 0.0-23.5, or 24)
mark the **end** of each interval (the example runs from 1998 DoY 1 0.5 to DoY 366 0.0), in the
site's local standard time (DE-Tha: CET = UTC+1, ``TimeZoneHour = 1`` in the REddyProc use case).
Columns read when present (:data:`VARIABLES`, units row checked): NEE (umolm-2s-1), LE, H, Rg
(Wm-2), Tair, Tsoil (degC), rH (%), VPD (hPa), Ustar (ms-1). The data are not gap-filled and carry
no QC columns: a step is valid when it is not -9999.

``Example_DETha98.Rd.txt`` in the same folder is the R documentation (Rd markup) of the data set,
not a second data layout; it is not read (it does not match :data:`FILE_PATTERNS`).

References
----------
Wutzler, T., Lucas-Moffat, A., Migliavacca, M., et al. (2018): Basic and extensible post-processing
of eddy covariance flux data with REddyProc. Biogeosciences 15, 5015-5030, doi:10.5194/bg-15-5015-2018.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import PointData, ReaderError
from .flux import check_time_order, finish, long_table, station_table, steps_to_daily
from .tables import read_table

READER_VERSION = "1.0"
#: The package example and REddyProc input files named ``*.reddyproc.txt`` (other names: pass the file itself).
FILE_PATTERNS = ("Example_DETha98.txt", "*.reddyproc.txt")
NETWORK = "CarboEurope"
TIME_COLUMNS = ("Year", "DoY", "Hour")
# REddyProc column -> (variable, UDUNITS units, accepted spellings of the units row, blanks removed)
VARIABLES = {
    "NEE": ("nee", "umol m-2 s-1", {"umolm-2s-1", "µmolm-2s-1", "umol/m2/s"}),
    "LE": ("le", "W m-2", {"Wm-2", "W/m2"}),
    "H": ("h", "W m-2", {"Wm-2", "W/m2"}),
    "Rg": ("sw_in", "W m-2", {"Wm-2", "W/m2"}),
    "Tair": ("ta", "degC", {"degC", "°C"}),
    "Tsoil": ("ts", "degC", {"degC", "°C"}),
    "rH": ("rh", "%", {"%"}),
    "VPD": ("vpd", "hPa", {"hPa"}),
    "Ustar": ("ustar", "m s-1", {"ms-1", "m/s"}),
}
TIME_UNITS = {"-", "--", ""}
#: The package example (folder README: DE-Tha, Tharandt, 50.96 N 13.57 E; IGBP ENF as in FLUXNET2015).
EXAMPLE_SITE: dict[str, Any] = {
    "code": "DE-Tha",
    "name": "Tharandt (REddyProc example Example_DETha98)",
    "lat": 50.96,
    "lon": 13.57,
    "elevation": np.nan,
    "land_cover": "ENF",
}


def read_reddyproc(
    path: str | os.PathLike,
    *,
    code: str = EXAMPLE_SITE["code"],
    lat: float = EXAMPLE_SITE["lat"],
    lon: float = EXAMPLE_SITE["lon"],
    elevation: float = EXAMPLE_SITE["elevation"],
    land_cover: str = EXAMPLE_SITE["land_cover"],
    name: str | None = None,
    min_coverage: float = 0.8,
) -> PointData:
    """Read a REddyProc input text file and aggregate it to daily values with daily ET.

    Parameters
    ----------
    path : str or os.PathLike
        The tab-separated file (layout in the module docstring).
    code, lat, lon, elevation, land_cover, name : optional
        The site (the file has no site metadata). Defaults: the package example, DE-Tha at
        50.96 N, 13.57 E (folder README), elevation unknown (NaN), IGBP ``ENF``; pass the real
        site's values for any other file.
    min_coverage : float, optional
        Fraction of a day's steps that must be present for a daily value (default 0.8).

    Returns
    -------
    PointData
        One station (network ``CarboEurope``: the example comes from the CARBODATA CD; source
        ``REddyProc <file name>``). Daily observations (time = local standard time day at 00:00,
        not shifted to UTC) from :func:`~.flux.steps_to_daily`: daily means of ``nee`` (umol m-2
        s-1), ``le``, ``h``, ``sw_in`` (W m-2), ``ta``, ``ts`` (degC), ``rh`` (%), ``vpd`` (hPa),
        ``ustar`` (m s-1) and the daily sum ``et`` (mm d-1, from LE with lambda at Tair); days with
        less than ``min_coverage`` of their steps present are left out; quality_flag = that fraction.

    Raises
    ------
    ReaderError
        Header over the size limits, non-UTF-8 text, no units row or a units row that does not
        match (e.g. LE in mm instead of Wm-2: line 2, that column), a missing Year/DoY/Hour/LE
        column, a time outside the calendar or off the half-hour grid, timestamps out of order or
        duplicated, coordinates out of range, or no day with enough LE.

    References
    ----------
    Wutzler et al. (2018), doi:10.5194/bg-15-5015-2018.
    """
    path = Path(path)
    table = read_table(
        path, sep="\t", units_row=True, required=(*TIME_COLUMNS, "LE"), optional=VARIABLES, what="REddyProc"
    )
    for column in table.columns:
        given = table.units[column].replace(" ", "")
        expected = TIME_UNITS if column in TIME_COLUMNS else VARIABLES[column][2] if column in VARIABLES else None
        if expected is not None and given not in expected:
            raise ReaderError(
                path,
                f"expected units {' or '.join(sorted(expected - {''})) or 'none'} in the units "
                f"row, found {table.units[column]!r}",
                line=table.header_line + 1,
                field=column,
            )
    year, doy, hour = (table.data[c].to_numpy() for c in TIME_COLUMNS)
    days_in_year = np.where((year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0)), 366, 365)
    checks = (
        ("Year", ~((year == np.round(year)) & (year >= 1800) & (year <= 2200)), "a four-digit year"),
        # the interval ending at midnight of 31 December is stamped DoY 366 (367 in leap years), Hour 0
        (
            "DoY",
            ~(
                (doy == np.round(doy))
                & (doy >= 1)
                & ((doy <= days_in_year) | ((doy == days_in_year + 1) & (hour == 0)))
            ),
            "a day of year in 1..365/366",
        ),
        (
            "Hour",
            ~((hour >= 0) & (hour <= 24) & (hour * 2 == np.round(hour * 2))),
            "a decimal hour 0..24 on the half-hour",
        ),
    )
    for column, bad, what in checks:
        if (i := np.flatnonzero(bad)).size:
            raise ReaderError(
                path, f"expected {what}, found {table.data[column].iloc[i[0]]:g}", line=table.line(i[0]), field=column
            )
    end = (
        pd.to_datetime(year.astype("int64").astype(str), format="%Y").to_numpy()
        + ((doy - 1) * 86400 + hour * 3600).astype("int64").astype("timedelta64[s]")
    ).astype("datetime64[ns]")
    lines = table.first_line + np.arange(len(end))
    check_time_order(path, end, lines, "Hour")
    step = pd.Timedelta(int(np.min(np.diff(end.astype("int64")))) if len(end) > 1 else "30min")
    if step not in (pd.Timedelta("30min"), pd.Timedelta("60min")) or (end.astype("int64") % step.value).any():
        raise ReaderError(path, f"expected half-hourly or hourly time stamps, found a step of {step}", field="Hour")
    present = [c for c in VARIABLES if c in table.data]
    values = {VARIABLES[c][0]: table.data[c].to_numpy() for c in present}
    time, series = steps_to_daily(
        path,
        end - step.to_timedelta64(),
        values,
        {VARIABLES[c][0]: VARIABLES[c][1] for c in present},
        step=step,
        min_coverage=min_coverage,
        le_column="LE",
    )
    stations = station_table(
        path,
        [
            {
                "code": code,
                "name": name or (EXAMPLE_SITE["name"] if code == "DE-Tha" else code),
                "lat": lat,
                "lon": lon,
                "elevation": elevation,
                "land_cover": land_cover,
                "network": NETWORK,
                "source": f"REddyProc {path.name}",
                "field": "site",
            }
        ],
    )
    return finish(path, stations, long_table(code, time, series))


# --- reader contract (ingestion/readers/base.py) ------------------------------------------------------------


def read(path: str | os.PathLike, **site) -> PointData:
    """One REddyProc input file, the reader contract's entry point.

    Parameters
    ----------
    path : str or os.PathLike
        Tab-separated REddyProc input file.
    **site
        ``code``, ``lat``, ``lon``, ``elevation``, ``land_cover``, ``name``, ``min_coverage`` as for
        :func:`read_reddyproc` (defaults: the DE-Tha example).

    Returns
    -------
    PointData
        See :func:`read_reddyproc`.

    Raises
    ------
    ReaderError
        See :func:`read_reddyproc`.
    """
    return read_reddyproc(path, **site)
