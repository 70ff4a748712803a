"""Loading the real CARDAMOM-FluxVal towers into PostGIS (COPY + merge, idempotent)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Exists, OuterRef

from ingestion.models import IngestRun, Observation, Station
from ingestion.readers.cardamom import read_cardamom
from ingestion.services import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def cardamom(shared_data):
    return read_cardamom(shared_data / "cardamom_fluxval")


def test_the_session_ingest_loaded_every_tower_and_row(cardamom):
    assert Station.objects.filter(network="FLUXNET2015").count() == len(cardamom.stations) == 204
    expected = cardamom.observations.drop_duplicates(["station", "variable", "time", "is_validation"])
    assert Observation.objects.filter(station__network="FLUXNET2015").count() == len(expected)
    runs = IngestRun.objects.filter(kind="cardamom", status="succeeded")
    assert runs.count() == 204  # one run per site file
    assert sum(r.observations for r in runs) == len(expected)
    run = runs.get(source_path__endswith="/flux_site_1.cbf")
    assert len(run.checksum) == 64 and [Path(f["path"]).name for f in run.files] == [
        "flux_site_1.cbf",
        "location_fluxnet.csv",
        "validation_AR-SLu.csv",
    ]


def test_held_out_validation_rows_are_marked(shared_data):
    expected = 0
    for path in (shared_data / "cardamom_fluxval" / "validation_data").glob("validation_*.csv"):
        with path.open() as fh:
            expected += sum(1 for row in csv.DictReader(fh) if row["ET"] not in ("", "NA", "NaN", "-9999"))
    assert Observation.objects.filter(variable="et", is_validation=True).count() == expected
    # a held-out month is not also a training row of the same tower
    training = Observation.objects.filter(
        variable="et", is_validation=False, station=OuterRef("station"), time=OuterRef("time")
    )
    assert not Observation.objects.filter(variable="et", is_validation=True).filter(Exists(training)).exists()


def test_stations_are_postgis_points_with_land_cover(cardamom):
    station = Station.objects.get(network="FLUXNET2015", code="DE-Hai")
    row = cardamom.stations.set_index("code").loc["DE-Hai"]
    assert station.geom.srid == 4326
    assert (station.geom.x, station.geom.y) == pytest.approx((row.lon, row.lat))
    assert station.land_cover == row.land_cover == "DBF"


def test_reingesting_the_same_files_adds_nothing(shared_data, capsys):
    before = Observation.objects.count(), Station.objects.count(), IngestRun.objects.count()
    towers = Observation.objects.filter(ingest_run__kind="cardamom").count()
    call_command("ingest", "cardamom", str(shared_data / "cardamom_fluxval"), "--json")
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts == {"files": 204, "stations": 0, "observations": 0, "rejected_files": 0, "skipped_duplicates": towers}
    assert (Observation.objects.count(), Station.objects.count(), IngestRun.objects.count()) == before


def _small_copy(shared_data, tmp_path, sites=(1, 2, 3)) -> Path:
    """A CARDAMOM folder with a few site files (writable copies)."""
    source, copy = shared_data / "cardamom_fluxval", tmp_path / "cardamom_small"
    (copy / "cbf_files").mkdir(parents=True)
    shutil.copyfile(source / "location_fluxnet.csv", copy / "location_fluxnet.csv")
    shutil.copytree(source / "validation_data", copy / "validation_data", copy_function=shutil.copyfile)
    for n in sites:
        shutil.copyfile(source / "cbf_files" / f"flux_site_{n}.cbf", copy / "cbf_files" / f"flux_site_{n}.cbf")
    return copy


def test_files_already_loaded_from_elsewhere_merge_without_duplicating(shared_data, tmp_path):
    copy = _small_copy(shared_data, tmp_path)
    before = Observation.objects.count()
    summary = ingest("cardamom", copy)
    assert [r.run.status for r in summary.results] == ["succeeded"] * 3
    assert summary.counts()["observations"] == 0 and summary.counts()["skipped_duplicates"] > 0
    assert Observation.objects.count() == before


def test_a_newer_reader_reads_an_unchanged_file_again_and_replaces_its_rows(shared_data, tmp_path):
    # e.g. ECOSTRESS READER_VERSION 1.1 reads four more columns of the same bytes: skipping it would keep them out
    copy = _small_copy(shared_data, tmp_path, sites=(1,))
    first = ingest("cardamom", copy, network="TEST").results[0]
    assert ingest("cardamom", copy, network="TEST").results[0].skipped  # same bytes, same reader
    IngestRun.objects.filter(id=first.run.id).update(reader_version="0.9")  # as if an older reader had read it
    station = Station.objects.get(network="TEST", code="AR-SLu")
    n_rows = Observation.objects.filter(station=station).count()
    again = ingest("cardamom", copy, network="TEST").results[0]
    assert not again.skipped and again.run.id != first.run.id and again.run.reader_version != "0.9"
    assert Observation.objects.filter(station=station).count() == n_rows
    assert set(Observation.objects.filter(station=station).values_list("ingest_run", flat=True)) == {again.run.id}


def test_a_changed_file_replaces_the_rows_of_its_previous_run(shared_data, tmp_path):
    copy = _small_copy(shared_data, tmp_path, sites=(1,))
    first = ingest("cardamom", copy, network="TEST").results[0]
    station = Station.objects.get(network="TEST", code="AR-SLu")
    n_rows = Observation.objects.filter(station=station).count()
    assert first.run.observations == n_rows > 0
    validation = copy / "validation_data" / "validation_AR-SLu.csv"
    lines = validation.read_text().splitlines()
    fields = lines[1].split(",")
    fields[-1] = "9.5"  # a corrected ET value of the first held-out month
    validation.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    second = ingest("cardamom", copy, network="TEST").results[0]
    assert not second.skipped and second.run.id != first.run.id
    first.run.refresh_from_db()
    assert first.run.status == "superseded"
    assert Observation.objects.filter(station=station).count() == n_rows
    assert set(Observation.objects.filter(station=station).values_list("ingest_run", flat=True)) == {second.run.id}
    month = Observation.objects.filter(station=station, variable="et", is_validation=True).order_by("time").first()
    assert month.value == 9.5


def test_a_failure_in_file_k_of_n_keeps_the_others_and_says_which(shared_data, tmp_path, capsys):
    copy = _small_copy(shared_data, tmp_path)
    target = copy / "cbf_files" / "flux_site_2.cbf"
    target.write_bytes(target.read_bytes()[:1000])  # truncated binary
    before = Observation.objects.count()
    with pytest.raises(CommandError, match="1 of 3 files were rejected: .*flux_site_2.cbf"):
        call_command("ingest", "cardamom", str(copy), "--network", "TEST", "--json")
    captured = capsys.readouterr()
    assert "flux_site_2.cbf" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["rejected_files"] == 1
    assert set(Station.objects.filter(network="TEST").values_list("code", flat=True)) == {"AR-SLu", "AT-Neu"}
    failed = IngestRun.objects.get(source_path=str(target))
    assert failed.status == "failed" and "flux_site_2.cbf" in failed.errors
    loaded = Observation.objects.count() - before
    assert (
        loaded
        == sum(r.observations for r in IngestRun.objects.filter(source_path__startswith=str(copy), status="succeeded"))
        > 0
    )


def test_unknown_kinds_and_paths_are_refused_before_reading(tmp_path):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("ingest", "nosuchkind", str(tmp_path))
    with pytest.raises(CommandError, match="no such file or directory"):
        call_command("ingest", "cardamom", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="no file matching"):
        call_command("ingest", "cardamom", str(tmp_path))
