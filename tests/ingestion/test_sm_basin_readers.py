"""ISMN, ASCAT/ERS and basin water-budget readers on the real files, and their bad-input corpus (no database).

Expected values are taken from the raw files here, independently of the readers (text lines split by
hand, NetCDF variables read with netCDF4 without masking, CSV cells read with the csv module).
"""

import csv
import os
import re
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from ingestion.readers import ascat, basins, ismn
from ingestion.readers.base import PointData, ReaderError

DATA = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data"))
ISMN = DATA / "ismn_testdata"
ASCAT_1358 = DATA / "pytesmo_testdata/sat/ascat/netcdf/55R12/TUW_METOP_ASCAT_WARP55R12_1358.nc"
ERS_1395 = DATA / "pytesmo_testdata/sat/ers/55R11/TUW_ERS_AMI_SSM_WARP55R11_1395.nc"
BASINS = DATA / "lehmannfa_basin_water_budget"
ABRAMS = ISMN / (
    "extracted/multinetwork_header_values/SCAN/Abrams/"
    "SCAN_SCAN_Abrams_sm_0.050800_0.050800_Hydraprobe-Analog-(2.5-Volt)_20070101_20131231.stm"
)
NODE505 = ISMN / (
    "extracted/multinetwork_header_values/SOILSCAPE/node505/"
    "SOILSCAPE_SOILSCAPE_node505_sm_0.050000_0.050000_EC5_20070101_20131231.stm"
)
ARM1 = ISMN / (
    "Data_seperate_files_20170810_20180809/COSMOS/ARM-1/"
    "COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
)
NARBONNE = (
    ISMN
    / "format_ceop_sep/SMOSMANIA/SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"
)
# product file -> (variable, units, network, basins, first month, last month)
PRODUCTS = {
    "TWS_GRACE_JPL_mascons_monthly.csv": ("tws_jpl", "mm", "GRDC-MRB", 204, "2002-04", "2020-09"),
    "TWS_uncertainty_GRACE_JPL_mascons_monthly.csv": (
        "tws_jpl_uncertainty",
        "mm",
        "GRDC-MRB",
        204,
        "2002-04",
        "2020-09",
    ),
    "TWS_GRACE_CSR_mascons_monthly.csv": ("tws_csr", "mm", "GRDC-MRB", 204, "2002-04", "2020-08"),
    "TWS_GRACE_ITSG_grid_monthly.csv": ("tws_itsg", "mm", "GRDC-ITSG", 160, "2002-04", "2017-01"),
    "ET_ERA5_Land_monthly.csv": ("et_era5land", "mm month-1", "GRDC-MRB", 204, "1981-01", "2020-08"),
    "ET_FLUXCOM_monthly.csv": ("et_fluxcom", "mm month-1", "GRDC-MRB", 204, "2001-01", "2015-12"),
    "ET_GLDAS21_NOAH36_monthly.csv": ("et_gldas", "mm month-1", "GRDC-MRB", 204, "2000-01", "2020-08"),
    "ET_GLEAM_monthly.csv": ("et_gleam", "mm month-1", "GRDC-MRB", 204, "1980-01", "2018-12"),
    "ET_MOD16_monthly.csv": ("et_mod16", "mm month-1", "GRDC-MRB", 204, "2000-01", "2014-12"),
    "P_ERA5_Land_monthly.csv": ("p_era5land", "mm month-1", "GRDC-MRB", 204, "1981-01", "2020-08"),
    "P_GPCC_monthly.csv": ("p_gpcc", "mm month-1", "GRDC-MRB", 204, "1981-01", "2019-12"),
    "P_MSWEP_monthly.csv": ("p_mswep", "mm month-1", "GRDC-MRB", 204, "1979-01", "2017-10"),
    "R_ERA5_Land_monthly.csv": ("r_era5land", "mm month-1", "GRDC-MRB", 204, "1981-01", "2020-08"),
    "R_GRUN_monthly.csv": ("r_grun", "mm month-1", "GRDC-MRB", 204, "1979-01", "2014-12"),
}


