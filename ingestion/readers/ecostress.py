"""Reader for the ECOSTRESS Collection 2 cal/val tables (PyPI ``ECOv002-calval-tables``) (no Django).

Folder ``ECOv002_calval_tables/``:

* ``combined_eco_flux_EC_filtered.csv`` -- the unit :func:`read` reads: one row per ECOSTRESS
  overpass of a tower (1,065 rows, 63 towers), ``ID`` the tower, ``eco_time_utc`` the overpass
  time (UTC). Tower half-hour around the overpass: ``LE_filt`` (LE after filtering; equal to ``LE``),
  ``LEcorr50`` (LE energy-balance corrected, median closure), ``H_filt``, ``NETRAD_filt``,
  ``G_filt``, ``SW_IN``, ``AirTempC``, ``RH_percentage`` (a *fraction* 0-1 despite its name),
  ``SM_surf``, ``SM_rz`` (m3 m-3). Satellite: ``LST`` (K), ``NDVI``, ``albedo``. Model
  instantaneous LE (W m-2): ``STICinst``, ``BESSinst``, ``MOD16inst``, ``PTJPLSMinst``, ``JET``
  (the median of the four, as the package's ``plot_funcs`` computes it) and ``ETinst`` (PT-JPL
  Collection 1). Gridded meteorology at the tower's pixel, the inputs of the ECOSTRESS models (no tower
  data): ``Ta`` (degC) and ``RH`` (fraction 0-1), the GEOS-5 FP air temperature and relative humidity,
  and ``Rn``, ``Rg`` (W m-2), the ECOSTRESS net radiation and incoming shortwave (global) radiation.
* ``metadata_ebc_filt.csv`` -- the companion: ``Site ID``, ``Name``, ``Lat``, ``Long``, ``Elev`` (m),
  ``Veg`` (IGBP) of 121 towers.
* ``orbit_scene_tile.csv`` -- ECOSTRESS orbit/scene/tile per overpass; not read.

References
----------
Pierrat, Z. A., Purdy, A. J., Halverson, G. H., Fisher, J. B., et al. (2024): Evaluation of ECOSTRESS
Collection 2 evapotranspiration products: strengths and uncertainties for evapotranspiration
modeling. Water Resour. Res., doi:10.1029/2024WR039404. Package ``ECOv002-calval-tables`` 1.13.0
(Apache-2.0; tower data AmeriFlux, CC-BY-4.0), https://github.com/gregory-halverson/ECOv002-calval-tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .base import PointData, ReaderError
from .flux import check_time_order, finish, le_to_et, long_table, station_table
from .tables import read_table

READER_VERSION = "1.1"
FILE_PATTERNS = ("combined_eco_flux_EC_filtered.csv",)
METADATA = "metadata_ebc_filt.csv"
NETWORK = "AmeriFlux"
SOURCE = "ECOv002-calval-tables 1.13.0"
TIME_COLUMN = "eco_time_utc"
# column -> (variable, units, factor); tower and satellite values
OBSERVED = {
    "LE_filt": ("le", "W m-2", 1.0),
    "LEcorr50": ("le_ebc", "W m-2", 1.0),
    "H_filt": ("h", "W m-2", 1.0),
    "NETRAD_filt": ("netrad", "W m-2", 1.0),
    "G_filt": ("g", "W m-2", 1.0),
    "SW_IN": ("sw_in", "W m-2", 1.0),
    "AirTempC": ("ta", "degC", 1.0),
    "RH_percentage": ("rh", "%", 100.0),
    "SM_surf": ("swc", "m3 m-3", 1.0),
    "SM_rz": ("swc_rz", "m3 m-3", 1.0),
    "LST": ("lst", "K", 1.0),
    "NDVI": ("ndvi", "1", 1.0),
    "albedo": ("albedo", "1", 1.0),
}
# column -> (variable, units, factor); gridded meteorology at the tower's pixel (available without a tower). The
# names are those products.generators.et_fusion.GRIDDED_FORCING expects.
GRIDDED = {
    "Ta": ("ta_geos5", "degC", 1.0),
    "RH": ("rh_geos5", "%", 100.0),
    "Rn": ("netrad_ecostress", "W m-2", 1.0),
    "Rg": ("sw_in_ecostress", "W m-2", 1.0),
}
# model column -> suffix of le_<model> / et_<model>
MODELS = {
    "STICinst": "stic",
    "BESSinst": "bess",
    "MOD16inst": "mod16",
    "PTJPLSMinst": "ptjplsm",
    "JET": "jet",
    "ETinst": "ptjpl",
}
# values that mark no retrieval (0 W m-2 in every model on failed scenes) or BESS' cap, dropped as the package's
# quick_look_plots_filt does
FILL_VALUES = {"BESSinst": (0.0, 1000.0), **{c: (0.0,) for c in MODELS if c != "BESSinst"}}
# Rn exactly 0 W m-2 marks the same failed scenes (every model 0 there; a daytime net radiation is never exactly 0)
FILL_VALUES["Rn"] = (0.0,)
# Relative humidity columns hold fractions: above 1.5 the file is in %, an error; otherwise outside [0, 1] the
# value is impossible and dropped.
RH_FRACTIONS = ("RH_percentage", "RH")
RH_UNIT_LIMIT = 1.5
# Incoming shortwave below -SW_NOISE W m-2 is impossible (not sensor or model noise around 0) and dropped.
SHORTWAVE = ("SW_IN", "Rg")
SW_NOISE = 10.0
# Air temperature columns (degC): outside this range the file is in K or corrupt, an error.
AIR_TEMPERATURE = ("AirTempC", "Ta")
TA_RANGE_DEGC = (-90.0, 70.0)
REQUIRED = ("ID", TIME_COLUMN, "LE_filt", "LEcorr50", "Ta", *MODELS)


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``metadata_ebc_filt.csv`` (tower metadata).

    Parameters
    ----------
    path : str or os.PathLike
        CSV with ``Site ID``, ``Name``, ``Lat``, ``Long`` (degrees), ``Elev`` (m), ``Veg`` (IGBP).

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``name``, ``lat``, ``lon``, ``elevation`` (float64, NaN where empty),
        ``land_cover``, ``line`` (1-based line in the file).

    Raises
    ------
    ReaderError
        A missing column, an empty or duplicate Site ID, or coordinates out of range (line named).
    """
    table = read_table(
        path,
        required=("Site ID", "Name", "Lat", "Long", "Elev", "Veg"),
        text=("Site ID", "Name", "Veg"),
        what="ECOSTRESS tower metadata",
    )
    d = table.data
    codes = d["Site ID"].fillna("").str.strip()
    for i in np.flatnonzero((codes == "").to_numpy() | codes.duplicated().to_numpy())[:1]:
        raise ReaderError(
            path, f"expected a unique Site ID, found {codes.iloc[i]!r}", line=table.line(i), field="Site ID"
        )
    for column, limit in (("Lat", 90), ("Long", 180)):
        bad = ~d[column].between(-limit, limit)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ReaderError(
                path,
                f"expected degrees in [-{limit}, {limit}], found {d[column].iloc[i]}",
                line=table.line(i),
                field=column,
            )
    return pd.DataFrame(
        {
            "code": codes,
            "name": d["Name"].fillna(codes),
            "lat": d["Lat"],
            "lon": d["Long"],
            "elevation": d["Elev"],
            "land_cover": d["Veg"].fillna(""),
            "line": table.first_line + np.arange(len(d)),
        }
    )


