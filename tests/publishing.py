"""Versions published through the real :func:`products.services.publish`, for tests that need published files.

:func:`publish_version` does what a generation run does once its pipeline has written its files: a run of
the record's product is created (:func:`products.services.create_run`) and started, the test's files are
written into a work directory, and ``publish`` stamps them with the record's ACDD attributes, takes their
real sizes and SHA-256 checksums, builds the cube stores of the grids, moves the directory into place and
records the version, its files and the succeeded run in one transaction. No row is made by hand and no
checksum is made up. :func:`unpublish` removes a committed version again: its rows, its run and its folder.

Used by the fixtures of tests/subsets (``publish_grid``) and tests/stac (``publish_grids``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import xarray as xr
from django.utils import timezone

from portal import storage
from portal.catalog.models import DatasetVersion
from products.lineage import ProductOutput
from products.models import GenerationRun
from products.registry import product_for_dataset
from products.services import create_run, publish

#: The parameters of a fixture's run: they name what wrote the files (no product pipeline ran).
FIXTURE_PARAMETERS = {"written_by": "tests/publishing.py"}


def publish_version(
    dataset_id: str,
    files: Mapping[str, xr.Dataset],
    *,
    notes: str = "",
    descriptions: Mapping[str, str] | None = None,
    summary: Mapping | None = None,
) -> DatasetVersion:
    """Publish ``files`` as the next version of record ``dataset_id``, through ``products.services.publish``.

    Parameters
    ----------
    dataset_id : str
        A catalog record that a product of :data:`products.registry.PRODUCTS` publishes into (imported).
    files : mapping of str to xarray.Dataset
        File name (``*.nc``) -> content, written with :meth:`xarray.Dataset.to_netcdf` (NetCDF-4).
    notes : str, optional
        The version's notes.
    descriptions : mapping of str to str, optional
        File name -> the file's description (default "").
    summary : mapping, optional
        The run's summary (copied into the version's lineage), e.g. its ``uncertainty`` entries.

    Returns
    -------
    DatasetVersion
        The new version (``directory`` ``products/<product>/v<number>``), its files with real sizes and
        checksums, and a succeeded :class:`~products.models.GenerationRun` whose ``version`` it is.

    Raises
    ------
    ValueError
        No product publishes into ``dataset_id``.
    products.services.RunError
        The record is not imported.
    """
    spec = product_for_dataset(dataset_id)
    if spec is None:
        raise ValueError(f"no product publishes into record {dataset_id}")
    run = create_run(spec.key, parameters=dict(FIXTURE_PARAMETERS))
    # started as execute_run starts a run (publish records the start time in the version's lineage)
    GenerationRun.objects.filter(id=run.id).update(status=GenerationRun.Status.RUNNING, started_at=timezone.now())
    workdir = storage.work_root() / "tmp" / f"{spec.key}-fixture{run.id}-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    for name, content in files.items():
        content.to_netcdf(workdir / name)
    described = {name: (descriptions or {}).get(name, "") for name in files}
    return publish(run, workdir, ProductOutput(files=described, notes=notes, summary=dict(summary or {})))


def unpublish(version: DatasetVersion) -> None:
    """Remove a version made by :func:`publish_version` and committed: its run, its rows and its folder."""
    GenerationRun.objects.filter(version=version).delete()
    version.delete()
    storage.delete(version.directory)
