"""The access matrix: every front door x every share type x every kind of user, exactly the allowed answers.

The expected table is built from the written rules (:func:`may_download`, :func:`expected`), not
from the answers: open data for anyone; login-access for verified users; protected for approved
applicants; an open dataset whose licence must be accepted for verified users who accepted it;
staff everything; a token without the ``download`` scope nothing; jobs only for their owner
(someone else's: 404, its existence not revealed) and staff. Station networks without an open
licence (the basin tables) are for verified users with the download right only.

Real parts: PostGIS, the published SYNTHETIC grid of ``tests/grids.py``, the real ET
product of the session (``series.json``), real tokens through the real middleware, Django's test
client (one request per door and per cell).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import pytest
import xarray as xr
from django.conf import settings
from django.test import Client
from django.utils import timezone

from portal.accounts.models import AccessApplication, LicenceAcceptance
from portal.accounts.tokens import issue
from portal.catalog.models import Dataset
from portal.subsets import ownership
from portal.subsets.models import SubsetJob
from tests.conftest import make_user
from tests.grids import FT, committed_grid

pytestmark = pytest.mark.django_db

LICENCE = "https://creativecommons.org/licenses/by/4.0/"
SHARES = ("open", "login", "protected", "licence")
ACTORS = (
    "anonymous",
    "unverified",
    "verified",
    "verified_read_token",
    "verified_download_token",
    "applicant",
    "applicant_token",
    "staff",
)


# --------------------------------------------------------------------------- the rules


def may_download(actor: str, share: str) -> int:
    """The status the policy answers ``actor`` for a dataset of ``share``: 200, 401 or 403 (from the rules)."""
    if actor == "staff":
        return 200
    if actor == "verified_read_token":
        return 403  # a token without the download scope downloads nothing, open data included
    if share == "open":
        return 200
    if actor == "anonymous":
        return 401  # sign in (or send a token)
    if actor == "unverified":
        return 403  # verify the e-mail address
    if share == "login":
        return 200  # any verified user
    # protected: an approved application; licence: the licence accepted (applicants did both)
    return 200 if actor in ("applicant", "applicant_token") else 403


def may_read_networks(actor: str) -> int:
    """Closed station networks: verified users with the download right (anonymous 401, others 403)."""
    if actor == "anonymous":
        return 401
    return 403 if actor in ("unverified", "verified_read_token") else 200


def expected(actor: str, share: str) -> dict[str, int]:
    """Every door's status for ``actor`` on a dataset of ``share``."""
    data = may_download(actor, share)
    staff = actor == "staff"

    def owner_data(ok: int) -> int:  # one's own job: the policy still applies to reading its data
        return ok if data == 200 else data

    return {
        "file": data,  # (a browser asking for HTML is sent to the login page instead: tests/catalog/test_pages.py)
        "series.json": data,
        "api subset": data,
        "api point": data,
        "api area": data,
        "api subset POST": data,
        "job create": 201 if data == 200 else data,
        "own job status": 200,
        "own job script": 200,
        "own job cancel": 200,
        "own job download": owner_data(200),
        "own job retry": owner_data(202),
        "other's job status": 200 if staff else 404,
        "other's job script": 200 if staff else 404,
        "other's job cancel": 200 if staff else 404,
        "other's job download": 200 if staff else 404,
        "other's job retry": 202 if staff else 404,
        "other's job page": 200 if staff else 404,
        "own job page": 200,
        "edr position": data,
        "edr area": data,
        "edr cube": data,
        "opendap dds": data,
        "opendap dods": data,
        "stac zarr store": data,
        "metadata export": 200,
        "stac item": 200,
        "records item": 200,  # metadata describes: public
        "observations of a closed network": may_read_networks(actor),
    }


# --------------------------------------------------------------------------- the world


def _share(dataset: Dataset, share: str) -> None:
    dataset.share_type = {
        "open": Dataset.ShareType.OPEN,
        "login": Dataset.ShareType.LOGIN,
        "protected": Dataset.ShareType.PROTECTED,
        "licence": Dataset.ShareType.OPEN,
    }[share]
    dataset.licence_acceptance = share == "licence"
    dataset.license_url = LICENCE
    dataset.save()


