from rest_framework import viewsets

from portal.catalog.models import Dataset
from portal.catalog.queries import search_datasets

from .serializers import DatasetDetailSerializer, DatasetListSerializer


class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    """Dataset records (TPDC schema). ``?q=`` searches titles and abstracts in Chinese and English."""

    queryset = Dataset.objects.all()
    lookup_value_regex = "[^/.\x00]+"  # DRF default minus NUL (PostgreSQL text cannot hold it): 404, not 500

    def get_queryset(self):
        if self.action == "list":
            return search_datasets(self.request.query_params.get("q", "").strip()[:200],
                                   category=self.request.query_params.get("category", "").strip())
        return Dataset.objects.prefetch_related("tags", "versions__files", "versions__validation_results")

    def get_serializer_class(self):
        return DatasetListSerializer if self.action == "list" else DatasetDetailSerializer
