"""Shared helpers of the eddy-covariance flux readers (FLUXNET2015, AmeriFlux BASE, REddyProc, ECOSTRESS cal/val).

Everything here is pure (numpy/pandas, no Django):

* physics: :func:`latent_heat_of_vaporization`, :func:`le_to_et`;
* bounded, line-exact text parsing: :func:`read_header_lines` and :func:`read_table` (header size
  limits :data:`MAX_HEADER_BYTES` / :data:`MAX_COLUMNS`, UTF-8 check, required columns, field counts
  per row (:func:`check_field_counts`), -9999 as missing, every error a :class:`~.base.ReaderError`
  naming the file, line and column; the variations of re-saved files accepted as in
  :mod:`~.base`: byte-order mark, any line ends, quoted names, trailing delimiters, extra and
  reordered columns);
* timestamps: :func:`parse_timestamps` (FLUXNET/AmeriFlux ``YYYYMMDDHHMM``, daily ``YYYYMMDD``,
  monthly ``YYYYMM``) and :func:`check_time_order`;
* half-hourly/hourly to daily: :func:`aggregate_daily` (QC filter, coverage threshold) and
  :func:`steps_to_daily` (the same plus daily ET from LE);
* output: :func:`long_table`, :func:`station_table`, :func:`site_from_lookup`, :func:`finish`.

References
----------
Pastorello, G., et al. (2020): The FLUXNET2015 dataset and the ONEFlux processing pipeline for eddy
covariance data. Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3.
Henderson-Sellers, B. (1984): A new formula for latent heat of vaporization of water as a function of
temperature. Q. J. R. Meteorol. Soc. 110, 1186-1190, doi:10.1002/qj.49711046626.
"""
from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .base import BOM, PointData, ReaderError, clean_name, header_names, surplus_is_empty

MISSING = -9999.0
#: Longest header line accepted (bytes). A FLUXNET2015 FULLSET HH header is about 3 kB, an
#: AmeriFlux BASE header a few kB; anything longer is not one of these files and is rejected after
#: reading at most this many bytes per header line.
MAX_HEADER_BYTES = 65_536
#: Most columns accepted in a header (FULLSET HH has about 230).
MAX_COLUMNS = 2_000
#: Longest data line accepted (bytes; a FULLSET HH row is about 2 kB).
MAX_LINE_BYTES = 1 << 24
#: Air temperature (degC) used for the latent heat of vaporization where none was measured.
REFERENCE_TA = 20.0
#: Variables summed (not averaged) by :func:`aggregate_daily`: per-step amounts in mm.
SUM_VARIABLES = ("et", "p")
_TIMESTAMP_FORMATS = {12: "YYYYMMDDHHMM", 8: "YYYYMMDD", 6: "YYYYMM"}


# --- physics ---------------------------------------------------------------------------------------------

def latent_heat_of_vaporization(ta_degc):
    """Latent heat of vaporization of water as a function of air temperature.

    lambda = 1.91846e6 * (T / (T - 33.91))**2 J kg-1, T in kelvin (Henderson-Sellers 1984, eq. 8);
    2.5008e6 J kg-1 at 0 degC, 2.4532e6 J kg-1 at 20 degC (FAO-56's linear 2.501 - 0.002361 T MJ kg-1
    differs by less than 0.3 % between -10 and 40 degC).

    Parameters
    ----------
    ta_degc : float or array_like of float
        Air temperature, degC, any shape; NaN propagates.

    Returns
    -------
    numpy.ndarray or float
        Same shape as ``ta_degc``, float64, J kg-1.

    References
    ----------
    Henderson-Sellers, B. (1984), Q. J. R. Meteorol. Soc. 110, 1186-1190, doi:10.1002/qj.49711046626.
    """
    t = np.asarray(ta_degc, dtype="float64") + 273.15
    return (1.91846e6 * (t / (t - 33.91)) ** 2)[()]


def le_to_et(le_w_m2, ta_degc, seconds):
    """Evapotranspiration over a time step from the latent heat flux.

    ET = LE * seconds / lambda(TA) kg m-2, and 1 kg m-2 of water is 1 mm.

    Parameters
    ----------
    le_w_m2 : float or array_like of float
        Latent heat flux, W m-2 (mean over the step); NaN propagates.
    ta_degc : float or array_like of float
        Air temperature, degC, broadcast against ``le_w_m2`` (see :func:`latent_heat_of_vaporization`).
    seconds : float
        Length of the step, s (1800 for a half-hour, 86400 for a day, 3600 for a rate in mm h-1).

    Returns
    -------
    numpy.ndarray or float
        float64, mm per step (e.g. mm per half-hour for 1800 s, mm d-1 for 86400 s).

    References
    ----------
    Henderson-Sellers (1984), doi:10.1002/qj.49711046626, for lambda.
    """
    return (np.asarray(le_w_m2, dtype="float64") * float(seconds) / latent_heat_of_vaporization(ta_degc))[()]


