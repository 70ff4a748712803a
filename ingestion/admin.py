from django.contrib import admin

from .models import GridFile, IngestRun, Observation, Station


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = ["code", "network", "name", "lon", "lat", "elevation", "land_cover", "source"]
    list_filter = ["network", "land_cover"]
    search_fields = ["code", "name"]
    # The geometry is shown as text: GeoDjango's map widget would load OpenLayers from a CDN.
    readonly_fields = ["geom"]

    @admin.display(description="lon")
    def lon(self, obj):
        return round(obj.geom.x, 4) if obj.geom else None

    @admin.display(description="lat")
    def lat(self, obj):
        return round(obj.geom.y, 4) if obj.geom else None


@admin.register(Observation)
class ObservationAdmin(admin.ModelAdmin):
    list_display = ["station", "variable", "time", "value", "units", "quality_flag", "is_validation"]
    list_filter = ["variable", "is_validation", "station__network"]
    search_fields = ["station__code"]
    list_select_related = ["station"]
    raw_id_fields = ["station", "ingest_run"]
    show_full_result_count = False
    # The observation's identity (the table's primary key index): a total order the list pages through by
    # index, where Django's default (-pk) would sort every row (ids have a BRIN index only).
    ordering = ["station_id", "variable", "time", "is_validation"]


@admin.register(IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "source_path",
        "status",
        "stations",
        "observations",
        "skipped_duplicates",
        "started_at",
        "seconds",
    ]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in IngestRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(GridFile)
class GridFileAdmin(admin.ModelAdmin):
    list_display = ["path", "reader", "time_start", "time_end", "time_steps", "extent"]
    list_filter = ["reader"]
    search_fields = ["path"]
    readonly_fields = [f.name for f in GridFile._meta.fields]

    @admin.display(description="bbox (min_lon, min_lat, max_lon, max_lat)")
    def extent(self, obj):
        return tuple(round(v, 3) for v in obj.bbox.extent) if obj.bbox else None

    def has_add_permission(self, request):
        return False
