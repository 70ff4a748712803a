"""Loading the real CARDAMOM-FluxVal towers into PostGIS (COPY + merge, idempotent)."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
from django.core.management import call_command
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
    run = IngestRun.objects.get(kind="cardamom", status="succeeded")
    assert run.observations == len(expected) and run.stations == 204
    assert len(run.checksum) == 64 and len(run.files) > 400


def test_held_out_validation_rows_are_marked(shared_data):
    expected = 0
    for path in (shared_data / "cardamom_fluxval" / "validation_data").glob("validation_*.csv"):
        with path.open() as fh:
            expected += sum(1 for row in csv.DictReader(fh) if row["ET"] not in ("", "NA", "NaN", "-9999"))
    assert Observation.objects.filter(variable="et", is_validation=True).count() == expected
    # a held-out month is not also a training row of the same tower
    training = Observation.objects.filter(variable="et", is_validation=False, station=OuterRef("station"),
                                          time=OuterRef("time"))
    assert not Observation.objects.filter(variable="et", is_validation=True).filter(Exists(training)).exists()


def test_stations_are_postgis_points_with_land_cover(cardamom):
    station = Station.objects.get(network="FLUXNET2015", code="DE-Hai")
    row = cardamom.stations.set_index("code").loc["DE-Hai"]
    assert station.geom.srid == 4326
    assert (station.geom.x, station.geom.y) == pytest.approx((row.lon, row.lat))
    assert station.land_cover == row.land_cover == "DBF"


def test_reingesting_the_same_files_adds_nothing(shared_data, capsys):
    before = Observation.objects.count(), Station.objects.count(), IngestRun.objects.count()
    call_command("ingest", "cardamom", str(shared_data / "cardamom_fluxval"), "--json")
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["observations"] == 0 and counts["stations"] == 0 and counts["rejected_files"] == 0
    assert counts["skipped_duplicates"] > 0
    assert (Observation.objects.count(), Station.objects.count(), IngestRun.objects.count()) == before


def test_a_copy_with_other_checksums_merges_without_duplicating(shared_data, tmp_path):
    source = shared_data / "cardamom_fluxval"
    copy = tmp_path / "cardamom_copy"
    shutil.copytree(source, copy, copy_function=shutil.copyfile)
    (copy / "validation_data" / "validation_DE-Hai.csv").write_text(
        (source / "validation_data" / "validation_DE-Hai.csv").read_text() + "\n")  # same rows, new checksum
    before = Observation.objects.count()
    result = ingest("cardamom", copy)
    assert not result.skipped and result.run.status == "succeeded"
    assert result.run.observations == 0
    assert result.run.skipped_duplicates == Observation.objects.filter(station__network="FLUXNET2015").count()
    assert Observation.objects.count() == before


def test_a_rejected_source_writes_nothing_and_records_the_failure(shared_data, tmp_path):
    copy = tmp_path / "cardamom_bad"
    shutil.copytree(shared_data / "cardamom_fluxval", copy, copy_function=shutil.copyfile)
    target = copy / "cbf_files" / "flux_site_1.cbf"
    data = target.read_bytes()
    target.write_bytes(data[:1000])  # truncated binary
    before = Observation.objects.count()
    with pytest.raises(ValueError, match="flux_site_1.cbf"):
        ingest("cardamom", copy)
    assert Observation.objects.count() == before
    failed = IngestRun.objects.get(source_path=str(copy))
    assert failed.status == "failed" and "flux_site_1.cbf" in failed.errors
