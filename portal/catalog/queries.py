"""Read-side functions behind the catalog pages and API (search, detail context, chart series)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from products.models import ValidationResult
from products.registry import product_for_dataset

from .models import Dataset, DatasetPerson, DatasetVersion, Tag

SEARCH_FIELDS = ("title_cn", "title_en", "abstract_cn", "abstract_en")


class QueryError(ValueError):
    """A user's request that cannot be answered as asked (answered with 400)."""


def search_datasets(q: str = "", *, category: str = "", start_year: int | None = None,
                    end_year: int | None = None) -> QuerySet[Dataset]:
    """Datasets whose titles, abstracts (Chinese or English) or tags contain every word of ``q``.

    Parameters
    ----------
    q : words separated by spaces; each must occur (case-insensitive) in one of the four texts.
        Chinese has no spaces between words, so a Chinese phrase is matched as a substring.
    category : TPDC category (e.g. ``水文``); empty for all.
    start_year, end_year : keep datasets whose acquisition period overlaps these years.

    Returns
    -------
    QuerySet of Dataset with tags prefetched, ordered by English title.
    """
    # PostgreSQL text cannot hold NUL; a NUL typed into a search box is noise, not a server error.
    q, category = q.replace("\x00", ""), category.replace("\x00", "")
    qs = Dataset.objects.prefetch_related("tags").order_by("title_en", "title_cn")
    for word in q.split():
        match = Q(id__in=Tag.objects.filter(name__icontains=word).values("datasets"))
        for field in SEARCH_FIELDS:
            match |= Q(**{f"{field}__icontains": word})
        qs = qs.filter(match)
    if category:
        qs = qs.filter(category=category)
    if start_year is not None:
        qs = qs.filter(Q(acq_end__year__gte=start_year) | Q(acq_end__isnull=True))
    if end_year is not None:
        qs = qs.filter(Q(acq_start__year__lte=end_year) | Q(acq_start__isnull=True))
    return qs


def categories() -> list[str]:
    return sorted(c for c in Dataset.objects.values_list("category", flat=True).distinct() if c)


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


def dataset_page(dataset_id: str) -> DatasetPage:
    """Everything the detail page shows. Raises Dataset.DoesNotExist for an unknown id."""
    dataset = (Dataset.objects.prefetch_related(
        "tags", Prefetch("roles", queryset=DatasetPerson.objects.select_related("person")),
        Prefetch("versions", queryset=DatasetVersion.objects.prefetch_related("files").select_related("generation_run")))
        .get(id=dataset_id))
    people: dict[str, list[DatasetPerson]] = {role: [] for role in DatasetPerson.Role.values}
    for role in dataset.roles.all():
        people[role.role].append(role)
    versions = sorted(dataset.versions.all(), key=lambda v: -v.number)
    latest = versions[0] if versions else None
    results = list(ValidationResult.objects.filter(version=latest, split="validation").select_related("station")
                   .order_by("scope", "label")) if latest else []
    stations = sorted(({"code": r.station.code, "lat": r.station.geom.y, "lon": r.station.geom.x, "kge": r.kge, "n": r.n}
                       for r in results if r.scope == "site" and r.station), key=lambda s: (-s["n"], s["code"]))
    return DatasetPage(
        dataset=dataset, people=people, versions=versions, latest=latest,
        pooled=[r for r in results if r.scope == "pooled"], sites=[r for r in results if r.scope == "site"],
        classes=[r for r in results if r.scope == "class"], stations=stations,
        product=product_for_dataset(dataset.id))


def version_file_path(dataset_id: str, number: int, name: str):
    """The DatasetFile and its absolute path. Raises DatasetFile.DoesNotExist when unknown."""
    from .models import DatasetFile

    f = DatasetFile.objects.select_related("version__dataset").get(
        version__dataset_id=dataset_id, version__number=number, name=name)
    return f, Path(settings.DATA_ROOT) / f.path


def tower_series(version: DatasetVersion, station: str) -> dict:
    """Observed and generated ET of one site from the version's CF timeSeries file.

    Parameters
    ----------
    version : a published version of the ET product (one NetCDF file, dims (station, time)).
    station : the site code (``station_name``).

    Returns
    -------
    dict with ``station``, ``units`` (kg m-2 d-1 = mm d-1), ``time`` (ISO dates), ``et_obs`` and
    ``et`` (lists, None where missing), ``is_validation`` (list of bool or None).

    Raises
    ------
    QueryError
        The station is not in the file.
    """
    f = version.files.get(name__endswith=".nc")
    with xr.open_dataset(Path(settings.DATA_ROOT) / f.path) as ds:
        names = [str(n) for n in ds["station_name"].values]
        if station not in names:
            raise QueryError(f"station {station!r} is not in {f.name}; expected one of {', '.join(sorted(names)[:10])}, ...")
        site = ds.isel(station=names.index(station))
        keep = np.isfinite(site["et"].values) | np.isfinite(site["et_obs"].values)
        flags = site["is_validation"].values[keep]

        def listed(values):
            return [None if not np.isfinite(v) else round(float(v), 4) for v in values]

        return {
            "station": station, "units": site["et"].attrs.get("units", ""),
            "time": [str(t)[:10] for t in site["time"].values[keep]],
            "et_obs": listed(site["et_obs"].values[keep]), "et": listed(site["et"].values[keep]),
            "is_validation": [None if not np.isfinite(v) or v < 0 else bool(v) for v in flags.astype(float)],
        }