def ta_for_lambda(ta_degc) -> np.ndarray:
    """Air temperature for :func:`latent_heat_of_vaporization`: ``ta_degc`` with NaN replaced by :data:`REFERENCE_TA`.

    Parameters
    ----------
    ta_degc : array_like of float or None
        Air temperature, degC; None when the file has none.

    Returns
    -------
    numpy.ndarray
        float64, degC (lambda changes by about 0.1 % per kelvin, so a missing temperature costs
        about 1 % of ET at most for 10 K off, rather than the step).
    """
    if ta_degc is None:
        return np.float64(REFERENCE_TA)
    ta = np.asarray(ta_degc, dtype="float64")
    return np.where(np.isnan(ta), REFERENCE_TA, ta)


# --- bounded text parsing ---------------------------------------------------------------------------------

def read_header_lines(path: str | os.PathLike, n: int, *, max_bytes: int = MAX_HEADER_BYTES) -> list[str]:
    """The first ``n`` lines of a text file, read without reading more than about ``n * max_bytes`` bytes.

    Lines end in LF, CRLF or CR (the REddyProc example uses CR); a UTF-8 byte-order mark before the
    first line is dropped.

    Parameters
    ----------
    path : str or os.PathLike
        Text file.
    n : int
        Number of lines wanted (comment lines + column names + units row).
    max_bytes : int, optional
        Longest line accepted, bytes (default :data:`MAX_HEADER_BYTES`).

    Returns
    -------
    list of str
        ``n`` lines without their terminators (and without a byte-order mark).

    Raises
    ------
    ReaderError
        An empty file, a line longer than ``max_bytes`` (named by number), a line that is not UTF-8,
        or fewer than ``n`` lines.
    """
    with open(path, "rb") as fh:
        head = fh.read(n * (max_bytes + 2))
    if not head:
        raise ReaderError(path, "empty file: expected a header line", line=1)
    raw = head.splitlines(keepends=True)
    lines = []
    for i in range(n):
        if i >= len(raw):
            raise ReaderError(path, f"expected {n} header lines, the file ends after {len(raw)}", line=len(raw) + 1)
        line = raw[i].rstrip(b"\r\n")
        complete = raw[i] != line or len(head) < n * (max_bytes + 2)  # ends in a terminator or at EOF
        if i == 0:
            line = line.removeprefix(BOM)
        if len(line) > max_bytes or not complete:
            raise ReaderError(path, f"header line longer than {max_bytes} bytes (MAX_HEADER_BYTES): not a table of "
                                    "this format, rejected before reading it", line=i + 1)
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ReaderError(path, f"expected UTF-8 text, found byte 0x{line[exc.start]:02x} at column "
                                    f"{exc.start + 1}", line=i + 1) from None
    return lines


def split_header(path: str | os.PathLike, text: str, line: int, sep: str) -> list[str]:
    """Column names of a header line (csv quoting honoured, names cleaned by :func:`~.base.header_names`).

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    text : str
        The header line.
    line : int
        Its 1-based line number.
    sep : str
        Field separator.

    Returns
    -------
    list of str
        Column names without quotes or blanks around them; empty names at the end (a trailing
        delimiter) are dropped, an empty name elsewhere becomes ``column_<k>`` (1-based position).

    Raises
    ------
    ReaderError
        More than :data:`MAX_COLUMNS` columns, or a repeated column name.
    """
    names = header_names(next(csv.reader([text], delimiter=sep))) if text else []
    if len(names) > MAX_COLUMNS:
        raise ReaderError(path, f"expected at most {MAX_COLUMNS} columns (MAX_COLUMNS), found {len(names)}", line=line)
    names = [c or f"column_{k + 1}" for k, c in enumerate(names)]
    seen = set()
    for name in names:
        if name in seen:
            raise ReaderError(path, "column name appears twice in the header", line=line, field=name)
        seen.add(name)
    return names


@dataclass
class Table:
    """The selected columns of a delimited text file and where they came from.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    preamble : list of str
        Lines above the column names (e.g. AmeriFlux ``# Site:`` lines).
    columns : list of str
        All column names of the header.
    units : dict
        Column -> unit string of the units row (empty when the file has none).
    header_line : int
        1-based line number of the column names.
    first_line : int
        1-based line number of the first data row; row ``i`` of ``data`` is line ``first_line + i``.
    data : pandas.DataFrame
        The requested columns present in the file: text columns as str (NaN when empty), the others
        float64 with -9999 and empty cells as NaN.
    """

    path: Path
    preamble: list[str]
    columns: list[str]
    units: dict
    header_line: int
    first_line: int
    data: pd.DataFrame = field(repr=False)

    def line(self, i: int) -> int:
        """1-based line number of data row ``i`` (int, 0-based) of :attr:`data`."""
        return self.first_line + int(i)


