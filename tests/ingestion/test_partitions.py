"""Observations partitioned by station id: a large load of new stations gets a partition of its own,
everything else merges through the parent; the migration applies on a database with rows, both ways.

SYNTHETIC observations at made-up stations, except where a real CARDAMOM file is named.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from ingestion import services
from ingestion.models import IngestRun, Observation, Station
from ingestion.readers.base import PointData
from ingestion.services import ingest, load_point_data

pytestmark = pytest.mark.django_db

SMALL = 50  # PARTITION_MIN_ROWS in these tests: a few hundred rows make a "large" run


@pytest.fixture
def small_partitions(monkeypatch):
    monkeypatch.setattr(services, "PARTITION_MIN_ROWS", SMALL)


def synthetic(network: str, n_stations: int = 3, n_times: int = 40, codes: list[str] | None = None) -> PointData:
    """SYNTHETIC stations and hourly values of two variables."""
    codes = codes or [f"SYN-{i}" for i in range(n_stations)]
    stations = pd.DataFrame(
        {
            "code": codes,
            "name": codes,
            "lat": np.linspace(10, 20, len(codes)),
            "lon": np.linspace(30, 40, len(codes)),
            "elevation": np.nan,
            "land_cover": "",
            "network": network,
            "source": "SYNTHETIC (tests)",
        }
    )
    times = pd.date_range("2001-01-01", periods=n_times, freq="h").to_numpy()
    obs = pd.DataFrame(
        {
            "station": np.repeat(codes, 2 * n_times),
            "variable": np.tile(np.repeat(["ta", "swc_0.05_0.05"], n_times), len(codes)),
            "time": np.tile(times, 2 * len(codes)),
        }
    )
    obs["value"] = np.arange(len(obs), dtype=float)
    obs["units"] = np.where(obs["variable"] == "ta", "degC", "m3 m-3")
    obs["quality_flag"] = np.where(np.arange(len(obs)) % 3 == 0, "D03,D05", "")
    obs["is_validation"] = np.arange(len(obs)) % 7 == 0
    return PointData(stations, obs).validate("synthetic")


def new_run(name: str = "synthetic") -> IngestRun:
    return IngestRun.objects.create(kind="test", source_path=name, checksum="-", reader="-", reader_version="-")


def partitions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'ingestion_observation'::regclass"
        )
        return dict(cursor.fetchall())


def stored(run: IngestRun) -> pd.DataFrame:
    rows = Observation.objects.filter(ingest_run=run).values_list(
        "station__code", "variable", "time", "value", "units", "quality_flag", "is_validation"
    )
    table = pd.DataFrame(
        list(rows), columns=["station", "variable", "time", "value", "units", "quality_flag", "is_validation"]
    )
    table["time"] = pd.to_datetime(table["time"], utc=True).dt.tz_localize(None)
    return table.sort_values(["station", "variable", "time", "is_validation"]).reset_index(drop=True)


def expected(data: PointData) -> pd.DataFrame:
    table = data.observations.drop_duplicates(["station", "variable", "time", "is_validation"])
    return table.sort_values(["station", "variable", "time", "is_validation"]).reset_index(drop=True)


def test_a_large_load_of_new_stations_gets_a_partition_of_its_own(small_partitions):
    data = synthetic("SYN-OWN")
    run = new_run()
    steps: dict[str, float] = {}
    n_stations, inserted, skipped = load_point_data(data, run, timings=steps)
    assert (n_stations, inserted, skipped) == (3, len(data.observations), 0)
    assert "indexes" in steps and "merge" not in steps
    ids = sorted(Station.objects.filter(network="SYN-OWN").values_list("id", flat=True))
    bound = partitions()[f"ingestion_observation_r{run.id}"]
    assert bound == f"FOR VALUES FROM ('{ids[0]}') TO ('{ids[-1] + 1}')"
    pd.testing.assert_frame_equal(stored(run), expected(data), check_dtype=False)
    with connection.cursor() as cursor:  # the rows are in that partition, with ids from the one sequence
        cursor.execute(f"SELECT count(*), count(DISTINCT id), min(id) FROM ingestion_observation_r{run.id}")
        count, distinct, first = cursor.fetchone()
    assert count == distinct == inserted and first > 0
    # the parent's identity holds in the partition: the same observation again is refused
    row = Observation.objects.filter(ingest_run=run).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.objects.create(
            station_id=row.station_id,
            variable=row.variable,
            time=row.time,
            is_validation=row.is_validation,
            value=1,
            units="1",
        )
    # and a foreign key to a station that does not exist is refused at the check
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.objects.create(
            station_id=ids[-1], variable="new", time=row.time, value=1.0, units="1", ingest_run_id=10**12
        )
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_a_repeated_observation_in_the_file_is_stored_once_as_first_given(small_partitions):
    data = synthetic("SYN-REP")
    obs = data.observations
    repeat = obs.iloc[[5, 17]].assign(value=-1.0)
    data = PointData(data.stations, pd.concat([obs, repeat], ignore_index=True))
    run = new_run()
    _, inserted, skipped = load_point_data(data, run)
    assert f"ingestion_observation_r{run.id}" in partitions()
    assert (inserted, skipped) == (len(obs), 2)
    assert not Observation.objects.filter(ingest_run=run, value=-1.0).exists()


def test_stations_already_observed_merge_through_the_parent(small_partitions):
    first = synthetic("SYN-MERGE")
    run1 = new_run("one")
    load_point_data(first, run1)
    # the same stations again, with half the rows already stored and the rest new (later times)
    obs = first.observations
    later = obs.assign(time=obs["time"] + pd.Timedelta(days=30), value=obs["value"] + 0.5)
    both = PointData(first.stations, pd.concat([obs.iloc[: len(obs) // 2], later], ignore_index=True))
    run2 = new_run("two")
    steps: dict[str, float] = {}
    _, inserted, skipped = load_point_data(both, run2, timings=steps)
    assert "merge" in steps and f"ingestion_observation_r{run2.id}" not in partitions()
    assert (inserted, skipped) == (len(later), len(obs) // 2)
    assert Observation.objects.filter(station__network="SYN-MERGE").count() == 2 * len(obs)
    with connection.cursor() as cursor:  # the new rows went to the stations' partition, not the default one
        cursor.execute(f"SELECT count(*) FROM ingestion_observation_r{run1.id} WHERE ingest_run_id = %s", [run2.id])
        assert cursor.fetchone()[0] == len(later)


def test_a_small_load_merges_into_the_default_partition():
    data = synthetic("SYN-SMALL", n_stations=1, n_times=5)
    run = new_run()
    steps: dict[str, float] = {}
    _, inserted, _ = load_point_data(data, run, timings=steps)
    assert "merge" in steps and inserted == len(data.observations)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_observation_default WHERE ingest_run_id = %s", [run.id])
        assert cursor.fetchone()[0] == inserted
    pd.testing.assert_frame_equal(stored(run), expected(data), check_dtype=False)


def test_a_failing_load_leaves_no_partition_and_no_rows(small_partitions):
    data = synthetic("SYN-FAIL")
    data.observations.loc[3, "variable"] = "x" * 60  # longer than the column's 50 characters
    run = new_run()
    tables = set(partitions())
    with pytest.raises(Exception, match="too long"), transaction.atomic():
        load_point_data(data, run)
    assert set(partitions()) == tables
    assert not Observation.objects.filter(ingest_run=run).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"ingestion_observation_r{run.id}"])
        assert cursor.fetchone()[0] is None


def test_real_files_through_partitions_reingest_as_a_no_op_and_a_change_replaces_rows(
    small_partitions, shared_data, tmp_path
):
    source, copy = shared_data / "cardamom_fluxval", tmp_path / "cardamom"
    (copy / "cbf_files").mkdir(parents=True)
    shutil.copyfile(source / "location_fluxnet.csv", copy / "location_fluxnet.csv")
    shutil.copytree(source / "validation_data", copy / "validation_data", copy_function=shutil.copyfile)
    shutil.copyfile(source / "cbf_files" / "flux_site_1.cbf", copy / "cbf_files" / "flux_site_1.cbf")
    first = ingest("cardamom", copy, network="TEST-PART").results[0]
    assert first.run.status == "succeeded" and f"ingestion_observation_r{first.run.id}" in partitions()
    station = Station.objects.get(network="TEST-PART", code="AR-SLu")
    n_rows = Observation.objects.filter(station=station).count()
    assert n_rows == first.run.observations > SMALL
    again = ingest("cardamom", copy, network="TEST-PART").results[0]
    assert again.skipped and Observation.objects.filter(station=station).count() == n_rows
    validation = copy / "validation_data" / "validation_AR-SLu.csv"
    lines = validation.read_text().splitlines()
    fields = lines[1].split(",")
    fields[-1] = "9.5"
    validation.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    second = ingest("cardamom", copy, network="TEST-PART").results[0]
    assert second.run.status == "succeeded" and not second.skipped
    assert Observation.objects.filter(station=station).count() == n_rows
    assert set(Observation.objects.filter(station=station).values_list("ingest_run", flat=True)) == {second.run.id}
    month = Observation.objects.filter(station=station, variable="et", is_validation=True).order_by("time").first()
    assert month.value == 9.5


def _migrate(target: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses pending trigger events
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("ingestion", target)])


def _kind() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'ingestion_observation'")
        return cursor.fetchone()[0]


def _fingerprint() -> tuple:
    """Rows, ids and identities of every observation, summed (the session database holds a million)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT id), sum(id), sum(station_id), sum(value), "
            "sum(extract(epoch FROM time)), count(*) FILTER (WHERE is_validation), "
            "sum(hashtext(variable || units || quality_flag)::numeric), sum(ingest_run_id) FROM ingestion_observation"
        )
        return cursor.fetchone()


