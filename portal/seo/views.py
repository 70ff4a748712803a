"""``robots.txt`` and ``sitemap.xml`` at the site root: public, no access check."""

from django.contrib.sitemaps.views import sitemap as django_sitemap
from django.http import HttpResponse
from django.views.decorators.http import require_safe

from . import services
from .sitemaps import SITEMAPS


@require_safe
def robots(request):
    return HttpResponse(services.robots_txt(request), content_type="text/plain; charset=utf-8")


@require_safe
def sitemap(request):
    return django_sitemap(request, sitemaps=SITEMAPS)
