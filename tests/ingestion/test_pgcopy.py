"""Binary COPY rows built with NumPy (ingestion.pgcopy), decoded back here field by field (no database).

SYNTHETIC values.
"""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest

from ingestion.pgcopy import POSTGRES_EPOCH_US, SIGNATURE, TRAILER, Column, binary_copy


def decode(stream: bytes, types: list[str]) -> list[tuple]:
    """Rows of a binary COPY stream (the PostgreSQL documentation's format), one tuple each."""
    assert stream.startswith(SIGNATURE) and stream.endswith(TRAILER)
    pos, rows = len(SIGNATURE), []
    while True:
        (count,) = struct.unpack_from(">h", stream, pos)
        pos += 2
        if count == -1:
            assert pos == len(stream)
            return rows
        assert count == len(types)
        row = []
        for pgtype in types:
            (length,) = struct.unpack_from(">i", stream, pos)
            pos += 4
            raw = stream[pos : pos + length]
            pos += length
            if pgtype == "text":
                row.append(raw.decode("utf-8"))
            elif pgtype == "float8":
                row.append(struct.unpack(">d", raw)[0])
            elif pgtype == "bool":
                assert length == 1
                row.append(raw == b"\x01")
            else:  # int8, timestamptz (microseconds since 2000-01-01)
                assert length == 8
                row.append(struct.unpack(">q", raw)[0])
        rows.append(tuple(row))


def columns(n: int, flags) -> list[Column]:
    times = pd.date_range("1999-12-31T23:00", periods=n, freq="30min").to_numpy()
    return [
        Column("station_id", "int8", np.arange(n, dtype=np.int64) // 4 + 7),
        Column("variable", "text", np.array(["ta", "swc_0.05_0.05", "ta", "dégel"] * (n // 4), dtype=object)),
        Column("time", "timestamptz", times),
        Column("value", "float8", np.linspace(-1.5, 2.5, n)),
        Column("quality_flag", "text", flags),
        Column("is_validation", "bool", np.arange(n) % 3 == 0),
    ]


TYPES = ["int8", "text", "timestamptz", "float8", "text", "bool"]


def expected_rows(cols: list[Column]) -> list[tuple]:
    micro = cols[2].values.astype("datetime64[us]").astype(np.int64) - POSTGRES_EPOCH_US
    flags = ["" if f is None or f != f else f for f in cols[4].values]
    return list(
        zip(
            cols[0].values.tolist(),
            list(cols[1].values),
            micro.tolist(),
            cols[3].values.tolist(),
            flags,
            cols[5].values.tolist(),
            strict=True,
        )
    )


def test_alternating_layouts_are_grouped_and_every_value_comes_back():
    cols = columns(400, np.array(["", "D03,D05", None, np.nan] * 100, dtype=object))
    rows = decode(b"".join(binary_copy(cols, block_rows=37)), TYPES)
    expected = expected_rows(cols)
    assert sorted(rows) == sorted(expected) and len(rows) == 400
    # grouped by layout (first appearance), in row order within a layout
    assert rows[:3] == [expected[0], expected[4], expected[8]]
    assert rows[0][2] == -3600 * 1_000_000  # 1999-12-31T23:00Z is an hour before PostgreSQL's epoch


def test_long_runs_of_one_layout_keep_the_row_order():
    cols = columns(4000, np.array(["A"] * 2000 + ["B"] * 2000, dtype=object))
    cols[1] = Column("variable", "text", np.array(["ta"] * 4000, dtype=object))
    rows = decode(b"".join(binary_copy(cols, block_rows=999)), TYPES)
    assert rows == expected_rows(cols)


def test_no_rows_is_a_valid_stream():
    assert b"".join(binary_copy([Column("x", "int8", np.array([], dtype=np.int64))])) == SIGNATURE + TRAILER


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            Column("time", "timestamptz", np.array(["2001-01-01", "NaT"], dtype="datetime64[ns]")),
            "expected no missing times",
        ),
        (Column("station_id", "int8", np.array([1.5, 2.0])), "expected integers"),
        (Column("flag", "bool", np.array([1, 0])), "expected booleans"),
        (Column("geom", "geometry", np.array([1, 2])), "unsupported type"),
    ],
)
def test_bad_columns_are_refused_with_their_name(bad, message):
    with pytest.raises(ValueError, match=f"column {bad.name}: {message}"):
        b"".join(binary_copy([bad]))


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="different lengths"):
        b"".join(binary_copy([Column("a", "int8", np.arange(3)), Column("b", "float8", np.arange(4.0))]))
