"""Station files (/api/observations/?f=netcdf, CF DSG timeSeries) pass the standard checkers.

Observations come from real files: the towers and basins the session setup ingests (CARDAMOM-
FluxVal, ECOSTRESS cal/val, GRDC major river basins) and two small ISMN soil moisture files
ingested here (sensor depths in the variable names, ISMN quality flags). The checkers
(:func:`tests.cfcheck.check`): cfchecker without errors, IOOS ``cf:1.8`` at 100 %, ``acdd:1.3`` at
90 % or more.
"""

from __future__ import annotations

import csv
import io
import re

import netCDF4
import numpy as np
import pytest
import xarray as xr

from ingestion.models import Observation, Station
from tests.cfcheck import check

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Passing the dataset to every single check is deprecated"),
]

ISMN_FILES = (
    "format_ceop_sep/SMOSMANIA/SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm",
    "extracted/multinetwork_header_values/SOILSCAPE/node505/SOILSCAPE_SOILSCAPE_node505_sm_0.050000_"
    "0.050000_EC5_20070101_20131231.stm",
)


@pytest.fixture
def ismn(shared_data, settings):
    """Two ISMN stations (SMOSMANIA Narbonne, SOILSCAPE node505), ingested in the test's transaction."""
    from ingestion.services import ingest

    settings.PORTAL_URL = "https://hydro.example.org"
    summary = ingest("ismn", [shared_data / "ismn_testdata" / f for f in ISMN_FILES])
    assert not summary.failed
    return ["SMOSMANIA", "SOILSCAPE"]


def download(client, tmp_path, **params):
    response = client.get("/api/observations/", params)
    assert response.status_code == 200, response.content
    path = tmp_path / {"netcdf": "observations.nc", "json": "observations.json"}.get(
        params.get("f"), "observations.csv"
    )
    path.write_bytes(b"".join(response.streaming_content))
    return path


# ACDD attributes a station file cannot fill from what the portal knows: the vertical extent of
# stations measured at unknown heights, the version of a source that gives none (ISMN), the
# networks' own e-mails (creator_email), the extent of basins the sample data give no coordinates,
# standard names of quantities CF has none for in the stored units (ET in mm d-1, basin products).
# Stations still reach 90 %; basins (no coordinates at all) 70 %.
UNKNOWABLE = re.compile(
    r"(\w+_resolution|geospatial_vertical_\w+|geospatial_bounds_vertical_crs|instrument\w*|program|"
    r"product_version|\w+_email) not present|"
    r"geospatial_(lat|lon|bounds)\w* not present|geospatial_(lat|lon)_extents_match|"
    r'variable "(et|et_\w+|p_\w+|r_\w+|tws_\w+)" missing the following attributes:: standard_name$'
)


def acdd_gaps(report) -> list[str]:
    """The ACDD failures of ``report`` other than :data:`UNKNOWABLE` ones."""
    messages = [m.strip() for line in report.failures["acdd:1.3"] for m in line.split(";")]
    return [m for m in messages if m and not m.startswith("Global Attributes:") and not UNKNOWABLE.search(m)] + [
        m for m in messages if m.startswith("Global Attributes:") and not UNKNOWABLE.search(m)
    ]


def assert_passes(path, *, acdd: float = 0.9):
    report = check(path)
    assert report.cf_errors == [], report.explain()
    assert report.score("cf:1.8") == 1.0, report.explain()
    assert acdd_gaps(report) == [], report.explain()
    assert report.score("acdd:1.3") >= acdd, report.explain()
    return report


