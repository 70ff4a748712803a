from django.urls import path

from . import views

app_name = "subsets"
urlpatterns = [path("jobs/<uuid:job_id>/", views.job_detail, name="job")]
