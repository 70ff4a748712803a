"""The uncertainty beside the estimate, at the front doors: the version's table on the dataset page
(both languages), the API's ``uncertainty``, and subsets that carry (or drop) the standard error.

The grid is SYNTHETIC (tests/grids.py values) with a standard error made here; the calibration
figures are computed by ``products.methods.uncertainty`` on synthetic numbers, not hard-coded.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from portal.catalog import uncertainty
from products.methods import uncertainty as methods
from tests.cfcheck import check
from tests.grids import FT, grid_values
from tests.publishing import publish_version


def test_every_method_is_described_for_the_page():
    assert set(uncertainty.METHOD_TEXT) == set(methods.METHODS)
    assert set(uncertainty.KIND_TEXT) == set(methods.KINDS)


def _coverage(scale: float) -> methods.Coverage:
    rng = np.random.default_rng(3)
    est = rng.normal(size=500)
    return methods.interval_coverage(est, np.full(500, scale), est + rng.normal(size=500), split="twin_cv")


def test_verdicts_follow_the_measured_calibration():
    version = SimpleNamespace(
        lineage={
            "summary": {
                "uncertainty": [
                    methods.summary_entry(
                        file="a.nc",
                        variable=f"x{i}",
                        estimate="x",
                        kind="standard_error",
                        method="member_spread",
                        calibration=_coverage(scale),
                    )
                    for i, scale in enumerate((1.0, 0.3, 3.0))
                ]
                + [
                    methods.summary_entry(
                        file="a.nc",
                        variable="p",
                        estimate="ft",
                        kind="probability",
                        method="class_probability",
                        not_calibrated_reason="no held-out samples",
                    ),
                    {"file": "a.nc", "variable": "bad", "kind": "standard_error", "method": "invented"},
                ]
            }
        }
    )
    found = {e["variable"]: e["verdict"] for e in uncertainty.entries(version)}
    assert found == {"x0": "calibrated", "x1": "too narrow", "x2": "too wide", "p": "not measured"}
    assert uncertainty.entries(SimpleNamespace(lineage={})) == []


def _grid_with_error() -> xr.Dataset:
    lat, lon = np.arange(-89.5, 90, 1.0), np.arange(-179.5, 180, 1.0)
    time = pd.date_range("2015-01-01", periods=2, freq="D")
    values = grid_values(np.arange(2)[:, None, None], lat[None, :, None], lon[None, None, :]).astype("float32")
    sm_attrs = {"units": "m3 m-3", "standard_name": "volume_fraction_of_condensed_water_in_soil", "long_name": "sm"}
    ds = xr.Dataset(
        {
            "sm": (("time", "lat", "lon"), values, sm_attrs),
            "sm_standard_error": (
                ("time", "lat", "lon"),
                np.full(values.shape, 0.04, "float32"),
                methods.standard_error_attributes(sm_attrs, method="quantile_regression"),
            ),
        },
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    )
    return methods.link_ancillary(ds, "sm", "sm_standard_error")


@pytest.fixture
def version_with_error(django_db_setup):
    summary = {
        "uncertainty": [
            methods.summary_entry(
                file="grid.nc",
                variable="sm_standard_error",
                estimate="sm",
                kind="standard_error",
                method="quantile_regression",
                calibration=_coverage(0.3),
            )
        ]
    }
    return publish_version(FT, {"grid.nc": _grid_with_error()}, summary=summary)


@pytest.mark.django_db
def test_the_page_and_the_api_state_how_uncertainty_is_obtained_and_whether_it_is_calibrated(
    client, version_with_error
):
    v = version_with_error
    english = client.get(f"/datasets/{FT}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    table = english.split(f'id="version-{v.number}-uncertainty"')[1].split("</table>")[0]
    assert 'data-variable="sm_standard_error"' in table and 'data-verdict="too narrow"' in table
    assert "quantile regression" in table and "twin_cv" in table
    chinese = client.get(f"/datasets/{FT}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "Uncertainty beside the estimates" not in chinese and f'id="version-{v.number}-uncertainty"' in chinese
    api = client.get(f"/api/datasets/{FT}/").json()
    entry = next(e for ver in api["versions"] if ver["number"] == v.number for e in ver["uncertainty"])
    assert entry["verdict"] == "too narrow" and entry["calibration"]["measured"] < 0.9
    assert entry["calibration"]["n"] == 500


@pytest.mark.django_db
def test_a_subset_carries_the_standard_error_when_asked_and_names_it_only_then(client, version_with_error, tmp_path):
    api = f"/api/datasets/{FT}/subset/"
    box = {"version": version_with_error.number, "file": "grid.nc", "bbox": "10,40,14,44"}
    for variables, expected in (("sm", {"sm"}), ("sm,sm_standard_error", {"sm", "sm_standard_error"})):
        response = client.get(api, {**box, "variables": variables, "f": "netcdf"})
        assert response.status_code == 200, response.content[:300]
        path = tmp_path / f"{variables.replace(',', '_')}.nc"
        path.write_bytes(b"".join(response.streaming_content) if response.streaming else response.content)
        with netCDF4.Dataset(path) as nc:
            assert expected <= set(nc.variables) and not ({"sm", "sm_standard_error"} - expected) & set(nc.variables)
            link = getattr(nc["sm"], "ancillary_variables", None)
            assert link == ("sm_standard_error" if "sm_standard_error" in expected else None)
        report = check(path)
        assert report.cf_errors == [], report.explain()
    csv = client.get(api, {**box, "variables": "sm,sm_standard_error", "f": "csv"})
    assert csv.status_code == 200
    data = b"".join(csv.streaming_content) if csv.streaming else csv.content
    table = pd.read_csv(io.BytesIO(data))
    column = next(c for c in table.columns if c.startswith("sm_standard_error"))
    assert np.allclose(table[column], 0.04)