def first_non_utf8_line(path: str | os.PathLike) -> tuple[int, int]:
    """Line number and byte of the first invalid UTF-8 sequence (streamed in 1 MiB blocks).

    Parameters
    ----------
    path : str or os.PathLike
        Text file (LF, CRLF or CR line ends).

    Returns
    -------
    tuple of int
        (1-based line, byte value), or (0, 0) when the file is valid UTF-8.
    """
    decoder, line, prev_cr = codecs.getincrementaldecoder("utf-8")(), 1, False
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block)
                byte = None
            except UnicodeDecodeError as exc:  # exc.object may start with bytes held over from the last block
                byte, block = exc.object[exc.start], exc.object[:exc.start]
            line += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n") - int(prev_cr and block[:1] == b"\n")
            if byte is not None:
                return line, byte
            prev_cr = block[-1:] == b"\r"
    return 0, 0


def check_field_counts(path: str | os.PathLike, n_fields: int, first_line: int, sep: str,
                       columns: Sequence[str] = ()) -> None:
    """Raise unless every non-empty line from ``first_line`` on has ``n_fields`` fields (streamed, 16 MiB blocks).

    Fields after the ``n_fields``-th are accepted when they are empty (trailing delimiters: ``1,2,3,``).
    Lines holding a double quote are skipped (quoted fields may contain ``sep``; pandas checks those).

    Parameters
    ----------
    path : str or os.PathLike
        Text file (LF, CRLF or CR line ends).
    n_fields : int
        Fields of the header.
    first_line : int
        1-based line of the first data row.
    sep : str
        Field separator.
    columns : sequence of str, optional
        The header's column names: a line with too few fields names the first column it does not reach.

    Raises
    ------
    ReaderError
        The first line with fewer fields (a truncated row; field = the first column missing) or with a
        value beyond the header's fields (a shifted row), or a line longer than :data:`MAX_LINE_BYTES`,
        naming the line.
    """
    sep_b, line_no, carry = sep.encode(), 0, b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 24)
            lines = (carry + block).splitlines(keepends=True)
            # keep an unterminated last line, or one ending in CR that may be half of a CRLF, for the next block
            carry = lines.pop() if block and lines and not lines[-1].endswith(b"\n") else b""
            if len(carry) > MAX_LINE_BYTES:
                raise ReaderError(path, f"expected data lines shorter than {MAX_LINE_BYTES} bytes (MAX_LINE_BYTES)",
                                  line=line_no + len(lines) + 1)
            counts = np.fromiter((line.count(sep_b) for line in lines), dtype=np.int64, count=len(lines)) + 1
            for k in np.flatnonzero(counts != n_fields):  # few: exempt lines above the data, empty or quoted ones
                line, found = lines[k], int(counts[k])
                if line_no + k + 1 < first_line or b'"' in line or not line.strip():
                    continue
                if found > n_fields and line.rstrip(b"\r\n").endswith(sep_b * (found - n_fields)):
                    continue  # trailing delimiters: empty fields
                missing = columns[found] if found < n_fields and found < len(columns) else None
                raise ReaderError(path, f"expected {n_fields} fields as in the header, found {found}"
                                        + (" (the line ends before this column)" if missing else ""),
                                  line=line_no + int(k) + 1, field=missing)
            line_no += len(lines)
            if not block:
                return


