"""Reader for ERA5 reanalysis: GRIB and NetCDF grids, and NetCDF point series (no Django).

Grids (GRIB through cfgrib/ecCodes, NetCDF as downloaded from the CDS): ``latitude``/``longitude``
become ``lat``/``lon``; ERA5's north-to-south latitudes are reversed to ascending and 0..360
longitudes are rotated to -180..180 (lazily). ``time`` is the validity time (``valid_time`` of
cfgrib and of the 2024+ CDS NetCDF). ERA5 short names are kept; :data:`CF_NAMES` adds CF standard
names and checks units (ECMWF spellings such as ``m**3 m**-3`` and ``(0 - 1)`` are normalised to
``m3 m-3`` and ``1``; ``lsm`` is a land *fraction*, so its ``land_binary_mask`` becomes
``land_area_fraction``). Fields with a forecast ``step`` dimension (accumulations in GRIB) are
rejected rather than guessed.

Point series (NetCDF with a ``location`` dimension, e.g. xclim-testdata's
``daily_surface_cancities_1990-1993.nc``: dims ``location x time``, ``lat``/``lon`` along
``location``): returned as they are, with the same CF checks and ``featureType = "timeSeries"``.
Two metadata slips of that file are corrected and documented in the variable's ``comment``:
``hurs`` has empty units although its values are fractions (0-1), so they become ``1``; ``rlds``
(downwelling longwave) is labelled ``surface_net_downward_longwave_flux`` and becomes
``surface_downwelling_longwave_flux_in_air``.

References
----------
Hersbach, H., et al. (2020): The ERA5 global reanalysis. Q. J. R. Meteorol. Soc. 146, 1999-2049,
doi:10.1002/qj.3803.
ERA5 data documentation (ECMWF Confluence): parameter short names and units.
"""

from __future__ import annotations

import xarray as xr

from .base import ReaderError
from .grib import check_grib_grids, grib_messages
from .gridtools import file_kind, finalise, open_netcdf
from .units import check_units

READER_VERSION = "1.0"
FILE_PATTERNS = ("*era5*.grib", "*era5*.grb", "*ERA5*.grib", "*era5*.nc", "*ERA5*.nc", "daily_surface_cancities_*.nc")

# ERA5 short name -> (CF standard name, UDUNITS units)
CF_NAMES = {
    "t2m": ("air_temperature", "K"),
    "d2m": ("dew_point_temperature", "K"),
    "skt": ("surface_temperature", "K"),
    "sp": ("surface_air_pressure", "Pa"),
    "msl": ("air_pressure_at_mean_sea_level", "Pa"),
    "u10": ("eastward_wind", "m s-1"),
    "v10": ("northward_wind", "m s-1"),
    "tp": ("lwe_thickness_of_precipitation_amount", "m"),
    "e": ("lwe_thickness_of_water_evaporation_amount", "m"),
    "sd": ("lwe_thickness_of_surface_snow_amount", "m"),
    "lsm": ("land_area_fraction", "1"),
    **{f"swvl{i}": ("volume_fraction_of_condensed_water_in_soil", "m3 m-3") for i in range(1, 5)},
    **{f"stl{i}": ("soil_temperature", "K") for i in range(1, 5)},
}


