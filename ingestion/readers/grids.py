"""The ``grid`` kind of ``ingest``: which gridded reader opens a file, by name or by content (no Django).

:data:`READERS` lists the gridded readers in the order their ``FILE_PATTERNS`` are tried;
:func:`reader_for` picks one (by file name, else by the file's magic bytes and variables), and
:func:`open_any` opens the file with it. This module follows the reader contract
(``ingestion/readers/base.py``: ``READER_VERSION``, ``FILE_PATTERNS``, ``companions``) so that
``ingest grid`` treats it as one reader. The readers themselves import the helpers they share from
:mod:`~.gridtools`, :mod:`~.grib` and :mod:`~.units`, never this module.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from types import ModuleType

import h5py
import netCDF4
import xarray as xr

from . import amsr2, era5, esacci, geotiff, gldas, grace, modis, smap
from .base import ReaderError
from .grib import grib_messages
from .gridtools import check_file, file_kind

#: The gridded readers, in the order :func:`reader_for` tries their FILE_PATTERNS.
READERS: tuple[ModuleType, ...] = (gldas, era5, modis, grace, smap, esacci, amsr2, geotiff)


def _sniff(path: Path) -> ModuleType | None:
    kind = file_kind(path)
    if kind == "hdf4":
        return modis
    if kind == "tiff":
        return geotiff
    if kind == "grib":
        centre = grib_messages(path, keys=("centre",))[0]["centre"]
        return era5 if centre == "ecmf" else gldas
    if kind not in ("hdf5", "netcdf3"):
        return None
    if kind == "hdf5":
        try:
            with h5py.File(path, "r") as f:
                keys = set(f.keys())
        except OSError as exc:
            raise ReaderError(path, f"cannot read as HDF5 ({exc}); expected a complete HDF5/NetCDF-4 file") from None
        if "Soil_Moisture_Retrieval_Data_AM" in keys:
            return smap
        if "Brightness Temperature (H)" in keys:
            return amsr2
    try:
        with netCDF4.Dataset(path) as nc:
            names, dims, title = set(nc.variables), set(nc.dimensions), str(getattr(nc, "title", ""))
    except OSError as exc:
        raise ReaderError(path, f"cannot read as NetCDF ({exc}); expected a complete NetCDF file") from None
    if "lwe_thickness" in names:
        return grace
    if {"sm", "t0"} <= names:
        return esacci
    if "GLDAS" in title or any(n.startswith(("SoilMoi", "SoilTMP", "Tair_f")) for n in names):
        return gldas
    if names & {"t2m", "swvl1", "lsm", "tp", "d2m", "skt"} or "location" in dims or "valid_time" in names:
        return era5
    return None


def reader_for(path) -> ModuleType:
    """The reader module for ``path``: by file name (FILE_PATTERNS, case-insensitive), else by content.

    Parameters
    ----------
    path : str or os.PathLike
        A gridded data file.

    Returns
    -------
    module
        One of the modules of :data:`READERS` (``open_grid``, ``READER_VERSION``, ...).

    Raises
    ------
    ReaderError
        Empty file, or no reader recognises the name or the content.
    """
    p = check_file(path)
    name = p.name.lower()
    matches = [m for m in READERS if any(fnmatch.fnmatchcase(name, pat.lower()) for pat in m.FILE_PATTERNS)]
    if len(matches) == 1:
        return matches[0]
    found = _sniff(p)
    if found is None or (matches and found not in matches):
        raise ReaderError(
            p,
            "no gridded reader recognises this file; expected GLDAS, ERA5, MODIS MOD11A1, GRACE "
            "mascon, SMAP L3, ESA CCI SM, AMSR2 L3 or GeoTIFF",
        )
    return found


def open_any(path, **kwargs) -> xr.Dataset:
    """Open a gridded file with the reader :func:`reader_for` chooses.

    Parameters
    ----------
    path : str or os.PathLike
        A gridded data file.
    **kwargs
        Passed to the reader's ``open_grid``.

    Returns
    -------
    xarray.Dataset
        As the chosen reader returns it (``ds.attrs["reader"]`` names it).

    Raises
    ------
    ReaderError
        No reader recognises the file, or the reader rejects it.
    """
    return reader_for(path).open_grid(os.fspath(path), **kwargs)


# --- reader contract (ingestion/readers/base.py) for `ingest grid` ---------------------------
READER_VERSION = "1.0"
FILE_PATTERNS: tuple[str, ...] = tuple(p for reader in READERS for p in reader.FILE_PATTERNS)


def companions(path) -> list[Path]:
    """Files read together with ``path`` by the reader :func:`reader_for` chooses (e.g. GRACE land mask)."""
    module = reader_for(path)
    return list(module.companions(path)) if hasattr(module, "companions") else []
