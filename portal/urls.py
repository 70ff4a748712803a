from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from portal.health import health


def favicon(request):
    # not permanent: the target's hashed name changes with the icon (CompressedManifestStaticFilesStorage)
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("health/", health),
    path("admin/", admin.site.urls),
    path("accounts/", include("portal.accounts.urls", namespace="accounts")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # issue 17: each package's urls.py holds full paths (pages and their /api/ answers)
    path("", include("portal.maps.urls", namespace="maps")),
    path("", include("portal.validation.urls", namespace="validation")),
    path("", include("portal.compare.urls", namespace="compare")),
    path("", include("portal.closure.urls", namespace="closure")),
    path("api/edr/", include("portal.edr.urls", namespace="edr")),
    path("api/records/", include("portal.records.urls", namespace="records")),
    path("api/stac/", include("portal.stac.urls", namespace="stac")),
    path("api/", include("portal.api.urls", namespace="api")),
    path("opendap/", include("portal.opendap.urls", namespace="opendap")),
    path("oai/", include("portal.oai.urls", namespace="oai")),
    path("", include("portal.seo.urls")),
    path("", include("portal.subsets.urls", namespace="subsets")),
    path("", include("portal.catalog.urls")),
]