def plausible(column: str, values: np.ndarray) -> np.ndarray:
    """A column's values with fill values and physically impossible values set to NaN.

    Parameters
    ----------
    column : str
        The CSV column (decides the rule: :data:`FILL_VALUES`, :data:`RH_FRACTIONS`, :data:`SHORTWAVE`).
    values : numpy.ndarray of float, shape (n,)
        The column's values in the file's units (RH as a fraction 0-1, radiation in W m-2).

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        A copy; NaN where the value is a fill value of the column, a relative humidity outside [0, 1],
        or an incoming shortwave below ``-SW_NOISE`` W m-2.
    """
    v = np.asarray(values, dtype="float64").copy()
    drop = np.isin(v, FILL_VALUES.get(column, ()))
    if column in RH_FRACTIONS:
        drop |= (v < 0) | (v > 1)
    if column in SHORTWAVE:
        drop |= v < -SW_NOISE
    v[drop] = np.nan
    return v


def read_ecostress(path: str | os.PathLike, metadata: str | os.PathLike | None = None) -> PointData:
    """Read the ECOSTRESS cal/val overpass table with its tower metadata.

    Parameters
    ----------
    path : str or os.PathLike
        ``combined_eco_flux_EC_filtered.csv``.
    metadata : str or os.PathLike, optional
        ``metadata_ebc_filt.csv``; default: that file next to ``path``.

    Returns
    -------
    PointData
        ``stations``: the towers with overpasses (code = Site ID, name, lat, lon, elevation, IGBP
        ``Veg``; network ``AmeriFlux``, source ``ECOv002-calval-tables 1.13.0``).
        ``observations``: instantaneous values at the overpass time (``eco_time_utc``, UTC),
        quality_flag "":

        * tower (half-hour around the overpass): ``le`` (LE_filt), ``le_ebc`` (LEcorr50), ``h``,
          ``netrad``, ``g``, ``sw_in`` (W m-2), ``ta`` (degC), ``rh`` (%, from the fraction
          RH_percentage), ``swc`` (surface), ``swc_rz`` (root zone) (m3 m-3);
        * satellite: ``lst`` (K), ``ndvi``, ``albedo`` (1);
        * gridded meteorology at the tower's pixel (no tower data; the inputs of the ECOSTRESS models):
          ``ta_geos5`` (degC, Ta) and ``rh_geos5`` (%, from the fraction RH), GEOS-5 FP;
          ``netrad_ecostress`` (Rn) and ``sw_in_ecostress`` (Rg), ECOSTRESS net and incoming shortwave
          radiation (W m-2); Rn = 0 (failed scene, every model 0) dropped;
        * models, LE in W m-2: ``le_stic``, ``le_bess``, ``le_mod16``, ``le_ptjplsm``, ``le_jet``,
          ``le_ptjpl`` (ETinst, PT-JPL Collection 1); values 0 (no retrieval) and BESS 1000 (cap)
          dropped;
        * instantaneous ET rates in mm h-1, ``le_to_et(LE, T, 3600)``, for every LE above:
          ``et``, ``et_ebc``, ``et_stic``, ``et_bess``, ``et_mod16``, ``et_ptjplsm``, ``et_jet``,
          ``et_ptjpl``; T = tower AirTempC, else the ECOSTRESS air temperature ``Ta``.

        Physically impossible values are dropped, as fill values are: relative humidity (RH_percentage,
        RH) outside the fraction range [0, 1], incoming shortwave (SW_IN, Rg) below ``-SW_NOISE``
        (-10 W m-2; smaller negatives are kept as noise around 0).

    Raises
    ------
    ReaderError
        Header over the size limits, non-UTF-8 text, a missing column, an unparsable overpass time,
        a tower with duplicated or out-of-order overpass times, RH_percentage or RH above 1.5 (not a
        fraction), AirTempC or Ta outside -90 to 70 degC (not degC), a tower missing from the metadata,
        or an error of :func:`read_metadata`.

    References
    ----------
    Pierrat et al. (2024), doi:10.1029/2024WR039404.
    """
    path = Path(path)
    metadata = Path(metadata) if metadata is not None else path.with_name(METADATA)
    table = read_table(
        path, required=REQUIRED, optional={**OBSERVED, **GRIDDED}, text=("ID", TIME_COLUMN), what="ECOSTRESS cal/val"
    )
    d = table.data
    codes = d["ID"].fillna("").str.strip()
    raw = d[TIME_COLUMN].astype("string").str.strip()
    time = pd.to_datetime(
        raw.where(raw.str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").fillna(False)),
        format="%Y-%m-%d %H:%M:%S",
        errors="coerce",
    )
    if (bad := np.flatnonzero(time.isna().to_numpy() | (codes == "").to_numpy())).size:
        i = int(bad[0])
        field = "ID" if codes.iloc[i] == "" else TIME_COLUMN
        raise ReaderError(
            path,
            f"expected {'a tower ID' if field == 'ID' else 'a time YYYY-MM-DD HH:MM:SS (UTC)'}, "
            f"found {d[field].iloc[i]!r}",
            line=table.line(i),
            field=field,
        )
    time = time.to_numpy(dtype="datetime64[ns]")
    lines = table.first_line + np.arange(len(d))
    for code in pd.unique(codes):
        rows = np.flatnonzero((codes == code).to_numpy())
        check_time_order(path, time[rows], lines[rows], TIME_COLUMN)
    for column in (c for c in RH_FRACTIONS if c in d):
        if (bad := np.flatnonzero(d[column] > RH_UNIT_LIMIT)).size:
            raise ReaderError(
                path,
                f"expected relative humidity as a fraction 0-1, found {d[column].iloc[bad[0]]}",
                line=table.line(bad[0]),
                field=column,
            )
    for column in (c for c in AIR_TEMPERATURE if c in d):
        low, high = TA_RANGE_DEGC
        if (bad := np.flatnonzero((d[column] < low) | (d[column] > high))).size:
            raise ReaderError(
                path,
                f"expected air temperature in degC ({low:g} to {high:g}), found {d[column].iloc[bad[0]]}",
                line=table.line(bad[0]),
                field=column,
            )
    towers = read_metadata(metadata).set_index("code")
    if (missing := np.flatnonzero(~codes.isin(towers.index).to_numpy())).size:
        i = int(missing[0])
        raise ReaderError(path, f"tower {codes.iloc[i]!r} is not in {metadata.name}", line=table.line(i), field="ID")
    ta = d["AirTempC"].fillna(d["Ta"]).to_numpy() if "AirTempC" in d else d["Ta"].to_numpy()
    frames = []
    for code in pd.unique(codes):
        rows = np.flatnonzero((codes == code).to_numpy())
        series = [
            (var, plausible(c, d[c].to_numpy()[rows]) * factor, units, "")
            for c, (var, units, factor) in {**OBSERVED, **GRIDDED}.items()
            if c in d
        ]
        for c, model in MODELS.items():
            v = d[c].to_numpy()[rows]
            series.append((f"le_{model}", np.where(np.isin(v, FILL_VALUES[c]), np.nan, v), "W m-2", ""))
        for var in ("le", "le_ebc", *(f"le_{m}" for m in MODELS.values())):
            le = next(s[1] for s in series if s[0] == var)
            series.append(("et" + var[2:], le_to_et(le, ta[rows], 3600), "mm h-1", ""))
        frames.append(long_table(code, time[rows], series))
    used = towers.loc[pd.unique(codes)].reset_index()
    stations = station_table(
        metadata,
        [{**row, "network": NETWORK, "source": SOURCE, "field": "Lat/Long"} for row in used.to_dict("records")],
    )
    return finish(path, stations, pd.concat(frames, ignore_index=True))


# --- reader contract (ingestion/readers/base.py) ------------------------------------------------------------


def read(path: str | os.PathLike) -> PointData:
    """The overpass table with its metadata companion, the reader contract's entry point.

    Parameters
    ----------
    path : str or os.PathLike
        ``combined_eco_flux_EC_filtered.csv`` (``metadata_ebc_filt.csv`` next to it).

    Returns
    -------
    PointData
        See :func:`read_ecostress`.

    Raises
    ------
    ReaderError
        See :func:`read_ecostress`.
    """
    return read_ecostress(path)


def companions(path: str | os.PathLike) -> list[Path]:
    """Files read together with the overpass table.

    Parameters
    ----------
    path : str or os.PathLike
        ``combined_eco_flux_EC_filtered.csv``.

    Returns
    -------
    list of pathlib.Path
        ``[metadata_ebc_filt.csv]`` in the same folder.
    """
    return [Path(path).with_name(METADATA)]
