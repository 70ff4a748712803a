from django.urls import path

from . import views

app_name = "validation"

urlpatterns = [
    path("datasets/<str:dataset_id>/v<int:number>/validation/", views.version_page, name="version"),
    path(
        "datasets/<str:dataset_id>/v<int:number>/validation/stations/<str:code>/",
        views.station_page,
        name="station",
    ),
    path("api/datasets/<str:dataset_id>/versions/<int:number>/validation/", views.version_api, name="version_api"),
    path(
        "api/datasets/<str:dataset_id>/versions/<int:number>/validation/stations/<str:code>/",
        views.station_api,
        name="station_api",
    ),
]
