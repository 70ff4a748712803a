from django.core.management.base import BaseCommand, CommandError

from portal.catalog.services import RecordError, import_records


class Command(BaseCommand):
    help = "Import TPDC JSON dataset records (one record or a list per file); re-import updates by id."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")

    def handle(self, *args, paths, **options):
        failed = []
        for path in paths:
            try:
                summary = import_records(path)
            except RecordError as exc:
                failed.append(str(exc))
                self.stderr.write(self.style.ERROR(str(exc)))
                continue
            self.stdout.write(f"{path}: {summary.created} created, {summary.updated} updated")
        if failed:
            raise CommandError(f"{len(failed)} of {len(paths)} files were not imported")
