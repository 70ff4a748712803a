"""GeoTIFF and Cloud Optimized GeoTIFF writing shared by the products and the subsets (pure rasterio, no Django).

The 1 km soil moisture product (:func:`products.generators.sm_1km.write_product`, window by window
into a tiled GeoTIFF, then :func:`to_cog`) and the subset writer
(:func:`portal.subsets.writers.to_geotiff`, a whole selection with the COG driver) open their files
with :func:`create`: one profile (tiles, deflate compression, nodata, CRS, transform) and one way
to set what each band means (scale, offset, units, description, tags) and the file's tags.

Packed integers are made with :func:`products.methods.cf.pack`; a band's ``scale`` and ``offset``
give ``value = raw * scale + offset`` as in CF 8.1.

References
----------
GDAL GTiff and COG drivers, https://gdal.org/drivers/raster/gtiff.html and
https://gdal.org/drivers/raster/cog.html; rasterio, https://rasterio.readthedocs.io/.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rasterio
import rasterio.io
import rasterio.shutil
from affine import Affine

CRS = "EPSG:4326"
BLOCKSIZE = 256
COMPRESS = "deflate"


def north_up_transform(west: float, north: float, dx: float, dy: float) -> Affine:
    """The pixel-to-map transform of a north-up grid.

    Parameters
    ----------
    west, north : float
        Outer west and north edges of the grid (degrees for EPSG:4326), not cell centres.
    dx, dy : float
        Cell width and height, positive.

    Returns
    -------
    affine.Affine
        ``(dx, 0, west, 0, -dy, north)``: row 0 is the northernmost row.
    """
    return Affine(dx, 0.0, west, 0.0, -dy, north)


def profile(
    *,
    width: int,
    height: int,
    count: int,
    dtype,
    transform: Affine,
    nodata,
    driver: str = "GTiff",
    crs: str = CRS,
    blocksize: int = BLOCKSIZE,
    compress: str = COMPRESS,
    predictor: int | None = None,
    bigtiff: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``rasterio.open(path, "w", ...)`` for a tiled, compressed GeoTIFF.

    Parameters
    ----------
    width, height, count : int
        Columns (lon), rows (lat) and bands.
    dtype : numpy dtype or str
        Band type (``int16`` packed values, ``float32``...).
    transform : affine.Affine
        Pixel to map coordinates (:func:`north_up_transform`).
    nodata : number
        Stored value of missing cells (NaN for floats).
    driver : str
        ``GTiff`` (tiles ``blocksize`` x ``blocksize``; writable window by window) or ``COG``
        (tiles, overviews and the cloud-optimized layout made when the file is closed).
    crs : str
        Default EPSG:4326.
    blocksize : int
        Tile size in pixels.
    compress : str
        Compression (deflate).
    predictor : int, optional
        GTiff predictor (2: horizontal differencing, for integers).
    bigtiff : str, optional
        GTiff ``BIGTIFF`` option (``IF_SAFER`` for files that may pass 4 GB).

    Returns
    -------
    dict
    """
    out: dict[str, Any] = {
        "driver": driver,
        "width": width,
        "height": height,
        "count": count,
        "dtype": np.dtype(dtype).name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    if driver == "COG":
        out.update(compress=compress, blocksize=blocksize)
    else:
        out.update(tiled=True, blockxsize=blocksize, blockysize=blocksize, compress=compress)
    if predictor is not None:
        out["predictor"] = predictor
    if bigtiff is not None:
        out["BIGTIFF"] = bigtiff
    return out


def set_metadata(
    dst: rasterio.io.DatasetWriter,
    *,
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
    units: Sequence[str] | None = None,
    descriptions: Sequence[str] | None = None,
    band_tags: Sequence[Mapping[str, Any]] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Set what the bands mean and the file's tags on an open GeoTIFF.

    Parameters
    ----------
    dst : rasterio.io.DatasetWriter
        Open for writing.
    scales, offsets : sequence of float, optional
        One per band: ``value = raw * scale + offset``.
    units : sequence of str, optional
        One per band.
    descriptions : sequence of str, optional
        One per band (e.g. the band's date).
    band_tags : sequence of mapping, optional
        One tag dict per band (band ``k + 1`` gets ``band_tags[k]``).
    tags : mapping, optional
        The file's tags; None values are dropped, the others written as ``str``.
    """
    if scales is not None:
        dst.scales = list(scales)
    if offsets is not None:
        dst.offsets = list(offsets)
    if units is not None:
        dst.units = list(units)
    if descriptions is not None:
        dst.descriptions = list(descriptions)
    for band, band_tag in enumerate(band_tags or (), start=1):
        dst.update_tags(band, **band_tag)
    if tags:
        dst.update_tags(**{k: str(v) for k, v in tags.items() if v is not None})


def create(
    path: str | os.PathLike,
    *,
    width: int,
    height: int,
    count: int,
    dtype,
    transform: Affine,
    nodata,
    driver: str = "GTiff",
    crs: str = CRS,
    blocksize: int = BLOCKSIZE,
    compress: str = COMPRESS,
    predictor: int | None = None,
    bigtiff: str | None = None,
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
    units: Sequence[str] | None = None,
    descriptions: Sequence[str] | None = None,
    band_tags: Sequence[Mapping[str, Any]] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> rasterio.io.DatasetWriter:
    """Open a new GeoTIFF for writing with the portal's profile and its band metadata set.

    Parameters
    ----------
    path : str or os.PathLike
        File to create (overwritten); typically a temporary path moved into place afterwards.
    width, height, count, dtype, transform, nodata, driver, crs, blocksize, compress, predictor, bigtiff
        See :func:`profile`.
    scales, offsets, units, descriptions, band_tags, tags
        See :func:`set_metadata`.

    Returns
    -------
    rasterio.io.DatasetWriter
        Open; the caller writes the bands (whole or by window) and closes it (a context manager).

    Raises
    ------
    rasterio.errors.RasterioError
        GDAL refuses the file or an option; nothing is left open.
    """
    dst = rasterio.open(
        path,
        "w",
        **profile(
            width=width,
            height=height,
            count=count,
            dtype=dtype,
            transform=transform,
            nodata=nodata,
            driver=driver,
            crs=crs,
            blocksize=blocksize,
            compress=compress,
            predictor=predictor,
            bigtiff=bigtiff,
        ),
    )
    try:
        set_metadata(
            dst, scales=scales, offsets=offsets, units=units, descriptions=descriptions, band_tags=band_tags, tags=tags
        )
    except BaseException:
        dst.close()
        raise
    return dst


def to_cog(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    blocksize: int = BLOCKSIZE,
    overview_resampling: str = "AVERAGE",
    bigtiff: str = "IF_SAFER",
) -> None:
    """Rewrite the tiled GeoTIFF ``src`` as a Cloud Optimized GeoTIFF ``dst`` with internal overviews.

    GDAL COG driver: ``blocksize`` tiles, deflate with the horizontal predictor, overviews
    (``AUTO``: halving until one tile holds the band; nodata-aware ``overview_resampling``)
    stored before the full-resolution tiles, so a client reading over HTTP ranges (GDAL
    ``/vsicurl/``) fetches only the tiles and the zoom level it needs. Band scale, offset, units,
    descriptions, nodata and tags are copied.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Source GeoTIFF and the COG to write (overwritten).
    blocksize : int
        Tile size in pixels.
    overview_resampling : str
        GDAL resampling of the overviews.
    bigtiff : str
        GDAL ``BIGTIFF`` option.
    """
    rasterio.shutil.copy(
        src,
        dst,
        driver="COG",
        BLOCKSIZE=blocksize,
        COMPRESS="DEFLATE",
        PREDICTOR="YES",
        OVERVIEWS="AUTO",
        OVERVIEW_RESAMPLING=overview_resampling,
        BIGTIFF=bigtiff,
    )
