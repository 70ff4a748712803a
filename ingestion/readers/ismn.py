"""Reader for ISMN in situ soil moisture files (``.stm``) in both "separate files" layouts (no Django).

An ISMN download holds one ``.stm`` file per sensor and variable, named
``<network>_<network>_<station>_<var>_<depth_from>_<depth_to>_<sensor>_<start>_<end>.stm``
(depths in m, the sensor name may contain ``_``), in ``<network>/<station>/`` folders next to a
``<network>_<network>_<station>_static_variables.csv`` (soil properties, ESA CCI land cover,
Koeppen-Geiger climate). Two line layouts exist (times in UTC)::

    Header+values   line 1: network network station lat lon elevation depth_from depth_to sensor
                    then:   YYYY/MM/DD HH:MM value ismn_flag [provider_flag]
    CEOP separate   every line: YYYY/MM/DD HH:MM YYYY/MM/DD HH:MM network network station lat lon
                    elevation depth_from depth_to value ismn_flag [provider_flag]

Decoding of the ``.stm`` file uses the ISMN package's own reader (``ismn.filehandlers.DataFile``;
it works with numpy 2.3 / pandas 2.3). The package does not check lines, so whenever its result is
incomplete (a missing flag, a non-numeric value, a row count that differs from the line count) or it
raises, the file is scanned line by line here to name the first bad line in the :class:`ReaderError`.
Files re-saved by an editor read the same: any line ends, blanks or tabs at the end of lines, and a
UTF-8 byte-order mark (the package reads ASCII only, so such a file is handed to it as a copy
without the mark, in a temporary folder). The static variables CSV is read with the delimited-table
reader of the point readers (:func:`~.tables.read_table`: columns by name, byte-order mark, quoted
names, trailing delimiters accepted, bad lines named), only its three columns ``quantity_name``,
``value`` and ``quantity_source_name``, with the package's rules (``StaticMetaFile``) for land cover
and climate.

Variable convention (queryable, one variable per sensor depth): ``<var>_<from>_<to>`` with the ISMN
short name (``sm`` soil moisture, ``ts`` soil temperature, ...) and the depths in m from the file
name, at least two and at most four decimals: ``sm_0.05_0.05``, ``sm_0.0508_0.0508`` (2 inch),
``sm_0.00_0.19`` (cosmic-ray probe, 0-19 cm). Negative depths are heights above ground (``ta_-2.00_-2.00``).
Two sensors at the same station and depth give the same variable: the sensor name is kept by
:func:`read_stm` (``StmFile.sensor``) and, in :func:`read`, in the extra observation column ``sensor``.

References
----------
Dorigo, W., et al. (2021): The International Soil Moisture Network: serving Earth system science
for over a decade. Hydrol. Earth Syst. Sci. 25, 5749-5804, doi:10.5194/hess-25-5749-2021.
ISMN quality flags (C01-C03 range checks, D01-D10 geophysical and spectrum-based checks, G good;
combined with commas, e.g. ``D02,D03``): https://ismn.earth/en/data/flag-overview/ .
TUW-GEO ``ismn`` package (MIT): https://github.com/TUW-GEO/ismn .
ESA CCI Land Cover Product User Guide v2 (2017), legend table; IGBP classes after Loveland &
Belward (1997), Int. J. Remote Sens. 18, 3289-3295, doi:10.1080/014311697217099.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from ismn.filehandlers import DataFile

from .base import BOM, PointData, ReaderError, decode_text
from .tables import read_table

READER_VERSION = "1.0"
FILE_PATTERNS = ("*.stm",)
SOURCE = "ISMN"
# ISMN short name -> UDUNITS units of the values in the .stm files (ISMN variable table)
UNITS = {"sm": "m3 m-3", "ts": "degC", "ta": "degC", "tsf": "degC", "p": "mm", "su": "kPa", "sd": "mm", "sweq": "mm"}
FLAG = re.compile(r"[A-Z][0-9]{0,2}(,[A-Z][0-9]{0,2})*")  # G, M, U, C01, D02, "C01,D03", ...
# ESA CCI land cover class -> IGBP class, by the class definitions (mosaics -> CVM / WSA / SAV,
# lichens and sparse vegetation -> OSH, flooded classes -> WET); the CCI code is kept as well.
CCI_TO_IGBP = {
    10: "CRO",
    11: "CRO",
    12: "CRO",
    20: "CRO",
    30: "CVM",
    40: "CVM",
    50: "EBF",
    60: "DBF",
    61: "DBF",
    62: "DBF",
    70: "ENF",
    71: "ENF",
    72: "ENF",
    80: "DNF",
    81: "DNF",
    82: "DNF",
    90: "MF",
    100: "WSA",
    110: "SAV",
    120: "OSH",
    121: "OSH",
    122: "OSH",
    130: "GRA",
    140: "OSH",
    150: "OSH",
    152: "OSH",
    153: "OSH",
    160: "WET",
    170: "WET",
    180: "WET",
    190: "URB",
    200: "BSV",
    201: "BSV",
    202: "BSV",
    210: "WAT",
    220: "SNO",
}
HEADER_VALUES, CEOP_SEP = "header_values", "ceop_sep"


@dataclass
class StmFile:
    """One decoded ``.stm`` file (one sensor, one variable).

    Attributes
    ----------
    path : str
        The file read.
    layout : str
        ``"header_values"`` or ``"ceop_sep"``.
    network, station, variable, sensor : str
        ISMN network (as written in the file), station (as in the file name, the ``ismn``
        package's convention), short variable name (``sm``, ``ts``, ...) and sensor name.
    depth_from, depth_to : float
        Sensor depth in m below ground (from the file name; checked against the header).
    lat, lon, elevation : float
        Degrees north/east (WGS84) and m above sea level (NaN outside [-500, 9000]), from the header.
    data : pandas.DataFrame
        Index ``time`` (datetime64[ns], UTC, naive); columns ``value`` (float64, :data:`UNITS`),
        ``flag`` (str, ISMN quality flag) and ``orig_flag`` (str, provider flag, "" when none).
    """

    path: str
    layout: str
    network: str
    station: str
    variable: str
    sensor: str
    depth_from: float
    depth_to: float
    lat: float
    lon: float
    elevation: float
    data: pd.DataFrame


def _lines(path: Path, raw: bytes) -> list[str]:
    lines = decode_text(path, raw, encoding="ascii").splitlines()  # ISMN files end lines with CR, LF or CRLF
    if not any(s.strip() for s in lines):
        raise ReaderError(path, "empty file: expected an ISMN header or data line", line=1)
    return lines


def _read_with_package(path: Path, raw: bytes) -> tuple[DataFile, pd.DataFrame]:
    """``ismn.filehandlers.DataFile`` of the file and its data; a copy without a byte-order mark when it has one."""
    if not raw.startswith(BOM):
        handle = DataFile(path.parent, path.name)
        return handle, handle.read_data()
    with tempfile.TemporaryDirectory(prefix="ismn-") as folder:
        (Path(folder) / path.name).write_bytes(raw[len(BOM) :])
        handle = DataFile(folder, path.name)
        return handle, handle.read_data()


def _name_parts(path: Path) -> tuple[list[str], float, float]:
    parts = path.name[: -len(path.suffix)].split("_") if path.suffix else path.name.split("_")
    if len(parts) < 9:
        raise ReaderError(
            path,
            "expected a file name <network>_<network>_<station>_<variable>_<depth_from>_"
            "<depth_to>_<sensor>_<start>_<end>.stm",
            field="file name",
        )
    try:
        depths = float(parts[4]), float(parts[5])
    except ValueError:
        raise ReaderError(
            path, f"expected depths in m in the file name, found {parts[4]!r}, {parts[5]!r}", field="file name"
        ) from None
    return parts, *depths


def _float(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _scan(path: Path, lines: list[str], layout: str) -> ReaderError | None:
    """The first malformed line of an ISMN file as a ReaderError (None when every line is valid)."""
    ceop = layout == CEOP_SEP
    names = (
        [
            "date",
            "time",
            "date",
            "time",
            "network",
            "network",
            "station",
            "lat",
            "lon",
            "elevation",
            "depth_from",
            "depth_to",
        ]
        if ceop
        else ["date", "time"]
    ) + ["value", "flag", "orig_flag"]
    expected = " ".join(names[:-1]) + " [orig_flag]"
    first = 0 if ceop else 1
    seen: dict[datetime, int] = {}
    for number, line in enumerate(lines[first:], start=first + 1):
        tokens = line.split()
        if not tokens:
            continue
        if not len(names) - 1 <= len(tokens) <= len(names):
            missing = names[len(tokens)] if len(tokens) < len(names) else None
            return ReaderError(
                path,
                f"expected {len(names) - 1} or {len(names)} fields ({expected}), found {len(tokens)}: {line.strip()!r}",
                line=number,
                field=missing,
            )
        try:
            stamp = datetime.strptime(f"{tokens[0]} {tokens[1]}", "%Y/%m/%d %H:%M")
        except ValueError:
            return ReaderError(
                path, f"expected a time YYYY/MM/DD HH:MM, found {tokens[0]} {tokens[1]!r}", line=number, field="time"
            )
        value, flag = tokens[len(names) - 3], tokens[len(names) - 2]
        if _float(value) is None:
            return ReaderError(path, f"expected a finite number, found {value!r}", line=number, field="value")
        if not FLAG.fullmatch(flag):
            return ReaderError(
                path,
                f"expected an ISMN quality flag (G, C01, D02, D01,D03, ...), found {flag!r}",
                line=number,
                field="flag",
            )
        if stamp in seen:
            return ReaderError(
                path, f"time {stamp:%Y/%m/%d %H:%M} repeats line {seen[stamp]}", line=number, field="time"
            )
        seen[stamp] = number
    return None


def _header(path: Path, lines: list[str], layout: str) -> tuple[str, float, float, float, float, float]:
    """Network, lat, lon, elevation, depth_from, depth_to of the first line, range-checked."""
    tokens = lines[0].split()
    offset = 4 if layout == CEOP_SEP else 0
    if len(tokens) < offset + 8:
        raise ReaderError(
            path,
            "expected a header 'network network station lat lon elevation depth_from "
            f"depth_to sensor', found {lines[0].strip()!r}",
            line=1,
        )
    values: list[float] = []
    for i, (name, low, high) in enumerate(
        (
            ("lat", -90, 90),
            ("lon", -180, 180),
            ("elevation", -math.inf, math.inf),
            ("depth_from", -100, 100),
            ("depth_to", -100, 100),
        )
    ):
        v = _float(tokens[offset + 3 + i])
        if v is None or not low <= v <= high:
            raise ReaderError(
                path, f"expected a number in [{low}, {high}], found {tokens[offset + 3 + i]!r}", line=1, field=name
            )
        values.append(v)
    if not -500 <= values[2] <= 9000:  # no-data elevations (-9999)
        values[2] = math.nan
    lat, lon, elevation, depth_from, depth_to = values
    return tokens[offset], lat, lon, elevation, depth_from, depth_to


def read_stm(path: str | os.PathLike) -> StmFile:
    """Read one ISMN ``.stm`` file in the Header+values or the CEOP separate-files layout.

    Parameters
    ----------
    path : str or os.PathLike
        An ISMN data file (module docstring: name and layouts).

    Returns
    -------
    StmFile
        Metadata and the values: ``data`` indexed by ``time`` (datetime64[ns], UTC) with ``value``
        (float64, units of :data:`UNITS`), ``flag`` (ISMN quality flag) and ``orig_flag``.

    Raises
    ------
    ReaderError
        An empty or non-ASCII file (a UTF-8 byte-order mark is accepted), a file name without the ISMN
        parts, an unknown variable, a
        header coordinate, elevation or depth that is not a number in range (line 1), header depths
        that disagree with the file name, or a data line with too few or too many fields, a bad
        time, a non-numeric value, a malformed quality flag or a repeated time (line named).

    References
    ----------
    Dorigo et al. (2021), doi:10.5194/hess-25-5749-2021; ``ismn.filehandlers.DataFile`` (TUW-GEO).
    """
    path = Path(path)
    raw = path.read_bytes()
    lines = _lines(path, raw)
    parts, depth_from, depth_to = _name_parts(path)
    short = parts[3]
    if short not in UNITS:
        raise ReaderError(path, f"expected a variable of {', '.join(UNITS)}, found {short!r}", field="file name")
    layout = (
        CEOP_SEP
        if len(lines[0].split()) in (14, 15) and len(lines) > 1 and len(lines[1].split()) in (14, 15)
        else HEADER_VALUES
    )
    network, lat, lon, elevation, head_from, head_to = _header(path, lines, layout)
    if abs(head_from - depth_from) > 0.0051 or abs(head_to - depth_to) > 0.0051:
        raise ReaderError(
            path,
            f"header depths {head_from}-{head_to} m disagree with the file name ({depth_from}-{depth_to} m)",
            line=1,
            field="depth_from",
        )
    n_lines = sum(1 for s in lines[(1 if layout == HEADER_VALUES else 0) :] if s.strip())
    if not n_lines:
        raise ReaderError(path, "expected data lines after the header, found none", line=2)
    try:
        handle, frame = _read_with_package(path, raw)
        meta = handle.metadata
        station, sensor = str(meta["station"].val), str(meta["instrument"].val)
    except Exception as exc:  # the package raises whatever pandas or dateutil raised
        first = (str(exc).splitlines() or [""])[0]
        raise _scan(path, lines, layout) or ReaderError(
            path, f"the ismn reader failed: {type(exc).__name__}: {first}"
        ) from exc
    if handle.file_type != layout:
        raise ReaderError(path, f"the ismn package read the layout {handle.file_type!r}, expected {layout!r}")
    frame.columns = ["value", "flag", "orig_flag"]
    flags = frame["flag"].astype(str)
    if (
        len(frame) != n_lines
        or frame["value"].dtype != "float64"
        or frame["value"].isna().any()
        or frame.index.hasnans
        or not flags.str.fullmatch(FLAG.pattern).all()
        or not frame.index.is_unique
    ):
        raise _scan(path, lines, layout) or ReaderError(
            path, f"expected {n_lines} values with ISMN flags, the ismn reader found {len(frame)}"
        )
    orig = frame["orig_flag"]
    data = pd.DataFrame(
        {
            "value": frame["value"].to_numpy("float64"),
            "flag": flags.to_numpy(object),
            "orig_flag": orig.astype(str).where(orig.notna(), "").to_numpy(object),
        },
        index=pd.DatetimeIndex(frame.index.astype("datetime64[ns]"), name="time"),
    )
    return StmFile(str(path), layout, network, station, short, sensor, depth_from, depth_to, lat, lon, elevation, data)


def static_variables_path(path: str | os.PathLike) -> Path | None:
    """The ``*_static_variables.csv`` of the station folder of an ``.stm`` file.

    Parameters
    ----------
    path : str or os.PathLike
        An ISMN ``.stm`` file.

    Returns
    -------
    pathlib.Path or None
        ``<network>_<network>_<station>_static_variables.csv`` beside the file, else the only
        ``*_static_variables.csv`` there, else None.
    """
    path = Path(path)
    parts = path.name.split("_")
    exact = path.parent / ("_".join(parts[:3]) + "_static_variables.csv")
    if exact.is_file():
        return exact
    found = sorted(path.parent.glob("*_static_variables.csv"))
    return found[0] if len(found) == 1 else None


#: quantity_source_name of the land cover rows, latest epoch first, and of the climate row (as ismn's StaticMetaFile)
LAND_COVER_SOURCES = ("CCI_landcover_2010", "CCI_landcover_2005", "CCI_landcover_2000")
CLIMATE_SOURCE = "koeppen_geiger_2007"


def read_static_variables(path: str | os.PathLike) -> dict:
    """Land cover and climate class of an ISMN static variables CSV.

    Parameters
    ----------
    path : str or os.PathLike
        ``<network>_<network>_<station>_static_variables.csv`` (``;``-separated, UTF-8, columns found
        by name: ``quantity_name``, ``value``, ``quantity_source_name``; the others are not read).

    Returns
    -------
    dict
        ``land_cover_cci`` (int ESA CCI class of the latest of 2010, 2005, 2000, or None),
        ``land_cover`` (IGBP class from :data:`CCI_TO_IGBP`, "" when unknown), ``climate_kg``
        (Koeppen-Geiger 2007 class, "" when unknown), as ``ismn.filehandlers.StaticMetaFile`` reads them.

    Raises
    ------
    ReaderError
        Any error of :func:`~.tables.read_table` (a missing column, a truncated line: line and field
        named), no ``land cover classification`` row (field ``quantity_name``), or a CCI land cover
        value that is not an integer class (line and field ``value`` named).

    References
    ----------
    ESA CCI Land Cover v1.6.1 (2000, 2005, 2010 epochs); Peel, M. C., et al. (2007): Updated world
    map of the Koeppen-Geiger climate classification, Hydrol. Earth Syst. Sci. 11, 1633-1644,
    doi:10.5194/hess-11-1633-2007.
    """
    path = Path(path)
    columns = ("quantity_name", "value", "quantity_source_name")
    table = read_table(path, sep=";", required=columns, text=columns, what="ISMN static variables")
    d = table.data.fillna("")
    quantity, source = d["quantity_name"].str.strip(), d["quantity_source_name"].str.strip()
    if not (quantity == "land cover classification").any():
        raise ReaderError(
            path,
            "expected an ISMN static variables table with a land cover row ('land cover classification')",
            field="quantity_name",
        )
    cci = None
    for key in LAND_COVER_SOURCES:
        rows = np.flatnonzero(((quantity == "land cover classification") & (source == key)).to_numpy())
        if rows.size:
            text = d["value"].iloc[rows[0]].strip()
            value = _float(text)
            if value is None or value != int(value):
                raise ReaderError(
                    path,
                    f"expected an ESA CCI land cover class (an integer), found {text!r}",
                    line=table.line(rows[0]),
                    field="value",
                )
            cci = int(value)
            break
    rows = np.flatnonzero(((quantity == "climate classification") & (source == CLIMATE_SOURCE)).to_numpy())
    climate = d["value"].iloc[rows[0]].strip() if rows.size else ""
    return {
        "land_cover_cci": cci,
        "land_cover": CCI_TO_IGBP.get(cci, "") if cci is not None else "",
        "climate_kg": "" if climate == "unknown" else climate,
    }


def depth_label(depth: float) -> str:
    """Depth in m as written in variable names: at least 2, at most 4 decimals (``0.05``, ``0.0508``)."""
    text = f"{depth:.4f}".rstrip("0")
    return text + "0" * (2 - len(text.split(".")[1]))


def variable_name(short: str, depth_from: float, depth_to: float) -> str:
    """``<short>_<from>_<to>``, e.g. ``sm_0.00_0.05`` (see the module docstring)."""
    return f"{short}_{depth_label(depth_from)}_{depth_label(depth_to)}"


# --- reader contract (ingestion/readers/base.py): one IngestRun per .stm file ------------------


def read(path: str | os.PathLike) -> PointData:
    """One ISMN ``.stm`` file with its station's static variables, as PointData.

    Parameters
    ----------
    path : str or os.PathLike
        An ISMN data file (either layout).

    Returns
    -------
    PointData
        ``stations``: one row, code ``<network>:<station>`` (e.g. ``SCAN:AdamsRanch#1``), name =
        station, lat/lon/elevation from the header, ``land_cover`` = IGBP class crosswalked from
        the ESA CCI class of the static variables CSV ("" without one), network = ISMN network,
        source ``ISMN``; extra columns ``land_cover_cci`` (str CCI code or "") and ``climate_kg``.
        ``observations``: one row per line, variable :func:`variable_name` (e.g.
        ``sm_0.05_0.05``), units of :data:`UNITS` (``m3 m-3`` for soil moisture), time (UTC),
        ``quality_flag`` = ISMN flag (``G``, ``D02``, ``C01,D03``, ...), ``is_validation`` False;
        extra column ``sensor``.

    Raises
    ------
    ReaderError
        Any error of :func:`read_stm` or :func:`read_static_variables`.

    References
    ----------
    Dorigo et al. (2021), doi:10.5194/hess-25-5749-2021.
    """
    stm = read_stm(path)
    static_path = static_variables_path(path)
    static = (
        read_static_variables(static_path)
        if static_path
        else {"land_cover_cci": None, "land_cover": "", "climate_kg": ""}
    )
    code = f"{stm.network}:{stm.station}"
    stations = pd.DataFrame(
        {
            "code": [code],
            "name": [stm.station],
            "lat": [stm.lat],
            "lon": [stm.lon],
            "elevation": [stm.elevation],
            "land_cover": [static["land_cover"]],
            "network": [stm.network],
            "source": [SOURCE],
            "land_cover_cci": ["" if static["land_cover_cci"] is None else str(static["land_cover_cci"])],
            "climate_kg": [static["climate_kg"]],
        }
    ).astype({c: object for c in ("code", "name", "land_cover", "network", "source", "land_cover_cci", "climate_kg")})
    n = len(stm.data)
    observations = pd.DataFrame(
        {
            "station": np.full(n, code, dtype=object),
            "variable": np.full(n, variable_name(stm.variable, stm.depth_from, stm.depth_to), dtype=object),
            "time": stm.data.index.to_numpy("datetime64[ns]"),
            "value": stm.data["value"].to_numpy("float64"),
            "units": np.full(n, UNITS[stm.variable], dtype=object),
            "quality_flag": stm.data["flag"].to_numpy(object),
            "is_validation": np.zeros(n, dtype=bool),
            "sensor": np.full(n, stm.sensor, dtype=object),
        }
    )
    return PointData(stations, observations).validate(path)


def companions(path: str | os.PathLike) -> list[Path]:
    """The station's ``*_static_variables.csv`` when there is one (see :func:`static_variables_path`).

    ``Metadata.xml`` at the top of a download is ISO 19115 metadata of the whole download (contact,
    bounding box), not of the station, and is not read.
    """
    found = static_variables_path(path)
    return [found] if found else []
