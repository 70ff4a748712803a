from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.dataset_list, name="home"),
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/<str:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<str:dataset_id>/series.json", views.series, name="series"),
    path("datasets/<str:dataset_id>/versions/<int:number>/files/<str:name>", views.download, name="download"),
]