def open_grid(path) -> xr.Dataset:
    """Open an ERA5 GRIB or NetCDF file (grid or point series), lazily.

    Parameters
    ----------
    path : str or os.PathLike
        ERA5 GRIB (edition 1 or 2, regular lat/lon), ERA5 NetCDF grid, or NetCDF point series with
        a ``location`` dimension.

    Returns
    -------
    xarray.Dataset
        Grid: dims ``(time, lat, lon)``, ``lat`` ascending (degrees_north), ``lon`` in [-180, 180)
        ascending, ``time`` datetime64[ns] (validity time); variables with ERA5 short names, e.g.
        ``t2m`` (float32, K, air_temperature), ``swvl1`` (float64, m3 m-3,
        volume_fraction_of_condensed_water_in_soil), ``lsm`` (1, land_area_fraction).
        Point series: dims ``(location, time)`` as in the file, ``lat``/``lon`` (location),
        ``attrs["featureType"] == "timeSeries"``.

    Raises
    ------
    ReaderError
        Empty/truncated/unreadable file, GRIB messages on different grids, a forecast ``step``
        dimension, coordinates out of range or not monotonic, unknown units or units that differ
        from :data:`CF_NAMES`.

    References
    ----------
    Hersbach et al. (2020), doi:10.1002/qj.3803.
    """
    if file_kind(path) == "grib":
        ds = _open_grib(path)
    else:
        ds = open_netcdf(path)
        if "location" in ds.dims:
            return _points(ds, path)
    if "time" not in ds.coords and "valid_time" in ds.coords:
        ds = ds.rename({"valid_time": "time"})
    elif "valid_time" in ds.coords:
        if ds["valid_time"].dims != ds["time"].dims:
            raise ReaderError(
                path,
                "expected one validity time per field, found a forecast step dimension "
                f"(dims {ds['valid_time'].dims}); accumulated fields are not supported",
                field="step",
            )
        ds = ds.assign_coords(time=(ds["time"].dims, ds["valid_time"].values)).drop_vars("valid_time")
    keep = {"time", "lat", "lon", "latitude", "longitude"}
    ds = ds.drop_vars([c for c in ds.coords if c not in keep and ds[c].ndim == 0])
    for name, var in ds.data_vars.items():
        _annotate(var, str(name), path)
    return finalise(ds, path, reader=f"era5 {READER_VERSION}")


def _annotate(var: xr.DataArray, name: str, path) -> None:
    attrs = {k: v for k, v in var.attrs.items() if not k.startswith("GRIB_")}
    if "GRIB_shortName" in var.attrs:
        attrs.update(grib_short_name=var.attrs["GRIB_shortName"], grib_param_id=int(var.attrs["GRIB_paramId"]))
    if attrs.get("standard_name") == "unknown":
        del attrs["standard_name"]
    if name in CF_NAMES:
        standard_name, units = CF_NAMES[name]
        found = attrs.get("units")
        if check_units(path, name, found) != units:
            raise ReaderError(path, f"units {found!r}; expected {units!r} for ERA5 {name}", field=f"{name}.units")
        attrs.update(standard_name=standard_name, units=units)
    var.attrs = attrs


def _open_grib(path) -> xr.Dataset:
    check_grib_grids(path, grib_messages(path))
    try:
        ds = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}, decode_timedelta=True)
    except Exception as exc:  # cfgrib raises its own DatasetBuildError, KeyError, ValueError ...
        raise ReaderError(
            path,
            f"cfgrib cannot build one dataset ({type(exc).__name__}: {exc}); expected fields "
            "on one level type and one grid",
        ) from None
    if "step" in ds.dims:
        raise ReaderError(
            path,
            "expected one validity time per field, found a forecast step dimension; "
            "accumulated fields are not supported",
            field="step",
        )
    return ds


def _points(ds: xr.Dataset, path) -> xr.Dataset:
    for name, var in ds.data_vars.items():
        if var.attrs.get("units", None) == "" and var.attrs.get("standard_name") == "relative_humidity":
            var.attrs.update(units="1", comment="units were empty in the file; values are fractions (0-1)")
        if name == "rlds" and var.attrs.get("standard_name") == "surface_net_downward_longwave_flux":
            var.attrs.update(
                standard_name="surface_downwelling_longwave_flux_in_air",
                comment="standard_name corrected from surface_net_downward_longwave_flux (ERA5 strd)",
            )
    ds.attrs["featureType"] = "timeSeries"
    if "location" in ds.coords:
        ds["location"].attrs["cf_role"] = "timeseries_id"
    return finalise(ds, path, reader=f"era5 {READER_VERSION}")
