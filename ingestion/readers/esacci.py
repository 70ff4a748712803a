"""Reader for ESA CCI Soil Moisture v0x COMBINED (and PASSIVE) daily NetCDF files (no Django).

NO real file of this product is in the sample data: this reader follows the documented layout and
is tested on small files the tests write in that layout. Layout (Product User Guide, v08.1):

- file ``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<yyyymmdd>000000-fv08.1.nc``, NetCDF-4, one day;
- dims ``time`` (1, ``days since 1970-01-01 00:00:00 UTC``) x ``lat`` (720, 89.875 .. -89.875,
  north first) x ``lon`` (1440, -179.875 .. 179.875): a regular 0.25 degree grid;
- ``sm`` (float32, ``m3 m-3``, ``_FillValue`` -9999), ``sm_uncertainty`` (m3 m-3), ``flag`` (bit
  flags with ``flag_masks``/``flag_meanings``: snow or frozen, dense vegetation, no convergence,
  ...), ``dnflag``, ``mode``, ``sensor``, ``freqbandID`` (flags) and ``t0`` (observation time,
  ``days since 1970-01-01 00:00:00 UTC``).

Returned as CF-decoded by xarray (fill -> NaN, ``t0`` as datetime64), ``lat`` reversed to ascending
(lazily), flags with units ``1``; ``sm`` gets the CF standard name
``volume_fraction_of_condensed_water_in_soil`` when the file has none. The ACTIVE product (degree
of saturation, %) is rejected by the units check, as it is a different quantity.

References
----------
Dorigo, W., et al. (2017): ESA CCI Soil Moisture for improved Earth system understanding:
State-of-the art and future directions. Remote Sens. Environ. 203, 185-215,
doi:10.1016/j.rse.2017.07.001.
Gruber, A., et al. (2019): Evolution of the ESA CCI Soil Moisture climate data records and their
underlying merging methodology. Earth Syst. Sci. Data 11, 717-739, doi:10.5194/essd-11-717-2019.
ESA CCI Soil Moisture Product User Guide (PUG), D4.2, v08.1.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .base import ReaderError
from .gridtools import finalise, open_netcdf
from .units import check_units

READER_VERSION = "1.0"
FILE_PATTERNS = ("ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-*.nc", "ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-*.nc")
RESOLUTION = 0.25


def open_grid(path) -> xr.Dataset:
    """Open an ESA CCI SM COMBINED/PASSIVE daily file, lazily.

    Parameters
    ----------
    path : str or os.PathLike
        ``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<yyyymmdd>000000-fv0x.y.nc``.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, lat, lon)`` = (1, 720, 1440) for a global file; ``sm``, ``sm_uncertainty``
        (float32, m3 m-3, NaN where missing), ``flag`` and the other flag variables (integer, 1),
        ``t0`` (datetime64[ns], observation time); ``lat`` ascending, ``lon`` -179.875..179.875.

    Raises
    ------
    ReaderError
        Empty/truncated file, no ``sm`` variable, ``sm`` units other than m3 m-3, a grid other than
        0.25 degree, coordinates out of range or not monotonic.

    References
    ----------
    Dorigo et al. (2017), doi:10.1016/j.rse.2017.07.001; Gruber et al. (2019), doi:10.5194/essd-11-717-2019.
    """
    ds = open_netcdf(path)
    if "sm" not in ds.data_vars:
        raise ReaderError(path, "expected the soil moisture variable 'sm' (ESA CCI SM COMBINED/PASSIVE)", field="sm")
    units = ds["sm"].attrs.get("units")
    if check_units(path, "sm", units) != "m3 m-3":
        raise ReaderError(path, f"units {units!r}; expected 'm3 m-3' (volumetric soil moisture)", field="sm.units")
    for name in ("lat", "lon"):
        if name in ds.coords and ds[name].size > 1:
            step = np.abs(np.diff(ds[name].values.astype("float64")))
            if not np.allclose(step, RESOLUTION, atol=1e-4):
                raise ReaderError(
                    path,
                    f"{name} spacing {step.min():g}..{step.max():g}; expected the {RESOLUTION} degree ESA CCI grid",
                    field=name,
                )
    ds["sm"].attrs.setdefault("standard_name", "volume_fraction_of_condensed_water_in_soil")
    return finalise(ds, path, reader=f"esacci {READER_VERSION}")
