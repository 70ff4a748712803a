from django.urls import path, register_converter

from . import export_views, views


class SegmentConverter:
    """A path segment without '/' or NUL: PostgreSQL text cannot hold NUL, so such a URL is a 404, not a 500."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SegmentConverter, "segment")

app_name = "catalog"
urlpatterns = [
    path("", views.dataset_list, name="home"),
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/<segment:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<segment:dataset_id>/series.json", views.series, name="series"),
    path("datasets/<segment:dataset_id>/metadata/<segment:fmt>", export_views.metadata_export, name="metadata"),
    path("datasets/<segment:dataset_id>/versions/<int:number>/files/<segment:name>", views.download, name="download"),
]
