"""Flux tower readers (FLUXNET2015, AmeriFlux BASE, REddyProc, ECOSTRESS cal/val) and their shared helpers; no database.

Real files where the shared data has them (REddyProc DE-Tha, ECOSTRESS cal/val tables); FLUXNET2015 and
AmeriFlux BASE files are written by the tests in the exact published layouts. Expected values are computed
here independently of the readers (plain Python loops over the raw text, Henderson-Sellers lambda written out).
"""

import csv
import fnmatch
import math
import os
import pickle
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingestion.readers import ameriflux, ecostress, flux, fluxnet, reddyproc
from ingestion.readers.base import PointData, ReaderError

SHARED = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data"))
LOCATIONS = SHARED / "cardamom_fluxval" / "location_fluxnet.csv"
REDDYPROC = SHARED / "reddyproc_DE-Tha" / "Example_DETha98.txt"
ECO_DIR = SHARED / "ecov002_calval_tables" / "ECOv002_calval_tables"
ECO_TABLE = ECO_DIR / "combined_eco_flux_EC_filtered.csv"
HH_NAME = "FLX_US-Ha1_FLUXNET2015_FULLSET_HH_2005-2005_1-4.csv"


def hs_lambda(t_degc):
    """Henderson-Sellers (1984) latent heat of vaporization, J kg-1, written out independently."""
    t = t_degc + 273.15
    return 1.91846e6 * (t / (t - 33.91)) ** 2


def by_variable(data: PointData, variable: str) -> pd.DataFrame:
    obs = data.observations
    return obs[obs["variable"] == variable].set_index("time").sort_index()


# --- layout-true synthetic files ------------------------------------------------------------------------


def fluxnet_hh_frame(days=3, start="2005-06-01", seed=1):
    """Half-hours in the FLUXNET2015 FULLSET HH column layout (a subset of its columns, in its order)."""
    t = pd.date_range(start, periods=48 * days, freq="30min")
    n, rng = len(t), np.random.default_rng(seed)

    def u(lo, hi):
        return np.round(rng.uniform(lo, hi, n), 3)

    return pd.DataFrame(
        {
            "TIMESTAMP_START": t.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (t + pd.Timedelta("30min")).strftime("%Y%m%d%H%M"),
            "TA_F_MDS": u(5, 25),
            "TA_F_MDS_QC": 0,
            "TA_ERA": u(5, 25),
            "TA_F": u(5, 25),
            "TA_F_QC": 0,
            "SW_IN_POT": u(0, 1000),
            "SW_IN_F": u(0, 900),
            "SW_IN_F_QC": 0,
            "VPD_F": u(0, 20),
            "VPD_F_QC": 0,
            "P_F": rng.choice([0.0, 0.0, 0.0, 0.2, 1.4], n),
            "P_F_QC": 0,
            "USTAR": u(0.05, 1.2),
            "RH": u(30, 100),
            "NETRAD": u(-80, 600),
            "TS_F_MDS_1": u(8, 18),
            "TS_F_MDS_1_QC": 0,
            "SWC_F_MDS_1": u(20, 40),
            "SWC_F_MDS_1_QC": 0,
            "G_F_MDS": u(-30, 60),
            "G_F_MDS_QC": 0,
            "LE_F_MDS": u(-20, 420),
            "LE_F_MDS_QC": 0,
            "LE_CORR": u(-20, 500),
            "H_F_MDS": u(-50, 300),
            "H_F_MDS_QC": 0,
            "NEE_VUT_REF": u(-25, 8),
            "NEE_VUT_REF_QC": 0,
            "RECO_NT_VUT_REF": u(1, 8),
            "GPP_NT_VUT_REF": u(0, 30),
        }
    )


def write_fluxnet(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False, na_rep="-9999", lineterminator="\n")
    return path


def hh_file(tmp_path, frame=None, name=HH_NAME):
    return write_fluxnet(tmp_path / name, fluxnet_hh_frame() if frame is None else frame)


def fluxnet_dd_frame():
    t = pd.date_range("2005-06-01", periods=4, freq="D")
    return pd.DataFrame(
        {
            "TIMESTAMP": t.strftime("%Y%m%d"),
            "TA_F": [12.5, 14.0, 16.25, 11.0],
            "TA_F_QC": [1.0, 1.0, 0.9, 1.0],
            "P_F": [0.0, 3.2, 11.6, -9999],
            "P_F_QC": [1.0, 1.0, 1.0, -9999],
            "LE_F_MDS": [80.0, 95.5, 60.25, 110.0],
            "LE_F_MDS_QC": [1.0, 0.9583333, 0.5, 0.8125],
            "H_F_MDS": [40.0, 35.0, 20.0, 55.0],
            "H_F_MDS_QC": [1.0, 1.0, 1.0, 0.7],
            "SWC_F_MDS_1": [31.0, 30.5, 35.0, 34.0],
            "SWC_F_MDS_1_QC": [1.0, 1.0, 1.0, 1.0],
            "NEE_VUT_REF": [-3.1, -2.5, 0.4, -4.0],
            "NEE_VUT_REF_QC": [0.9, 0.95, 0.7, 1.0],
            "GPP_NT_VUT_REF": [8.0, 7.1, 2.2, 9.5],
        }
    )


def write_ameriflux(path: Path, frame: pd.DataFrame, site="US-Ha1", version="15-5") -> Path:
    with open(path, "w", newline="") as fh:
        fh.write(f"# Site: {site}\n# Version: {version}\n")
        frame.to_csv(fh, index=False, na_rep="-9999", lineterminator="\n")
    return path


