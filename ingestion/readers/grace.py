"""Reader for JPL GRACE/GRACE-FO mascon RL06.x NetCDF (terrestrial water storage anomalies) (no Django).

NO real file of this product is in the sample data: this reader follows the documented layout and
is tested on small files the tests write in that layout. Layout (JPL mascon RL06.1/RL06.3 handbook):

- ``GRCTellus.JPL.<yyyymm>_<yyyymm>.GLO.RL06.xM.MSCNv0yCRI.nc``: dims ``time`` x ``lat`` (360,
  -89.75 .. 89.75) x ``lon`` (720, 0.25 .. 359.75), 0.5 degree cells sampling 3 degree equal-area
  mascons; ``time`` in ``days since 2002-01-01T00:00:00Z`` (mid-month) with ``time_bounds``;
  ``lwe_thickness`` (cm, liquid water equivalent anomaly relative to the 2004.0-2009.999 mean,
  ``_FillValue`` -99999) and ``uncertainty`` (cm);
- companions in the same folder: ``LAND_MASK.CRI.nc`` (``land_mask``, 1 over land) and
  ``CLM4.SCALE_FACTOR.JPL.MSCNv0yCRI.nc`` (``scale_factor``: gain factors from the CLM4 model that
  restore signal smoothed by the Coastline Resolution Improvement filter; multiply
  ``lwe_thickness`` by it over land). They are merged in as variables when found
  (:func:`companions`), on the same grid.

Returned: ``lon`` rotated to -180..180 (lazily), ``lat`` ascending, ``time_bounds`` kept as a
coordinate, ``lat_bounds``/``lon_bounds`` dropped (the grid is regular). ``lwe_thickness`` has
no CF standard name (none fits a total water storage anomaly); units are checked (cm).

References
----------
Watkins, M. M., Wiese, D. N., Yuan, D.-N., Boening, C., Landerer, F. W. (2015): Improved methods for
observing Earth's time variable mass distribution with GRACE using spherical cap mascons.
J. Geophys. Res. Solid Earth 120, 2648-2671, doi:10.1002/2014JB011547.
Wiese, D. N., Landerer, F. W., Watkins, M. M. (2016): Quantifying and reducing leakage errors in the
JPL RL05M GRACE mascon solution. Water Resour. Res. 52, 7490-7502, doi:10.1002/2016WR019344.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from .base import ReaderError
from .gridtools import finalise, open_netcdf
from .units import check_units

READER_VERSION = "1.0"
FILE_PATTERNS = ("GRCTellus.JPL.*.nc",)
COMPANIONS = {"land_mask": "LAND_MASK*.nc", "scale_factor": "*SCALE_FACTOR*.nc"}
UNITS = {"lwe_thickness": "cm", "uncertainty": "cm"}


def companions(path) -> list[Path]:
    """The land-mask and scale-factor files read together with a mascon file (same folder).

    Parameters
    ----------
    path : str or os.PathLike
        The mascon file.

    Returns
    -------
    list of pathlib.Path
        Zero to two files matching :data:`COMPANIONS`; with several candidates, the one sharing the
        mascon version (``MSCNv03``...) with ``path``.

    Raises
    ------
    ReaderError
        Several candidate files and none matches the mascon version.
    """
    return [p for p in (_companion(path, pattern) for pattern in COMPANIONS.values()) if p]


def _companion(path, pattern: str) -> Path | None:
    main = Path(path)
    found = sorted(p for p in main.parent.glob(pattern) if p != main)
    version = re.search(r"MSCNv\d+", main.name)
    if len(found) > 1 and version:
        found = [p for p in found if version.group(0) in p.name] or found
    if len(found) > 1:
        raise ReaderError(main, f"several companion files match {pattern!r}: {[p.name for p in found]}; expected one")
    return found[0] if found else None


def open_grid(path, *, land_mask=None, scale_factor=None) -> xr.Dataset:
    """Open a JPL mascon file (plus its land mask and scale factors), lazily.

    Parameters
    ----------
    path : str or os.PathLike
        ``GRCTellus.JPL.*.GLO.RL06*M.MSCNv0*CRI.nc``.
    land_mask, scale_factor : str or os.PathLike, optional
        Companion files; by default found next to ``path`` (:func:`companions`).

    Returns
    -------
    xarray.Dataset
        Dims ``(time, lat, lon)`` = (n, 360, 720): ``lwe_thickness``, ``uncertainty`` (cm, NaN where
        fill); ``land_mask`` (lat, lon; 1) and ``scale_factor`` (lat, lon; 1) when found; ``lat``
        ascending, ``lon`` -179.75..179.75, ``time`` (datetime64[ns], mid-month) and ``time_bounds``.

    Raises
    ------
    ReaderError
        Empty/truncated file, no ``lwe_thickness``, units other than cm, coordinates out of range
        or not monotonic, a companion without its variable or on another grid.

    References
    ----------
    Watkins et al. (2015), doi:10.1002/2014JB011547; Wiese et al. (2016), doi:10.1002/2016WR019344.
    """
    ds = open_netcdf(path)
    if "lwe_thickness" not in ds.data_vars:
        raise ReaderError(path, "expected the variable 'lwe_thickness' (JPL mascon)", field="lwe_thickness")
    for name, units in UNITS.items():
        if name in ds.data_vars and check_units(path, name, ds[name].attrs.get("units")) != units:
            raise ReaderError(path, f"units {ds[name].attrs.get('units')!r}; expected {units!r}", field=f"{name}.units")
    ds = ds.drop_vars([v for v in ("lat_bounds", "lon_bounds") if v in ds.variables])
    ds = ds.set_coords([v for v in ("time_bounds",) if v in ds.data_vars])
    ds["lwe_thickness"].attrs.setdefault("long_name", "Liquid water equivalent thickness anomaly")
    ds = finalise(ds, path, reader=f"grace {READER_VERSION}")
    given = {"land_mask": land_mask, "scale_factor": scale_factor}
    for name, pattern in COMPANIONS.items():
        file = given[name] or _companion(path, pattern)
        if file is not None:
            ds[name] = _companion_variable(file, name, ds)
    return ds


def _companion_variable(file, name: str, ds: xr.Dataset) -> xr.DataArray:
    aux = open_netcdf(file)
    if name not in aux.data_vars:
        raise ReaderError(file, f"expected the variable {name!r}", field=name)
    aux = aux[[name]].drop_vars([v for v in ("lat_bounds", "lon_bounds", "time") if v in aux.coords])
    if "time" in aux[name].dims:
        aux = aux.isel(time=0)
    aux[name].attrs["units"] = "1"  # a mask and gain factors: dimensionless whatever the file says
    aux = finalise(aux, file)
    for c in ("lat", "lon"):
        if aux[c].size != ds[c].size or not np.allclose(aux[c].values, ds[c].values, atol=1e-6):
            raise ReaderError(
                file,
                f"{c} differs from the mascon file's ({aux[c].size} vs {ds[c].size} values); expected the same grid",
                field=c,
            )
    var = aux[name].assign_coords(lat=ds["lat"], lon=ds["lon"])
    var.attrs["source_file"] = Path(file).name
    return var