@pytest.fixture(scope="module", autouse=True)
def real_data():
    for path in (ISMN, ASCAT_1358, ERS_1395, BASINS):
        assert path.exists(), f"{path} not found: set SHARED_DATA_DIR to the real sample data"


def raw_lines(path: Path) -> list[str]:
    """Lines of a text file split by hand (ISMN files end lines with CR or CRLF)."""
    return [s for s in re.split(r"\r\n|\r|\n", path.read_bytes().decode("ascii")) if s.strip()]


def at(data: PointData, time: str, **match) -> pd.DataFrame:
    obs = data.observations
    keep = obs["time"] == pd.Timestamp(time)
    for column, value in match.items():
        keep &= obs[column] == value
    return obs[keep]


# --- ISMN ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stm_files() -> list[Path]:
    return sorted(ISMN.rglob("*.stm"))


@pytest.fixture(scope="module")
def ismn_data(stm_files) -> dict[str, PointData]:
    return {p.name: ismn.read(p) for p in stm_files}


def test_it_reads_all_ten_ismn_files_of_both_layouts(stm_files, ismn_data):
    assert len(stm_files) == 10
    codes = [d.stations["code"].iloc[0] for d in ismn_data.values()]
    assert len(set(codes)) == 10 and "SCAN:AdamsRanch#1" in codes and "COSMOS:Barrow-ARM" in codes
    assert {d.stations["network"].iloc[0] for d in ismn_data.values()} == {
        "COSMOS",
        "FR_Aqui",
        "SCAN",
        "SOILSCAPE",
        "SMOSMANIA",
    }
    layouts = {p.name: ismn.read_stm(p).layout for p in stm_files}
    assert sorted(layouts.values()).count("ceop_sep") == 4  # COSMOS x2, FR_Aqui fraye, SMOSMANIA Narbonne
    assert layouts[ABRAMS.name] == "header_values" and layouts[NARBONNE.name] == "ceop_sep"
    for path, data in zip(stm_files, ismn_data.values(), strict=True):
        first = raw_lines(path)[0].split()
        n_values = len(raw_lines(path)) - (1 if len(first) == 9 else 0)  # header+values: 9 header fields
        assert len(data.observations) == n_values
        assert set(data.observations["units"]) == {"m3 m-3"}
        assert data.observations["value"].between(0, 1).all()


def test_a_header_values_line_parsed_by_hand_matches(ismn_data):
    header = raw_lines(ABRAMS)[0].split()
    date, clock, value, flag, _ = raw_lines(ABRAMS)[2].split()  # "2007/01/01 01:00   0.1560 U M"
    data = ismn_data[ABRAMS.name]
    row = at(data, f"{date.replace('/', '-')} {clock}")
    assert len(row) == 1
    assert row["value"].iloc[0] == float(value) and row["quality_flag"].iloc[0] == flag
    assert row["variable"].iloc[0] == "sm_0.0508_0.0508"  # 2 inch from the file name, the header says 0.05
    st = data.stations.iloc[0]
    assert (st["lat"], st["lon"], st["elevation"]) == (float(header[3]), float(header[4]), float(header[5]))


def test_a_ceop_line_parsed_by_hand_matches(ismn_data):
    tokens = raw_lines(ARM1)[100].split()
    row = at(ismn_data[ARM1.name], f"{tokens[0].replace('/', '-')} {tokens[1]}")
    assert row["value"].iloc[0] == float(tokens[12]) and row["quality_flag"].iloc[0] == tokens[13]
    st = ismn_data[ARM1.name].stations.iloc[0]
    assert (st["code"], st["lat"], st["lon"], st["elevation"]) == ("COSMOS:ARM-1", 36.6054, -97.4878, 322.0)