def test_soil_moisture_stations_are_a_dsg_with_depths_and_flags_that_passes_the_checkers(client, ismn, tmp_path):
    # two named stations (other tests may ingest more stations of these networks into the session database)
    path = download(
        client, tmp_path, network=",".join(ismn), station="SMOSMANIA:Narbonne,SOILSCAPE:node505", f="netcdf"
    )
    assert_passes(path)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["featureType"] == "timeSeries" and ds["timeseries_id"].attrs["cf_role"] == "timeseries_id"
        assert sorted(ds["station_id"].values) == ["SMOSMANIA:SMOSMANIA:Narbonne", "SOILSCAPE:SOILSCAPE:node505"]
        # the sensor depth is a coordinate, not part of the name
        assert "sm" in ds.data_vars and not [v for v in ds.data_vars if "0.05" in v]
        assert ds["depth"].attrs["units"] == "m" and ds["depth"].attrs["positive"] == "down"
        np.testing.assert_array_equal(ds["depth"].values, [0.05, 0.05])
        sm = ds["sm"]
        assert sm.attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
        assert sm.attrs["units"] == "m3 m-3" and sm.attrs["long_name"]
        flag = ds[sm.attrs["ancillary_variables"]]
        meanings = flag.attrs["flag_meanings"].split()
        assert flag.attrs["standard_name"] == "quality_flag" and len(meanings) == len(flag.attrs["flag_values"])
        assert meanings and all(re.fullmatch(r"[A-Za-z0-9_]+", w) for w in meanings)
        for code in ("SMOSMANIA:Narbonne", "SOILSCAPE:node505"):
            feature = list(ds["station_id"].values).index(f"{Station.objects.get(code=code).network}:{code}")
            rows = Observation.objects.filter(station__code=code)
            assert int(sm[feature].notnull().sum()) == rows.count()
            # each stored flag, as its code
            times = sm["time"].values[sm[feature].notnull().values]
            stored = dict(rows.values_list("time", "quality_flag"))
            codes = flag[feature].sel(time=times).values
            words = [meanings[list(flag.attrs["flag_values"]).index(c)] for c in codes]
            assert words == [
                stored[t.astype("datetime64[us]").item().replace(tzinfo=next(iter(stored)).tzinfo)].replace(",", "_")
                for t in times
            ]
        assert "ThetaProbe-ML2X" in ds.attrs["instrument"] and ds.attrs["creator_name"] == "SMOSMANIA, SOILSCAPE"
        assert ds.attrs["geospatial_vertical_min"] == 0.05
    with netCDF4.Dataset(path) as nc:  # fixed-length character arrays, no int64, no fill on coordinates
        assert nc["timeseries_id"].dtype == np.dtype("S1") and nc["time"].dtype == np.float64
        assert "_FillValue" not in nc["time"].ncattrs() and "_FillValue" not in nc["lat"].ncattrs()


@pytest.mark.parametrize(("network", "variables"), [("AmeriFlux", "le,h,ta"), ("FLUXNET2015", "et,gpp")])
def test_tower_observations_pass_the_checkers(client, tmp_path, settings, network, variables):
    settings.PORTAL_URL = "https://hydro.example.org"
    code = (
        Station.objects.filter(network=network, observations__variable=variables.split(",")[0])
        .order_by("code")
        .values_list("code", flat=True)
        .first()
    )
    path = download(client, tmp_path, network=network, station=code, variables=variables, f="netcdf")
    assert_passes(path, acdd=0.9)  # see UNKNOWABLE
    with xr.open_dataset(path) as ds:
        assert list(ds["station_id"].values) == [f"{network}:{code}"] and "depth" not in ds.variables
        for name in variables.split(","):
            if name in ds:
                assert ds[name].attrs["long_name"] and ds[name].attrs["units"]


def test_basins_without_coordinates_pass_the_checkers(client, tmp_path, settings, verified_user):
    settings.PORTAL_URL = "https://hydro.example.org"
    client.force_login(verified_user)  # basin tables carry no open licence: verified users only
    codes = sorted(Station.objects.filter(network="GRDC-MRB").values_list("code", flat=True))[:2]
    path = download(client, tmp_path, network="GRDC-MRB", station=",".join(codes), f="netcdf")
    assert_passes(path, acdd=0.7)  # no coordinates: no spatial extent at all (see UNKNOWABLE)


def test_station_csv_values_keep_their_precision(client, ismn, tmp_path):
    path = download(client, tmp_path, network="SMOSMANIA", time="2007-01-01/2007-01-02", f="csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert rows and all(r["units"] == "m3 m-3" for r in rows)
    stored = Observation.objects.filter(station__network="SMOSMANIA").values_list("value", flat=True)
    assert {r["value"] for r in rows} <= {repr(v) for v in stored} | {str(np.float32(v)) for v in stored}
    assert all(len(r["value"]) <= 8 for r in rows)  # 0.3134, not 0.31340000033378601
