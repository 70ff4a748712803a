"""products.methods.geotiff: the one GeoTIFF profile and band metadata of the 1 km product and the subsets (no database)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from products.methods import cf, geotiff


def test_the_transform_puts_row_zero_at_the_north_edge():
    t = geotiff.north_up_transform(20.0, 10.0, 0.5, 0.25)
    assert t @ (0, 0) == (20.0, 10.0) and t @ (2, 4) == (21.0, 9.0)


def test_a_packed_geotiff_written_by_window_then_made_a_cog_keeps_its_metadata(tmp_path):
    values = np.random.default_rng(0).uniform(0, 0.6, (2, 40, 50))
    values[0, :3, :4] = np.nan
    packed = cf.pack(values, scale_factor=0.001, dtype="int16", fill=np.int16(-9999), valid_range=(0, 1000))
    staging, cog = tmp_path / "staging.tif", tmp_path / "cog.tif"
    with geotiff.create(
        staging,
        width=50,
        height=40,
        count=2,
        dtype="int16",
        transform=geotiff.north_up_transform(20.0, 10.0, 0.01, 0.01),
        nodata=-9999,
        predictor=2,
        bigtiff="IF_SAFER",
        scales=[0.001] * 2,
        offsets=[0.0] * 2,
        units=["m3 m-3"] * 2,
        descriptions=["sm 2019-06-01", "sm 2019-06-02"],
        band_tags=[{"time": "a"}, {"time": "b"}],
        tags={"data_kind": "synthetic twin", "history": 1, "dropped": None},
    ) as dst:
        for band in (1, 2):
            for rows in (slice(0, 20), slice(20, 40)):
                dst.write(packed[band - 1, rows], band, window=Window(0, rows.start, 50, 20))
    geotiff.to_cog(staging, cog)
    with rasterio.open(staging) as src:
        assert src.profile["tiled"] and src.profile["blockxsize"] == 256 and src.compression.value == "DEFLATE"
    with rasterio.open(cog) as src:
        assert src.driver == "GTiff" and src.dtypes == ("int16", "int16") and src.nodata == -9999
        assert src.crs.to_epsg() == 4326 and src.compression.value == "DEFLATE"
        assert src.scales == (0.001, 0.001) and src.offsets == (0.0, 0.0) and src.units == ("m3 m-3", "m3 m-3")
        assert src.descriptions == ("sm 2019-06-01", "sm 2019-06-02") and src.tags(2)["time"] == "b"
        tags = src.tags()
        assert tags["data_kind"] == "synthetic twin" and tags["history"] == "1" and "dropped" not in tags
        np.testing.assert_array_equal(src.read(), packed)


def test_the_cog_driver_profile_and_a_float_band(tmp_path):
    profile = geotiff.profile(
        width=3,
        height=2,
        count=1,
        dtype=np.dtype("float32"),
        nodata=float("nan"),
        transform=geotiff.north_up_transform(5, 50, 1, 1),
        driver="COG",
        blocksize=128,
    )
    assert profile["blocksize"] == 128 and "tiled" not in profile and profile["dtype"] == "float32"
    path = tmp_path / "f.tif"
    with geotiff.create(path, **{k: v for k, v in profile.items() if k not in ("crs", "compress")}) as dst:
        dst.write(np.arange(6, dtype="float32").reshape(1, 2, 3))
    with rasterio.open(path) as src:
        assert src.read(1).tolist() == [[0, 1, 2], [3, 4, 5]] and np.isnan(src.nodata)


def test_band_metadata_of_the_wrong_length_is_refused(tmp_path):
    with pytest.raises(ValueError):
        geotiff.create(
            tmp_path / "x.tif",
            width=4,
            height=4,
            count=1,
            dtype="int16",
            nodata=0,
            transform=geotiff.north_up_transform(5, 50, 1, 1),
            scales=[1.0, 2.0],
        )
