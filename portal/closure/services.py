"""The water-balance closure service: gathers the published TWS and ET versions and the basin inputs.

One entry point, :func:`water_balance`, for the page and the API: it checks access (both datasets
through :func:`portal.catalog.access.check_download`, the basin network through
:func:`~portal.catalog.access.check_networks`), reads the latest published version of each product
(``tws_rec_basins.nc`` of the TWS reconstruction: storage per GRDC basin; ``et_basin_reconstruction.nc``
of the ET fusion: each ET product's basin mean), the precipitation and runoff of the basins from the
database (network GRDC-MRB) and computes with :mod:`portal.closure.budget`. Versions are immutable, so
the computed closure is cached per pair of versions and choice of terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import xarray as xr
from django.core.cache import cache

from portal import storage
from portal.catalog.access import check_download, check_networks
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from products.lineage import observations_frame
from products.registry import PRODUCTS

from . import budget

NETWORK = "GRDC-MRB"
TWS_PRODUCT, ET_PRODUCT = "tws_rec", "et_fusion"
TWS_FILE, ET_FILE = "tws_rec_basins.nc", "et_basin_reconstruction.nc"
PRECIPITATION = ("p_era5land", "p_gpcc", "p_mswep")  # basin precipitation inputs (the first: the default)
RUNOFF = ("r_era5land", "r_grun")  # ERA5-Land runoff; GRUN (observation-based, Ghiggi et al. 2019)
DEFAULT_STORAGE = "tws_jpl"  # GRACE JPL mascons: independent of P, ET and R (the reconstructions are not)
DEFAULT_ET = "et_era5land"  # the TWS reconstruction's own ET input, measured over the whole GRACE period
CACHE_SECONDS = 600


class ClosureError(ValueError):
    """A bad parameter: ``parameter`` names it, the message says what was expected (HTTP 400)."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class ClosureUnavailable(LookupError):
    """A product or input the closure needs is not published or not ingested (HTTP 404)."""


@dataclass(frozen=True)
class Source:
    dataset: Dataset
    version: DatasetVersion
    file: DatasetFile

    def as_dict(self, variable: str) -> dict:
        return {
            "dataset_id": self.dataset.id,
            "title": self.dataset.title,
            "version": self.version.number,
            "file": self.file.name,
            "sha256": self.file.sha256,
            "variable": variable,
        }


def dataset_ids() -> tuple[str, str]:
    """The catalog records of the TWS and the ET products (the datasets whose pages link to the closure)."""
    return PRODUCTS[TWS_PRODUCT].dataset_id, PRODUCTS[ET_PRODUCT].dataset_id


def _source(product: str, name: str) -> Source:
    dataset_id = PRODUCTS[product].dataset_id
    dataset = Dataset.objects.filter(id=dataset_id).first()
    version = (
        DatasetVersion.objects.filter(dataset_id=dataset_id, files__name=name).order_by("-number").first()
        if dataset
        else None
    )
    if dataset is None or version is None:
        raise ClosureUnavailable(f"no published version of {product} with {name} (record {dataset_id})")
    return Source(dataset, version, version.files.get(name=name))


def _open(source: Source, variables: list[str] | None = None) -> xr.Dataset:
    """The file's ``variables`` (all when None) and its basin names, areas and regions, loaded."""
    with storage.open_dataset(source.file.path) as ds:
        if variables is not None:
            keep = [v for v in (*variables, "station_name", "continent", "area") if v in ds]
            ds = ds[keep]
        return ds.load()


def _choices(source: Source, *, exclude_suffix: tuple[str, ...] = (), exclude_part: str = "") -> list[str]:
    """The (station, time) estimates of a file (read lazily: names only), not the uncertainty variables
    beside them (a standard error is no storage or flux to close a balance with)."""
    with storage.open_dataset(source.file.path) as ds:
        return sorted(
            str(name)
            for name, da in ds.data_vars.items()
            if "time" in da.dims
            and da.ndim == 2
            and "uncertainty_method" not in da.attrs
            and not str(da.attrs.get("standard_name", "")).endswith(" standard_error")
            and not str(name).endswith(exclude_suffix)
            and not (exclude_part and exclude_part in str(name))
        )


def _choose(parameter: str, value: str | None, default: str, choices: list[str]) -> str:
    value = value if value not in (None, "") else default
    if value not in choices:
        raise ClosureError(parameter, f"expected one of {', '.join(choices)}; found {value!r}")
    return value


