"""Catalog operations: importing TPDC JSON records.

A TPDC record keeps Chinese text at the top level (``title_cn``, ``ds_abstract``, ...) and
English text under ``i18n.en``; HTML fields are sanitized with nh3 (the Ammonia sanitizer).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.gis.geos import Polygon
from django.db import transaction

from . import search
from .html import sanitize_html
from .models import Dataset, DatasetPerson, Person, Tag


class RecordError(ValueError):
    """A record that does not follow the TPDC schema: names the file, record and field."""

    def __init__(self, path: str, field: str, expected: str, *, index: int | None = None, got: Any = None):
        self.path, self.field, self.index = path, field, index
        where = f"{path}" + (f" record {index}" if index is not None else "")
        got_text = "" if got is None else f", got {str(got)[:80]!r}"
        super().__init__(f"{where}: field '{field}': expected {expected}{got_text}")


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0


class _Record:
    """Typed access to one raw record; every accessor raises RecordError naming the field."""

    def __init__(self, raw: Any, path: str, index: int | None):
        if not isinstance(raw, dict):
            raise RecordError(path, "<record>", "a JSON object", index=index, got=type(raw).__name__)
        self.raw, self.path, self.index = raw, path, index
        en = raw.get("i18n", {}) or {}
        if not isinstance(en, dict) or not isinstance(en.get("en", {}) or {}, dict):
            raise RecordError(path, "i18n.en", "an object", index=index, got=en)
        self.en = en.get("en", {}) or {}

    def error(self, field: str, expected: str, got: Any = None) -> RecordError:
        return RecordError(self.path, field, expected, index=self.index, got=got)

    def text(self, field: str, *, en: bool = False) -> str:
        value = (self.en if en else self.raw).get(field)
        if value is None:
            return ""
        if not isinstance(value, str | int | float):
            raise self.error(("i18n.en." if en else "") + field, "a string", value)
        return str(value)

    def number(self, field: str, *, lo: float | None = None, hi: float | None = None) -> float | None:
        value = self.raw.get(field)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(field, "a number", value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(field, f"a number in [{lo}, {hi}]", value)
        return float(value)

    def integer(self, field: str) -> int | None:
        value = self.number(field)
        if value is not None and value != int(value):
            raise self.error(field, "an integer", value)
        return None if value is None else int(value)

    def time(self, field: str) -> dt.datetime | None:
        value = self.raw.get(field)
        if value in (None, ""):
            return None
        try:
            return dt.datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        except ValueError:
            raise self.error(field, "a time 'YYYY-MM-DD HH:MM:SS'", value) from None

    def strings(self, field: str) -> list[str]:
        value = self.raw.get(field)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise self.error(field, "a list of strings", value)
        return [str(v) for v in value]

    def years(self, field: str) -> list[int]:
        value = self.raw.get(field)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.error(field, "a list of years (integers)", value)
        return list(value)

    def people(self, field: str) -> list[dict[str, str]]:
        value = self.raw.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(field, "a list of people", value)
        out = []
        for i, p in enumerate(value):
            if not isinstance(p, dict) or not isinstance(p.get("true_name"), str) or not p["true_name"].strip():
                raise self.error(f"{field}[{i}].true_name", "a non-empty name", p)
            out.append({k: str(p.get(k) or "") for k in ("true_name", "email", "work_for", "country")})
        return out

    def bbox(self) -> Polygon | None:
        west = self.number("ds_acq_lon_west", lo=-180, hi=180)
        east = self.number("ds_acq_lon_east", lo=-180, hi=180)
        south = self.number("ds_acq_lat_south", lo=-90, hi=90)
        north = self.number("ds_acq_lat_north", lo=-90, hi=90)
        corners = (west, south, east, north)
        if all(c is None for c in corners):
            return None
        if any(c is None for c in corners):
            missing = [
                n
                for n, c in zip(
                    ("ds_acq_lon_west", "ds_acq_lat_south", "ds_acq_lon_east", "ds_acq_lat_north"), corners, strict=True
                )
                if c is None
            ]
            raise self.error(missing[0], "a number (the bounding box needs all four edges)")
        if south > north:
            raise self.error("ds_acq_lat_south", f"a latitude <= ds_acq_lat_north ({north})", south)
        if west > east:
            raise self.error(
                "ds_acq_lon_west",
                f"a longitude <= ds_acq_lon_east ({east}); antimeridian boxes are not in the TPDC schema",
                west,
            )
        return Polygon.from_bbox(corners)


def _dataset_fields(r: _Record) -> dict[str, Any]:
    record_id = r.raw.get("id")
    if not isinstance(record_id, str) or not record_id.strip():
        raise r.error("id", "a non-empty string")
    title_cn, title_en = r.text("title_cn"), r.text("title_en") or r.text("title", en=True)
    if not (title_cn or title_en):
        raise r.error("title_cn", "a title in Chinese or English (title_cn / title_en)")
    acq_start, acq_end = r.time("ds_acq_start_time"), r.time("ds_acq_end_time")
    if acq_start and acq_end and acq_start > acq_end:
        raise r.error(
            "ds_acq_end_time", f"a time after ds_acq_start_time ({acq_start:%Y-%m-%d})", r.raw["ds_acq_end_time"]
        )
    alt_low, alt_high = r.number("ds_acq_alt_low"), r.number("ds_acq_alt_high")
    return dict(
        tpdc_version=r.integer("version") or 1,
        created=r.time("created"),
        updated=r.time("updated"),
        publish_time=r.time("publish_time"),
        last_updated=r.time("last_updated"),
        lang=r.text("lang"),
        title_cn=title_cn,
        title_en=title_en,
        abstract_cn=sanitize_html(r.text("ds_abstract")),
        abstract_en=sanitize_html(r.text("ds_abstract", en=True)),
        source_cn=sanitize_html(r.text("ds_source")),
        source_en=sanitize_html(r.text("ds_source", en=True)),
        process_way_cn=sanitize_html(r.text("ds_process_way")),
        process_way_en=sanitize_html(r.text("ds_process_way", en=True)),
        quality_cn=sanitize_html(r.text("ds_quality")),
        quality_en=sanitize_html(r.text("ds_quality", en=True)),
        ref_way_cn=sanitize_html(r.text("ds_ref_way")),
        ref_way_en=sanitize_html(r.text("ds_ref_way", en=True)),
        ref_instruction_cn=sanitize_html(r.text("ds_ref_instruction")),
        ref_instruction_en=sanitize_html(r.text("ds_ref_instruction", en=True)),
        paper_ref_way=sanitize_html(r.text("paper_ref_way")),
        topic=r.text("ds_topic"),
        category=r.text("category"),
        acq_start=acq_start,
        acq_end=acq_end,
        acq_place_cn=r.text("ds_acq_place"),
        acq_place_en=r.text("ds_acq_place", en=True),
        bbox=r.bbox(),
        alt_low=alt_low,
        alt_high=alt_high,
        space_res_cn=r.text("ds_space_res"),
        space_res_en=r.text("ds_space_res", en=True),
        time_res_cn=r.text("ds_time_res"),
        time_res_en=r.text("ds_time_res", en=True),
        format_cn=r.text("ds_format"),
        format_en=r.text("ds_format", en=True),
        coordinate=r.text("ds_coordinate"),
        projection_cn=r.text("ds_projection"),
        projection_en=r.text("ds_projection", en=True),
        from_station=r.text("ds_from_station"),
        share_type=r.text("ds_share_type"),
        license_url=r.text("license_type"),
        protected=bool(r.raw.get("protected") or False),
        protected_to=r.time("protected_to"),
        doi=r.text("doi_value"),
        cstr=r.text("cstr"),
        doi_reg_from=r.text("doi_reg_from"),
        cstr_reg_from=r.text("cstr_reg_from"),
        doi_not_reg_reason=r.text("doi_not_reg_reason"),
        cstr_not_reg_reason=r.text("cstr_not_reg_reason"),
        is_paper_in_submitting=bool(r.raw.get("is_paper_in_submitting") or False),
        total_size=r.integer("ds_total_size"),
        files_count=r.integer("ds_files_count"),
        thumbnail=r.text("ds_thumbnail"),
        thumb_from=r.integer("ds_thumb_from"),
        organization_id=r.text("organization_id"),
        submit_center_id=r.text("submit_center_id"),
        service_contact=r.text("ds_serv_man"),
        service_phone=r.text("ds_serv_phone"),
        service_email=r.text("ds_serv_mail"),
        subject_codes=r.strings("subject_codes"),
        quality_level=r.integer("quality_level"),
        data_level=r.integer("data_level"),
        time_tags=r.years("ds_time_tags"),
        source_portal=r.text("source_portal"),
        source_url=r.text("source_url"),
        raw=r.raw,
    )


TAG_FIELDS = {
    "ds_topic_tags": Tag.Kind.TOPIC,
    "ds_locus_tags": Tag.Kind.PLACE,
    "ds_subject_tags": Tag.Kind.SUBJECT,
    "ds_class_tags": Tag.Kind.CLASS,
}
PEOPLE_FIELDS = {
    "ds_contributors": DatasetPerson.Role.CONTRIBUTOR,
    "ds_meta_authors": DatasetPerson.Role.AUTHOR,
    "ds_managers": DatasetPerson.Role.MANAGER,
}


def _save_record(r: _Record) -> bool:
    """Validate everything first, then write; returns True when the dataset was created."""
    fields = _dataset_fields(r)
    tags = {kind: r.strings(field) for field, kind in TAG_FIELDS.items()}
    people = {role: r.people(field) for field, role in PEOPLE_FIELDS.items()}
    dataset, created = Dataset.objects.update_or_create(id=r.raw["id"].strip(), defaults=fields)
    dataset.tags.set(
        [Tag.objects.get_or_create(kind=kind, name=name)[0] for kind, names in tags.items() for name in names]
    )
    dataset.roles.all().delete()
    for role, entries in people.items():
        for order, entry in enumerate(entries):
            person, _ = Person.objects.get_or_create(**entry)
            DatasetPerson.objects.get_or_create(dataset=dataset, person=person, role=role, defaults={"order": order})
    return created


def import_records(path: Path | str) -> ImportSummary:
    """Import one TPDC JSON file (one record or a list of records), all or nothing.

    Parameters
    ----------
    path : path of a UTF-8 JSON file holding a record object or a list of them.

    Returns
    -------
    ImportSummary with the number of datasets created and updated (re-import updates in place by ``id``).

    Raises
    ------
    RecordError
        When the file is not JSON, or a record misses or mistypes a field; the message names the
        file, the record index and the field, and nothing from the file is written.
    """
    path = Path(path)
    name = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(name, "<file>", "an existing file") from None
    except UnicodeDecodeError as exc:
        raise RecordError(name, "<file>", f"UTF-8 text (byte {exc.start} is not)") from None
    except json.JSONDecodeError as exc:
        raise RecordError(name, "<file>", f"JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    records = data if isinstance(data, list) else [data]
    summary = ImportSummary()
    with transaction.atomic():
        ids = []
        for index, raw in enumerate(records):
            created = _save_record(_Record(raw, name, index if isinstance(data, list) else None))
            ids.append(str(raw["id"]).strip())
            if created:
                summary.created += 1
            else:
                summary.updated += 1
        search.index_datasets(ids)  # the search sees the records as imported, in the same transaction
    return summary
