"""Reader for monthly basin-mean water budget tables (lehmannfa/water_storage_changes; no Django).

One CSV per product: one row per basin (first column: basin name, header "" or ``NAME``), one
column per month headed ``<PRODUCT> YYYY-MM-15`` (mid-month label), values in mm (water storage)
or mm per month (fluxes), empty cells for months without data. A re-saved table reads the same
(:mod:`~.base`): a byte-order mark, any line ends, quoted names, trailing delimiters, blank lines at
the end, month columns in any order, a ``NAME`` column anywhere, and extra columns whose header is
not a date (ignored). Thirteen products share one set of
204 GRDC major river basins; their attributes (``NAME``, ``CONTINENT``, ``OCEAN``, ``RASTAREA`` in
km2) are in ``basins.dbf`` for 189 of them (the 15 Amazon sub-basins, e.g. ``JAPURA``, ``PURUS``,
have no row). The ITSG-Grace2018 table uses another basin set, the GRDC basins of ``basins.xlsx``
(``CATCH_ID``, ``NAME``, ``RASTAREA``, ``DB_ID``, ``SORTING``, ``LATITUDE``; 160 of its 405 basins
have values); names such as ``SEINE`` occur in both sets with different outlines (areas), so the two
sets are two networks.

Neither metadata file holds a basin location (no polygons, no longitude): every basin station is
given lat = lon = NaN (no location; the extra column ``location_known`` is False). Join them
to basin outlines by ``code`` (the basin name).

Storage tables are anomalies: JPL and CSR mascon basin means average to 0 over 2004-01..2009-12
(the GRACE mascon baseline); ITSG does not (another baseline). The monthly series have no gap
months: months without a GRACE/GRACE-FO solution carry values filled by the repository's author,
and the 2017-07..2018-05 gap between the two missions is flagged ``gap_filled`` here.

References
----------
Lehmann, F., et al.: lehmannfa/water_storage_changes, ``results/hydrology`` (GitHub; no licence
stated: project tests only). Products (readme of that folder): GRACE JPL RL06 mascons (Watkins et
al. 2015, doi:10.1002/2014JB011547), CSR RL06 mascons (Save et al. 2016, doi:10.1002/2016JB013007),
ITSG-Grace2018 (Kvas et al. 2019, doi:10.1029/2019JB017415); ERA5-Land (Munoz-Sabater et al. 2021,
doi:10.5194/essd-13-4349-2021); FLUXCOM (Jung et al. 2019, doi:10.1038/s41597-019-0076-8); GLDAS
2.1 Noah (Rodell et al. 2004, doi:10.1175/BAMS-85-3-381); GLEAM (Martens et al. 2017,
doi:10.5194/gmd-10-1903-2017); MOD16 (Mu et al. 2011, doi:10.1016/j.rse.2011.02.019); GPCC (Schneider
et al. 2014, doi:10.1007/s00704-013-0860-x); MSWEP (Beck et al. 2019, doi:10.1175/BAMS-D-17-0138.1);
GRUN (Ghiggi et al. 2019, doi:10.5194/essd-11-1655-2019). Basins: GRDC Major River Basins of the
World (Global Runoff Data Centre, Koblenz).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import dbfread
import numpy as np
import pandas as pd

from .base import PointData, ReaderError, decode_text, header_names, surplus_is_empty

READER_VERSION = "1.0"
FILE_PATTERNS = ("TWS_*_monthly.csv", "ET_*_monthly.csv", "P_*_monthly.csv", "R_*_monthly.csv")
SOURCE = "lehmannfa/water_storage_changes results/hydrology"
NETWORK, NETWORK_ITSG = "GRDC-MRB", "GRDC-ITSG"
MONTHLY, STORAGE = "mm month-1", "mm"
# file name stem -> (column prefix, variable, units, network)
PRODUCTS = {
    "TWS_GRACE_JPL_mascons_monthly": ("TWS_GRACE_JPL_mascons", "tws_jpl", STORAGE, NETWORK),
    "TWS_uncertainty_GRACE_JPL_mascons_monthly": (
        "TWS_uncertainty_GRACE_JPL_mascons",
        "tws_jpl_uncertainty",
        STORAGE,
        NETWORK,
    ),
    "TWS_GRACE_CSR_mascons_monthly": ("TWS_GRACE_CSR_mascons", "tws_csr", STORAGE, NETWORK),
    "TWS_GRACE_ITSG_grid_monthly": ("TWS_GRACE_ITSG_grid", "tws_itsg", STORAGE, NETWORK_ITSG),
    "ET_ERA5_Land_monthly": ("ET_ERA5_Land", "et_era5land", MONTHLY, NETWORK),
    "ET_FLUXCOM_monthly": ("ET_FLUXCOM", "et_fluxcom", MONTHLY, NETWORK),
    "ET_GLDAS21_NOAH36_monthly": ("ET_GLDAS21_NOAH36", "et_gldas", MONTHLY, NETWORK),
    "ET_GLEAM_monthly": ("ET_GLEAM", "et_gleam", MONTHLY, NETWORK),
    "ET_MOD16_monthly": ("ET_MOD16", "et_mod16", MONTHLY, NETWORK),
    "P_ERA5_Land_monthly": ("P_ERA5_Land", "p_era5land", MONTHLY, NETWORK),
    "P_GPCC_monthly": ("P_GPCC", "p_gpcc", MONTHLY, NETWORK),
    "P_MSWEP_monthly": ("P_MSWEP", "p_mswep", MONTHLY, NETWORK),
    "R_ERA5_Land_monthly": ("R_ERA5_Land", "r_era5land", MONTHLY, NETWORK),
    "R_GRUN_monthly": ("R_GRUN", "r_grun", MONTHLY, NETWORK),
}
DBF_FIELDS = ("NAME", "CONTINENT", "OCEAN", "RASTAREA")
XLSX_COLUMNS = ("CATCH_ID", "NAME", "RASTAREA", "DB_ID", "LATITUDE")
INTER_MISSION_GAP = (pd.Timestamp("2017-07-01"), pd.Timestamp("2018-05-01"))  # no GRACE / GRACE-FO month


def _product(path: Path) -> tuple[str, str, str, str]:
    if path.stem not in PRODUCTS:
        raise ReaderError(
            path, f"expected one of the product tables {', '.join(f + '.csv' for f in PRODUCTS)}", field="file name"
        )
    return PRODUCTS[path.stem]


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read one product CSV as a basin x month table, checking every line.

    Parameters
    ----------
    path : str or os.PathLike
        A product CSV (e.g. ``ET_GLEAM_monthly.csv``; layout and accepted variations: module docstring).

    Returns
    -------
    pandas.DataFrame
        Index: basin names (str, file order); columns: first day of each month (datetime64[ns],
        increasing whatever the column order of the file); values float64 in the product's units
        (:data:`PRODUCTS`), NaN where the file is empty.

    Raises
    ------
    ReaderError
        An unknown file name, an empty file, a byte that is not UTF-8 (line named), a header without
        a ``NAME`` column whose first cell is not "" (field = that column), a column holding a date
        that is not ``<PRODUCT> YYYY-MM-DD`` (field = the column), a repeated month, a line with fewer
        fields than the header or a value beyond them (field = the first column missing), an empty or
        repeated basin name, or a value that is not a finite number (line and month column named).
    """
    path = Path(path)
    prefix = _product(path)[0]
    reader = csv.reader(io.StringIO(decode_text(path, path.read_bytes()), newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ReaderError(path, f"expected CSV text: {exc}", line=reader.line_num) from None
    while rows and not any(cell.strip() for cell in rows[-1][1]):  # blank lines at the end
        rows.pop()
    if not rows or not any(rows[0][1]):
        raise ReaderError(path, f"empty file: expected a header ',{prefix} YYYY-MM-15,...'", line=1)
    header_line, header = rows[0][0], header_names(rows[0][1])
    name_column = header.index("NAME") if "NAME" in header else 0
    if header[name_column] not in ("", "NAME"):
        raise ReaderError(
            path,
            f"expected the basin name column first (header '' or 'NAME'), found {header[0]!r}",
            line=header_line,
            field=header[0],
        )
    months, columns = [], []
    for j, column in enumerate(header):
        if j == name_column:
            continue
        match = re.fullmatch(re.escape(prefix) + r" (\d{4}-\d{2}-\d{2})", column)
        if not match and not re.search(r"\d{4}-\d{2}-\d{2}", column):
            continue  # a column that is not a month (an extra attribute): not read
        try:
            month = pd.Timestamp(match.group(1)).to_period("M").to_timestamp() if match else None
        except ValueError:
            month = None
        if month is None:
            raise ReaderError(
                path, f"expected a column '{prefix} YYYY-MM-DD', found {column!r}", line=header_line, field=column
            )
        if month in months:
            raise ReaderError(
                path, f"expected each month once, found {month:%Y-%m} again", line=header_line, field=column
            )
        months.append(month)
        columns.append(j)
    if len(rows) < 2:
        raise ReaderError(path, "expected basin rows after the header, found none", line=header_line + 1)
    names, lines, cells = [], [], []
    for number, row in rows[1:]:
        if len(row) < len(header) or not surplus_is_empty(row, len(header)):
            missing = header[len(row)] if len(row) < len(header) else None
            raise ReaderError(
                path, f"expected {len(header)} fields as in the header, found {len(row)}", line=number, field=missing
            )
        if not row[name_column].strip() or row[name_column] in names:
            raise ReaderError(
                path,
                f"expected a unique basin name, found {row[name_column]!r}",
                line=number,
                field=header[name_column],
            )
        names.append(row[name_column])
        lines.append(number)
        cells.append([row[j] for j in columns])
    text = pd.Series(np.array(cells, dtype=object).reshape(-1), dtype=object).str.strip()
    empty = text.eq("") | text.str.lower().eq("nan")
    values = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy("float64")
    bad = ~np.isfinite(values) & ~empty.to_numpy()
    if bad.any():
        i, j = divmod(int(np.flatnonzero(bad)[0]), len(months))
        raise ReaderError(
            path,
            f"expected a finite number, found {text.iloc[i * len(months) + j]!r} for basin {names[i]!r}",
            line=lines[i],
            field=header[columns[j]],
        )
    order = np.argsort(np.array(months, dtype="datetime64[ns]"), kind="stable")
    return pd.DataFrame(
        values.reshape(len(names), len(months))[:, order],
        index=pd.Index(names, name="NAME"),
        columns=pd.DatetimeIndex(np.array(months, dtype="datetime64[ns]")[order], name="time"),
    )


def read_basins_dbf(path: str | os.PathLike) -> pd.DataFrame:
    """Attributes of the GRDC major river basins (``basins.dbf``).

    Parameters
    ----------
    path : str or os.PathLike
        dBase file with the fields ``NAME``, ``CONTINENT``, ``OCEAN`` (str) and ``RASTAREA``
        (basin area, km2).

    Returns
    -------
    pandas.DataFrame
        Index ``NAME``; columns ``continent``, ``ocean`` (str), ``area_km2`` (float64).

    Raises
    ------
    ReaderError
        An unreadable file, a missing field or a repeated basin name.

    References
    ----------
    ``dbfread`` (Ole Martin Bjorndalen, MIT); dBase III table format.
    """
    path = Path(path)
    try:
        table = dbfread.DBF(str(path), load=True)
        records = pd.DataFrame(table.records, columns=table.field_names)
    except Exception as exc:  # dbfread raises struct, value and OS errors alike
        raise ReaderError(path, f"expected a dBase table: {type(exc).__name__}: {exc}") from None
    for name in DBF_FIELDS:
        if name not in records.columns:
            raise ReaderError(path, f"expected the fields {', '.join(DBF_FIELDS)}", field=name)
    if records["NAME"].duplicated().any():
        raise ReaderError(
            path, f"repeated basin {records['NAME'][records['NAME'].duplicated()].iloc[0]!r}", field="NAME"
        )
    return pd.DataFrame(
        {
            "continent": records["CONTINENT"].fillna("").astype(str).to_numpy(object),
            "ocean": records["OCEAN"].fillna("").astype(str).to_numpy(object),
            "area_km2": pd.to_numeric(records["RASTAREA"], errors="coerce").astype("float64").to_numpy(),
        },
        index=pd.Index(records["NAME"].astype(str), name="NAME"),
    )


def read_basins_xlsx(path: str | os.PathLike) -> pd.DataFrame:
    """Attributes of the GRDC basins of the ITSG table (``basins.xlsx``, first sheet).

    Parameters
    ----------
    path : str or os.PathLike
        Workbook with the columns ``CATCH_ID``, ``NAME``, ``RASTAREA`` (km2), ``DB_ID``,
        ``SORTING``, ``LATITUDE`` (degrees north, 0.25 degree steps).

    Returns
    -------
    pandas.DataFrame
        Index ``NAME``; columns ``catch_id``, ``db_id`` (str), ``area_km2``, ``latitude`` (float64).

    Raises
    ------
    ReaderError
        An unreadable workbook, a missing column or a repeated basin name.

    References
    ----------
    ``openpyxl`` (MIT), through ``pandas.read_excel``.
    """
    path = Path(path)
    try:
        table = pd.read_excel(path, engine="openpyxl")
    except Exception as exc:  # zip, XML and value errors of a damaged workbook
        raise ReaderError(path, f"expected an xlsx workbook: {type(exc).__name__}: {exc}") from None
    for name in XLSX_COLUMNS:
        if name not in table.columns:
            raise ReaderError(path, f"expected the columns {', '.join(XLSX_COLUMNS)}", line=1, field=name)
    if table["NAME"].duplicated().any():
        raise ReaderError(path, f"repeated basin {table['NAME'][table['NAME'].duplicated()].iloc[0]!r}", field="NAME")
    return pd.DataFrame(
        {
            "catch_id": table["CATCH_ID"].astype(str).to_numpy(object),
            "db_id": table["DB_ID"].astype(str).to_numpy(object),
            "area_km2": pd.to_numeric(table["RASTAREA"], errors="coerce").astype("float64").to_numpy(),
            "latitude": pd.to_numeric(table["LATITUDE"], errors="coerce").astype("float64").to_numpy(),
        },
        index=pd.Index(table["NAME"].astype(str), name="NAME"),
    )


def _stations(names: pd.Index, attributes: pd.DataFrame, network: str, product: str) -> pd.DataFrame:
    n = len(names)
    extra = attributes.reindex(names)
    for column in extra.columns:
        if extra[column].dtype == object:
            extra[column] = extra[column].fillna("")
    return pd.DataFrame(
        {
            "code": names.to_numpy(object),
            "name": names.to_numpy(object),
            "lat": np.full(n, np.nan),
            "lon": np.full(n, np.nan),
            "elevation": np.full(n, np.nan),
            "land_cover": [""] * n,
            "network": [network] * n,
            "source": [SOURCE] * n,
            "location_known": np.zeros(n, dtype=bool),
            "in_metadata": names.isin(attributes.index),
            **{c: extra[c].to_numpy() for c in extra.columns},
        }
    )


# --- reader contract (ingestion/readers/base.py): one IngestRun per product CSV ----------------


def read(path: str | os.PathLike) -> PointData:
    """One product CSV with its basin metadata, as PointData.

    Parameters
    ----------
    path : str or os.PathLike
        A product table (:data:`PRODUCTS`); ``basins.dbf`` (ITSG: ``basins.xlsx``) beside it.

    Returns
    -------
    PointData
        ``stations``: one row per basin of the table: code = name = basin name, lat = lon = NaN
        (no location in the source; extra column ``location_known`` False), elevation NaN,
        land_cover "", network ``GRDC-MRB`` (``GRDC-ITSG`` for ITSG), source
        ``lehmannfa/water_storage_changes results/hydrology``; extra columns
        ``in_metadata`` (bool), ``continent``, ``ocean``, ``area_km2`` (dbf) or ``catch_id``,
        ``db_id``, ``area_km2``, ``latitude`` (xlsx), "" / NaN for basins without a metadata row.
        ``observations``: one row per non-empty cell: variable of :data:`PRODUCTS` (``tws_jpl``,
        ``et_gleam``, ...), time = first day of the month, value float64, units ``mm`` (water
        storage anomaly, uncertainty) or ``mm month-1`` (ET, P, runoff), quality_flag
        ``gap_filled`` for storage values in the 2017-07..2018-05 GRACE/GRACE-FO gap, else "".

    Raises
    ------
    ReaderError
        Any error of :func:`read_table`, :func:`read_basins_dbf`, :func:`read_basins_xlsx`, or a
        missing metadata file.

    References
    ----------
    lehmannfa/water_storage_changes and the product references of the module docstring.
    """
    path = Path(path)
    _, variable, units, network = _product(path)
    table = read_table(path)
    meta = companions(path)[0]
    attributes = read_basins_xlsx(meta) if network == NETWORK_ITSG else read_basins_dbf(meta)
    values = table.to_numpy()
    rows, cols = np.nonzero(~np.isnan(values))
    time = table.columns.to_numpy()[cols]
    flags = np.full(rows.size, "", dtype=object)
    if units == STORAGE:
        flags[(time >= INTER_MISSION_GAP[0].to_datetime64()) & (time <= INTER_MISSION_GAP[1].to_datetime64())] = (
            "gap_filled"
        )
    observations = pd.DataFrame(
        {
            "station": table.index.to_numpy(object)[rows],
            "variable": np.full(rows.size, variable, dtype=object),
            "time": time,
            "value": values[rows, cols],
            "units": np.full(rows.size, units, dtype=object),
            "quality_flag": flags,
            "is_validation": np.zeros(rows.size, dtype=bool),
        }
    )
    return PointData(_stations(table.index, attributes, network, path.stem), observations).validate(path)


def companions(path: str | os.PathLike) -> list[Path]:
    """The basin metadata read with a product CSV: ``basins.dbf`` (``basins.xlsx`` for ITSG).

    Raises
    ------
    ReaderError
        An unknown product file name, or the metadata file is missing.
    """
    path = Path(path)
    network = _product(path)[3]
    meta = path.parent / ("basins.xlsx" if network == NETWORK_ITSG else "basins.dbf")
    if not meta.is_file():
        raise ReaderError(meta, f"missing basin metadata for {path.name}", field="file name")
    return [meta]
