"""Reader for GLDAS Noah 0.25 degree 3-hourly files: NetCDF-4 (GLDAS-2.x) and GRIB-1 (GLDAS-1) (no Django).

Both formats come back on the same global 0.25 degree grid (1440 x 600 cells, centres -179.875 ..
179.875 E and -59.875 .. 89.875 N, ``lat`` ascending as stored) with GLDAS-2 variable names, CF
standard names and UDUNITS units (:data:`VARIABLES`). Ocean and Antarctica are NaN.

NetCDF-4 (``GLDAS_NOAH025_3H.A20160101.0300.021.nc4``): variables keep their names; ``time`` is the
end of the 3-hour interval (``time_bnds`` is kept as a coordinate).

GRIB-1 (``GLDAS_NOAH025SUBP_3H.A2015001.0600.001.*.grb``): parameters are identified by their PDS
number (``indicatorOfParameter``), not by ecCodes' short names: the files use GLDAS's own parameter
table (centre 221, table 1), which ecCodes reads as the WMO table, so some short names are right and
some are wrong or missing. :data:`GRIB_PARAMETERS` and :data:`GRIB_LAYERED` follow the GLDAS
model-output table; the short names ecCodes 2.41 gives are listed for reference:

=====  ==================  ==========================  =======================================
PDS    ecCodes shortName   GLDAS name                  note
=====  ==================  ==========================  =======================================
1      sp                  Psurf_f_inst                Pa
11     t                   Tair_f_inst                 K
32     ws                  Wind_f_inst                 m s-1
51     q                   Qair_f_inst                 kg kg-1
65     sf (wrong)          SWE_inst                    kg m-2
85     st                  SoilTMP<layer>_inst         K, level type 112
86     sm (wrong: kg m-3)  SoilMoi<layer>_inst         kg m-2, level type 112
131    unknown             Snowf_tavg                  kg m-2 s-1
132    unknown             Rainf_tavg                  rain only (GLDAS-1 "Rainf")
138    unknown             AvgSurfT_inst               K
162    unknown             Rainf_f_tavg                total precipitation forcing (LIS)
204    unknown             SWdown_f_tavg               W m-2
205    unknown             LWdown_f_tavg               W m-2
=====  ==================  ==========================  =======================================

Soil layers (level type 112) are identified by their (top, bottom) level octets
:data:`LAYER_CODES`: standard LIS GRIB output codes the depths in cm, (0, 10) ... (100, 200); the
GLDAS-1 "SUBP" files code (0, 4), (0, 3), (0, 2), (0, 1) for 0-10, 10-40, 40-100, 100-200 cm
(checked on the sample files: between 00 and 12 UTC the (0, 4) field changes by 3.3 K on average,
the (0, 1) field by 0.04 K; the TUW-GEO ``gldas`` reader likewise takes the first message as
layer 1). Other PDS numbers are left out and listed in ``ds.attrs["skipped_grib_parameters"]`` --
among them 57 (evapotranspiration), whose GLDAS-1 3-hourly units (kg m-2 per 3 h or kg m-2 s-1)
the documentation gives inconsistently.
``time`` is the validity time.

References
----------
Rodell, M., et al. (2004): The Global Land Data Assimilation System. Bull. Amer. Meteor. Soc. 85,
381-394, doi:10.1175/BAMS-85-3-381.
Beaudoing, H., Rodell, M., NASA/GSFC/HSL: GLDAS Noah Land Surface Model L4 3 hourly 0.25 x 0.25 degree
V2.1, GES DISC, doi:10.5067/E7TYRXPJKWOQ; README for GLDAS-2 products; GLDAS model output table
https://ldas.gsfc.nasa.gov/gldas/model-output (PDS numbers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .base import ReaderError
from .grib import check_grib_grids, grib_axes, grib_field, grib_messages
from .gridtools import file_kind, finalise, lazy, open_netcdf
from .units import check_units

READER_VERSION = "1.0"
FILE_PATTERNS = ("GLDAS_NOAH025*.nc4", "GLDAS_NOAH025*.grb")

LAYERS = {"0_10cm": "0-10 cm", "10_40cm": "10-40 cm", "40_100cm": "40-100 cm", "100_200cm": "100-200 cm"}
# GLDAS-2 name -> (CF standard name, UDUNITS units, long name)
VARIABLES = {
    **{
        f"SoilMoi{k}_inst": ("mass_content_of_water_in_soil_layer", "kg m-2", f"Soil moisture {v}")
        for k, v in LAYERS.items()
    },
    **{f"SoilTMP{k}_inst": ("soil_temperature", "K", f"Soil temperature {v}") for k, v in LAYERS.items()},
    "Tair_f_inst": ("air_temperature", "K", "Air temperature"),
    "Qair_f_inst": ("specific_humidity", "kg kg-1", "Specific humidity"),
    "Psurf_f_inst": ("surface_air_pressure", "Pa", "Surface pressure"),
    "Wind_f_inst": ("wind_speed", "m s-1", "Wind speed"),
    "SWdown_f_tavg": ("surface_downwelling_shortwave_flux_in_air", "W m-2", "Downward shortwave radiation"),
    "LWdown_f_tavg": ("surface_downwelling_longwave_flux_in_air", "W m-2", "Downward longwave radiation"),
    "Rainf_f_tavg": ("precipitation_flux", "kg m-2 s-1", "Total precipitation rate"),
    "Rainf_tavg": ("rainfall_flux", "kg m-2 s-1", "Rain precipitation rate"),
    "Snowf_tavg": ("snowfall_flux", "kg m-2 s-1", "Snow precipitation rate"),
    "Evap_tavg": ("water_evapotranspiration_flux", "kg m-2 s-1", "Evapotranspiration"),  # NetCDF-4 only
    "SWE_inst": ("surface_snow_amount", "kg m-2", "Snow water equivalent"),
    "AvgSurfT_inst": ("surface_temperature", "K", "Average surface skin temperature"),
}
GRIB_PARAMETERS = {
    1: "Psurf_f_inst",
    11: "Tair_f_inst",
    32: "Wind_f_inst",
    51: "Qair_f_inst",
    65: "SWE_inst",
    131: "Snowf_tavg",
    132: "Rainf_tavg",
    138: "AvgSurfT_inst",
    162: "Rainf_f_tavg",
    204: "SWdown_f_tavg",
    205: "LWdown_f_tavg",
}
GRIB_LAYERED = {85: "SoilTMP", 86: "SoilMoi"}
LAYER_CODES = {
    (0, 10): "0_10cm",
    (10, 40): "10_40cm",
    (40, 100): "40_100cm",
    (100, 200): "100_200cm",
    (0, 4): "0_10cm",
    (0, 3): "10_40cm",
    (0, 2): "40_100cm",
    (0, 1): "100_200cm",
}
GRID_NAME = "GLDAS 0.25 degree global grid, 1440 x 600 cells from (-179.875 E, -59.875 N)"
GRIB_GRID = {
    "Ni": 1440,
    "Nj": 600,
    "latitudeOfFirstGridPointInDegrees": -59.875,
    "latitudeOfLastGridPointInDegrees": 89.875,
    "longitudeOfFirstGridPointInDegrees": -179.875,
    "longitudeOfLastGridPointInDegrees": 179.875,
    "iDirectionIncrementInDegrees": 0.25,
    "jDirectionIncrementInDegrees": 0.25,
    "jScansPositively": 1,
    "iScansNegatively": 0,
}
_GRIB_KEYS = (
    "editionNumber",
    "indicatorOfParameter",
    "indicatorOfTypeOfLevel",
    "topLevel",
    "bottomLevel",
    "validityDate",
    "validityTime",
)


def open_grid(path) -> xr.Dataset:
    """Open one GLDAS Noah 0.25 degree file (NetCDF-4 or GRIB-1), lazily.

    Parameters
    ----------
    path : str or os.PathLike
        ``*.nc4`` (GLDAS-2.x) or GRIB-1 (GLDAS-1 ``*.grb``) file.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, lat, lon)`` = (n, 600, 1440); ``lat`` (float, degrees_north, ascending,
        -59.875..89.875), ``lon`` (degrees_east, -179.875..179.875), ``time`` (datetime64[ns]).
        Variables float32 with GLDAS-2 names, e.g. ``SoilMoi0_10cm_inst`` (kg m-2,
        mass_content_of_water_in_soil_layer), ``SoilTMP0_10cm_inst`` (K, soil_temperature),
        ``Tair_f_inst`` (K), ``SWdown_f_tavg`` (W m-2), ``Rainf_f_tavg`` (kg m-2 s-1), ``Qair_f_inst``
        (kg kg-1), ``Psurf_f_inst`` (Pa), ``Wind_f_inst`` (m s-1); NaN over ocean.

    Raises
    ------
    ReaderError
        Empty/truncated file, a grid other than :data:`GRID_NAME`, inconsistent GRIB grids, units
        that differ from :data:`VARIABLES`, duplicate or missing GRIB fields.

    References
    ----------
    Rodell et al. (2004), doi:10.1175/BAMS-85-3-381; GLDAS-2 README (GES DISC).
    """
    if file_kind(path) == "grib":
        return _open_grib(path)
    return _open_netcdf(path)


def _annotate(var: xr.DataArray, name: str, path) -> None:
    standard_name, units, long_name = VARIABLES[name]
    found = var.attrs.get("units", units)
    if check_units(path, name, found) != units:
        raise ReaderError(path, f"units {found!r}; expected {units!r} for GLDAS {name}", field=f"{name}.units")
    var.attrs.update(standard_name=standard_name, units=units, long_name=long_name)
    layer = next((v for k, v in LAYERS.items() if k in name), None)
    if layer:
        var.attrs["soil_layer"] = layer


def _open_netcdf(path) -> xr.Dataset:
    ds = open_netcdf(path)
    for name in ("lat", "lon"):
        if name not in ds.coords:
            raise ReaderError(path, f"expected a {name!r} coordinate ({GRID_NAME})", field=name)
    lat, lon = ds["lat"].values, ds["lon"].values
    ok = (
        lat.size == 600
        and lon.size == 1440
        and np.allclose(lat[[0, -1]], [-59.875, 89.875])
        and np.allclose(lon[[0, -1]], [-179.875, 179.875])
    )
    if not ok:
        raise ReaderError(
            path,
            f"grid of {lon.size} x {lat.size} cells from ({lon[0]:g} E, {lat[0]:g} N); expected the {GRID_NAME}",
            field="lat",
        )
    if "time_bnds" in ds.data_vars:
        ds = ds.set_coords("time_bnds")
    for key in ds.data_vars:
        if key in VARIABLES:
            _annotate(ds[key], str(key), path)
    return finalise(ds, path, reader=f"gldas {READER_VERSION}")


def _grib_name(msg: dict) -> str | None:
    pds = msg["indicatorOfParameter"]
    if pds in GRIB_LAYERED:
        layer = LAYER_CODES.get((msg["topLevel"], msg["bottomLevel"]))
        return f"{GRIB_LAYERED[pds]}{layer}_inst" if layer else None
    return GRIB_PARAMETERS.get(pds)


def _open_grib(path) -> xr.Dataset:
    messages = grib_messages(path, keys=_GRIB_KEYS)
    grid = check_grib_grids(path, messages, GRIB_GRID, GRID_NAME)
    if any(m["editionNumber"] != 1 for m in messages):
        raise ReaderError(path, "expected GRIB edition 1 (GLDAS-1 PDS parameter numbers)", field="editionNumber")
    lat, lon = grib_axes(grid)
    fields: dict[str, dict[pd.Timestamp, dict]] = {}
    skipped = set()
    for m in messages:
        name = _grib_name(m)
        if name is None:
            skipped.add(f"{m['indicatorOfParameter']}:{m['topLevel']}-{m['bottomLevel']}")
            continue
        t = pd.Timestamp(f"{m['validityDate']:08d}") + pd.Timedelta(
            hours=m["validityTime"] // 100, minutes=m["validityTime"] % 100
        )
        if t in fields.setdefault(name, {}):
            raise ReaderError(
                path, f"message {m['number']} repeats {name} at {t}; expected one field per time", field=name
            )
        fields[name][t] = m
    if not fields:
        raise ReaderError(
            path,
            f"no known GLDAS parameter (PDS numbers {sorted(GRIB_PARAMETERS)} or soil layers "
            f"{sorted(GRIB_LAYERED)}); found {sorted(skipped)}",
            field="indicatorOfParameter",
        )
    times = sorted(set().union(*fields.values()))
    shape = (len(lat), len(lon))
    data_vars = {}
    for name, by_time in sorted(fields.items()):
        missing = [t for t in times if t not in by_time]
        if missing:
            raise ReaderError(
                path, f"no {name} field at {missing[0]}; expected every parameter at every time", field=name
            )
        msgs = [by_time[t] for t in times]

        def read(key, msgs=msgs):
            sel = range(len(msgs))[key[0]]
            blocks = [
                grib_field(path, msgs[i]["offset"], msgs[i]["totalLength"], shape)[key[1:]]
                for i in ([sel] if isinstance(sel, int) else sel)
            ]
            if isinstance(sel, int):
                return blocks[0]
            return np.stack(blocks) if blocks else np.empty((0, *np.empty(shape)[key[1:]].shape), np.float32)

        var = xr.Variable(
            ("time", "lat", "lon"),
            lazy((len(times), *shape), np.float32, read),
            {
                "grib_parameter": int(msgs[0]["indicatorOfParameter"]),
                "grib_level": f"{msgs[0]['topLevel']}-{msgs[0]['bottomLevel']}",
            },
        )
        data_vars[name] = var
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", pd.DatetimeIndex(times).values.astype("datetime64[ns]")),
            "lat": ("lat", lat),
            "lon": ("lon", lon),
        },
    )
    for key in ds.data_vars:
        _annotate(ds[key], str(key), path)
    if skipped:
        ds.attrs["skipped_grib_parameters"] = ", ".join(sorted(skipped))
    ds.attrs.update(title="GLDAS Noah 0.25 degree (GRIB-1)", institution="NASA GSFC")
    return finalise(ds, path, reader=f"gldas {READER_VERSION}")
