"""Subsets of point collections: station, tower and basin observations by box, period, network and variable.

Observations live in PostGIS (``ingestion.Observation``, long form). A request is checked and
counted before anything is written. Long streams are bounded: up to
``settings.STATION_SUBSET_SYNC_MAX_ROWS`` rows (200,000 by default; and never above
``STATION_SUBSET_MAX_ROWS``) are answered directly by the web worker; a larger request is NOT
turned into a job but refused with a 413 that says how to split it (by period, network or
station, with the rows per network), so no web worker holds a request for minutes. Basins
(GRDC-MRB) carry no coordinates in the sample data: a box never selects them, a ``network``
filter alone does.

Access: networks whose source allows no redistribution are closed to anonymous and unverified
users (:func:`portal.catalog.access.restricted_networks`). :func:`restrict` refuses a request
naming one (network or station code; 401/403 through
:class:`~portal.catalog.access.AccessDenied`) and silently leaves them out of a box-only
request, saying which it left out (the API's ``X-Excluded-Networks`` header).

Formats: long CSV (one row per station, variable and time; values at the precision of the data,
units in the ``units`` column), JSON (stations with their series, for charts), and CF NetCDF4 as a
Discrete Sampling Geometry ``timeSeries`` collection (orthogonal multidimensional representation:
``(timeseries, time)`` per quantity, one feature per station and sensor depth, missing where a
feature has no value; CF 1.8 chapter 9) that passes cfchecker and the IOOS ``cf:1.8`` suite
(:func:`to_dataset`, :func:`acdd_attributes`, written by :func:`portal.subsets.writers.to_netcdf`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.db.models import Count, Max, Q

from ingestion.models import Observation, Station
from portal import extents, storage
from portal.catalog import access
from products.methods.files import atomic_path

from . import writers
from .core import SubsetError, check_bbox, check_time, parse_time_bound
from .params import OBSERVATION_PARAMETERS, check_names

FORMATS = {
    "csv": (".csv", "text/csv"),
    "json": (".json", "application/json"),
    "netcdf": (".nc", "application/x-netcdf"),
}


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
    excluded_networks: tuple[str, ...] = ()


def parse_station_query(params: Mapping[str, str]) -> StationQuery:
    """A :class:`StationQuery` from query parameters.

    Parameters
    ----------
    params : mapping
        ``bbox`` (min_lon,min_lat,max_lon,max_lat; min_lon > max_lon crosses the antimeridian),
        ``time`` (an instant or start/end, ISO 8601 as every front door reads it:
        :func:`portal.extents.parse_period`), ``network`` and ``variables`` and ``station``
        (codes; comma-separated), ``f`` (csv, json, netcdf). Others are refused
        (:func:`portal.subsets.params.check_names`).

    Raises
    ------
    portal.subsets.core.SubsetError
        Naming the field; a request with neither bbox, network nor station is refused (it would
        be the whole collection).
    """
    check_names(params, OBSERVATION_PARAMETERS, "api")
    bbox = None
    if params.get("bbox"):
        bbox = check_bbox(extents.parse_bbox(params["bbox"], error=SubsetError))
    period = extents.parse_period(params.get("time"), "time", error=SubsetError)
    time = check_time(period) if period else None

    def names(key):
        return tuple(v.strip() for v in (params.get(key) or "").split(",") if v.strip())

    fmt = params.get("f") or "csv"
    if fmt not in FORMATS:
        raise SubsetError("f", f"{fmt!r} not in {list(FORMATS)}")
    query = StationQuery(bbox, time, names("network"), names("variables"), names("station"), fmt)
    if not (query.bbox or query.networks or query.stations):
        raise SubsetError("bbox", "give a bbox, a network or station codes (the whole collection is not a subset)")
    return query


def restrict(query: StationQuery, user) -> tuple[StationQuery, list[str]]:
    """Apply the station networks' access rule to ``query`` for ``user``.

    Returns
    -------
    (StationQuery, list of str)
        The query leaving out every network closed to ``user``, and those of them it would
        have selected (left out silently, to be reported to the user).

    Raises
    ------
    portal.catalog.access.AccessDenied
        The request names a closed network, or a station of one (401 anonymous, 403 unverified).
    """
    closed = access.restricted_networks(user)
    if not closed:
        return query, []
    named = set(query.networks)
    if query.stations:
        named |= set(Station.objects.filter(code__in=query.stations).values_list("network", flat=True))
    access.check_networks(user, named)
    excluded = sorted(set(_stations(query).filter(network__in=closed).values_list("network", flat=True)))
    return StationQuery(
        query.bbox, query.time, query.networks, query.variables, query.stations, query.format, tuple(sorted(closed))
    ), excluded


def _stations(query: StationQuery):
    stations = Station.objects.all()
    if query.excluded_networks:
        stations = stations.exclude(network__in=query.excluded_networks)
    if query.networks:
        known = set(Station.objects.filter(network__in=query.networks).values_list("network", flat=True))
        missing = [n for n in query.networks if n not in known]
        if missing:
            raise SubsetError(
                "network", f"{missing} not among {sorted(set(Station.objects.values_list('network', flat=True)))}"
            )
        stations = stations.filter(network__in=query.networks)
    if query.stations:
        stations = stations.filter(code__in=query.stations)
    if query.bbox:
        west, south, east, north = query.bbox
        east = east if east <= 180 else east - 360
        west = west if west <= 180 else west - 360
        boxes = (
            [(west, south, east, north)] if west <= east else [(west, south, 180, north), (-180, south, east, north)]
        )
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
    values = (
        _observations(query)
        .order_by("station__network", "station__code", "variable", "time")
        .values_list(
            "station__network",
            "station__code",
            "station__name",
            "station__geom",
            "time",
            "variable",
            "value",
            "units",
            "quality_flag",
            "is_validation",
        )
    )
    table = pd.DataFrame.from_records(
        list(values),
        columns=[
            "network",
            "code",
            "name",
            "geom",
            "time",
            "variable",
            "value",
            "units",
            "quality_flag",
            "is_validation",
        ],
    )
    if table.empty:
        raise SubsetError("bbox", "no observation matches the box, period, networks, stations and variables")
    table.insert(3, "lon", [g.x if g is not None else np.nan for g in table["geom"]])
    table.insert(4, "lat", [g.y if g is not None else np.nan for g in table["geom"]])
    return table.drop(columns="geom")


# --------------------------------------------------------------------------- CF DSG files

DEPTH_NAME = re.compile(r"^(?P<base>.+?)_(?P<top>-?\d+\.\d+)_(?P<bottom>-?\d+\.\d+)$")
"""A variable measured at a sensor depth, as the ISMN reader names it: ``<short>_<from>_<to>`` (m)."""

# Short name -> (long name, CF standard name, units the standard name admits). The standard name is
# given only where the stored units convert to its canonical units (checked by cfchecker).
VARIABLES: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "sm": ("volumetric soil moisture", "volume_fraction_of_condensed_water_in_soil", ("m3 m-3", "1")),
    "swc": ("volumetric soil water content", "volume_fraction_of_condensed_water_in_soil", ("m3 m-3", "1")),
    "swc_rz": (
        "root-zone volumetric soil water content",
        "volume_fraction_of_condensed_water_in_soil",
        ("m3 m-3", "1"),
    ),
    "ts": ("soil temperature", "soil_temperature", ("degC", "K")),
    "ta": ("air temperature", "air_temperature", ("degC", "K")),
    "tmin": ("daily minimum air temperature", "air_temperature", ("degC", "K")),
    "tmax": ("daily maximum air temperature", "air_temperature", ("degC", "K")),
    "tsf": ("surface temperature", "surface_temperature", ("degC", "K")),
    "lst": ("land surface temperature", "surface_temperature", ("degC", "K")),
    "p": ("precipitation", "lwe_thickness_of_precipitation_amount", ("mm", "m")),
    "precip": ("precipitation rate", "lwe_precipitation_rate", ("mm d-1", "mm month-1", "m s-1")),
    "sd": ("snow depth", "surface_snow_thickness", ("mm", "m")),
    "sweq": ("snow water equivalent", "lwe_thickness_of_surface_snow_amount", ("mm", "m")),
    "su": ("soil suction", None, ()),
    "le": ("latent heat flux", "surface_upward_latent_heat_flux", ("W m-2",)),
    "le_ebc": ("latent heat flux, energy-balance corrected", "surface_upward_latent_heat_flux", ("W m-2",)),
    "h": ("sensible heat flux", "surface_upward_sensible_heat_flux", ("W m-2",)),
    "netrad": ("net radiation", "surface_net_downward_radiative_flux", ("W m-2",)),
    "g": ("ground heat flux", "downward_heat_flux_in_soil", ("W m-2",)),
    "sw_in": ("incoming shortwave radiation", "surface_downwelling_shortwave_flux_in_air", ("W m-2",)),
    "ssrd": ("surface solar radiation downwards", "surface_downwelling_shortwave_flux_in_air", ("MJ m-2 d-1", "W m-2")),
    "rh": ("relative humidity", "relative_humidity", ("%", "1")),
    # gridded meteorology at a tower's pixel (ECOSTRESS cal/val tables), not measured at the tower
    "ta_geos5": ("air temperature, GEOS-5 FP at the tower's pixel", "air_temperature", ("degC", "K")),
    "rh_geos5": ("relative humidity, GEOS-5 FP at the tower's pixel", "relative_humidity", ("%", "1")),
    "netrad_ecostress": (
        "net radiation, ECOSTRESS at the tower's pixel",
        "surface_net_downward_radiative_flux",
        ("W m-2",),
    ),
    "sw_in_ecostress": (
        "incoming shortwave radiation, ECOSTRESS at the tower's pixel",
        "surface_downwelling_shortwave_flux_in_air",
        ("W m-2",),
    ),
    "vpd": ("vapour pressure deficit", "water_vapor_saturation_deficit_in_air", ("hPa", "Pa")),
    "ustar": ("friction velocity", "magnitude_of_surface_friction_velocity_in_air", ("m s-1",)),
    "lai": ("leaf area index", "leaf_area_index", ("m2 m-2", "1")),
    "ndvi": ("normalized difference vegetation index", "normalized_difference_vegetation_index", ("1",)),
    "albedo": ("surface albedo", "surface_albedo", ("1",)),
    "co2": ("atmospheric CO2 mole fraction", "mole_fraction_of_carbon_dioxide_in_air", ("ppm", "1")),
    "burned_area": ("burned area fraction", "burned_area_fraction", ("1",)),
    "gpp": (
        "gross primary productivity",
        "gross_primary_productivity_of_biomass_expressed_as_carbon",
        ("g m-2 d-1", "kg m-2 s-1"),
    ),
    "nee": ("net ecosystem exchange of CO2", "surface_upward_mole_flux_of_carbon_dioxide", ("umol m-2 s-1",)),
    "reco": ("ecosystem respiration", None, ()),
    "nbe": ("net biosphere exchange", None, ()),
    "abgb": ("above- and below-ground biomass", None, ()),
    "et": ("evapotranspiration", None, ()),
    "ssm": ("surface soil moisture (degree of saturation)", None, ()),
}
# Sources (Station.source, the readers' SOURCE) -> what to cite
REFERENCES = {
    "ISMN": "Dorigo et al. (2021), The International Soil Moisture Network, HESS 25, 5749-5804, "
    "doi:10.5194/hess-25-5749-2021",
    "CARDAMOM-FluxVal v1.0": "Pastorello et al. (2020), The FLUXNET2015 dataset, Sci. Data 7, 225, "
    "doi:10.1038/s41597-020-0534-3",
    "ECOv002-calval-tables 1.13.0": "Pierrat et al. (2024), doi:10.1029/2024WR039404; AmeriFlux tower data (CC-BY-4.0)",
}
SOURCE_LINKS = {
    "ISMN": "https://ismn.earth/en/",
    "CARDAMOM-FluxVal v1.0": "https://fluxnet.org/data/fluxnet2015-dataset/",
    "ECOv002-calval-tables 1.13.0": "https://github.com/gregory-halverson/ECOv002-calval-tables",
}
PORTAL = "Land-surface hydrology data portal"
INSTRUMENTS = {  # what measured the values of each source, in GCMD Instrument Keywords where one exists
    "CARDAMOM-FluxVal v1.0": "EDDY CORRELATION DEVICES",
    "ECOv002-calval-tables 1.13.0": "EDDY CORRELATION DEVICES",
    "lehmannfa/water_storage_changes results/hydrology": "STREAM GAUGES (GRDC discharge); basin means of gridded "
    "products (GRACE KBR, reanalyses)",
}


def _describe(name: str, units: str) -> dict[str, str]:
    """long_name and (where the units admit it) standard_name of a stored variable's short name."""
    key = name if name in VARIABLES else name.split("_")[0]
    long_name, standard, admitted = VARIABLES.get(key, (name.replace("_", " "), None, ()))
    if key != name and name not in VARIABLES:  # e.g. et_gleam, tws_jpl: the product in the name
        long_name = f"{long_name} ({name})"
    attrs = {"long_name": long_name}
    if standard and units in admitted:
        attrs["standard_name"] = standard
    return attrs


