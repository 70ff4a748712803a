from django.urls import path

from . import views

app_name = "maps"

urlpatterns = [
    path("wms/", views.wms_endpoint, name="wms"),
    path("api/datasets/<str:dataset_id>/map.png", views.map_png, name="map"),
    path("api/datasets/<str:dataset_id>/map/legend.json", views.legend, {"fmt": "json"}, name="legend"),
    path("api/datasets/<str:dataset_id>/map/legend.png", views.legend, {"fmt": "png"}, name="legend_png"),
    path("datasets/<str:dataset_id>/versions/<int:number>/quicklook.png", views.quicklook, name="quicklook"),
]
