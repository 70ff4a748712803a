"""Every real point-data folder of ../shared/data ingests through the command, and again adds nothing.

(ASCAT/ERS, 6.5 million rows, is ingested by `make run` and its reader is tested in
test_sm_basin_readers.py; loading it here would add two minutes to every test run.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from django.core.management import CommandError, call_command

from ingestion.models import GridFile, IngestRun, Observation
from ingestion.readers.grids import open_any
from ingestion.readers.gridtools import describe
from ingestion.services import cube_for, reader_module, source_files

pytestmark = pytest.mark.django_db

FOLDERS = [
    ("reddyproc", "reddyproc_DE-Tha"),
    ("ecostress", "ecov002_calval_tables"),
    ("ismn", "ismn_testdata"),
    ("basins", "lehmannfa_basin_water_budget"),
]


def _run(kind, path, capsys) -> dict:
    call_command("ingest", kind, str(path), "--json")
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("kind, folder", FOLDERS)
def test_a_real_folder_ingests_and_reingests_as_a_no_op(kind, folder, shared_data, capsys):
    path = shared_data / folder
    files = source_files(kind, path)
    module = reader_module(kind)
    rows = {f: len(module.read(f).observations.drop_duplicates(["station", "variable", "time"])) for f in files}
    loaded = set(IngestRun.objects.filter(kind=kind, status="succeeded").values_list("source_path", flat=True))
    new_rows = sum(n for f, n in rows.items() if str(Path(f).resolve()) not in loaded)  # the session loaded some
    before = Observation.objects.count()
    first = _run(kind, path, capsys)
    assert first["files"] == len(files) and first["rejected_files"] == 0
    assert first["observations"] == Observation.objects.count() - before == new_rows
    assert IngestRun.objects.filter(kind=kind, status="succeeded").count() == len(files)
    again = _run(kind, path, capsys)
    assert sum(rows.values()) > 0
    assert again["observations"] == 0 and again["skipped_duplicates"] == sum(rows.values())
    assert Observation.objects.count() - before == new_rows


GRID_FOLDERS = [
    ("gldas_testdata", 11),
    ("xarray_data", 1),
    ("ecmwf_models_testdata", 1),
    ("xclim_era5_cities", 1),
    ("modis_lsttools", 1),
]


@pytest.mark.parametrize("folder, n_files", GRID_FOLDERS)
def test_gridded_files_are_registered_not_loaded(folder, n_files, shared_data, capsys):
    before = Observation.objects.count()
    counts = _run("grid", shared_data / folder, capsys)
    assert counts["files"] == n_files and counts["rejected_files"] == 0
    assert Observation.objects.count() == before  # values stay in the files
    grids = GridFile.objects.filter(path__startswith=str(shared_data / folder))
    assert grids.count() == n_files
    g = grids.first()
    with open_any(g.path) as ds:
        info = describe(ds)
    assert g.bbox.extent == pytest.approx(tuple(info["bbox"]))
    assert [v["name"] for v in g.variables] == [v["name"] for v in info["variables"]]
    assert g.time_steps == info["time"]["steps"] and g.grid["shape"] == list(info["grid"]["shape"])
    assert _run("grid", shared_data / folder, capsys)["files"] == n_files
    assert GridFile.objects.filter(path__startswith=str(shared_data / folder)).count() == n_files  # no duplicates


def test_a_truncated_grid_is_rejected_and_registers_nothing(shared_data, tmp_path, capsys):
    source = next((shared_data / "gldas_testdata").rglob("*.nc4"))
    bad = tmp_path / source.name
    bad.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(CommandError, match=source.name):
        call_command("ingest", "grid", str(bad), "--json")
    assert "rejected" in capsys.readouterr().err
    assert not GridFile.objects.filter(path=str(bad)).exists()
    assert IngestRun.objects.get(source_path=str(bad)).status == "failed"


def test_a_registered_grid_is_copied_once_to_the_chunked_cube_store(shared_data, capsys):
    source = sorted((shared_data / "gldas_testdata").rglob("*.nc4"))[0]
    _run("grid", source, capsys)
    grid = GridFile.objects.get(path=str(source))
    cube = cube_for(grid)
    assert cube.is_file() and grid.cube_path.endswith(f"{grid.sha256}.nc")
    with xr.open_dataset(cube) as stored, open_any(source) as original:
        name = "SoilMoi0_10cm_inst"
        assert stored[name].encoding["zlib"] and stored[name].encoding["chunksizes"][0] == 1
        np.testing.assert_array_equal(stored[name].values, original[name].values)
        assert stored[name].attrs["units"] == original[name].attrs["units"]
        assert stored.attrs["source_sha256"] == grid.sha256
    mtime = cube.stat().st_mtime_ns
    assert cube_for(grid) == cube and cube.stat().st_mtime_ns == mtime  # reused, not rewritten
