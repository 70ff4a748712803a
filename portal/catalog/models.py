"""Dataset records in the schema of the National Tibetan Plateau Data Center (TPDC).

Every field of a TPDC JSON record (``../shared/catalog/tpdc_record_6b23bed9.json``) has a
home here; the bilingual fields are stored as ``*_cn`` / ``*_en`` pairs (TPDC keeps the
Chinese text at the top level and the English text under ``i18n.en``).
"""

from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField, DateTimeRangeField
from django.contrib.postgres.indexes import GinIndex, GistIndex
from django.contrib.postgres.search import SearchVectorField
from django.utils.translation import get_language

from .html import sanitize_html


def localized(obj, field: str) -> str:
    """The ``field_cn`` or ``field_en`` value for the active language, falling back to the other."""
    zh = (get_language() or "en").startswith("zh")
    first, second = (f"{field}_cn", f"{field}_en") if zh else (f"{field}_en", f"{field}_cn")
    return getattr(obj, first) or getattr(obj, second) or ""


class Person(models.Model):
    """A contributor, metadata author or data manager (TPDC ``true_name``, ``email``, ...)."""

    true_name = models.CharField(max_length=200)
    email = models.CharField(max_length=200, blank=True)
    work_for = models.CharField(max_length=300, blank=True)
    country = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["true_name", "email", "work_for", "country"], name="person_identity")
        ]

    def __str__(self) -> str:
        return self.true_name


class Tag(models.Model):
    """A keyword of one TPDC tag family: topic, place (locus), subject or class."""

    class Kind(models.TextChoices):
        TOPIC = "topic", "Topic"
        PLACE = "place", "Place"
        SUBJECT = "subject", "Subject"
        CLASS = "class", "Class"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=200)
    name_en = models.CharField(
        max_length=200,
        blank=True,
        help_text="English name (portal.catalog.vocabulary.KEYWORDS; the name itself when empty)",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="tag_kind_name")]
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name