def test_a_whole_ceop_file_matches_an_independent_parse(ismn_data):
    table = pd.DataFrame([s.split() for s in raw_lines(NARBONNE)])
    obs = ismn_data[NARBONNE.name].observations
    np.testing.assert_array_equal(obs["value"].to_numpy(), table[12].astype(float).to_numpy())
    np.testing.assert_array_equal(obs["quality_flag"].to_numpy(), table[13].to_numpy())
    np.testing.assert_array_equal(
        obs["time"].to_numpy(), pd.to_datetime(table[0] + " " + table[1], format="%Y/%m/%d %H:%M").to_numpy()
    )


def test_ismn_keeps_depth_sensor_and_combined_flags(ismn_data):
    stm = ismn.read_stm(ARM1)
    assert (stm.depth_from, stm.depth_to, stm.sensor, stm.variable) == (0.0, 0.19, "Cosmic-ray-Probe", "sm")
    obs = ismn_data[ARM1.name].observations
    assert set(obs["variable"]) == {"sm_0.00_0.19"} and set(obs["sensor"]) == {"Cosmic-ray-Probe"}
    flags = set(obs["quality_flag"])
    assert {"G", "D03", "D03,D05"} <= flags
    assert (obs["quality_flag"] == "D03,D05").sum() == sum(s.split()[13] == "D03,D05" for s in raw_lines(ARM1))
    assert ismn.variable_name("sm", 0.0508, 0.0508) == "sm_0.0508_0.0508"
    assert ismn.variable_name("ts", 0.1, 0.1) == "ts_0.10_0.10"


def test_ismn_land_cover_and_climate_come_from_the_static_variables(ismn_data, stm_files):
    st = ismn_data[ARM1.name].stations.iloc[0]
    assert (st["land_cover"], st["land_cover_cci"], st["climate_kg"]) == ("GRA", "130", "Cfa")  # CCI 130 grassland
    assert ismn.companions(ARM1) == [ARM1.parent / "COSMOS_COSMOS_ARM-1_static_variables.csv"]
    fraye = next(p for p in stm_files if "fraye" in p.name)  # extracted copy: no static CSV beside it
    assert ismn.companions(fraye) == [] and ismn_data[fraye.name].stations["land_cover"].iloc[0] == ""


def test_ismn_times_cover_the_files(ismn_data):
    obs = ismn_data[ABRAMS.name].observations
    assert (obs["time"].min(), obs["time"].max()) == (
        pd.Timestamp("2007-01-01 00:00"),
        pd.Timestamp("2013-12-31 23:00"),
    )
    assert obs["time"].dtype == "datetime64[ns]" and obs["time"].is_unique and not obs["is_validation"].any()


def _bad_stm(tmp_path, source: Path, edit) -> Path:
    lines = re.split(r"\r\n|\r|\n", source.read_bytes().decode("ascii"))
    lines = edit([s for s in lines if s])
    path = tmp_path / source.name
    path.write_bytes("\r".join(lines).encode("ascii"))
    return path


def _replace(index: int, text: str):
    def edit(lines):
        lines[index] = text
        return lines

    return edit


def _rejected(path: Path, line: int | None, field: str | None, *words) -> ReaderError:
    with pytest.raises(ReaderError) as info:
        ismn.read(path) if path.suffix == ".stm" else (ascat.read(path) if path.suffix == ".nc" else basins.read(path))
    err = info.value
    assert str(err).startswith(path.name) and (err.line, err.field) == (line, field)
    for word in words:
        assert word in err.message
    return err


def test_it_rejects_an_stm_line_without_a_flag(tmp_path):
    path = _bad_stm(tmp_path, NODE505, _replace(5, "2012/12/15 00:00   0.3259"))
    _rejected(path, 6, "flag", "expected 4 or 5 fields", "found 3")


def test_it_rejects_a_truncated_stm_line(tmp_path):
    path = _bad_stm(tmp_path, NODE505, _replace(5, "2012/12/15 00:"))
    _rejected(path, 6, "value", "found 2")


