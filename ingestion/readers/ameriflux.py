"""Reader for AmeriFlux BASE CSV files (``AMF_<site>_BASE_<HH|HR>_<version>.csv``) (no Django).

Layout (AmeriFlux FP-Standard BASE product): two comment lines ``# Site: <site>`` and
``# Version: <version>``, then a comma-separated header with ``TIMESTAMP_START``, ``TIMESTAMP_END``
(``YYYYMMDDHHMM``, **local standard time**, no daylight saving; the UTC offset is in the site's BADM,
not the file) and the variables; -9999 for missing values. Variable names may carry position
qualifiers ``_<H>_<V>_<R>`` (horizontal, vertical, replicate) or a layer index ``_<n>``
(``SWC_1_1_1``, ``TS_1``). BASE data are not gap-filled and have no QC columns: a step is valid when
it is not -9999.
A re-saved file is read the same (:mod:`~.base`): a byte-order mark, any line ends, comment lines
with trailing delimiters or in quotes (``"# Site: US-Ha1",,,``), quoted column names, extra and
reordered columns.

There is no real AmeriFlux BASE file in the shared sample data: the tests write files in this layout.

References
----------
AmeriFlux FP-Standard variable names and units, https://ameriflux.lbl.gov/data/aboutdata/data-variables/
(LE, H, NETRAD, G, SW_IN W m-2; TA, TS degC; RH, SWC %; VPD hPa; P mm; USTAR m s-1;
NEE umolCO2 m-2 s-1). Chu, H., et al. (2023): AmeriFlux BASE data pipeline to support network growth
and data sharing. Sci. Data 10, 614, doi:10.1038/s41597-023-02531-2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .base import PointData, ReaderError, metadata_text
from .flux import (
    check_step,
    check_time_order,
    finish,
    location_companions,
    long_table,
    parse_timestamps,
    site_from_lookup,
    station_table,
    steps_to_daily,
)
from .tables import read_header_lines, read_table, split_header

READER_VERSION = "1.0"
NETWORK = "AmeriFlux"
FILE_NAME = re.compile(r"AMF_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_BASE_(?P<resolution>HH|HR)_(?P<version>\d+-\d+)\.csv")
FILE_PATTERNS = ("AMF_*_BASE_HH_*.csv", "AMF_*_BASE_HR_*.csv")
STEPS = {"HH": pd.Timedelta("30min"), "HR": pd.Timedelta("60min")}
# base name -> (variable, units per step, factor to those units)
VARIABLES = {
    "LE": ("le", "W m-2", 1.0),
    "H": ("h", "W m-2", 1.0),
    "NETRAD": ("netrad", "W m-2", 1.0),
    "G": ("g", "W m-2", 1.0),
    "SW_IN": ("sw_in", "W m-2", 1.0),
    "TA": ("ta", "degC", 1.0),
    "RH": ("rh", "%", 1.0),
    "VPD": ("vpd", "hPa", 1.0),
    "P": ("p", "mm", 1.0),
    "TS": ("ts", "degC", 1.0),
    "SWC": ("swc", "m3 m-3", 0.01),  # file: %
    "USTAR": ("ustar", "m s-1", 1.0),
    "NEE": ("nee", "umol m-2 s-1", 1.0),
}


def pick_column(columns: list[str], base: str) -> str | None:
    """The column of a BASE variable: the plain name, else the lowest ``_H_V_R`` or ``_n`` qualifier.

    Parameters
    ----------
    columns : list of str
        Header names.
    base : str
        FP-Standard base name (``LE``, ``SWC``, ...).

    Returns
    -------
    str or None
        e.g. ``SWC_1_1_1`` before ``SWC_2_1_1``; gap-filled (``_F``), PI (``_PI``) and statistics
        (``_SD``, ``_N``) variants are not picked. None when absent.
    """
    if base in columns:
        return base
    found = [
        (tuple(int(x) for x in m.group(1).split("_")), c)
        for c in columns
        if (m := re.fullmatch(rf"{re.escape(base)}_(\d+(?:_\d+_\d+)?)", c))
    ]
    return min(found)[1] if found else None


def parse_file_name(path: str | os.PathLike) -> dict:
    """Site, resolution and version of ``AMF_<site>_BASE_<HH|HR>_<version>.csv``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    dict
        ``site``, ``resolution``, ``version`` (str).

    Raises
    ------
    ReaderError
        The name does not parse.
    """
    m = FILE_NAME.fullmatch(Path(path).name)
    if not m:
        raise ReaderError(path, "expected a file name AMF_<CC-XXX>_BASE_<HH|HR>_<v>-<r>.csv", field="file name")
    return m.groupdict()


def read_ameriflux(
    path: str | os.PathLike,
    *,
    sites: Mapping | None = None,
    locations: str | os.PathLike | None = None,
    min_coverage: float = 0.8,
) -> PointData:
    """Read one AmeriFlux BASE CSV and aggregate it to daily values with daily ET.

    Parameters
    ----------
    path : str or os.PathLike
        ``AMF_<site>_BASE_<HH|HR>_<version>.csv``.
    sites, locations : optional
        Site coordinates (the file has none), as for :func:`~.fluxnet.read_fluxnet`: a mapping
        ``{code: {"lat", "lon", "elevation", "igbp", "name"}}`` or a ``location_fluxnet.csv``-style
        table; default :func:`~.flux.default_locations`.
    min_coverage : float, optional
        Fraction of a day's steps that must be present for a daily value (default 0.8).

    Returns
    -------
    PointData
        One station (network ``AmeriFlux``, source ``AmeriFlux BASE <version>``). Daily
        observations (time = local standard time day at 00:00, not shifted to UTC) from
        :func:`~.flux.steps_to_daily`: daily means of ``le``, ``h``, ``netrad``, ``g``, ``sw_in``
        (W m-2), ``ta``, ``ts`` (degC), ``rh`` (%), ``vpd`` (hPa), ``swc`` (m3 m-3, from %), ``ustar``
        (m s-1), ``nee`` (umol m-2 s-1) and daily sums ``p`` and ``et`` (mm d-1; ET from LE with lambda
        at TA); each variable from the column chosen by :func:`pick_column`; quality_flag = the
        day's fraction of present steps.

    Raises
    ------
    ReaderError
        A bad file name, missing or mismatched ``# Site:``/``# Version:`` lines, header over the size
        limits, non-UTF-8 text, a missing TIMESTAMP_START/TIMESTAMP_END/LE column, malformed
        timestamps, timestamps out of order or duplicated, intervals that are not 30/60 minutes,
        no site coordinates, coordinates out of range, or no day with enough LE.

    References
    ----------
    AmeriFlux data variables, https://ameriflux.lbl.gov/data/aboutdata/data-variables/.
    """
    path = Path(path)
    name = parse_file_name(path)
    head = read_header_lines(path, 3)
    for i, (key, expected) in enumerate((("Site", name["site"]), ("Version", name["version"]))):
        m = re.fullmatch(rf"#\s*{key}:\s*(\S+)\s*", metadata_text(head[i], ","))
        if not m:
            raise ReaderError(
                path, f"expected a comment line '# {key}: ...', found {head[i][:60]!r}", line=i + 1, field=key
            )
        if m.group(1) != expected:
            raise ReaderError(
                path, f"expected {key} {expected} as in the file name, found {m.group(1)}", line=i + 1, field=key
            )
    columns = split_header(path, head[2], 3, ",")
    picked = {base: c for base in VARIABLES if (c := pick_column(columns, base))}
    if "LE" not in picked:
        raise ReaderError(
            path,
            "expected a latent heat flux column LE (or LE_<H>_<V>_<R>) in the AmeriFlux BASE header",
            line=3,
            field="LE",
        )
    stamps = ("TIMESTAMP_START", "TIMESTAMP_END")
    table = read_table(path, preamble=2, required=stamps, optional=picked.values(), text=stamps, what="AmeriFlux BASE")
    site = site_from_lookup(path, name["site"], sites=sites, locations=locations)
    start, end = (parse_timestamps(table, c, 12) for c in stamps)
    check_time_order(path, start, table.first_line + np.arange(len(start)), "TIMESTAMP_START")
    step = STEPS[name["resolution"]]
    check_step(table, start, end, step)
    values = {VARIABLES[b][0]: table.data[c].to_numpy() * VARIABLES[b][2] for b, c in picked.items()}
    time, series = steps_to_daily(
        path,
        start,
        values,
        {VARIABLES[b][0]: VARIABLES[b][1] for b in picked},
        step=step,
        min_coverage=min_coverage,
        le_column=picked["LE"],
    )
    stations = station_table(path, [{**site, "network": NETWORK, "source": f"AmeriFlux BASE {name['version']}"}])
    return finish(path, stations, long_table(name["site"], time, series))


# --- reader contract (ingestion/readers/base.py) ------------------------------------------------------------


def read(
    path: str | os.PathLike,
    *,
    sites: Mapping | None = None,
    locations: str | os.PathLike | None = None,
    min_coverage: float = 0.8,
) -> PointData:
    """One AmeriFlux BASE CSV, the reader contract's entry point.

    Parameters
    ----------
    path : str or os.PathLike
        ``AMF_<site>_BASE_<HH|HR>_<version>.csv``.
    sites, locations, min_coverage : optional
        As for :func:`read_ameriflux`.

    Returns
    -------
    PointData
        See :func:`read_ameriflux`.

    Raises
    ------
    ReaderError
        See :func:`read_ameriflux`.
    """
    return read_ameriflux(path, sites=sites, locations=locations, min_coverage=min_coverage)


companions = location_companions  # reader contract: the default location table
