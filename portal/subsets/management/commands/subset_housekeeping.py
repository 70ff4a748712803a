"""Mark jobs of dead workers failed, delete expired job files and orphaned temporary files (Celery beat runs the
same every few minutes)."""

from django.core.management.base import BaseCommand

from portal.subsets import services


class Command(BaseCommand):
    help = "Fail subset jobs whose worker stopped answering; delete job files past their expiry and orphaned temporary files."

    def handle(self, *args, **options):
        done = services.housekeeping()
        self.stdout.write(
            f"{done['stale']} stale job(s) marked failed, {done['expired']} job file(s) expired, "
            f"{done['orphans']} orphaned temporary file(s) removed"
        )