def test_it_rejects_a_non_numeric_stm_value(tmp_path):
    path = _bad_stm(tmp_path, NODE505, _replace(7, "2012/12/15 02:00   0,3259 U 0"))
    _rejected(path, 8, "value", "expected a finite number", "'0,3259'")


def test_it_rejects_an_stm_flag_that_is_not_an_ismn_flag(tmp_path):
    path = _bad_stm(tmp_path, NODE505, _replace(3, "2012/12/14 21:00   0.3259 0.5 0"))
    _rejected(path, 4, "flag", "ISMN quality flag", "'0.5'")


def test_it_rejects_a_repeated_stm_time(tmp_path):
    path = _bad_stm(tmp_path, NODE505, _replace(6, "2012/12/14 23:00   0.3263 U 0"))
    _rejected(path, 7, "time", "repeats line 6")


def test_it_rejects_a_header_latitude_out_of_range(tmp_path):
    header = "SOILSCAPE  SOILSCAPE       node505           98.14956  -120.78559  209.00    0.05    0.05 EC5 "
    _rejected(_bad_stm(tmp_path, NODE505, _replace(0, header)), 1, "lat", "[-90, 90]", "'98.14956'")


def test_it_rejects_a_ceop_longitude_out_of_range(tmp_path):
    path = _bad_stm(tmp_path, NARBONNE, lambda lines: [s.replace("     2.95670", "   192.95670") for s in lines])
    _rejected(path, 1, "lon", "[-180, 180]", "'192.95670'")


def test_it_rejects_a_truncated_ceop_line(tmp_path):
    cut = raw_lines(NARBONNE)[9][:70]
    _rejected(_bad_stm(tmp_path, NARBONNE, _replace(9, cut)), 10, "lat", "expected 14 or 15 fields", "found 7")


def test_it_rejects_header_depths_that_disagree_with_the_file_name(tmp_path):
    header = "SOILSCAPE  SOILSCAPE       node505           38.14956  -120.78559  209.00    0.20    0.20 EC5 "
    _rejected(_bad_stm(tmp_path, NODE505, _replace(0, header)), 1, "depth_from", "disagree with the file name")


def test_it_rejects_an_empty_stm_file(tmp_path):
    path = tmp_path / NODE505.name
    path.write_bytes(b"")
    _rejected(path, 1, None, "empty file")


def test_it_rejects_an_stm_file_with_only_a_header(tmp_path):
    _rejected(_bad_stm(tmp_path, NODE505, lambda lines: lines[:1]), 2, None, "expected data lines")


# --- ASCAT / ERS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ascat_data() -> PointData:
    return ascat.read(ASCAT_1358)


@pytest.fixture(scope="module")
def raw_1358() -> dict:
    with netCDF4.Dataset(ASCAT_1358) as ds:
        ds.set_auto_maskandscale(False)
        return {
            k: ds[k][:]
            for k in ("gpi", "lat", "lon", "row_size", "time", "sm", "sm_noise", "proc_flag", "ssf", "frozen", "snow")
        }


def test_ascat_cell_1358_has_its_490_grid_points(ascat_data, raw_1358):
    st = ascat_data.stations
    assert len(st) == 490 and list(st["code"]) == [str(g) for g in raw_1358["gpi"]]
    assert set(st["network"]) == {"ASCAT"} and set(st["cell"]) == {"1358"}
    assert st["lat"].between(40, 45).all() and st["lon"].between(5, 10).all()
    np.testing.assert_allclose(st["lat"], raw_1358["lat"], atol=1e-6)
    assert set(ascat_data.observations["variable"]) == {"ssm", "ssm_noise", "frozen_prob", "snow_prob"}
    assert set(ascat_data.observations["units"]) == {"%"}


