"""`generate et_fusion` end to end on real towers: file, CF conventions, stored metrics, lineage, atomicity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.conf import settings
from django.core.management import CommandError, call_command

from products import services
from products.methods.metrics import summary
from products.models import GenerationRun, ValidationResult
from products.pipelines import PIPELINES
from products.pipelines.et_fusion import ERA5_POINTS
from tests.conftest import FEW_SITES, et_test_parameters

pytestmark = pytest.mark.django_db


@pytest.fixture
def et_file(et_run) -> Path:
    f = et_run.version.files.get(name="et_fusion_timeseries.nc")
    return Path(settings.DATA_ROOT) / f.path


def test_the_published_file_exists_with_its_recorded_checksum(et_run, et_file):
    f = et_run.version.files.get(name="et_fusion_timeseries.nc")
    assert et_file.is_file() and et_file.stat().st_size == f.size
    assert hashlib.sha256(et_file.read_bytes()).hexdigest() == f.sha256
    assert et_file.parent == Path(settings.DATA_ROOT) / et_run.version.directory


def test_the_file_follows_cf_discrete_sampling_geometry(et_file):
    with xr.open_dataset(et_file) as ds:
        assert ds.attrs["Conventions"].startswith("CF-1.") and ds.attrs["featureType"] == "timeSeries"
        assert ds["station_name"].attrs["cf_role"] == "timeseries_id"
        assert (ds["lat"].attrs["units"], ds["lon"].attrs["units"]) == ("degrees_north", "degrees_east")
        assert ds["lat"].attrs["standard_name"] == "latitude" and ds["time"].attrs["standard_name"] == "time"
        for name in ("et", "et_obs"):
            assert ds[name].dims == ("station", "time")
            assert ds[name].attrs["units"] == "kg m-2 d-1"
            assert ds[name].attrs["standard_name"] == "water_evapotranspiration_flux"
            assert set(ds[name].encoding["coordinates"].split()) >= {"lat", "lon", "time"}
        assert ds["is_validation"].attrs["flag_meanings"].split() == ["training", "held_out_validation"]
        towers = set(ds["station_name"].values[ds["site_type"].values == 0])
        points = set(ds["station_name"].values[ds["site_type"].values == 1])
        assert towers == set(FEW_SITES)
        assert points == {"Halifax", "Montréal", "Iqaluit", "Saskatoon", "Victoria"}
        era5 = ds.sel(station=ds["site_type"] == 1)
        assert np.isfinite(era5["et"].sel(time=slice("1990-01-01", "1993-12-31"))).all()
        assert float(era5["et"].min()) > -1 and float(era5["et"].max()) < 10  # mm/day, plausible


def test_stored_metrics_equal_those_recomputed_from_the_file(et_run, et_file):
    with xr.open_dataset(et_file) as ds:
        towers = ds.sel(station=ds["site_type"] == 0)
        held_out = towers["is_validation"].values == 1
        sim, obs = towers["et"].values[held_out], towers["et_obs"].values[held_out]
        pooled = summary(sim, obs)
        stored = ValidationResult.objects.get(run=et_run, split="validation", scope="pooled")
        assert stored.n == pooled["n"] > 100
        for key in ("kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "nse"):
            assert getattr(stored, key) == pytest.approx(pooled[key], rel=1e-9, abs=1e-12), key
        for code in ("DE-Hai", "US-Ha1"):
            i = list(towers["station_name"].values).index(code)
            mask = towers["is_validation"].values[i] == 1
            site = summary(towers["et"].values[i][mask], towers["et_obs"].values[i][mask])
            row = ValidationResult.objects.get(run=et_run, split="validation", scope="site", label=code)
            assert row.station.code == code and row.n == site["n"]
            assert row.kge == pytest.approx(site["kge"]) and row.rmse == pytest.approx(site["rmse"])
        assert et_run.summary["kge"] == pytest.approx(stored.kge)


def test_each_held_out_month_was_predicted_by_a_model_that_never_saw_its_tower(et_file):
    with xr.open_dataset(et_file) as ds:
        towers = ds.sel(station=ds["site_type"] == 0)
        folds = towers["cv_fold"].values
        assert set(folds) == {0, 1, 2}  # three folds, every tower in exactly one
        assert len(folds) == len(FEW_SITES)


def test_the_run_records_its_lineage(et_run, shared_data):
    era5 = shared_data / ERA5_POINTS
    inputs = {i["role"]: i for i in et_run.inputs}
    assert inputs["ERA5 point forcing"]["sha256"] == hashlib.sha256(era5.read_bytes()).hexdigest()
    assert len(inputs["tower observations (CARDAMOM-FluxVal)"]["sha256"]) == 64
    assert et_run.parameters == et_test_parameters()
    assert et_run.code_version and et_run.started_at <= et_run.finished_at
    assert {"load_inputs", "tower_model", "tower_predict_and_write"} <= set(et_run.timings)
    assert et_run.version.lineage["inputs"] == et_run.inputs
    assert et_run.version.lineage["code_version"] == et_run.code_version


def test_a_failed_run_leaves_the_published_version_untouched(et_run, et_file, monkeypatch):
    versions = list(et_run.dataset.versions.values_list("number", flat=True))
    before = et_file.read_bytes()

    def broken_pipeline(run, workdir):
        (workdir / "half_written.nc").write_bytes(b"partial")
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setitem(PIPELINES, "et_fusion", broken_pipeline)
    run = services.execute_run(services.create_run("et_fusion").id)
    assert run.status == "failed" and "disk full" in run.error and run.version is None
    assert list(et_run.dataset.versions.values_list("number", flat=True)) == versions
    assert et_file.read_bytes() == before
    assert not list((Path(settings.DATA_ROOT) / "tmp").glob(f"et_fusion-run{run.id}-*"))


def test_a_run_with_no_input_fails_with_a_clear_reason():
    run = services.execute_run(services.create_run("et_fusion", parameters={"sites": ["XX-None"]}).id)
    assert (
        run.status == "failed" and "no FLUXNET2015 tower observations" in run.error and "ingest cardamom" in run.error
    )


def test_a_run_is_claimed_once(et_run):
    again = services.execute_run(et_run.id)  # a duplicate task delivery
    assert again.status == "succeeded" and again.finished_at == et_run.finished_at


def test_the_command_publishes_a_new_version_and_if_missing_skips(et_run, capsys):
    before = et_run.dataset.versions.count()
    call_command("generate", "et_fusion", "--if-missing")
    assert "already published" in capsys.readouterr().out
    assert et_run.dataset.versions.count() == before
    params = {**et_test_parameters(), "n_splits": 2, "n_estimators": 50}
    params.pop("sites")
    call_command("generate", "et_fusion", "--sites", ",".join(FEW_SITES[:4]), "--params", json.dumps(params), "--json")
    out = json.loads(capsys.readouterr().out)
    assert et_run.dataset.versions.count() == before + 1
    latest = GenerationRun.objects.latest("created_at")
    assert latest.status == "succeeded" and latest.version.number == before + 1 == out["version"]
    assert out["run"] == latest.id and out["summary"]["kge"] == pytest.approx(latest.summary["kge"])
    assert latest.parameters["n_estimators"] == 50 and latest.summary["towers"] == 4


def test_the_command_rejects_bad_parameters():
    with pytest.raises(CommandError, match="expected a JSON object"):
        call_command("generate", "et_fusion", "--params", "[1, 2]")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("generate", "et_fusion_v2")
    with pytest.raises(services.RunError, match="no generator yet: expected one of et_fusion"):
        services.create_run("et_fusion_v2")