class Dataset(models.Model):
    """One dataset record (TPDC schema). The primary key is the TPDC record ``id``."""

    class ShareType(models.TextChoices):
        OPEN = "open-access", "Open access"
        LOGIN = "login-access", "Login access"
        PROTECTED = "protected", "Protected"

    id = models.CharField(primary_key=True, max_length=100)
    tpdc_version = models.PositiveIntegerField(default=1, help_text="TPDC record 'version'")
    created = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(null=True, blank=True)
    publish_time = models.DateTimeField(null=True, blank=True)
    last_updated = models.DateTimeField(null=True, blank=True)
    lang = models.CharField(max_length=10, blank=True)

    title_cn = models.TextField(blank=True)
    title_en = models.TextField(blank=True)
    abstract_cn = models.TextField(blank=True, help_text="sanitized HTML")
    abstract_en = models.TextField(blank=True, help_text="sanitized HTML")
    source_cn = models.TextField(blank=True, help_text="sanitized HTML")
    source_en = models.TextField(blank=True, help_text="sanitized HTML")
    process_way_cn = models.TextField(blank=True, help_text="processing method, sanitized HTML")
    process_way_en = models.TextField(blank=True, help_text="processing method, sanitized HTML")
    quality_cn = models.TextField(blank=True, help_text="sanitized HTML")
    quality_en = models.TextField(blank=True, help_text="sanitized HTML")
    ref_way_cn = models.TextField(blank=True, help_text="how to cite the data")
    ref_way_en = models.TextField(blank=True)
    ref_instruction_cn = models.TextField(blank=True)
    ref_instruction_en = models.TextField(blank=True)
    paper_ref_way = models.TextField(blank=True)
    topic = models.TextField(blank=True, help_text="TPDC ds_topic")
    category = models.CharField(max_length=100, blank=True, db_index=True)

    acq_start = models.DateTimeField(null=True, blank=True)
    acq_end = models.DateTimeField(null=True, blank=True)
    acq_place_cn = models.CharField(max_length=300, blank=True)
    acq_place_en = models.CharField(max_length=300, blank=True)
    bbox = models.PolygonField(srid=4326, null=True, blank=True, help_text="(min_lon, min_lat, max_lon, max_lat)")
    alt_low = models.FloatField(null=True, blank=True, help_text="m")
    alt_high = models.FloatField(null=True, blank=True, help_text="m")
    space_res_cn = models.CharField(max_length=100, blank=True)
    space_res_en = models.CharField(max_length=100, blank=True)
    time_res_cn = models.CharField(max_length=100, blank=True)
    time_res_en = models.CharField(max_length=100, blank=True)
    format_cn = models.CharField(max_length=200, blank=True)
    format_en = models.CharField(max_length=200, blank=True)
    coordinate = models.CharField(max_length=200, blank=True)
    projection_cn = models.CharField(max_length=200, blank=True)
    projection_en = models.CharField(max_length=200, blank=True)
    from_station = models.CharField(max_length=200, blank=True)

    share_type = models.CharField(max_length=30, blank=True)
    license_url = models.CharField(max_length=300, blank=True)
    licence_acceptance = models.BooleanField(
        default=False, help_text="users accept the licence (license_url) before their first download"
    )
    protected = models.BooleanField(default=False)
    protected_to = models.DateTimeField(null=True, blank=True)
    doi = models.CharField(max_length=200, blank=True)
    cstr = models.CharField(max_length=200, blank=True)
    doi_reg_from = models.CharField(max_length=50, blank=True)
    cstr_reg_from = models.CharField(max_length=50, blank=True)
    doi_not_reg_reason = models.TextField(blank=True)
    cstr_not_reg_reason = models.TextField(blank=True)
    is_paper_in_submitting = models.BooleanField(default=False)

    total_size = models.BigIntegerField(null=True, blank=True, help_text="bytes")
    files_count = models.PositiveIntegerField(null=True, blank=True)
    thumbnail = models.CharField(max_length=300, blank=True)
    thumb_from = models.IntegerField(null=True, blank=True)

    organization_id = models.CharField(max_length=100, blank=True)
    submit_center_id = models.CharField(max_length=100, blank=True)
    service_contact = models.CharField(max_length=200, blank=True, help_text="TPDC ds_serv_man")
    service_phone = models.CharField(max_length=100, blank=True)
    service_email = models.CharField(max_length=200, blank=True)
    subject_codes = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    quality_level = models.IntegerField(null=True, blank=True)
    data_level = models.IntegerField(null=True, blank=True)
    time_tags = ArrayField(models.IntegerField(), default=list, blank=True, help_text="years")
    tags = models.ManyToManyField(Tag, blank=True, related_name="datasets")
    people = models.ManyToManyField(Person, through="DatasetPerson", related_name="datasets")

    source_portal = models.CharField(max_length=100, blank=True)
    source_url = models.URLField(max_length=500, blank=True)
    raw = models.JSONField(default=dict, help_text="the record as imported")

    class Meta:
        ordering = ["title_en"]

    def __str__(self) -> str:
        return self.title_en or self.title_cn or self.id

    HTML_FIELDS = (
        "abstract_cn",
        "abstract_en",
        "source_cn",
        "source_en",
        "process_way_cn",
        "process_way_en",
        "quality_cn",
        "quality_en",
    )
    """Rich text fields, sanitized on every save (the importer and the admin alike)."""

    def save(self, *args, **kwargs):
        for name in self.HTML_FIELDS:
            setattr(self, name, sanitize_html(getattr(self, name)))
        super().save(*args, **kwargs)

    # Bilingual accessors for the active language.
    @property
    def title(self) -> str:
        return localized(self, "title")

    @property
    def abstract(self) -> str:
        return localized(self, "abstract")

    @property
    def source(self) -> str:
        return localized(self, "source")

    @property
    def process_way(self) -> str:
        return localized(self, "process_way")

    @property
    def quality(self) -> str:
        return localized(self, "quality")

    @property
    def acq_place(self) -> str:
        return localized(self, "acq_place")

    @property
    def space_res(self) -> str:
        return localized(self, "space_res")

    @property
    def time_res(self) -> str:
        return localized(self, "time_res")

    @property
    def format(self) -> str:
        return localized(self, "format")

    @property
    def extent(self) -> tuple[float, float, float, float] | None:
        """Bounding box as ``(min_lon, min_lat, max_lon, max_lat)`` in EPSG:4326."""
        return tuple(self.bbox.extent) if self.bbox else None

    def latest_version(self) -> DatasetVersion | None:
        return self.versions.order_by("-number").first()


