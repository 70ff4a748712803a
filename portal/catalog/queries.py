"""Read-side functions behind the catalog pages and API (detail context, chart series); the search is
:mod:`portal.catalog.search`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from django.conf import settings
from django.db.models import Count, Prefetch, Sum
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from portal.subsets.models import DownloadLog
from products.lineage import public_path
from products.models import ValidationResult
from products.registry import product_for_dataset

from .models import Dataset, DatasetFile, DatasetPerson, DatasetVersion

# Variables of the ET product's CF timeSeries file (products.generators.et_fusion_cf.to_cf_dataset).
SERIES_FILE = "et_fusion_timeseries.nc"
SERIES_STATION, SERIES_OBSERVED, SERIES_GENERATED, SERIES_FLAG = "station_name", "et_obs", "et", "is_validation"
# Labels of the seed's published figures (products.registry) and what this portal states for the same item.
PUBLISHED_LABELS = {
    "kge": "KGE",
    "rmse": "RMSE",
    "r": "R",
    "r_median": _("median R of the stations"),
    "ubrmse": "ubRMSE",
    "stations": _("stations"),
    "time_step": _("time step"),
    "grid": _("grid"),
    "period": _("period"),
    "overall_accuracy": _("overall accuracy"),
}
OURS_DESCRIBED = {"et_fusion": {"time_step": _("monthly"), "grid": _("tower points, no grid")}}
PUBLISHED_WORDS = (gettext_noop("daily"),)
# Further validation tables of a version (ValidationResult.split other than validation/cv), in page order.
SPLIT_TITLES = {
    "fusion_held_out": _("Fusion and each input product against the same towers (leave-tower-out)"),
    "reconstruction_held_out": _("Stage 1: each product reconstructed from forcing, scored on basins left out"),
    "twin_insitu": _("SYNTHETIC twin: every series against in-situ stations never used upstream"),
    "twin_validation": _("SYNTHETIC twin: held-out stations never used in training"),
    "twin_cv": _("SYNTHETIC twin: cross-validation grouped by station, on the training stations"),
    "real_withheld": _("REAL: nudging toward ASCAT/ERS, scored on retrievals withheld from the nudging"),
    "real_insitu": _("REAL: satellite series against collocated in-situ stations"),
    "year_held_out": _(
        "Reconstruction scored on GRACE years held out of training (r and NSE; KGE is not meaningful "
        "for anomalies with a mean near zero)"
    ),
    "independent_itsg": _("Reconstruction against ITSG-Grace, a solution no model was trained on"),
    "water_balance": _("Water balance: dS/dt of GRACE against P − ET − R per basin"),
}
MAIN_SPLITS = ("validation", "cv")  # text values of the registry, translated when shown


class QueryError(ValueError):
    """A user's request that cannot be answered as asked (answered with 400)."""


@dataclass
class DatasetPage:
    dataset: Dataset
    people: dict[str, list[DatasetPerson]]
    versions: list[DatasetVersion]
    latest: DatasetVersion | None
    pooled: list[ValidationResult]
    sites: list[ValidationResult]
    classes: list[ValidationResult]
    stations: list[dict]
    product: object | None
    comparison: list[dict]
    more: list[dict]
    diagnostics: dict
    classification: list[dict]
    years: tuple[int, int] | None
    tags: list[str]
    download_counts: dict | None = None


def download_counts(dataset: Dataset | str) -> dict:
    """Downloads of a dataset logged so far (every front door logs: files, subsets, series, jobs, OPeNDAP).

    Parameters
    ----------
    dataset : Dataset or its id

    Returns
    -------
    dict
        ``{"total": n, "bytes": b, "versions": {number: {"count": n, "bytes": b}}}``: all downloads,
        the bytes sent, and per version number (those of a version only; ascending).
    """
    dataset_id = dataset.pk if isinstance(dataset, Dataset) else dataset
    rows = (
        DownloadLog.objects.filter(dataset_id=dataset_id)
        .values("version_number")
        .annotate(count=Count("id"), bytes=Sum("size"))
        .order_by("version_number")
    )
    out = {"total": 0, "bytes": 0, "versions": {}}
    for row in rows:
        out["total"] += row["count"]
        out["bytes"] += row["bytes"] or 0
        if row["version_number"] is not None:
            out["versions"][row["version_number"]] = {"count": row["count"], "bytes": row["bytes"] or 0}
    return out


def public_lineage(lineage: dict | None) -> dict:
    """A version's lineage as published (API, pages): every absolute path made relative to the shared
    data folder or the data root (:func:`products.lineage.public_path`), the checksums kept.

    Versions recorded before lineage stored relative paths are shown the same way.
    """

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str) and value.startswith("/") and value.count("/") > 1 and " " not in value:
            return public_path(value)
        return value

    return clean(lineage or {})