def test_an_ascat_value_matches_the_raw_file(ascat_data, raw_1358):
    k = 100  # grid point 100, its 10th observation
    start = int(raw_1358["row_size"][:k].sum()) + 9
    gpi, days = str(raw_1358["gpi"][k]), raw_1358["time"][start]
    time = pd.Timestamp("1970-01-01") + pd.to_timedelta(round(days * 86400), unit="s")
    rows = at(ascat_data, str(time), station=gpi).set_index("variable")
    assert rows.loc["ssm", "value"] == raw_1358["sm"][start] != -1
    assert rows.loc["ssm_noise", "value"] == raw_1358["sm_noise"][start]
    assert rows.loc["ssm", "quality_flag"] == f"p{raw_1358['proc_flag'][start]}s{raw_1358['ssf'][start]}"
    assert rows.loc["frozen_prob", "value"] == raw_1358["frozen"][k, time.dayofyear - 1]
    assert rows.loc["frozen_prob", "quality_flag"] == ""


def test_ascat_drops_missing_values_and_repeated_records(ascat_data, raw_1358):
    raw = pd.DataFrame(
        {
            "gp": np.repeat(raw_1358["gpi"], raw_1358["row_size"]),
            "t": np.rint(raw_1358["time"] * 86400).astype("int64"),
            "sm": raw_1358["sm"],
        }
    )
    raw = raw.drop_duplicates(["gp", "t"])
    obs = ascat_data.observations
    assert (obs["variable"] == "ssm").sum() == (raw["sm"] != -1).sum() == 1176192
    assert (obs["variable"] == "frozen_prob").sum() == len(raw) == 1184938 - 2030
    assert not obs.duplicated(["station", "variable", "time"]).any()
    assert obs["value"].between(0, 100).all()
    assert (obs["time"].min(), obs["time"].max()) == (
        pd.Timestamp("2007-01-01 09:41:11"),
        pd.Timestamp("2013-07-12 20:39:06"),
    )


def test_ers_cell_1395_reads_as_its_own_network():
    data = ascat.read(ERS_1395)
    with netCDF4.Dataset(ERS_1395) as ds:
        n_gp = ds.dimensions["gp"].size
    assert len(data.stations) == n_gp == 1304 and set(data.stations["network"]) == {"ERS"}
    obs = data.observations
    assert obs["time"].min().year == 1991 and obs["time"].max() < pd.Timestamp("2007-06-01")
    assert set(obs.loc[obs["variable"] == "ssm", "quality_flag"]) == {"p0", "p1", "p2"}  # no ssf in ERS files


def _write_cell(path: Path, fmt="NETCDF4_CLASSIC", indexed=False, row_size=(3, 2)) -> Path:
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.sensor, ds.title, ds.id = "ASCAT", "test cell", "9999.nc"
        for name, size in (("gp", 2), ("obs", 5), ("dayofyear", 366)):
            ds.createDimension(name, size)
        values = {
            "gpi": ("i4", ("gp",), [11, 12]),
            "lat": ("f4", ("gp",), [40.5, 41.5]),
            "lon": ("f4", ("gp",), [5.5, 6.5]),
            "time": ("f8", ("obs",), [14000.5, 14001.5, 14002.5, 14000.25, 14003.25]),
            "sm": ("i1", ("obs",), [10, -1, 30, 40, 50]),
            "proc_flag": ("i2", ("obs",), [0, 0, 1, 0, 2]),
            "frozen": ("i1", ("gp", "dayofyear"), np.tile(np.arange(366) % 100, (2, 1))),
        }
        values["locationIndex" if indexed else "row_size"] = (
            ("i4", ("obs",), [0, 0, 1, 1, 0]) if indexed else ("i4", ("gp",), list(row_size))
        )
        for name, (dtype, dims, data) in values.items():
            var = ds.createVariable(name, dtype, dims)
            if name in ("sm", "frozen"):
                var.missing_value = np.int8(-1)
            if name == "time":
                var.units = "days since 1970-01-01 00:00:00"
            var[:] = np.asarray(data, dtype=dtype)
    return path


