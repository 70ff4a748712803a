"""What a published grid holds: extent, time steps, variables (metadata only, cached per file).

Shared by the OGC API-EDR collections and the dataset page's subset form; only coordinates and
attributes are read, through :func:`portal.subsets.services.open_cube`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from portal.catalog.models import DatasetFile
from portal.files import per_file_version

from . import services


@dataclass(frozen=True)
class GridInfo:
    """What a collection document needs from a published grid (read once per file version).

    Attributes
    ----------
    bbox : tuple of 4 float
        Cell-edge extent ``(west, south, east, north)`` in CRS84, longitudes in -180..180
        (``west > east`` across the antimeridian).
    interval : tuple of 2 str
        First and last time step, RFC 3339.
    time_values : tuple of str
        The time steps as EDR extent ``values``: ``R<n>/<start>/<step>`` for a regular axis, else
        the list of steps (up to 366) or ``<start>/<end>``.
    calendar : str
        CF calendar of the time axis.
    resolution : tuple of 2 float
        Cell size ``(dlon, dlat)`` in degrees (median spacing).
    shape : tuple of 2 int
        ``(n_lon, n_lat)``.
    steps : int
        Number of time steps.
    parameters : tuple
        ``(name, numpy dtype kind, attrs)`` of each ``(time, lat, lon)`` variable, ``attrs``
        holding the CF ``units``, ``long_name`` and ``standard_name`` present.
    """

    bbox: tuple[float, float, float, float]
    interval: tuple[str, str]
    time_values: tuple[str, ...]
    calendar: str
    resolution: tuple[float, float]
    shape: tuple[int, int]
    steps: int
    parameters: tuple[tuple[str, str, Mapping[str, str]], ...]


def _rfc3339(value: Any) -> str:
    if hasattr(value, "calendar") and not isinstance(value, pd.Timestamp | np.datetime64):  # cftime
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    if seconds % 60 == 0:
        return f"PT{seconds // 60}M"
    return f"PT{seconds}S"


def _time_values(times: np.ndarray, texts: list[str]) -> tuple[str, ...]:
    if len(texts) == 1:
        return (texts[0],)
    if np.issubdtype(np.asarray(times).dtype, np.datetime64):
        steps = np.unique(np.diff(np.asarray(times, dtype="datetime64[s]")).astype("int64"))
        if steps.size == 1 and steps[0] > 0:
            return (f"R{len(texts)}/{texts[0]}/{_iso_duration(int(steps[0]))}",)
    if len(texts) <= 366:
        return tuple(texts)
    return (f"{texts[0]}/{texts[-1]}",)


def _spacing(values: np.ndarray) -> float:
    return float(np.median(np.abs(np.diff(values)))) if values.size > 1 else 0.0


def _spatial_bbox(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    """Cell-edge extent in CRS84 (-180..180; west > east across the antimeridian)."""

    def half(values: np.ndarray) -> float:
        return _spacing(values) / 2

    south = max(-90.0, float(lat.min()) - half(lat))
    north = min(90.0, float(lat.max()) + half(lat))
    west, east = float(lon.min()) - half(lon), float(lon.max()) + half(lon)
    if east - west >= 360.0 - 1e-6:
        return (-180.0, south, 180.0, north)
    west = (west + 180.0) % 360.0 - 180.0
    east = (east + 180.0) % 360.0 - 180.0
    if east <= -180.0 + 1e-9:
        east = 180.0
    return (round(west, 9), round(south, 9), round(east, 9), round(north, 9))


def describe_grid(ds: xr.Dataset) -> GridInfo | None:
    """Extent, time steps and parameters of an opened grid, or None if it is not a ``(time, lat, lon)`` cube.

    Parameters
    ----------
    ds : xarray.Dataset
        A published grid opened by :func:`portal.subsets.services.open_cube`; only coordinates
        and attributes are read.

    Returns
    -------
    GridInfo or None
    """
    for name in ("time", "lat", "lon"):
        if name not in ds.coords or ds[name].dims != (name,) or ds.sizes[name] == 0:
            return None
    parameters = tuple(
        (
            str(name),
            v.dtype.kind,
            {k: str(a) for k, a in v.attrs.items() if k in ("units", "long_name", "standard_name")},
        )
        for name, v in ds.data_vars.items()
        if set(v.dims) == {"time", "lat", "lon"}
    )
    if not parameters:
        return None
    times = ds["time"].values
    texts = [_rfc3339(t) for t in times]
    calendar = getattr(times[0], "calendar", None) or ds["time"].encoding.get("calendar") or "standard"
    lon, lat = np.asarray(ds["lon"].values, dtype=float), np.asarray(ds["lat"].values, dtype=float)
    return GridInfo(
        _spatial_bbox(lon, lat),
        (texts[0], texts[-1]),
        _time_values(times, texts),
        str(calendar),
        (round(_spacing(lon), 6), round(_spacing(lat), 6)),
        (lon.size, lat.size),
        len(texts),
        parameters,
    )


_INFO: dict[tuple[str, int, int], GridInfo | None] = {}  # (path, mtime_ns, size) -> info


def grid_info(f: DatasetFile) -> GridInfo | None:
    """:func:`describe_grid` of a published NetCDF, cached per file version.

    Parameters
    ----------
    f : DatasetFile

    Returns
    -------
    GridInfo or None
        None for a file that is not a ``(time, lat, lon)`` cube or cannot be read (logged).
    """

    def describe(relative: str) -> GridInfo:
        with services.open_cube(f) as ds:
            return describe_grid(ds)

    return per_file_version(
        f.path,
        _INFO,
        describe,
        (OSError, ValueError, RuntimeError, KeyError),
        "read as a grid",
    )