def dataset_page(dataset_id: str) -> DatasetPage:
    """Everything the detail page shows. Raises Dataset.DoesNotExist for an unknown id."""
    dataset = Dataset.objects.prefetch_related(
        "tags",
        Prefetch("roles", queryset=DatasetPerson.objects.select_related("person")),
        Prefetch(
            "versions", queryset=DatasetVersion.objects.prefetch_related("files").select_related("generation_run")
        ),
    ).get(id=dataset_id)
    people: dict[str, list[DatasetPerson]] = {role: [] for role in DatasetPerson.Role.values}
    for role in dataset.roles.all():
        people[role.role].append(role)
    versions = sorted(dataset.versions.all(), key=lambda v: -v.number)
    for v in versions:  # shown, never saved: no server path on the page
        v.lineage = public_lineage(v.lineage)
    latest = versions[0] if versions else None
    results = (
        list(
            ValidationResult.objects.filter(version=latest, split="validation")
            .select_related("station")
            .order_by("scope", "label")
        )
        if latest
        else []
    )
    more = further_validation(latest) if latest else []
    stations = sorted(
        (
            {"code": r.station.code, "lat": r.station.geom.y, "lon": r.station.geom.x, "kge": r.kge, "n": r.n}
            for r in results
            if r.scope == "site" and r.station and r.station.geom
        ),
        key=lambda s: (-s["n"], s["code"]),
    )
    pooled, sites = [r for r in results if r.scope == "pooled"], [r for r in results if r.scope == "site"]
    product = product_for_dataset(dataset.id)
    return DatasetPage(
        dataset=dataset,
        people=people,
        versions=versions,
        latest=latest,
        pooled=pooled,
        sites=sites,
        classes=[r for r in results if r.scope == "class"],
        stations=stations,
        product=product,
        comparison=compare_with_published(product, pooled[0] if pooled else None, sites),
        more=more,
        diagnostics=tc_diagnostic(latest) if latest else {},
        classification=classification_tables(latest) if latest else [],
        years=(min(dataset.time_tags), max(dataset.time_tags)) if dataset.time_tags else None,
        tags=list(dict.fromkeys(t.name for t in dataset.tags.all())),  # a name can be a topic and a place tag
        download_counts=download_counts(dataset),
    )


def tc_diagnostic(version: DatasetVersion) -> dict:
    """The triple-collocation summary stored in a version's lineage, or ``{}``.

    Returns
    -------
    dict with ``basins``, ``basins_used`` and ``products``: list of (name, median TCR, median
    error std in mm month-1) in the stored product order.
    """
    tc = (version.lineage.get("summary") or {}).get("triple_collocation")
    if not tc:
        return {}
    return {
        "basins": tc.get("basins"),
        "basins_used": tc.get("basins_used"),
        "products": [(p, tc.get(f"median_tcr_{p}"), tc.get(f"median_err_std_{p}")) for p in tc.get("products", [])],
    }


def classification_tables(version: DatasetVersion) -> list[dict]:
    """Classification scores stored in a version's lineage summary (the freeze/thaw product), or ``[]``.

    Returns
    -------
    list of dict with ``experiment`` (e.g. ``proxy: tibetan_plateau``, ``synthetic twin``) and
    ``rows``: one dict per set (train, validation, test) with ``set``, ``n``, ``overall_accuracy``,
    ``kappa``, ``recall_thawed``, ``recall_frozen``.
    """
    summary = version.lineage.get("summary") or {}
    experiments = [(f"proxy: {name}", sets) for name, sets in (summary.get("proxy") or {}).items()]
    if summary.get("twin"):
        experiments.append(("synthetic twin", summary["twin"]))
    keys = ("n", "overall_accuracy", "kappa", "recall_thawed", "recall_frozen")
    tables = [
        {
            "experiment": name,
            "rows": [
                {"set": s, **{k: sets[s].get(k) for k in keys}}
                for s in ("train", "validation", "test")
                if isinstance(sets.get(s), dict) and "overall_accuracy" in sets[s]
            ],
        }
        for name, sets in experiments
        if isinstance(sets, dict)
    ]
    return [t for t in tables if t["rows"]]  # other products' summaries have a "twin" too, without classification


def further_validation(version: DatasetVersion) -> list[dict]:
    """Pooled rows of a version's other validation splits, one table per split.

    Returns
    -------
    list of dict with ``split``, ``title`` (translated description), ``units`` and ``rows``
    (pooled ValidationResult rows; a fused estimate first, then the inputs by name). Each row
    carries ``n_sites``, ``median_r`` and ``median_ubrmse``: the medians over the split's per-station
    rows of the same variable (None without station rows), as the soil-moisture paper reports.
    """
    rows = (
        ValidationResult.objects.filter(
            version=version, scope__in=[ValidationResult.Scope.POOLED, ValidationResult.Scope.SITE]
        )
        .exclude(split__in=MAIN_SPLITS)
        .order_by("split", "variable")
    )
    tables: dict[str, dict] = {}
    per_site: dict[tuple[str, str], list[tuple]] = {}
    for r in rows:
        if r.scope == ValidationResult.Scope.SITE:
            per_site.setdefault((r.split, r.variable), []).append((r.r, r.ubrmse))
            continue
        table = tables.setdefault(
            r.split, {"split": r.split, "title": SPLIT_TITLES.get(r.split, r.split), "units": r.units, "rows": []}
        )
        table["rows"].append(r)
    for table in tables.values():
        table["rows"].sort(key=lambda r: (not r.variable.endswith("_fused"), r.variable))
        for r in table["rows"]:
            sites = np.array(per_site.get((r.split, r.variable), []), dtype="float64").reshape(-1, 2)
            r.n_sites = len(sites) or None
            r.median_r, r.median_ubrmse = np.nanmedian(sites, axis=0).tolist() if len(sites) else (None, None)
    order = list(SPLIT_TITLES)
    return sorted(
        tables.values(), key=lambda t: (order.index(t["split"]) if t["split"] in order else len(order), t["split"])
    )


