"""Reader for SMAP L3 radiometer soil moisture (SPL3SMP, and SPL3SMP_E) HDF5 files (no Django).

NO real file of this product is in the sample data: this reader follows the documented layout and
is tested on small files the tests write in that layout. Layout (product specification):

- file ``SMAP_L3_SM_P_<yyyymmdd>_R<CRID>_<nnn>.h5`` (``SMAP_L3_SM_P_E_...`` for the 9 km product),
  one day, groups ``Soil_Moisture_Retrieval_Data_AM`` (6 am descending overpasses) and, in recent
  releases, ``Soil_Moisture_Retrieval_Data_PM`` (6 pm ascending, dataset names suffixed ``_pm``);
- 2-D datasets (rows x columns) on the global EASE-Grid 2.0 (EPSG:6933, cylindrical equal area on
  WGS84, true scale at 30 deg): 406 x 964 cells of 36 032.22 m (M36, SPL3SMP) or 1624 x 3856 cells of
  9 008.06 m (M09, SPL3SMP_E), row 0 in the north;
- ``soil_moisture`` (float32, ``cm**3/cm**3``, ``_FillValue`` -9999), ``soil_moisture_error``,
  ``retrieval_qual_flag`` (uint16 bit flags, fill 65534; bit 0 set = retrieval not of recommended
  quality), ``surface_flag``, and ``latitude``/``longitude`` of the cell centres (-9999 where no
  retrieval).

Returned: dims ``(time, lat, lon)`` (one day at 00:00 UTC from the file name; per-cell overpass
times are in ``tb_time_utc``, not read), ``lat`` ascending (file rows reversed lazily), ``lon``
ascending, plus the projected ``y`` (along ``lat``) and ``x`` (along ``lon``) in metres and
``attrs["crs"] = "EPSG:6933"``. Because the grid is cylindrical, latitude depends on the row only
and longitude on the column only; both are computed from the EASE-Grid 2.0 definition with PROJ
and checked against the file's ``latitude``/``longitude`` arrays. Soil moisture becomes
``m3 m-3`` (same numbers as cm3 cm-3), fill -> NaN; flags stay integers with units ``1``.

References
----------
O'Neill, P. E., et al. (2021): SMAP L3 Radiometer Global Daily 36 km EASE-Grid Soil Moisture,
Version 8, NSIDC, doi:10.5067/OMHVSRGFX38O; SMAP Level 3 Passive Soil Moisture Product
Specification Document (JPL D-72551).
Brodzik, M. J., et al. (2012): EASE-Grid 2.0: Incremental but significant improvements for
Earth-gridded data sets. ISPRS Int. J. Geo-Inf. 1, 32-45, doi:10.3390/ijgi1010032.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import h5py
import numpy as np
import xarray as xr
from rasterio.warp import transform

from .base import ReaderError
from .gridtools import check_file, file_kind, finalise, h5_attrs, lazy_h5
from .units import check_units

READER_VERSION = "1.0"
FILE_PATTERNS = ("SMAP_L3_SM_P_*.h5",)
CRS = "EPSG:6933"
X_MIN, Y_MAX = -17367530.445161499, 7314540.8306386005  # outer edges of the EASE-Grid 2.0 global grids (m)
GRIDS = {
    (406, 964): ("EASE-Grid 2.0 global 36 km (M36)", 36032.220840584),
    (1624, 3856): ("EASE-Grid 2.0 global 9 km (M09)", 9008.055210146),
}
GROUPS = {"Soil_Moisture_Retrieval_Data_AM": "", "Soil_Moisture_Retrieval_Data_PM": "_pm"}
FIELDS = ("soil_moisture", "soil_moisture_error", "retrieval_qual_flag", "surface_flag")
FILL = -9999.0
TOLERANCE = 0.01  # degrees: file coordinates are float32 cell centres


def ease2_axes(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell-centre coordinates of an EASE-Grid 2.0 global grid.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``, a key of :data:`GRIDS`.

    Returns
    -------
    y, x : numpy.ndarray
        float64 metres (EPSG:6933), ``y`` north to south (row order), ``x`` west to east.
    lat, lon : numpy.ndarray
        float64 degrees of each row and column (PROJ inverse of EPSG:6933).

    References
    ----------
    Brodzik et al. (2012), doi:10.3390/ijgi1010032.
    """
    rows, cols = shape
    cell = GRIDS[shape][1]
    x = X_MIN + (np.arange(cols) + 0.5) * cell
    y = Y_MAX - (np.arange(rows) + 0.5) * cell
    lon = np.asarray(transform(CRS, "EPSG:4326", x, np.zeros(cols))[0])
    lat = np.asarray(transform(CRS, "EPSG:4326", np.zeros(rows), y)[1])
    return y, x, lat, lon