def _compute(tws: Source, et: Source, storage: str, et_name: str, p: str, r: str) -> dict:
    key = f"closure:v1:{tws.version.id}:{tws.file.sha256}:{et.version.id}:{et.file.sha256}:{storage}:{et_name}:{p}:{r}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    tws_ds, et_ds = _open(tws, [storage]), _open(et, [et_name])
    obs = observations_frame(network=NETWORK, variables=[p, r])
    precipitation, runoff = budget.long_to_table(obs, p), budget.long_to_table(obs, r)
    if precipitation.empty or runoff.empty:
        raise ClosureUnavailable(f"no {NETWORK} observations of {p} and {r} in the database (ingest the basins)")
    storage_table = budget.basin_table(tws_ds, storage)
    et_table = budget.basin_table(et_ds, et_name)
    try:
        basins = budget.closure(precipitation, et_table, runoff, storage_table)
    except ValueError as exc:
        raise ClosureUnavailable(str(exc)) from None
    attributes = None
    if "continent" in tws_ds and "area" in tws_ds:
        attributes = pd.DataFrame(
            {
                "continent": [str(v) for v in tws_ds["continent"].values],
                "area_km2": tws_ds["area"].values.astype("float64"),
            },
            index=[str(n) for n in tws_ds["station_name"].values],
        )
    regions = (
        budget.region_closure(precipitation, et_table, runoff, storage_table, attributes)
        if attributes is not None
        else None
    )
    region_of = attributes["continent"].to_dict() if attributes is not None else {}
    value = {"basins": basins, "regions": regions, "region_of": region_of}
    cache.set(key, value, CACHE_SECONDS)
    return value


def water_balance(user, *, basin: str | None = None, region: str | None = None, params=None) -> dict:
    """The closure of every basin and region, and the series of one basin or region if asked.

    Parameters
    ----------
    user : User or AnonymousUser
        Must be allowed to download both products, and for a series the GRDC-MRB network.
    basin, region : str, optional
        A GRDC basin code, or a region name (``All basins`` included); not both.
    params : mapping, optional
        ``storage`` (a storage series of the TWS file, default ``tws_jpl``), ``et`` (an ET product of the
        ET file, default ``et_era5land``), ``p`` (default ``p_era5land``), ``r`` (``r_era5land``).

    Returns
    -------
    dict
        ``sources`` (dataset id, title, version, file, sha256 and variable of storage and ET; network and
        variable of P and R), ``method``, ``units``, ``choices``, ``basins`` and ``regions`` (lists of
        :func:`portal.closure.budget.records` with ``region`` on basins), and ``series`` with ``name`` and
        ``kind`` (``basin``/``region``) when one was asked.

    Raises
    ------
    portal.catalog.access.AccessDenied
        The user may not download one of the datasets, or (for a series, which shows P - ET - R month by
        month) the GRDC-MRB network's observations. The statistics are aggregates, shown as the TWS
        product's own water-balance validation rows are.
    ClosureError
        A bad parameter (names it).
    ClosureUnavailable
        A product is not published, or the inputs are not ingested.
    """
    params = dict(params or {})
    if basin and region:
        raise ClosureError("basin", "give either basin or region, not both")
    tws, et = _source(TWS_PRODUCT, TWS_FILE), _source(ET_PRODUCT, ET_FILE)
    check_download(user, tws.dataset)
    check_download(user, et.dataset)
    if basin or region:  # a series shows the basin inputs month by month: the network's own rule applies
        check_networks(user, [NETWORK])
    choices = {
        # detrended-deseasonalised storage (*_dd*) has no budget to close against
        "storage": _choices(tws, exclude_part="_dd"),
        "et": _choices(et, exclude_suffix=("_rec", "_rec_mean")),  # reconstructions learn P - R: circular
        "p": list(PRECIPITATION),
        "r": list(RUNOFF),
    }
    storage = _choose("storage", params.get("storage"), DEFAULT_STORAGE, choices["storage"])
    et_name = _choose("et", params.get("et"), DEFAULT_ET, choices["et"])
    p = _choose("p", params.get("p"), PRECIPITATION[0], choices["p"])
    r = _choose("r", params.get("r"), RUNOFF[0], choices["r"])
    result = _compute(tws, et, storage, et_name, p, r)
    basins, regions, region_of = result["basins"], result["regions"], result["region_of"]
    answer = {
        "sources": {
            "storage": tws.as_dict(storage),
            "et": et.as_dict(et_name),
            "p": {"network": NETWORK, "variable": p, "kind": "ingested basin observations"},
            "r": {"network": NETWORK, "variable": r, "kind": "ingested basin observations"},
        },
        "method": "residual = (P - ET - R) - dS/dt; dS/dt = (S[t+1] - S[t-1]) / 2 of the storage anomaly; "
        "regions: area-weighted means of the basins' terms",
        "units": budget.FLUX_UNITS,
        "choices": choices,
        "parameters": {"storage": storage, "et": et_name, "p": p, "r": r},
        "basins": [{**row, "region": region_of.get(row["name"], "")} for row in budget.records(basins.statistics)],
        "regions": budget.records(regions.statistics) if regions is not None else [],
    }
    if basin:
        if basin not in basins.residual.columns:
            raise ClosureError("basin", f"expected a basin code of the closure (one of {len(basins.residual.columns)})")
        answer["series"] = {"name": basin, "kind": "basin", **budget.series(basins, basin)}
    elif region:
        names = list(regions.residual.columns) if regions is not None else []
        if region not in names:
            raise ClosureError("region", f"expected one of {', '.join(names) or '(no region in the TWS file)'}")
        answer["series"] = {"name": region, "kind": "region", **budget.series(regions, region)}
    return answer
