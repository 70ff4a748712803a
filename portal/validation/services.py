"""The validation browser's read side: one function per view (:func:`browse`, :func:`station_page`).

A version's per-station :class:`~products.models.ValidationResult` rows, with their station's network,
land cover and location, filtered and sorted by :mod:`portal.validation.filters`; each split described by
:mod:`portal.catalog.splits` (through :func:`portal.catalog.queries.split_facts`); the freeze/thaw
confusion matrices of the version's lineage summary; and, for one station, the observed and product
series where the version's files hold them, with the station's role derived from the split definitions
and the fold recorded in the files.

Access: the metrics follow the dataset page (shown to everyone, as on the page and in
``/api/datasets/<id>/``); the series are the dataset's data and follow
:func:`portal.catalog.access.decide`, as ``series.json`` and the file downloads do.
"""

from __future__ import annotations

import numpy as np
from django.utils.translation import gettext_lazy as _

from portal import storage
from portal.catalog import access, queries, splits
from portal.catalog.models import DatasetVersion
from products.data_kind import DataKind
from products.models import ValidationResult

from . import filters as flt

#: Per-station series files of a version, by split: (file, estimate variable). The gridded ET of
#: ``grid_at_held_out_towers`` has no per-tower series file: its page says the series is not stored.
SERIES_FILES = {
    "validation": ("et_fusion_timeseries.nc", "et"),
    "cv": ("et_fusion_timeseries.nc", "et"),
    "fusion_held_out": ("et_fused_ecostress_towers.nc", "et_fused"),
    "fusion_upper_bound_tower_met": ("et_fused_ecostress_towers.nc", "et_fused_tower_met"),
}
#: Lineage parameter holding the number of folds of a split's fold numbers (``cv_fold`` in its file).
FOLD_PARAMETER = {
    "validation": "n_splits",
    "cv": "n_splits",
    "fusion_held_out": "fusion_splits",
    "fusion_upper_bound_tower_met": "fusion_splits",
}
#: What a station's row in each split says of its role (used in training or held out), where the split says it.
ROLES = {
    "validation": _(
        "Held out: its validation months were never used to fit any model; they are predicted by the model of the "
        "leave-site-out fold that left this tower out. Its training months were used to fit the published model."
    ),
    "cv": _(
        "Used in training: these are its training months, which fitted the published model; each is predicted "
        "here by the fold model that left this tower out."
    ),
    "grid_at_held_out_towers": _(
        "Held-out months of a tower whose other months trained the model: held out in time, not in space."
    ),
    "fusion_held_out": _("Held out: the fusion scored here was trained and tuned without this tower."),
    "fusion_upper_bound_tower_met": _(
        "Held out as in the fusion, but the upper bound takes this tower's own meteorology as input."
    ),
    "twin_block_validation": _("Held out: a synthetic station in a spatial block left out of training."),
    "twin_validation": _("Held out: a synthetic station left out of training at random."),
    "twin_insitu": _("Held out: a synthetic station never used upstream."),
    "twin_block_cv": _("Used in training: scored by the cross-validation fold that left its block out."),
    "twin_cv": _("Used in training: scored by the cross-validation fold that left it out."),
    "real_withheld_months": _(
        "Assimilated: the nudging used this grid point's retrievals of the other months; the scored months were "
        "withheld."
    ),
    "real_withheld": _("Assimilated: the nudging used this grid point's other retrieval days."),
    "real_insitu": _("Not used to make the product: a collocated in-situ station, scored only."),
    "year_block_held_out": _("Its GRACE years outside the held-out block (and its buffer) were used in training."),
    "year_held_out": _("Its GRACE years other than the held-out year were used in training."),
}


class NotFound(LookupError):
    """No such dataset version or station row (answered with 404)."""


def get_version(dataset_id: str, number: int) -> DatasetVersion:
    """The published version ``number`` of ``dataset_id``; NotFound otherwise."""
    version = DatasetVersion.objects.select_related("dataset").filter(dataset_id=dataset_id, number=number).first()
    if version is None:
        raise NotFound(f"no version {number} of dataset {dataset_id!r}")
    return version


def _reason(code: str):
    return splits.NOT_MEANINGFUL.get(code, code) if code else ""


def _row(r: ValidationResult, kinds: dict[str, DataKind]) -> dict:
    s = r.station
    kind = kinds.get(r.split, splits.split_info(r.split).kind)
    return {
        "split": r.split,
        "variable": r.variable,
        "units": r.units,
        "label": r.label,
        "network": s.network if s else "",
        "land_cover": s.land_cover if s else "",
        "name": s.name if s else "",
        "lat": s.geom.y if s and s.geom else None,
        "lon": s.geom.x if s and s.geom else None,
        "n": r.n,
        **{m: getattr(r, m) for m in (*flt.METRICS, "alpha", "beta")},
        "not_meaningful": r.not_meaningful,
        "reason": str(_reason(r.not_meaningful)),
        "kind": str(kind),
        "kind_name": str(splits.KIND_NAMES.get(kind, kind)),
    }


