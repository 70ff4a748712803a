"""Binary COPY rows built with NumPy (ingestion.pgcopy), decoded back here field by field, and the identity
order a new partition is loaded in (ingestion.services.identity_order); no database.
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


def _rows(stations, variables, hours, flags, values) -> dict[str, np.ndarray]:
    n = len(stations)
    return {
        "station_id": np.array(stations, dtype=np.int64),
        "variable": np.array(variables, dtype=object),
        "time": (np.datetime64("2001-01-01T00:00", "us") + np.array(hours) * np.timedelta64(1, "h")),
        "value": np.array(values, dtype=float),
        "units": np.array(["1"] * n, dtype=object),
        "quality_flag": np.array([""] * n, dtype=object),
        "is_validation": np.array(flags, dtype=bool),
        "ingest_run_id": np.full(n, 9, dtype=np.int64),
    }


def test_rows_are_put_in_identity_order_keeping_the_first_of_a_repeated_identity():
    from ingestion.services import identity_order

    rows = _rows(
        stations=[2, 1, 2, 1, 1, 2],
        variables=["ta", "ta", "et", "ta", "ta", "ta"],
        hours=[0, 1, 5, 0, 1, 0],
        flags=[False, False, False, False, False, True],
        values=[1, 2, 3, 4, 5, 6],
    )
    out = identity_order(rows)
    assert out["station_id"].tolist() == [1, 1, 2, 2, 2]
    assert out["variable"].tolist() == ["ta", "ta", "et", "ta", "ta"]
    assert out["value"].tolist() == [4, 2, 3, 1, 6]  # station 1 ta hour 1: the first given (2), not 5
    assert out["is_validation"].tolist() == [False, False, False, False, True]


def test_rows_already_in_identity_order_are_only_checked():
    from ingestion.services import identity_order

    rows = _rows([1, 1, 2], ["et", "ta", "et"], [0, 0, 0], [False, False, False], [1, 2, 3])
    assert identity_order(rows) is rows
    repeated = _rows([1, 1, 2], ["et", "et", "et"], [0, 0, 0], [False, False, False], [1, 2, 3])
    assert identity_order(repeated)["value"].tolist() == [1, 3]


def test_series_given_one_after_another_in_time_order_are_moved_whole():
    from ingestion.services import identity_order

    rows = _rows([2, 2, 1, 1, 1, 1], ["ta", "ta", "ta", "ta", "ta", "et"], [0, 1, 0, 1, 1, 3], [False] * 6, range(6))
    out = identity_order(rows)
    assert list(zip(out["station_id"].tolist(), out["variable"].tolist(), out["value"].tolist(), strict=True)) == [
        (1, "et", 5),
        (1, "ta", 2),
        (1, "ta", 3),
        (2, "ta", 0),
        (2, "ta", 1),
    ]
