"""Reader for GCOM-W/AMSR2 Level 3 brightness temperature (JAXA, HDF5, global EQR grid) (no Django).

NO real file of this product is in the sample data: this reader follows the documented layout and
is tested on small files the tests write in that layout. Layout (JAXA AMSR2 Level 3 product format
specification):

- file ``GW1AM2_<yyyymmdd>_<01D|01M>_EQM<A|D>_L3SGT<ff><H|L>A<version>.h5``: daily (``01D``) or
  monthly (``01M``, day ``00``) mean, equirectangular (``EQ``), ascending (``A``) or descending
  (``D``) orbits, frequency ``ff`` (06, 07, 10, 18, 23, 36, 89 GHz), ``H`` 0.1 degree
  (1800 x 3600) or ``L`` 0.25 degree (720 x 1440) grid;
- datasets ``Brightness Temperature (H)`` and ``Brightness Temperature (V)`` (uint16, rows x
  columns, attribute ``SCALE FACTOR`` = 0.01, so K = 0.01 x stored; 65534 = no observation,
  65535 = error);
- grid: rows from north to south (first row centred at 90 - res/2), columns eastwards from the
  Greenwich meridian (first column centred at res/2); NASA LIS's AMSR2 L3 reader
  (``readGCOMWAMSR2TbANNdata``) likewise flips the rows and rotates the columns by half a turn.

Returned: ``tb_h``, ``tb_v`` (float32 K, ``brightness_temperature``, NaN where 65534/65535) with
dims ``(time, lat, lon)``, ``lat`` ascending and ``lon`` rotated to -180..180 (both lazily),
``time`` the day (or month) from the file name; ``attrs``: ``frequency_ghz``, ``orbit_direction``.

References
----------
JAXA (2013-2020): GCOM-W1 AMSR2 Higher Level Product Format Specification, Level 3 part.
Imaoka, K., et al. (2010): Global Change Observation Mission (GCOM) for monitoring carbon, water
cycles, and climate change. Proc. IEEE 98, 717-734, doi:10.1109/JPROC.2009.2036869.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from .base import ReaderError
from .gridtools import check_file, file_kind, finalise, h5_attrs, lazy_h5

READER_VERSION = "1.0"
FILE_PATTERNS = ("GW1AM2_*_EQM*_L3SGT*.h5",)
NAME = re.compile(r"GW1AM2_(\d{6})(\d\d)_(01D|01M)_EQM([AD])_L3SGT(\d\d)([HL])")
FREQUENCIES_GHZ = {"06": 6.925, "07": 7.3, "10": 10.65, "18": 18.7, "23": 23.8, "36": 36.5, "89": 89.0}
GRIDS = {(720, 1440): 0.25, (1800, 3600): 0.1}
DATASETS = {"tb_h": "Brightness Temperature (H)", "tb_v": "Brightness Temperature (V)"}
SCALE = 0.01
INVALID = 65534  # stored values >= 65534 are no observation (65534) or error (65535)


def open_grid(path) -> xr.Dataset:
    """Open a JAXA AMSR2 L3 brightness temperature file (EQR grid), lazily.

    Parameters
    ----------
    path : str or os.PathLike
        ``GW1AM2_<yyyymmdd>_01D_EQM<A|D>_L3SGT<ff><H|L>A<version>.h5``.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, lat, lon)`` = (1, 720, 1440) or (1, 1800, 3600); ``tb_h``, ``tb_v`` float32 K
        (brightness_temperature, polarisation H/V), NaN where not observed.

    Raises
    ------
    ReaderError
        A file name not in the JAXA pattern (the date, frequency and orbit come from it), not
        HDF5, a missing dataset, a grid other than :data:`GRIDS`, H and V of different shapes.

    References
    ----------
    JAXA, GCOM-W1 AMSR2 Higher Level Product Format Specification (Level 3).
    """
    p = check_file(path)
    m = NAME.search(p.name)
    if not m:
        raise ReaderError(
            p,
            "file name not in the JAXA pattern GW1AM2_<yyyymmdd>_01D_EQM<A|D>_L3SGT<ff><H|L>..."
            ".h5; the date, orbit and frequency come from it",
        )
    month, day, period, orbit, freq, _ = m.groups()
    if file_kind(p) != "hdf5":
        raise ReaderError(p, "not an HDF5 file; expected a JAXA AMSR2 L3 HDF5 file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ReaderError(p, f"cannot read as HDF5 ({exc}); expected a complete AMSR2 L3 file") from None
    data_vars = {}
    with f:
        shapes = set()
        for name, dset in DATASETS.items():
            if dset not in f:
                raise ReaderError(p, f"expected the dataset {dset!r}", field=dset)
            shape = f[dset].shape
            if shape not in GRIDS:
                raise ReaderError(
                    p,
                    f"grid of {shape} cells; expected 720 x 1440 (0.25 degree) or 1800 x 3600 (0.1 degree)",
                    field=dset,
                )
            shapes.add(shape)
            attrs = h5_attrs(f[dset])
            scale = np.float32(attrs.get("SCALE FACTOR", SCALE))

            def decode(raw, scale=scale):
                return np.where(raw >= INVALID, np.float32(np.nan), raw.astype(np.float32) * scale)

            data_vars[name] = xr.Variable(
                ("time", "lat", "lon"),
                lazy_h5(p, dset, shape, np.float32, decode),
                {
                    "standard_name": "brightness_temperature",
                    "units": "K",
                    "long_name": dset,
                    "polarization": name[-1].upper(),
                    "scale_factor_applied": float(scale),
                },
            )
    if len(shapes) > 1:
        raise ReaderError(p, f"H and V on different grids {sorted(shapes)}; expected one grid", field=DATASETS["tb_v"])
    ((rows, cols),) = shapes
    res = GRIDS[(rows, cols)]
    time = pd.Timestamp(f"{month[:4]}-{month[4:]}-{day if period == '01D' else '01'}")
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", [time.to_datetime64()]),
            "lat": ("lat", np.round(90.0 - (np.arange(rows) + 0.5) * res, 10)),
            "lon": ("lon", np.round((np.arange(cols) + 0.5) * res, 10)),
        },
    )
    ds.attrs.update(
        title="GCOM-W/AMSR2 L3 brightness temperature",
        frequency_ghz=FREQUENCIES_GHZ.get(freq, float(freq)),
        orbit_direction={"A": "ascending", "D": "descending"}[orbit],
        averaging_period={"01D": "day", "01M": "month"}[period],
    )
    return finalise(ds, p, reader=f"amsr2 {READER_VERSION}")