def _tables(rows: list[ValidationResult]) -> tuple[list[dict], dict[str, DataKind]]:
    """Per split: its facts (:func:`portal.catalog.queries.split_facts`), pooled and class rows."""
    by_split: dict[str, list[ValidationResult]] = {}
    for r in rows:
        by_split.setdefault(r.split, []).append(r)
    tables, kinds = [], {}
    for split in sorted(by_split, key=splits.split_order):
        group = by_split[split]
        summary = [r for r in group if r.scope != ValidationResult.Scope.SITE]
        facts = queries.split_facts(
            split, [r.label for r in summary], len({r.label for r in group if r.scope == ValidationResult.Scope.SITE})
        )
        kinds[split] = facts["kind"]
        tables.append(
            {
                "split": split,
                "facts": facts,
                "rows": summary,
                "units": group[0].units,
                "not_meaningful": splits.not_meaningful_reasons(summary),
            }
        )
    return tables, kinds


def browse(dataset_id: str, number: int, query) -> dict:
    """What the version's validation page and its API twin show.

    Parameters
    ----------
    dataset_id : str
    number : int
        The version number.
    query : mapping
        The request's query parameters (see :func:`portal.validation.filters.parse`).

    Returns
    -------
    dict with ``version``, ``dataset``, ``filters`` (Filters), ``tables`` (per split: facts, pooled and class
    rows), ``stations`` (the filtered, sorted per-station rows as dicts), ``markers`` (those with a location),
    ``choices`` (splits, networks, land covers, variables, metrics held), ``kinds`` (data kinds present, as
    names), ``classification`` (:func:`freeze_thaw`), ``latest`` (the dataset's latest version number).

    Raises
    ------
    NotFound
        No such version.
    portal.validation.filters.FilterError
        A bad query parameter.
    """
    version = get_version(dataset_id, number)
    rows = list(ValidationResult.objects.filter(version=version).select_related("station").order_by("split", "label"))
    tables, kinds = _tables(rows)
    sites = [_row(r, kinds) for r in rows if r.scope == ValidationResult.Scope.SITE]
    choices = {
        "splits": sorted({r["split"] for r in sites}, key=splits.split_order),
        "networks": sorted({r["network"] for r in sites if r["network"]}),
        "land_covers": sorted({r["land_cover"] for r in sites if r["land_cover"]}),
        "variables": sorted({r["variable"] for r in sites}),
        "metrics": list(flt.METRICS),
    }
    chosen = flt.parse(
        query,
        splits=choices["splits"],
        networks=choices["networks"],
        land_covers=choices["land_covers"],
        variables=choices["variables"],
    )
    kept = flt.apply(sites, chosen)
    classification = freeze_thaw(version)
    present = {t["facts"]["kind"] for t in tables} | {c["facts"]["kind"] for c in classification}
    latest = version.dataset.versions.order_by("-number").values_list("number", flat=True).first()
    return {
        "version": version,
        "dataset": version.dataset,
        "filters": chosen,
        "tables": tables,
        "stations": kept,
        "markers": [r for r in kept if r["lat"] is not None],
        "total": len(sites),
        "choices": choices,
        "kinds": [str(splits.KIND_NAMES.get(k, k)) for k in DataKind if k in present],
        "classification": classification,
        "latest": latest,
    }


def freeze_thaw(version: DatasetVersion) -> list[dict]:
    """Confusion matrices per experiment and set, from the version's lineage summary.

    Returns
    -------
    list of dict
        One per experiment of :func:`portal.catalog.queries.classification_tables`: ``experiment``, ``facts``,
        ``sets``: per set ``set``, ``n``, ``matrix`` (``[[TN, FP], [FN, TP]]`` or None where the summary holds
        no counts), ``overall_accuracy``, ``kappa``, ``recall_thawed``, ``recall_frozen`` (from the matrix
        where it is stored, else as stored), ``missing`` (True where the counts are not stored).
    """
    summary = version.lineage.get("summary") or {}
    out = []
    for table in queries.classification_tables(version):
        name = table["experiment"]
        if name.startswith("proxy: "):
            stored = (summary.get("proxy") or {}).get(name.removeprefix("proxy: ")) or {}
            cv = (summary.get("block_cv") or {}).get(name.removeprefix("proxy: ")) or {}
        else:
            stored, cv = summary.get("twin") or {}, (summary.get("block_cv") or {}).get("twin") or {}
        sets = []
        for row in table["rows"]:
            source = cv.get("test_pooled") if row["set"] == "test_block_cv" else stored.get(row["set"])
            matrix = (source or {}).get("confusion_matrix")
            try:
                scores = flt.matrix_scores(matrix) if matrix is not None else None
            except ValueError:
                scores = None
            sets.append({**row, **(scores or {}), "matrix": matrix if scores else None, "missing": scores is None})
        out.append({"experiment": name, "facts": table["facts"], "sets": sets})
    return out


