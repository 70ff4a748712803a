"""Subset jobs and the download log in the admin (read-only: both are written by the service)."""

from django.contrib import admin

from .models import DownloadLog, SubsetJob


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SubsetJob)
class SubsetJobAdmin(_ReadOnly):
    list_display = [
        "id",
        "dataset",
        "kind",
        "status",
        "progress",
        "estimated_bytes",
        "size",
        "user",
        "client",
        "created_at",
        "finished_at",
        "expires_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["id", "dataset__id", "dataset__title_en", "user__username", "client"]


@admin.register(DownloadLog)
class DownloadLogAdmin(_ReadOnly):
    list_display = ["created_at", "user", "dataset", "version_number", "kind", "format", "size", "seconds", "client"]
    list_filter = ["kind", "format"]
    search_fields = ["dataset__id", "user__username", "client"]
    date_hierarchy = "created_at"
