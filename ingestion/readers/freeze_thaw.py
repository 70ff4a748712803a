"""Readers for satellite soil freeze/thaw grids: SMAP L3 FT (SPL3FTP) and SMOS L3 soil FT (no Django).

NO real file of either product is in the sample data: both readers follow the documented layouts
(as summarised below) and are tested on small files the tests write in those layouts. Brightness
temperatures (the seed's predictors) are read by :mod:`ingestion.readers.amsr2`.

SMAP L3 radiometer freeze/thaw, 36 km (SPL3FTP, version 3 and later):

- file ``SMAP_L3_FT_P_<yyyymmdd>_R<CRID>_<nnn>.h5``, one day;
- group ``Freeze_Thaw_Retrieval_Data_Global`` on the global EASE-Grid 2.0 M36 (406 x 964 cells,
  EPSG:6933, row 0 in the north; the same grid as SPL3SMP, :func:`ingestion.readers.smap.ease2_axes`);
  the group ``Freeze_Thaw_Retrieval_Data_Polar`` (EASE-Grid 2.0 North) is not read;
- ``freeze_thaw`` (uint8, 2 x rows x columns: index 0 the AM = 6 am descending pass, index 1 the
  PM = 6 pm ascending pass; 0 thawed, 1 frozen, ``_FillValue`` 254 -- any value other than 0/1 is
  taken as missing), ``latitude``/``longitude`` (float32, cell centres, -9999 where empty; 2-D or
  with the same leading AM/PM axis), checked against the EASE-Grid 2.0 cell centres.

SMOS L3 soil freeze and thaw (ESA / FMI, NetCDF-4, daily, Northern Hemisphere):

- file ``W_XX-ESA,SMOS,NH_25KM_EASE2_<yyyymmdd>_<O|R>_..._l3soilft.nc`` (any name containing
  ``l3soilft``);
- variable ``L3FT`` (``time, y, x``; integer; 0 thawed, 1 partially frozen, 2 frozen; ``_FillValue``
  or any other value = missing) and, when present, ``PM`` (processing mask, kept as an integer
  flag field), on the EASE-Grid 2.0 North 25 km grid (720 x 720 cells of 25 000 m, EPSG:6931,
  ``x``/``y`` cell centres in metres, ``y`` from north to south), with 2-D ``lat``/``lon``.

Both return integer state fields with CF ``flag_values``/``flag_meanings`` and fill 255:
``ft_state`` (0 thawed, 1 frozen; for SMOS, "partially frozen" counts as frozen unless
``partial_as="thawed"``), and for SMOS also ``ft_class`` (0/1/2 as in the file). :func:`to_latlon`
samples any of them onto a regular latitude/longitude grid (nearest cell).

References
----------
Xu, X., Dunbar, R. S., Derksen, C., Colliander, A., Kim, Y., Kimball, J. S. (2023): SMAP L3
Radiometer Global and Northern Hemisphere Daily 36 km EASE-Grid Freeze/Thaw State, Version 4, NSIDC,
doi:10.5067/P9ULUWR1E7VE; SMAP L3 FT product specification / user guide (JPL D-56290 series).
Rautiainen, K., et al. (2016): SMOS prototype algorithm for detecting autumn soil freezing. Remote
Sensing of Environment 180, 346-360, doi:10.1016/j.rse.2016.01.012; ESA SMOS Level 3 Soil Freeze and
Thaw product description (FMI).
Brodzik, M. J., et al. (2012): EASE-Grid 2.0, ISPRS Int. J. Geo-Inf. 1, 32-45, doi:10.3390/ijgi1010032.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import xarray as xr
from rasterio.warp import transform

from . import smap
from .base import ReaderError
from .gridtools import check_file, file_kind, finalise, h5_attrs, lazy, open_netcdf, read_leading, split_key

READER_VERSION = "1.0"
FILE_PATTERNS = ("SMAP_L3_FT_P_*.h5", "*l3soilft*.nc")
STATE_FILL = 255
STATE_ATTRS = {"flag_values": np.array([0, 1], "u1"), "flag_meanings": "thawed frozen", "units": "1"}
CLASS_ATTRS = {
    "flag_values": np.array([0, 1, 2], "u1"),
    "flag_meanings": "thawed partially_frozen frozen",
    "units": "1",
}

SMAP_GROUP = "Freeze_Thaw_Retrieval_Data_Global"
SMAP_NAME = re.compile(r"SMAP_L3_FT_P_(\d{8})_")
SMAP_PASSES = ("am", "pm")
SMAP_FILL = 254
COORD_FILL = -9999.0
TOLERANCE = 0.01  # degrees

SMOS_CRS = "EPSG:6931"
SMOS_CELL = 25000.0
SMOS_SHAPE = (720, 720)
SMOS_VARIABLE = "L3FT"


def open_grid(path, **kwargs) -> xr.Dataset:
    """Open a SMAP L3 FT (``SMAP_L3_FT_P_*.h5``) or SMOS L3 soil FT (``*l3soilft*.nc``) file.

    Parameters
    ----------
    path : str or os.PathLike
        The file; the product is recognised by its name.
    **kwargs
        Passed to :func:`open_smos_ft` (``partial_as``).

    Returns
    -------
    xarray.Dataset
        See :func:`open_smap_ft` and :func:`open_smos_ft`.

    Raises
    ------
    ReaderError
        A name of neither product, or what the product's reader raises.
    """
    p = check_file(path)
    if SMAP_NAME.search(p.name):
        return open_smap_ft(p)
    if "l3soilft" in p.name.lower():
        return open_smos_ft(p, **kwargs)
    raise ReaderError(
        p,
        "file name of neither SMAP L3 FT (SMAP_L3_FT_P_<yyyymmdd>_R<CRID>_<nnn>.h5) nor SMOS L3 "
        "soil FT (*l3soilft*.nc)",
    )


def _state(raw: np.ndarray, valid: tuple[int, ...]) -> np.ndarray:
    out = np.full(raw.shape, STATE_FILL, dtype="u1")
    ok = np.isin(raw, valid)
    out[ok] = raw[ok].astype("u1")
    return out


def open_smap_ft(path) -> xr.Dataset:
    """Open a SMAP L3 radiometer freeze/thaw file (SPL3FTP, global 36 km part), lazily.

    Parameters
    ----------
    path : str or os.PathLike
        ``SMAP_L3_FT_P_<yyyymmdd>_R<CRID>_<nnn>.h5``.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, lat, lon)`` = (1, 406, 964); ``ft_state_am``, ``ft_state_pm`` (uint8: 0 thawed,
        1 frozen, 255 missing; CF flags), ``lat`` ascending, ``lon``, ``x``/``y`` (m, EPSG:6933),
        ``time`` the day of the file name; ``attrs["crs"] = "EPSG:6933"``.

    Raises
    ------
    ReaderError
        Not HDF5, no date in the name, no ``Freeze_Thaw_Retrieval_Data_Global/freeze_thaw``, a
        grid other than M36, a leading axis other than AM/PM, coordinates off the EASE-Grid 2.0.

    References
    ----------
    SMAP L3 FT user guide (NSIDC SPL3FTP), doi:10.5067/P9ULUWR1E7VE; Brodzik et al. (2012).
    """
    p = check_file(path)
    date = SMAP_NAME.search(p.name)
    if not date:
        raise ReaderError(p, "expected the date in the file name (SMAP_L3_FT_P_<yyyymmdd>_R<CRID>_<nnn>.h5)")
    if file_kind(p) != "hdf5":
        raise ReaderError(p, "not an HDF5 file; expected a SMAP L3 FT HDF5 file")
    dset = f"{SMAP_GROUP}/freeze_thaw"
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ReaderError(p, f"cannot read as HDF5 ({exc}); expected a complete SMAP L3 FT file") from None
    with f:
        if dset not in f:
            raise ReaderError(p, f"expected the dataset {dset}", field=dset)
        shape = f[dset].shape
        grid = shape[-2:]
        if grid != (406, 964):
            raise ReaderError(
                p, f"grid of {grid} cells; expected 406 x 964 (EASE-Grid 2.0 global 36 km, M36)", field=dset
            )
        if len(shape) == 3 and shape[0] != 2:
            raise ReaderError(p, f"leading axis of {shape[0]}; expected 2 (AM, PM)", field=dset)
        if len(shape) not in (2, 3):
            raise ReaderError(p, f"{len(shape)}-D freeze_thaw; expected (AM/PM, rows, columns)", field=dset)
        fill = h5_attrs(f[dset]).get("_FillValue", SMAP_FILL)
        y, x, lat, lon = smap.ease2_axes(grid)
        _check_smap_coordinates(p, f[SMAP_GROUP], lat, lon)
    passes = SMAP_PASSES if len(shape) == 3 else SMAP_PASSES[:1]
    data_vars = {}
    for k, name in enumerate(passes):

        def read(key, k=k):
            def read2d(key2):
                block, rel = split_key(key2, grid)
                with h5py.File(p, "r") as fh:
                    raw = fh[dset][(k, *block)] if len(shape) == 3 else fh[dset][block]
                return _state(raw, (0, 1))[rel]

            return read_leading(key, read2d)

        data_vars[f"ft_state_{name}"] = xr.Variable(
            ("time", "lat", "lon"),
            lazy((1, *grid), np.uint8, read),
            {
                **STATE_ATTRS,
                "long_name": f"SMAP radiometer freeze/thaw state, {name.upper()} pass",
                "source_fill_value": int(fill),
            },
        )
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", [np.datetime64(f"{date.group(1)[:4]}-{date.group(1)[4:6]}-{date.group(1)[6:]}", "ns")]),
            "lat": ("lat", lat),
            "lon": ("lon", lon),
            "y": ("lat", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
            "x": ("lon", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
        },
    )
    for var in ds.data_vars.values():
        var.encoding["_FillValue"] = np.uint8(STATE_FILL)
    ds.attrs.update(title="SMAP L3 radiometer freeze/thaw state (global 36 km)", grid=smap.GRIDS[grid][0])
    return finalise(ds, p, crs=smap.CRS, reader=f"freeze_thaw {READER_VERSION}")


def _check_smap_coordinates(path, group, lat: np.ndarray, lon: np.ndarray) -> None:
    for name, expected in (("latitude", lat[:, None]), ("longitude", lon[None, :])):
        if name not in group:
            continue
        values = group[name][()]
        values = values[0] if values.ndim == 3 else values
        ok = values != COORD_FILL
        if not ok.any():
            continue
        full = np.broadcast_to(expected, values.shape)
        err = np.abs(full[ok] - values[ok])
        if name == "longitude":
            err = np.minimum(err, 360.0 - err)
        if err.max() > TOLERANCE:
            i = np.unravel_index(np.flatnonzero(ok)[int(np.argmax(err))], values.shape)
            raise ReaderError(
                path,
                f"{name} {values[i]:g} at row {i[0]}, column {i[1]}; expected {full[i]:.4f} "
                "(EASE-Grid 2.0 M36 cell centre)",
                field=f"{SMAP_GROUP}/{name}",
            )


def ease2_north_axes(shape: tuple[int, int] = SMOS_SHAPE, cell: float = SMOS_CELL) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre ``y`` (north to south) and ``x`` (west to east) of an EASE-Grid 2.0 North grid, metres.

    Parameters
    ----------
    shape : (int, int)
        (rows, columns); the grid is centred on the pole.
    cell : float
        Cell size (m).

    Returns
    -------
    y, x : numpy.ndarray
        float64 metres (EPSG:6931).

    References
    ----------
    Brodzik et al. (2012), doi:10.3390/ijgi1010032 (EASE2_N25km: 720 x 720 cells of 25 000 m).
    """
    rows, cols = shape
    x = (np.arange(cols) - cols / 2 + 0.5) * cell
    y = (rows / 2 - 0.5 - np.arange(rows)) * cell
    return y, x