def test_a_small_written_cell_reads_in_both_ragged_layouts(tmp_path):
    contiguous = ascat.read(_write_cell(tmp_path / "c.nc"))
    ssm = contiguous.observations.query("variable == 'ssm'")
    assert list(ssm["station"]) == ["11", "11", "12", "12"] and list(ssm["value"]) == [10.0, 30.0, 40.0, 50.0]
    assert list(ssm["quality_flag"]) == ["p0", "p1", "p0", "p2"]
    indexed = ascat.read(_write_cell(tmp_path / "i.nc", indexed=True)).observations.query("variable == 'ssm'")
    # locationIndex [0, 0, 1, 1, 0]: grid point 11 has obs 0 (10) and 4 (50), 12 has obs 3 (40, earlier) and 2 (30)
    assert list(indexed["station"]) == ["11", "11", "12", "12"] and list(indexed["value"]) == [10.0, 50.0, 40.0, 30.0]


@pytest.mark.parametrize("fmt", ["NETCDF4_CLASSIC", "NETCDF3_CLASSIC"])
def test_it_rejects_a_truncated_netcdf_file(tmp_path, fmt):
    whole = _write_cell(tmp_path / "whole.nc", fmt=fmt)
    assert len(ascat.read(whole).stations) == 2
    cut = tmp_path / "TUW_METOP_ASCAT_cut_1358.nc"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    err = _rejected(cut, None, None if fmt == "NETCDF4_CLASSIC" else "file size")
    assert "NetCDF" in err.message


def test_it_rejects_row_sizes_that_do_not_add_up(tmp_path):
    _rejected(_write_cell(tmp_path / "rows.nc", row_size=(3, 3)), None, "row_size", "adding up to the 5")


def test_it_rejects_an_empty_netcdf_file(tmp_path):
    path = tmp_path / "empty.nc"
    path.write_bytes(b"")
    _rejected(path, None, None, "expected a readable NetCDF file")


# --- basin water budget -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def basin_data() -> dict[str, PointData]:
    return {name: basins.read(BASINS / name) for name in PRODUCTS}


def raw_cells(name: str) -> list[list[str]]:
    with (BASINS / name).open(newline="") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize("name", PRODUCTS)
def test_each_basin_table_has_its_basins_months_and_units(basin_data, name):
    variable, units, network, n_basins, first, last = PRODUCTS[name]
    data, rows = basin_data[name], raw_cells(name)
    assert len(data.stations) == n_basins == len(rows) - 1 and set(data.stations["network"]) == {network}
    assert len(data.observations) == sum(cell.strip() != "" for row in rows[1:] for cell in row[1:])
    obs = data.observations
    assert set(obs["variable"]) == {variable} and set(obs["units"]) == {units}
    assert (obs["time"].min(), obs["time"].max()) == (pd.Timestamp(first + "-01"), pd.Timestamp(last + "-01"))
    assert (obs["time"].dt.day == 1).all()
    # one value per product checked against the raw text: 3rd basin, 5th month column
    name_cell, header, cell = rows[3][0], rows[0][5], rows[3][5]
    month = pd.Timestamp(header.split(" ")[1]).replace(day=1)
    row = at(data, str(month), station=name_cell)
    assert len(row) == 1 and row["value"].iloc[0] == float(cell)


def test_basin_products_without_values_in_some_months_skip_them(basin_data):
    # GLEAM 2018 and MOD16 2000-2014 tables have empty cells (468 and 5940): no rows for them
    assert len(basin_data["ET_GLEAM_monthly.csv"].observations) == 204 * 468 - 468
    assert len(basin_data["ET_MOD16_monthly.csv"].observations) == 204 * 180 - 5940


