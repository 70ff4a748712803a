"""What every point-data reader returns, the error it raises on bad input, and the text conventions of its files (no Django).

Text files come as published and as re-saved by spreadsheets and editors; every text reader accepts
the same variations through the helpers here (:func:`decode_text`, :func:`clean_name`,
:func:`header_names`, :func:`metadata_text`, :func:`surplus_is_empty`): a UTF-8 byte-order mark,
LF, CRLF or CR line ends, header names in quotes or with blanks around them, a trailing delimiter
on the header, metadata or data lines, extra columns and any column order (columns are found by name).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
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

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = [Path(path).name or str(path)]
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(": ".join([*where, message]))

    def __reduce__(self):  # picklable (e.g. by Celery) despite the extra arguments
        return self.__class__, (self.path, self.message, self.line, self.field)


# --- text conventions shared by the text readers -----------------------------------------------------------

#: The UTF-8 byte-order mark some editors and spreadsheets (Excel's "CSV UTF-8") write first.
BOM = codecs.BOM_UTF8


def line_of_offset(raw: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` of ``raw`` (LF, CRLF or CR line ends).

    Parameters
    ----------
    raw : bytes
        File content.
    offset : int
        0-based byte offset.

    Returns
    -------
    int
        The line holding that byte.
    """
    head = raw[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


def decode_text(path: str | os.PathLike, raw: bytes, *, encoding: str = "utf-8") -> str:
    """Text of a file's bytes without a leading byte-order mark; line ends are kept.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    raw : bytes
        Its content.
    encoding : {"utf-8", "ascii"}, optional
        Expected encoding (a UTF-8 byte-order mark is accepted before either).

    Returns
    -------
    str

    Raises
    ------
    ReaderError
        A byte that is not ``encoding`` text, naming its line.
    """
    body = raw[len(BOM) :] if raw.startswith(BOM) else raw
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        offset = exc.start + len(raw) - len(body)
        raise ReaderError(
            path,
            f"expected {'ASCII' if encoding == 'ascii' else 'UTF-8'} text, found byte 0x{raw[offset]:02x}",
            line=line_of_offset(raw, offset),
        ) from None


def clean_name(text: str) -> str:
    """A header name (or a unit, or a metadata value) as meant: byte-order mark, blanks and enclosing quotes removed.

    Parameters
    ----------
    text : str
        One field of a header line as split (``csv`` quoting already undone where it applied).

    Returns
    -------
    str
        e.g. ``'"LE_F_MDS"'``, ``" LE_F_MDS "`` and ``"\\ufeffLE_F_MDS"`` all give ``"LE_F_MDS"``; a
        doubled quote inside quotes becomes one.
    """
    text = text.lstrip("\ufeff").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].replace(text[0] * 2, text[0]).strip()
    return text


def header_names(fields: Sequence[str]) -> list[str]:
    """Column names of a header line: each cleaned by :func:`clean_name`, empty names at the end dropped.

    Parameters
    ----------
    fields : sequence of str
        The header line split at its delimiter.

    Returns
    -------
    list of str
        The names; a trailing delimiter (``"a,b,"``) adds no column. Empty names elsewhere stay ``""``.
    """
    names = [clean_name(f) for f in fields]
    while names and not names[-1]:
        names.pop()
    return names


def metadata_text(line: str, sep: str) -> str:
    """A metadata or comment line (e.g. AmeriFlux ``# Site: US-Ha1``) without the decoration of a re-save.

    Parameters
    ----------
    line : str
        The line.
    sep : str
        The file's field delimiter.

    Returns
    -------
    str
        ``line`` without a byte-order mark, trailing delimiters and blanks (``"# Site: US-Ha1,,,"``) and
        enclosing quotes (``'"# Site: US-Ha1"'``).
    """
    return clean_name(line.lstrip("\ufeff").strip().rstrip(sep + " \t"))


def surplus_is_empty(fields: Sequence[str], n: int) -> bool:
    """Whether the fields after the first ``n`` are all empty (trailing delimiters, not values).

    Parameters
    ----------
    fields : sequence of str
        A line split at its delimiter.
    n : int
        Fields the header has.

    Returns
    -------
    bool
        True when ``len(fields) <= n`` or every field after the ``n``-th is blank.
    """
    return all(not f.strip() for f in fields[n:])


STATION_COLUMNS = {
    "code": "str",
    "name": "str",
    "lat": "float",
    "lon": "float",
    "elevation": "float",
    "land_cover": "str",
    "network": "str",
    "source": "str",
}
OBSERVATION_COLUMNS = {
    "station": "str",
    "variable": "str",
    "time": "datetime",
    "value": "float",
    "units": "str",
    "quality_flag": "str",
    "is_validation": "bool",
}


def _check_columns(frame: pd.DataFrame, spec: dict[str, str], path: str, table: str) -> None:
    for name, kind in spec.items():
        if name not in frame.columns:
            raise ReaderError(path, f"{table} table has no column {name!r}", field=f"{table}.{name}")
        col = frame[name]
        ok = {
            "str": lambda c: pd.api.types.is_string_dtype(c) and not c.isna().any(),
            "float": lambda c: c.dtype == "float64",
            "bool": pd.api.types.is_bool_dtype,
            "datetime": lambda c: c.dtype == "datetime64[ns]",
        }[kind](col)
        if not ok:
            expected = {
                "str": "strings without missing values",
                "float": "float64",
                "bool": "bool",
                "datetime": "datetime64[ns] (UTC, timezone-naive)",
            }[kind]
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
                raise ReaderError(
                    path,
                    f"expected degrees in [-{limit}, {limit}], found {st[name][bad].iloc[0]} "
                    f"at station {st['code'][bad].iloc[0]!r}",
                    field=f"stations.{name}",
                )
        if st["code"].duplicated().any():
            raise ReaderError(
                path, f"duplicate station code {st['code'][st['code'].duplicated()].iloc[0]!r}", field="stations.code"
            )
        if obs["value"].isna().any():
            raise ReaderError(path, "expected no NaN values (drop missing values)", field="observations.value")
        unknown = set(obs["station"].unique()) - set(st["code"])
        if unknown:
            raise ReaderError(
                path,
                f"observations of stations not in the station table: {sorted(unknown)[:5]}",
                field="observations.station",
            )
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
# Readers raise ReaderError naming the file, line or field and what was expected. Text readers accept
# the variations of the module docstring through its helpers (tables.read_table for delimited tables).
