"""PostgreSQL binary ``COPY`` rows built with NumPy, without formatting values as text (pure: no Django).

The binary COPY format (PostgreSQL documentation, "COPY", section "Binary Format") is a signature,
then per row a 16-bit field count and per field a 32-bit length and the value in the type's binary
send format (network byte order), then a 16-bit -1 trailer. Rows whose text fields are the same have
the same layout, so the rows are grouped by their text values (a few variables, units and quality
flags per file) and each group is one NumPy structured array written with ``tobytes``: no Python
loop over rows, and no float or timestamp formatting on either side. Rows keep their order where runs
of one layout are long (most files: one station and variable after another); otherwise they come out
grouped by layout (in order of first appearance), in their order within a layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in microseconds since 1970-01-01

# binary send formats of the fixed-width types: (NumPy dtype, byte width)
FIXED = {"int8": (">i8", 8), "float8": (">f8", 8), "bool": ("u1", 1), "timestamptz": (">i8", 8)}


@dataclass(frozen=True)
class Column:
    """One column of the COPY: its PostgreSQL type and its values.

    Attributes
    ----------
    name : str
        Column name (for error messages).
    pgtype : str
        ``int8``, ``float8``, ``bool``, ``timestamptz`` or ``text`` (also for ``varchar``).
    values : numpy.ndarray or pandas.Series, shape (n,)
        ``int8``: integers; ``float8``: floats; ``bool``: booleans; ``timestamptz``: datetime64
        (timezone-naive, UTC); ``text``: str objects (``None``/NaN are written as "").
    """

    name: str
    pgtype: str
    values: np.ndarray | pd.Series


def _fixed(column: Column) -> np.ndarray:
    values = np.asarray(column.values)
    if column.pgtype == "timestamptz":
        if not np.issubdtype(values.dtype, np.datetime64):
            raise ValueError(f"column {column.name}: expected datetime64 values, found {values.dtype}")
        if np.isnat(values).any():
            raise ValueError(f"column {column.name}: expected no missing times (NaT)")
        return values.astype("datetime64[us]").astype(np.int64) - POSTGRES_EPOCH_US
    if column.pgtype == "int8":
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"column {column.name}: expected integers, found {values.dtype}")
        return values.astype(np.int64, copy=False)
    if column.pgtype == "float8":
        return values.astype(np.float64, copy=False)
    if column.pgtype == "bool":
        if values.dtype != bool:
            raise ValueError(f"column {column.name}: expected booleans, found {values.dtype}")
        return values.astype(np.uint8)
    raise ValueError(f"column {column.name}: unsupported type {column.pgtype!r}")


def binary_copy(columns: Sequence[Column], *, block_rows: int = 1 << 18) -> Iterator[bytes]:
    """The whole binary COPY stream of the given columns, in blocks.

    Parameters
    ----------
    columns : sequence of Column, all of the same length n
        In the order of the ``COPY table (col, ...)`` column list.
    block_rows : int
        At most this many rows per block (bounds the memory of one block).

    Yields
    ------
    bytes
        The signature, the rows (grouped by their text values, see the module docstring) and the
        trailer; ``b"".join`` of them is a complete binary COPY input.

    Raises
    ------
    ValueError
        Columns of different lengths, an unsupported type, a value of the wrong kind, or a
        missing time.
    """
    lengths = {len(c.values) for c in columns}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    yield SIGNATURE
    if n == 0:
        yield TRAILER
        return
    fixed = {c.name: _fixed(c) for c in columns if c.pgtype != "text"}
    codes, encoded = {}, {}
    for c in columns:
        if c.pgtype == "text":
            code, uniques = pd.factorize(np.asarray(c.values, dtype=object), use_na_sentinel=True)
            texts = [str(u).encode("utf-8") for u in uniques]
            if (code < 0).any():  # None or NaN: written as ""
                code = np.where(code < 0, len(texts), code)
                texts.append(b"")
            codes[c.name], encoded[c.name] = code.astype(np.int64, copy=False), texts
    # one layout per combination of text values (a mixed-radix code)
    group = np.zeros(n, dtype=np.int64)
    for name, code in codes.items():
        group = group * len(encoded[name]) + code
    changes = np.flatnonzero(group[1:] != group[:-1]) + 1
    segments: list[slice | np.ndarray]
    if len(changes) < max(1, n // 64):  # long runs of one layout: slices, in row order
        edges = np.r_[0, changes, n]
        segments = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    else:  # rows gathered by layout (first appearance), in row order within one
        order = np.argsort(group, kind="stable")
        starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
        edges = np.r_[starts, n]
        segments = [order[edges[g] : edges[g + 1]] for g in np.argsort(order[starts], kind="stable")]
    layouts: dict[int, tuple[np.dtype, dict[str, bytes]]] = {}
    for segment in segments:
        first = segment.start if isinstance(segment, slice) else int(segment[0])
        key = int(group[first])
        if key not in layouts:
            fields: list[tuple[str, str]] = [("count", ">i2")]
            text: dict[str, bytes] = {}
            for i, c in enumerate(columns):
                fields.append((f"l{i}", ">i4"))
                if c.pgtype == "text":
                    text[c.name] = encoded[c.name][codes[c.name][first]]
                    if text[c.name]:
                        fields.append((f"v{i}", f"S{len(text[c.name])}"))
                else:
                    fields.append((f"v{i}", FIXED[c.pgtype][0]))
            layouts[key] = (np.dtype(fields), text)
        dtype, text = layouts[key]
        size = (segment.stop - segment.start) if isinstance(segment, slice) else len(segment)
        for start in range(0, size, block_rows):
            block: slice | np.ndarray
            if isinstance(segment, slice):
                low, high = segment.start + start, min(segment.stop, segment.start + start + block_rows)
                block, m = slice(low, high), high - low
            else:
                block = segment[start : start + block_rows]
                m = len(block)
            out = np.empty(m, dtype=dtype)
            out["count"] = len(columns)
            for i, c in enumerate(columns):
                if c.pgtype == "text":
                    out[f"l{i}"] = len(text[c.name])
                    if text[c.name]:
                        out[f"v{i}"] = text[c.name]
                else:
                    out[f"l{i}"] = FIXED[c.pgtype][1]
                    out[f"v{i}"] = fixed[c.name][block]
            yield out.tobytes()
    yield TRAILER
