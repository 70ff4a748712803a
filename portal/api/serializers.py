from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.catalog import uncertainty
from portal.catalog.exports import FORMATS
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from portal.catalog.queries import download_counts, public_lineage
from portal.subsets import ownership
from portal.subsets.models import SubsetJob
from products.models import ValidationResult


class DatasetFileSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetFile
        fields = ["name", "size", "sha256", "media_type", "description", "url"]

    def get_url(self, obj) -> str:
        path = reverse("catalog:download", args=[obj.version.dataset_id, obj.version.number, obj.name])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class ValidationSerializer(serializers.ModelSerializer):
    class Meta:
        model = ValidationResult
        fields = [
            "variable",
            "units",
            "split",
            "scope",
            "label",
            "n",
            "kge",
            "r",
            "alpha",
            "beta",
            "rmse",
            "bias",
            "ubrmse",
            "nse",
            "not_meaningful",
        ]


class VersionSerializer(serializers.ModelSerializer):
    files = DatasetFileSerializer(many=True, read_only=True)
    validation = serializers.SerializerMethodField()
    lineage = serializers.SerializerMethodField()
    superseded_by = serializers.SerializerMethodField()
    uncertainty = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = ["number", "published_at", "superseded_by", "lineage", "files", "validation", "uncertainty"]

    def get_superseded_by(self, obj) -> int | None:
        """The number of the dataset's latest version when this one is not it (superseded), else None.

        Every published version stays downloadable, subsettable and queryable (``version=`` of the
        grid actions); compare two at ``/api/datasets/{id}/compare/?a=&b=``."""
        latest = max(v.number for v in obj.dataset.versions.all())  # prefetched with the record
        return latest if latest != obj.number else None

    def get_lineage(self, obj) -> dict:
        """The run's lineage; input paths relative to the data root (no server path is published)."""
        return public_lineage(obj.lineage)

    def get_uncertainty(self, obj) -> list[dict]:
        """The uncertainty variables beside the estimates: how each is obtained and its measured
        calibration at held-out observations (:func:`portal.catalog.uncertainty.entries`)."""
        return uncertainty.entries(obj)

    def get_validation(self, obj) -> list[dict]:
        return ValidationSerializer(obj.validation_results.exclude(scope="site"), many=True).data


class DatasetListSerializer(serializers.ModelSerializer):
    bbox = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="api:dataset-detail")

    snippet = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "url",
            "title_cn",
            "title_en",
            "category",
            "acq_start",
            "acq_end",
            "bbox",
            "space_res_en",
            "time_res_en",
            "share_type",
            "doi",
            "cstr",
            "snippet",
        ]

    def get_snippet(self, obj) -> str | None:
        """The abstract around the searched words, marked with ``<mark>`` (HTML); None outside a search."""
        return str(obj.snippet) if hasattr(obj, "snippet") else None

    def get_bbox(self, obj) -> list[float] | None:
        """(min_lon, min_lat, max_lon, max_lat) in EPSG:4326."""
        return obj.extent


class DatasetDetailSerializer(DatasetListSerializer):
    versions = VersionSerializer(many=True, read_only=True)
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    downloads = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()

    class Meta(DatasetListSerializer.Meta):
        fields = [
            *DatasetListSerializer.Meta.fields,
            "abstract_cn",
            "abstract_en",
            "license_url",
            "tags",
            "time_tags",
            "versions",
            "downloads",
            "metadata",
        ]

    def get_downloads(self, obj) -> dict:
        """Downloads logged: ``{"total": n, "bytes": b, "versions": {number: {"count": n, "bytes": b}}}``."""
        return download_counts(obj)

    def get_metadata(self, obj) -> dict[str, str]:
        """The record's metadata exports, ``{format: absolute URL}`` (``/datasets/<id>/metadata/<format>``;
        add ``?version=N`` for a version): DataCite, ISO 19139, DCAT, schema.org, CSL-JSON, RIS, BibTeX."""
        request = self.context.get("request")
        urls = {fmt: reverse("catalog:metadata", args=[obj.id, fmt]) for fmt in FORMATS}
        return {fmt: request.build_absolute_uri(url) if request else url for fmt, url in urls.items()}


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "object"}]})
class PolygonField(serializers.JSONField):
    """A polygon in a request body: WKT or GeoJSON text, or (JSON bodies) a GeoJSON object."""