class DatasetPerson(models.Model):
    """A person's role on a dataset, in the order of the record."""

    class Role(models.TextChoices):
        CONTRIBUTOR = "contributor", "Contributor"
        AUTHOR = "author", "Metadata author"
        MANAGER = "manager", "Manager"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="roles")
    person = models.ForeignKey(Person, on_delete=models.PROTECT)
    role = models.CharField(max_length=20, choices=Role.choices)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["role", "order"]
        constraints = [models.UniqueConstraint(fields=["dataset", "person", "role"], name="dataset_person_role")]


class DatasetVersion(models.Model):
    """A published, immutable version of a dataset, with its lineage.

    Created only by :func:`products.services.publish`, in the same transaction that moves
    the version's files into place.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    published_at = models.DateTimeField(auto_now_add=True)
    directory = models.CharField(max_length=500, help_text="relative to DATA_ROOT")
    lineage = models.JSONField(
        default=dict, help_text="inputs with checksums, parameters, code version, split, timings"
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number")]

    def __str__(self) -> str:
        return f"{self.dataset_id} v{self.number}"


class DatasetFile(models.Model):
    """A file of a published version, under ``DATA_ROOT``, with size and checksum."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=300)
    path = models.CharField(max_length=500, help_text="relative to DATA_ROOT")
    size = models.BigIntegerField(help_text="bytes")
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=100, default="application/x-netcdf")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="version_file_name")]

    def __str__(self) -> str:
        return self.name


class NetworkAccess(models.Model):
    """The access rule of a station network's observations (``/api/observations/``).

    Networks without a row are open. A network whose source gives no licence, or forbids
    redistribution, is login-access: only verified users download it (portal.catalog.access).
    """

    network = models.CharField(max_length=100, unique=True)
    share_type = models.CharField(max_length=30, choices=Dataset.ShareType.choices, default=Dataset.ShareType.LOGIN)
    licence = models.CharField(max_length=300, blank=True, help_text="the source's licence, if any")
    note = models.TextField(blank=True, help_text="why the rule")

    class Meta:
        ordering = ["network"]
        verbose_name_plural = "network access rules"

    def __str__(self) -> str:
        return f"{self.network}: {self.share_type}"


class SearchDocument(models.Model):
    """A dataset as the search sees it: one narrow row per record, kept by
    :func:`portal.catalog.search.index_datasets` (the importer, the admin and publishing call it).

    ``document`` holds the weighted lexemes of both languages (A: titles, B: keywords, variables
    and category, C: abstracts, D: source and processing method; English stemmed, Chinese
    segmented by jieba); ``words`` the titles and keywords for the typo fallback (pg_trgm);
    ``facets`` the record's facet values as ``"facet:value"`` keys.
    """

    dataset = models.OneToOneField(Dataset, primary_key=True, on_delete=models.CASCADE, related_name="search")
    document = SearchVectorField()
    words = models.TextField(blank=True)
    title_en = models.TextField(blank=True, help_text="sort key (English pages)")
    title_cn = models.TextField(blank=True, help_text="sort key (Chinese pages)")
    date = models.DateTimeField(null=True, help_text="sort key: the record's last update, else its publication")
    bbox = models.PolygonField(srid=4326, null=True)
    period = DateTimeRangeField(null=True, help_text="acquisition period [start, end]")
    facets = ArrayField(models.CharField(max_length=300), default=list)

    class Meta:
        indexes = [
            GinIndex(fields=["document"], name="search_document_gin"),
            GinIndex(fields=["words"], name="search_words_trgm", opclasses=["gin_trgm_ops"]),
            GinIndex(fields=["facets"], name="search_facets_gin"),
            models.Index(fields=["title_en"], name="search_title_en"),
            models.Index(fields=["title_cn"], name="search_title_cn"),
            models.Index(fields=["date"], name="search_date"),
            GistIndex(fields=["period"], name="search_period_gist"),
        ]


class SearchWord(models.Model):
    """A word of the indexed titles, keywords and abstracts (lower case, Latin script): the
    lexicon a misspelt query word is corrected against (pg_trgm similarity)."""

    word = models.CharField(primary_key=True, max_length=100)

    class Meta:
        indexes = [GinIndex(fields=["word"], name="search_word_trgm", opclasses=["gin_trgm_ops"])]