def ameriflux_frame(days=2, seed=2):
    t = pd.date_range("2016-07-01", periods=48 * days, freq="30min")
    n, rng = len(t), np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "TIMESTAMP_START": t.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (t + pd.Timedelta("30min")).strftime("%Y%m%d%H%M"),
            "CO2_1_1_1": np.round(rng.uniform(380, 420, n), 2),
            "H": np.round(rng.uniform(-50, 300, n), 2),
            "LE_2_1_1": np.round(rng.uniform(0, 50, n), 2),
            "LE_1_1_1": np.round(rng.uniform(-10, 400, n), 2),
            "TA_1_1_1": np.round(rng.uniform(10, 30, n), 2),
            "TA_PI_F_1_1_1": 99.0,
            "RH_1_1_1": np.round(rng.uniform(30, 99, n), 1),
            "P": rng.choice([0.0, 0.0, 0.5], n),
            "SWC_1_1_1": np.round(rng.uniform(10, 40, n), 1),
            "SWC_2_1_1": 50.0,
            "NETRAD_1_1_1": np.round(rng.uniform(-80, 600, n), 1),
        }
    )


# --- physics --------------------------------------------------------------------------------------------


def test_latent_heat_equals_henderson_sellers_hand_values():
    # 1.91846e6 * (273.15 / 239.24)**2 and 1.91846e6 * (293.15 / 259.24)**2, computed with 30-digit decimals
    np.testing.assert_allclose(flux.latent_heat_of_vaporization([0.0, 20.0]), [2500849.5801, 2453174.9426], rtol=1e-9)


def test_latent_heat_agrees_with_fao56_within_three_tenths_of_a_percent():
    t = np.linspace(-10, 40, 51)
    fao56 = (2.501 - 0.002361 * t) * 1e6  # Allen et al. (1998), FAO-56 eq. 3-1
    np.testing.assert_allclose(flux.latent_heat_of_vaporization(t), fao56, rtol=3e-3)
    assert np.all(np.diff(flux.latent_heat_of_vaporization(t)) < 0)  # decreases with temperature


def test_le_to_et_equals_a_hand_computed_value():
    # 100 W m-2 for half an hour at 20 degC: 100 * 1800 / 2453174.94 = 0.0733743 mm
    assert flux.le_to_et(100.0, 20.0, 1800) == pytest.approx(0.0733743024, rel=1e-8)
    # the rule of thumb: 28.4 W m-2 over a day is 1 mm d-1
    assert flux.le_to_et(28.4, 20.0, 86400) == pytest.approx(1.000238, rel=1e-5)
    assert np.isnan(flux.le_to_et(np.nan, 20.0, 1800))


# --- aggregate_daily ------------------------------------------------------------------------------------


def _one_day(le, qc=None):
    index = pd.date_range("2010-05-01", periods=len(le), freq="30min")
    frame = pd.DataFrame({"le": le, "et": np.asarray(le) / 100.0}, index=index)
    if qc is not None:
        frame["qc"] = qc
    return frame


def test_aggregate_daily_keeps_a_day_at_39_of_48_steps_and_drops_it_at_38():
    le = np.arange(48, dtype=float)
    kept = le.copy()
    kept[:9] = np.nan  # 39 valid: coverage 0.8125
    dropped = le.copy()
    dropped[:10] = np.nan  # 38 valid: 0.7917 < 0.8
    a = flux.aggregate_daily(_one_day(kept))
    b = flux.aggregate_daily(_one_day(dropped))
    assert a["le"].iloc[0] == pytest.approx(np.mean(np.arange(9, 48)))
    assert a["le_coverage"].iloc[0] == pytest.approx(39 / 48)
    assert np.isnan(b["le"].iloc[0]) and b["le_coverage"].iloc[0] == pytest.approx(38 / 48)


def test_aggregate_daily_excludes_bad_qc_steps():
    le = np.full(48, 10.0)
    le[:5] = 1000.0
    qc = np.zeros(48)
    qc[:5] = 2  # medium-quality gap fill: not good
    daily = flux.aggregate_daily(_one_day(le, qc), qc_column="qc")
    assert daily["le"].iloc[0] == 10.0
    assert daily["le_coverage"].iloc[0] == pytest.approx(43 / 48)
    assert "qc" not in daily.columns


def test_aggregate_daily_sums_et_as_the_mean_times_the_steps_of_a_day():
    le = np.linspace(0, 470, 48)
    full = flux.aggregate_daily(_one_day(le))
    assert full["et"].iloc[0] == pytest.approx(le.sum() / 100.0)
    le[[3, 7]] = np.nan
    partial = flux.aggregate_daily(_one_day(le))
    assert partial["et"].iloc[0] == pytest.approx(np.nanmean(le) / 100.0 * 48)


# --- FLUXNET2015 ----------------------------------------------------------------------------------------


def hand_daily(path, value_column, qc_column=None, good=(0, 1), per_day=48, transform=lambda row: None):
    """{date: daily mean} of a FLUXNET-style CSV computed with the csv module and loops."""
    days = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            day = row["TIMESTAMP_START"][:8]
            value = float(row[value_column])
            ok = value != -9999 and (qc_column is None or float(row[qc_column]) in good)
            got = days.setdefault(day, [])
            if ok:
                got.append(transform(row) if transform(row) is not None else value)
    return {pd.Timestamp(d): sum(v) / len(v) for d, v in days.items() if len(v) / per_day >= 0.8}


def test_fluxnet_hh_daily_et_equals_a_hand_computed_sum_of_half_hours(tmp_path):
    frame = fluxnet_hh_frame(days=3)
    frame.loc[48:56, "LE_F_MDS_QC"] = 2  # day 2: 9 of 48 not good -> 39 good, kept
    frame.loc[96:105, "LE_F_MDS"] = -9999  # day 3: 10 missing -> 38, dropped
    path = hh_file(tmp_path, frame)
    data = fluxnet.read(path, locations=LOCATIONS)
    et = by_variable(data, "et")

    def et_mm(row):
        return float(row["LE_F_MDS"]) * 1800 / hs_lambda(float(row["TA_F"]))

    expected = {d: v * 48 for d, v in hand_daily(path, "LE_F_MDS", "LE_F_MDS_QC", transform=et_mm).items()}
    assert list(et.index) == [pd.Timestamp("2005-06-01"), pd.Timestamp("2005-06-02")] == list(expected)
    np.testing.assert_allclose(et["value"], list(expected.values()), rtol=1e-12)
    assert list(et["quality_flag"]) == ["1.000", "0.812"]
    assert set(et["units"]) == {"mm d-1"}
    le = by_variable(data, "le")
    np.testing.assert_allclose(le["value"], list(hand_daily(path, "LE_F_MDS", "LE_F_MDS_QC").values()), rtol=1e-12)


