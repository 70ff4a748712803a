"""The job page: status, progress, the link and checksum, or the reason of a failure."""
from django.http import Http404
from django.shortcuts import render

from . import services
from .models import SubsetJob


def job_detail(request, job_id):
    """``/jobs/<uuid>/``: the page polls ``/api/jobs/<uuid>/`` until the job ends."""
    services.reap_stale_jobs()
    job = SubsetJob.objects.select_related("dataset", "version").filter(id=job_id).first()
    if job is None:
        raise Http404("no such job")
    return render(request, "subsets/job_detail.html", {"job": job})
