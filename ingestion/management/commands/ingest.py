import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ingestion.services import READERS, IngestError, IngestSummary, ingest_file, reader_module, source_files


def ingest_with_progress(kind: str, paths: list[str], *, network: str | None, stream) -> IngestSummary:
    """:func:`ingestion.services.ingest`, file by file, showing progress on ``stream`` (stderr): a tqdm bar
    on a terminal, one plain line per file ("ingest cardamom: file 3/12 FR-Pue.csv") otherwise.

    Raises
    ------
    IngestError
        As ``ingest``: unknown kind, a missing path or a folder without the kind's files (before anything is read).
    """
    module = reader_module(kind)
    files = [f for p in paths for f in source_files(kind, p)]
    summary = IngestSummary()
    terminal = stream.isatty()
    bar = tqdm(files, desc=f"ingest {kind}", unit="file", file=stream, dynamic_ncols=True) if terminal else None
    for number, f in enumerate(files, 1):
        if bar is not None:
            bar.set_postfix_str(f.name, refresh=True)
        else:
            stream.write(f"ingest {kind}: file {number}/{len(files)} {f.name}\n")
            stream.flush()
        summary.results.append(ingest_file(kind, f, module=module, network=network))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summary


class Command(BaseCommand):
    help = "Ingest the files of a source KIND from PATHs (files, or directories walked for that kind's files)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(READERS))
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--network", help="network name given to the stations")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON line of counts")

    def handle(self, *args, kind, paths, network, as_json, **options):
        try:
            summary = ingest_with_progress(kind, paths, network=network, stream=self.stderr._out)
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
