from django.core.management.base import BaseCommand

from portal.catalog.search import index_datasets


class Command(BaseCommand):
    help = "Rebuild the search documents of every dataset record (or of the ids given)."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", help="record ids (default: all)")

    def handle(self, *args, ids, **options):
        count = index_datasets(ids or None)
        self.stdout.write(f"{count} records indexed")
