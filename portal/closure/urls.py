from django.urls import path

from . import views

app_name = "closure"

urlpatterns: list = [
    path("water-balance/", views.water_balance_page, name="page"),
    path("api/water-balance/", views.water_balance_api, name="api"),
]
