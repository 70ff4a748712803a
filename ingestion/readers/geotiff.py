"""Reader for GeoTIFF rasters through rasterio/GDAL (no Django).

One GeoTIFF becomes one variable, ``attrs`` from the file's tags:

- name: the dataset tag ``variable`` (e.g. written by the portal), else ``band_data``;
- units: the bands' GDAL units (all equal), else the tag ``units``, else the ``units`` argument --
  a file without units is rejected; ``standard_name`` and ``long_name`` from tags of those names;
- values: ``stored * scale + offset`` (GDAL band scales/offsets, the same convention as CF),
  ``nodata`` -> NaN, float32 (float64 for float64 files), read window by window when needed;
- bands: a ``time`` dimension when every band description (or band tag ``time``) is an ISO date or
  datetime (``2015-01-01``, ``2015-01-01T06:00``), else a ``band`` dimension numbered from 1
  with the descriptions kept as the ``band_description`` coordinate;
- grid: north-up only (no rotation). EPSG:4326 rasters get ``lat``/``lon`` cell-centre coordinates
  (returned ascending, so a north-up file's rows are reversed lazily); other CRSs keep ``y``/``x``
  (CRS units, ``y`` as stored) with 2-D ``lat``/``lon`` computed by PROJ for rasters up to
  4 million cells (larger ones: describe() transforms the edges instead). ``attrs["crs"]`` is
  ``"EPSG:<code>"`` when the CRS has one, else its WKT.

References
----------
Gillies, S., et al. (2013-): Rasterio: geospatial raster I/O for Python, https://rasterio.readthedocs.io.
GDAL raster data model (scale/offset/nodata), https://gdal.org/user/raster_data_model.html.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from rasterio.errors import RasterioIOError
from rasterio.warp import transform

from .base import ReaderError
from .gridtools import WGS84, check_file, finalise, lazy, split_key
from .units import check_units

READER_VERSION = "1.0"
FILE_PATTERNS = ("*.tif", "*.tiff", "*.TIF", "*.TIFF")
MAX_LATLON_CELLS = 4_000_000
_DATE = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d)?)?")


def open_grid(path, *, units: str | None = None) -> xr.Dataset:
    """Open a GeoTIFF lazily as a CF dataset (see the module docstring for the rules).

    Parameters
    ----------
    path : str or os.PathLike
        GeoTIFF (or any single-file raster GDAL reads) with a CRS and a north-up geotransform.
    units : str, optional
        UDUNITS units to use when the file has none.

    Returns
    -------
    xarray.Dataset
        One variable ``(time|band, lat, lon)`` for EPSG:4326 or ``(time|band, y, x)`` otherwise,
        float32/float64 with NaN for nodata, ``units`` normalised; ``attrs["crs"]``.

    Raises
    ------
    ReaderError
        Empty or unreadable file, no CRS, a rotated grid, bands with different units, no units,
        unknown units, coordinates out of range.

    References
    ----------
    Rasterio documentation; GDAL raster data model.
    """
    p = check_file(path)
    try:
        src = rasterio.open(p)
    except RasterioIOError as exc:
        raise ReaderError(p, f"cannot read as a raster ({exc}); expected a GeoTIFF") from None
    with src:
        if src.crs is None:
            raise ReaderError(p, "no CRS; expected a georeferenced GeoTIFF", field="crs")
        t = src.transform
        if t.b != 0 or t.d != 0:
            raise ReaderError(p, f"rotated geotransform {tuple(t)[:6]}; expected a north-up grid", field="transform")
        tags, count, height, width = src.tags(), src.count, src.height, src.width
        band_units = {u for u in src.units if u}
        scales, offsets, nodata = src.scales, src.offsets, src.nodatavals
        descriptions = [d or src.tags(i + 1).get("time", "") for i, d in enumerate(src.descriptions)]
        dtype = np.dtype(src.dtypes[0])
        epsg = src.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else src.crs.to_wkt()
        crs_obj = src.crs
    if len(band_units) > 1:
        raise ReaderError(p, f"bands have different units {sorted(band_units)}; expected one variable", field="units")
    name = tags.get("variable", "band_data")
    found = band_units.pop() if band_units else tags.get("units", units)
    attrs = {"units": check_units(p, name, found)}
    attrs.update({k: tags[k] for k in ("standard_name", "long_name") if k in tags})
    out_dtype = np.float64 if dtype == np.float64 else np.float32

    def read(key):
        (bands, rows, cols), rel = split_key(key, (count, height, width))
        indexes = list(range(bands.start + 1, bands.stop + 1))
        with rasterio.open(p) as s:
            raw = s.read(indexes, window=((rows.start, rows.stop), (cols.start, cols.stop)))
        out = raw.astype(out_dtype)
        for i, b in enumerate(indexes):
            if nodata[b - 1] is not None:
                out[i][raw[i] == nodata[b - 1]] = np.nan
            out[i] = out[i] * (scales[b - 1] or 1.0) + (offsets[b - 1] or 0.0)
        return out[rel]

    is_time = count > 0 and all(_DATE.fullmatch(d.strip()) for d in descriptions)
    lead = "time" if is_time else "band"
    xs = t.c + (np.arange(width) + 0.5) * t.a
    ys = t.f + (np.arange(height) + 0.5) * t.e
    geographic = epsg == 4326
    hdims = ("lat", "lon") if geographic else ("y", "x")
    coords: dict[str, tuple] = {hdims[0]: (hdims[0], ys), hdims[1]: (hdims[1], xs)}
    if is_time:
        coords["time"] = ("time", pd.DatetimeIndex([d.strip() for d in descriptions]).values.astype("datetime64[ns]"))
    else:
        coords["band"] = ("band", np.arange(1, count + 1))
        coords["band_description"] = ("band", np.array(descriptions, dtype=object).astype(str))
    if not geographic:
        coords["x"] = (
            "x",
            xs,
            {
                "standard_name": "projection_x_coordinate",
                "units": "m" if crs_obj.is_projected else "degree",
                "axis": "X",
            },
        )
        coords["y"] = (
            "y",
            ys,
            {
                "standard_name": "projection_y_coordinate",
                "units": "m" if crs_obj.is_projected else "degree",
                "axis": "Y",
            },
        )
        if height * width <= MAX_LATLON_CELLS:
            gx, gy = np.meshgrid(xs, ys)
            lon, lat = transform(crs_obj, WGS84, gx.ravel(), gy.ravel())
            coords["lon"] = (("y", "x"), np.asarray(lon).reshape(height, width))
            coords["lat"] = (("y", "x"), np.asarray(lat).reshape(height, width))
    var = xr.Variable((lead, *hdims), lazy((count, height, width), out_dtype, read), attrs)
    ds = xr.Dataset({name: var}, coords=coords)
    ds.attrs.update({k: v for k, v in tags.items() if k not in ("variable", "units", "standard_name", "long_name")})
    return finalise(ds, p, crs=crs, reader=f"geotiff {READER_VERSION}")
