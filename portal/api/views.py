import time

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.catalog.access import AccessDenied
from portal.catalog.models import Dataset
from portal.catalog.queries import search_datasets
from portal.files import stream_temporary
from portal.subsets import core as subset_core
from portal.subsets import services as subsets
from portal.subsets import stations as station_subsets
from portal.subsets.models import SubsetJob

from .serializers import DatasetDetailSerializer, DatasetListSerializer, JobSerializer


def _params(*names):
    """OpenAPI descriptions of the grid actions' query parameters."""
    text = {
        "version": "published version number (default: the latest)",
        "file": "NetCDF file of the version (needed when it has several)",
        "variables": "comma-separated variable names (default: all)",
        "bbox": "min_lon,min_lat,max_lon,max_lat in degrees; min_lon > max_lon crosses the antimeridian",
        "polygon": "WKT or GeoJSON polygon; cells whose centres fall inside",
        "lon": "degrees east of the point", "lat": "degrees north of the point",
        "time": "start/end, ISO 8601 (either may be empty)",
        "time_stride": "keep every n-th time step", "space_stride": "keep every n-th cell in lat and lon",
        "f": "format: netcdf, geotiff, csv, zarr, coveragejson (series: csv, netcdf, zarr, coveragejson)",
        "estimate": "1: answer only the size estimate and what would happen (JSON)",
    }
    return [OpenApiParameter(n, OpenApiTypes.STR, OpenApiParameter.QUERY, description=text[n],
                             required=n in ("lon", "lat")) for n in names]


_GRID_RESPONSES = {
    (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="the file (direct answer)"),
    (202, "application/json"): OpenApiResponse(JobSerializer, description="queued as a job: its status"),
    (400, "application/json"): OpenApiResponse(description="{field, detail}: the bad field"),
    (403, "application/json"): OpenApiResponse(description="login-access dataset"),
    (413, "application/json"): OpenApiResponse(description="above the job limit: what to do instead"),
}
_COMMON = ("version", "file", "variables", "time", "f", "estimate")


class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    """Dataset records (TPDC schema). ``?q=`` searches titles and abstracts in Chinese and English."""

    queryset = Dataset.objects.all()
    lookup_value_regex = "[^/.\x00]+"  # DRF default minus NUL (PostgreSQL text cannot hold it): 404, not 500

    def get_queryset(self):
        if self.action == "list":
            return search_datasets(self.request.query_params.get("q", "").strip()[:200],
                                   category=self.request.query_params.get("category", "").strip())
        if self.action == "retrieve":
            return Dataset.objects.prefetch_related("tags", "versions__files", "versions__validation_results")
        return Dataset.objects.all()  # the grid actions look up one version and its files themselves

    def get_serializer_class(self):
        return DatasetListSerializer if self.action == "list" else DatasetDetailSerializer

    @extend_schema(parameters=_params(*_COMMON, "bbox", "polygon", "time_stride", "space_stride"),
                   responses=_GRID_RESPONSES)
    @action(detail=True, methods=["get"])
    def subset(self, request, pk=None):
        """A box or polygon of a published grid, in ``f`` = netcdf, geotiff, csv, zarr or coveragejson.

        Query parameters: ``version`` (default latest), ``file`` (NetCDF name; needed when the
        version has several), ``variables`` (comma-separated), ``bbox`` (min_lon,min_lat,max_lon,
        max_lat; min_lon > max_lon crosses the antimeridian) or ``polygon`` (WKT or GeoJSON; cells
        whose centres fall inside), ``time`` (start/end, ISO), ``time_stride``, ``space_stride``,
        ``f`` (format, as in OGC APIs), ``estimate=1`` (only the size estimate and what would
        happen, as JSON). Small requests are streamed (200); larger ones become a job (202, its
        status in the body and at ``Location``); above the job limit 413 says what to do instead;
        a malformed, empty or out-of-extent request is a 400 naming the field.
        """
        return _grid_answer(request, self.get_object(), "subset")

    @extend_schema(parameters=_params(*_COMMON, "lon", "lat"), responses=_GRID_RESPONSES)
    @action(detail=True, methods=["get"])
    def point(self, request, pk=None):
        """Time series of the cell nearest to ``lon``, ``lat`` (its centre in the output), in csv,
        netcdf, zarr or coveragejson. Other parameters as for ``subset``."""
        return _grid_answer(request, self.get_object(), "point")

    @extend_schema(parameters=_params(*_COMMON, "bbox", "polygon", "time_stride", "space_stride"),
                   responses=_GRID_RESPONSES)
    @action(detail=True, methods=["get"])
    def area(self, request, pk=None):
        """Area-mean series (cos-latitude weights, cells whose centres fall inside) over a ``bbox`` or
        ``polygon``, in csv, netcdf, zarr or coveragejson. Other parameters as for ``subset``."""
        return _grid_answer(request, self.get_object(), "area")


