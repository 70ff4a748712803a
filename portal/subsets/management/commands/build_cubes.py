"""Build the cube stores of published grids that lack them (versions published before the stores existed)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.catalog.models import DatasetFile
from portal.subsets import store


class Command(BaseCommand):
    help = "Build the map- and time-chunked Zarr stores of every published gridded NetCDF that has none (--force: all)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="rebuild existing stores too")

    def handle(self, *args, force=False, **options):
        built = 0
        for f in DatasetFile.objects.filter(name__endswith=".nc").select_related("version"):
            path = Path(settings.DATA_ROOT) / f.path
            if not path.is_file() or (store.store_paths(path)["map"].exists() and not force):
                continue
            if store.holds_grid(path):
                store.build_stores(path, source_sha256=f.sha256)
                built += 1
                self.stdout.write(f"built cube stores of {f.version.dataset_id} v{f.version.number} {f.name}")
        self.stdout.write(f"{built} grid(s) stored as cubes")
