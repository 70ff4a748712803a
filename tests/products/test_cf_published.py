"""Every NetCDF file a published version holds passes the standard checkers users' tools apply.

For each of the five products a small real version is generated through ``execute_run`` (or one
already published in this session with the same parameters is reused), and :func:`tests.cfcheck.check`
runs on every ``.nc`` file of it: cfchecker without errors and the IOOS ``cf:1.8`` suite at 100 %;
``acdd:1.3`` at :data:`ACDD_TARGET` (90 %), the water storage files at :data:`TWS_FLOOR` (see there).
Grids also carry the ``crs`` grid mapping (EPSG:4326 WKT) and cell bounds; every file the record's
discovery metadata.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import pytest
from django.conf import settings

from tests.cfcheck import check
from tests.products.test_freeze_thaw import PIPELINE_PARAMS as FREEZE_THAW_PARAMS
from tests.products.test_sm_1km import PARAMS as SM_1KM_PARAMS
from tests.products.test_sm_mlda import PARAMS as SM_MLDA_PARAMS
from tests.products.test_sm_mlda import real_inputs  # noqa: F401 - fixture: ISMN stations and an ERS cell subset
from tests.products.test_tws_rec import BASINS, TWS_FILES
from tests.products.test_tws_rec import PARAMS as TWS_REC_PARAMS

# compliance-checker 6.1 warns about its own API on every run (third-party deprecation, not ours)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Passing the dataset to every single check is deprecated:DeprecationWarning"
)

PARAMS = {
    "sm_mlda": SM_MLDA_PARAMS,
    "freeze_thaw": FREEZE_THAW_PARAMS,
    "sm_1km": SM_1KM_PARAMS,
    "tws_rec": TWS_REC_PARAMS,
}


def _inputs(product: str, request, shared_data) -> None:
    """Ingest what ``product``'s pipeline reads beyond the session setup (idempotent)."""
    from ingestion.services import ingest

    if product == "sm_mlda":
        request.getfixturevalue("real_inputs")
    elif product == "sm_1km":
        assert not ingest("ismn", shared_data / "ismn_testdata").failed
    elif product == "tws_rec":
        folder = shared_data / "lehmannfa_basin_water_budget"
        names = (*TWS_FILES, "R_ERA5_Land_monthly.csv", "ET_ERA5_Land_monthly.csv", "P_ERA5_Land_monthly.csv")
        assert not ingest("basins", [folder / f for f in names]).failed
        assert BASINS


@pytest.fixture(scope="module", params=["et_fusion", "sm_mlda", "freeze_thaw", "sm_1km", "tws_rec"])
def published(request, django_db_setup, django_db_blocker, shared_data):
    """(product, DatasetVersion): a version of each product, published in this session."""
    from products.models import GenerationRun
    from products.services import create_run, execute_run

    product = request.param
    with django_db_blocker.unblock():
        runs = GenerationRun.objects.filter(product=product, status="succeeded").order_by("-created_at")
        run = runs.first() if product == "et_fusion" else runs.filter(parameters=PARAMS[product]).first()
        if run is None:
            _inputs(product, request, shared_data)
            run = execute_run(create_run(product, parameters=PARAMS[product]).id)
        assert run.status == "succeeded", run.error
        return product, run.version


def _netcdf_files(version) -> list[Path]:
    files = [Path(settings.DATA_ROOT) / f.path for f in version.files.all() if f.name.endswith(".nc")]
    assert files, f"{version} holds no NetCDF file"
    return files


_REPORTS: dict[Path, object] = {}


def _report(path: Path):
    """:func:`tests.cfcheck.check` of a published file, once per session."""
    if path not in _REPORTS:
        _REPORTS[path] = check(path)
    return _REPORTS[path]


@pytest.mark.django_db
def test_every_published_netcdf_file_passes_cfchecker_and_the_ioos_cf_suite(published):
    _, version = published
    failed = []
    for path in _netcdf_files(version):
        report = _report(path)
        if report.cf_errors or report.score("cf:1.8") < 1.0:
            failed.append(report.explain())
    assert not failed, "\n\n".join(failed)


# ACDD 1.3 scores completeness: every file reaches ACDD_TARGET (the goal of issue 12), except the
# terrestrial water storage files: CF has no standard name for a water storage *anomaly* (12 of their
# ~110 points), the GRDC basins and the regions have no latitude/longitude variables to match the
# extent against (the source tables do not locate them), and a vertical extent means nothing for a
# column-integrated storage. Those are held to TWS_FLOOR, and their ACDD_TARGET is a strict xfail.
ACDD_TARGET = 0.9
TWS_FLOOR = 0.78


