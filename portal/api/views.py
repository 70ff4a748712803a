from django.http import FileResponse
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.catalog.models import Dataset
from portal.catalog.queries import search_datasets
from portal.subsets import core as subset_core
from portal.subsets import services as subsets

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

    @action(detail=True, methods=["get"])
    def subset(self, request, pk=None):
        """A subset of a published grid, written in the requested format and streamed.

        Query parameters: ``version`` (default latest), ``file`` (NetCDF name; needed when the
        version has several), ``variables`` (comma-separated), ``bbox`` (min_lon,min_lat,max_lon,
        max_lat; min_lon > max_lon crosses the antimeridian) or ``polygon`` (WKT or GeoJSON),
        ``time`` (start/end, ISO), ``time_stride``, ``space_stride``, ``f`` (format, as in OGC APIs: netcdf, geotiff,
        csv, zarr, coveragejson). A malformed, empty or out-of-extent request is a 400 naming the
        field; one above the direct-download limit is a 413 saying what to do instead.
        """
        dataset = self.get_object()
        if dataset.share_type == Dataset.ShareType.LOGIN and not request.user.is_authenticated:
            return Response({"detail": "this dataset is login-access: log in to download"},
                            status=status.HTTP_403_FORBIDDEN)
        try:
            version = _version(dataset, request.query_params.get("version"))
            f = subsets.gridded_file(version, request.query_params.get("file"))
            result = subsets.subset_file(f, _subset_request(request.query_params))
        except subsets.SubsetTooLarge as exc:
            return Response({"field": exc.field, "detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except subset_core.SubsetError as exc:
            return Response({"field": exc.field, "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        handle = result.path.open("rb")
        result.path.unlink()  # the open handle keeps the bytes until the response is sent
        return FileResponse(handle, as_attachment=True, filename=result.filename, content_type=result.media_type)


def _version(dataset, number):
    versions = dataset.versions.order_by("-number")
    if number in (None, ""):
        version = versions.first()
    else:
        try:
            version = versions.filter(number=int(number)).first()
        except ValueError:
            raise subset_core.SubsetError("version", f"expected a version number, got {number!r}") from None
    if version is None:
        raise subset_core.SubsetError("version", f"{dataset.id} has no published version {number or ''}".strip())
    return version


def _subset_request(params) -> subset_core.SubsetRequest:
    """A SubsetRequest from query parameters (raises SubsetError naming the bad field)."""
    def numbers(name, text, n):
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise subset_core.SubsetError(name, f"expected {n} comma-separated numbers, got {text!r}") from None
        if len(values) != n:
            raise subset_core.SubsetError(name, f"expected {n} comma-separated numbers, got {len(values)}")
        return values

    def integer(name):
        text = params.get(name, "1")
        try:
            return int(text)
        except ValueError:
            raise subset_core.SubsetError(name, f"expected an integer >= 1, got {text!r}") from None

    time = params.get("time")
    if time is not None and "/" not in time:
        raise subset_core.SubsetError("time", f"expected start/end (ISO dates, either may be empty), got {time!r}")
    return subset_core.SubsetRequest(
        variables=[v for v in params.get("variables", "").split(",") if v],
        bbox=tuple(numbers("bbox", params["bbox"], 4)) if params.get("bbox") else None,
        polygon=params.get("polygon") or None,
        time=tuple(t or None for t in time.split("/", 1)) if time else None,
        time_stride=integer("time_stride"), space_stride=integer("space_stride"),
        format=params.get("f", "netcdf"))
