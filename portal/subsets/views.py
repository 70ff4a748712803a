"""The job page: status, progress, the link and checksum, or the reason of a failure; cancel and retry."""

from django.shortcuts import render

from . import ownership, services


def job_detail(request, job_id):
    """``/jobs/<uuid>/``: the page polls ``/api/jobs/<uuid>/`` until the job ends.

    Only the job's owner (or staff) sees it (:func:`portal.subsets.ownership.visible_job`): 404 for
    anyone else, as for a job that does not exist. An anonymous owner's ``?key=`` is carried to
    the API links the page uses.
    """
    services.reap_stale_jobs()
    job = ownership.visible_job(request, job_id)
    return render(request, "subsets/job_detail.html", {"job": job, "key_query": ownership.key_query(job, request)})
