"""Delimited text tables read bounded and with line-exact errors (no Django).

The CSV and tab-separated files of the point readers (FLUXNET2015, AmeriFlux BASE, REddyProc,
ECOSTRESS cal/val, CARDAMOM-FluxVal location and validation tables, ISMN static variables) are read
by :func:`read_table`: header size limits (:data:`MAX_HEADER_BYTES` / :data:`MAX_COLUMNS`) checked
before anything else is read (:func:`read_header_lines`), UTF-8 check, required columns, field counts
per row (:func:`check_field_counts`), -9999 as missing, every error a :class:`~.base.ReaderError`
naming the file, line and column; the variations of re-saved files accepted as in :mod:`~.base`:
byte-order mark, any line ends, quoted names, trailing delimiters, extra and reordered columns.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .base import BOM, ReaderError, clean_name, header_names, surplus_is_empty

MISSING = -9999.0
#: Longest header line accepted (bytes). A FLUXNET2015 FULLSET HH header is about 3 kB, an
#: AmeriFlux BASE header a few kB; anything longer is not one of these files and is rejected after
#: reading at most this many bytes per header line.
MAX_HEADER_BYTES = 65_536
#: Most columns accepted in a header (FULLSET HH has about 230).
MAX_COLUMNS = 2_000
#: Longest data line accepted (bytes; a FULLSET HH row is about 2 kB).
MAX_LINE_BYTES = 1 << 24


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
            raise ReaderError(
                path,
                f"header line longer than {max_bytes} bytes (MAX_HEADER_BYTES): not a table of "
                "this format, rejected before reading it",
                line=i + 1,
            )
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ReaderError(
                path, f"expected UTF-8 text, found byte 0x{line[exc.start]:02x} at column {exc.start + 1}", line=i + 1
            ) from None
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
                byte, block = exc.object[exc.start], exc.object[: exc.start]
            line += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n") - int(prev_cr and block[:1] == b"\n")
            if byte is not None:
                return line, byte
            prev_cr = block[-1:] == b"\r"
    return 0, 0


def check_field_counts(
    path: str | os.PathLike, n_fields: int, first_line: int, sep: str, columns: Sequence[str] = ()
) -> None:
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
                raise ReaderError(
                    path,
                    f"expected data lines shorter than {MAX_LINE_BYTES} bytes (MAX_LINE_BYTES)",
                    line=line_no + len(lines) + 1,
                )
            counts = np.fromiter((line.count(sep_b) for line in lines), dtype=np.int64, count=len(lines)) + 1
            for k in np.flatnonzero(counts != n_fields):  # few: exempt lines above the data, empty or quoted ones
                line, found = lines[k], int(counts[k])
                if line_no + k + 1 < first_line or b'"' in line or not line.strip():
                    continue
                if found > n_fields and line.rstrip(b"\r\n").endswith(sep_b * (found - n_fields)):
                    continue  # trailing delimiters: empty fields
                missing = columns[found] if found < n_fields and found < len(columns) else None
                raise ReaderError(
                    path,
                    f"expected {n_fields} fields as in the header, found {found}"
                    + (" (the line ends before this column)" if missing else ""),
                    line=line_no + int(k) + 1,
                    field=missing,
                )
            line_no += len(lines)
            if not block:
                return


def read_table(
    path: str | os.PathLike,
    *,
    sep: str = ",",
    preamble: int = 0,
    units_row: bool = False,
    required: Sequence[str] = (),
    optional: Iterable[str] = (),
    text: Iterable[str] = (),
    what: str = "table",
    allow_empty: bool = False,
) -> Table:
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
            raise ReaderError(
                path,
                f"expected column {name!r} in the {what} header; found {len(columns)} columns: {shown}",
                line=header_line,
                field=name,
            )
    units = {}
    if units_row:
        row = (
            [clean_name(u) for u in next(csv.reader([lines[preamble + 1]], delimiter=sep))]
            if lines[preamble + 1]
            else []
        )
        if len(row) < len(columns) or not surplus_is_empty(row, len(columns)):
            raise ReaderError(
                path, f"expected a units row with {len(columns)} fields, found {len(row)}", line=header_line + 1
            )
        units = dict(zip(columns, row[: len(columns)], strict=True))
    first_line = header_line + 1 + int(units_row)
    wanted = list(dict.fromkeys(c for c in (*required, *optional) if c in columns))
    text = set(text)
    dtypes = {c: (str if c in text else "float64") for c in wanted}
    # pandas ignores surplus fields (trailing delimiters, or a shifted row) when reading some columns: count them
    check_field_counts(path, len(columns), first_line, sep, columns)
    kwargs = dict(
        sep=sep,
        header=None,
        names=columns,
        usecols=wanted,
        skiprows=first_line - 1,
        skip_blank_lines=False,
        encoding="utf-8",
        quotechar='"',
        index_col=False,
    )
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
                raise ReaderError(
                    path, f"expected a number, found {raw[c].iloc[i]!r}", line=first_line + i, field=c
                ) from None
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
