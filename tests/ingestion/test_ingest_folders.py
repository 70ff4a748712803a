"""Every real point-data folder of ../shared/data ingests through the command, and again adds nothing.

(ASCAT/ERS, 6.5 million rows, is ingested by `make run` and its reader is tested in
test_sm_basin_readers.py; loading it here would add two minutes to every test run.)
"""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from ingestion.models import IngestRun, Observation
from ingestion.services import reader_module, source_files

pytestmark = pytest.mark.django_db

FOLDERS = [("reddyproc", "reddyproc_DE-Tha"), ("ecostress", "ecov002_calval_tables"), ("ismn", "ismn_testdata"),
           ("basins", "lehmannfa_basin_water_budget")]


def _run(kind, path, capsys) -> dict:
    call_command("ingest", kind, str(path), "--json")
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("kind, folder", FOLDERS)
def test_a_real_folder_ingests_and_reingests_as_a_no_op(kind, folder, shared_data, capsys):
    path = shared_data / folder
    files = source_files(kind, path)
    module = reader_module(kind)
    expected_rows = sum(len(module.read(f).observations.drop_duplicates(["station", "variable", "time"]))
                        for f in files)
    before = Observation.objects.count()
    first = _run(kind, path, capsys)
    assert first["files"] == len(files) and first["rejected_files"] == 0
    assert first["observations"] == Observation.objects.count() - before == expected_rows > 0
    assert IngestRun.objects.filter(kind=kind, status="succeeded").count() == len(files)
    again = _run(kind, path, capsys)
    assert again["observations"] == 0 and again["skipped_duplicates"] == expected_rows
    assert Observation.objects.count() - before == expected_rows