def open_smos_ft(path, *, partial_as: str = "frozen") -> xr.Dataset:
    """Open a SMOS L3 soil freeze/thaw NetCDF file (EASE-Grid 2.0 North 25 km).

    Parameters
    ----------
    path : str or os.PathLike
        ``*l3soilft*.nc``.
    partial_as : {"frozen", "thawed"}
        Where "partially frozen" (class 1) goes in the binary ``ft_state``.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)`` = (n, 720, 720); ``ft_class`` (uint8 0/1/2, 255 missing),
        ``ft_state`` (uint8 0 thawed / 1 frozen, 255 missing), ``PM`` when present (integer flags);
        ``x``/``y`` (m, EPSG:6931), 2-D ``lat``/``lon`` (degrees); ``attrs["crs"] = "EPSG:6931"``.

    Raises
    ------
    ReaderError
        Not NetCDF, no ``L3FT``, dims other than (time, y, x), a grid other than 720 x 720, ``x``/``y``
        off the EASE-Grid 2.0 North 25 km cell centres, a bad ``partial_as``.

    References
    ----------
    Rautiainen et al. (2016), doi:10.1016/j.rse.2016.01.012; ESA SMOS L3 soil FT product description.
    """
    p = check_file(path)
    if partial_as not in ("frozen", "thawed"):
        raise ReaderError(p, f"partial_as must be 'frozen' or 'thawed', found {partial_as!r}")
    src = open_netcdf(p, mask_and_scale=False)
    try:
        if SMOS_VARIABLE not in src:
            raise ReaderError(p, f"expected the variable {SMOS_VARIABLE!r} (SMOS L3 soil FT)", field=SMOS_VARIABLE)
        var = src[SMOS_VARIABLE]
        if var.dims != ("time", "y", "x"):
            raise ReaderError(
                p, f"{SMOS_VARIABLE} has dims {var.dims}; expected ('time', 'y', 'x')", field=SMOS_VARIABLE
            )
        if var.shape[1:] != SMOS_SHAPE:
            raise ReaderError(
                p,
                f"grid of {var.shape[1]} x {var.shape[2]} cells; expected 720 x 720 (EASE-Grid 2.0 North 25 km)",
                field=SMOS_VARIABLE,
            )
        y, x = ease2_north_axes()
        for name, expected in (("y", y), ("x", x)):
            if name in src.coords:
                found = src[name].values.astype("float64")
                scale = 1000.0 if src[name].attrs.get("units") in ("km", "kilometre", "kilometers") else 1.0
                if not np.allclose(found * scale, expected, atol=1.0):
                    raise ReaderError(
                        p,
                        f"{name} from {found[0]:g} to {found[-1]:g}; expected the EASE-Grid 2.0 North "
                        f"25 km cell centres {expected[0]:g} .. {expected[-1]:g} m",
                        field=name,
                    )
        raw = var.values
        fill = var.attrs.get("_FillValue")
        classes = _state(np.where(raw == fill, STATE_FILL, raw) if fill is not None else raw, (0, 1, 2))
        state = np.where(
            classes == STATE_FILL, STATE_FILL, (classes >= (1 if partial_as == "frozen" else 2)).astype("u1")
        ).astype("u1")
        dims = ("time", "y", "x")
        data_vars = {
            "ft_class": (dims, classes, {**CLASS_ATTRS, "long_name": "SMOS soil freeze/thaw class"}),
            "ft_state": (
                dims,
                state,
                {**STATE_ATTRS, "long_name": f"SMOS soil freeze/thaw state (partially frozen counted as {partial_as})"},
            ),
        }
        if "PM" in src:
            data_vars["PM"] = (dims, src["PM"].values, {"long_name": "SMOS FT processing mask", "units": "1"})
        times = xr.decode_cf(src[["time"]])["time"].values
    finally:
        src.close()
    xx, yy = np.meshgrid(x, y)
    lon2, lat2 = (np.asarray(a).reshape(xx.shape) for a in transform(SMOS_CRS, "EPSG:4326", xx.ravel(), yy.ravel()))
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", np.asarray(times, dtype="datetime64[ns]")),
            "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
            "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
            "lat": (("y", "x"), lat2),
            "lon": (("y", "x"), lon2),
        },
    )
    for name in ("ft_class", "ft_state"):
        ds[name].encoding["_FillValue"] = np.uint8(STATE_FILL)
    ds.attrs.update(title="SMOS L3 soil freeze/thaw (EASE-Grid 2.0 North 25 km)", partial_as=partial_as)
    return finalise(ds, p, crs=SMOS_CRS, reader=f"freeze_thaw {READER_VERSION}")


