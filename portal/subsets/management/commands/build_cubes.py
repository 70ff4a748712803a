"""Build the cube stores of published grids that lack them (versions published before the stores existed)."""

from django.core.management.base import BaseCommand

from portal import storage
from portal.catalog.models import DatasetFile
from portal.subsets import store


class Command(BaseCommand):
    help = "Build the map- and time-chunked Zarr stores of every published gridded NetCDF that has none (--force: all)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="rebuild existing stores too")

    def handle(self, *args, force=False, **options):
        built = 0
        for f in DatasetFile.objects.filter(name__endswith=".nc").select_related("version"):
            target = store.store_paths(f.path)["map"]  # relative to the data root
            if not storage.is_file(f.path) or (storage.exists(target.as_posix()) and not force):
                continue
            path = storage.local_path(f.path)  # on S3: the read-through local copy
            if store.holds_grid(path):
                made = store.build_stores(path, source_sha256=f.sha256)
                if storage.is_remote():  # built beside the local copy: uploaded, metadata last
                    storage.put_tree(made["map"].parent, target.parent.as_posix())
                built += 1
                self.stdout.write(f"built cube stores of {f.version.dataset_id} v{f.version.number} {f.name}")
        self.stdout.write(f"{built} grid(s) stored as cubes")
