"""Reader for CARDAMOM-FluxVal v1.0: monthly drivers and targets at 204 FLUXNET2015 towers (no Django).

Folder layout (as distributed with CARDAMOM v2.2)::

    location_fluxnet.csv            Flux_name, LC (IGBP), Lat, lon, flux_site; row N <-> flux_site_N.cbf
    cbf_files/flux_site_N.cbf       CARDAMOM binary driver file (layout: :func:`read_cbf`)
    validation_data/validation_<site>.csv   held-out months: ID, Date (YYYYMM), GPP, NEE, ET

The two CSVs are read with the delimited-table reader of the point readers (:func:`~.tables.read_table`):
columns by name in any order among others, a byte-order mark, any line ends, quoted names and
trailing delimiters accepted, and a bad value, a short line or a missing column named by line and field.

References
----------
Yang, Y., Bloom, A. A., Ma, S., et al.: CARDAMOM-FluxVal Version 1.0: a FLUXNET-based validation
system for CARDAMOM carbon and water flux estimates, in prep. for Geosci. Model Dev. Discuss.
Pastorello, G., et al. (2020): The FLUXNET2015 dataset and the ONEFlux processing pipeline for eddy
covariance data. Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .base import PointData, ReaderError
from .tables import read_table

READER_VERSION = "1.0"
NETWORK = "FLUXNET2015"
SOURCE = "CARDAMOM-FluxVal v1.0"
MISSING = -9999.0
N_HEADER = 300  # 100 static values, 100 parameter priors, 100 prior uncertainties
START = pd.Timestamp("2001-01-01")  # time step 0
MET_COLUMNS = ("time_days", "tmin_C", "tmax_C", "ssrd_MJm2d", "co2_ppm", "doy", "burned_area", "vpd_hPa", "precip_mmd")
OBS_COLUMNS = ("GPP", "LAI", "NBE", "ABGB", "ET")  # the first five observation columns
# cbf column -> (variable, UDUNITS units) in the long table; time_days and doy are dropped
VARIABLES = {
    "tmin_C": ("tmin", "degC"),
    "tmax_C": ("tmax", "degC"),
    "ssrd_MJm2d": ("ssrd", "MJ m-2 d-1"),
    "co2_ppm": ("co2", "ppm"),
    "burned_area": ("burned_area", "1"),
    "vpd_hPa": ("vpd", "hPa"),
    "precip_mmd": ("precip", "mm d-1"),
    "GPP": ("gpp", "g m-2 d-1"),
    "LAI": ("lai", "m2 m-2"),
    "NBE": ("nbe", "g m-2 d-1"),
    "ABGB": ("abgb", "g m-2"),
    "ET": ("et", "mm d-1"),
}
VALIDATION_VARIABLES = {"GPP": ("gpp", "g m-2 d-1"), "NEE": ("nee", "g m-2 d-1"), "ET": ("et", "mm d-1")}
LOCATION_COLUMNS = ("Flux_name", "LC", "Lat", "lon", "flux_site")
IGBP = {
    "ENF",
    "EBF",
    "DNF",
    "DBF",
    "MF",
    "CSH",
    "OSH",
    "WSA",
    "SAV",
    "GRA",
    "WET",
    "CRO",
    "URB",
    "CVM",
    "SNO",
    "BSV",
    "WAT",
}
# FLUXNET2015 renamed Greenland (GL-) and Svalbard (SJ-) towers; their validation files keep the old codes.
LEGACY_COUNTRY = {"GL": "DK", "SJ": "NO"}


@dataclass
class CbfFile:
    """One decoded ``.cbf`` file.

    Attributes
    ----------
    path : str
        The file read.
    header : dict
        ``id`` (CARDAMOM model id), ``lat`` (degrees north, centre of the 0.5 degree cell),
        ``n_steps``, ``nomet``, ``noobs`` (int), and the raw float64 arrays ``static``,
        ``priors`` and ``prior_uncertainties`` (100 values each, -9999 kept as is).
    met : pandas.DataFrame
        Index ``time`` (datetime64[ns], first day of each month from 2001-01); columns
        :data:`MET_COLUMNS` (float64; NaN where the file holds -9999).
    obs : pandas.DataFrame
        Same index; columns :data:`OBS_COLUMNS` then ``obs_6`` ... ``obs_<noobs>`` for the
        columns without a documented mapping (float64; NaN where missing).
    """

    path: str
    header: dict
    met: pd.DataFrame
    obs: pd.DataFrame


@functools.lru_cache(maxsize=8)
def month_starts(n: int) -> pd.DatetimeIndex:
    """First day of the month of the cbf time steps.

    Parameters
    ----------
    n : int
        Number of monthly time steps; step 0 is 2001-01.

    Returns
    -------
    pandas.DatetimeIndex
        datetime64[ns], length ``n``, named ``time`` (cached: do not modify).
    """
    return pd.date_range(START, periods=n, freq="MS", name="time").astype("datetime64[ns]")


def read_cbf(path: str | os.PathLike) -> CbfFile:
    """Decode a CARDAMOM binary forcing file (``.cbf``).

    Layout: little-endian float64; 300 header values (static data ``[0]`` id, ``[1]`` latitude,
    ``[2]`` number of time steps n, ``[3]`` nomet, ``[4]`` noobs, ...; 100 parameter priors; 100
    prior uncertainties), then for each monthly time step ``nomet`` driver values followed by
    ``noobs`` observation values. -9999 marks a missing value.

    Parameters
    ----------
    path : str or os.PathLike
        A ``flux_site_N.cbf`` file.

    Returns
    -------
    CbfFile
        Header, drivers (:data:`MET_COLUMNS`: days since 2001-01-01, degC, degC, MJ m-2 d-1, ppm,
        day of year, burned fraction, hPa, mm d-1) and observations (GPP gC m-2 d-1, LAI m2 m-2,
        NBE gC m-2 d-1, ABGB gC m-2, ET mm d-1), one row per month.

    Raises
    ------
    ReaderError
        The file is shorter than the header, the header counts are not positive integers,
        ``nomet`` is not 9, ``noobs`` is below 5, the size is not ``8 * (300 + n * (nomet + noobs))``
        bytes, or the latitude is outside [-90, 90].

    References
    ----------
    CARDAMOM v2.2 binary driver format (CARDAMOM: Bloom et al., 2016, PNAS 113, 1285-1290,
    doi:10.1073/pnas.1515160113); column order checked against the lossless decode
    ``DERIVED_cbf_decoded_monthly_long.csv.gz`` shipped with the data.
    """
    path = Path(path)
    size = path.stat().st_size
    if size < 8 * N_HEADER:
        raise ReaderError(path, f"expected at least {8 * N_HEADER} bytes of header, found {size} bytes", field="header")
    values = np.fromfile(path, dtype="<f8")
    static = values[:100]
    counts = {}
    for index, name in ((2, "n_steps"), (3, "nomet"), (4, "noobs")):
        v = static[index]
        if not (v > 0 and v == int(v)):
            raise ReaderError(path, f"expected a positive integer at header[{index}], found {v}", field=name)
        counts[name] = int(v)
    n, nomet, noobs = counts["n_steps"], counts["nomet"], counts["noobs"]
    if nomet != len(MET_COLUMNS):
        raise ReaderError(path, f"expected {len(MET_COLUMNS)} meteorological drivers, found {nomet}", field="nomet")
    if noobs < len(OBS_COLUMNS):
        raise ReaderError(
            path, f"expected at least {len(OBS_COLUMNS)} observation columns, found {noobs}", field="noobs"
        )
    expected = 8 * (N_HEADER + n * (nomet + noobs))
    if size != expected:
        raise ReaderError(
            path,
            f"expected {expected} bytes for {n} time steps x ({nomet} drivers + {noobs} "
            f"observations), found {size} bytes",
            field="n_steps",
        )
    if not -90 <= static[1] <= 90:
        raise ReaderError(path, f"expected a latitude in [-90, 90], found {static[1]}", field="lat")
    data = values[N_HEADER:].reshape(n, nomet + noobs)
    data = np.where(data == MISSING, np.nan, data)
    time = month_starts(n)
    obs_names = [*OBS_COLUMNS, *(f"obs_{k + 1}" for k in range(len(OBS_COLUMNS), noobs))]
    header = {
        "id": int(static[0]),
        "lat": float(static[1]),
        **counts,
        "static": static.copy(),
        "priors": values[100:200].copy(),
        "prior_uncertainties": values[200:300].copy(),
    }
    return CbfFile(
        str(path),
        header,
        pd.DataFrame(data[:, :nomet], index=time, columns=list(MET_COLUMNS)),
        pd.DataFrame(data[:, nomet:], index=time, columns=obs_names),
    )


def read_locations(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``location_fluxnet.csv`` (row N describes ``flux_site_N.cbf``).

    Parameters
    ----------
    path : str or os.PathLike
        CSV with columns ``Flux_name`` (FLUXNET site code), ``LC`` (IGBP class), ``Lat``
        (degrees north), ``lon`` (degrees east), ``flux_site``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LOCATION_COLUMNS` (``Lat``, ``lon`` float64, the others str), index 0..N-1
        (row N of the table is index N-1; other columns of the file are not read).

    Raises
    ------
    ReaderError
        A missing column, a duplicate or empty site code, a non-numeric or out-of-range
        coordinate, an unknown IGBP class, or an error of :func:`~.tables.read_table` (the message
        names the line and column).
    """
    table = read_table(
        path, required=LOCATION_COLUMNS, text=("Flux_name", "LC", "flux_site"), what="CARDAMOM-FluxVal location table"
    )
    data = table.data
    for name in ("Flux_name", "LC", "flux_site"):
        data[name] = data[name].fillna("").astype(object)
    for name, limit in (("Lat", 90), ("lon", 180)):
        bad = ~data[name].between(-limit, limit)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ReaderError(
                path,
                f"expected degrees in [-{limit}, {limit}], found {data[name][i]!r}",
                line=table.line(i),
                field=name,
            )
    for i, (code, lc) in enumerate(zip(data["Flux_name"], data["LC"], strict=True)):
        if not code.strip():
            raise ReaderError(path, "expected a site code, found an empty value", line=table.line(i), field="Flux_name")
        if lc not in IGBP:
            raise ReaderError(path, f"expected an IGBP land-cover class, found {lc!r}", line=table.line(i), field="LC")
    duplicated = data["Flux_name"].duplicated()
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        raise ReaderError(path, f"duplicate site code {data['Flux_name'][i]!r}", line=table.line(i), field="Flux_name")
    return data[list(LOCATION_COLUMNS)]