class GridParametersSerializer(serializers.Serializer):
    """The body of ``POST /api/datasets/{id}/subset/`` and ``/area/``: the GET query parameters as
    form fields or a JSON object (for polygons too long for a URL). Documentation only: the
    parameters are read by the one parser, :mod:`portal.subsets.params`."""

    version = serializers.CharField(required=False, help_text="published version number (default: the latest)")
    file = serializers.CharField(required=False, help_text="NetCDF file of the version (when it has several)")
    variables = serializers.CharField(required=False, help_text="comma-separated variable names (default: all)")
    bbox = serializers.CharField(required=False, help_text="min_lon,min_lat,max_lon,max_lat in degrees")
    polygon = PolygonField(required=False, help_text="WKT or GeoJSON polygon: text, or a GeoJSON object in a JSON body")
    time = serializers.CharField(required=False, help_text="start/end, ISO 8601 (either may be empty)")
    time_stride = serializers.CharField(required=False, help_text="keep every n-th time step")
    space_stride = serializers.CharField(required=False, help_text="keep every n-th cell in lat and lon")
    f = serializers.CharField(required=False, help_text="netcdf, geotiff, csv, zarr, coveragejson")
    estimate = serializers.CharField(required=False, help_text="1: answer only the size estimate (JSON)")


class JobSerializer(serializers.ModelSerializer):
    """A subset job's status; ``download_url`` / ``script_url`` once it is done, ``retry_url`` and
    ``cancel_url`` (POST). An anonymous job's URLs carry its owner key (``?key=``; see
    :mod:`portal.subsets.ownership`) when the request presented it (or just received it)."""

    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    script_url = serializers.SerializerMethodField()
    retry_url = serializers.SerializerMethodField()
    cancel_url = serializers.SerializerMethodField()
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = SubsetJob
        fields = [
            "id",
            "url",
            "page_url",
            "status",
            "progress",
            "error",
            "dataset",
            "version",
            "file_name",
            "kind",
            "params",
            "estimated_bytes",
            "attempt",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "result_name",
            "media_type",
            "size",
            "sha256",
            "download_url",
            "script_url",
            "retry_url",
            "cancel_url",
        ]

    def _absolute(self, name, job):
        request = self.context["request"]
        return request.build_absolute_uri(reverse(name, args=[job.id])) + ownership.key_query(job, request)

    def get_retry_url(self, job) -> str:
        return self._absolute("api:job-retry", job)

    def get_cancel_url(self, job) -> str:
        return self._absolute("api:job-cancel", job)

    def get_url(self, job) -> str:
        return self._absolute("api:job-detail", job)

    def get_page_url(self, job) -> str:
        return self._absolute("subsets:job", job)

    def get_download_url(self, job) -> str | None:
        return self._absolute("api:job-download", job) if job.status == SubsetJob.Status.DONE else None

    def get_script_url(self, job) -> str | None:
        return self._absolute("api:job-script", job) if job.status == SubsetJob.Status.DONE else None


class FacetValueSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField(help_text="in the language asked for (Accept-Language)")
    count = serializers.IntegerField()
    selected = serializers.BooleanField()


class FacetSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="the query parameter that filters on it")
    label = serializers.CharField()
    values = FacetValueSerializer(many=True)


class DatasetSearchSerializer(serializers.Serializer):
    """The catalogue search's answer (documentation of ``GET /api/datasets/``)."""

    count = serializers.IntegerField(help_text="records matching, all pages")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    corrected = serializers.CharField(allow_null=True, help_text="the words searched when misspelt ones were replaced")
    fallback = serializers.BooleanField(help_text="the words matched nothing: records ranked by trigram similarity")
    facets = FacetSerializer(many=True)
    results = DatasetListSerializer(many=True)