def compare_with_published(product, pooled: ValidationResult | None, sites: list[ValidationResult]) -> list[dict]:
    """Our validation figures beside the seed's published ones, one row per published item.

    Parameters
    ----------
    product : products.registry.ProductSpec or None
    pooled : the pooled held-out ValidationResult of the latest version, or None.
    sites : the per-site held-out ValidationResult rows of that version.

    Returns
    -------
    list of dict with ``label``, ``units``, ``ours`` and ``theirs`` (display strings; ``ours`` is
    "–" where this portal has no comparable figure).
    """
    if product is None or not product.published:
        return []
    site_r = [s.r for s in sites if s.r is not None]
    ours = {
        "kge": pooled and pooled.kge,
        "rmse": pooled and pooled.rmse,
        "r": pooled and pooled.r,
        "ubrmse": pooled and pooled.ubrmse,
        "r_median": float(np.median(site_r)) if site_r else None,
        "stations": len(sites) or None,
        **(OURS_DESCRIBED.get(product.key, {}) if pooled else {}),
    }

    def shown(value) -> str:
        if value is None:
            return "–"
        return f"{value:.3f}" if isinstance(value, float) else gettext(value) if isinstance(value, str) else str(value)

    return [
        {
            "label": PUBLISHED_LABELS.get(key, key),
            "units": product.published.get(f"{key}_units", ""),
            "ours": shown(ours.get(key)),
            "theirs": shown(value),
        }
        for key, value in product.published.items()
        if not key.endswith("_units")
    ]


def version_file_path(dataset_id: str, number: int, name: str):
    """The DatasetFile and its absolute path. Raises DatasetFile.DoesNotExist when unknown."""
    f = DatasetFile.objects.select_related("version__dataset").get(
        version__dataset_id=dataset_id, version__number=number, name=name
    )
    return f, Path(settings.DATA_ROOT) / f.path


def tower_series(version: DatasetVersion, station: str) -> dict:
    """Observed and generated ET of one site from the version's CF timeSeries file.

    Parameters
    ----------
    version : a published version of the ET product (its file ``SERIES_FILE``, dims (station, time)).
    station : the site code (``station_name``).

    Returns
    -------
    dict with ``station``, ``units`` (kg m-2 d-1 = mm d-1), ``time`` (ISO dates), ``et_obs`` and
    ``et`` (lists, None where missing), ``is_validation`` (list of bool or None).

    Raises
    ------
    QueryError
        The station is not in the file.
    DatasetFile.DoesNotExist
        The version has no NetCDF time-series file (answered with 404).
    """
    f = version.files.filter(name=SERIES_FILE).first()
    if f is None:
        raise DatasetFile.DoesNotExist(f"{version} has no NetCDF time series")
    with xr.open_dataset(Path(settings.DATA_ROOT) / f.path) as ds:
        if not {SERIES_STATION, SERIES_OBSERVED, SERIES_GENERATED} <= set(ds.variables):
            raise DatasetFile.DoesNotExist(f"{f.name} is not a tower time-series file")
        names = [str(n) for n in ds[SERIES_STATION].values]
        if station not in names:
            raise QueryError(
                f"station {station!r} is not in {f.name}; expected one of {', '.join(sorted(names)[:10])}, ..."
            )
        site = ds.isel(station=names.index(station))
        generated, observed = site[SERIES_GENERATED].values, site[SERIES_OBSERVED].values
        keep = np.isfinite(generated) | np.isfinite(observed)
        flags = site[SERIES_FLAG].values[keep].astype(float) if SERIES_FLAG in site else np.full(keep.sum(), np.nan)

        def listed(values):
            return [None if not np.isfinite(v) else round(float(v), 4) for v in values]

        return {
            "station": station,
            "units": site[SERIES_GENERATED].attrs.get("units", ""),
            "time": [str(t)[:10] for t in site["time"].values[keep]],
            "et_obs": listed(observed[keep]),
            "et": listed(generated[keep]),
            "is_validation": [None if not np.isfinite(v) or v < 0 else bool(v) for v in flags],
        }