def test_fluxnet_hh_converts_swc_sums_precipitation_and_keeps_carbon_units(tmp_path):
    path = hh_file(tmp_path)
    data = fluxnet.read(path, locations=LOCATIONS)
    swc = by_variable(data, "swc")
    np.testing.assert_allclose(
        swc["value"], [v / 100 for v in hand_daily(path, "SWC_F_MDS_1", "SWC_F_MDS_1_QC").values()]
    )
    assert set(swc["units"]) == {"m3 m-3"} and swc["value"].max() < 0.41
    p = by_variable(data, "p")
    raw = pd.read_csv(path)
    np.testing.assert_allclose(p["value"], raw.groupby(raw["TIMESTAMP_START"] // 10000)["P_F"].sum(), rtol=1e-12)
    assert set(p["units"]) == {"mm d-1"}
    assert set(by_variable(data, "nee")["units"]) == {"umol m-2 s-1"}
    assert set(data.observations["variable"]) == {
        "le",
        "h",
        "netrad",
        "g",
        "sw_in",
        "ta",
        "vpd",
        "rh",
        "p",
        "ts",
        "swc",
        "ustar",
        "nee",
        "gpp",
        "reco",
        "et",
    }
    assert data.observations["time"].dtype == "datetime64[ns]" and not data.observations["is_validation"].any()


def test_fluxnet_hh_takes_the_station_from_the_location_table(tmp_path):
    data = fluxnet.read(hh_file(tmp_path), locations=LOCATIONS)
    row = data.stations.iloc[0]
    assert (row["code"], row["lat"], row["lon"], row["land_cover"]) == ("US-Ha1", 42.5378, -72.1715, "DBF")
    assert (row["network"], row["source"]) == ("FLUXNET2015", "FLUXNET2015 FULLSET HH 1-4")
    assert set(data.observations["station"]) == {"US-Ha1"}


def test_fluxnet_sites_mapping_takes_precedence_over_the_location_table(tmp_path):
    sites = {"US-Ha1": {"lat": 42.5, "lon": -72.2, "elevation": 340.0, "igbp": "MF"}}
    row = fluxnet.read(hh_file(tmp_path), sites=sites, locations=LOCATIONS).stations.iloc[0]
    assert (row["lat"], row["lon"], row["elevation"], row["land_cover"]) == (42.5, -72.2, 340.0, "MF")


def test_fluxnet_default_location_table_comes_from_shared_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARED_DATA_DIR", str(SHARED))
    path = hh_file(tmp_path)
    assert fluxnet.read(path).stations["lat"].iloc[0] == 42.5378
    assert fluxnet.companions(path) == [LOCATIONS]


def test_fluxnet_hr_file_aggregates_24_hours(tmp_path):
    frame = fluxnet_hh_frame(days=2).iloc[::2].reset_index(drop=True)
    frame["TIMESTAMP_END"] = (
        pd.to_datetime(frame["TIMESTAMP_START"], format="%Y%m%d%H%M") + pd.Timedelta("1h")
    ).dt.strftime("%Y%m%d%H%M")
    frame.loc[:4, "LE_F_MDS_QC"] = 3  # 19 of 24 good: 0.79, dropped
    path = write_fluxnet(tmp_path / HH_NAME.replace("_HH_", "_HR_"), frame)
    data = fluxnet.read(path, locations=LOCATIONS)
    et = by_variable(data, "et")
    assert list(et.index) == [pd.Timestamp("2005-06-02")]
    day2 = frame.iloc[24:]
    expected = sum(
        float(le) * 3600 / hs_lambda(float(ta)) for le, ta in zip(day2["LE_F_MDS"], day2["TA_F"], strict=True)
    )
    assert et["value"].iloc[0] == pytest.approx(expected, rel=1e-12)


def test_fluxnet_dd_keeps_daily_values_and_drops_those_below_the_qc_fraction(tmp_path):
    path = write_fluxnet(tmp_path / "FLX_US-Ha1_FLUXNET2015_SUBSET_DD_2005-2005_1-4.csv", fluxnet_dd_frame())
    data = fluxnet.read(path, locations=LOCATIONS)
    le = by_variable(data, "le")
    assert list(le.index.strftime("%Y%m%d")) == ["20050601", "20050602", "20050604"]  # 0.5 < 0.8 dropped
    assert list(le["value"]) == [80.0, 95.5, 110.0]
    assert list(le["quality_flag"]) == ["1.000", "0.958", "0.812"]
    et = by_variable(data, "et")
    np.testing.assert_allclose(
        et["value"],
        [80.0 * 86400 / hs_lambda(12.5), 95.5 * 86400 / hs_lambda(14.0), 110.0 * 86400 / hs_lambda(11.0)],
        rtol=1e-12,
    )
    assert set(et["units"]) == {"mm d-1"}
    nee = by_variable(data, "nee")
    assert list(nee["value"]) == [-3.1, -2.5, -4.0] and set(nee["units"]) == {"g m-2 d-1"}
    assert list(by_variable(data, "gpp")["value"]) == [8.0, 7.1, 9.5]  # GPP follows NEE_VUT_REF_QC
    np.testing.assert_allclose(by_variable(data, "swc")["value"], [0.31, 0.305, 0.35, 0.34], rtol=1e-12)
    p = by_variable(data, "p")
    assert list(p["value"]) == [0.0, 3.2, 11.6] and set(p["units"]) == {"mm d-1"}  # -9999 is missing


def test_fluxnet_mm_file_is_stamped_on_the_first_day_of_each_month(tmp_path):
    frame = pd.DataFrame(
        {
            "TIMESTAMP": ["200501", "200502", "200503"],
            "LE_F_MDS": [20.0, 35.0, 50.0],
            "LE_F_MDS_QC": [0.9, 1.0, 0.95],
            "TA_F": [-2.0, 1.5, 6.0],
            "TA_F_QC": [1.0, 1.0, 1.0],
        }
    )
    data = fluxnet.read(
        write_fluxnet(tmp_path / "FLX_US-Ha1_FLUXNET2015_FULLSET_MM_2005-2005_1-4.csv", frame), locations=LOCATIONS
    )
    et = by_variable(data, "et")
    assert list(et.index) == list(pd.to_datetime(["2005-01-01", "2005-02-01", "2005-03-01"]))
    assert et["value"].iloc[0] == pytest.approx(20.0 * 86400 / hs_lambda(-2.0), rel=1e-12)


# --- AmeriFlux BASE -------------------------------------------------------------------------------------


def test_ameriflux_daily_et_equals_a_hand_computed_sum(tmp_path):
    frame = ameriflux_frame()
    frame.loc[50:58, "LE_1_1_1"] = -9999  # day 2: 39 of 48, kept
    path = write_ameriflux(tmp_path / "AMF_US-Ha1_BASE_HH_15-5.csv", frame)
    data = ameriflux.read(path, locations=LOCATIONS)
    et = by_variable(data, "et")
    expected = []
    for day in (frame.iloc[:48], frame.iloc[48:]):
        steps = [
            float(le) * 1800 / hs_lambda(float(ta))
            for le, ta in zip(day["LE_1_1_1"], day["TA_1_1_1"], strict=True)
            if le != -9999
        ]
        expected.append(sum(steps) / len(steps) * 48)
    np.testing.assert_allclose(et["value"], expected, rtol=1e-12)
    assert list(et["quality_flag"]) == ["1.000", "0.812"]
    assert data.stations["network"].iloc[0] == "AmeriFlux" and data.stations["source"].iloc[0] == "AmeriFlux BASE 15-5"


def test_ameriflux_picks_the_lowest_position_qualifier_and_converts_swc(tmp_path):
    frame = ameriflux_frame(days=1)
    data = ameriflux.read(write_ameriflux(tmp_path / "AMF_US-Ha1_BASE_HH_15-5.csv", frame), locations=LOCATIONS)
    assert by_variable(data, "le")["value"].iloc[0] == pytest.approx(frame["LE_1_1_1"].mean())  # not LE_2_1_1
    assert by_variable(data, "ta")["value"].iloc[0] == pytest.approx(frame["TA_1_1_1"].mean())  # not TA_PI_F
    assert by_variable(data, "swc")["value"].iloc[0] == pytest.approx(frame["SWC_1_1_1"].mean() / 100)
    assert by_variable(data, "p")["value"].iloc[0] == pytest.approx(frame["P"].sum())
    assert ameriflux.pick_column(["LE_2_1_1", "LE_1_2_1", "LE_PI_F"], "LE") == "LE_1_2_1"


def test_it_rejects_an_ameriflux_site_line_that_disagrees_with_the_file_name(tmp_path):
    path = write_ameriflux(tmp_path / "AMF_US-Ha1_BASE_HH_15-5.csv", ameriflux_frame(1), site="US-MMS")
    with pytest.raises(ReaderError, match=r"AMF_US-Ha1_BASE_HH_15-5.csv: line 1: field 'Site': expected Site US-Ha1"):
        ameriflux.read(path, locations=LOCATIONS)


# --- REddyProc (real example) ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tharandt() -> PointData:
    assert REDDYPROC.is_file(), f"{REDDYPROC} not found: set SHARED_DATA_DIR to the real sample data"
    return reddyproc.read(REDDYPROC)


def _reddyproc_rows():
    """(interval start, {column: value}) of the example, parsed with plain string operations."""
    lines = REDDYPROC.read_bytes().decode("ascii").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    names = lines[0].split("\t")
    for line in lines[2:]:
        if line.strip():
            row = dict(zip(names, map(float, line.split("\t")), strict=True))
            end = pd.Timestamp(int(row["Year"]), 1, 1) + pd.Timedelta(days=row["DoY"] - 1, hours=row["Hour"])
            yield end - pd.Timedelta("30min"), row


def test_reddyproc_daily_et_equals_a_hand_computed_sum_over_the_real_half_hours(tmp_path, tharandt):
    days = {}
    for start, row in _reddyproc_rows():
        if row["LE"] != -9999:
            ta = row["Tair"] if row["Tair"] != -9999 else 20.0
            days.setdefault(start.normalize(), []).append(row["LE"] * 1800 / hs_lambda(ta))
        else:
            days.setdefault(start.normalize(), [])
    expected = {d: sum(v) / len(v) * 48 for d, v in days.items() if len(v) >= 39}
    et = by_variable(tharandt, "et")
    assert list(et.index) == sorted(expected) and len(et) == 307
    np.testing.assert_allclose(et["value"], [expected[d] for d in sorted(expected)], rtol=1e-12)
    assert set(et["units"]) == {"mm d-1"}
    assert 300 < et["value"].mean() * 365 < 700  # annual ET of a spruce forest, mm


def test_reddyproc_first_day_holds_the_interval_stamped_midnight_of_day_two(tharandt):
    rows = [row for _, row in _reddyproc_rows()][:48]  # DoY 1 0.5 ... DoY 2 0.0
    assert (rows[-1]["DoY"], rows[-1]["Hour"]) == (2, 0)
    ta = by_variable(tharandt, "ta")
    assert ta.index[0] == pd.Timestamp("1998-01-01") and ta.index[-1] == pd.Timestamp("1998-12-31")
    assert ta["value"].iloc[0] == pytest.approx(sum(r["Tair"] for r in rows) / 48)
    assert ta["quality_flag"].iloc[0] == "1.000"


def test_reddyproc_station_has_the_documented_example_coordinates(tharandt):
    row = tharandt.stations.iloc[0]
    assert (row["code"], row["lat"], row["lon"], row["land_cover"]) == ("DE-Tha", 50.96, 13.57, "ENF")
    assert set(tharandt.observations["variable"]) == {"nee", "le", "h", "sw_in", "ta", "ts", "rh", "vpd", "ustar", "et"}
    assert set(by_variable(tharandt, "nee")["units"]) == {"umol m-2 s-1"}


def test_reddyproc_patterns_select_the_data_not_its_rd_documentation():
    names = [p.name for p in REDDYPROC.parent.iterdir()]
    matched = {n for n in names for pattern in reddyproc.FILE_PATTERNS if fnmatch.fnmatch(n, pattern)}
    assert matched == {"Example_DETha98.txt"} and "Example_DETha98.Rd.txt" in names


# --- ECOSTRESS cal/val (real tables) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def eco() -> PointData:
    assert ECO_TABLE.is_file(), f"{ECO_TABLE} not found: set SHARED_DATA_DIR to the real sample data"
    return ecostress.read(ECO_TABLE)


@pytest.fixture(scope="module")
def eco_raw() -> pd.DataFrame:
    return pd.read_csv(ECO_TABLE)


def test_ecostress_stations_come_from_the_tower_metadata(eco, eco_raw):
    st = eco.stations.set_index("code")
    assert len(st) == eco_raw["ID"].nunique() == 63
    assert tuple(st.loc["US-NC3", ["lat", "lon", "elevation", "land_cover"]]) == (35.799, -76.656, 5.0, "ENF")
    assert "US-EDN" not in st.index  # in the metadata (121 towers) but without overpasses
    assert set(eco.observations["station"]) == set(st.index)
    assert ecostress.companions(ECO_TABLE) == [ECO_DIR / "metadata_ebc_filt.csv"]


def test_ecostress_tower_values_equal_the_csv_columns_at_the_overpass_time(eco, eco_raw):
    raw = eco_raw.assign(time=pd.to_datetime(eco_raw["eco_time_utc"])).set_index(["ID", "time"])
    for variable, column, factor in (
        ("le", "LE_filt", 1),
        ("le_ebc", "LEcorr50", 1),
        ("h", "H_filt", 1),
        ("rh", "RH_percentage", 100),
        ("swc", "SM_surf", 1),
        ("lst", "LST", 1),
    ):
        got = eco.observations[eco.observations["variable"] == variable].set_index(["station", "time"])["value"]
        want = raw[column].dropna() * factor
        assert len(got) == len(want), variable
        np.testing.assert_allclose(got.sort_index(), want.sort_index(), rtol=1e-12, err_msg=variable)


def test_ecostress_jet_is_the_median_of_the_four_models(eco, eco_raw):
    median = eco_raw[["STICinst", "BESSinst", "MOD16inst", "PTJPLSMinst"]].median(axis=1)
    np.testing.assert_allclose(median, eco_raw["JET"], atol=1e-9)
    jet = eco.observations[eco.observations["variable"] == "le_jet"]
    assert len(jet) == (eco_raw["JET"] != 0).sum() == 1063


def test_ecostress_et_rates_equal_a_hand_computed_value(eco):
    # first row (US-NC3, 2019-10-02 19:09:40): JET 288.683585 W m-2, LEcorr50 331.723100 W m-2, AirTempC 31.80107
    # lambda(31.80107 degC) = 2428526.6035 J kg-1 -> 288.683585 * 3600 / lambda = 0.427938860 mm h-1
    obs = eco.observations
    at = obs[(obs["station"] == "US-NC3") & (obs["time"] == pd.Timestamp("2019-10-02 19:09:40"))].set_index("variable")
    assert at.loc["et_jet", "value"] == pytest.approx(0.4279388599, rel=1e-9)
    assert at.loc["et_ebc", "value"] == pytest.approx(0.4917397896, rel=1e-9)
    assert at.loc["et_jet", "units"] == "mm h-1" and at.loc["le_jet", "units"] == "W m-2"


def test_ecostress_drops_model_fill_values(eco, eco_raw):
    bess = eco.observations[eco.observations["variable"] == "le_bess"]
    assert len(bess) == len(eco_raw) - eco_raw["BESSinst"].isin([0, 1000]).sum() == 862
    assert not bess["value"].isin([0.0, 1000.0]).any()


def test_ecostress_gridded_meteorology_equals_the_csv_columns(eco, eco_raw):
    # Ta, RH (GEOS-5 FP) and Rn, Rg (ECOSTRESS) at the tower's pixel: inputs a grid cell without a tower has
    raw = eco_raw.assign(time=pd.to_datetime(eco_raw["eco_time_utc"])).set_index(["ID", "time"])
    kept = {
        "ta_geos5": (raw["Ta"], "degC"),
        "rh_geos5": (raw["RH"] * 100, "%"),
        "netrad_ecostress": (raw["Rn"][raw["Rn"] != 0], "W m-2"),  # 0: failed scene (every model 0 there too)
        "sw_in_ecostress": (raw["Rg"][raw["Rg"] >= -10], "W m-2"),  # below -10 W m-2: impossible, dropped
    }
    for variable, (want, units) in kept.items():
        got = eco.observations[eco.observations["variable"] == variable]
        assert set(got["units"]) == {units}, variable
        got = got.set_index(["station", "time"])["value"]
        assert len(got) == len(want), variable
        np.testing.assert_allclose(got.sort_index(), want.sort_index(), rtol=1e-12, err_msg=variable)
    # what the real table holds: two failed scenes (Rn 0, every model 0) and one Rg of -23.8 W m-2 (US-MMS, 08 h)
    assert (eco_raw["Rn"] == 0).sum() == 2 and (eco_raw.loc[eco_raw["Rn"] == 0, "JET"] == 0).all()
    assert (eco_raw["Rg"] < -10).sum() == 1
    assert eco_raw["RH"].between(0, 1).all()


def test_ecostress_gridded_meteorology_has_the_names_the_fusion_expects(eco):
    from products.generators import et_fusion

    present = set(eco.observations["variable"])
    assert set(et_fusion.GRIDDED_FORCING) <= present
    assert set(et_fusion.OFF_TOWER_INPUTS) <= present
    # the gridded series are not the tower's own: GEOS-5 Ta differs from the tower AirTempC at most overpasses
    wide = eco.observations.pivot_table(index=["station", "time"], columns="variable", values="value")
    assert (wide["ta_geos5"] - wide["ta"]).abs().median() > 0.5


def eco_copy(tmp_path, **changes) -> Path:
    """The real ECOSTRESS table with ``changes`` {column: {row: value}} written to tmp_path (metadata beside it)."""
    frame = pd.read_csv(ECO_TABLE)
    for column, rows in changes.items():
        for row, value in rows.items():
            frame.loc[row, column] = value
    path = tmp_path / ECO_TABLE.name
    frame.to_csv(path, index=False)
    shutil.copy(ECO_DIR / "metadata_ebc_filt.csv", tmp_path)
    return path


def test_ecostress_drops_physically_impossible_meteorology(tmp_path):
    # row 0 is US-NC3 2019-10-02 19:09:40
    path = eco_copy(tmp_path, RH={0: 1.2}, Rg={0: -50.0, 1: -5.0}, RH_percentage={1: -0.1}, SW_IN={2: -40.0})
    obs = ecostress.read(path).observations.set_index(["station", "time", "variable"])["value"]
    raw = pd.read_csv(path)
    key = [(raw.loc[i, "ID"], pd.Timestamp(raw.loc[i, "eco_time_utc"])) for i in range(3)]
    assert (*key[0], "rh_geos5") not in obs.index  # RH fraction 1.2: impossible
    assert (*key[0], "sw_in_ecostress") not in obs.index  # -50 W m-2: beyond noise
    assert obs[(*key[1], "sw_in_ecostress")] == -5.0  # -5 W m-2: noise around 0, kept
    assert (*key[1], "rh") not in obs.index
    assert (*key[2], "sw_in") not in obs.index
    assert obs[(*key[0], "ta_geos5")] == pytest.approx(raw.loc[0, "Ta"], rel=1e-12)


@pytest.mark.parametrize(
    "column, value, pattern",
    [
        ("RH", 56.0, r"line 3: field 'RH': expected relative humidity as a fraction 0-1, found 56.0"),
        ("RH_percentage", 63.7, r"line 3: field 'RH_percentage': expected relative humidity as a fraction 0-1"),
        ("Ta", 297.4, r"line 3: field 'Ta': expected air temperature in degC \(-90 to 70\), found 297.4"),
        ("AirTempC", -300.0, r"line 3: field 'AirTempC': expected air temperature in degC"),
    ],
)
def test_ecostress_rejects_meteorology_in_the_wrong_units(tmp_path, column, value, pattern):
    with pytest.raises(ReaderError, match=rf"combined_eco_flux_EC_filtered.csv: {pattern}"):
        ecostress.read(eco_copy(tmp_path, **{column: {1: value}}))


# --- the bad-input corpus -------------------------------------------------------------------------------


def test_it_rejects_a_csv_without_the_required_le_column(tmp_path):
    path = hh_file(tmp_path, fluxnet_hh_frame(1).drop(columns=["LE_F_MDS"]))
    with pytest.raises(ReaderError, match=rf"{HH_NAME}: line 1: field 'LE_F_MDS': expected column 'LE_F_MDS'"):
        fluxnet.read(path, locations=LOCATIONS)


def test_it_rejects_a_csv_without_timestamps(tmp_path):
    path = write_ameriflux(tmp_path / "AMF_US-Ha1_BASE_HH_15-5.csv", ameriflux_frame(1).drop(columns="TIMESTAMP_END"))
    with pytest.raises(ReaderError, match=r"line 3: field 'TIMESTAMP_END': expected column 'TIMESTAMP_END'"):
        ameriflux.read(path, locations=LOCATIONS)


def test_it_rejects_a_reddyproc_units_row_declaring_le_in_mm(tmp_path):
    text = REDDYPROC.read_bytes()
    first, units, rest = text.split(b"\r", 2)
    bad = units.split(b"\t")
    bad[4] = b"mm"  # LE
    path = tmp_path / "Example_DETha98.txt"
    path.write_bytes(b"\r".join([first, b"\t".join(bad), rest]))
    with pytest.raises(
        ReaderError,
        match=r"Example_DETha98.txt: line 2: field 'LE': expected units W/m2 or Wm-2 in the "
        r"units row, found 'mm'",
    ):
        reddyproc.read(path)


def test_it_rejects_timestamps_out_of_order(tmp_path):
    frame = fluxnet_hh_frame(1)
    frame.iloc[[5, 6]] = frame.iloc[[6, 5]].to_numpy()
    with pytest.raises(
        ReaderError,
        match=rf"{HH_NAME}: line 8: field 'TIMESTAMP_START': timestamps out of order: "
        r"2005-06-01 02:30:00 follows 2005-06-01 03:00:00",
    ):
        fluxnet.read(hh_file(tmp_path, frame), locations=LOCATIONS)


def test_it_rejects_duplicated_timestamps(tmp_path):
    frame = ameriflux_frame(1)
    frame = pd.concat(
        [frame.iloc[:11], frame.iloc[10:]], ignore_index=True
    )  # row 10 twice: lines 14 and 15 (2 comment lines + header)
    path = write_ameriflux(tmp_path / "AMF_US-Ha1_BASE_HH_15-5.csv", frame)
    with pytest.raises(
        ReaderError,
        match=r"line 15: field 'TIMESTAMP_START': duplicate timestamp 2016-07-01 05:00:00 "
        r"\(also at line 14\)",
    ):
        ameriflux.read(path, locations=LOCATIONS)


def test_it_rejects_duplicated_overpasses_of_one_tower(tmp_path):
    lines = ECO_TABLE.read_text().splitlines(keepends=True)
    path = tmp_path / ECO_TABLE.name
    path.write_text("".join([*lines[:3], lines[2], *lines[3:]]))
    shutil.copy(ECO_DIR / "metadata_ebc_filt.csv", tmp_path)
    with pytest.raises(
        ReaderError, match=r"combined_eco_flux_EC_filtered.csv: line 4: field 'eco_time_utc': duplicate"
    ):
        ecostress.read(path)


def test_it_rejects_intervals_that_are_not_half_hours(tmp_path):
    frame = fluxnet_hh_frame(1)
    frame.loc[3, "TIMESTAMP_END"] = "200506010215"
    with pytest.raises(ReaderError, match=r"line 5: field 'TIMESTAMP_END': expected 30-minute intervals"):
        fluxnet.read(hh_file(tmp_path, frame), locations=LOCATIONS)


def test_it_rejects_a_malformed_timestamp(tmp_path):
    frame = fluxnet_hh_frame(1)
    frame.loc[7, "TIMESTAMP_START"] = "2005-06-01 03:30"
    with pytest.raises(ReaderError, match=r"line 9: field 'TIMESTAMP_START': expected a YYYYMMDDHHMM timestamp"):
        fluxnet.read(hh_file(tmp_path, frame), locations=LOCATIONS)


def test_it_rejects_times_outside_the_years_of_the_file_name(tmp_path):
    path = hh_file(tmp_path, fluxnet_hh_frame(1), name=HH_NAME.replace("2005-2005", "2001-2004"))
    with pytest.raises(ReaderError, match=r"line 2: field 'TIMESTAMP_START': expected times in 2001-2004"):
        fluxnet.read(path, locations=LOCATIONS)


def test_it_rejects_a_row_with_more_fields_than_the_header(tmp_path):
    path = hh_file(tmp_path, fluxnet_hh_frame(1))
    lines = path.read_text().splitlines()
    lines[11] += ",0.5"  # line 12: a shifted row
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReaderError, match=rf"{HH_NAME}: line 12: expected 32 fields as in the header, found 33"):
        fluxnet.read(path, locations=LOCATIONS)


def test_it_rejects_a_truncated_last_row(tmp_path):
    path = hh_file(tmp_path, fluxnet_hh_frame(1))
    path.write_bytes(path.read_bytes()[:-150])  # the download stopped inside line 49
    with pytest.raises(
        ReaderError,
        match=rf"{HH_NAME}: line 49: field '\w+': expected 32 fields as in the header, "
        r"found \d+ \(the line ends before this column\)",
    ):
        fluxnet.read(path, locations=LOCATIONS)


def test_it_rejects_a_value_that_is_not_a_number(tmp_path):
    frame = fluxnet_hh_frame(1).astype({"LE_F_MDS": object})
    frame.loc[20, "LE_F_MDS"] = "12,5"
    path = tmp_path / HH_NAME
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    with pytest.raises(ReaderError, match=r"line 22: field 'LE_F_MDS': expected a number, found '12,5'"):
        fluxnet.read(path, locations=LOCATIONS)


@pytest.mark.parametrize("where", ["site mapping", "location table"])
def test_it_rejects_coordinates_out_of_range(tmp_path, where):
    path = hh_file(tmp_path)
    if where == "site mapping":
        kwargs = {"sites": {"US-Ha1": {"lat": 95.0, "lon": -72.2}}}
        pattern = r"field \"sites\['US-Ha1'\].lat\": expected lat in degrees in \[-90, 90\], found 95.0"
    else:
        table = tmp_path / "locations.csv"
        table.write_text("Flux_name,LC,Lat,lon,flux_site\nUS-Ha1,DBF,42.5378,-272.1715,US-Ha1\n")
        kwargs = {"locations": table}
        pattern = r"locations.csv: line 2: field 'lon': expected degrees in \[-180, 180\]"
    with pytest.raises(ReaderError, match=pattern):
        fluxnet.read(path, **kwargs)


def test_it_rejects_reddyproc_coordinates_out_of_range():
    with pytest.raises(ReaderError, match=r"Example_DETha98.txt: field 'site.lon': expected lon in degrees"):
        reddyproc.read(REDDYPROC, lon=213.57)


def test_it_rejects_tower_metadata_with_a_latitude_out_of_range(tmp_path):
    shutil.copy(ECO_TABLE, tmp_path)
    text = (
        (ECO_DIR / "metadata_ebc_filt.csv")
        .read_text()
        .replace("US-NC3,NC_Clearcut#3,35.799,", "US-NC3,NC_Clearcut#3,135.799,")
    )
    (tmp_path / "metadata_ebc_filt.csv").write_text(text)
    with pytest.raises(
        ReaderError,
        match=r"metadata_ebc_filt.csv: line 2: field 'Lat': expected degrees in \[-90, 90\], "
        r"found 135.799",
    ):
        ecostress.read(tmp_path / ECO_TABLE.name)


def test_it_rejects_a_site_without_coordinates(tmp_path, monkeypatch):
    monkeypatch.delenv("SHARED_DATA_DIR", raising=False)
    with pytest.raises(ReaderError, match=rf"{HH_NAME}: field 'site': the file has no coordinates for site 'US-Ha1'"):
        fluxnet.read(hh_file(tmp_path))
    with pytest.raises(ReaderError, match=r"no coordinates for site 'US-Ha1' in the sites mapping"):
        fluxnet.read(hh_file(tmp_path), sites={"US-MMS": {"lat": 39.3, "lon": -86.4}})


@pytest.mark.parametrize("line", [1, 30])
def test_it_rejects_non_utf8_text(tmp_path, line):
    path = hh_file(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b",", b",\xe9", 1) if line == 1 else lines[line - 1] + b"\xe9"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ReaderError, match=rf"{HH_NAME}: line {line}: expected UTF-8 text, found byte 0xe9"):
        fluxnet.read(path, locations=LOCATIONS)


