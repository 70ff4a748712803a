"""Reader for MODIS MOD11A1/MYD11A1 daily land surface temperature tiles (HDF4-EOS, 1 km) (no Django).

A tile (e.g. h14v09) is 1200 x 1200 cells of the MODIS sinusoidal grid: a sphere of radius
R = 6 371 007.181 m, x = R lon cos(lat), y = R lat (lon, lat in radians). The HDF-EOS StructMetadata
gives the tile's outer corners (``UpperLeftPointMtrs``, ``LowerRightMtrs``); cell centres are
``x = x_ul + (j + 0.5) dx`` and ``y = y_ul - (i + 0.5) dy`` with ``dx = (x_lr - x_ul) / XDim``
(926.625... m). The dataset keeps the grid's dims ``(time, y, x)`` with ``x``/``y`` in metres and adds
2-D ``lat``/``lon`` (degrees) from the inverse projection (NaN beyond the edge of the sphere, which
occurs only in tiles that straddle the +-180 meridian); ``attrs["crs"]`` is the PROJ string and
a ``crs`` coordinate carries the CF ``sinusoidal`` grid mapping.

Each Scientific Data Set is decoded as its attributes say (the MOD11 convention is CF's,
``value = scale_factor * stored + add_offset``): stored values equal to ``_FillValue`` or outside
``valid_range`` become NaN. ``LST_Day_1km``/``LST_Night_1km`` (uint16, scale 0.02, fill 0) become
float32 K; ``QC_Day``/``QC_Night`` stay uint8 bit fields (units ``1``; bits 0-1 mandatory QA,
2-3 data quality, 4-5 emissivity error, 6-7 LST error, see the user guide). ``time`` is the
granule date (``RANGEBEGINNINGDATE``, 00:00 UTC); the observation time of each pixel is in
``Day_view_time``/``Night_view_time`` (local solar time, h).

References
----------
Wan, Z. (2013): Collection-6 MODIS Land Surface Temperature Products Users' Guide (MOD11A1),
ERI, University of California, Santa Barbara; Wan, Z., Hook, S., Hulley, G. (2021): MODIS/Terra
Land Surface Temperature/Emissivity Daily L3 Global 1km SIN Grid V061, doi:10.5067/MODIS/MOD11A1.061.
MODIS Land Grid: Sinusoidal projection, sphere R = 6371007.181 m (MODLAND tile calculator).
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr
from pyhdf.error import HDF4Error
from pyhdf.SD import SD, SDC

from .base import ReaderError
from .gridtools import check_file, file_kind, finalise, lazy, read_leading, split_key
from .units import check_units

READER_VERSION = "1.0"
FILE_PATTERNS = ("M[OY]D11A1*.hdf",)
RADIUS = 6371007.181  # m, MODIS sinusoidal sphere
CRS = f"+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R={RADIUS} +units=m +no_defs"
STANDARD_NAMES = {"LST_Day_1km": "surface_temperature", "LST_Night_1km": "surface_temperature"}


def sinusoidal_to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Inverse MODIS sinusoidal projection on the sphere R = 6371007.181 m.

    Parameters
    ----------
    x, y : array_like
        Projected coordinates (m), broadcastable.

    Returns
    -------
    lon, lat : numpy.ndarray
        float64 degrees; ``lon`` NaN where ``|lon| > 180`` (outside the projected sphere).

    References
    ----------
    Snyder, J. P. (1987): Map Projections - A Working Manual, USGS Prof. Paper 1395, p. 243-248.
    """
    lat = np.asarray(y, dtype="float64") / RADIUS
    with np.errstate(divide="ignore", invalid="ignore"):
        lon = np.degrees(np.asarray(x, dtype="float64") / (RADIUS * np.cos(lat)))
    lon = np.where(np.abs(lon) <= 180.0, lon, np.nan)
    return lon, np.broadcast_to(np.degrees(lat), lon.shape).copy()


def _odl_value(text: str, key: str, path) -> str:
    m = re.search(rf"\b{key}\s*=\s*(.+)", text)
    if not m:
        raise ReaderError(path, f"expected {key} in the HDF-EOS metadata", field=key)
    return m.group(1).strip()


def _odl_object(text: str, key: str) -> str | None:
    m = re.search(rf"OBJECT\s*=\s*{key}\b.*?VALUE\s*=\s*\"?([^\"\n]+)", text, re.S)
    return m.group(1).strip() if m else None


def _pair(text: str, key: str, path) -> tuple[float, float]:
    m = re.fullmatch(r"\(\s*([-+.\deE]+)\s*,\s*([-+.\deE]+)\s*\)", _odl_value(text, key, path))
    if not m:
        raise ReaderError(path, "expected a pair (x, y) in metres", field=key)
    return float(m.group(1)), float(m.group(2))


