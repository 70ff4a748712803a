"""Reader for FLUXNET2015 FULLSET/SUBSET CSV files (HH, HR, DD, WW, MM) (no Django).

One file holds one site at one resolution, named
``FLX_<site>_FLUXNET2015_<FULLSET|SUBSET>_<res>_<first year>-<last year>_<version>.csv``
(e.g. ``FLX_US-Ha1_FLUXNET2015_FULLSET_HH_1991-2012_1-4.csv``); site and resolution come from the name.
Layout: one header row of variable names, comma-separated, -9999 for missing values; timestamps
``TIMESTAMP_START``/``TIMESTAMP_END`` (``YYYYMMDDHHMM``, HH/HR; ``YYYYMMDD``, WW) or ``TIMESTAMP``
(``YYYYMMDD``, DD; ``YYYYMM``, MM), in **local standard time** (no daylight saving; the UTC offset
is site metadata, not in the file).

Variables read when present (:data:`VARIABLES`): LE_F_MDS (required), H_F_MDS, NETRAD, G_F_MDS,
SW_IN_F, TA_F, VPD_F, RH, P_F, TS_F_MDS_1, SWC_F_MDS_1 (% -> m3 m-3), USTAR, NEE_VUT_REF,
GPP_NT_VUT_REF, RECO_NT_VUT_REF, with their ``_QC`` columns. QC meanings (Pastorello et al. 2020):
at HH/HR 0 measured, 1 good-quality gap-fill, 2 medium, 3 poor (ERA-downscaled for the ``_F``
meteorology); at DD-MM the fraction of measured and good-quality gap-filled half-hours.

There is no real FLUXNET2015 CSV in the shared sample data: the tests write small files in the
exact FLUXNET2015 layout (columns, -9999, QC columns, TIMESTAMP_START/END) and check the values.

References
----------
Pastorello, G., et al. (2020): The FLUXNET2015 dataset and the ONEFlux processing pipeline for eddy
covariance data. Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3 (variable list and units:
https://fluxnet.org/data/fluxnet2015-dataset/fullset-data-product/).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .base import PointData, ReaderError
from .flux import (
    check_step,
    check_time_order,
    finish,
    fraction_flags,
    le_to_et,
    location_companions,
    long_table,
    parse_timestamps,
    site_from_lookup,
    station_table,
    steps_to_daily,
    ta_for_lambda,
)
from .tables import read_table

READER_VERSION = "1.0"
NETWORK = "FLUXNET2015"
FILE_NAME = re.compile(
    r"FLX_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_FLUXNET2015_(?P<product>FULLSET|SUBSET)_"
    r"(?P<resolution>HH|HR|DD|WW|MM)_(?P<first>\d{4})-(?P<last>\d{4})_(?P<version>\d+-\d+)\.csv"
)
FILE_PATTERNS = tuple(
    f"FLX_*_FLUXNET2015_{product}_{res}_*.csv"
    for product in ("FULLSET", "SUBSET")
    for res in ("HH", "HR", "DD", "WW", "MM")
)
STEPS = {"HH": pd.Timedelta("30min"), "HR": pd.Timedelta("60min")}
TIMESTAMPS = {
    "HH": (("TIMESTAMP_START", 12), ("TIMESTAMP_END", 12)),
    "HR": (("TIMESTAMP_START", 12), ("TIMESTAMP_END", 12)),
    "DD": (("TIMESTAMP", 8),),
    "WW": (("TIMESTAMP_START", 8), ("TIMESTAMP_END", 8)),
    "MM": (("TIMESTAMP", 6),),
}
# FLUXNET2015 column -> (variable, units at HH/HR, units at DD/WW/MM, QC column, factor to the units given)
VARIABLES = {
    "LE_F_MDS": ("le", "W m-2", "W m-2", "LE_F_MDS_QC", 1.0),
    "H_F_MDS": ("h", "W m-2", "W m-2", "H_F_MDS_QC", 1.0),
    "NETRAD": ("netrad", "W m-2", "W m-2", "NETRAD_QC", 1.0),
    "G_F_MDS": ("g", "W m-2", "W m-2", "G_F_MDS_QC", 1.0),
    "SW_IN_F": ("sw_in", "W m-2", "W m-2", "SW_IN_F_QC", 1.0),
    "TA_F": ("ta", "degC", "degC", "TA_F_QC", 1.0),
    "VPD_F": ("vpd", "hPa", "hPa", "VPD_F_QC", 1.0),
    "RH": ("rh", "%", "%", None, 1.0),
    "P_F": ("p", "mm", "mm d-1", "P_F_QC", 1.0),
    "TS_F_MDS_1": ("ts", "degC", "degC", "TS_F_MDS_1_QC", 1.0),
    "SWC_F_MDS_1": ("swc", "m3 m-3", "m3 m-3", "SWC_F_MDS_1_QC", 0.01),  # file: %
    "USTAR": ("ustar", "m s-1", "m s-1", "USTAR_QC", 1.0),
    "NEE_VUT_REF": ("nee", "umol m-2 s-1", "g m-2 d-1", "NEE_VUT_REF_QC", 1.0),  # CO2 / gC
    "GPP_NT_VUT_REF": ("gpp", "umol m-2 s-1", "g m-2 d-1", "NEE_VUT_REF_QC", 1.0),
    "RECO_NT_VUT_REF": ("reco", "umol m-2 s-1", "g m-2 d-1", "NEE_VUT_REF_QC", 1.0),
}


def parse_file_name(path: str | os.PathLike) -> dict:
    """Site, product, resolution, years and version from a FLUXNET2015 file name.

    Parameters
    ----------
    path : str or os.PathLike
        ``FLX_<site>_FLUXNET2015_<FULLSET|SUBSET>_<HH|HR|DD|WW|MM>_<YYYY>-<YYYY>_<v>-<r>.csv``.

    Returns
    -------
    dict
        ``site``, ``product``, ``resolution``, ``version`` (str), ``first``, ``last`` (int years).

    Raises
    ------
    ReaderError
        The name does not parse (YY and auxiliary products are not read), or the years are reversed.
    """
    m = FILE_NAME.fullmatch(Path(path).name)
    if not m:
        raise ReaderError(
            path,
            "expected a file name FLX_<CC-XXX>_FLUXNET2015_<FULLSET|SUBSET>_<HH|HR|DD|WW|MM>_<YYYY>-<YYYY>_<v>-<r>.csv",
            field="file name",
        )
    out = m.groupdict()
    out["first"], out["last"] = int(out["first"]), int(out["last"])
    if out["first"] > out["last"]:
        raise ReaderError(path, f"first year {out['first']} after last year {out['last']}", field="file name")
    return out


def read_fluxnet(
    path: str | os.PathLike,
    *,
    sites: Mapping | None = None,
    locations: str | os.PathLike | None = None,
    min_coverage: float = 0.8,
) -> PointData:
    """Read one FLUXNET2015 FULLSET/SUBSET CSV (one site, one resolution).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV (name as in :func:`parse_file_name`).
    sites : mapping, optional
        ``{code: {"lat", "lon", "elevation", "igbp", "name"}}``: coordinates of the site (the CSV
        has none); takes precedence over ``locations``.
    locations : str or os.PathLike, optional
        Location CSV in the layout of CARDAMOM-FluxVal's ``location_fluxnet.csv`` (204 FLUXNET2015
        sites: ``Flux_name``, ``LC``, ``Lat``, ``lon``). Default (see
        :func:`~.flux.default_locations`): ``location_fluxnet.csv`` next to the file, else
        ``$SHARED_DATA_DIR/cardamom_fluxval/location_fluxnet.csv``.
    min_coverage : float, optional
        HH/HR: fraction of a day's steps that must be good (QC 0 or 1) for a daily value
        (default 0.8). DD/WW/MM: values whose FLUXNET QC fraction is below it are dropped.

    Returns
    -------
    PointData
        One station (code from the file name; lat/lon, IGBP ``land_cover``, elevation where the
        lookup has it; network ``FLUXNET2015``; source ``FLUXNET2015 <product> <res> <version>``).
        Observations, time = **local standard time** day (HH, HR, DD: the day's date at 00:00),
        week start (WW) or first day of the month (MM), not shifted to UTC (the CSV has no offset):

        * HH/HR are aggregated to days with :func:`~.flux.steps_to_daily`: steps with QC 0/1 only,
          a day needs ``min_coverage`` of them; daily mean of each variable in the units of
          :data:`VARIABLES` (HH column), ``p`` and ``et`` daily sums in ``mm d-1``; quality_flag =
          the day's fraction of good steps (``"0.958"``).
        * DD/WW/MM values as in the file (units of the DD-MM column of :data:`VARIABLES`: fluxes
          in W m-2, ``p`` in mm d-1, ``nee``/``gpp``/``reco`` in gC m-2 d-1 written ``g m-2 d-1``);
          quality_flag = the FLUXNET QC fraction (``"" `` for columns without QC).
        * ``et`` (mm d-1) = ET from LE_F_MDS with :func:`~.flux.le_to_et` at TA_F (lambda at
          20 degC where TA_F is missing); at DD-MM from the period-mean LE and TA
          (86400 s per day), quality_flag of LE.
        * ``swc`` converted from % to m3 m-3; GPP and RECO use NEE_VUT_REF_QC.

    Raises
    ------
    ReaderError
        A bad file name, header over the size limits, non-UTF-8 text, a missing timestamp column or
        LE_F_MDS, a malformed timestamp, timestamps out of order or duplicated, intervals that are
        not 30/60 minutes (HH/HR), a time outside the years of the file name, no site coordinates,
        coordinates out of range, or no LE left after the QC filter (all -9999 or all bad QC).

    References
    ----------
    Pastorello et al. (2020), doi:10.1038/s41597-020-0534-3.
    """
    path = Path(path)
    name = parse_file_name(path)
    res = name["resolution"]
    stamps = TIMESTAMPS[res]
    qc_columns = {q for *_, q, _ in VARIABLES.values() if q}
    table = read_table(
        path,
        required=(*(c for c, _ in stamps), "LE_F_MDS"),
        optional=(*VARIABLES, *qc_columns),
        text=[c for c, _ in stamps],
        what="FLUXNET2015 CSV",
    )
    site = site_from_lookup(path, name["site"], sites=sites, locations=locations)
    start = parse_timestamps(table, *stamps[0])
    lines = table.first_line + np.arange(len(start))
    check_time_order(path, start, lines, stamps[0][0])
    if len(stamps) == 2:
        end = parse_timestamps(table, *stamps[1])
        if res in STEPS:
            check_step(table, start, end, STEPS[res])
        elif (bad := np.flatnonzero(end < start)).size:
            raise ReaderError(
                path,
                "expected TIMESTAMP_END on or after TIMESTAMP_START",
                line=table.line(bad[0]),
                field="TIMESTAMP_END",
            )
    years = pd.DatetimeIndex(start).year
    if (bad := np.flatnonzero((years < name["first"]) | (years > name["last"]))).size:
        raise ReaderError(
            path,
            f"expected times in {name['first']}-{name['last']} as the file name says, found "
            f"{pd.Timestamp(start[bad[0]])}",
            line=table.line(bad[0]),
            field=stamps[0][0],
        )
    data = table.data
    present = [c for c in VARIABLES if c in data]
    values = {VARIABLES[c][0]: data[c].to_numpy() * VARIABLES[c][4] for c in present}
    qc = {VARIABLES[c][0]: data[VARIABLES[c][3]].to_numpy() for c in present if VARIABLES[c][3] in data}
    if res in STEPS:
        time, series = steps_to_daily(
            path,
            start,
            values,
            {VARIABLES[c][0]: VARIABLES[c][1] for c in present},
            step=STEPS[res],
            qc=qc,
            min_coverage=min_coverage,
            le_column="LE_F_MDS",
        )
    else:
        time, series = start, []
        for c in present:
            var, units, q = VARIABLES[c][0], VARIABLES[c][2], qc.get(VARIABLES[c][0])
            v = values[var] if q is None else np.where(q >= min_coverage, values[var], np.nan)
            series.append((var, v, units, "" if q is None else fraction_flags(q)))
        le = series[0][1]
        if not np.isfinite(le).any():
            raise ReaderError(
                path,
                f"no LE_F_MDS value left with LE_F_MDS_QC >= {min_coverage} (the fraction of good "
                "half-hours): expected some measured latent heat flux",
                field="LE_F_MDS",
            )
        series.append(("et", le_to_et(le, ta_for_lambda(values.get("ta")), 86400), "mm d-1", series[0][3]))
    source = f"FLUXNET2015 {name['product']} {res} {name['version']}"
    stations = station_table(path, [{**site, "network": NETWORK, "source": source}])
    return finish(path, stations, long_table(name["site"], time, series))


# --- reader contract (ingestion/readers/base.py) ------------------------------------------------------------


def read(
    path: str | os.PathLike,
    *,
    sites: Mapping | None = None,
    locations: str | os.PathLike | None = None,
    min_coverage: float = 0.8,
) -> PointData:
    """One FLUXNET2015 CSV, the reader contract's entry point.

    Parameters
    ----------
    path : str or os.PathLike
        ``FLX_<site>_FLUXNET2015_<FULLSET|SUBSET>_<HH|HR|DD|WW|MM>_<years>_<version>.csv``.
    sites, locations, min_coverage : optional
        As for :func:`read_fluxnet` (coordinates default to the location table found by
        :func:`~.flux.default_locations`).

    Returns
    -------
    PointData
        See :func:`read_fluxnet`.

    Raises
    ------
    ReaderError
        See :func:`read_fluxnet`.
    """
    return read_fluxnet(path, sites=sites, locations=locations, min_coverage=min_coverage)


companions = location_companions  # reader contract: the default location table
