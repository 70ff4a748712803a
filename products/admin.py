from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from .models import GenerationRun, ValidationResult
from .services import RunError, request_run


class ValidationResultInline(admin.TabularInline):
    model = ValidationResult
    extra = 0
    can_delete = False
    fields = ["split", "scope", "label", "n", "kge", "r", "alpha", "beta", "rmse", "bias", "ubrmse", "not_meaningful"]
    readonly_fields = fields
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).filter(scope="pooled")


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "product", "status_badge", "created_at", "started_at", "seconds", "version", "requested_by"]
    list_filter = ["product", "status"]
    readonly_fields = [
        "product",
        "dataset",
        "status",
        "parameters",
        "inputs",
        "code_version",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "progress",
        "timings",
        "summary",
        "log",
        "error",
        "version",
        "compare_with_previous",
    ]
    inlines = [ValidationResultInline]
    actions = ["regenerate"]
    change_form_template = "admin/products/generationrun/change_form.html"
    change_list_template = "admin/products/generationrun/change_list.html"

    def has_add_permission(self, request):
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html('<span class="run-status run-{}">{}</span>', obj.status, obj.get_status_display())

    @admin.display(description="current stage")
    def progress(self, obj):
        """Where the run is (``summary["progress"]``, kept by products.lineage.Stages): stage, n of m, share done."""
        p = (obj.summary or {}).get("progress") if obj.status != obj.Status.SUCCEEDED else None
        if not p:
            return "-" if obj.status != obj.Status.QUEUED else "queued"
        where = f"{p['number']} of {p['of']}" if p.get("of") else str(p["number"])
        share = f", about {p['fraction']:.0%} of the last run's time" if p.get("fraction") is not None else ""
        state = "failed in" if obj.status == obj.Status.FAILED else p["state"]
        return format_html(
            '<span class="run-progress">stage {} ({}): {}{}; done: {}</span>',
            where,
            state,
            p["stage"],
            share,
            ", ".join(p.get("done") or []) or "-",
        )

    @admin.display(description="compare")
    def compare_with_previous(self, obj):
        """A link to the comparison of the run's version with the dataset's previous version (portal.compare)."""
        version = obj.version
        previous = version and version.dataset.versions.filter(number__lt=version.number).order_by("-number").first()
        if not previous:
            return "-"
        url = reverse("compare:page", args=[version.dataset_id]) + f"?a={previous.number}&b={version.number}"
        return format_html('<a href="{}">v{} against v{}</a>', url, version.number, previous.number)

    @admin.action(description="Run the same product again (enqueue a Celery run)")
    def regenerate(self, request, queryset):
        for product in sorted(set(queryset.values_list("product", flat=True))):
            try:
                run = request_run(product, user=request.user)
            except RunError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, f"{product}: run {run.id} queued")

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "auto_refresh": GenerationRun.objects.filter(status__in=["queued", "running"]).exists(),
        }
        return super().changelist_view(request, extra_context)
