import json

from django.core.management.base import BaseCommand, CommandError

from ingestion.services import READERS, IngestError, ingest


class Command(BaseCommand):
    help = "Ingest the files of a source KIND from PATHs (files, or directories walked for that kind's files)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(READERS))
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--network", help="network name given to the stations")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON line of counts")

    def handle(self, *args, kind, paths, network, as_json, **options):
        try:
            summary = ingest(kind, paths, network=network)
        except IngestError as exc:
            raise CommandError(str(exc)) from None
        for result in summary.results:
            if result.error:
                self.stderr.write(self.style.ERROR(f"rejected {result.path}: {result.error}"))
            elif not as_json and result.skipped:
                self.stdout.write(f"{result.path}: already loaded (same checksum), nothing added")
            elif not as_json:
                run = result.run
                self.stdout.write(
                    f"{result.path}: {run.stations} stations, {run.observations} observations added, "
                    f"{run.skipped_duplicates} already present ({run.seconds:.2f} s)"
                )
        counts = summary.counts()
        self.stdout.write(
            json.dumps(counts)
            if as_json
            else f"{counts['files']} files: {counts['observations']} observations added, "
            f"{counts['skipped_duplicates']} already present, {counts['rejected_files']} rejected"
        )
        if summary.failed:
            raise CommandError(
                f"{len(summary.failed)} of {counts['files']} files were rejected: "
                + ", ".join(r.path for r in summary.failed[:10])
            )