def test_basin_stations_carry_the_metadata_attributes(basin_data):
    st = basin_data["ET_GLEAM_monthly.csv"].stations.set_index("code")
    assert st.loc["WINISK", "continent"] == "North America, Central America and the Caribbean"
    assert (st.loc["WINISK", "ocean"], st.loc["WINISK", "area_km2"]) == ("Arctic Ocean", 65635.3)
    assert not st.loc["JAPURA", "in_metadata"] and np.isnan(st.loc["JAPURA", "area_km2"])  # Amazon sub-basin
    assert st["in_metadata"].sum() == 189 and not st["location_known"].any()
    assert st["lat"].isna().all() and st["lon"].isna().all()
    itsg = basin_data["TWS_GRACE_ITSG_grid_monthly.csv"].stations.set_index("code")
    assert (itsg.loc["KHATANGA", "catch_id"], itsg.loc["KHATANGA", "latitude"]) == ("1", 69.0)
    assert basins.companions(BASINS / "ET_GLEAM_monthly.csv") == [BASINS / "basins.dbf"]
    assert basins.companions(BASINS / "TWS_GRACE_ITSG_grid_monthly.csv") == [BASINS / "basins.xlsx"]


def test_mascon_storage_is_an_anomaly_and_the_mission_gap_is_flagged(basin_data):
    obs = basin_data["TWS_GRACE_JPL_mascons_monthly.csv"].observations
    base = obs[(obs["time"] >= "2004-01-01") & (obs["time"] < "2010-01-01")]
    assert base.groupby("station")["value"].mean().abs().max() < 0.01
    flagged = obs.loc[obs["quality_flag"] == "gap_filled", "time"]
    assert sorted(flagged.unique()) == list(pd.date_range("2017-07-01", "2018-05-01", freq="MS"))
    assert (basin_data["ET_GLEAM_monthly.csv"].observations["quality_flag"] == "").all()


def _bad_csv(tmp_path, name: str, edit) -> Path:
    rows = edit(raw_cells(name)[:6])
    path = tmp_path / name
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    (tmp_path / "basins.dbf").symlink_to(BASINS / "basins.dbf")
    return path


def test_it_rejects_a_basin_csv_with_a_missing_column(tmp_path):
    def drop(rows):
        rows[3] = rows[3][:-1]
        return rows

    path = _bad_csv(tmp_path, "P_GPCC_monthly.csv", drop)
    _rejected(path, 4, "P_GPCC 2019-12-15", "expected 469 fields", "found 468")


def test_it_rejects_a_basin_csv_without_the_basin_name_column(tmp_path):
    path = _bad_csv(tmp_path, "P_GPCC_monthly.csv", lambda rows: [r[1:] for r in rows])
    _rejected(path, 1, "P_GPCC 1981-01-15", "basin name column first")


def test_it_rejects_a_non_numeric_basin_value(tmp_path):
    def spoil(rows):
        rows[2][7] = "12,5 mm"
        return rows

    path = _bad_csv(tmp_path, "ET_GLEAM_monthly.csv", spoil)
    _rejected(path, 3, "ET_GLEAM 1980-07-15", "expected a finite number", "'12,5 mm'", "COPPER")


def test_it_rejects_a_month_column_of_another_product(tmp_path):
    def rename(rows):
        rows[0][4] = "ET_FLUXCOM 1980-04-15"
        return rows

    _rejected(_bad_csv(tmp_path, "ET_GLEAM_monthly.csv", rename), 1, "ET_FLUXCOM 1980-04-15", "'ET_GLEAM YYYY-MM-DD'")


def test_it_rejects_an_empty_basin_csv(tmp_path):
    _rejected(_bad_csv(tmp_path, "R_GRUN_monthly.csv", lambda rows: []), 1, None, "empty file")


def test_it_rejects_a_basin_csv_of_an_unknown_product(tmp_path):
    path = tmp_path / "ET_SSEBop_monthly.csv"
    path.write_text(",ET_SSEBop 2003-01-15\nSEINE,1.0\n")
    _rejected(path, None, "file name", "expected one of the product tables")
