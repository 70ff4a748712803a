"""Mark jobs of dead workers failed and delete expired job files (Celery beat runs the same every few minutes)."""
from django.core.management.base import BaseCommand

from portal.subsets import services


class Command(BaseCommand):
    help = "Fail subset jobs whose worker stopped answering; delete job files past their expiry."

    def handle(self, *args, **options):
        stale, expired = services.reap_stale_jobs(), services.expire_jobs()
        self.stdout.write(f"{stale} stale job(s) marked failed, {expired} job file(s) expired")