def read_table(path: str | os.PathLike, *, sep: str = ",", preamble: int = 0, units_row: bool = False,
               required: Sequence[str] = (), optional: Iterable[str] = (), text: Iterable[str] = (),
               what: str = "table", allow_empty: bool = False) -> Table:
    """Read selected columns of a delimited text file, bounded and with line-exact errors.

    The header (``preamble`` lines, the column names, an optional units row) is read with
    :func:`read_header_lines` (size limits before anything else is read); the data rows are parsed by
    pandas' C parser, only the requested columns.

    Columns are found by name, in any order, among any others; a UTF-8 byte-order mark, quoted names
    and trailing delimiters on any line are accepted (see :mod:`~.base`).

    Parameters
    ----------
    path : str or os.PathLike
        The file (UTF-8; LF, CRLF or CR line ends).
    sep : str, optional
        Field separator.
    preamble : int, optional
        Lines above the column names.
    units_row : bool, optional
        Whether a units row follows the column names.
    required : sequence of str
        Columns that must be present.
    optional : iterable of str
        Columns read when present.
    text : iterable of str
        Columns kept as text (timestamps, codes); all others are parsed as float64.
    what : str, optional
        Name of the format for messages ("FLUXNET2015 CSV", ...).
    allow_empty : bool, optional
        Accept a file without data rows (default False: an error).

    Returns
    -------
    Table

    Raises
    ------
    ReaderError
        Any error of :func:`read_header_lines` / :func:`split_header`; a missing required column
        (field = the column, line = the header line); a units row with a different number of fields;
        a row with fewer fields than the header or a value beyond them (:func:`check_field_counts`;
        line named, and for a short row the first column missing); a non-numeric value (line and
        column named); a byte that is not UTF-8 (line named); no data rows (unless ``allow_empty``).
    """
    path = Path(path)
    lines = read_header_lines(path, preamble + 1 + int(units_row))
    header_line = preamble + 1
    columns = split_header(path, lines[preamble], header_line, sep)
    for name in required:
        if name not in columns:
            shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
            raise ReaderError(path, f"expected column {name!r} in the {what} header; found {len(columns)} columns: "
                                    f"{shown}", line=header_line, field=name)
    units = {}
    if units_row:
        row = [clean_name(u) for u in next(csv.reader([lines[preamble + 1]], delimiter=sep))] \
            if lines[preamble + 1] else []
        if len(row) < len(columns) or not surplus_is_empty(row, len(columns)):
            raise ReaderError(path, f"expected a units row with {len(columns)} fields, found {len(row)}",
                              line=header_line + 1)
        units = dict(zip(columns, row[:len(columns)], strict=True))
    first_line = header_line + 1 + int(units_row)
    wanted = list(dict.fromkeys(c for c in (*required, *optional) if c in columns))
    text = set(text)
    dtypes = {c: (str if c in text else "float64") for c in wanted}
    # pandas ignores surplus fields (trailing delimiters, or a shifted row) when reading some columns: count them
    check_field_counts(path, len(columns), first_line, sep, columns)
    kwargs = dict(sep=sep, header=None, names=columns, usecols=wanted, skiprows=first_line - 1, skip_blank_lines=False,
                  encoding="utf-8", quotechar='"', index_col=False)
    try:
        data = pd.read_csv(path, dtype=dtypes, **kwargs)
    except UnicodeDecodeError:
        line, byte = first_non_utf8_line(path)
        raise ReaderError(path, f"expected UTF-8 text, found byte 0x{byte:02x}", line=line or None) from None
    except pd.errors.ParserError as exc:
        raise ReaderError(path, f"expected {len(columns)} fields per row as in the header: {exc}".strip()) from None
    except ValueError:  # a cell that is not a number: find it
        raw = pd.read_csv(path, dtype=str, **kwargs)
        for c in wanted:
            if c in text:
                continue
            bad = pd.to_numeric(raw[c], errors="coerce").isna() & raw[c].notna()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ReaderError(path, f"expected a number, found {raw[c].iloc[i]!r}", line=first_line + i,
                                  field=c) from None
        raise
    # trailing empty lines are not rows
    filled = data.notna().any(axis=1).to_numpy() if wanted else np.ones(len(data), bool)
    last = int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0
    data = data.iloc[:last].reset_index(drop=True)
    if data.empty and not allow_empty:
        raise ReaderError(path, f"expected data rows below the {what} header, found none", line=first_line)
    for c in wanted:
        if c not in text:
            data[c] = data[c].where(data[c] != MISSING)
    return Table(path, lines[:preamble], columns, units, header_line, first_line, data)


# --- timestamps -------------------------------------------------------------------------------------------

def parse_timestamps(table: Table, column: str, digits: int) -> np.ndarray:
    """Parse a FLUXNET/AmeriFlux timestamp column (``YYYYMMDDHHMM``, ``YYYYMMDD`` or ``YYYYMM``).

    Parameters
    ----------
    table : Table
        From :func:`read_table`, with ``column`` read as text.
    column : str
        Timestamp column (``TIMESTAMP_START``, ``TIMESTAMP_END``, ``TIMESTAMP``).
    digits : {12, 8, 6}
        Expected number of digits.

    Returns
    -------
    numpy.ndarray
        datetime64[ns], one per row, timezone-naive (as stamped in the file).

    Raises
    ------
    ReaderError
        A value that is not ``digits`` digits or not a calendar date/time (line and column named).
    """
    human = _TIMESTAMP_FORMATS[digits]
    text = np.strings.strip(table.data[column].fillna("").to_numpy(dtype=str))
    ok = (np.strings.str_len(text) == digits) & np.strings.isdigit(text)
    v = np.where(ok, text, "0").astype("int64")  # vectorised: about 10x faster than pandas.to_datetime(format=...)
    v = {12: v, 8: v * 10_000, 6: v * 1_000_000 + 10_000}[digits]  # -> YYYYMMDDHHMM (monthly: day 1)
    ymd, hhmm = np.divmod(v, 10_000)
    (year, md), (hour, minute) = np.divmod(ymd, 10_000), np.divmod(hhmm, 100)
    month, day = np.divmod(md, 100)
    month_start = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    date = month_start.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (date.astype("datetime64[M]") == month_start)
    ok &= (hour < 24) & (minute < 60)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        found = table.data[column].iloc[i]
        raise ReaderError(table.path, f"expected a {human} timestamp, found {'nothing' if pd.isna(found) else repr(found)}",
                          line=table.line(i), field=column)
    return date.astype("datetime64[ns]") + (hour * 60 + minute).astype("timedelta64[m]")