def _problem(exc: subset_core.SubsetError, code=status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"field": exc.field, "detail": str(exc)}, status=code)


def _answer(request, dataset: Dataset, kind: str, params, *, force_job: bool = False):
    """Translate one call of the subset service into a response (the grid actions and job creation)."""
    try:
        answer = subsets.handle(dataset, kind, params, user=request.user, client=request.META.get("REMOTE_ADDR"),
                                force_job=force_job)
    except subsets.QueueUnavailable as exc:
        return _queue_unavailable(request, exc)
    except AccessDenied as exc:
        return _denied(exc)
    except subsets.SubsetTooLarge as exc:
        return _problem(exc, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    except subset_core.SubsetError as exc:
        return _problem(exc)
    if answer.mode == "estimate":
        return Response(answer.plan.as_dict())
    if answer.mode == "job":
        body = JobSerializer(answer.job, context={"request": request}).data
        code = status.HTTP_202_ACCEPTED if not force_job else (status.HTTP_201_CREATED if answer.created
                                                                 else status.HTTP_200_OK)
        return Response(body, status=code, headers={"Location": body["url"]})
    return stream_temporary(answer.result.path, filename=answer.result.filename,
                            content_type=answer.result.media_type)


def _denied(exc: AccessDenied) -> Response:
    """401 (sign in or send a token) or 403 (what the user lacks: verification, application, licence, scope)."""
    headers = {"WWW-Authenticate": 'Bearer realm="data portal"'} if exc.status == 401 else None
    return Response({"detail": str(exc), "need": exc.decision.need}, status=exc.status, headers=headers)


def _queue_unavailable(request, exc) -> Response:
    """503 with Retry-After: the broker is down; the job is failed (not stuck queued) and can be retried."""
    body = {"detail": str(exc), "job": JobSerializer(exc.job, context={"request": request}).data}
    return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "60"})


def _grid_answer(request, dataset: Dataset, kind: str):
    return _answer(request, dataset, kind, {k: request.query_params.get(k) for k in request.query_params})


class JobViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Asynchronous subset jobs: status (queued, running with progress, done with a link and sha256,
    failed with the reason, expired), the result file, a curl/wget script, and retry of a failed job.

    ``POST /api/jobs/`` with ``{"dataset": id, "kind": "subset"|"point"|"area", "params": {...}}``
    (params as the query parameters of the dataset actions) queues a job whatever its size (up
    to the job limit); the dataset actions queue one by themselves for large requests.
    """

    queryset = SubsetJob.objects.select_related("version", "dataset")
    serializer_class = JobSerializer
    permission_classes = [permissions.AllowAny]  # job ids are unguessable UUIDs; login-access is checked on create

    def retrieve(self, request, *args, **kwargs):
        subsets.reap_stale_jobs()
        return super().retrieve(request, *args, **kwargs)

    def create(self, request, *args, **kwargs):
        data = request.data if isinstance(request.data, dict) else {}
        dataset = Dataset.objects.filter(id=str(data.get("dataset", ""))[:100].replace("\x00", "")).first()
        if dataset is None:
            return Response({"field": "dataset", "detail": f"no dataset {str(data.get('dataset'))[:100]!r}"},
                            status=status.HTTP_400_BAD_REQUEST)
        params = data.get("params") or {}
        if not isinstance(params, dict):
            return Response({"field": "params", "detail": "expected an object of request parameters"},
                            status=status.HTTP_400_BAD_REQUEST)
        return _answer(request, dataset, str(data.get("kind", "subset")),
                       {str(k): str(v) for k, v in params.items()}, force_job=True)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The finished job's file (404 before it is done, 410 once expired)."""
        job = self.get_object()
        if job.status == SubsetJob.Status.EXPIRED:
            return Response({"detail": f"the file expired at {job.expires_at:%Y-%m-%d %H:%M} UTC: submit the request "
                                       "again"}, status=status.HTTP_410_GONE)
        if job.status != SubsetJob.Status.DONE:
            return Response({"detail": f"the job is {job.status}"}, status=status.HTTP_404_NOT_FOUND)
        from django.utils import timezone

        from portal.files import OCTET_STREAM, file_response, media_type_for

        # Ranges and validators as for published files; private, cached until the file expires.
        left = int((job.expires_at - timezone.now()).total_seconds()) if job.expires_at else 0
        response = file_response(request, subsets.job_file(job), filename=job.result_name,
                                 content_type=media_type_for(job.result_name, default=job.media_type or OCTET_STREAM),
                                 immutable=False, private=True, max_age=max(left, 0), sha256=job.sha256 or None)
        if request.method == "GET" and response.status_code in (200, 206):  # not HEAD, 304 or 416
            f = subsets.gridded_file(job.version, job.file_name)
            subsets.log_download(user=request.user, f=f, query=None, size=int(response["Content-Length"]),
                                 seconds=0.0, job=job, client=request.META.get("REMOTE_ADDR"))
        return response

    @extend_schema(parameters=[OpenApiParameter("tool", OpenApiTypes.STR, enum=["curl", "wget"])],
                   responses={(200, "text/x-shellscript"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def script(self, request, pk=None):
        """A shell script fetching the file with ``tool`` = curl (default) or wget and checking its sha256."""
        job = self.get_object()
        if job.status != SubsetJob.Status.DONE:
            return Response({"detail": f"the job is {job.status}"}, status=status.HTTP_404_NOT_FOUND)
        url = request.build_absolute_uri(reverse("api:job-download", args=[job.id]))
        try:
            text = subsets.download_script(job, url, request.query_params.get("tool", "curl"))
        except ValueError as exc:
            return Response({"field": "tool", "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return HttpResponse(text, content_type="text/x-shellscript",
                            headers={"Content-Disposition": f'attachment; filename="job_{job.id}.sh"'})

    @extend_schema(request=None, responses={202: JobSerializer, 409: OpenApiResponse(description="not failed")})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a failed job again."""
        try:
            job = subsets.retry_job(self.get_object())
        except subsets.QueueUnavailable as exc:
            return _queue_unavailable(request, exc)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)


class ObservationSubsetView(APIView):
    """Station, tower and basin observations by ``bbox``, ``time``, ``network``, ``station``, ``variables``.

    ``f`` = csv (long form, default), json (stations with their series) or netcdf (CF DSG
    timeSeries). A request must name a bbox, a network or stations; empty answers are a 400
    naming the field, more than ``STATION_SUBSET_MAX_ROWS`` rows a 413 saying what to narrow.
    """

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[*_params("bbox", "time"),
                    OpenApiParameter("network", OpenApiTypes.STR, description="comma-separated networks"),
                    OpenApiParameter("station", OpenApiTypes.STR, description="comma-separated station codes"),
                    OpenApiParameter("variables", OpenApiTypes.STR, description="comma-separated variables"),
                    OpenApiParameter("f", OpenApiTypes.STR, enum=list(station_subsets.FORMATS))],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, 400: OpenApiResponse(description="{field, detail}"),
                   413: OpenApiResponse(description="too many rows: what to narrow")})
    def get(self, request):
        start = time.monotonic()
        try:
            query = station_subsets.parse_station_query({k: request.query_params.get(k) for k in request.query_params})
            path, filename, media_type = station_subsets.write_temporary(query)
        except station_subsets.TooManyRows as exc:
            return _problem(exc, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except subset_core.SubsetError as exc:
            return _problem(exc)
        size = path.stat().st_size
        subsets.log_download(user=request.user, f=None, query=None, kind="stations", format=query.format,
                             params=dict(request.query_params.items()), size=size, seconds=time.monotonic() - start,
                             client=request.META.get("REMOTE_ADDR"))
        return stream_temporary(path, filename=filename, content_type=media_type)