def open_grid(path) -> xr.Dataset:
    """Open a MOD11A1/MYD11A1 HDF4 tile, lazily (each SDS is read when its values are needed).

    Parameters
    ----------
    path : str or os.PathLike
        ``MOD11A1.A<yyyyddd>.h<hh>v<vv>.061.<production>.hdf`` (HDF4-EOS grid ``MODIS_Grid_Daily_1km_LST``).

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)`` = (1, 1200, 1200). ``x``, ``y`` (float64, m, sinusoidal, ``y``
        descending as stored: north first); ``lat``, ``lon`` (y, x) float64 degrees; ``time``
        datetime64[ns]. ``LST_Day_1km``, ``LST_Night_1km``: float32 K (surface_temperature, NaN
        where not retrieved); ``QC_Day``, ``QC_Night``: uint8 bit flags (1); view times (h), view
        angles (degree), emissivities and clear-sky coverage (1) as float32.
        ``attrs["crs"]``: PROJ string of the sinusoidal grid.

    Raises
    ------
    ReaderError
        Not an HDF4 file, missing StructMetadata/grid corners/date, unknown units.

    References
    ----------
    Wan (2013), MOD11 Users' Guide; doi:10.5067/MODIS/MOD11A1.061.
    """
    p = check_file(path)
    if file_kind(p) != "hdf4":
        raise ReaderError(p, "not an HDF4 file; expected a MODIS HDF4-EOS tile")
    try:
        sd = SD(str(p), SDC.READ)
    except HDF4Error as exc:
        raise ReaderError(p, f"cannot read as HDF4 ({exc}); expected a complete MODIS HDF4-EOS file") from None
    try:
        gattrs = sd.attributes()
        struct, core = gattrs.get("StructMetadata.0", ""), gattrs.get("CoreMetadata.0", "")
        nx, ny = int(_odl_value(struct, "XDim", p)), int(_odl_value(struct, "YDim", p))
        (x0, y0), (x1, y1) = _pair(struct, "UpperLeftPointMtrs", p), _pair(struct, "LowerRightMtrs", p)
        if "SNSOID" not in _odl_value(struct, "Projection", p):
            raise ReaderError(p, "expected the sinusoidal projection (GCTP_SNSOID)", field="Projection")
        date, granule = _odl_object(core, "RANGEBEGINNINGDATE"), _odl_object(core, "LOCALGRANULEID") or p.name
        if not date or not re.fullmatch(r"\d{4}-\d\d-\d\d", date):
            raise ReaderError(
                p,
                f"RANGEBEGINNINGDATE {date!r}; expected a date YYYY-MM-DD in CoreMetadata.0",
                field="RANGEBEGINNINGDATE",
            )
        sds = {name: (info[1], sd.select(name).attributes()) for name, info in sd.datasets().items()}
    finally:
        sd.end()
    dx, dy = (x1 - x0) / nx, (y0 - y1) / ny
    x = x0 + (np.arange(nx) + 0.5) * dx
    y = y0 - (np.arange(ny) + 0.5) * dy
    lon, lat = sinusoidal_to_lonlat(x[None, :], y[:, None])
    data_vars = {}
    for name, (shape, attrs) in sds.items():
        if tuple(shape) != (ny, nx):
            continue
        data_vars[name] = _variable(p, name, attrs, (ny, nx))
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", [np.datetime64(date, "ns")]),
            "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
            "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
            "lat": (("y", "x"), lat),
            "lon": (("y", "x"), lon),
            "crs": (
                (),
                0,
                {
                    "grid_mapping_name": "sinusoidal",
                    "longitude_of_central_meridian": 0.0,
                    "false_easting": 0.0,
                    "false_northing": 0.0,
                    "earth_radius": RADIUS,
                    "proj4": CRS,
                },
            ),
        },
    )
    tile = re.search(r"h\d\dv\d\d", granule)
    ds.attrs.update(
        title="MODIS MOD11A1 land surface temperature (daily, 1 km)",
        granule=granule,
        tile=tile.group(0) if tile else "",
    )
    return finalise(ds, p, crs=CRS, reader=f"modis {READER_VERSION}")


def _variable(path, name: str, attrs: dict, shape: tuple[int, int]) -> xr.Variable:
    scale, offset = attrs.get("scale_factor"), attrs.get("add_offset")
    fill, valid = attrs.get("_FillValue"), attrs.get("valid_range")
    decode = scale is not None or offset is not None
    units = check_units(path, name, attrs.get("units", "1"))
    scale = np.float32(1.0 if scale is None else scale)
    offset = np.float32(0.0 if offset is None else offset)

    def read(key):
        block, rel = split_key(key, shape)
        sd = SD(str(path), SDC.READ)
        try:
            raw = np.asarray(sd.select(name)[block])[rel]
        finally:
            sd.end()
        if not decode:
            return np.asarray(raw)
        bad = np.zeros(np.shape(raw), bool) if fill is None else raw == fill
        if valid is not None:
            bad |= (raw < valid[0]) | (raw > valid[1])
        return np.asarray(np.where(bad, np.float32(np.nan), raw.astype(np.float32) * scale + offset), np.float32)

    dtype = np.float32 if decode else _numpy_dtype(path, name)
    out_attrs = {"long_name": attrs.get("long_name", name), "units": units, "grid_mapping": "crs"}
    if name in STANDARD_NAMES:
        out_attrs["standard_name"] = STANDARD_NAMES[name]
    if decode:
        out_attrs.update(scale_factor_applied=float(scale), add_offset_applied=float(offset))
    return xr.Variable(("time", "y", "x"), lazy((1, *shape), dtype, lambda key: read_leading(key, read)), out_attrs)


def _numpy_dtype(path, name: str) -> np.dtype:
    sd = SD(str(path), SDC.READ)
    try:
        return np.asarray(sd.select(name)[0:1, 0:1]).dtype
    finally:
        sd.end()
