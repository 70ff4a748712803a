import json
import time

from django.http import Http404, HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import limits
from portal.catalog import access, search
from portal.catalog.access import AccessDenied
from portal.catalog.models import Dataset
from portal.files import OCTET_STREAM, bytes_sent, media_type_for, stored_file_response, stream_temporary
from portal.subsets import core as subset_core
from portal.subsets import ownership
from portal.subsets import services as subsets
from portal.subsets import stations as station_subsets
from portal.subsets.models import SubsetJob

from .pagination import CappedLimitOffsetPagination
from .serializers import (
    DatasetDetailSerializer,
    DatasetListSerializer,
    DatasetSearchSerializer,
    GridParametersSerializer,
    JobSerializer,
)


def _params(*names):
    """OpenAPI descriptions of the grid actions' query parameters."""
    text = {
        "version": "published version number (default: the latest)",
        "file": "NetCDF file of the version (needed when it has several)",
        "variables": "comma-separated variable names (default: all)",
        "bbox": "min_lon,min_lat,max_lon,max_lat in degrees; min_lon > max_lon crosses the antimeridian",
        "polygon": "WKT or GeoJSON polygon; cells whose centres fall inside",
        "lon": "degrees east of the point",
        "lat": "degrees north of the point",
        "time": "start/end, ISO 8601 (either may be empty)",
        "time_stride": "keep every n-th time step",
        "space_stride": "keep every n-th cell in lat and lon",
        "f": "format: netcdf, geotiff, csv, zarr, coveragejson (series: csv, netcdf, zarr, coveragejson)",
        "estimate": "1: answer only the size estimate and what would happen (JSON)",
    }
    return [
        OpenApiParameter(
            n,
            OpenApiTypes.STR,
            OpenApiParameter.QUERY,
            description=text[n],
            required=n in ("lon", "lat"),
            pattern=NO_NUL,
        )
        for n in names
    ]


NO_NUL = "^[^\\u0000]*$"
"""Every text parameter's pattern: a NUL byte is refused at the edge (portal.edge) with a 400."""


_GRID_RESPONSES = {
    # the direct answer's media type follows f (portal.files.media_type_for of the format's suffix)
    **{
        (200, media_type_for(suffix)): OpenApiResponse(OpenApiTypes.BINARY, description=f"the file, f={name}")
        for name, suffix in subsets.SUFFIXES.items()
        if name != "coveragejson"
    },
    (200, media_type_for(subsets.SUFFIXES["coveragejson"])): OpenApiResponse(
        OpenApiTypes.OBJECT, description="the CoverageJSON document, f=coveragejson"
    ),
    (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="estimate=1: the size estimate"),
    (202, "application/json"): OpenApiResponse(JobSerializer, description="queued as a job: its status"),
    (400, "application/json"): OpenApiResponse(description="{field, detail}: the bad field"),
    (401, "application/json"): OpenApiResponse(description="{detail, need}: sign in or send an API token"),
    (403, "application/json"): OpenApiResponse(
        description="{detail, need}: what the user lacks (verification, approved application, licence, token scope)"
    ),
    (413, "application/json"): OpenApiResponse(description="above the job limit: what to do instead"),
    (429, "application/json"): OpenApiResponse(
        description="a quota is used up: {detail, quota, limit, used, retry_after} and Retry-After"
    ),
}
_POST_BODY = {
    "application/json": GridParametersSerializer,
    "application/x-www-form-urlencoded": GridParametersSerializer,
    "multipart/form-data": GridParametersSerializer,
}
_COMMON = ("version", "file", "variables", "time", "f", "estimate")