def _series(version: DatasetVersion, split: str, code: str) -> dict | None:
    """Observed and estimated series of ``code`` in the file that holds ``split``'s series, or None."""
    if split not in SERIES_FILES:
        return None
    name, estimate = SERIES_FILES[split]
    f = version.files.filter(name=name).first()
    if f is None:
        return None
    with storage.open_dataset(f.path) as ds:
        if not {"station_name", "et_obs", estimate} <= set(ds.variables):
            return None
        if "station" in ds["station_name"].dims:
            names = [str(n) for n in ds["station_name"].values]
            if code not in names:
                return None
            site = ds.isel(station=names.index(code))
            held = site["is_validation"].values.astype(float) if "is_validation" in site else None
            fold = int(site["cv_fold"].values) if "cv_fold" in site else None
        else:
            mask = np.array([str(n) == code for n in ds["station_name"].values])
            if not mask.any():
                return None
            site = ds.isel(obs=np.flatnonzero(mask))
            held = None
            folds = site["cv_fold"].values if "cv_fold" in site else []
            fold = int(folds[0]) if len(folds) else None
        observed, estimated = site["et_obs"].values.astype(float), site[estimate].values.astype(float)
        keep = np.isfinite(observed) | np.isfinite(estimated)
        times = [str(t)[:19] for t in site["time"].values[keep]]
        if all(t.endswith("T00:00:00") for t in times):  # monthly or daily series: dates only
            times = [t[:10] for t in times]
        units = site[estimate].attrs.get("units", "")

    def listed(values):
        return [None if not np.isfinite(v) else round(float(v), 4) for v in values]

    flags = None if held is None else [None if not np.isfinite(v) or v < 0 else bool(v) for v in held[keep]]
    if split in ("validation", "grid_at_held_out_towers") and flags is not None:
        scored = [i for i, v in enumerate(flags) if v]
    elif split == "cv" and flags is not None:
        scored = [i for i, v in enumerate(flags) if v is False]
    else:
        scored = list(range(int(keep.sum())))
    obs, est = listed(observed[keep]), listed(estimated[keep])
    return {
        "file": name,
        "estimate": estimate,
        "units": units,
        "time": times,
        "observed": obs,
        "estimated": est,
        "is_validation": flags,
        "scatter": [[obs[i], est[i]] for i in scored if obs[i] is not None and est[i] is not None],
        "fold": fold if fold is not None and fold >= 0 else None,
    }


def station_page(dataset_id: str, number: int, code: str, user) -> dict:
    """What one station's page of a version shows.

    Parameters
    ----------
    dataset_id, number : the version.
    code : str
        The station code (``ValidationResult.label`` of its site rows).
    user : the request's user (the series follow the dataset's access policy).

    Returns
    -------
    dict with ``version``, ``dataset``, ``code``, ``station`` (Station or None), ``rows`` (its rows, as
    :func:`browse` gives them), ``roles`` (per split: ``split``, ``facts``, ``role`` (text or None: not
    known), ``fold`` and ``folds`` (int or None)), ``series`` (per split with a series file: its series, or
    an empty list), ``decision`` (the access decision; series are empty when it refuses), ``missing`` (the
    splits whose per-station series the version's files do not hold, said whatever the decision).

    Raises
    ------
    NotFound
        No such version, or the version has no per-station row of ``code``.
    """
    version = get_version(dataset_id, number)
    rows = list(
        ValidationResult.objects.filter(version=version, scope=ValidationResult.Scope.SITE, label=code)
        .select_related("station")
        .order_by("split", "variable")
    )
    if not rows:
        raise NotFound(f"version {number} of {dataset_id!r} has no validation row of station {code!r}")
    every = ValidationResult.objects.filter(version=version, split__in={r.split for r in rows})
    tables, kinds = _tables([*every.exclude(scope=ValidationResult.Scope.SITE), *rows])
    decision = access.decide(user, version.dataset)
    parameters = version.lineage.get("parameters") or {}
    roles, series, missing = [], [], []
    for table in tables:
        split = table["split"]
        stored = split in SERIES_FILES and version.files.filter(name=SERIES_FILES[split][0]).exists()
        s = _series(version, split, code) if stored and decision.allowed else None
        fold = s["fold"] if s else None
        folds = parameters.get(FOLD_PARAMETER.get(split, ""))
        roles.append(
            {
                "split": split,
                "facts": table["facts"],
                "role": ROLES.get(split),
                "fold": None if fold is None else fold + 1,
                "folds": folds if isinstance(folds, int) else None,
            }
        )
        if s:
            series.append({"split": split, "title": table["facts"]["title"], **s})
        elif not stored or decision.allowed:  # what the files hold is said to anyone; the values are data
            missing.append(split)
    station = next((r.station for r in rows if r.station), None)
    return {
        "version": version,
        "dataset": version.dataset,
        "code": code,
        "station": station,
        "rows": [_row(r, kinds) for r in rows],
        "roles": roles,
        "series": series,
        "decision": decision,
        "missing": missing,
    }
