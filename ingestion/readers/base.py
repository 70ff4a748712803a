"""What every point-data reader returns, and the error it raises on bad input (no Django)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


class ReaderError(ValueError):
    """Input that a reader cannot accept, naming the file and, where known, the line and field.

    Parameters
    ----------
    path : str or os.PathLike
        The file (or folder) that was read; its base name starts the message.
    message : str
        What was expected and what was found.
    line : int, optional
        1-based line number in a text file (the header is line 1).
    field : str, optional
        Column, header item or attribute that was wrong.

    Examples
    --------
    >>> str(ReaderError("/x/flux_site_3.cbf", "expected 9 meteorological drivers, found 7", field="nomet"))
    "flux_site_3.cbf: field 'nomet': expected 9 meteorological drivers, found 7"
    """

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None,
                 field: str | None = None):
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = [Path(path).name or str(path)]
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(": ".join([*where, message]))

    def __reduce__(self):  # picklable (e.g. by Celery) despite the extra arguments
        return self.__class__, (self.path, self.message, self.line, self.field)


STATION_COLUMNS = {"code": "str", "name": "str", "lat": "float", "lon": "float", "elevation": "float",
                   "land_cover": "str", "network": "str", "source": "str"}
OBSERVATION_COLUMNS = {"station": "str", "variable": "str", "time": "datetime", "value": "float",
                       "units": "str", "quality_flag": "str", "is_validation": "bool"}


def _check_columns(frame: pd.DataFrame, spec: dict[str, str], path: str, table: str) -> None:
    for name, kind in spec.items():
        if name not in frame.columns:
            raise ReaderError(path, f"{table} table has no column {name!r}", field=f"{table}.{name}")
        col = frame[name]
        ok = {"str": lambda c: pd.api.types.is_string_dtype(c) and not c.isna().any(),
              "float": lambda c: c.dtype == "float64",
              "bool": pd.api.types.is_bool_dtype,
              "datetime": lambda c: c.dtype == "datetime64[ns]"}[kind](col)
        if not ok:
            expected = {"str": "strings without missing values", "float": "float64",
                        "bool": "bool", "datetime": "datetime64[ns] (UTC, timezone-naive)"}[kind]
            raise ReaderError(path, f"expected {expected}, found dtype {col.dtype}", field=f"{table}.{name}")


@dataclass
class PointData:
    """Stations and their observations in long form, as every point reader returns them.

    Attributes
    ----------
    stations : pandas.DataFrame
        One row per station: ``code`` (str, unique), ``name`` (str), ``lat``, ``lon``
        (float64, degrees north/east, WGS84), ``elevation`` (float64, m above sea level, NaN when
        unknown), ``land_cover`` (str, IGBP class or ""), ``network`` (str), ``source`` (str).
    observations : pandas.DataFrame
        One row per value: ``station`` (str, a ``stations.code``), ``variable`` (str),
        ``time`` (datetime64[ns], UTC, timezone-naive), ``value`` (float64, never NaN),
        ``units`` (str, UDUNITS), ``quality_flag`` (str, "" when none), ``is_validation``
        (bool, True for rows held out from training).
    """

    stations: pd.DataFrame
    observations: pd.DataFrame

    def validate(self, path: str | os.PathLike = "PointData") -> PointData:
        """Check columns, dtypes and references; return ``self``.

        Parameters
        ----------
        path : str or os.PathLike
            Source named in the error message.

        Returns
        -------
        PointData
            ``self``, unchanged.

        Raises
        ------
        ReaderError
            A missing column or a column of the wrong dtype (``field`` is ``table.column``),
            latitude/longitude out of range, duplicate station codes, NaN values or observations
            of a station that is not in ``stations``.
        """
        path = str(path)
        _check_columns(self.stations, STATION_COLUMNS, path, "stations")
        _check_columns(self.observations, OBSERVATION_COLUMNS, path, "observations")
        st, obs = self.stations, self.observations
        unknown = st["lat"].isna() & st["lon"].isna()  # a station without a location (e.g. a basin table)
        for name, limit in (("lat", 90), ("lon", 180)):
            bad = ~st[name].between(-limit, limit) & ~unknown
            if bad.any():
                raise ReaderError(path, f"expected degrees in [-{limit}, {limit}], found {st[name][bad].iloc[0]} "
                                        f"at station {st['code'][bad].iloc[0]!r}", field=f"stations.{name}")
        if st["code"].duplicated().any():
            raise ReaderError(path, f"duplicate station code {st['code'][st['code'].duplicated()].iloc[0]!r}",
                              field="stations.code")
        if obs["value"].isna().any():
            raise ReaderError(path, "expected no NaN values (drop missing values)", field="observations.value")
        unknown = set(obs["station"].unique()) - set(st["code"])
        if unknown:
            raise ReaderError(path, f"observations of stations not in the station table: {sorted(unknown)[:5]}",
                              field="observations.station")
        return self


# --- The reader contract --------------------------------------------------------------------
#
# Every module in ingestion/readers/ (no Django imports) exposes:
#
#   READER_VERSION : str
#   FILE_PATTERNS  : tuple of glob patterns ("*.csv", ...) selecting its files below a directory
#   read(path) -> PointData            for point data (stations + long observation table), or
#   open_grid(path) -> xarray.Dataset  for gridded data (CF names, lat/lon/time coordinates, units)
#   companions(path) -> list[Path]     optional: other files read together with ``path`` (their
#                                      checksums are part of the file's IngestRun checksum)
#
# Readers raise ReaderError naming the file, line or field and what was expected.
