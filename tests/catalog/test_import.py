"""Importing TPDC JSON records (the five real records in ../shared/catalog)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from portal.catalog.html import sanitize_html
from portal.catalog.models import Dataset, DatasetPerson
from portal.catalog.services import RecordError, import_records

pytestmark = pytest.mark.django_db


@pytest.fixture
def tpdc_record(catalog_dir) -> dict:
    return json.loads((catalog_dir / "tpdc_record_6b23bed9.json").read_text(encoding="utf-8"))


def _time(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) if text else None


def test_all_five_records_are_imported(catalog_dir):
    ids = [json.loads((catalog_dir / "tpdc_record_6b23bed9.json").read_text())["id"]]
    ids += [r["id"] for r in json.loads((catalog_dir / "records_from_pages.json").read_text())]
    assert len(ids) == 5
    assert set(Dataset.objects.filter(id__in=ids).values_list("id", flat=True)) == set(ids)


def test_every_field_of_the_tpdc_record_has_a_home(tpdc_record):
    d = Dataset.objects.get(id=tpdc_record["id"])
    en = tpdc_record["i18n"]["en"]
    assert d.tpdc_version == tpdc_record["version"]
    assert (d.title_cn, d.title_en) == (tpdc_record["title_cn"], tpdc_record["title_en"])
    assert d.abstract_cn == sanitize_html(tpdc_record["ds_abstract"]) and "厄尔尼诺" in d.abstract_cn
    assert d.abstract_en == sanitize_html(en["ds_abstract"])
    assert d.source_cn == sanitize_html(tpdc_record["ds_source"]) and d.source_en == sanitize_html(en["ds_source"])
    assert d.process_way_cn == sanitize_html(tpdc_record["ds_process_way"])
    assert d.process_way_en == sanitize_html(en["ds_process_way"])
    assert d.quality_cn == sanitize_html(tpdc_record["ds_quality"]) and d.quality_en == sanitize_html(en["ds_quality"])
    assert d.acq_start == _time(tpdc_record["ds_acq_start_time"]) and d.acq_end == _time(tpdc_record["ds_acq_end_time"])
    assert (d.acq_place_cn, d.acq_place_en) == (tpdc_record["ds_acq_place"], en["ds_acq_place"])
    assert d.bbox.srid == 4326
    assert d.extent == (
        tpdc_record["ds_acq_lon_west"],
        tpdc_record["ds_acq_lat_south"],
        tpdc_record["ds_acq_lon_east"],
        tpdc_record["ds_acq_lat_north"],
    )
    assert (d.alt_low, d.alt_high) == (tpdc_record["ds_acq_alt_low"], tpdc_record["ds_acq_alt_high"])
    assert (d.space_res_cn, d.time_res_cn) == (tpdc_record["ds_space_res"], tpdc_record["ds_time_res"])
    assert (d.format_cn, d.format_en) == (tpdc_record["ds_format"], en["ds_format"])
    assert d.license_url == tpdc_record["license_type"] and d.share_type == tpdc_record["ds_share_type"]
    assert d.cstr == tpdc_record["cstr"] and d.doi == tpdc_record["doi_value"]
    assert (d.doi_reg_from, d.cstr_reg_from) == (tpdc_record["doi_reg_from"], tpdc_record["cstr_reg_from"])
    assert d.total_size == tpdc_record["ds_total_size"] and d.files_count == tpdc_record["ds_files_count"]
    assert d.coordinate == tpdc_record["ds_coordinate"] and d.thumbnail == tpdc_record["ds_thumbnail"]
    assert d.thumb_from == tpdc_record["ds_thumb_from"]
    assert (d.service_contact, d.service_phone, d.service_email) == (
        tpdc_record["ds_serv_man"],
        tpdc_record["ds_serv_phone"],
        tpdc_record["ds_serv_mail"],
    )
    assert d.organization_id == tpdc_record["organization_id"] and d.submit_center_id == tpdc_record["submit_center_id"]
    assert d.subject_codes == tpdc_record["subject_codes"]
    assert (d.quality_level, d.data_level) == (tpdc_record["quality_level"], tpdc_record["data_level"])
    assert d.publish_time == _time(tpdc_record["publish_time"]) and d.last_updated == _time(tpdc_record["last_updated"])
    assert d.created == _time(tpdc_record["created"]) and d.updated == _time(tpdc_record["updated"])
    assert d.protected is tpdc_record["protected"] and d.lang == tpdc_record["lang"]
    assert d.category == tpdc_record["category"]
    assert d.time_tags == tpdc_record["ds_time_tags"]
    tags = {(t.kind, t.name) for t in d.tags.all()}
    assert tags == (
        {("topic", n) for n in tpdc_record["ds_topic_tags"]}
        | {("place", n) for n in tpdc_record["ds_locus_tags"]}
        | {("subject", n) for n in tpdc_record["ds_subject_tags"]}
    )
    for field, role in [("ds_contributors", "contributor"), ("ds_meta_authors", "author"), ("ds_managers", "manager")]:
        people = [
            {
                "true_name": r.person.true_name,
                "email": r.person.email,
                "work_for": r.person.work_for,
                "country": r.person.country,
            }
            for r in d.roles.filter(role=role).order_by("order")
        ]
        assert people == tpdc_record[field]
    assert d.raw == tpdc_record


def test_reimport_updates_in_place_by_id(tmp_path, tpdc_record):
    before = Dataset.objects.count()
    changed = dict(tpdc_record, title_en="A corrected title", ds_topic_tags=["陆地储水"])
    path = tmp_path / "record.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    summary = import_records(path)
    assert (summary.created, summary.updated) == (0, 1)
    assert Dataset.objects.count() == before
    d = Dataset.objects.get(id=tpdc_record["id"])
    assert d.title_en == "A corrected title"
    assert list(d.tags.filter(kind="topic").values_list("name", flat=True)) == ["陆地储水"]
    assert d.roles.filter(role=DatasetPerson.Role.CONTRIBUTOR).count() == 1  # not duplicated


def test_html_is_sanitized_not_stripped_by_regex():
    cleaned = sanitize_html('<p onclick="x()">Hi <script>alert(1)</script><a href="javascript:x">l</a> <b>b</b></p>')
    assert "<script" not in cleaned and "onclick" not in cleaned and "javascript:" not in cleaned
    assert "<b>b</b>" in cleaned and cleaned.startswith("<p>")


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("ds_acq_lat_north", "north", "a number"),
        ("ds_acq_lon_east", 200.0, "a number in [-180, 180]"),
        ("ds_acq_start_time", "2024/01/01", "a time 'YYYY-MM-DD HH:MM:SS'"),
        ("ds_contributors", [{"email": "x@y"}], "a non-empty name"),
        ("ds_time_tags", ["1940"], "a list of years"),
        ("id", None, "a non-empty string"),
    ],
)
def test_it_rejects_a_malformed_record_naming_file_and_field(tmp_path, tpdc_record, field, value, expected):
    good = dict(tpdc_record, id="good-new-record")
    bad = {**tpdc_record, "id": "bad-new-record", field: value}
    path = tmp_path / "two_records.json"
    path.write_text(json.dumps([good, bad]), encoding="utf-8")
    with pytest.raises(RecordError) as info:
        import_records(path)
    message = str(info.value)
    assert str(path) in message and "record 1" in message and expected in message
    assert field.split(".")[0] in message
    assert not Dataset.objects.filter(id__in=["good-new-record", "bad-new-record"]).exists()  # nothing written


def test_it_rejects_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"id": "x", "title_en": ', encoding="utf-8")
    with pytest.raises(RecordError, match=r"broken\.json.*expected JSON \(line 1"):
        import_records(path)


def test_the_command_reports_the_bad_file_and_imports_the_good_ones(tmp_path, tpdc_record, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dict(tpdc_record, id="from-command")), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(tpdc_record, id="bad-from-command", ds_acq_lat_south=95)), encoding="utf-8")
    with pytest.raises(CommandError, match="1 of 2 files"):
        call_command("import_records", str(good), str(bad))
    assert "bad.json: field 'ds_acq_lat_south'" in capsys.readouterr().err
    assert Dataset.objects.filter(id="from-command").exists()
    assert not Dataset.objects.filter(id="bad-from-command").exists()


@pytest.mark.django_db
def test_rich_text_saved_by_any_path_is_sanitized_like_imported_text(admin_client):
    """The admin's change form saves through Dataset.save(), as any other path does."""
    dataset = Dataset.objects.exclude(abstract_en="").first()
    dataset.abstract_en = '<p onclick="steal()">Kept <b>bold</b><script>alert(1)</script></p>'
    dataset.source_en = '<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>'
    dataset.save()
    dataset.refresh_from_db()
    assert dataset.abstract_en == "<p>Kept <b>bold</b></p>"
    assert "javascript" not in dataset.source_en and "onerror" not in dataset.source_en
    body = admin_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in body and "steal()" not in body
