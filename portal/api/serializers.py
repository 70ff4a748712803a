from django.urls import reverse
from rest_framework import serializers

from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
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
        fields = ["variable", "units", "split", "scope", "label", "n", "kge", "r", "alpha", "beta", "rmse", "bias",
                  "ubrmse", "nse"]


class VersionSerializer(serializers.ModelSerializer):
    files = DatasetFileSerializer(many=True, read_only=True)
    validation = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = ["number", "published_at", "lineage", "files", "validation"]

    def get_validation(self, obj) -> list[dict]:
        return ValidationSerializer(obj.validation_results.exclude(scope="site"), many=True).data


class DatasetListSerializer(serializers.ModelSerializer):
    bbox = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="api:dataset-detail")

    class Meta:
        model = Dataset
        fields = ["id", "url", "title_cn", "title_en", "category", "acq_start", "acq_end", "bbox", "space_res_en",
                  "time_res_en", "share_type", "doi", "cstr"]

    def get_bbox(self, obj) -> list[float] | None:
        """(min_lon, min_lat, max_lon, max_lat) in EPSG:4326."""
        return obj.extent


class DatasetDetailSerializer(DatasetListSerializer):
    versions = VersionSerializer(many=True, read_only=True)
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta(DatasetListSerializer.Meta):
        fields = [*DatasetListSerializer.Meta.fields, "abstract_cn", "abstract_en", "license_url", "tags",
                  "time_tags", "versions"]


class JobSerializer(serializers.ModelSerializer):
    """A subset job's status; ``download_url`` / ``script_url`` once it is done."""

    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    script_url = serializers.SerializerMethodField()
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = SubsetJob
        fields = ["id", "url", "page_url", "status", "progress", "error", "dataset", "version", "file_name", "kind",
                  "params", "estimated_bytes", "attempt", "created_at", "started_at", "finished_at", "expires_at",
                  "result_name", "media_type", "size", "sha256", "download_url", "script_url"]

    def _absolute(self, name, job):
        return self.context["request"].build_absolute_uri(reverse(name, args=[job.id]))

    def get_url(self, job) -> str:
        return self._absolute("api:job-detail", job)

    def get_page_url(self, job) -> str:
        return self._absolute("subsets:job", job)

    def get_download_url(self, job) -> str | None:
        return self._absolute("api:job-download", job) if job.status == SubsetJob.Status.DONE else None

    def get_script_url(self, job) -> str | None:
        return self._absolute("api:job-script", job) if job.status == SubsetJob.Status.DONE else None
