import json

from django.core.management.base import BaseCommand, CommandError

from ingestion.readers.base import ReaderError
from ingestion.services import READERS, IngestError, ingest


class Command(BaseCommand):
    help = "Ingest station data of a source KIND from PATH (a file or a directory)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(READERS))
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--network", help="network name given to the stations")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON line of counts")

    def handle(self, *args, kind, paths, network, as_json, **options):
        totals = {"files": 0, "stations": 0, "observations": 0, "rejected_files": 0, "skipped_duplicates": 0}
        errors = []
        for path in paths:
            try:
                result = ingest(kind, path, network=network)
            except (IngestError, ReaderError) as exc:
                totals["rejected_files"] += 1
                errors.append(str(exc))
                self.stderr.write(self.style.ERROR(str(exc)))
                continue
            run = result.run
            totals["files"] += len(run.files)
            if result.skipped:
                totals["skipped_duplicates"] += run.observations
                if not as_json:
                    self.stdout.write(f"{path}: already loaded by ingest run {run.id} (same checksum); nothing added")
                continue
            totals["stations"] += run.stations
            totals["observations"] += run.observations
            totals["skipped_duplicates"] += run.skipped_duplicates
            if not as_json:
                self.stdout.write(f"{path}: {run.stations} stations, {run.observations} observations added, "
                                  f"{run.skipped_duplicates} already present ({run.seconds:.1f} s)")
        if as_json:
            self.stdout.write(json.dumps(totals))
        if errors:
            raise CommandError(f"{len(errors)} of {len(paths)} paths were rejected")
