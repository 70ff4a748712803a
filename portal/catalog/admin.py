from django.contrib import admin, messages
from django.db import models
from django.db.models import Count
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from products.registry import product_for_dataset
from products.services import RunError, request_run

from . import search
from .models import Dataset, DatasetFile, DatasetPerson, DatasetVersion, Person, Tag
from .queries import download_counts


class DatasetPersonInline(admin.TabularInline):
    model = DatasetPerson
    extra = 0
    autocomplete_fields = ["person"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["title_en", "title_cn", "category", "acq_start", "acq_end", "share_type", "product", "downloads"]
    list_filter = ["category", "share_type"]
    search_fields = ["id", "title_en", "title_cn", "abstract_en", "abstract_cn"]
    filter_horizontal = ["tags"]
    inlines = [DatasetPersonInline]
    readonly_fields = ["bbox", "raw", "download_summary"]
    actions = ["regenerate"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # Django 6's default, without the warning

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(download_count=Count("download_logs"))

    def save_related(self, request, form, formsets, change):
        """After the record and its tags and people are saved: its search document, in the same transaction."""
        super().save_related(request, form, formsets, change)
        search.index_datasets([form.instance.pk])

    @admin.display(description=_("downloads"), ordering="download_count")
    def downloads(self, obj):
        """Downloads logged (every front door), for the list."""
        return getattr(obj, "download_count", None)

    @admin.display(description=_("downloads (count, bytes) per version"))
    def download_summary(self, obj):
        """The dataset's download counts (:func:`portal.catalog.queries.download_counts`), read-only."""
        counts = download_counts(obj)
        rows = [(_("all versions"), counts["total"], filesizeformat(counts["bytes"]))]
        rows += [(f"v{n}", c["count"], filesizeformat(c["bytes"])) for n, c in counts["versions"].items()]
        return format_html_join("", "<div>{}: {} ({})</div>", rows)

    @admin.display(description=_("product"))
    def product(self, obj):
        spec = product_for_dataset(obj.id)
        return spec.key if spec else "-"

    @admin.action(description=_("Regenerate the product (enqueue a Celery run)"))
    def regenerate(self, request, queryset):
        for dataset in queryset:
            spec = product_for_dataset(dataset.id)
            if spec is None:
                self.message_user(request, f"{dataset}: no product generator for this record", messages.WARNING)
                continue
            try:
                run = request_run(spec.key, user=request.user)
            except RunError as exc:
                self.message_user(request, f"{dataset}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{spec.key}: run {run.id} queued; follow it under Products › Generation runs")


class DatasetFileInline(admin.TabularInline):
    model = DatasetFile
    extra = 0
    readonly_fields = ["name", "path", "size", "sha256", "media_type", "description"]
    can_delete = False


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["dataset", "number", "published_at", "directory"]
    readonly_fields = ["dataset", "number", "published_at", "directory", "lineage", "notes"]
    inlines = [DatasetFileInline]

    def has_add_permission(self, request):
        return False  # versions are created only by publishing a generation run


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["true_name", "email", "work_for", "country"]
    search_fields = ["true_name", "email", "work_for"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "name_en", "kind"]
    list_filter = ["kind"]
    search_fields = ["name", "name_en"]

    def save_model(self, request, obj, form, change):
        """A renamed keyword: its records' search documents (words, facets) follow."""
        super().save_model(request, obj, form, change)
        search.index_datasets(obj.datasets.values_list("id", flat=True))