def check_time_order(path: str | os.PathLike, times: np.ndarray, lines: np.ndarray, field: str) -> None:
    """Raise unless ``times`` increase strictly.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    times : numpy.ndarray
        datetime64[ns], in file order.
    lines : numpy.ndarray
        1-based line number of each time.
    field : str
        Column named in errors.

    Raises
    ------
    ReaderError
        ``duplicate timestamp`` (equal to the previous row) or ``timestamps out of order`` (earlier
        than the previous row), naming the line and both values.
    """
    if len(times) < 2:
        return
    step = np.diff(times.astype("datetime64[ns]").astype("int64"))
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        now, before = pd.Timestamp(times[i]), pd.Timestamp(times[i - 1])
        if step[bad[0]] == 0:
            raise ReaderError(path, f"duplicate timestamp {now} (also at line {lines[i - 1]})", line=int(lines[i]),
                              field=field)
        raise ReaderError(path, f"timestamps out of order: {now} follows {before} (line {lines[i - 1]}); expected "
                                "increasing times", line=int(lines[i]), field=field)


def check_step(table: Table, start: np.ndarray, end: np.ndarray, step: pd.Timedelta,
               field: str = "TIMESTAMP_END") -> None:
    """Raise unless every interval ``end - start`` equals ``step`` and starts on the ``step`` grid.

    Parameters
    ----------
    table : Table
        For the file name and line numbers.
    start, end : numpy.ndarray
        datetime64[ns] interval bounds per row.
    step : pandas.Timedelta
        Expected interval (30 or 60 minutes).
    field : str, optional
        Column named in errors.

    Raises
    ------
    ReaderError
        The first row whose interval is not ``step`` long or not aligned to it.
    """
    ns = step.value
    bad = ((end - start).astype("int64") != ns) | (start.astype("int64") % ns != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ReaderError(table.path, f"expected {int(step.total_seconds() // 60)}-minute intervals on the clock "
                                      f"grid, found {pd.Timestamp(start[i])} to {pd.Timestamp(end[i])}",
                          line=table.line(i), field=field)


# --- aggregation ------------------------------------------------------------------------------------------

def aggregate_daily(frame: pd.DataFrame, *, min_coverage: float = 0.8, qc_column: str | Mapping[str, str] | None = None,
                    good_qc: Sequence[float] = (0, 1), step: pd.Timedelta | None = None,
                    sums: Sequence[str] = SUM_VARIABLES) -> pd.DataFrame:
    """Daily values of a half-hourly or hourly series, with a QC filter and a coverage threshold.

    A step is *valid* for a column when its value is not NaN and, where the column has a QC column,
    its flag is in ``good_qc``. For each calendar day (of the interval start times, in the time zone
    of the index) the coverage is ``valid steps / steps per day``. Days with coverage below
    ``min_coverage`` get NaN. Otherwise the daily value is the mean of the valid steps, and for the
    amounts in ``sums`` (ET and precipitation in mm per step) that mean times the steps per day,
    i.e. the daily sum in mm d-1, equal to the plain sum at full coverage and not biased low by
    missing steps.

    Parameters
    ----------
    frame : pandas.DataFrame
        DatetimeIndex of interval start times (datetime64, regular ``step``, sorted); one float
        column per variable (NaN where missing) and the QC columns.
    min_coverage : float, optional
        Fraction of a day's steps that must be valid (default 0.8: 39 of 48 half-hours, 20 of 24 hours).
    qc_column : str or mapping, optional
        One QC column for every variable, or ``{variable column: QC column}`` (variables without
        an entry are filtered for NaN only). QC columns are not aggregated.
    good_qc : sequence of float, optional
        Flags that count as good (default (0, 1): FLUXNET2015 measured and good-quality gap-fill).
    step : pandas.Timedelta, optional
        The time step; by default the most common difference of the index. Must divide a day.
    sums : sequence of str, optional
        Columns aggregated as daily sums (default ``("et", "p")``).

    Returns
    -------
    pandas.DataFrame
        Index ``time`` (datetime64[ns], midnight of each day with at least one step); for each
        variable column ``v``: ``v`` (float64, daily mean or sum, NaN below ``min_coverage``) and
        ``v_coverage`` (float64, fraction of valid steps in [0, 1]).

    Raises
    ------
    ValueError
        An index that is not a sorted DatetimeIndex, or a step that does not divide a day.

    References
    ----------
    Pastorello et al. (2020), doi:10.1038/s41597-020-0534-3 (QC flag meanings; daily FLUXNET2015
    values are averages of the half-hours, QC the fraction of measured and good-quality gap-filled ones).
    """
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or not index.is_monotonic_increasing:
        raise ValueError("expected a sorted DatetimeIndex of interval start times")
    if step is None:
        step = pd.Series(np.diff(index.asi8)).mode().iloc[0] if len(index) > 1 else pd.Timedelta("30min").value
        step = pd.Timedelta(step)
    per_day, rest = divmod(pd.Timedelta("1D"), step)
    if rest or per_day < 1:
        raise ValueError(f"a step of {step} does not divide a day")
    qc_map = dict(qc_column) if isinstance(qc_column, Mapping) else {}
    qc_cols = set(qc_map.values()) | ({qc_column} if isinstance(qc_column, str) else set())
    variables = [c for c in frame.columns if c not in qc_cols]
    good_qc = np.asarray(good_qc, dtype="float64")
    values = frame[variables].to_numpy(dtype="float64")
    valid = ~np.isnan(values)
    for k, name in enumerate(variables):
        qc = qc_column if isinstance(qc_column, str) else qc_map.get(name)
        if qc is not None:
            valid[:, k] &= np.isin(frame[qc].to_numpy(dtype="float64"), good_qc)
    day = index.floor("D").rename("time")
    masked = pd.DataFrame(np.where(valid, values, np.nan), columns=variables).groupby(day.to_numpy())
    mean = masked.mean()
    coverage = pd.DataFrame(valid, columns=variables).groupby(day.to_numpy()).sum() / per_day
    out = {}
    for name in variables:
        daily = mean[name] * per_day if name in sums else mean[name]
        out[name] = daily.where(coverage[name] >= min_coverage)
        out[f"{name}_coverage"] = coverage[name].astype("float64")
    result = pd.DataFrame(out)
    result.index = pd.DatetimeIndex(result.index, name="time").astype("datetime64[ns]")
    return result


def steps_to_daily(path: str | os.PathLike, start, values: Mapping[str, object], units: Mapping[str, str], *,
                   step: pd.Timedelta, qc: Mapping[str, object] | None = None, good_qc: Sequence[float] = (0, 1),
                   min_coverage: float = 0.8, le_column: str = "LE") -> tuple[pd.DatetimeIndex, list]:
    """Daily series of a half-hourly/hourly tower record, with daily ET from LE, ready for :func:`long_table`.

    ET per step is ``le_to_et(le, ta, step)`` (mm; lambda at the step's air temperature ``ta``, at
    :data:`REFERENCE_TA` where that is missing) and shares LE's QC; then :func:`aggregate_daily`.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    start : array_like of datetime64
        Interval start times (local standard time of the tower), sorted, on the ``step`` grid.
    values : mapping
        Standard variable name -> float array (NaN where missing); must hold ``le`` (W m-2) and
        may hold ``ta`` (degC).
    units : mapping
        Variable -> UDUNITS units per step (``p`` in mm per step becomes ``mm d-1``).
    step : pandas.Timedelta
        30 or 60 minutes.
    qc : mapping, optional
        Variable -> QC flag array (variables without one are filtered for NaN only).
    good_qc : sequence of float, optional
        Good flags (default measured and good-quality gap-fill, FLUXNET2015 0 and 1).
    min_coverage : float, optional
        See :func:`aggregate_daily`.
    le_column : str, optional
        The file's LE column, named when no day is left.

    Returns
    -------
    tuple
        ``(time, series)``: days (DatetimeIndex, datetime64[ns], local midnight) and a list of
        ``(variable, daily values float64, units, coverage flags)`` including ``et`` (mm d-1).

    Raises
    ------
    ReaderError
        No day with enough valid LE (all -9999, all bad QC, or too sparse).
    """
    qc = dict(qc or {})
    frame = pd.DataFrame({k: np.asarray(v, dtype="float64") for k, v in values.items()},
                         index=pd.DatetimeIndex(np.asarray(start, dtype="datetime64[ns]")))
    frame["et"] = le_to_et(frame["le"].to_numpy(), ta_for_lambda(frame["ta"] if "ta" in frame else None),
                           step.total_seconds())
    if "le" in qc:
        qc["et"] = qc["le"]
    for name, flags in qc.items():
        frame[f"{name}__qc"] = np.asarray(flags, dtype="float64")
    daily = aggregate_daily(frame, min_coverage=min_coverage, qc_column={k: f"{k}__qc" for k in qc},
                            good_qc=good_qc, step=step)
    if not daily["le"].notna().any():
        per_day = pd.Timedelta("1D") // step
        rule = f" with QC in {tuple(good_qc)}" if "le" in qc else ""
        raise ReaderError(path, f"no day left with at least {min_coverage:.0%} of its {per_day} steps of valid "
                                f"{le_column}{rule}: expected some measured latent heat flux", field=le_column)
    all_units = {**units, "et": "mm", "le": units.get("le", "W m-2")}
    series = [(name, daily[name].to_numpy(), "mm d-1" if name in SUM_VARIABLES else all_units[name],
               fraction_flags(daily[f"{name}_coverage"])) for name in (*values, "et")]
    return daily.index, series


def fraction_flags(fraction) -> np.ndarray:
    """Quality flags for fractions of good data: ``"0.958"`` (three decimals), ``""`` for NaN.

    Parameters
    ----------
    fraction : array_like of float
        Fractions in [0, 1] (coverage of valid steps, or FLUXNET2015 DD-MM QC values).

    Returns
    -------
    numpy.ndarray
        object array of str, same length.
    """
    f = np.asarray(fraction, dtype="float64")
    return np.array(["" if np.isnan(x) else f"{x:.3f}" for x in f], dtype=object)


# --- output -----------------------------------------------------------------------------------------------

def long_table(code: str, time, series: Iterable[tuple[str, object, str, object]]) -> pd.DataFrame:
    """Long observation table (see :class:`~.base.PointData`) of one station; NaN values dropped.

    Parameters
    ----------
    code : str
        Station code.
    time : array_like of datetime64
        Time of each row of the series (UTC or as documented by the reader).
    series : iterable of (variable, values, units, flags)
        ``values`` float array_like aligned with ``time``; ``flags`` a str or an array_like of str.

    Returns
    -------
    pandas.DataFrame
        Columns ``station``, ``variable``, ``time`` (datetime64[ns]), ``value`` (float64),
        ``units``, ``quality_flag`` (str), ``is_validation`` (False), grouped by variable.
    """
    time = np.asarray(time, dtype="datetime64[ns]")
    parts = []
    for variable, values, units, flags in series:
        v = np.asarray(values, dtype="float64")
        keep = ~np.isnan(v)
        n = int(keep.sum())
        flags = np.full(len(v), flags, dtype=object) if isinstance(flags, str) else np.asarray(flags, dtype=object)
        parts.append(pd.DataFrame({
            "station": np.full(n, code, dtype=object), "variable": np.full(n, variable, dtype=object),
            "time": time[keep], "value": v[keep], "units": np.full(n, units, dtype=object),
            "quality_flag": flags[keep], "is_validation": np.zeros(n, dtype=bool)}))
    if not parts:
        parts = [pd.DataFrame({"station": [], "variable": [], "time": np.array([], "datetime64[ns]"),
                               "value": np.array([], "float64"), "units": [], "quality_flag": [],
                               "is_validation": np.array([], bool)})]
    out = pd.concat(parts, ignore_index=True)
    for c in ("station", "variable", "units", "quality_flag"):
        out[c] = out[c].astype(object)
    return out


def check_coordinates(path: str | os.PathLike, lat, lon, field: str, line: int | None = None) -> tuple[float, float]:
    """``(lat, lon)`` as floats, or ReaderError naming ``field`` when not in [-90, 90] x [-180, 180].

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    lat, lon : float
        Degrees north / east (WGS84).
    field : str
        Where the coordinates came from (e.g. ``"sites['US-Ha1']"`` or ``"lat"``).
    line : int, optional
        Line of the coordinates in a file.

    Returns
    -------
    tuple of float

    Raises
    ------
    ReaderError
        A non-numeric or out-of-range coordinate.
    """
    for value, name, limit in ((lat, "lat", 90), (lon, "lon", 180)):
        try:
            ok = -limit <= float(value) <= limit
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ReaderError(path, f"expected {name} in degrees in [-{limit}, {limit}], found {value!r}", line=line,
                              field=f"{field}.{name}" if field != name else name)
    return float(lat), float(lon)


def station_table(path: str | os.PathLike, rows: Iterable[Mapping]) -> pd.DataFrame:
    """Station table (see :class:`~.base.PointData`) from dicts with the station columns.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    rows : iterable of mapping
        ``code``, ``lat``, ``lon`` required; ``name`` (default: code), ``elevation`` (m, NaN),
        ``land_cover`` (IGBP, ""), ``network``, ``source``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ReaderError
        Coordinates out of range (see :func:`check_coordinates`).
    """
    out = []
    for r in rows:
        lat, lon = check_coordinates(path, r["lat"], r["lon"], r.get("field", "lat/lon"), r.get("line"))
        elevation = r.get("elevation")
        out.append({"code": str(r["code"]), "name": str(r.get("name") or r["code"]), "lat": lat, "lon": lon,
                    "elevation": np.nan if elevation is None or pd.isna(elevation) else float(elevation),
                    "land_cover": str(r.get("land_cover") or ""), "network": str(r.get("network", "")),
                    "source": str(r.get("source", ""))})
    table = pd.DataFrame(out, columns=["code", "name", "lat", "lon", "elevation", "land_cover", "network", "source"])
    for c in ("code", "name", "land_cover", "network", "source"):
        table[c] = table[c].astype(object)
    for c in ("lat", "lon", "elevation"):
        table[c] = table[c].astype("float64")
    return table


#: Location table of 204 FLUXNET2015 sites shipped with CARDAMOM-FluxVal (Flux_name, LC, Lat, lon),
#: relative to the shared data folder ($SHARED_DATA_DIR).
CARDAMOM_LOCATIONS = Path("cardamom_fluxval") / "location_fluxnet.csv"


def default_locations(path: str | os.PathLike) -> Path | None:
    """The site location table used when a reader is given neither ``sites`` nor ``locations``.

    Looked up in order: ``location_fluxnet.csv`` next to the data file, then
    ``$SHARED_DATA_DIR/cardamom_fluxval/location_fluxnet.csv`` (:data:`CARDAMOM_LOCATIONS`).

    Parameters
    ----------
    path : str or os.PathLike
        The data file.

    Returns
    -------
    pathlib.Path or None
        The first existing file, or None.
    """
    candidates = [Path(path).parent / "location_fluxnet.csv"]
    if os.environ.get("SHARED_DATA_DIR"):
        candidates.append(Path(os.environ["SHARED_DATA_DIR"]) / CARDAMOM_LOCATIONS)
    return next((c for c in candidates if c.is_file()), None)


def site_from_lookup(path: str | os.PathLike, code: str, *, sites: Mapping | None = None,
                     locations: str | os.PathLike | None = None) -> dict:
    """Coordinates and land cover of a tower whose data file carries none (FLUXNET2015, AmeriFlux BASE).

    Parameters
    ----------
    path : str or os.PathLike
        The data file (named in errors; its folder is searched by :func:`default_locations`).
    code : str
        Site code (``CC-XXX``).
    sites : mapping, optional
        ``{code: {"lat": .., "lon": .., "elevation": .. (optional, m), "igbp": .. (optional),
        "name": .. (optional)}}``; takes precedence.
    locations : str or os.PathLike, optional
        CSV in the layout of CARDAMOM-FluxVal's ``location_fluxnet.csv`` (``Flux_name``, ``LC``
        (IGBP), ``Lat``, ``lon``); default :func:`default_locations`.

    Returns
    -------
    dict
        ``code``, ``name``, ``lat``, ``lon``, ``elevation`` (NaN when unknown), ``land_cover``,
        ``field`` and ``line`` (where the coordinates came from).

    Raises
    ------
    ReaderError
        No table given or found, the code is not in it, coordinates out of range, or an error of
        :func:`~.cardamom.read_locations`.
    """
    if sites is not None:
        if code not in sites:
            raise ReaderError(path, f"no coordinates for site {code!r} in the sites mapping given", field="sites")
        s = sites[code]
        return {"code": code, "name": s.get("name", code), "lat": s.get("lat"), "lon": s.get("lon"),
                "elevation": s.get("elevation"), "land_cover": s.get("igbp", s.get("land_cover", "")),
                "field": f"sites[{code!r}]"}
    locations = Path(locations) if locations is not None else default_locations(path)
    if locations is None:
        raise ReaderError(path, f"the file has no coordinates for site {code!r}: pass sites={{code: {{lat, lon}}}} or "
                                f"locations=<csv like $SHARED_DATA_DIR/{CARDAMOM_LOCATIONS.as_posix()}>", field="site")
    from .cardamom import read_locations  # the CARDAMOM-FluxVal location table reader

    table = read_locations(locations)
    match = np.flatnonzero(table["Flux_name"].to_numpy() == code)
    if not match.size:
        raise ReaderError(path, f"no coordinates for site {code!r} in {locations.name} ({len(table)} sites): pass "
                                "sites= or another locations= table", field="site")
    row = table.iloc[int(match[0])]
    return {"code": code, "name": code, "lat": row["Lat"], "lon": row["lon"], "elevation": np.nan,
            "land_cover": row["LC"], "field": locations.name, "line": int(match[0]) + 2}


def finish(path: str | os.PathLike, stations: pd.DataFrame, observations: pd.DataFrame) -> PointData:
    """Validated :class:`~.base.PointData`, observations sorted by station, variable and time.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    stations, observations : pandas.DataFrame
        From :func:`station_table` and :func:`long_table`.

    Returns
    -------
    PointData

    Raises
    ------
    ReaderError
        Any error of :meth:`~.base.PointData.validate`.
    """
    observations = observations.sort_values(["station", "variable", "time"], kind="stable").reset_index(drop=True)
    return PointData(stations.reset_index(drop=True), observations).validate(path)


def location_companions(path: str | os.PathLike) -> list[Path]:
    """Files read together with a FLUXNET2015 or AmeriFlux CSV (reader contract ``companions``).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV.

    Returns
    -------
    list of pathlib.Path
        The location table the reader uses by default (:func:`default_locations`), or [].
    """
    found = default_locations(path)
    return [found] if found is not None else []