class _SearchSchema(AutoSchema):
    """The list is one search answer (an object with ``results``), not an array of records."""

    def _is_list_view(self, serializer=None) -> bool:
        return False if getattr(self.view, "action", None) == "list" else super()._is_list_view(serializer)

    def get_operation_id(self) -> str:
        return "datasets_search" if getattr(self.view, "action", None) == "list" else super().get_operation_id()

    def _get_pagination_parameters(self) -> list:
        """The search's paging: ``limit`` and ``offset`` as the pagination documents them (with the bounds
        the settings give when the schema is made)."""
        if getattr(self.view, "action", None) == "list":
            return CappedLimitOffsetPagination().get_schema_operation_parameters(self.view)
        return super()._get_pagination_parameters()


_SEARCH_TEXT = {
    "q": "words in Chinese or English (stemmed; Chinese segmented); abbreviations such as ET, SM, TWS, GRACE, FT, "
    "ERA5, SMAP, LightGBM; misspelt words are corrected (see 'corrected')",
    "category": "TPDC category (repeat for alternatives)",
    "keyword": "keyword, its Chinese name (repeatable)",
    "variable": "CF standard name (repeatable)",
    "spatial_resolution": "e.g. 0.25°, 1 km (repeatable)",
    "temporal_resolution": "daily, monthly, ... (repeatable)",
    "share_type": "open-access, login-access, protected",
    "format": "NetCDF, GeoTIFF, ... (repeatable)",
    "published": "yes: has a published version; no: has none",
    "bbox": "min_lon,min_lat,max_lon,max_lat: records whose box intersects it (min_lon > max_lon crosses the "
    "antimeridian)",
    "time": "ISO 8601 instant or interval start/end ('..' or empty for an open end): records whose period overlaps",
    "sort": "relevance (default; newest first without words), date (oldest first), -date (newest first), title",
    "facets": "0: leave the facet counts out",
}


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                name,
                OpenApiTypes.STR,
                description=text,
                pattern=NO_NUL,
                many=name in search.FACETS,
                enum={"sort": list(search.SORTS), "published": ["yes", "no"], "facets": ["0", "1"]}.get(name),
            )
            for name, text in _SEARCH_TEXT.items()
        ],
        responses={
            200: DatasetSearchSerializer,
            400: OpenApiResponse(description="{detail, field}: an unknown or malformed parameter"),
        },
    )
)
class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    """Dataset records (TPDC schema). The list is the catalogue search (:mod:`portal.catalog.search`):
    words in either language, facets, box, period and sort, with facet counts."""

    queryset = Dataset.objects.all()
    lookup_value_regex = "[^/.\x00]+"  # DRF default minus NUL (PostgreSQL text cannot hold it): 404, not 500
    pagination_class = None  # the search pages itself (limit/offset read by CappedLimitOffsetPagination)
    schema = _SearchSchema()

    def get_queryset(self):
        if self.action == "retrieve":
            return Dataset.objects.prefetch_related("tags", "versions__files", "versions__validation_results")
        return Dataset.objects.all()  # the grid actions look up one version and its files themselves

    def list(self, request, *args, **kwargs):
        """One search (:func:`portal.catalog.search.search`): a page of records, their count and facet counts."""
        facets = request.query_params.get("facets", "1")
        try:
            params = search.parse(dict(request.query_params.lists()), also=("limit", "offset", "facets"))
            if facets not in ("0", "1"):  # the schema's enum: anything else is a mistake, not a silent "1"
                raise search.SearchError("facets", "expected 0 (leave the facet counts out) or 1")
        except search.SearchError as exc:
            return _problem(exc)
        paginator = CappedLimitOffsetPagination()
        limit, offset = paginator.get_limit(request), paginator.get_offset(request)
        with_facets = facets == "1"
        result = search.search(params, offset=offset, limit=limit, facets=with_facets)
        paginator.count, paginator.limit, paginator.offset, paginator.request = result.total, limit, offset, request
        return Response(
            {
                "count": result.total,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "corrected": result.corrected,
                "fallback": result.fallback,
                "facets": search.facets_as_dicts(result.facets),
                "results": DatasetListSerializer(
                    result.datasets, many=True, context=self.get_serializer_context()
                ).data,
            }
        )

    def get_serializer_class(self):
        return DatasetListSerializer if self.action == "list" else DatasetDetailSerializer

    @extend_schema(
        methods=["GET"],
        parameters=_params(*_COMMON, "bbox", "polygon", "time_stride", "space_stride"),
        responses=_GRID_RESPONSES,
    )
    @extend_schema(
        methods=["POST"],
        request=_POST_BODY,
        responses=_GRID_RESPONSES,
        description="The same request as GET, its parameters in the body (form fields or a JSON object): "
        "for polygons too long for a URL.",
    )
    @action(detail=True, methods=["get", "post"], permission_classes=[permissions.AllowAny])
    def subset(self, request, pk=None):
        """A box or polygon of a published grid, in ``f`` = netcdf, geotiff, csv, zarr or coveragejson.

        Query parameters: ``version`` (default latest), ``file`` (NetCDF name; needed when the
        version has several), ``variables`` (comma-separated), ``bbox`` (min_lon,min_lat,max_lon,
        max_lat; min_lon > max_lon crosses the antimeridian) or ``polygon`` (WKT or GeoJSON; cells
        whose centres fall inside), ``time`` (start/end, ISO), ``time_stride``, ``space_stride``,
        ``f`` (format, as in OGC APIs), ``estimate=1`` (only the size estimate and what would
        happen, as JSON). Small requests are streamed (200); larger ones become a job (202, its
        status in the body and at ``Location``); above the job limit 413 says what to do instead;
        a malformed, empty or out-of-extent request is a 400 naming the field. ``POST`` takes the
        same parameters as form fields or a JSON object (polygons too long for a URL).
        """
        return _grid_answer(request, self.get_object(), "subset")

    @extend_schema(parameters=_params(*_COMMON, "lon", "lat"), responses=_GRID_RESPONSES)
    @action(detail=True, methods=["get"])
    def point(self, request, pk=None):
        """Time series of the cell nearest to ``lon``, ``lat`` (its centre in the output), in csv,
        netcdf, zarr or coveragejson. Other parameters as for ``subset``."""
        return _grid_answer(request, self.get_object(), "point")

    @extend_schema(
        methods=["GET"],
        parameters=_params(*_COMMON, "bbox", "polygon", "time_stride", "space_stride"),
        responses=_GRID_RESPONSES,
    )
    @extend_schema(
        methods=["POST"],
        request=_POST_BODY,
        responses=_GRID_RESPONSES,
        description="The same request as GET, its parameters in the body (form fields or a JSON object): "
        "for polygons too long for a URL.",
    )
    @action(detail=True, methods=["get", "post"], permission_classes=[permissions.AllowAny])
    def area(self, request, pk=None):
        """Area-mean series (cos-latitude weights, cells whose centres fall inside) over a ``bbox`` or
        ``polygon``, in csv, netcdf, zarr or coveragejson. Other parameters as for ``subset``
        (``POST``: in the body, as for ``subset``)."""
        return _grid_answer(request, self.get_object(), "area")


