from django.urls import path

from . import views

app_name = "opendap"
urlpatterns = [
    # <file>.dds | .das | .dods | .html, or the bare file URL (a description); no '/' or NUL in the segments
    path("<str:dataset_id>/v<int:number>/<str:name>", views.dap2, name="dap2"),
]