def read_validation(path: str | os.PathLike, n_steps: int | None = None) -> pd.DataFrame:
    """Read a ``validation_<site>.csv`` file of held-out months.

    Parameters
    ----------
    path : str or os.PathLike
        CSV with columns ``ID`` (1-based month index from 2001-01), ``Date`` (YYYYMM), ``GPP``
        and ``NEE`` (gC m-2 d-1), ``ET`` (mm d-1); "NaN" or -9999 where missing.
    n_steps : int, optional
        Number of time steps of the site's cbf file; IDs beyond it are rejected.

    Returns
    -------
    pandas.DataFrame
        Columns ``time`` (datetime64[ns], first day of the month), ``GPP``, ``NEE``, ``ET``
        (float64, NaN where missing).

    Raises
    ------
    ReaderError
        A missing column (line 1), a non-integer or out-of-range ID, a Date that is not YYYYMM, an
        ID that disagrees with its Date, a repeated month, a non-numeric value or a short line
        (naming the line and column).
    """
    read = read_table(
        path,
        required=("ID", "Date", *VALIDATION_VARIABLES),
        text=("ID", "Date"),
        what="CARDAMOM-FluxVal validation",
        allow_empty=True,
    )
    table, first = read.data, read.first_line
    ids = pd.to_numeric(table["ID"], errors="coerce").to_numpy(dtype="float64")
    yyyymm = pd.to_numeric(table["Date"], errors="coerce").to_numpy(dtype="float64")
    month = yyyymm % 100
    step = (yyyymm // 100 - START.year) * 12 + month - 1
    checks = (
        (
            "ID",
            ~((ids >= 1) & (ids == np.round(ids)) & (ids <= (n_steps or np.inf))),
            lambda i: f"expected a month index in 1..{n_steps or 'n'}, found {table['ID'][i]!r}",
        ),
        (
            "Date",
            ~((yyyymm == np.round(yyyymm)) & (month >= 1) & (month <= 12) & (yyyymm >= 100001)),
            lambda i: f"expected YYYYMM, found {table['Date'][i]!r}",
        ),
        (
            "Date",
            step != ids - 1,
            lambda i: f"ID {int(ids[i])} is month "
            f"{START + pd.DateOffset(months=int(ids[i]) - 1):%Y%m}, but Date is "
            f"{table['Date'][i]}",
        ),
        ("Date", pd.Series(step).duplicated().to_numpy(), lambda i: f"month {table['Date'][i]} appears twice"),
    )
    for field, bad, message in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ReaderError(path, message(i), line=first + i, field=field)
    time = np.datetime64(START.strftime("%Y-%m"), "M") + step.astype("int64")
    out = pd.DataFrame({"time": time.astype("datetime64[ns]")})
    for name in VALIDATION_VARIABLES:  # numbers, NaN where the file has NaN, -9999 or nothing
        out[name] = table[name].to_numpy(dtype="float64")
    return out


def validation_path(folder: str | os.PathLike, code: str) -> Path:
    """``validation_<code>.csv`` in ``folder``, or the file under the pre-FLUXNET2015 code.

    Greenland (``GL-``) and Svalbard (``SJ-``) towers are named ``DK-`` and ``NO-`` in the
    validation folder (e.g. ``GL-ZaH`` -> ``validation_DK-ZaH.csv``).

    Parameters
    ----------
    folder : str or os.PathLike
        The ``validation_data`` folder.
    code : str
        FLUXNET2015 site code.

    Returns
    -------
    pathlib.Path
        The existing file.

    Raises
    ------
    ReaderError
        Neither file exists.
    """
    folder = Path(folder)
    candidates = [folder / f"validation_{code}.csv"]
    if code[:2] in LEGACY_COUNTRY:
        candidates.append(folder / f"validation_{LEGACY_COUNTRY[code[:2]]}{code[2:]}.csv")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ReaderError(
        folder, f"no validation file for site {code!r} (tried {', '.join(c.name for c in candidates)})", field=code
    )


def _long(code: str, time: np.ndarray, frame: pd.DataFrame, names: dict, is_validation: bool) -> dict:
    """Long-form columns of the mapped variables of ``frame`` with missing values dropped."""
    cols = [c for c in frame.columns if c in names]
    values = frame[cols].to_numpy(dtype="float64")
    keep = ~np.isnan(values)
    rows, col_index = np.nonzero(keep)  # row-major: grouped by time step
    var = np.array([names[c][0] for c in cols], dtype=object)
    units = np.array([names[c][1] for c in cols], dtype=object)
    n = rows.size
    return {
        "station": np.full(n, code, dtype=object),
        "variable": var[col_index],
        "time": time[rows],
        "value": values[rows, col_index],
        "units": units[col_index],
        "quality_flag": np.full(n, "", dtype=object),
        "is_validation": np.full(n, is_validation),
    }


def site_observations(code: str, cbf: CbfFile, validation: pd.DataFrame | None) -> pd.DataFrame:
    """Long table (see :class:`PointData`) of one site's cbf drivers and targets and validation rows.

    Parameters
    ----------
    code : str
        FLUXNET site code for the ``station`` column.
    cbf : CbfFile
        From :func:`read_cbf`.
    validation : pandas.DataFrame or None
        From :func:`read_validation`; its rows get ``is_validation=True``.

    Returns
    -------
    pandas.DataFrame
        Variables and units of :data:`VARIABLES` (cbf) and :data:`VALIDATION_VARIABLES`; missing
        values skipped; ``time_days`` and ``doy`` dropped.

    Raises
    ------
    ReaderError
        An observation column without a documented mapping (``obs_6`` ...) holds data.
    """
    for name in cbf.obs.columns[len(OBS_COLUMNS) :]:
        found = int(cbf.obs[name].notna().sum())
        if found:
            raise ReaderError(
                cbf.path,
                f"expected only missing values in an observation column without a "
                f"documented variable, found {found} values",
                field=name,
            )
    time = cbf.met.index.to_numpy()
    parts = [_long(code, time, cbf.met, VARIABLES, False), _long(code, time, cbf.obs, VARIABLES, False)]
    if validation is not None:
        parts.append(_long(code, validation["time"].to_numpy(), validation, VALIDATION_VARIABLES, True))
    return pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def _check_site(cbf: CbfFile, row: pd.Series, location_path: Path, line: int) -> None:
    if abs(cbf.header["lat"] - row["Lat"]) > 0.5:
        raise ReaderError(
            cbf.path,
            f"latitude {cbf.header['lat']} (0.5 degree cell centre) is more than 0.5 "
            f"degrees from {row['Flux_name']} at {row['Lat']} ({location_path.name} line "
            f"{line}): the file does not belong to that site",
            field="lat",
        )


def _stations(locations: pd.DataFrame) -> pd.DataFrame:
    n = len(locations)
    return pd.DataFrame(
        {
            "code": locations["Flux_name"].astype(object),
            "name": locations["Flux_name"].astype(object),
            "lat": locations["Lat"].astype("float64"),
            "lon": locations["lon"].astype("float64"),
            "elevation": np.full(n, np.nan),
            "land_cover": locations["LC"].astype(object),
            "network": [NETWORK] * n,
            "source": [SOURCE] * n,
        }
    ).reset_index(drop=True)


def _finish(stations: pd.DataFrame, frames: list[pd.DataFrame], path: Path) -> PointData:
    obs = pd.concat(frames, ignore_index=True)
    obs["time"] = obs["time"].astype("datetime64[ns]")
    obs["is_validation"] = obs["is_validation"].astype(bool)
    return PointData(stations, obs).validate(path)


def read_cardamom_site(cbf_path: str | os.PathLike, root: str | os.PathLike | None = None) -> PointData:
    """Read one ``flux_site_N.cbf`` with its location row and validation file.

    Parameters
    ----------
    cbf_path : str or os.PathLike
        ``.../cbf_files/flux_site_N.cbf``.
    root : str or os.PathLike, optional
        Folder holding ``location_fluxnet.csv`` and ``validation_data/``; defaults to the parent
        of the cbf folder.

    Returns
    -------
    PointData
        One station and its observations (see :func:`read_cardamom`).

    Raises
    ------
    ReaderError
        The file name has no site number, the number has no row in ``location_fluxnet.csv``, the
        latitude does not match, or any error of :func:`read_cbf`, :func:`read_validation`.
    """
    cbf_path = Path(cbf_path)
    root = Path(root) if root is not None else cbf_path.parent.parent
    stem = cbf_path.stem
    if not (stem.startswith("flux_site_") and stem[10:].isdigit()):
        raise ReaderError(cbf_path, "expected a file name flux_site_<N>.cbf", field="file name")
    number = int(stem[10:])
    locations = read_locations(root / "location_fluxnet.csv")
    if not 1 <= number <= len(locations):
        raise ReaderError(
            root / "location_fluxnet.csv",
            f"no row {number} for {cbf_path.name} ({len(locations)} sites)",
            field="Flux_name",
        )
    row = locations.iloc[number - 1]
    cbf = read_cbf(cbf_path)
    _check_site(cbf, row, root / "location_fluxnet.csv", number + 1)
    code = row["Flux_name"]
    validation = read_validation(validation_path(root / "validation_data", code), cbf.header["n_steps"])
    return _finish(_stations(locations.iloc[[number - 1]]), [site_observations(code, cbf, validation)], cbf_path)


def read_cardamom(path: str | os.PathLike) -> PointData:
    """Read the whole CARDAMOM-FluxVal v1.0 folder.

    Parameters
    ----------
    path : str or os.PathLike
        Folder with ``location_fluxnet.csv``, ``cbf_files/`` and ``validation_data/``.

    Returns
    -------
    PointData
        ``stations``: one row per line of ``location_fluxnet.csv`` (code and name = Flux_name,
        tower lat/lon in degrees, elevation NaN, land_cover = IGBP class ``LC``, network
        ``FLUXNET2015``, source ``CARDAMOM-FluxVal v1.0``).
        ``observations``: monthly values (time = first day of the month, 2001-01 + step) of
        ``tmin``, ``tmax`` (degC), ``ssrd`` (MJ m-2 d-1), ``co2`` (ppm), ``burned_area`` (1),
        ``vpd`` (hPa), ``precip`` (mm d-1), ``gpp``, ``nbe`` (gC m-2 d-1, units "g m-2 d-1"),
        ``lai`` (m2 m-2), ``abgb`` (gC m-2), ``et`` (mm d-1) from the cbf files with
        ``is_validation=False``, and the held-out ``gpp``, ``nee`` (g m-2 d-1), ``et``
        (mm d-1) of the validation files with ``is_validation=True``. Missing values are skipped;
        ``quality_flag`` is "".

    Raises
    ------
    ReaderError
        A missing file or any error of :func:`read_locations`, :func:`read_cbf`,
        :func:`read_validation`, or a cbf latitude more than 0.5 degrees from its tower.
    """
    path = Path(path)
    locations = read_locations(path / "location_fluxnet.csv")
    frames = []
    for i, row in locations.iterrows():
        cbf_path = path / "cbf_files" / f"flux_site_{i + 1}.cbf"
        if not cbf_path.is_file():
            raise ReaderError(
                cbf_path,
                f"missing driver file for {row['Flux_name']} (location_fluxnet.csv line {i + 2})",
                field="flux_site",
            )
        cbf = read_cbf(cbf_path)
        _check_site(cbf, row, path / "location_fluxnet.csv", i + 2)
        validation = read_validation(validation_path(path / "validation_data", row["Flux_name"]), cbf.header["n_steps"])
        frames.append(site_observations(row["Flux_name"], cbf, validation))
    return _finish(_stations(locations), frames, path)


# --- reader contract (ingestion/readers/base.py): one IngestRun per site file -----------------
FILE_PATTERNS = ("flux_site_*.cbf",)


def read(path: str | os.PathLike) -> PointData:
    """One ``flux_site_N.cbf`` with its location row and held-out validation file (see :func:`read_cardamom_site`)."""
    return read_cardamom_site(path)


def companions(path: str | os.PathLike) -> list[Path]:
    """The files read together with a ``flux_site_N.cbf``: ``location_fluxnet.csv`` and the site's validation CSV.

    Raises
    ------
    ReaderError
        The file name has no site number or the number has no row in ``location_fluxnet.csv``.
    """
    path = Path(path)
    root = path.parent.parent
    locations = root / "location_fluxnet.csv"
    stem = path.stem
    if not (stem.startswith("flux_site_") and stem[10:].isdigit()):
        raise ReaderError(path, "expected a file name flux_site_<N>.cbf", field="file name")
    table = read_locations(locations)
    number = int(stem[10:])
    if not 1 <= number <= len(table):
        raise ReaderError(locations, f"no row {number} for {path.name} ({len(table)} sites)", field="Flux_name")
    validation = validation_path(root / "validation_data", table.iloc[number - 1]["Flux_name"])
    return [locations, *([validation] if validation.exists() else [])]
