"""What every gridded reader shares: file checks, lazy arrays, the checks of :func:`finalise`, and :func:`describe` (no Django).

Every gridded reader (``gldas``, ``era5``, ``modis``, ``geotiff``, ``grace``, ``smap``, ``esacci``,
``amsr2``, ``freeze_thaw``) builds an :class:`xarray.Dataset` and hands it to :func:`finalise`, which
applies the checks the portal relies on:

- coordinates named ``lat`` (degrees_north, in [-90, 90], **ascending**) and ``lon``
  (degrees_east, in [-180, 360) on input, returned in [-180, 180) and **ascending**); both must be
  strictly monotonic in the file (a descending latitude axis is reversed, a 0..360 longitude axis is
  rotated, never sorted from disorder);
- ``time`` as ``datetime64[ns]``, strictly increasing when it is a dimension;
- every data variable carries UDUNITS ``units`` from a known vocabulary (:func:`~.units.check_units`);
- ``ds.attrs["crs"]``: ``"EPSG:4326"`` for latitude/longitude grids, a PROJ/EPSG string otherwise.

:func:`describe` reads back what the portal registers of such a dataset (variables, extent, time
span, grid). Arrays stay lazy: xarray's own backends are lazy, and readers that decode bytes
themselves (GRIB messages, HDF4 SDS, HDF5 datasets, GeoTIFF windows) wrap a read function with
:func:`lazy`. GRIB scanning and decoding are in :mod:`~.grib`; which reader opens which file is
decided in :mod:`~.grids`.

References
----------
Eaton, B., et al. (2023): NetCDF Climate and Forecast (CF) Metadata Conventions, version 1.11,
https://cfconventions.org/ (coordinates, units, standard names, flags).
UDUNITS-2 unit syntax, https://docs.unidata.ucar.edu/udunits/current/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import xarray as xr
from rasterio.warp import transform_bounds
from scipy.io import netcdf_file
from xarray.backends import BackendArray
from xarray.core import indexing

from .base import ReaderError
from .units import check_units

WGS84 = "EPSG:4326"

# --- files ------------------------------------------------------------------------------------


def check_file(path) -> Path:
    """Check that ``path`` is a non-empty regular file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    pathlib.Path
        ``path`` as a Path.

    Raises
    ------
    ReaderError
        The file does not exist, is not a regular file or has 0 bytes.
    """
    p = Path(path)
    if not p.is_file():
        raise ReaderError(p, "no such file")
    if p.stat().st_size == 0:
        raise ReaderError(p, "empty file (0 bytes); expected a gridded data file")
    return p


def file_kind(path) -> str:
    """Guess the container format from the first bytes (magic numbers) of ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        One of ``"hdf5"`` (including NetCDF-4), ``"netcdf3"``, ``"hdf4"``, ``"grib"`` (``GRIB``
        within the first 1024 bytes), ``"tiff"`` (including BigTIFF) or ``"unknown"``.

    Raises
    ------
    ReaderError
        Missing or empty file.
    """
    with open(check_file(path), "rb") as f:
        head = f.read(1024)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if head.startswith(b"\x0e\x03\x13\x01"):
        return "hdf4"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if b"GRIB" in head:
        return "grib"
    return "unknown"


def open_netcdf(path, **kwargs) -> xr.Dataset:
    """Open a NetCDF-3/4 file lazily with xarray's netCDF4 backend, turning failures into ReaderError.

    A NetCDF-3 file whose data section is cut short opens without complaint in the netCDF-C
    library (missing bytes read as zeros), so classic files are first mapped with
    :class:`scipy.io.netcdf_file`, which checks every variable's extent against the file size.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **kwargs
        Passed to :func:`xarray.open_dataset`.

    Returns
    -------
    xarray.Dataset
        Lazily loaded, CF-decoded.

    Raises
    ------
    ReaderError
        Empty, truncated or unreadable file.
    """
    p = check_file(path)
    kind = file_kind(p)
    if kind not in ("hdf5", "netcdf3"):
        raise ReaderError(p, f"not a NetCDF file (looks like {kind}); expected NetCDF-3 or NetCDF-4/HDF5")
    if kind == "netcdf3":
        try:  # mapping the variables checks each one's extent against the file size
            nc = netcdf_file(p, "r", mmap=True)
        except (TypeError, ValueError, OSError) as exc:
            raise ReaderError(
                p,
                f"truncated or corrupt NetCDF-3 file: its header declares data beyond its "
                f"{p.stat().st_size} bytes ({exc}); expected a complete file",
            ) from None
        nc.variables.clear()  # drop the views of the mapping so that it closes cleanly
        nc.close()
    try:
        return xr.open_dataset(p, engine="netcdf4", **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, IndexError) as exc:
        reason = str(exc).replace(str(p), p.name)
        if kind == "hdf5":  # netCDF-C only says "HDF error"; HDF5 itself names truncation (stored vs actual EOF)
            try:
                h5py.File(p, "r").close()
            except OSError as h5exc:
                reason = str(h5exc)
        raise ReaderError(p, f"cannot read as NetCDF ({reason}); expected a complete NetCDF-3/4 file") from None


# --- lazy arrays ------------------------------------------------------------------------------


class _ReadArray(BackendArray):
    """A backend array whose values come from ``read(key)``, ``key`` a tuple of ints and slices."""

    def __init__(self, shape, dtype, read: Callable[[tuple], np.ndarray]):
        self.shape, self.dtype, self._read = tuple(int(n) for n in shape), np.dtype(dtype), read

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)


def lazy(shape, dtype, read: Callable[[tuple], np.ndarray]):
    """Wrap a read function as a lazily indexed array for :class:`xarray.Variable`.

    Parameters
    ----------
    shape : tuple of int
        Full shape of the array.
    dtype : numpy dtype
        dtype that ``read`` returns.
    read : callable
        ``read(key) -> numpy.ndarray`` for ``key`` a tuple (one item per dimension) of ints and
        slices with positive steps, returning the array ``full[key]`` would give.

    Returns
    -------
    xarray.core.indexing.LazilyIndexedArray
        Nothing is read until values are needed; selections are passed down to ``read``.

    References
    ----------
    xarray documentation, "How to add a new backend": BackendArray and explicit_indexing_adapter.
    """
    return indexing.LazilyIndexedArray(_ReadArray(shape, dtype, read))


def read_leading(key: tuple, read_rest: Callable[[tuple], np.ndarray]) -> np.ndarray:
    """Read through a singleton leading axis (one time step) of a lazy array.

    Parameters
    ----------
    key : tuple
        Basic key for ``(1, *rest)``; ``key[0]`` is ``0`` or a slice.
    read_rest : callable
        ``read_rest(key[1:])`` reads the array without its leading axis.

    Returns
    -------
    numpy.ndarray
        ``read_rest(key[1:])[None][key[0]]``.
    """
    return np.expand_dims(read_rest(key[1:]), 0)[(key[0],)]


def lazy_h5(path, dataset: str, shape2d: tuple[int, int], dtype, decode: Callable | None = None):
    """A lazy ``(time=1, row, col)`` array over a 2-D HDF5 dataset, read with h5py block by block.

    Parameters
    ----------
    path : str or os.PathLike
        HDF5 file (opened at each read, so nothing stays open).
    dataset : str
        Path of the 2-D dataset inside the file, e.g. ``"Soil_Moisture_Retrieval_Data_AM/soil_moisture"``.
    shape2d : tuple of int
        Its shape.
    dtype : numpy dtype
        dtype after ``decode``.
    decode : callable, optional
        ``decode(raw) -> array`` applied to each block read (fill values, scale factors).

    Returns
    -------
    xarray.core.indexing.LazilyIndexedArray
        Shape ``(1, *shape2d)``, for a variable with dims ``(time, row, col)``.
    """

    def read_block(key):
        block, rel = split_key(key, shape2d)
        with h5py.File(path, "r") as f:
            raw = f[dataset][block]
        out = raw if decode is None else decode(raw)
        return np.asarray(out[rel], dtype=dtype)

    return lazy((1, *shape2d), dtype, lambda key: read_leading(key, read_block))


def h5_attrs(obj) -> dict:
    """HDF5 attributes as plain Python values.

    Parameters
    ----------
    obj : h5py.Dataset or h5py.Group
        Object whose ``attrs`` are read.

    Returns
    -------
    dict
        Fixed-length strings decoded (UTF-8), 1-element arrays unpacked, numpy scalars as Python scalars.
    """
    out = {}
    for k, v in obj.attrs.items():
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, np.ndarray) and v.size == 1:
            v = v.reshape(-1)[0]
            v = v.decode("utf-8", "replace") if isinstance(v, bytes) else v.item()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def split_key(key: tuple, shape: tuple) -> tuple[tuple, tuple]:
    """Split a basic key into contiguous blocks to read and the indices to apply to the block.

    Parameters
    ----------
    key : tuple of int or slice
        One basic index per dimension (slices may have steps).
    shape : tuple of int
        Shape of the array.

    Returns
    -------
    block : tuple of slice
        Step-1 slices covering what ``key`` selects (for h5py, pyhdf or a rasterio window).
    rel : tuple
        Index into the block giving ``full[key]`` (steps applied, integer axes dropped).
    """
    pairs = [_span(k, n) for k, n in zip(key, shape, strict=True)]
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def _span(key, n: int) -> tuple[slice, object]:
    """One axis of :func:`split_key`."""
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        stop = max(stop, start)
        return slice(start, stop), slice(None, None, step)
    k = int(key)
    return slice(k, k + 1), 0


# --- coordinates and time ---------------------------------------------------------------------


def _check_1d(path, name: str, values: np.ndarray, lo: float, hi: float, hi_open: bool = False) -> None:
    if not np.issubdtype(values.dtype, np.number):
        raise ReaderError(path, f"expected numeric degrees, found dtype {values.dtype}", field=name)
    if np.isnan(values).any():
        raise ReaderError(path, "expected finite coordinates, found NaN", field=name)
    bad = (values < lo) | ((values >= hi) if hi_open else (values > hi))
    if bad.any():
        bracket = ")" if hi_open else "]"
        raise ReaderError(path, f"expected degrees in [{lo:g}, {hi:g}{bracket}, found {values[bad][0]:g}", field=name)


def _check_monotonic(path, name: str, values: np.ndarray) -> int:
    if values.size < 2:
        return 1
    d = np.diff(values.astype("float64"))
    if (d > 0).all():
        return 1
    if (d < 0).all():
        return -1
    i = int(np.flatnonzero(d <= 0)[0] if (d > 0).sum() >= (d < 0).sum() else np.flatnonzero(d >= 0)[0])
    raise ReaderError(
        path,
        f"expected strictly monotonic coordinates, found {values[i]:g} then {values[i + 1]:g} at index {i + 1}",
        field=name,
    )


def normalise_coords(ds: xr.Dataset, path) -> xr.Dataset:
    """Rename, check and orient latitude/longitude coordinates (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        With ``lat``/``lon`` or ``latitude``/``longitude`` coordinates: 1-D dimension coordinates of
        a regular or irregular grid, 1-D coordinates along another dimension (point series) or 2-D
        auxiliary coordinates (curvilinear grids, e.g. MODIS sinusoidal tiles).
    path : str or os.PathLike
        File named in errors.

    Returns
    -------
    xarray.Dataset
        Grid axes ascending, longitudes in [-180, 180), CF attributes on ``lat``/``lon``; still lazy.

    Raises
    ------
    ReaderError
        Missing coordinates, NaN, values out of range, non-monotonic grid axes, duplicate longitudes.

    References
    ----------
    CF Conventions 1.11, sections 3.1 (units), 4.1-4.4 (latitude, longitude, time); UDUNITS-2.
    """
    ds = ds.rename({k: v for k, v in (("latitude", "lat"), ("longitude", "lon")) if k in ds.variables})
    for name in ("lat", "lon"):
        if name not in ds.coords:
            raise ReaderError(
                path,
                f"expected a {name!r} (or {'latitude' if name == 'lat' else 'longitude'!r}) coordinate",
                field=name,
            )
    lat, lon = ds["lat"], ds["lon"]
    if lat.ndim == 2 or lon.ndim == 2:  # curvilinear: auxiliary coordinates, NaN outside the projection
        for name, lo, hi in (("lat", -90, 90), ("lon", -180, 180)):
            v = ds[name].values
            _check_1d(path, name, v[np.isfinite(v)], lo, hi)
    else:
        _check_1d(path, "lat", lat.values, -90, 90)
        _check_1d(path, "lon", lon.values, -180, 360, hi_open=True)
        wrapped = np.round((lon.values.astype("float64") + 180.0) % 360.0 - 180.0, 10)
        if lat.dims == ("lat",) and _check_monotonic(path, "lat", lat.values) < 0:
            ds = ds.isel(lat=slice(None, None, -1))
        if lon.dims == ("lon",):
            _check_monotonic(path, "lon", lon.values)
            if np.unique(wrapped).size != wrapped.size:
                raise ReaderError(
                    path, "expected distinct longitudes, found duplicates after wrapping to [-180, 180)", field="lon"
                )
            order = np.argsort(wrapped, kind="stable")
            ds = ds.assign_coords(lon=("lon", wrapped.astype(lon.dtype), lon.attrs))
            if (np.diff(order) != 1).any():
                ds = ds.isel(lon=order)
        elif (lon.values >= 180).any():
            ds = ds.assign_coords(lon=(lon.dims, wrapped.astype(lon.dtype), lon.attrs))
    ds["lat"].attrs.update(standard_name="latitude", units="degrees_north", long_name="latitude", axis="Y")
    ds["lon"].attrs.update(standard_name="longitude", units="degrees_east", long_name="longitude", axis="X")
    for name in ("lat", "lon"):
        ds[name].attrs.pop("stored_direction", None)
        if ds[name].ndim == 2:
            ds[name].attrs.pop("axis")
    return ds


def check_time(ds: xr.Dataset, path) -> xr.Dataset:
    """Check the ``time`` coordinate: datetime64[ns], strictly increasing along a ``time`` dimension.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset with or without a ``time`` coordinate.
    path : str or os.PathLike
        File named in errors.

    Returns
    -------
    xarray.Dataset
        ``time`` cast to datetime64[ns] (other resolutions) with ``standard_name``/``axis``.

    Raises
    ------
    ReaderError
        Undecodable or non-standard-calendar times, NaT, or times out of order (``field='time'``).

    References
    ----------
    CF Conventions 1.11, sections 3.1 (units), 4.1-4.4 (latitude, longitude, time); UDUNITS-2.
    """
    if "time" not in ds.coords:
        return ds
    t = ds["time"]
    if t.dtype.kind != "M":
        raise ReaderError(
            path,
            f"expected times decodable to datetime64 (CF units 'days since ...', standard "
            f"calendar), found dtype {t.dtype}",
            field="time",
        )
    if t.dtype != np.dtype("datetime64[ns]"):
        ds = ds.assign_coords(time=t.astype("datetime64[ns]"))
        t = ds["time"]
    values = t.values.ravel()
    if np.isnat(values).any():
        raise ReaderError(path, "expected valid times, found NaT", field="time")
    if t.dims == ("time",) and values.size > 1:
        d = np.diff(values)
        if (d <= np.timedelta64(0)).any():
            i = int(np.flatnonzero(d <= np.timedelta64(0))[0])
            raise ReaderError(
                path,
                f"expected strictly increasing times, found {values[i]} then {values[i + 1]} at index {i + 1}",
                field="time",
            )
    ds["time"].attrs.update(standard_name="time", axis="T")
    return ds


def finalise(ds: xr.Dataset, path, *, crs: str = WGS84, reader: str | None = None) -> xr.Dataset:
    """Apply the shared checks and attributes that every gridded reader returns.

    Parameters
    ----------
    ds : xarray.Dataset
        The reader's dataset (lazy).
    path : str or os.PathLike
        File named in errors and recorded in ``ds.attrs["source_file"]``.
    crs : str
        CRS of the grid (``"EPSG:4326"`` for lat/lon grids) stored in ``ds.attrs["crs"]``.
    reader : str, optional
        ``"<module> <READER_VERSION>"`` stored in ``ds.attrs["reader"]``.

    Returns
    -------
    xarray.Dataset
        Coordinates normalised (:func:`normalise_coords`; a projected grid may come with ``x``/``y``
        only, without ``lat``/``lon``), time checked (:func:`check_time`),
        every data variable with normalised ``units`` (flag variables without units get ``"1"``,
        datetime variables keep their units in the encoding).

    Raises
    ------
    ReaderError
        From the checks named above.

    References
    ----------
    CF Conventions 1.11, sections 3.1 (units), 4.1-4.4 (latitude, longitude, time); UDUNITS-2.
    """
    projected_only = "lat" not in ds.coords and "x" in ds.coords and "y" in ds.coords and crs != WGS84
    ds = check_time(ds if projected_only else normalise_coords(ds, path), path)
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "Mm":
            continue
        units = var.attrs.get("units")
        if units is None and ("flag_values" in var.attrs or "flag_masks" in var.attrs):
            units = "1"
        var.attrs["units"] = check_units(path, name, units)
    ds.attrs.update(crs=crs, source_file=Path(path).name)
    if reader:
        ds.attrs["reader"] = reader
    return ds


# --- description ------------------------------------------------------------------------------


def _resolution(values: np.ndarray) -> float | None:
    d = np.abs(np.diff(values.astype("float64")))
    return float(np.median(d)) if d.size else None


def describe(ds: xr.Dataset) -> dict:
    """What the portal registers for a gridded (or point-series) dataset returned by a reader.

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset returned by a reader's ``open_grid`` (only coordinates are read).

    Returns
    -------
    dict
        ``variables``: list of dicts ``name``, ``units``, ``standard_name`` (None if absent),
        ``long_name``, ``dims`` (tuple of str), ``dtype`` (str);
        ``bbox``: ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326 degrees -- cell edges for a
        1-D lat/lon grid (-180..180 when the longitudes go round the globe), the grid's outer edges
        transformed by PROJ (densified) for a projected grid (``x``/``y`` coordinates and a CRS other
        than EPSG:4326), the extreme centres for other 2-D lat/lon grids, the points for point series;
        ``time``: None, or dict ``start``, ``end`` (pandas.Timestamp), ``steps`` (int), ``step``
        (pandas.Timedelta, median spacing; None for one step), ``frequency`` (pandas offset alias
        such as ``"3h"``, ``"D"``, ``"h"``; None when irregular or fewer than 3 steps);
        ``grid``: dict ``kind`` (``"regular"`` lat/lon, ``"projected"`` x/y or EASE-type lat/lon axes
        of a projected CRS, ``"curvilinear"``, ``"points"``), ``dims`` and ``shape`` of the horizontal
        dimensions, ``resolution`` ``(dx, dy)`` (median spacing; None for points),
        ``resolution_units`` (``"degree"`` or ``"m"``) and ``crs``.

    Raises
    ------
    ReaderError
        The dataset has neither ``lat``/``lon`` nor projected ``x``/``y`` coordinates.

    References
    ----------
    CF Conventions 1.11, sections 3.1 (units), 4.1-4.4 (latitude, longitude, time); UDUNITS-2.
    """
    crs = ds.attrs.get("crs", WGS84)
    c = ds.coords
    variables = [
        {
            "name": str(n),
            "units": v.attrs.get("units"),
            "standard_name": v.attrs.get("standard_name"),
            "long_name": v.attrs.get("long_name"),
            "dims": tuple(map(str, v.dims)),
            "dtype": str(v.dtype),
        }
        for n, v in ds.data_vars.items()
    ]
    projected = crs != WGS84 and "x" in c and "y" in c and c["x"].ndim == 1 and c["y"].ndim == 1
    regular = "lat" in c and c["lat"].dims == ("lat",) and "lon" in c and c["lon"].dims == ("lon",)
    dims: tuple[str, ...]
    if projected:  # x/y grids, and cylindrical grids whose lat/lon axes follow x/y (EASE-Grid 2.0)
        x, y = c["x"].values.astype("float64"), c["y"].values.astype("float64")
        dx, dy = _resolution(x) or 0.0, _resolution(y) or 0.0
        bbox = transform_bounds(
            crs, WGS84, x.min() - dx / 2, y.min() - dy / 2, x.max() + dx / 2, y.max() + dy / 2, densify_pts=21
        )
        kind, res, res_units = "projected", (dx, dy), c["x"].attrs.get("units", "m")
        dims = ("lat", "lon") if regular else (str(c["y"].dims[0]), str(c["x"].dims[0]))
    elif regular:
        lo, la = c["lon"].values.astype("float64"), c["lat"].values.astype("float64")
        dlon, dlat = _resolution(lo) or 0.0, _resolution(la) or 0.0
        west, east = (-180.0, 180.0) if lo.size * dlon >= 360.0 - 1e-6 else (lo.min() - dlon / 2, lo.max() + dlon / 2)
        bbox = (max(west, -180.0), max(la.min() - dlat / 2, -90.0), min(east, 180.0), min(la.max() + dlat / 2, 90.0))
        kind, dims, res, res_units = "regular", ("lat", "lon"), (dlon, dlat), "degree"
    elif "lat" in c and "lon" in c and c["lat"].ndim == 2:
        lat, lon = c["lat"].values, c["lon"].values
        kind, dims, res, res_units = "curvilinear", tuple(map(str, c["lat"].dims)), None, None
        bbox = (np.nanmin(lon), np.nanmin(lat), np.nanmax(lon), np.nanmax(lat))
    elif "lat" in c and "lon" in c:
        kind, dims, res, res_units = "points", tuple(map(str, c["lat"].dims)), None, None
        bbox = (c["lon"].values.min(), c["lat"].values.min(), c["lon"].values.max(), c["lat"].values.max())
    else:
        raise ReaderError(
            ds.attrs.get("source_file", "dataset"),
            "expected 'lat'/'lon' or projected 'x'/'y' coordinates (open the file with a grid reader)",
        )
    time = None
    if "time" in c:
        t = pd.DatetimeIndex(np.atleast_1d(c["time"].values).ravel())
        step = (t[1:] - t[:-1]).median() if t.size > 1 else None
        freq = pd.infer_freq(t) if t.size > 2 else None
        time = {"start": t.min(), "end": t.max(), "steps": int(t.size), "step": step, "frequency": freq}
    return {
        "variables": variables,
        "bbox": tuple(float(b) for b in bbox),
        "time": time,
        "grid": {
            "kind": kind,
            "dims": dims,
            "shape": tuple(int(ds.sizes[d]) for d in dims),
            "resolution": res,
            "resolution_units": res_units,
            "crs": crs,
        },
    }