def _split(variable: str) -> tuple[str, float | None, float | None]:
    """``(name, top, bottom)`` of a stored variable: ``sm_0.05_0.05`` -> ``("sm", 0.05, 0.05)``."""
    match = DEPTH_NAME.match(variable)
    if not match:
        return variable, None, None
    return match["base"], float(match["top"]), float(match["bottom"])


def _flag_words(flag: str) -> str:
    """A flag as a CF flag_meanings word: letters, digits and underscores (``D02,D04`` -> ``D02_D04``)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", flag.strip()).strip("_") or "none"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _quality_variable(name: str, wide: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]] | None:
    """The quality variable of ``name`` from its (timeseries, time) table of flags, or None.

    Flag codes (ISMN ``G``, ``D02,D04``; ``gap_filled``) become small integers with ``flag_values`` /
    ``flag_meanings`` (CF 3.5); numeric quality values (the FLUXNET QC fraction of good records of
    a daily value) stay numbers.
    """
    flags = wide.to_numpy(object)
    present = np.array([isinstance(f, str) and f != "" for f in flags.ravel()]).reshape(flags.shape)
    if not present.any():
        return None
    words = sorted({str(f) for f in flags[present]})
    if all(_is_number(w) for w in words):
        values = np.full(flags.shape, np.nan)
        values[present] = [float(f) for f in flags[present]]
        return (
            values,
            {
                "long_name": f"quality of {name} as the source gives it (fraction of good-quality records)",
                "standard_name": "quality_flag",
                "units": "1",
                "coverage_content_type": "qualityInformation",
            },
            {},
        )
    codes = np.full(flags.shape, -1, dtype="int16")
    index = {w: i for i, w in enumerate(words)}
    codes[present] = [index[str(f)] for f in flags[present]]
    dtype = "int8" if len(words) < 127 else "int16"
    meanings = [_flag_words(w) for w in words]
    return (
        codes.astype(dtype),
        {
            "long_name": f"quality flag of {name} as the source writes it",
            "standard_name": "quality_flag",
            "flag_values": np.arange(len(words), dtype=dtype),
            "flag_meanings": " ".join(meanings),
            "comment": "source codes: " + "; ".join(f"{i} = {w}" for i, w in enumerate(words)),
            "coverage_content_type": "qualityInformation",
        },
        {"dtype": dtype, "_FillValue": np.array(-1, dtype)[()]},
    )


def to_dataset(table: pd.DataFrame) -> xr.Dataset:
    """CF DSG ``timeSeries`` (orthogonal multidimensional, CF 9.3.1) of a :func:`frame`.

    One feature (instance of dimension ``timeseries``) per station and sensor depth: a variable
    stored with its depth in the name (ISMN ``sm_0.05_0.05``) becomes ``sm`` with the depth as a
    coordinate. Dims ``(timeseries, time)``.

    Returns
    -------
    xarray.Dataset
        * ``timeseries_id`` (``cf_role = timeseries_id``): ``network:code``, with ``:<top>-<bottom>m``
          for a sensor depth; ``station_id`` (``network:code``), ``station_name``;
        * ``lat`` / ``lon`` (timeseries) in degrees, NaN for stations without coordinates
          (basins); ``depth`` (timeseries, m, positive down, the middle of the sensor's layer) with
          ``depth_bnds`` (top, bottom) when a variable has a sensor depth, NaN for the others;
        * one float64 variable per observed quantity, in its units, with ``long_name`` and, where one
          applies to the stored units, the CF ``standard_name``; NaN where a feature has no value;
        * ``<name>_quality_flag`` (codes with ``flag_values`` / ``flag_meanings``) or
          ``<name>_quality`` (numbers) named by the variable's ``ancillary_variables``;
        * global ``featureType = "timeSeries"``, ``cdm_data_type = "Station"`` and, with depths,
          ``geospatial_vertical_min/max/units/positive``.

    References
    ----------
    CF Conventions 1.8, chapter 9 (discrete sampling geometries) and 3.5 (flags).
    """
    parts = [_split(str(v)) for v in table["variable"]]
    table = table.assign(
        station=table["network"] + ":" + table["code"],
        quantity=[p[0] for p in parts],
        top=[p[1] for p in parts],
        bottom=[p[2] for p in parts],
        time=pd.to_datetime(table["time"], utc=True).dt.tz_localize(None),
    )
    table["top"] = table["top"].astype("float64")
    table["bottom"] = table["bottom"].astype("float64")
    depth_label = (
        table["top"].map(lambda t: "" if pd.isna(t) else f"{t:g}")
        + "-"
        + table["bottom"].map(lambda b: "" if pd.isna(b) else f"{b:g}")
    )
    table["feature"] = np.where(table["top"].isna(), table["station"], table["station"] + ":" + depth_label + "m")
    features = table.drop_duplicates("feature").set_index("feature").sort_index()
    times = np.sort(table["time"].unique())
    ds = xr.Dataset(coords={"time": ("time", times)})
    dim = "timeseries"
    ds["timeseries_id"] = (
        dim,
        features.index.to_numpy(dtype=str),
        {"cf_role": "timeseries_id", "long_name": "time series (network:code, sensor depth)"},
    )
    ds["station_id"] = (dim, features["station"].to_numpy(dtype=str), {"long_name": "station (network:code)"})
    ds["station_name"] = (dim, features["name"].fillna("").to_numpy(dtype=str), {"long_name": "station name"})
    coords = {
        "lon": (dim, features["lon"].to_numpy(float), {"standard_name": "longitude", "units": "degrees_east"}),
        "lat": (dim, features["lat"].to_numpy(float), {"standard_name": "latitude", "units": "degrees_north"}),
    }
    if features["top"].notna().any():
        top, bottom = features["top"].to_numpy(float), features["bottom"].to_numpy(float)
        coords["depth"] = (
            dim,
            (top + bottom) / 2,
            {
                "standard_name": "depth",
                "long_name": "sensor depth below the surface (middle of the sensor's layer)",
                "units": "m",
                "positive": "down",
                "axis": "Z",
                "bounds": "depth_bnds",
            },
        )
        ds["depth_bnds"] = ((dim, "nv"), np.stack([top, bottom], axis=1))
        ds.attrs.update(
            geospatial_vertical_min=float(np.nanmin(coords["depth"][1])),
            geospatial_vertical_max=float(np.nanmax(coords["depth"][1])),
            geospatial_vertical_units="m",
            geospatial_vertical_positive="down",
        )
    ds = ds.assign_coords(coords)
    by_units = table.groupby("quantity")["units"].agg(lambda u: sorted(set(u)))
    for (name, units), rows in table.groupby(["quantity", "units"], sort=True):
        var = str(name) if len(by_units[name]) == 1 else f"{name}_{units}"
        var = re.sub(r"[^A-Za-z0-9_]", "_", var)
        values = rows.pivot_table(index="feature", columns="time", values="value", aggfunc="mean")
        values = values.reindex(index=features.index, columns=times)
        attrs = {
            **_describe(str(name), str(units)),
            "units": str(units),
            "coverage_content_type": "physicalMeasurement",
        }
        flags = (
            rows.drop_duplicates(["feature", "time"])
            .pivot(index="feature", columns="time", values="quality_flag")
            .reindex(index=features.index, columns=times)
        )
        quality = _quality_variable(var, flags)
        if quality is not None:
            data, qattrs, encoding = quality
            qname = f"{var}_quality_flag" if "flag_values" in qattrs else f"{var}_quality"
            ds[qname] = ((dim, "time"), data, qattrs)
            ds[qname].encoding = encoding
            attrs["ancillary_variables"] = qname
        ds[var] = ((dim, "time"), values.to_numpy(float), attrs)
    ds.attrs.update(featureType="timeSeries", cdm_data_type="Station")
    return ds


ISMN_FILE = re.compile(r"_[a-z]+_-?\d+\.\d+_-?\d+\.\d+_(?P<sensor>.+)_\d{8}_\d{8}\.stm$")
"""An ISMN data file name ends with ``<variable>_<from>_<to>_<sensor>_<start>_<end>.stm``."""


def _sensors(paths) -> list[str]:
    """The ISMN sensor names in the names of the files the observations were ingested from."""
    return sorted({m["sensor"] for p in paths if (m := ISMN_FILE.search(os.path.basename(str(p))))})


def acdd_attributes(
    table: pd.DataFrame, sources: list[str], *, modified: Any = None, sensors: list[str] | None = None
) -> dict[str, str]:
    """ACDD global attributes of a station file: the networks as creators, the portal as publisher.

    Observations are not the data of a catalogue record (the records describe the gridded
    products, for which observations are inputs and validation data, and no record links to a
    network), so station files do not take a record's attributes: the networks that measured the
    values are the creators (``creator_*``), the portal that serves them the publisher and
    processor, and the sources are cited in ``source`` / ``references``.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`frame`.
    sources : list of str
        ``Station.source`` of the stations (the readers' source names, e.g. ``ISMN``).
    modified : datetime, optional
        When the observations were last ingested (``date_modified``).
    sensors : list of str, optional
        Sensor names (ISMN's, :func:`_sensors`): ``instrument``.

    Returns
    -------
    dict of str to str
        Empty values left out: ``publisher_url`` and ``metadata_link`` need ``settings.PORTAL_URL``,
        ``publisher_email`` ``settings.PORTAL_CONTACT_EMAIL`` (neither is defined by default);
        ``product_version`` names the sources that carry a version (``CARDAMOM-FluxVal v1.0``).
    """
    portal_url = getattr(settings, "PORTAL_URL", "").rstrip("/")
    networks = sorted(set(table["network"]))
    quantities = [_split(str(v))[0] for v in table["variable"]]
    names = sorted(set(quantities))
    standard = sorted(
        {_describe(n, u).get("standard_name", "") for n, u in zip(quantities, table["units"], strict=True)} - {""}
    )
    first, last = (pd.Timestamp(t).strftime("%Y-%m-%d") for t in (table["time"].min(), table["time"].max()))
    n_stations = len(table[["network", "code"]].drop_duplicates())
    links = [SOURCE_LINKS[s] for s in sources if s in SOURCE_LINKS]
    plural = "s" if len(networks) > 1 else ""
    attrs = {
        "title": f"In situ observations of the {', '.join(networks)} network{plural}: {', '.join(names)}",
        "summary": f"{len(table)} observations of {', '.join(names)} at {n_stations} station(s) of {', '.join(networks)}, "
        f"{first} to {last}, as ingested by the {PORTAL} from {'; '.join(sources) or 'the networks'}: values, "
        "units and quality flags as the sources give them, sensor depths as a coordinate.",
        "keywords": ", ".join([*standard, *networks, "in situ observations"]),
        "keywords_vocabulary": "CF:CF Standard Name Table v93 (standard names); network names as the sources give them",
        "standard_name_vocabulary": "CF Standard Name Table v93",
        "id": "observations_" + "_".join(networks) + f"_{first}_{last}",
        "naming_authority": "org.hydroportal",
        "source": "; ".join(sources),
        "references": "; ".join(REFERENCES.get(s, s) for s in sources),
        "platform": "In Situ Land-based Platforms",
        "platform_vocabulary": "GCMD Platform Keywords",
        "instrument": ", ".join(sensors or []) or "; ".join(INSTRUMENTS[s] for s in sources if s in INSTRUMENTS),
        "instrument_vocabulary": "ISMN sensor names (as in the names of ISMN data files)"
        if sensors
        else ("GCMD Instrument Keywords" if any(s in INSTRUMENTS for s in sources) else ""),
        "processing_level": "in situ observations as the source networks publish them",
        "creator_name": ", ".join(networks),
        "creator_type": "group",
        "creator_institution": "; ".join(sources) or ", ".join(networks),
        "creator_url": links[0] if links else portal_url,
        "contributor_name": PORTAL,
        "contributor_role": "processor",
        "institution": PORTAL,
        "project": PORTAL,
        "program": f"{PORTAL}: in situ observations behind the regenerated products' training and validation",
        # scattered stations, not a grid (left out when no station has coordinates: basins)
        "geospatial_lat_resolution": "point (stations at their locations, no grid)"
        if table["lat"].notna().any()
        else "",
        "geospatial_lon_resolution": "point (stations at their locations, no grid)"
        if table["lat"].notna().any()
        else "",
        "publisher_name": PORTAL,
        "publisher_type": "institution",
        "publisher_institution": PORTAL,
        "publisher_url": portal_url,
        "publisher_email": getattr(settings, "PORTAL_CONTACT_EMAIL", ""),
        "product_version": "; ".join(s for s in sources if re.search(r"\d", s)),
        "metadata_link": f"{portal_url}/api/docs/" if portal_url else (links[0] if links else ""),
        "license": "the terms of use of the source networks (see source and references)",
        "acknowledgement": f"Observations of the {', '.join(networks)} network{plural}; cite the sources in references.",
        "date_issued": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "date_modified": pd.Timestamp(modified).strftime("%Y-%m-%dT%H:%M:%SZ") if modified is not None else "",
    }
    return {k: v for k, v in attrs.items() if v}


def _value_text(table: pd.DataFrame) -> pd.Series:
    """Values at the precision of the data: a variable whose values are all float32 numbers (read
    from float32 sources) as the shortest float32 text, others as the shortest float64 text."""
    text = pd.Series("", index=table.index, dtype=object)
    for _, rows in table.groupby("variable", sort=False):
        values = rows["value"].to_numpy(float)
        single = values.astype("float32")
        exact = np.isfinite(values) & (single.astype("float64") == values)
        text[rows.index] = single.astype(str) if exact[np.isfinite(values)].all() else values.astype(str)
    return text.where(table["value"].notna(), "")


def max_rows() -> int:
    """The most rows one request is answered: ``STATION_SUBSET_SYNC_MAX_ROWS`` (at most ``STATION_SUBSET_MAX_ROWS``)."""
    return min(settings.STATION_SUBSET_SYNC_MAX_ROWS, settings.STATION_SUBSET_MAX_ROWS)


def check_size(query: StationQuery) -> int:
    """The request's row count, if it may be answered by one request.

    Raises
    ------
    TooManyRows
        Above :func:`max_rows` (field ``bbox``): the message says how to split it (period,
        network, station) and gives the rows per network.
    """
    n = count(query)
    limit = max_rows()
    if n > limit:
        per_network = _observations(query).values("station__network").annotate(n=Count("id")).order_by("-n")[:10]
        networks = ", ".join(f"{row['station__network']}: {row['n']}" for row in per_network)
        raise TooManyRows(
            "bbox",
            f"{n} observations, above the {limit} answered by one request: narrow the box, "
            "the period, the networks or the variables, or split it into requests of fewer "
            f"rows each, by period (time=start/end), by network (network=...) or by station "
            f"(station=code,code); rows per network: {networks}",
        )
    return n


def write(query: StationQuery, path: Path) -> int:
    """Write the request's observations at ``path`` in ``query.format``; returns the row count.

    Raises
    ------
    TooManyRows
        More than :func:`max_rows` rows (field ``bbox``, saying how to split the request).
    portal.subsets.core.SubsetError
        Nothing selected.
    """
    check_size(query)
    table = frame(query)
    if query.format == "netcdf":
        sources = sorted(
            {
                s
                for s in _stations(query)
                .filter(code__in=set(table["code"]))
                .values_list("source", flat=True)
                .distinct()
                if s
            }
        )
        modified = _observations(query).aggregate(latest=Max("ingest_run__finished_at"))["latest"]
        files = _observations(query).values_list("ingest_run__source_path", flat=True).distinct()
        attrs = acdd_attributes(table, sources, modified=modified, sensors=_sensors(f for f in files if f))
        writers.to_netcdf(to_dataset(table), path, attrs=attrs)
        return len(table)
    with atomic_path(path) as tmp:
        if query.format == "csv":
            out = table.assign(
                time=pd.to_datetime(table["time"], utc=True).map(lambda t: t.isoformat()), value=_value_text(table)
            )
            out.to_csv(tmp, index=False, na_rep="")
        else:
            stations = []
            for (network, code), rows in table.groupby(["network", "code"], sort=False):
                first = rows.iloc[0]
                stations.append(
                    {
                        "network": network,
                        "code": code,
                        "name": first["name"],
                        "lon": None if pd.isna(first["lon"]) else first["lon"],
                        "lat": None if pd.isna(first["lat"]) else first["lat"],
                        "series": {
                            str(v): {
                                "units": r["units"].iloc[0],
                                "time": [t.isoformat() for t in pd.to_datetime(r["time"], utc=True)],
                                "value": r["value"].tolist(),
                            }
                            for v, r in rows.groupby("variable")
                        },
                    }
                )
            tmp.write_text(json.dumps({"type": "StationCollection", "stations": stations}))
    return len(table)


def write_temporary(query: StationQuery) -> tuple[Path, str, str]:
    """:func:`write` to a temporary file the caller streams and deletes: ``(path, filename, media type)``."""
    suffix, media_type = FORMATS[query.format]
    folder = storage.work_root() / "tmp"
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