@pytest.mark.django_db
def test_every_published_netcdf_file_reaches_the_acdd_target(published):
    product, version = published
    floor = TWS_FLOOR if product == "tws_rec" else ACDD_TARGET
    failed = [_report(path).explain() for path in _netcdf_files(version) if _report(path).score("acdd:1.3") < floor]
    assert not failed, "\n\n".join(failed)


@pytest.mark.xfail(strict=True, reason="no CF standard name for a TWS anomaly; basins and regions unlocated")
@pytest.mark.parametrize("published", ["tws_rec"], indirect=True)
@pytest.mark.django_db
def test_the_water_storage_files_reach_the_acdd_target(published):
    _, version = published
    failed = [
        _report(path).explain() for path in _netcdf_files(version) if _report(path).score("acdd:1.3") < ACDD_TARGET
    ]
    assert not failed, "\n\n".join(failed)


@pytest.mark.django_db
def test_published_grids_carry_the_epsg_4326_grid_mapping_and_cell_bounds(published):
    import pyproj

    _, version = published
    for path in _netcdf_files(version):
        with netCDF4.Dataset(path) as nc:
            if "lat" not in nc.dimensions or "lon" not in nc.dimensions:
                continue  # station, basin and region files (CF DSG) have no grid
            assert nc["crs"].grid_mapping_name == "latitude_longitude", path.name
            assert pyproj.CRS.from_wkt(nc["crs"].crs_wkt) == pyproj.CRS.from_epsg(4326), path.name
            for name, var in nc.variables.items():
                if var.dimensions[-2:] == ("lat", "lon"):
                    assert var.grid_mapping == "crs", f"{path.name}: {name}"
            for axis in ("time", "lat", "lon"):
                assert nc[axis].bounds == f"{axis}_bnds" and f"{axis}_bnds" in nc.variables, f"{path.name}: {axis}"
                assert "_FillValue" not in nc[axis].ncattrs(), f"{path.name}: {axis}"


@pytest.mark.django_db
def test_published_files_carry_the_records_discovery_metadata(published):
    from portal.catalog.models import Dataset
    from products.registry import PRODUCTS

    product, version = published
    dataset = Dataset.objects.get(id=PRODUCTS[product].dataset_id)
    for path in _netcdf_files(version):
        with netCDF4.Dataset(path) as nc:
            assert nc.Conventions == "CF-1.8, ACDD-1.3", path.name
            assert nc.id == dataset.id and nc.product_version == f"v{version.number}", path.name
            assert nc.title and nc.summary and nc.license and nc.history, path.name
            assert "data_kind" in nc.ncattrs(), path.name  # the pipeline's own attributes are kept


@pytest.mark.django_db
def test_every_published_file_says_its_data_kind(published):
    """Issue 16: every output file carries its data kind (real, synthetic twin, proxy experiment): NetCDF and
    GeoTIFF as an attribute or tag, a CSV as a column (it has no global attributes), JSON by key."""
    import json

    import pandas as pd
    import rasterio

    from products.data_kind import DataKind

    kinds = {k.value for k in DataKind}
    product, version = published
    for f in version.files.all():
        path = Path(settings.DATA_ROOT) / f.path
        if f.name.endswith(".nc"):
            with netCDF4.Dataset(path) as nc:
                assert nc.getncattr("data_kind") in kinds, f.name
        elif f.name.endswith(".tif"):
            with rasterio.open(path) as tif:
                assert tif.tags().get("data_kind") in kinds, f.name
        elif f.name.endswith(".csv"):
            column = pd.read_csv(path)["data_kind"]
            assert len(column) and set(column) <= kinds, f.name
        elif f.name.endswith(".json"):
            document = json.loads(path.read_text())
            assert document.get("data_kind") in kinds or set(document) & kinds, f.name
        else:
            raise AssertionError(f"{f.name}: no data-kind check for this kind of file")


@pytest.mark.django_db
def test_a_second_stamp_renumbers_the_file_and_replaces_the_publish_history_line(published, tmp_path):
    import shutil

    from products.services import stamp_netcdf

    _, version = published
    path = shutil.copy(_netcdf_files(version)[0], tmp_path / "copy.nc")
    stamp_netcdf(Path(path), dataset=version.dataset, number=version.number + 1, run_id=None)
    with netCDF4.Dataset(path) as nc:
        assert nc.product_version == f"v{version.number + 1}"
        lines = nc.history.splitlines()
        assert sum("products.services.publish" in line for line in lines) == 1 and len(lines) >= 2