def test_the_migration_applies_on_a_database_with_rows_both_ways(small_partitions):
    # in the test's transaction (PostgreSQL DDL is transactional): rolled back with it
    load_point_data(synthetic("SYN-MIG-A"), new_run("a"))  # a partition of its own
    load_point_data(synthetic("SYN-MIG-B", n_stations=1, n_times=5), new_run("b"))  # 10 rows: merged
    before = _fingerprint()
    assert _kind() == "p" and len(partitions()) >= 2
    _migrate("0007_unindexed_ingest_run")
    assert _kind() == "r" and _fingerprint() == before
    station = Station.objects.get(network="SYN-MIG-A", code="SYN-0")
    extra = Observation.objects.create(station=station, variable="extra", time="2020-01-01T00:00Z", value=2, units="1")
    assert extra.id > Observation.objects.exclude(id=extra.id).order_by("-id").values_list("id", flat=True)[0]
    with_extra = _fingerprint()
    assert with_extra[0] == before[0] + 1
    _migrate("0008_partitioned_observations")
    assert _kind() == "p" and set(partitions()) == {"ingestion_observation_default"}
    assert _fingerprint() == with_extra
    newer = Observation.objects.create(station=station, variable="extra", time="2020-01-02T00:00Z", value=3, units="1")
    assert newer.id > extra.id
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.objects.create(station=station, variable="extra", time="2020-01-01T00:00Z", value=4, units="1")
    # and a large load of new stations after it gets its own partition again
    run = new_run("c")
    load_point_data(synthetic("SYN-MIG-C"), run)
    assert f"ingestion_observation_r{run.id}" in partitions()