def _problem(exc: subset_core.SubsetError, code=status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"field": exc.field, "detail": str(exc)}, status=code)


def _client(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _answer(request, dataset: Dataset, kind: str, params, *, force_job: bool = False):
    """Translate one call of the subset service into a response (the grid actions and job creation)."""
    try:
        answer = subsets.handle(
            dataset,
            kind,
            params,
            user=request.user,
            client=_client(request),
            force_job=force_job,
            owner_key=lambda: ownership.anonymous_key(request),
        )
    except subsets.QueueUnavailable as exc:
        return _queue_unavailable(request, exc)
    except AccessDenied as exc:
        return _denied(exc)
    except limits.QuotaExceeded as exc:
        return _quota(exc)
    except subsets.SubsetTooLarge as exc:
        return _problem(exc, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    except subset_core.SubsetError as exc:
        return _problem(exc)
    if answer.mode == "estimate":
        return Response(answer.plan.as_dict())
    if answer.mode == "job":
        body = JobSerializer(answer.job, context={"request": request}).data
        code = (
            status.HTTP_202_ACCEPTED
            if not force_job
            else (status.HTTP_201_CREATED if answer.created else status.HTTP_200_OK)
        )
        return Response(body, status=code, headers={"Location": body["url"]})
    return stream_temporary(answer.result.path, filename=answer.result.filename, content_type=answer.result.media_type)


def _denied(exc: AccessDenied) -> Response:
    """401 (sign in or send a token) or 403 (what the user lacks: verification, application, licence, scope)."""
    return Response(
        {"detail": str(exc), "need": exc.decision.need}, status=exc.status, headers=access.challenge(exc.status)
    )


def _quota(exc: limits.QuotaExceeded) -> Response:
    """429 with Retry-After: a quota (live jobs, bytes of the day) is used up; the body says which and how much."""
    return Response(
        exc.as_dict(), status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(exc.retry_after)}
    )


def _queue_unavailable(request, exc) -> Response:
    """503 with Retry-After: the broker is down; the job is failed (not stuck queued) and can be retried."""
    body = {"detail": str(exc), "job": JobSerializer(exc.job, context={"request": request}).data}
    return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "60"})


