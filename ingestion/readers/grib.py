"""GRIB files read with ecCodes: one dict of keys per message, one grid checked, fields decoded (no Django).

Shared by the GRIB readers (``gldas``, ``era5``) and by the dispatch (:mod:`~.grids`), which tells
ECMWF files from others by the originating centre.

References
----------
ECMWF ecCodes, https://confluence.ecmwf.int/display/ECC (GRIB keys, Python API).
"""

from __future__ import annotations

from typing import Any

import eccodes
import numpy as np

from .base import ReaderError
from .gridtools import check_file

GRID_KEYS = (
    "gridType",
    "Ni",
    "Nj",
    "latitudeOfFirstGridPointInDegrees",
    "longitudeOfFirstGridPointInDegrees",
    "latitudeOfLastGridPointInDegrees",
    "longitudeOfLastGridPointInDegrees",
    "iDirectionIncrementInDegrees",
    "jDirectionIncrementInDegrees",
    "iScansNegatively",
    "jScansPositively",
)


def grib_messages(path, keys=()) -> list[dict]:
    """Scan a GRIB file with ecCodes and return one dict of keys per message.

    Parameters
    ----------
    path : str or os.PathLike
        GRIB edition 1 or 2 file.
    keys : iterable of str
        Keys to read besides :data:`GRID_KEYS`, ``offset`` and ``totalLength``; missing keys are None.

    Returns
    -------
    list of dict
        In file order; ``number`` is the 1-based message number.

    Raises
    ------
    ReaderError
        Empty file, no GRIB message, or a message ecCodes cannot decode.

    References
    ----------
    ECMWF ecCodes, https://confluence.ecmwf.int/display/ECC (GRIB keys).
    """
    p = check_file(path)
    out: list[dict] = []
    with open(p, "rb") as f:
        while True:
            try:
                h = eccodes.codes_grib_new_from_file(f)
            except eccodes.CodesInternalError as exc:
                raise ReaderError(
                    p, f"message {len(out) + 1} cannot be decoded ({exc}); expected complete GRIB messages"
                ) from None
            if h is None:
                break
            try:
                msg: dict[str, Any] = {"number": len(out) + 1}
                for k in (*GRID_KEYS, "offset", "totalLength", *keys):
                    try:
                        msg[k] = eccodes.codes_get(h, k)
                    except eccodes.KeyValueNotFoundError:
                        msg[k] = None
                out.append(msg)
            finally:
                eccodes.codes_release(h)
    if not out:
        raise ReaderError(p, "no GRIB message found; expected a GRIB file")
    return out


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) < 1e-6
    return a == b


def check_grib_grids(path, messages: list[dict], expected: dict | None = None, name: str = "") -> dict:
    """Check that all GRIB messages share one grid, and optionally that it is the expected one.

    Parameters
    ----------
    path : str or os.PathLike
        File named in errors.
    messages : list of dict
        From :func:`grib_messages`.
    expected : dict, optional
        Grid keys and values the product must have (e.g. the GLDAS 0.25 degree grid).
    name : str
        Grid name used in the error message.

    Returns
    -------
    dict
        The common grid (:data:`GRID_KEYS` of the first message).

    Raises
    ------
    ReaderError
        A message whose grid differs from message 1 (``field`` is the grid key), a grid type other
        than ``regular_ll``, or a grid key that differs from ``expected``.

    References
    ----------
    ECMWF ecCodes GRIB keys (grid definition section: ``Ni``, ``Nj``, first/last grid points, increments).
    """
    first = {k: messages[0][k] for k in GRID_KEYS}
    for msg in messages[1:]:
        for k in GRID_KEYS:
            if not _same(msg[k], first[k]):
                raise ReaderError(
                    path,
                    f"inconsistent grids: message {msg['number']} has {k}={msg[k]!r}, message 1 "
                    f"has {first[k]!r}; expected one grid in the file",
                    field=k,
                )
    if first["gridType"] != "regular_ll":
        raise ReaderError(path, f"grid type {first['gridType']!r}; expected 'regular_ll'", field="gridType")
    for k, v in (expected or {}).items():
        if not _same(first[k], v):
            raise ReaderError(path, f"{k}={first[k]!r}; expected {v!r} ({name})", field=k)
    return first


def grib_axes(grid: dict) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre axes of a GRIB ``regular_ll`` grid.

    Parameters
    ----------
    grid : dict
        :data:`GRID_KEYS` of a message (from :func:`check_grib_grids`).

    Returns
    -------
    lat, lon : numpy.ndarray
        float64 degrees in storage order (first to last grid point); longitudes continue past 180
        when the grid crosses the antimeridian.
    """
    nj, ni = grid["Nj"], grid["Ni"]
    lat = np.linspace(grid["latitudeOfFirstGridPointInDegrees"], grid["latitudeOfLastGridPointInDegrees"], nj)
    lon0, lon1 = grid["longitudeOfFirstGridPointInDegrees"], grid["longitudeOfLastGridPointInDegrees"]
    if lon1 < lon0:
        lon1 += 360.0
    return lat, np.linspace(lon0, lon1, ni)


_MISSING = -3.0e38


def grib_field(path, offset: int, length: int, shape: tuple[int, int]) -> np.ndarray:
    """Decode one GRIB message of a file with ecCodes.

    Parameters
    ----------
    path : str or os.PathLike
        GRIB file.
    offset, length : int
        Byte offset and length of the message (``offset``/``totalLength`` from :func:`grib_messages`).
    shape : tuple of int
        ``(Nj, Ni)``.

    Returns
    -------
    numpy.ndarray
        float32 ``(Nj, Ni)`` in storage order, NaN where the bitmap marks missing points.

    References
    ----------
    ECMWF ecCodes Python API (``codes_new_from_message``, ``codes_get_values``).
    """
    with open(path, "rb") as f:
        f.seek(int(offset))
        h = eccodes.codes_new_from_message(f.read(int(length)))
    try:
        eccodes.codes_set_double(h, "missingValue", _MISSING)  # bitmap-masked points decode to this value
        values = eccodes.codes_get_values(h)
    finally:
        eccodes.codes_release(h)
    values[values == _MISSING] = np.nan
    return values.astype(np.float32).reshape(shape)
