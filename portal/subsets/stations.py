"""Subsets of point collections: station, tower and basin observations by box, period, network and variable.

Observations live in PostGIS (``ingestion.Observation``, long form). A request is checked and
counted before anything is written; up to ``settings.STATION_SUBSET_MAX_ROWS`` rows are answered
directly, larger ones get a 413 naming what to narrow. Basins (GRDC-MRB) carry no coordinates in
the sample data: a box never selects them, a ``network`` filter alone does.

Formats: long CSV (one row per station, variable and time), JSON (stations with their series,
for charts), and CF NetCDF4 as a Discrete Sampling Geometry ``timeSeries`` collection
(orthogonal multidimensional representation: ``(station, time)`` per variable, missing where a
station has no value; CF 1.8 section 9).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.db.models import Q

from ingestion.models import Observation, Station
from products.methods.files import atomic_path

from .core import SubsetError, check_bbox, check_time, parse_time_bound

FORMATS = {"csv": (".csv", "text/csv"), "json": (".json", "application/json"), "netcdf": (".nc", "application/x-netcdf")}


class TooManyRows(SubsetError):
    """The request selects more than ``settings.STATION_SUBSET_MAX_ROWS`` observations."""


@dataclass(frozen=True)
class StationQuery:
    """A checked point-collection request (see :func:`parse_station_query`)."""

    bbox: tuple[float, float, float, float] | None
    time: tuple | None
    networks: tuple[str, ...]
    variables: tuple[str, ...]
    stations: tuple[str, ...]
    format: str


def parse_station_query(params: Mapping[str, str]) -> StationQuery:
    """A :class:`StationQuery` from query parameters.

    Parameters
    ----------
    params : mapping
        ``bbox`` (min_lon,min_lat,max_lon,max_lat; min_lon > max_lon crosses the antimeridian),
        ``time`` (start/end ISO, either may be empty), ``network`` and ``variables`` and ``station``
        (codes; comma-separated), ``f`` (csv, json, netcdf).

    Raises
    ------
    portal.subsets.core.SubsetError
        Naming the field; a request with neither bbox, network nor station is refused (it would
        be the whole collection).
    """
    bbox = None
    if params.get("bbox"):
        try:
            values = [float(v) for v in params["bbox"].split(",")]
        except ValueError:
            raise SubsetError("bbox", f"expected 4 comma-separated numbers, got {params['bbox']!r}") from None
        if len(values) != 4:
            raise SubsetError("bbox", f"expected 4 comma-separated numbers, got {len(values)}")
        bbox = check_bbox(values)
    time = None
    if params.get("time"):
        if "/" not in params["time"]:
            raise SubsetError("time", f"expected start/end (ISO dates, either may be empty), got {params['time']!r}")
        time = check_time(tuple(t or None for t in params["time"].split("/", 1)))

    def names(key):
        return tuple(v.strip() for v in (params.get(key) or "").split(",") if v.strip())

    fmt = params.get("f") or "csv"
    if fmt not in FORMATS:
        raise SubsetError("format", f"{fmt!r} not in {list(FORMATS)}")
    query = StationQuery(bbox, time, names("network"), names("variables"), names("station"), fmt)
    if not (query.bbox or query.networks or query.stations):
        raise SubsetError("bbox", "give a bbox, a network or station codes (the whole collection is not a subset)")
    return query


def _stations(query: StationQuery):
    stations = Station.objects.all()
    if query.networks:
        known = set(Station.objects.filter(network__in=query.networks).values_list("network", flat=True))
        missing = [n for n in query.networks if n not in known]
        if missing:
            raise SubsetError("network", f"{missing} not among {sorted(set(Station.objects.values_list('network', flat=True)))}")
        stations = stations.filter(network__in=query.networks)
    if query.stations:
        stations = stations.filter(code__in=query.stations)
    if query.bbox:
        west, south, east, north = query.bbox
        east = east if east <= 180 else east - 360
        west = west if west <= 180 else west - 360
        boxes = [(west, south, east, north)] if west <= east else [(west, south, 180, north), (-180, south, east, north)]
        where = Q()
        for box in boxes:
            where |= Q(geom__intersects=Polygon.from_bbox(box))
        stations = stations.filter(where)
    return stations


def _observations(query: StationQuery):
    rows = Observation.objects.filter(station__in=_stations(query))
    if query.variables:
        rows = rows.filter(variable__in=query.variables)
    if query.time:
        start, end = (parse_time_bound(t, "time") for t in query.time)
        if start is not None:
            rows = rows.filter(time__gte=start.tz_localize("UTC") if start.tzinfo is None else start)
        if end is not None:
            if isinstance(query.time[1], str) and len(query.time[1]) <= 10:
                end = end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)  # a date covers its whole day
            rows = rows.filter(time__lte=end.tz_localize("UTC") if end.tzinfo is None else end)
    return rows


def count(query: StationQuery) -> int:
    """Rows the request selects (one SQL count; nothing is read)."""
    return _observations(query).count()


def frame(query: StationQuery) -> pd.DataFrame:
    """The selected observations, long form: network, code, name, lon, lat, time (UTC), variable,
    value, units, quality_flag, is_validation; sorted by network, code, variable, time.

    Raises
    ------
    portal.subsets.core.SubsetError
        Field ``bbox``: nothing selected (an empty answer is a 400, never the whole collection).
    """
    values = (_observations(query).order_by("station__network", "station__code", "variable", "time")
              .values_list("station__network", "station__code", "station__name", "station__geom", "time", "variable",
                           "value", "units", "quality_flag", "is_validation"))
    table = pd.DataFrame.from_records(list(values), columns=["network", "code", "name", "geom", "time", "variable",
                                                             "value", "units", "quality_flag", "is_validation"])
    if table.empty:
        raise SubsetError("bbox", "no observation matches the box, period, networks, stations and variables")
    table.insert(3, "lon", [g.x if g is not None else np.nan for g in table["geom"]])
    table.insert(4, "lat", [g.y if g is not None else np.nan for g in table["geom"]])
    return table.drop(columns="geom")


def to_dataset(table: pd.DataFrame) -> xr.Dataset:
    """CF DSG ``timeSeries`` (orthogonal multidimensional) of a :func:`frame`: dims ``(station, time)``.

    Variables: one per observed variable (float64, its units), ``station_id`` (``network:code``,
    ``cf_role = timeseries_id``), ``lon``, ``lat``, ``station_name``.
    """
    table = table.assign(station=table["network"] + ":" + table["code"],
                         time=pd.to_datetime(table["time"], utc=True).dt.tz_localize(None))
    meta = table.drop_duplicates("station").set_index("station")
    ds = xr.Dataset(coords={"station": np.arange(len(meta)), "time": np.sort(table["time"].unique())})
    ds["station_id"] = ("station", meta.index.to_numpy(dtype=str), {"cf_role": "timeseries_id"})
    ds["station_name"] = ("station", meta["name"].to_numpy(dtype=str))
    ds["lon"] = ("station", meta["lon"].to_numpy(float), {"standard_name": "longitude", "units": "degrees_east"})
    ds["lat"] = ("station", meta["lat"].to_numpy(float), {"standard_name": "latitude", "units": "degrees_north"})
    for variable, rows in table.groupby("variable", sort=True):
        wide = rows.pivot_table(index="station", columns="time", values="value", aggfunc="mean")
        wide = wide.reindex(index=meta.index, columns=ds["time"].values)
        ds[str(variable)] = (("station", "time"), wide.to_numpy(float),
                             {"units": rows["units"].iloc[0], "coordinates": "lat lon station_id"})
    ds.attrs = {"Conventions": "CF-1.8", "featureType": "timeSeries"}
    return ds


def write(query: StationQuery, path: Path) -> int:
    """Write the request's observations at ``path`` in ``query.format``; returns the row count.

    Raises
    ------
    TooManyRows
        More than ``settings.STATION_SUBSET_MAX_ROWS`` rows (field ``bbox``, saying what to narrow).
    portal.subsets.core.SubsetError
        Nothing selected.
    """
    n = count(query)
    if n > settings.STATION_SUBSET_MAX_ROWS:
        raise TooManyRows("bbox", f"{n} observations, above the limit of {settings.STATION_SUBSET_MAX_ROWS}: narrow "
                                  "the box, the period, the networks or the variables")
    table = frame(query)
    with atomic_path(path) as tmp:
        if query.format == "csv":
            out = table.assign(time=pd.to_datetime(table["time"], utc=True).map(lambda t: t.isoformat()))
            out.to_csv(tmp, index=False, na_rep="")
        elif query.format == "netcdf":
            to_dataset(table).to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        else:
            stations = []
            for (network, code), rows in table.groupby(["network", "code"], sort=False):
                first = rows.iloc[0]
                stations.append({
                    "network": network, "code": code, "name": first["name"],
                    "lon": None if pd.isna(first["lon"]) else first["lon"],
                    "lat": None if pd.isna(first["lat"]) else first["lat"],
                    "series": {str(v): {"units": r["units"].iloc[0],
                                        "time": [t.isoformat() for t in pd.to_datetime(r["time"], utc=True)],
                                        "value": r["value"].tolist()} for v, r in rows.groupby("variable")}})
            tmp.write_text(json.dumps({"type": "StationCollection", "stations": stations}))
    return len(table)


def write_temporary(query: StationQuery) -> tuple[Path, str, str]:
    """:func:`write` to a temporary file the caller streams and deletes: ``(path, filename, media type)``."""
    suffix, media_type = FORMATS[query.format]
    folder = Path(settings.DATA_ROOT) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(suffix=suffix, dir=folder)
    os.close(fd)
    path = Path(name)
    try:
        write(query, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    label = "_".join(query.networks or query.stations or ("box",))[:60]
    return path, f"observations_{label}{suffix}", media_type
