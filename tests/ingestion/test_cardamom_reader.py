"""CARDAMOM-FluxVal reader on the real files (no database)."""

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingestion.readers.base import PointData, ReaderError
from ingestion.readers.cardamom import (
    IGBP,
    MET_COLUMNS,
    OBS_COLUMNS,
    read_cardamom,
    read_cardamom_site,
    read_cbf,
    read_validation,
)

DECODED_SITES = ["AR-SLu", "DE-Hai", "GL-ZaH", "US-Ha1", "ZM-Mon"]
# DERIVED csv column -> (variable, units) of the long table, as specified for the portal
EXPECTED_VARIABLES = {
    "tmin_C": ("tmin", "degC"),
    "tmax_C": ("tmax", "degC"),
    "ssrd_MJm2d": ("ssrd", "MJ m-2 d-1"),
    "co2_ppm": ("co2", "ppm"),
    "burned_area": ("burned_area", "1"),
    "vpd_hPa": ("vpd", "hPa"),
    "precip_mmd": ("precip", "mm d-1"),
    "GPP": ("gpp", "g m-2 d-1"),
    "LAI": ("lai", "m2 m-2"),
    "NBE": ("nbe", "g m-2 d-1"),
    "ABGB": ("abgb", "g m-2"),
    "ET": ("et", "mm d-1"),
}


@pytest.fixture(scope="module")
def cardamom_dir() -> Path:
    path = Path(os.environ.get("SHARED_DATA_DIR", "/work/shared/data")) / "cardamom_fluxval"
    assert path.is_dir(), f"{path} not found: set SHARED_DATA_DIR to the real sample data"
    return path


@pytest.fixture(scope="module")
def data(cardamom_dir) -> PointData:
    return read_cardamom(cardamom_dir)


@pytest.fixture(scope="module")
def decoded(cardamom_dir) -> pd.DataFrame:
    return pd.read_csv(cardamom_dir / "DERIVED_cbf_decoded_monthly_long.csv.gz", float_precision="round_trip")


@pytest.fixture(scope="module")
def locations(cardamom_dir) -> pd.DataFrame:
    return pd.read_csv(cardamom_dir / "location_fluxnet.csv")


def _site_root(tmp_path, cardamom_dir, number=1):
    """A folder with the real location table, one cbf copy and the real validation files linked."""
    (tmp_path / "cbf_files").mkdir()
    (tmp_path / "validation_data").mkdir()
    os.symlink(cardamom_dir / "location_fluxnet.csv", tmp_path / "location_fluxnet.csv")
    for f in (cardamom_dir / "validation_data").glob("*.csv"):
        os.symlink(f, tmp_path / "validation_data" / f.name)
    target = tmp_path / "cbf_files" / f"flux_site_{number}.cbf"
    shutil.copy(cardamom_dir / "cbf_files" / f"flux_site_{number}.cbf", target)
    return target


@pytest.mark.parametrize("site", DECODED_SITES)
def test_cbf_decode_equals_the_derived_long_csv(site, cardamom_dir, decoded, locations):
    number = int(np.flatnonzero(locations["Flux_name"] == site)[0]) + 1
    cbf = read_cbf(cardamom_dir / "cbf_files" / f"flux_site_{number}.cbf")
    ref = decoded[decoded["site"] == site].reset_index(drop=True)
    assert len(ref) == cbf.header["n_steps"] == len(cbf.met)
    assert (ref["cbf_lat"] == cbf.header["lat"]).all()
    assert list(cbf.met.index.strftime("%Y-%m")) == list(ref["month"])
    np.testing.assert_array_equal(cbf.met.to_numpy(), ref[list(MET_COLUMNS)].to_numpy())
    np.testing.assert_array_equal(cbf.obs[list(OBS_COLUMNS)].to_numpy(), ref[list(OBS_COLUMNS)].to_numpy())


@pytest.mark.parametrize("site", DECODED_SITES[:3])
def test_long_table_variables_equal_the_derived_csv_columns(site, data, decoded):
    ref = decoded[decoded["site"] == site]
    obs = data.observations[(data.observations["station"] == site) & ~data.observations["is_validation"]]
    assert set(obs["variable"]) == {v for c, (v, _) in EXPECTED_VARIABLES.items() if ref[c].notna().any()}
    for column, (variable, units) in EXPECTED_VARIABLES.items():
        expected = ref.loc[ref[column].notna(), ["month", column]]
        got = obs[obs["variable"] == variable]
        assert list(got["time"].dt.strftime("%Y-%m")) == list(expected["month"]), variable
        np.testing.assert_array_equal(got["value"], expected[column], err_msg=variable)
        assert set(got["units"]) <= {units}, variable


def test_it_reads_204_stations_with_their_metadata(data, locations):
    st = data.stations
    assert len(st) == 204 and st["code"].is_unique
    assert list(st["code"]) == list(locations["Flux_name"])
    np.testing.assert_array_equal(st["lat"], locations["Lat"])
    assert set(st["land_cover"]) <= IGBP
    assert st["elevation"].isna().all()
    assert set(st["network"]) == {"FLUXNET2015"} and set(st["source"]) == {"CARDAMOM-FluxVal v1.0"}
    assert set(data.observations["station"]) == set(st["code"])