def open_grid(path) -> xr.Dataset:
    """Open a SMAP L3 SM_P (36 km) or SM_P_E (9 km) daily HDF5 file, lazily.

    Parameters
    ----------
    path : str or os.PathLike
        ``SMAP_L3_SM_P_<yyyymmdd>_R<CRID>_<nnn>.h5``.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, lat, lon)`` = (1, 406, 964) or (1, 1624, 3856). ``soil_moisture``,
        ``soil_moisture_error`` (float32, m3 m-3, NaN where fill), ``retrieval_qual_flag``,
        ``surface_flag`` (uint16, 1), and the same with ``_pm`` for the PM group when present;
        ``lat`` ascending, ``lon``, ``x``/``y`` (m, EPSG:6933); ``time`` datetime64[ns].

    Raises
    ------
    ReaderError
        Not HDF5, no AM group or ``soil_moisture``, a grid other than :data:`GRIDS`, file
        ``latitude``/``longitude`` that do not match the EASE-Grid 2.0 cells, unknown units, no date
        in the file name.

    References
    ----------
    SMAP L3 SM_P product specification (JPL D-72551); O'Neill et al. (2021), doi:10.5067/OMHVSRGFX38O.
    """
    p = check_file(path)
    if file_kind(p) != "hdf5":
        raise ReaderError(p, "not an HDF5 file; expected a SMAP L3 HDF5 file")
    date = re.search(r"SMAP_L3_SM_P_(?:E_)?(\d{8})_", p.name)
    if not date:
        raise ReaderError(p, "expected the date in the file name (SMAP_L3_SM_P_<yyyymmdd>_R<CRID>_<nnn>.h5)")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ReaderError(p, f"cannot read as HDF5 ({exc}); expected a complete SMAP L3 file") from None
    with f:
        am = next(iter(GROUPS))
        if f"{am}/soil_moisture" not in f:
            raise ReaderError(p, f"expected the dataset {am}/soil_moisture", field=f"{am}/soil_moisture")
        shape = f[f"{am}/soil_moisture"].shape
        if shape not in GRIDS:
            raise ReaderError(
                p,
                f"grid of {shape[0]} x {shape[1]} cells; expected one of "
                f"{', '.join(f'{r} x {c} ({n})' for (r, c), (n, _) in GRIDS.items())}",
                field=f"{am}/soil_moisture",
            )
        y, x, lat, lon = ease2_axes(shape)
        data_vars = {}
        for group, suffix in GROUPS.items():
            if group not in f:
                continue
            _check_coordinates(p, f[group], suffix, lat, lon)
            for field in FIELDS:
                name = field + suffix
                if name in f[group]:
                    data_vars[name] = _variable(p, f[group][name], name, shape)
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
    ds.attrs.update(title="SMAP L3 radiometer soil moisture", grid=GRIDS[shape][0])
    return finalise(ds, p, crs=CRS, reader=f"smap {READER_VERSION}")


def _check_coordinates(path, group, suffix: str, lat: np.ndarray, lon: np.ndarray) -> None:
    for name, expected in (("latitude", lat[:, None]), ("longitude", lon[None, :])):
        key = name + suffix
        if key not in group:
            continue
        values = group[key][()]
        ok = values != FILL
        if not ok.any():
            continue
        err = np.abs(np.broadcast_to(expected, values.shape)[ok] - values[ok])
        if name == "longitude":
            err = np.minimum(err, 360.0 - err)
        if err.max() > TOLERANCE:
            i = np.unravel_index(np.flatnonzero(ok)[int(np.argmax(err))], values.shape)
            raise ReaderError(
                path,
                f"{name} {values[i]:g} at row {i[0]}, column {i[1]}; expected "
                f"{np.broadcast_to(expected, values.shape)[i]:.4f} (EASE-Grid 2.0 cell centre)",
                field=f"{group.name.strip('/')}/{key}",
            )


def _variable(path, dset, name: str, shape) -> xr.Variable:
    attrs = h5_attrs(dset)
    fill = attrs.pop("_FillValue", None)
    is_float = dset.dtype.kind == "f"
    decode: Callable[..., np.ndarray] | None
    out = {
        k: v
        for k, v in attrs.items()
        if k in ("long_name", "valid_min", "valid_max", "flag_masks", "flag_meanings", "flag_values")
    }
    if is_float:
        out["units"] = check_units(path, name, attrs.get("units"))
        if name.startswith("soil_moisture") and not name.startswith("soil_moisture_error"):
            out["standard_name"] = "volume_fraction_of_condensed_water_in_soil"
        fill = FILL if fill is None else float(fill)

        def decode_float(raw, fill=fill):
            return np.where(raw == fill, np.float32(np.nan), raw.astype(np.float32))

        decode, dtype = decode_float, np.float32
    else:
        out["units"] = "1"
        if fill is not None:
            out["missing_value"] = fill
        decode, dtype = None, dset.dtype
    return xr.Variable(("time", "lat", "lon"), lazy_h5(path, dset.name, shape, dtype, decode), out)