def test_it_rejects_non_utf8_text_in_a_cr_terminated_reddyproc_file(tmp_path):
    path = tmp_path / "Example_DETha98.txt"
    data = bytearray(REDDYPROC.read_bytes())
    lines = bytes(data).split(b"\r")
    lines[99] = lines[99] + b"\xff"  # line 100
    path.write_bytes(b"\r".join(lines))
    with pytest.raises(ReaderError, match=r"Example_DETha98.txt: line 100: expected UTF-8 text, found byte 0xff"):
        reddyproc.read(path)


@pytest.mark.parametrize(
    "module, name",
    [
        (fluxnet, HH_NAME),
        (ameriflux, "AMF_US-Ha1_BASE_HH_15-5.csv"),
        (reddyproc, "Example_DETha98.txt"),
        (ecostress, ECO_TABLE.name),
    ],
)
def test_it_rejects_an_empty_file(tmp_path, module, name):
    path = tmp_path / name
    path.write_bytes(b"")
    shutil.copy(ECO_DIR / "metadata_ebc_filt.csv", tmp_path)
    kwargs = {"locations": LOCATIONS} if module in (fluxnet, ameriflux) else {}
    with pytest.raises(ReaderError, match=rf"{name}: line 1: empty file: expected a header line"):
        module.read(path, **kwargs)


