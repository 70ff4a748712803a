from django.urls import path

from . import views

app_name = "compare"

urlpatterns = [
    path("datasets/<str:dataset_id>/compare/", views.compare_page, name="page"),
    path("datasets/<str:dataset_id>/compare/difference.png", views.difference_png, name="png"),
    path("api/datasets/<str:dataset_id>/compare/", views.compare_api, name="api"),
]
