"""OGC Web Map Service 1.3.0 over the map previews: GetCapabilities, GetMap, GetFeatureInfo, GetLegendGraphic.

The protocol layer of ``/wms/`` (no HTTP objects here: :func:`respond` takes the query parameters,
the user and the service URL, and returns status, media type and body). One layer per ``(time, lat,
lon)`` variable of each dataset's published versions (named as :class:`portal.maps.services.Layer`: the
latest under the dataset's id, a superseded one as ``<dataset id>@v<number>:...``),
with the ``time`` dimension (ISO 8601, default the last step), CRS:84 and EPSG:4326. Mind the axis
order: in WMS 1.3.0 ``BBOX`` follows the CRS's axes, so ``CRS=EPSG:4326`` takes
``min_lat,min_lon,max_lat,max_lon`` and ``CRS=CRS:84`` takes ``min_lon,min_lat,max_lon,max_lat``
(OGC 06-042 section 6.7.3.3). Errors are ``ServiceExceptionReport`` documents with the codes of
OGC 06-042 Table E.1 (InvalidFormat, InvalidCRS, LayerNotDefined, StyleNotDefined, LayerNotQueryable,
InvalidPoint, MissingDimensionValue, InvalidDimensionValue, OperationNotSupported), answered with
HTTP 400 (401/403 where the access policy refuses, code ``AccessDenied``).

Access: a layer of a dataset the user may not download (:func:`portal.catalog.access.decide`) is not
listed in GetCapabilities, and GetMap, GetFeatureInfo and GetLegendGraphic refuse it.

References
----------
* OGC 06-042, OpenGIS Web Map Server Implementation Specification 1.3.0 (2006),
  https://portal.ogc.org/files/?artifact_id=14416
* OGC 05-078r4, Styled Layer Descriptor profile of WMS 1.1.0 (GetLegendGraphic).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from portal.catalog import access
from portal.catalog.models import Dataset

from . import render, services

VERSION = "1.3.0"
XML = "text/xml; charset=utf-8"
PNG = "image/png"
CRSS = ("CRS:84", "EPSG:4326")
INFO_FORMATS = ("application/json", "text/plain", "text/html")


class WMSError(Exception):
    """A WMS exception: ``code`` (OGC 06-042 Table E.1), ``locator`` (the parameter), HTTP ``status``."""

    def __init__(self, message: str, code: str = "InvalidParameterValue", locator: str = "", status: int = 400):
        super().__init__(message)
        self.code, self.locator, self.status = code, locator, status


def exception_report(exc: WMSError) -> str:
    """The ``ServiceExceptionReport`` XML of ``exc``."""
    locator = f" locator={quoteattr(exc.locator)}" if exc.locator else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ServiceExceptionReport version="{VERSION}" xmlns="http://www.opengis.net/ogc" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.opengis.net/ogc '
        'http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">\n'
        f"  <ServiceException code={quoteattr(exc.code)}{locator}>{escape(str(exc))}</ServiceException>\n"
        "</ServiceExceptionReport>\n"
    )


def _upper(params: Mapping[str, str]) -> dict[str, str]:
    """Parameter names are case-insensitive (OGC 06-042 6.8.1)."""
    return {str(k).upper(): str(v) for k, v in params.items()}


def _need(q: Mapping[str, str], name: str) -> str:
    value = q.get(name, "").strip()
    if not value:
        raise WMSError(f"parameter {name} is required", "MissingParameterValue", name)
    return value


def _num(value: float) -> str:
    return f"{value:.10g}"


def time_extent(layer: services.Layer) -> str:
    """The time dimension's extent: ``start/end/period`` for a regular axis, else a comma-separated list."""
    steps = services.time_steps(layer)
    texts = [s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in steps]
    if len(steps) > 1:
        diffs = np.unique(np.diff(np.asarray([s.value for s in steps], dtype=np.int64)) // 10**9)
        if diffs.size == 1 and diffs[0] > 0 and diffs[0] % 86400 == 0:
            return f"{texts[0]}/{texts[-1]}/P{diffs[0] // 86400}D"
    return ",".join(texts)


def _layer_xml(layer: services.Layer, url: str) -> str:
    west, south, east, north = layer.info.bbox
    if east <= west:  # across the antimeridian: the geographic box of WMS cannot say so, give the whole turn
        west, east = -180.0, 180.0
    st, _vmin, _vmax = services.style(layer)
    legend = f"{url}?SERVICE=WMS&amp;VERSION={VERSION}&amp;REQUEST=GetLegendGraphic&amp;FORMAT=image/png&amp;LAYER={escape(layer.name)}"
    abstract = f"{layer.attrs.get('long_name') or layer.variable} [{layer.attrs.get('units', '')}], version {layer.version.number}, {layer.file.name}; colour map {st.cmap} ({st.kind})"
    default = services.time_steps(layer)[-1].strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""      <Layer queryable="1" opaque="0">
        <Name>{escape(layer.name)}</Name>
        <Title>{escape(layer.title)}</Title>
        <Abstract>{escape(abstract)}</Abstract>
        <CRS>CRS:84</CRS>
        <CRS>EPSG:4326</CRS>
        <EX_GeographicBoundingBox>
          <westBoundLongitude>{_num(west)}</westBoundLongitude>
          <eastBoundLongitude>{_num(east)}</eastBoundLongitude>
          <southBoundLatitude>{_num(south)}</southBoundLatitude>
          <northBoundLatitude>{_num(north)}</northBoundLatitude>
        </EX_GeographicBoundingBox>
        <BoundingBox CRS="CRS:84" minx="{_num(west)}" miny="{_num(south)}" maxx="{_num(east)}" maxy="{_num(north)}"/>
        <BoundingBox CRS="EPSG:4326" minx="{_num(south)}" miny="{_num(west)}" maxx="{_num(north)}" maxy="{_num(east)}"/>
        <Dimension name="time" units="ISO8601" default="{default}" nearestValue="0">{time_extent(layer)}</Dimension>
        <Style>
          <Name>default</Name>
          <Title>{escape(st.kind)} ({escape(st.cmap)})</Title>
          <LegendURL width="320" height="90">
            <Format>image/png</Format>
            <OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="simple" xlink:href="{legend}"/>
          </LegendURL>
        </Style>
      </Layer>
"""


def visible_layers(user) -> list[services.Layer]:
    """Every layer of the published versions of the datasets ``user`` may download: the latest version's
    under the dataset's name, then each superseded version's as ``<dataset id>@v<number>:...``."""
    datasets = Dataset.objects.filter(versions__isnull=False).distinct().order_by("id")
    return [
        layer
        for d in datasets
        if access.can_download(user, d)
        for layer in [*services.dataset_layers(d), *services.earlier_layers(d)]
    ]


def capabilities(user, url: str) -> str:
    """The GetCapabilities document for ``user`` (restricted layers left out); ``url`` is the service's address."""
    layers = visible_layers(user)
    href = escape(url) + "?"
    op = '<DCPType><HTTP><Get><OnlineResource xlink:type="simple" xlink:href="' + href + '"/></Get></HTTP></DCPType>'
    body = "".join(_layer_xml(layer, escape(url)) for layer in layers)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<WMS_Capabilities version="{VERSION}" xmlns="http://www.opengis.net/wms" xmlns:xlink="http://www.w3.org/1999/xlink"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.opengis.net/wms http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd">
  <Service>
    <Name>WMS</Name>
    <Title>Land-surface hydrology data portal: map previews</Title>
    <Abstract>One time step of each published grid variable, drawn from the portal's cube stores (PNG).</Abstract>
    <OnlineResource xlink:type="simple" xlink:href="{href}"/>
    <Fees>none</Fees>
    <AccessConstraints>The access policy of each dataset applies (see its page).</AccessConstraints>
    <LayerLimit>1</LayerLimit>
    <MaxWidth>{render.MAX_PIXELS}</MaxWidth>
    <MaxHeight>{render.MAX_PIXELS}</MaxHeight>
  </Service>
  <Capability>
    <Request>
      <GetCapabilities><Format>text/xml</Format>{op}</GetCapabilities>
      <GetMap><Format>image/png</Format>{op}</GetMap>
      <GetFeatureInfo>{"".join(f"<Format>{f}</Format>" for f in INFO_FORMATS)}{op}</GetFeatureInfo>
    </Request>
    <Exception><Format>XML</Format></Exception>
    <Layer>
      <Title>Published grids</Title>
      <CRS>CRS:84</CRS>
      <CRS>EPSG:4326</CRS>
      <EX_GeographicBoundingBox>
        <westBoundLongitude>-180</westBoundLongitude>
        <eastBoundLongitude>180</eastBoundLongitude>
        <southBoundLatitude>-90</southBoundLatitude>
        <northBoundLatitude>90</northBoundLatitude>
      </EX_GeographicBoundingBox>
      <BoundingBox CRS="CRS:84" minx="-180" miny="-90" maxx="180" maxy="90"/>
{body}    </Layer>
  </Capability>
</WMS_Capabilities>
"""


def _layer(user, name: str, locator: str) -> services.Layer:
    if "," in name:
        raise WMSError(f"one layer per request (LayerLimit 1), got {name[:200]!r}", "OperationNotSupported", locator)
    try:
        dataset, layer = services.layer_by_name(name)
    except services.MapError as exc:
        raise WMSError(str(exc), "LayerNotDefined", locator) from None
    decision = access.decide(user, dataset)
    if not decision.allowed:
        raise WMSError(decision.message, "AccessDenied", locator, decision.status)
    return layer


def _map_request(user, q: Mapping[str, str], layer_param: str = "LAYERS"):
    layer = _layer(user, _need(q, layer_param), layer_param)
    styles = q.get("STYLES", "").strip()
    if styles not in ("", "default"):
        raise WMSError(f"no style {styles[:50]!r}: use 'default' or leave STYLES empty", "StyleNotDefined", "STYLES")
    crs = _need(q, "CRS").upper()
    if crs in ("OGC:CRS84", "CRS84"):
        crs = "CRS:84"
    if crs not in CRSS:
        raise WMSError(f"CRS {crs[:50]!r} is not offered: use CRS:84 or EPSG:4326", "InvalidCRS", "CRS")
    try:
        bbox = services.check_bbox(_need(q, "BBOX"), "BBOX", lat_first=crs == "EPSG:4326")
        width, height = services.check_size(_need(q, "WIDTH"), _need(q, "HEIGHT"), ("WIDTH", "HEIGHT"))
        t = services.time_index(layer, q.get("TIME", "").strip() or None, "TIME")
    except services.MapError as exc:
        raise WMSError(str(exc), exc.code, exc.field) from None
    return layer, bbox, width, height, t


def get_map(user, q: Mapping[str, str]) -> bytes:
    """GetMap: a PNG (transparent where the grid has no value)."""
    fmt = _need(q, "FORMAT")
    layer, bbox, width, height, t = _map_request(user, q)
    if fmt.lower() != PNG:
        raise WMSError(f"format {fmt[:50]!r} is not offered: use image/png", "InvalidFormat", "FORMAT")
    return services.render_png(layer, t, bbox, width, height)


def feature_info(user, q: Mapping[str, str]) -> tuple[str, str]:
    """GetFeatureInfo: the value under pixel (I, J) of the map GetMap would draw, as JSON or text."""
    layer, bbox, width, height, t = _map_request(user, q)
    queried = _need(q, "QUERY_LAYERS")
    if queried != layer.name:
        raise WMSError(
            f"QUERY_LAYERS must name the layer of LAYERS ({layer.name})", "LayerNotQueryable", "QUERY_LAYERS"
        )
    fmt = q.get("INFO_FORMAT", "text/plain").strip() or "text/plain"
    if fmt not in INFO_FORMATS:
        raise WMSError(
            f"INFO_FORMAT {fmt[:50]!r}: use one of {', '.join(INFO_FORMATS)}", "InvalidFormat", "INFO_FORMAT"
        )
    point = []
    for name, size in (("I", width), ("J", height)):
        text = _need(q, name)
        if not text.isascii() or not text.isdigit() or int(text) >= size:
            raise WMSError(
                f"{name} must be a pixel column/row from 0 to {size - 1}, got {text[:20]!r}", "InvalidPoint", name
            )
        point.append(int(text))
    west, south, east, north = bbox
    lon = west + (point[0] + 0.5) * (east - west) / width
    lat = north - (point[1] + 0.5) * (north - south) / height
    answer = services.value_at(layer, t, lon, lat)
    if fmt == "application/json":
        return fmt, json.dumps(answer)
    lines = "\n".join(f"{k} = {v}" for k, v in answer.items())
    if fmt == "text/html":
        return (
            fmt,
            f"<table>{''.join(f'<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>' for k, v in answer.items())}</table>",
        )
    return fmt, lines + "\n"


def legend_graphic(user, q: Mapping[str, str]) -> bytes:
    """GetLegendGraphic (SLD profile): the layer's legend PNG."""
    layer = _layer(user, _need(q, "LAYER"), "LAYER")
    fmt = q.get("FORMAT", PNG).strip() or PNG
    if fmt.lower() != PNG:
        raise WMSError(f"format {fmt[:50]!r} is not offered: use image/png", "InvalidFormat", "FORMAT")
    return services.legend_png(layer)


def respond(params: Mapping[str, str], user, url: str) -> tuple[int, str, Any]:
    """Answer one WMS request.

    Parameters
    ----------
    params : mapping
        The query parameters (names case-insensitive).
    user : the requesting user (anonymous allowed)
    url : str
        The service's absolute address (``.../wms/``), written into the capabilities.

    Returns
    -------
    (int, str, str or bytes)
        HTTP status, media type, body (an exception report on errors).
    """
    q = _upper(params)
    try:
        service = q.get("SERVICE", "WMS").strip().upper()
        request = _need(q, "REQUEST").lower()
        if service != "WMS":
            raise WMSError(f"SERVICE must be WMS, got {service[:20]!r}", "InvalidParameterValue", "SERVICE")
        if request == "getcapabilities":
            return 200, XML, capabilities(user, url)
        version = q.get("VERSION", "").strip()
        if version and version != VERSION and request != "getlegendgraphic":
            raise WMSError(
                f"VERSION {version[:20]!r} is not offered: only {VERSION}", "InvalidParameterValue", "VERSION"
            )
        if request == "getmap":
            return 200, PNG, get_map(user, q)
        if request == "getfeatureinfo":
            fmt, body = feature_info(user, q)
            return 200, fmt, body
        if request == "getlegendgraphic":
            return 200, PNG, legend_graphic(user, q)
        raise WMSError(f"REQUEST {request[:40]!r} is not offered", "OperationNotSupported", "REQUEST")
    except WMSError as exc:
        return exc.status, XML, exception_report(exc)
