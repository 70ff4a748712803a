"""Read-side functions behind the catalog pages and API (detail context, chart series); the search is
:mod:`portal.catalog.search`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, Prefetch, Sum
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from portal import storage
from portal.subsets.models import DownloadLog
from products.data_kind import DataKind
from products.lineage import public_path
from products.models import ValidationResult
from products.registry import product_for_dataset

from . import splits, uncertainty
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
# The seed's published figures describe the product itself against real in-situ data: the one split and variable
# of each product whose rows are comparable in kind (same quantity, same kind of reference, real data). A
# product without one (a synthetic twin or a proxy experiment only) shows the seed's figures alone.
SEED_COMPARABLE = {
    "et_fusion": ("validation", "et"),
    "sm_mlda": ("real_insitu", "sm_ml_da"),
    "sm_1km": ("real_insitu", "sm_1km"),
}
MAIN_SPLIT = "validation"  # the ET tower model's held-out months: pooled and land-cover rows in one table


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
    main: dict | None
    more: list[dict]
    diagnostics: dict
    classification: list[dict]
    validated: bool
    comparable: bool
    years: tuple[int, int] | None
    tags: list[str]
    download_counts: dict | None = None
    not_meaningful: list = field(default_factory=list)


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
    total, size, versions = 0, 0, {}
    for row in rows:
        total += row["count"]
        size += row["bytes"] or 0
        if row["version_number"] is not None:
            versions[row["version_number"]] = {"count": row["count"], "bytes": row["bytes"] or 0}
    return {"total": total, "bytes": size, "versions": versions}


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
            ValidationResult.objects.filter(version=latest, split=MAIN_SPLIT)
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
    classes = [r for r in results if r.scope == "class"]
    main = split_facts(MAIN_SPLIT, [r.label for r in results if r.scope != "site"], len(sites)) if pooled else None
    index = validation_index(versions)
    for v in versions:  # shown in each version's lineage
        v.validation_tables = index.get(v.pk, [])
        v.uncertainty = uncertainty.entries(v)
    product = product_for_dataset(dataset.id)
    comparable = comparable_row(product, latest) if latest else None
    classification = classification_tables(latest) if latest else []
    diagnostics = tc_diagnostic(latest) if latest else {}
    return DatasetPage(
        dataset=dataset,
        people=people,
        versions=versions,
        latest=latest,
        pooled=pooled,
        sites=sites,
        classes=classes,
        stations=stations,
        product=product,
        comparison=compare_with_published(product, *(comparable or (None, []))),
        main=main,
        more=more,
        diagnostics=diagnostics,
        classification=classification,
        validated=bool(pooled or more or classification or diagnostics),
        comparable=comparable is not None,
        years=(min(dataset.time_tags), max(dataset.time_tags)) if dataset.time_tags else None,
        tags=list(dict.fromkeys(t.name for t in dataset.tags.all())),  # a name can be a topic and a place tag
        download_counts=download_counts(dataset),
        not_meaningful=splits.not_meaningful_reasons([*pooled, *classes]),
    )


def split_facts(split: str, labels: list[str], scored: int | None) -> dict:
    """What one validation table holds, as the page and the version lineage show it.

    Parameters
    ----------
    split : str
        A ``ValidationResult.split`` value.
    labels : list of str
        The labels of its pooled and class rows (they name the data kind where the pipeline wrote it).
    scored : int or None
        The number of units scored (its per-site rows: the held-out towers or stations of a split by
        station, the basins of a split by year); None or 0 where the version stores none.

    Returns
    -------
    dict with ``split``, ``title``, ``partition``, ``unit``, ``scored`` (int or None), ``reference``,
    ``independent`` (bool), ``kind`` (a :class:`~products.data_kind.DataKind`), ``kind_name``
    (translated) and ``limit`` (translated, may be empty); from :mod:`portal.catalog.splits`.
    """
    info = splits.split_info(split)
    kind = splits.row_kind(split, labels)
    return {
        "split": split,
        "title": info.title,
        "partition": info.partition,
        "unit": info.unit,
        "scored": scored or None,
        "reference": info.reference,
        "independent": info.independent and kind == DataKind.REAL,
        "kind": kind,
        "kind_name": splits.KIND_NAMES.get(kind, kind),
        "limit": info.limit,
    }


def validation_index(versions: list[DatasetVersion]) -> dict[int, list[dict]]:
    """Per version, what each of its validation tables holds (one query for all versions).

    Parameters
    ----------
    versions : list of DatasetVersion
        With their ``lineage`` (a freeze/thaw version's classification experiments are read from it).

    Returns
    -------
    dict
        Version id -> list of :func:`split_facts` dicts in page order (the stored splits, then the
        classification experiments of the lineage summary), ``[]`` for a version without validation.
    """
    rows = ValidationResult.objects.filter(version__in=versions).values_list("version_id", "split", "scope", "label")
    found: dict[int, dict[str, tuple[list[str], set[str]]]] = {}
    for version_id, split, scope, label in rows:
        labels, sites = found.setdefault(version_id, {}).setdefault(split, ([], set()))
        (sites.add if scope == ValidationResult.Scope.SITE else labels.append)(label)
    out: dict[int, list[dict]] = {}
    for v in versions:
        tables = [
            split_facts(split, labels, len(sites))
            for split, (labels, sites) in sorted(found.get(v.pk, {}).items(), key=lambda i: splits.split_order(i[0]))
        ]
        out[v.pk] = tables + [t["facts"] for t in classification_tables(v)]
    return out


def tc_diagnostic(version: DatasetVersion) -> dict:
    """The triple-collocation summary stored in a version's lineage, or ``{}``.

    Returns
    -------
    dict with ``basins``, ``basins_used``, ``products``: list of (name, median TCR, median error std in
    mm month-1) in the stored product order; ``limited`` (True when the summary names the triplet's
    correlated errors: the page then says so beside the numbers) and ``sensitivity``: the same for the
    triplet with separate meteorology (``{}`` when not stored).
    """
    tc = (version.lineage.get("summary") or {}).get("triple_collocation")
    if not tc:
        return {}

    def members(table: dict) -> list[tuple]:
        return [(p, table.get(f"median_tcr_{p}"), table.get(f"median_err_std_{p}")) for p in table.get("products", [])]

    sensitivity = tc.get("sensitivity") or {}
    return {
        "basins": tc.get("basins"),
        "basins_used": tc.get("basins_used"),
        "products": members(tc),
        "limited": bool(tc.get("limits")),
        "sensitivity": {"basins_used": sensitivity.get("basins_used"), "products": members(sensitivity)}
        if sensitivity.get("products")
        else {},
    }


def classification_tables(version: DatasetVersion) -> list[dict]:
    """Classification scores stored in a version's lineage summary (the freeze/thaw product), or ``[]``.

    Returns
    -------
    list of dict with ``experiment`` (e.g. ``proxy: tibetan_plateau``, ``synthetic twin``), ``rows``: one
    dict per set (train, validation, test, and ``test_block_cv``: the pooled held-out pixels of the block
    cross-validation, every block held out once, when the summary has it) with ``set``, ``n``, ``overall_accuracy``, ``kappa``,
    ``recall_thawed``, ``recall_frozen``; and ``facts``: what the experiment holds, as :func:`split_facts`
    (``split`` is the experiment, ``scored`` the test set's pixels, ``partition`` names the block size).
    """
    summary = version.lineage.get("summary") or {}
    experiments = [(f"proxy: {name}", DataKind.PROXY, sets) for name, sets in (summary.get("proxy") or {}).items()]
    if summary.get("twin"):
        experiments.append(("synthetic twin", DataKind.SYNTHETIC, summary["twin"]))
    blocks = (summary.get("proxy_setup") or {}).get("block_deg")
    keys = ("n", "overall_accuracy", "kappa", "recall_thawed", "recall_frozen")
    tables = []
    for name, kind, sets in experiments:
        if not isinstance(sets, dict):
            continue
        rows = [
            {"set": s, **{k: sets[s].get(k) for k in keys}}
            for s in ("train", "validation", "test")
            if isinstance(sets.get(s), dict) and "overall_accuracy" in sets[s]
        ]
        if not rows:  # other products' summaries have a "twin" too, without classification
            continue
        # the pooled block cross-validation: every block held out once (the fixed test set holds 1-2 blocks)
        cv = (summary.get("block_cv") or {}).get(name.removeprefix("proxy: ") if kind == DataKind.PROXY else "twin")
        if isinstance(cv, dict) and isinstance(cv.get("test_pooled"), dict):
            rows.append({"set": "test_block_cv", **{k: cv["test_pooled"].get(k) for k in keys}})
        info = splits.CLASSIFICATION[kind]
        region = name.removeprefix("proxy: ").split(":")[0]
        block = blocks.get(region) if isinstance(blocks, dict) and kind == DataKind.PROXY else None
        test = next((r["n"] for r in rows if r["set"] == "test"), None)
        facts = {
            "split": name,
            "title": info.title,
            "partition": f"{info.partition} ({block:g}°)" if isinstance(block, int | float) else info.partition,
            "unit": info.unit,
            "scored": test,
            "reference": info.reference,
            "independent": False,
            "kind": kind,
            "kind_name": splits.KIND_NAMES[kind],
            "limit": info.limit,
        }
        tables.append({"experiment": name, "rows": rows, "facts": facts})
    return tables


def further_validation(version: DatasetVersion) -> list[dict]:
    """Pooled rows of a version's validation splits other than the main one, one table per split.

    Returns
    -------
    list of dict with ``split``, ``title`` (translated description), ``units``, ``rows`` (pooled
    ValidationResult rows; a fused estimate first, then the inputs by name) and ``facts`` (what the
    table holds: :func:`split_facts`), ``not_meaningful`` (translated reasons why some rows' KGE and beta are
    no numbers, :func:`portal.catalog.splits.not_meaningful_reasons`), in the order of
    :data:`portal.catalog.splits.SPLITS`. Each row
    carries ``n_sites``, ``median_r`` and ``median_ubrmse``: the medians over the split's per-station
    rows of the same variable (None without station rows), as the soil-moisture paper reports.
    """
    rows = ValidationResult.objects.filter(version=version).exclude(split=MAIN_SPLIT).order_by("split", "variable")
    tables: dict[str, dict] = {}
    labels: dict[str, list[str]] = {}
    per_site: dict[tuple[str, str], list[tuple]] = {}
    sites: dict[str, set[str]] = {}
    for r in rows:
        if r.scope == ValidationResult.Scope.SITE:
            per_site.setdefault((r.split, r.variable), []).append((r.r, r.ubrmse))
            sites.setdefault(r.split, set()).add(r.label)
            continue
        labels.setdefault(r.split, []).append(r.label)
        if r.scope != ValidationResult.Scope.POOLED:
            continue
        table = tables.setdefault(r.split, {"split": r.split, "units": r.units, "rows": []})
        table["rows"].append(r)
    for split, table in tables.items():
        table["facts"] = split_facts(split, labels.get(split, []), len(sites.get(split, ())))
        table["title"] = table["facts"]["title"]
        table["rows"].sort(key=lambda r: (not r.variable.endswith("_fused"), r.variable))
        table["not_meaningful"] = splits.not_meaningful_reasons(table["rows"])
        for r in table["rows"]:
            values = np.array(per_site.get((r.split, r.variable), []), dtype="float64").reshape(-1, 2)
            r.n_sites = len(values) or None
            r.median_r, r.median_ubrmse = np.nanmedian(values, axis=0).tolist() if len(values) else (None, None)
    return sorted(tables.values(), key=lambda t: splits.split_order(t["split"]))


def comparable_row(product, version: DatasetVersion) -> tuple[ValidationResult, list[ValidationResult]] | None:
    """The pooled row of ``version`` comparable in kind with the seed's published figures, and its site rows.

    Comparable means the product's own quantity (:data:`SEED_COMPARABLE`: split and variable) against
    real data of the same kind of reference, never a synthetic twin or a proxy experiment.

    Returns
    -------
    (pooled, sites) or None
        None when the product has no published figures or the version holds no comparable row.
    """
    if product is None or not product.published or product.key not in SEED_COMPARABLE:
        return None
    split, variable = SEED_COMPARABLE[product.key]
    rows = list(
        ValidationResult.objects.filter(version=version, split=split, variable=variable).exclude(
            scope=ValidationResult.Scope.CLASS
        )
    )
    pooled = [r for r in rows if r.scope == ValidationResult.Scope.POOLED]
    if not pooled or splits.row_kind(split, [r.label for r in pooled]) != DataKind.REAL:
        return None
    return pooled[0], [r for r in rows if r.scope == ValidationResult.Scope.SITE]


def compare_with_published(product, pooled: ValidationResult | None, sites: list[ValidationResult]) -> list[dict]:
    """Our validation figures beside the seed's published ones, one row per published item.

    Parameters
    ----------
    product : products.registry.ProductSpec or None
    pooled : the pooled row comparable in kind with the seed's figures (:func:`comparable_row`), or None.
    sites : the per-site rows of the same split and variable.

    Returns
    -------
    list of dict with ``label``, ``units``, ``ours`` and ``theirs`` (display strings; ``ours`` is
    "–" where this portal has no comparable figure: every row when ``pooled`` is None, so that no
    synthetic-twin or proxy score ever stands beside a published figure).
    """
    if product is None or not product.published:
        return []
    site_r = [s.r for s in sites if s.r is not None] if pooled else []
    ours = {
        "kge": pooled and pooled.kge,
        "rmse": pooled and pooled.rmse,
        "r": pooled and pooled.r,
        "ubrmse": pooled and pooled.ubrmse,
        "r_median": float(np.median(site_r)) if site_r else None,
        "stations": (len(sites) or None) if pooled else None,
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
    """The DatasetFile and its path relative to the data root (:mod:`portal.storage`).

    Raises DatasetFile.DoesNotExist when unknown."""
    f = DatasetFile.objects.select_related("version__dataset").get(
        version__dataset_id=dataset_id, version__number=number, name=name
    )
    return f, f.path


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
    with storage.open_dataset(f.path) as ds:
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
