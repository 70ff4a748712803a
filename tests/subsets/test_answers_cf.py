"""Every NetCDF answer cut from a real published version passes the standard checkers, through every front door.

The versions are real small publishes (``tests/products/test_cf_published.py`` publishes them, or
reuses those already published in the session): ``sm_1km`` (soil moisture packed as int16 × 0.001)
and ``freeze_thaw`` (flag variables). Each answer (API subset, point and area; EDR cube, position
and area; a job's result) goes through cfchecker (0 errors), the IOOS ``cf:1.8`` suite (100 %) and
``acdd:1.3`` (90 % at least), and keeps the packing and flags of the published file.
"""

from __future__ import annotations

import netCDF4
import pytest

from tests.cfcheck import check
from tests.products.test_cf_published import published  # noqa: F401 - fixture: a published version per product

GRIDS = {"sm_1km": "sm_coarse_real.nc", "freeze_thaw": "freeze_thaw_twin.nc"}


def _box(path) -> str:
    with netCDF4.Dataset(path) as nc:
        lat, lon = nc["lat"][:], nc["lon"][:]
    i, j = len(lat) // 2, len(lon) // 2
    south, north = sorted((float(lat[i - 2]), float(lat[i + 2])))  # grids may run north to south
    return f"{lon[j - 3]:.4f},{south:.4f},{lon[j + 3]:.4f},{north:.4f}", float(lon[j]), float(lat[i])


def _assert_clean(path, what: str):
    report = check(path)
    assert report.cf_errors == [], f"{what}\n{report.explain()}"
    assert report.score("cf:1.8") == 1.0, f"{what}\n{report.explain()}"
    assert report.score("acdd:1.3") >= 0.9, f"{what}\n{report.explain()}"


def _save(response, tmp_path, name):
    assert response.status_code == 200, response.content[:500] if not response.streaming else name
    data = b"".join(response.streaming_content) if response.streaming else response.content
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


@pytest.mark.parametrize("published", list(GRIDS), indirect=True)
@pytest.mark.django_db
def test_every_netcdf_answer_passes_the_checkers_and_keeps_the_packing(client, published, tmp_path, settings):  # noqa: F811
    from pathlib import Path

    from portal.subsets import services

    product, version = published
    name = GRIDS[product]
    source = Path(settings.DATA_ROOT) / version.files.get(name=name).path
    bbox, lon, lat = _box(source)
    api = f"/api/datasets/{version.dataset_id}"
    edr = f"/api/edr/collections/{version.dataset_id}.{Path(name).stem}"
    if version.files.filter(name__endswith=".nc").count() == 1:
        edr = f"/api/edr/collections/{version.dataset_id}"
    west, south, east, north = (float(v) for v in bbox.split(","))
    polygon = f"POLYGON(({west} {south},{east} {south},{east} {north},{west} {south}))"
    answers = {
        "subset": client.get(f"{api}/subset/", {"file": name, "bbox": bbox, "f": "netcdf"}),
        "subset (polygon)": client.get(f"{api}/subset/", {"file": name, "polygon": polygon, "f": "netcdf"}),
        "point": client.get(f"{api}/point/", {"file": name, "lon": lon, "lat": lat, "f": "netcdf"}),
        "area": client.get(f"{api}/area/", {"file": name, "bbox": bbox, "f": "netcdf"}),
        "EDR cube": client.get(f"{edr}/cube", {"bbox": bbox, "f": "NetCDF"}),
        "EDR position": client.get(f"{edr}/position", {"coords": f"POINT({lon} {lat})", "f": "NetCDF"}),
        "EDR area": client.get(f"{edr}/area", {"coords": polygon, "f": "NetCDF"}),
    }
    with netCDF4.Dataset(source) as nc:
        published_vars = {
            v: (nc[v].dtype, {k: nc[v].getncattr(k) for k in nc[v].ncattrs()})
            for v in nc.variables
            if nc[v].dimensions == ("time", "lat", "lon")
        }
    for what, response in answers.items():
        path = _save(response, tmp_path, f"{what.replace(' ', '_').replace('(', '').replace(')', '')}.nc")
        _assert_clean(path, what)
        if what.startswith(("subset", "EDR cube", "EDR area")):
            with netCDF4.Dataset(path) as nc:
                for var, (dtype, attrs) in published_vars.items():
                    assert nc[var].dtype == dtype, (what, var)  # packed stays packed, flags stay flags
                    for key in ("scale_factor", "add_offset", "_FillValue", "flag_values", "valid_range"):
                        if key in attrs:
                            assert str(nc[var].getncattr(key)) == str(attrs[key]), (what, var, key)
                    assert nc[var].grid_mapping in nc.variables and nc["lat"].bounds in nc.variables
    # a job's result: the same writer, run by the job path
    query = services.params_module.parse_api("subset", {"file": name, "bbox": bbox, "f": "netcdf"})
    f = services.gridded_file(version, name)
    job, _ = services.submit_job(f, query, services.plan(f, query))
    done = services.run_job(str(job.id), job.attempt)
    assert done.status == "done", done.error
    _assert_clean(services.job_file(done), "job result")


def _copy(source_url: str, target) -> None:
    """What ``nccopy URL file.nc`` does: every dimension, variable (raw, packed values) and attribute verbatim."""
    with netCDF4.Dataset(source_url) as src, netCDF4.Dataset(target, "w", format="NETCDF4") as dst:
        src.set_auto_maskandscale(False)
        dst.setncatts({k: src.getncattr(k) for k in src.ncattrs()})
        for name, dim in src.dimensions.items():
            dst.createDimension(name, len(dim))
        for name, var in src.variables.items():
            fill = var.getncattr("_FillValue") if "_FillValue" in var.ncattrs() else None
            out = dst.createVariable(name, var.dtype, var.dimensions, fill_value=fill)
            out.set_auto_maskandscale(False)
            out.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
            out[...] = var[...]


@pytest.mark.parametrize("published", ["sm_1km"], indirect=True)
@pytest.mark.django_db
def test_a_copy_of_a_published_grid_read_over_opendap_passes_the_checkers(portal_url, published, tmp_path):  # noqa: F811
    """An OPeNDAP-backed download (netCDF-C's DAP2 client, as nccopy does) keeps the file's CF and ACDD metadata."""
    _, version = published
    name = GRIDS["sm_1km"]
    target = tmp_path / "over_opendap.nc"
    _copy(f"{portal_url}/opendap/{version.dataset_id}/v{version.number}/{name}", target)
    _assert_clean(target, "OPeNDAP copy")
