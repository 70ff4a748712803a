"""The pure map rendering (portal.maps.render): colour maps fit for the variable, resampling, PNG, legends."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from portal.maps import render


def test_the_colour_map_fits_the_variable():
    et = render.choose_style("ET", {"units": "mm day-1", "long_name": "evapotranspiration"}, (0.0, 6.0))
    sm = render.choose_style("sm", {"units": "m3 m-3", "long_name": "volumetric soil moisture"}, (0.02, 0.5))
    anomaly = render.choose_style("tws", {"units": "cm", "long_name": "TWS anomaly"}, (1.0, 3.0))
    signed = render.choose_style("x", {"units": "mm"}, (-3.0, 2.0))
    ft = render.choose_style("ft", {"flag_values": np.array([0, 1], "i1"), "flag_meanings": "frozen thawed"})
    assert (et.kind, et.cmap) == ("sequential", "viridis")
    assert (sm.kind, sm.cmap) == ("sequential", "YlGnBu")
    assert anomaly.kind == signed.kind == "diverging" and anomaly.cmap == "RdBu"
    assert ft.kind == "categorical" and [f[:2] for f in ft.flags] == [(0.0, "frozen"), (1.0, "thawed")]


def test_flags_are_read_from_text_or_arrays_and_mismatches_are_not_flags():
    assert render.parse_flags({"flag_values": "0 1 2", "flag_meanings": "a b c"}) == [(0, "a"), (1, "b"), (2, "c")]
    assert render.parse_flags({"flag_values": [0, 1], "flag_meanings": "a"}) == []
    assert render.parse_flags({"units": "1"}) == []


def test_value_range_is_symmetric_for_anomalies_and_honours_valid_range():
    samples = np.array([-1.0, 0.5, 2.0, np.nan] * 50)
    diverging = render.Style("diverging", "RdBu", "cm", "x")
    sequential = render.Style("sequential", "viridis", "mm", "x")
    lo, hi = render.value_range(samples, diverging)
    assert lo == -hi and hi == pytest.approx(2.0)
    assert render.value_range(samples, sequential, {"valid_min": 0, "valid_max": 10}) == (0.0, 10.0)
    assert render.value_range(np.array([np.nan]), sequential) == (0.0, 1.0)


def test_colourise_is_transparent_where_missing_and_ordered_along_the_map():
    style = render.Style("sequential", "viridis", "mm", "x")
    rgba = render.colourise(np.array([[0.0, 0.5, 1.0, np.nan]]), style, 0, 1)
    assert rgba[0, 3, 3] == 0 and (rgba[0, :3, 3] == 255).all()
    lut = render._lut("viridis")
    assert (rgba[0, 0] == lut[0]).all() and (rgba[0, 2] == lut[255]).all()
    flags = render.choose_style("ft", {"flag_values": [0, 1], "flag_meanings": "frozen thawed"})
    cat = render.colourise(np.array([[0.0, 1.0, 7.0]]), flags, 0, 1)
    assert tuple(cat[0, 0]) == render._hex_rgba(flags.flags[0][2]) and cat[0, 2, 3] == 0


def test_nearest_indices_wrap_longitudes_and_leave_the_outside_out():
    lon = np.arange(-179.5, 180, 1.0)
    assert list(render.nearest_indices(lon, np.array([-179.6, 179.9, 181.2, 540.4]), periodic=True)) == [0, 359, 1, 0]
    lat_desc = np.arange(89.5, -90, -1.0)
    assert list(render.nearest_indices(lat_desc, np.array([89.9, -89.9, 20.5]))) == [0, 179, 69]
    regional = np.arange(10.25, 20, 0.5)  # 10..20
    assert list(render.nearest_indices(regional, np.array([9.0, 10.1, 19.9, 21.0]))) == [-1, 0, 19, -1]


def test_resample_and_gather_put_each_cell_under_its_pixels():
    lat, lon = np.arange(-89.5, 90, 1.0), np.arange(-179.5, 180, 1.0)
    field = lat[:, None] * 1000 + lon[None, :]
    rows, cols = render.resample_plan(lat, lon, (10, 20, 14, 22), 4, 2)
    used_r, used_c = np.unique(rows), np.unique(cols)
    out = render.gather(field[np.ix_(used_r, used_c)], rows, cols, used_r, used_c)
    assert out.shape == (2, 4)
    assert out[0, 0] == 21.5 * 1000 + 10.5 and out[1, 3] == 20.5 * 1000 + 13.5  # north row first


def test_png_and_legends():
    style = render.Style("sequential", "YlGnBu", "m3 m-3", "soil moisture")
    png = render.encode_png(render.colourise(np.linspace(0, 1, 12).reshape(3, 4), style, 0, 1))
    image = Image.open(io.BytesIO(png))
    assert image.size == (4, 3) and image.mode == "RGBA"
    info = render.legend(style, 0.0, 0.5)
    assert info["units"] == "m3 m-3" and info["stops"][0][0] == 0.0 and info["stops"][-1][0] == 0.5
    legend = Image.open(io.BytesIO(render.legend_png(style, 0, 0.5)))
    assert legend.size[0] > 100
    flags = render.choose_style("ft", {"flag_values": [0, 1], "flag_meanings": "frozen thawed"})
    assert [c["meaning"] for c in render.legend(flags, 0, 1)["categories"]] == ["frozen", "thawed"]


def test_uncertainty_is_drawn_sequential_whatever_the_estimate_sign():
    se = render.choose_style(
        "tws_anomaly_standard_error",
        {"units": "mm", "long_name": "standard error of the TWS anomaly", "standard_name": "x standard_error"},
        (-1.0, 5.0),  # a sampled range across zero would make any other variable diverging
    )
    probability = render.choose_style("probability_frozen", {"units": "1", "long_name": "probability that..."})
    assert (se.kind, se.cmap) == ("sequential", "magma")
    assert (probability.kind, probability.cmap) == ("sequential", "cividis")
    assert render.uncertainty_kind("sm", {"units": "m3 m-3"}) is None
    assert render.uncertainty_kind("err", {"uncertainty_method": "member_spread"}) == "standard_error"