def _grid_answer(request, dataset: Dataset, kind: str):
    """The grid actions: parameters from the query string (GET) or the body (POST: form fields or a JSON object).

    ``key`` (an anonymous owner's job key, :mod:`portal.subsets.ownership`) is not a subset parameter.
    """
    if request.method == "POST":
        data = request.data
        if not hasattr(data, "keys") or not data.keys():  # the POST form exists to carry parameters
            return Response(
                {
                    "field": "body",
                    "detail": "expected form fields or a JSON object of request parameters "
                    "(a POST without any: use GET)",
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        params = {}
        for name in data.keys():
            value = data.get(name)
            if not (isinstance(value, str) or (name == "polygon" and isinstance(value, dict))):
                return Response(
                    {
                        "field": str(name)[:100],
                        "detail": f"{str(name)[:100]}: expected text"
                        + (" or a GeoJSON object" if name == "polygon" else "")
                        + f", got {type(value).__name__}",
                    },
                    status=status.HTTP_400_BAD_REQUEST,
                )
            params[str(name)] = json.dumps(value) if isinstance(value, dict) else value
    else:
        params = {k: request.query_params.get(k) for k in request.query_params}
    params.pop(ownership.KEY_PARAMETER, None)
    return _answer(request, dataset, kind, params)


class JobViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Asynchronous subset jobs: status (queued, running with progress, done with a link and sha256,
    failed with the reason, cancelled, expired), the result file, a curl/wget script, retry of a
    failed or cancelled job, cancel of a queued or running one.

    ``POST /api/jobs/`` with ``{"dataset": id, "kind": "subset"|"point"|"area", "params": {...}}``
    (params as the query parameters of the dataset actions) queues a job whatever its size (up
    to the job limit); the dataset actions queue one by themselves for large requests.

    A job is its owner's (:mod:`portal.subsets.ownership`): a signed-in user's, or an anonymous
    client's holding its key (session cookie, or ``?key=`` as in the URLs answered); anyone else
    gets 404. Downloading the result and retrying also pass the dataset's access policy.
    """

    queryset = SubsetJob.objects.select_related("version", "dataset")
    serializer_class = JobSerializer
    permission_classes = [permissions.AllowAny]  # ownership is checked per job (get_object)

    def get_object(self):
        try:
            return ownership.visible_job(self.request, self.kwargs["pk"], self.get_queryset())
        except Http404:
            raise NotFound("no such job") from None

    @extend_schema(responses={200: JobSerializer, 404: OpenApiResponse(description="no such job, or someone else's")})
    def retrieve(self, request, *args, **kwargs):
        subsets.reap_stale_jobs()
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        responses={
            201: JobSerializer,
            200: JobSerializer,
            400: OpenApiResponse(description="{field, detail}"),
            401: OpenApiResponse(description="sign in or send an API token"),
            403: OpenApiResponse(description="what the user lacks"),
            429: OpenApiResponse(description="too many live jobs: {detail, quota, limit, used, retry_after}"),
            503: OpenApiResponse(description="the job queue is unavailable"),
        }
    )
    def create(self, request, *args, **kwargs):
        data = request.data if isinstance(request.data, dict) else {}
        name = str(data.get("dataset", ""))
        dataset = Dataset.objects.filter(id=name[:100]).first() if "\x00" not in name else None
        if dataset is None:
            return Response(
                {"field": "dataset", "detail": f"no dataset {str(data.get('dataset'))[:100]!r}"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        params = data.get("params") or {}
        if not isinstance(params, dict):
            return Response(
                {"field": "params", "detail": "expected an object of request parameters"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return _answer(
            request,
            dataset,
            str(data.get("kind", "subset")),
            {str(k): str(v) for k, v in params.items()},
            force_job=True,
        )

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="no such job (or someone else's), or not done"),
            410: OpenApiResponse(description="the file expired"),
            429: OpenApiResponse(description="the day's byte quota is used up"),
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The finished job's file (404 before it is done, 410 once expired)."""
        job = self.get_object()
        try:
            access.check_download(request.user, job.dataset)
        except AccessDenied as exc:
            return _denied(exc)
        if job.status == SubsetJob.Status.EXPIRED:
            return Response(
                {"detail": f"the file expired at {job.expires_at:%Y-%m-%d %H:%M} UTC: submit the request again"},
                status=status.HTTP_410_GONE,
            )
        if job.status != SubsetJob.Status.DONE:
            return Response({"detail": f"the job is {job.status}"}, status=status.HTTP_404_NOT_FOUND)
        if request.method == "GET":
            try:
                limits.check_bytes(request.user, _client(request), job.size or 0)
            except limits.QuotaExceeded as exc:
                return _quota(exc)
        # Ranges and validators as for published files; private, cached until the file expires.
        left = int((job.expires_at - timezone.now()).total_seconds()) if job.expires_at else 0
        response = stored_file_response(  # on S3, a large file: a redirect to a pre-signed URL
            request,
            job.result_path,
            filename=job.result_name,
            content_type=media_type_for(job.result_name, default=job.media_type or OCTET_STREAM),
            immutable=False,
            private=True,
            max_age=max(left, 0),
            sha256=job.sha256 or None,
        )
        if request.method == "GET" and response.status_code in (200, 206, 302):  # not HEAD, 304 or 416
            f = subsets.gridded_file(job.version, job.file_name)
            subsets.log_download(
                user=request.user,
                f=f,
                query=None,
                size=bytes_sent(response),
                seconds=0.0,
                job=job,
                client=_client(request),
            )
        return response

    @extend_schema(
        parameters=[OpenApiParameter("tool", OpenApiTypes.STR, enum=["curl", "wget"])],
        responses={
            (200, "text/x-shellscript"): OpenApiTypes.STR,
            400: OpenApiResponse(description="{field, detail}: tool"),
            404: OpenApiResponse(description="no such job (or someone else's), or not done"),
        },
    )
    @action(detail=True, methods=["get"])
    def script(self, request, pk=None):
        """A shell script fetching the file with ``tool`` = curl (default) or wget and checking its sha256.

        A signed-in user's script sends ``Authorization: Bearer $PORTAL_TOKEN`` (a personal API
        token from the environment); an anonymous job's link carries its key.
        """
        job = self.get_object()
        if job.status != SubsetJob.Status.DONE:
            return Response({"detail": f"the job is {job.status}"}, status=status.HTTP_404_NOT_FOUND)
        url = self.get_serializer(job).data["download_url"]
        try:
            text = subsets.download_script(
                job,
                url,
                request.query_params.get("tool", "curl"),
                profile_url=request.build_absolute_uri(reverse("accounts:profile")),
            )
        except ValueError as exc:
            return Response({"field": "tool", "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return HttpResponse(
            text,
            content_type="text/x-shellscript",
            headers={"Content-Disposition": f'attachment; filename="job_{job.id}.sh"'},
        )

    @extend_schema(
        request=None,
        responses={
            202: JobSerializer,
            404: OpenApiResponse(description="no such job"),
            409: OpenApiResponse(description="not failed or cancelled"),
            429: OpenApiResponse(description="too many live jobs"),
            503: OpenApiResponse(description="the job queue is unavailable"),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue a failed or cancelled job again."""
        job = self.get_object()
        try:
            access.check_download(request.user, job.dataset)
            job = subsets.retry_job(job)
        except AccessDenied as exc:
            return _denied(exc)
        except limits.QuotaExceeded as exc:
            return _quota(exc)
        except subsets.QueueUnavailable as exc:
            return _queue_unavailable(request, exc)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            200: JobSerializer,
            404: OpenApiResponse(description="no such job"),
            409: OpenApiResponse(description="not queued or running"),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued or running job (a running one stops at its next heartbeat, its partial file removed)."""
        try:
            job = subsets.cancel_job(self.get_object())
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(job).data)


class ObservationSubsetView(APIView):
    """Station, tower and basin observations by ``bbox``, ``time``, ``network``, ``station``, ``variables``.

    ``f`` = csv (long form, default), json (stations with their series) or netcdf (CF DSG
    timeSeries). A request must name a bbox, a network or stations; empty answers are a 400
    naming the field. More than ``STATION_SUBSET_SYNC_MAX_ROWS`` rows (200,000 by default) are not
    streamed: a 413 says how to split the request (by period, network or station). Networks
    closed to the user (no open licence: anonymous and unverified users) answer 401/403 when named;
    a box-only request leaves them out and names them in the ``X-Excluded-Networks`` header.
    """

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[
            *_params("bbox", "time"),
            OpenApiParameter("network", OpenApiTypes.STR, description="comma-separated networks"),
            OpenApiParameter("station", OpenApiTypes.STR, description="comma-separated station codes"),
            OpenApiParameter("variables", OpenApiTypes.STR, description="comma-separated variables"),
            OpenApiParameter("f", OpenApiTypes.STR, enum=list(station_subsets.FORMATS)),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "application/x-netcdf"): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="{field, detail}"),
            401: OpenApiResponse(description="a network closed to anonymous users was named: sign in"),
            403: OpenApiResponse(description="a network closed to unverified users was named"),
            413: OpenApiResponse(description="too many rows: how to split the request"),
            429: OpenApiResponse(description="the day's byte quota is used up"),
        },
    )
    def get(self, request):
        start = time.monotonic()
        client = _client(request)
        try:
            query = station_subsets.parse_station_query({k: request.query_params.get(k) for k in request.query_params})
            query, excluded = station_subsets.restrict(query, request.user)
            path, filename, media_type = station_subsets.write_temporary(query)
        except AccessDenied as exc:
            return _denied(exc)
        except station_subsets.TooManyRows as exc:
            return _problem(exc, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except subset_core.SubsetError as exc:
            return _problem(exc)
        size = path.stat().st_size
        try:
            limits.check_bytes(request.user, client, size)
            subsets.log_download(
                user=request.user,
                f=None,
                query=None,
                kind="stations",
                format=query.format,
                params=dict(request.query_params.items()),
                size=size,
                seconds=time.monotonic() - start,
                client=client,
            )
        except limits.QuotaExceeded as exc:
            path.unlink(missing_ok=True)
            return _quota(exc)
        except BaseException:  # the answer is not sent: its file must not stay behind
            path.unlink(missing_ok=True)
            raise
        response = stream_temporary(path, filename=filename, content_type=media_type)
        if excluded:
            response["X-Excluded-Networks"] = ",".join(excluded)
        return response