def test_it_rejects_a_header_without_data_rows(tmp_path):
    path = tmp_path / HH_NAME
    path.write_text(",".join(fluxnet_hh_frame(1).columns) + "\n")
    with pytest.raises(ReaderError, match=rf"{HH_NAME}: line 2: expected data rows below the FLUXNET2015 CSV header"):
        fluxnet.read(path, locations=LOCATIONS)


@pytest.mark.parametrize("how", ["all -9999", "all bad QC"])
def test_it_rejects_a_half_hourly_file_with_no_rows_left_after_qc(tmp_path, how):
    frame = fluxnet_hh_frame(2)
    if how == "all -9999":
        frame["LE_F_MDS"] = -9999
    else:
        frame["LE_F_MDS_QC"] = 3
    with pytest.raises(
        ReaderError, match=rf"{HH_NAME}: field 'LE_F_MDS': no day left with at least 80% of its 48 steps"
    ):
        fluxnet.read(hh_file(tmp_path, frame), locations=LOCATIONS)


def test_it_rejects_a_daily_file_with_no_rows_left_after_qc(tmp_path):
    frame = fluxnet_dd_frame().assign(LE_F_MDS_QC=0.4)
    path = write_fluxnet(tmp_path / "FLX_US-Ha1_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv", frame)
    with pytest.raises(ReaderError, match=r"field 'LE_F_MDS': no LE_F_MDS value left with LE_F_MDS_QC >= 0.8"):
        fluxnet.read(path, locations=LOCATIONS)