def test_validation_rows_equal_the_non_missing_values_of_the_validation_files(data, cardamom_dir):
    files = list((cardamom_dir / "validation_data").glob("validation_*.csv"))
    assert len(files) == 204
    tables = pd.concat(pd.read_csv(f) for f in files)
    val = data.observations[data.observations["is_validation"]]
    assert len(val) == len(tables) * 3 - int(tables[["GPP", "NEE", "ET"]].isna().sum().sum())
    for column, variable in (("GPP", "gpp"), ("NEE", "nee"), ("ET", "et")):
        assert (val["variable"] == variable).sum() == tables[column].notna().sum()
    assert set(val["units"]) == {"g m-2 d-1", "mm d-1"}
    assert val["time"].min() >= pd.Timestamp("2001-01-01") and (val["time"].dt.day == 1).all()


def test_validation_months_are_not_training_targets(data):
    obs = data.observations
    targets = obs[obs["variable"].isin(["gpp", "et"])]
    both = targets[targets["is_validation"]].merge(
        targets[~targets["is_validation"]], on=["station", "variable", "time"]
    )
    assert both.empty
    # drivers exist for every held-out month
    drivers = obs[(obs["variable"] == "tmin") & ~obs["is_validation"]]
    held_out = obs[obs["is_validation"] & (obs["variable"] == "gpp")]
    assert len(held_out.merge(drivers, on=["station", "time"])) == len(held_out)


def test_legacy_validation_file_names_are_found(data):
    val = data.observations[data.observations["is_validation"]]
    for site in ("GL-NuF", "GL-ZaF", "GL-ZaH", "SJ-Adv", "SJ-Blv"):
        assert (val["station"] == site).sum() > 0, site


def test_a_single_cbf_reads_like_the_whole_folder(cardamom_dir, data):
    one = read_cardamom_site(cardamom_dir / "cbf_files" / "flux_site_73.cbf")
    code = one.stations["code"].iloc[0]
    assert code == data.stations["code"].iloc[72]
    pd.testing.assert_frame_equal(
        one.observations, data.observations[data.observations["station"] == code].reset_index(drop=True)
    )


def test_it_rejects_a_truncated_cbf(tmp_path, cardamom_dir):
    cbf = _site_root(tmp_path, cardamom_dir)
    with open(cbf, "r+b") as fh:
        fh.truncate(cbf.stat().st_size - 8 * 20)
    with pytest.raises(ReaderError, match=r"flux_site_1\.cbf: field 'n_steps': expected 33120 bytes") as err:
        read_cbf(cbf)
    assert err.value.path == str(cbf) and err.value.field == "n_steps"
    with pytest.raises(ReaderError, match=r"flux_site_1\.cbf"):
        read_cardamom_site(cbf)


def test_it_rejects_a_cbf_with_the_wrong_number_of_drivers(tmp_path, cardamom_dir):
    cbf = _site_root(tmp_path, cardamom_dir)
    values = np.fromfile(cbf, dtype="<f8")
    values[3] = 7
    values.tofile(cbf)
    with pytest.raises(ReaderError, match="flux_site_1.cbf: field 'nomet': expected 9 meteorological drivers, found 7"):
        read_cbf(cbf)


def test_it_rejects_a_cbf_that_belongs_to_another_site(tmp_path, cardamom_dir):
    cbf = _site_root(tmp_path, cardamom_dir)
    shutil.copy(cardamom_dir / "cbf_files" / "flux_site_2.cbf", cbf)  # AR-Vir (-28.2) in AR-SLu's (-33.5) place
    with pytest.raises(ReaderError, match=r"flux_site_1\.cbf: field 'lat': .*AR-SLu") as err:
        read_cardamom_site(cbf)
    assert "location_fluxnet.csv line 2" in str(err.value)


def test_it_rejects_a_validation_csv_without_et(tmp_path, cardamom_dir):
    cbf = _site_root(tmp_path, cardamom_dir)
    target = tmp_path / "validation_data" / "validation_AR-SLu.csv"
    table = pd.read_csv(target)
    target.unlink()
    table.drop(columns="ET").to_csv(target, index=False)
    with pytest.raises(ReaderError, match=r"validation_AR-SLu\.csv: line 1: field 'ET'") as err:
        read_cardamom_site(cbf)
    assert err.value.field == "ET"


def test_it_rejects_a_validation_row_whose_id_disagrees_with_its_date(tmp_path):
    path = tmp_path / "validation_XX-Bad.csv"
    path.write_text("ID,Date,GPP,NEE,ET\n117,201009,1,2,3\n118,201011,1,2,3\n")
    with pytest.raises(ReaderError, match=r"line 3: field 'Date': ID 118 is month 201010") as err:
        read_validation(path)
    assert err.value.line == 3


def test_point_data_validate_names_the_bad_column(data):
    bad = PointData(data.stations, data.observations.assign(value=data.observations["value"].astype(object)))
    with pytest.raises(ReaderError, match="field 'observations.value': expected float64") as err:
        bad.validate("cardamom_fluxval")
    assert err.value.field == "observations.value"
    with pytest.raises(ReaderError, match="observations.is_validation"):
        PointData(data.stations, data.observations.drop(columns="is_validation")).validate()
    assert data.validate() is data


def test_reader_errors_keep_their_location_through_pickling():
    err = pickle.loads(pickle.dumps(ReaderError("/x/validation_AR-SLu.csv", "expected YYYYMM", line=4, field="Date")))
    assert str(err) == "validation_AR-SLu.csv: line 4: field 'Date': expected YYYYMM"
    assert (err.path, err.line, err.field) == ("/x/validation_AR-SLu.csv", 4, "Date")