def _actor(actor: str, datasets: list[Dataset]) -> tuple[Client, object, str | None]:
    """A client acting as ``actor``, the user (None for anonymous) and the anonymous job key (anonymous only)."""
    client = Client()
    if actor == "anonymous":
        return client, None, secrets.token_urlsafe(32)
    user = make_user(f"{actor}@example.org", verified=actor != "unverified", is_staff=actor == "staff")
    if actor.startswith("applicant"):
        for dataset in datasets:
            AccessApplication.objects.create(user=user, dataset=dataset, purpose="x", status="approved")
            LicenceAcceptance.objects.create(user=user, dataset=dataset, licence_url=LICENCE)
    if actor.endswith("token"):
        scopes = ["read"] if actor == "verified_read_token" else ["read", "download"]
        _, plain = issue(user, "matrix", scopes, 7)
        return Client(headers={"Authorization": f"Bearer {plain}"}), user, None
    client.force_login(user)
    return client, user, None


def _job(version, status: str, *, user=None, key: str | None = None) -> SubsetJob:
    """A job of ``status`` on the grid, owned by ``user`` or the anonymous holder of ``key``; a done one has its file."""
    job = SubsetJob.objects.create(
        user=user,
        owner_key=ownership.hash_key(key) if key else "",
        client="127.0.0.1",
        dataset_id=FT,
        version=version,
        file_name="grid.nc",
        kind="subset",
        params={"bbox": "0,0,2,2", "f": "csv"},
        request_key=secrets.token_hex(32),
        estimated_bytes=100,
        status=status,
    )
    if status == SubsetJob.Status.DONE:
        folder = Path(settings.DATA_ROOT) / "jobs" / str(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.csv").write_text("time,sm\n2015-01-01,1\n")
        SubsetJob.objects.filter(id=job.id).update(
            result_path=str((folder / "result.csv").relative_to(settings.DATA_ROOT)),
            result_name="result.csv",
            media_type="text/csv",
            size=(folder / "result.csv").stat().st_size,
            sha256="0" * 64,
            finished_at=timezone.now(),
            expires_at=timezone.now() + timedelta(hours=1),
        )
    return job


def _jobs(version, *, user=None, key=None) -> dict[str, SubsetJob]:
    return {
        "done": _job(version, "done", user=user, key=key),
        "failed": _job(version, "failed", user=user, key=key),
        "queued": _job(version, "queued", user=user, key=key),
    }


def _status(response) -> int:
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # consumed, as a client would (the OPeNDAP log is written at close)
    return response.status_code


def observed(
    client: Client, key: str | None, version, et_dataset: Dataset, station: str, basin: str, own: dict, others: dict
) -> dict[str, int]:
    """Every door's status for ``client``."""
    api, n = f"/api/datasets/{FT}", version.number
    q = f"?key={key}" if key else ""
    amp = f"&key={key}" if key else ""
    out = {
        "file": client.get(f"/datasets/{FT}/versions/{n}/files/grid.nc"),
        "series.json": client.get(f"/datasets/{et_dataset.id}/series.json", {"station": station}),
        "api subset": client.get(f"{api}/subset/", {"bbox": "0,0,2,2", "f": "csv"}),
        "api point": client.get(f"{api}/point/", {"lon": "0.5", "lat": "0.5", "f": "csv"}),
        "api area": client.get(f"{api}/area/", {"bbox": "0,0,4,4", "f": "csv"}),
        "api subset POST": client.post(
            f"{api}/subset/", {"bbox": "0,0,2,2", "f": "csv"}, content_type="application/json"
        ),
        "job create": client.post(
            "/api/jobs/",
            {"dataset": FT, "kind": "subset", "params": {"bbox": "0,0,3,3", "f": "csv"}},
            content_type="application/json",
        ),
        "edr position": client.get(f"/api/edr/collections/{FT}/position", {"coords": "POINT(0.5 0.5)", "f": "CSV"}),
        "edr area": client.get(
            f"/api/edr/collections/{FT}/area", {"coords": "POLYGON((0 0,2 0,2 2,0 2,0 0))", "f": "CSV"}
        ),
        "edr cube": client.get(f"/api/edr/collections/{FT}/cube", {"bbox": "0,0,2,2", "f": "CSV"}),
        "opendap dds": client.get(f"/opendap/{FT}/v{n}/grid.nc.dds"),
        "opendap dods": client.get(f"/opendap/{FT}/v{n}/grid.nc.dods?sm[0:0][0:1][0:1]"),
        "stac zarr store": client.get(f"/api/stac/stores/{FT}/v{n}/grid.nc/map.zarr/.zmetadata"),
        "metadata export": client.get(f"/datasets/{FT}/metadata/datacite", {"version": n}),
        "stac item": client.get(f"/api/stac/collections/{FT}/items/{FT}-v{n}"),
        "records item": client.get(f"/api/records/collections/datasets/items/{FT}"),
        "observations of a closed network": client.get("/api/observations/", {"network": "GRDC-MRB", "station": basin}),
    }
    for who, jobs, suffix, more in (("own", own, q, amp), ("other's", others, "", "")):
        out[f"{who} job status"] = client.get(f"/api/jobs/{jobs['done'].id}/{suffix}")
        out[f"{who} job page"] = client.get(f"/jobs/{jobs['done'].id}/{suffix}")
        out[f"{who} job download"] = client.get(f"/api/jobs/{jobs['done'].id}/download/{suffix}")
        out[f"{who} job script"] = client.get(f"/api/jobs/{jobs['done'].id}/script/?tool=curl{more}")
        out[f"{who} job retry"] = client.post(f"/api/jobs/{jobs['failed'].id}/retry/{suffix}")
        out[f"{who} job cancel"] = client.post(f"/api/jobs/{jobs['queued'].id}/cancel/{suffix}")
    return {door: _status(response) for door, response in out.items()}


@pytest.fixture(scope="module")
def matrix_grid(django_db_blocker):
    """The SYNTHETIC grid published (committed) once for the 32 cells of the matrix: publishing with its cube
    stores was most of each cell's time; a cell's share type, users and jobs stay in its rolled-back transaction."""
    with committed_grid(django_db_blocker) as version:
        yield version


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("actor", ACTORS)
def test_every_front_door_answers_exactly_what_the_policy_allows(actor, share, et_run, matrix_grid, settings):
    from ingestion.models import Station

    settings.RATE_ANON_PER_MINUTE = settings.RATE_USER_PER_MINUTE = 10**6  # the matrix is not a load test
    settings.QUOTA_ANON_CONCURRENT_JOBS = settings.QUOTA_USER_CONCURRENT_JOBS = 100  # nor a quota test
    version = matrix_grid
    grid, et_dataset = version.dataset, et_run.dataset
    for dataset in (grid, et_dataset):
        _share(dataset, share)
    series_file = next(f for f in et_run.version.files.all() if f.name == "et_fusion_timeseries.nc")
    with xr.open_dataset(Path(settings.DATA_ROOT) / series_file.path) as ds:
        station = str(ds["station_name"].values[0])
    basin = Station.objects.filter(network="GRDC-MRB").order_by("code").values_list("code", flat=True).first()
    client, user, key = _actor(actor, [grid, et_dataset])
    own = _jobs(version, user=user, key=key)
    others = _jobs(version, user=make_user("someone.else@example.org"))

    answers = observed(client, key, version, et_dataset, station, basin, own, others)

    assert answers == expected(actor, share)
    # side effects match the answers: a cancelled job is cancelled, someone else's untouched
    assert SubsetJob.objects.get(id=own["queued"].id).status == "cancelled"
    assert SubsetJob.objects.get(id=others["queued"].id).status == ("cancelled" if actor == "staff" else "queued")
