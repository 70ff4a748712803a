"""The OAI-PMH front door: the request's arguments to :func:`portal.oai.services.respond`, its XML back.

Metadata is public (it describes the records and gives none of their data), so there is no access
check. OAI-PMH answers every request with HTTP 200, errors included; POST (a form body) is allowed
by the protocol and is exempt from CSRF (it reads, never writes).
"""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import services


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint(request):
    params = request.POST if request.method == "POST" else request.GET
    body = services.respond({name: params.getlist(name) for name in params}, request.build_absolute_uri(request.path))
    return HttpResponse(body, content_type="text/xml; charset=utf-8")
