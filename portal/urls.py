from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("portal.api.urls", namespace="api")),
    path("", include("portal.catalog.urls")),
]