def test_it_rejects_a_50_mb_header_line_without_reading_it_into_memory(tmp_path):
    path = tmp_path / HH_NAME
    with open(path, "wb") as fh:
        fh.write(b"TIMESTAMP_START," + b"X" * (50 * 2**20) + b"\n200506010000\n")
    assert path.stat().st_size > 50 * 2**20
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ReaderError, match=rf"{HH_NAME}: line 1: header line longer than 65536 bytes"):
            fluxnet.read(path, locations=LOCATIONS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20 and time.perf_counter() - started < 1.0


def test_it_rejects_a_header_of_100000_columns(tmp_path):
    path = tmp_path / "AMF_US-Ha1_BASE_HH_15-5.csv"
    path.write_text("# Site: US-Ha1\n# Version: 15-5\n" + ",".join(f"V{k}" for k in range(100_000)) + "\n")
    with pytest.raises(ReaderError, match=r"line 3: header line longer than 65536 bytes"):
        ameriflux.read(path, locations=LOCATIONS)


def test_it_rejects_more_columns_than_the_limit_even_in_a_short_header(tmp_path):
    path = tmp_path / HH_NAME
    path.write_text("TIMESTAMP_START,TIMESTAMP_END,LE_F_MDS," + ",".join("X" * 1 for _ in range(5000)) + "\n")
    with pytest.raises(ReaderError, match=r"line 1: expected at most 2000 columns \(MAX_COLUMNS\), found 5003"):
        fluxnet.read(path, locations=LOCATIONS)


@pytest.mark.parametrize(
    "name",
    [
        "FLX_US-Ha1_FLUXNET2015_FULLSET_YY_2005-2005_1-4.csv",
        "FLX_US-Ha1_FLUXNET2015_FULLSET_HH_2005_1-4.csv",
        "US-Ha1_HH.csv",
    ],
)
def test_it_rejects_a_file_name_that_does_not_parse(tmp_path, name):
    path = hh_file(tmp_path, name=name)
    with pytest.raises(ReaderError, match=rf"{name}: field 'file name': expected a file name FLX_<CC-XXX>"):
        fluxnet.read(path, locations=LOCATIONS)


def test_reader_errors_survive_pickling_and_name_the_file():
    err = pickle.loads(pickle.dumps(ReaderError("/x/" + HH_NAME, "expected 1", line=3, field="LE_F_MDS")))
    assert str(err) == f"{HH_NAME}: line 3: field 'LE_F_MDS': expected 1" and math.isclose(err.line, 3)