def to_latlon(da: xr.DataArray, lat, lon, *, crs: str) -> np.ndarray:
    """Sample a projected (``y``/``x`` or EASE-Grid lat/lon-axis) state field at lat/lon grid cells, nearest cell.

    Parameters
    ----------
    da : xarray.DataArray
        ``(time, <row dim>, <column dim>)`` uint8 state with 1-D ``y`` (along the rows) and ``x``
        (along the columns) coordinates in metres of ``crs`` (as both readers return them).
    lat, lon : array_like
        1-D target axes (degrees_north, degrees_east).
    crs : str
        CRS of ``x``/``y`` (``ds.attrs["crs"]``).

    Returns
    -------
    numpy.ndarray
        uint8 (time, n_lat, n_lon); 255 where the target cell centre falls outside the grid.
    """
    y, x = da["y"].values.astype("float64"), da["x"].values.astype("float64")
    la, lo = np.meshgrid(np.asarray(lat, "float64"), np.asarray(lon, "float64"), indexing="ij")
    tx, ty = (np.asarray(a).reshape(la.shape) for a in transform("EPSG:4326", crs, lo.ravel(), la.ravel()))
    dx, dy = x[1] - x[0], y[1] - y[0]
    j = np.floor((tx - (x[0] - dx / 2)) / dx).astype("int64")
    i = np.floor((ty - (y[0] - dy / 2)) / dy).astype("int64")
    inside = (i >= 0) & (i < y.size) & (j >= 0) & (j < x.size) & np.isfinite(tx) & np.isfinite(ty)
    values = np.asarray(da.values)
    out = np.full((values.shape[0], *la.shape), STATE_FILL, dtype="u1")
    out[:, inside] = values[:, i[inside], j[inside]]
    return out
