"""Map previews of published grids: layers, rendering one time step to PNG, legends, values at a point.

The services layer behind the dataset page's map, the PNG endpoints and OGC WMS (:mod:`portal.maps.wms`).
Values are read from the map-chunked cube store (:func:`portal.subsets.services.open_cube` with
``layout="map"``: one chunk per time step for grids up to 2**21 cells), only the rows and columns
under the requested pixels (orthogonal indexing), and drawn by the pure :mod:`portal.maps.render`.

Caching: published versions are immutable, so a rendered PNG is kept as a file under
``WORK_ROOT/maps-cache/<sha256 of the NetCDF>/`` keyed by (variable, time step, bbox, size) and written
atomically (:func:`products.methods.files.atomic_path`); the colour range of a variable (sampled once
from three time steps) is kept there too. The key holds the file's checksum, so a new version (or a
file replaced in tests) never reads a stale image. No access checks here: the views check
:func:`portal.catalog.access.decide` before calling.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.urls import reverse

from portal import storage
from portal.catalog.models import Dataset, DatasetFile, DatasetVersion
from portal.subsets import services as subsets
from portal.subsets.grids import GridInfo, grid_info
from products.methods.files import atomic_path

from . import render

SAMPLE_CELLS = 2**18
"""Cells read per sampled time step to fit a colour range (strided)."""


class MapError(ValueError):
    """A bad map request: ``field`` names the parameter, ``code`` the OGC WMS exception code."""

    def __init__(self, field: str, message: str, code: str = "InvalidParameterValue", status: int = 400):
        super().__init__(message)
        self.field, self.code, self.status = field, code, status


@dataclass(frozen=True)
class Layer:
    """One drawable variable of a published grid.

    Attributes
    ----------
    name : str
        ``<dataset id>:<variable>``, or ``<dataset id>:<file stem>:<variable>`` when the version holds
        several grids.
    dataset, version, file : the records
    variable : str
    info : GridInfo
    attrs : dict
        The variable's CF attributes (units, long_name, flag_values, flag_meanings, ...).
    """

    name: str
    dataset: Dataset
    version: DatasetVersion
    file: DatasetFile
    variable: str
    info: GridInfo
    attrs: dict

    @property
    def title(self) -> str:
        label = self.attrs.get("long_name") or self.variable
        return f"{self.dataset.title_en or self.dataset.title_cn or self.dataset.id}: {label}"


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _physical(da) -> dict[str, Any]:
    """A variable's attributes, with ``valid_min`` / ``valid_max`` / ``valid_range`` in the units of its values:
    CF states them in the stored (packed) units, which decoding with ``scale_factor`` / ``add_offset`` leaves as
    they are (a soil moisture packed as int16 x 0.001 has valid_range 0..1000 for values 0..1)."""
    attrs = {k: _plain(v) for k, v in da.attrs.items()}
    scale, offset = da.encoding.get("scale_factor"), da.encoding.get("add_offset")
    if scale is None and offset is None:
        return attrs
    for key in ("valid_min", "valid_max", "valid_range"):
        if key in attrs:
            value = np.asarray(attrs[key], dtype="float64") * float(1.0 if scale is None else scale)
            attrs[key] = _plain(value + float(offset or 0.0))
    return attrs


VERSION_MARK = "@v"
"""Layer names of an earlier (superseded) version: ``<dataset id>@v<number>:...`` (as EDR's collections)."""


def version_layers(version: DatasetVersion, *, earlier: bool = False) -> list[Layer]:
    """The layers of a version: one per ``(time, lat, lon)`` variable of each gridded NetCDF.

    ``earlier``: name them as layers of an earlier version (``<dataset id>@v<number>:...``)."""
    grids = [
        (f, info)
        for f in sorted(version.files.all(), key=lambda f: f.name)
        if f.name.endswith(".nc") and (info := grid_info(f)) is not None
    ]
    layers = []
    for f, info in grids:
        meta = subsets.planning_view(f)
        for variable, _kind, _attrs in info.parameters:
            dataset = f"{version.dataset_id}{VERSION_MARK}{version.number}" if earlier else version.dataset_id
            prefix = dataset if len(grids) == 1 else f"{dataset}:{Path(f.name).stem}"
            attrs = _physical(meta[variable])
            layers.append(Layer(f"{prefix}:{variable}", version.dataset, version, f, variable, info, attrs))
    return layers


def dataset_layers(dataset: Dataset, number: str | int | None = None) -> list[Layer]:
    """The layers of version ``number`` of ``dataset`` (the latest when empty); [] without a grid.

    Raises
    ------
    MapError
        ``version``: not a version number or no such published version.
    """
    try:
        version = subsets.latest_version(dataset, number)
    except ValueError as exc:
        if number in (None, ""):
            return []
        raise MapError("version", str(exc)) from None
    return version_layers(version)


def find_layer(dataset: Dataset, variable: str | None, number=None, file: str | None = None) -> Layer:
    """The layer of ``variable`` (the first when empty) in version ``number`` (``file``: the NetCDF name).

    Raises
    ------
    MapError
        ``version`` as :func:`dataset_layers`; ``variable`` (code LayerNotDefined) when no such layer.
    """
    layers = dataset_layers(dataset, number)
    if file:
        layers = [la for la in layers if la.file.name == file]
    if variable:
        layers = [la for la in layers if la.variable == variable]
    if not layers:
        raise MapError(
            "variable",
            f"{dataset.id} has no map layer {variable or ''} {('in ' + file) if file else ''}".strip(),
            "LayerNotDefined",
            404,
        )
    return layers[0]


def layer_by_name(name: str) -> tuple[Dataset, Layer]:
    """The layer named ``name`` in WMS (``<dataset id>:<variable>`` or ``<dataset id>:<stem>:<variable>``;
    ``<dataset id>@v<number>:...`` for a superseded version).

    Raises
    ------
    MapError
        ``LAYERS``, code LayerNotDefined.
    """
    parts = name.split(":")
    dataset_id, mark, number = parts[0].rpartition(VERSION_MARK) if VERSION_MARK in parts[0] else (parts[0], "", "")
    dataset = Dataset.objects.filter(id=dataset_id).first() if len(parts) in (2, 3) else None
    if dataset is not None and (not mark or number.isdigit()):
        for layer in earlier_layers(dataset, int(number)) if mark else dataset_layers(dataset):
            if layer.name == name:
                return dataset, layer
    raise MapError("LAYERS", f"no layer {name[:200]!r}: see GetCapabilities", "LayerNotDefined")


def earlier_layers(dataset: Dataset, number: int | None = None) -> list[Layer]:
    """The layers of the dataset's superseded versions (of version ``number`` only when given), named
    ``<dataset id>@v<number>:...``; the latest version's layers are :func:`dataset_layers`."""
    versions = list(dataset.versions.order_by("-number"))
    return [
        layer for v in versions[1:] if number is None or v.number == number for layer in version_layers(v, earlier=True)
    ]


# --------------------------------------------------------------------------- time steps


def time_steps(layer: Layer) -> list[pd.Timestamp]:
    """The layer's time steps."""
    return [pd.Timestamp(t) for t in subsets.planning_view(layer.file)["time"].values]


def time_index(layer: Layer, text: str | None, field: str = "time") -> int:
    """Index of the time step ``text`` names (ISO 8601 instant or date; empty or "current": the last).

    A date names the step that falls on it. Raises :class:`MapError` (InvalidDimensionValue) otherwise.
    """
    steps = time_steps(layer)
    if text in (None, "", "current"):
        return len(steps) - 1
    try:
        when = pd.Timestamp(str(text).strip())
    except (ValueError, TypeError):
        raise MapError(field, f"expected an ISO 8601 time, got {str(text)[:40]!r}", "InvalidDimensionValue") from None
    if when.tzinfo is not None:
        when = when.tz_convert("UTC").tz_localize(None)
    for i, step in enumerate(steps):
        if step == when:
            return i
    if len(str(text).strip()) <= 10:  # a date: the step on that day
        for i, step in enumerate(steps):
            if step.normalize() == when.normalize():
                return i
    raise MapError(
        field,
        f"{str(text)[:40]} is not a time step of {layer.name} ({steps[0]:%Y-%m-%d} .. {steps[-1]:%Y-%m-%d})",
        "InvalidDimensionValue",
    )


# --------------------------------------------------------------------------- styles and caching


def cache_dir(layer: Layer) -> Path:
    """Where the layer's rendered images live (per file checksum: immutable)."""
    return storage.work_root() / "maps-cache" / _cache_key(layer.file) / layer.variable


RENDER_VERSION = 2
"""Bumped when the images of an unchanged file would be drawn differently (2: packed valid ranges unpacked);
the caches of earlier renderings are then pruned by :func:`prune_cache`."""


def _cache_key(f: DatasetFile) -> str:
    return (f.sha256 or hashlib.sha256(f"{f.path}:{f.size}".encode()).hexdigest())[:32] + f"-r{RENDER_VERSION}"


def prune_cache() -> int:
    """Remove the cached images of files no published version holds any more (an unpublished or deleted
    version: versions are immutable, so nothing else goes stale); returns how many files' caches went."""
    root = storage.work_root() / "maps-cache"
    if not root.is_dir():
        return 0
    keep = {_cache_key(f) for f in DatasetFile.objects.only("sha256", "path", "size")}
    gone = 0
    for folder in root.iterdir():
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(missing_ok=True)
            gone += 1
    return gone


def warm_quicklooks() -> int:
    """Draw the quicklook of every latest version with a grid that has none cached yet (the list pages and
    STAC then never wait for one); returns how many were drawn."""
    drawn = 0
    for dataset in Dataset.objects.filter(versions__isnull=False).distinct():
        version = dataset.versions.order_by("-number").first()
        layer = quicklook_layer(version) if version is not None else None
        if (
            layer is not None
            and not _image_path(layer, layer.info.steps - 1, default_bbox(layer), *QUICKLOOK_SIZE).exists()
        ):
            quicklook(version)  # drawn and cached by render_png
            drawn += 1
    return drawn


def housekeeping() -> dict[str, int]:
    """The maps' periodic pass (Celery beat): stale caches pruned, missing quicklooks drawn."""
    return {"pruned": prune_cache(), "quicklooks": warm_quicklooks()}


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


_STYLES: dict[tuple[str, str], tuple[render.Style, float, float]] = {}


def style(layer: Layer) -> tuple[render.Style, float, float]:
    """The layer's :class:`~portal.maps.render.Style` and colour range, fixed per version.

    Sampled once from the first, middle and last time steps (strided to about ``SAMPLE_CELLS``
    cells each), then kept in memory and as ``style.json`` beside the images.
    """
    key = (str(cache_dir(layer)), layer.variable)
    if key in _STYLES:
        return _STYLES[key]
    path = cache_dir(layer) / "style.json"
    if path.exists():
        vmin, vmax, lo, hi = json.loads(path.read_text())
    else:
        steps = layer.info.steps
        ny, nx = layer.info.shape[1], layer.info.shape[0]
        stride = max(1, int(np.ceil(np.sqrt(ny * nx / SAMPLE_CELLS))))
        with subsets.open_cube(layer.file, layout="map") as ds:
            da = ds[layer.variable]
            samples = np.concatenate(
                [
                    np.asarray(
                        da.isel(time=t, lat=slice(None, None, stride), lon=slice(None, None, stride)).values,
                        dtype=float,
                    ).ravel()
                    for t in sorted({0, steps // 2, steps - 1})
                ]
            )
        finite = samples[np.isfinite(samples)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        first = render.choose_style(layer.variable, layer.attrs, (lo, hi))
        vmin, vmax = render.value_range(samples, first, layer.attrs)
        _write_atomic(path, json.dumps([vmin, vmax, lo, hi]).encode())
    result = (render.choose_style(layer.variable, layer.attrs, (lo, hi)), vmin, vmax)
    _STYLES[key] = result
    return result


def legend(layer: Layer) -> dict[str, Any]:
    """The layer's legend as JSON (see :func:`portal.maps.render.legend`), with its name and variable."""
    st, vmin, vmax = style(layer)
    return {"layer": layer.name, "variable": layer.variable, **render.legend(st, vmin, vmax)}


def legend_png(layer: Layer) -> bytes:
    """The layer's legend image (cached file)."""
    path = cache_dir(layer) / "legend.png"
    if not path.exists():
        _write_atomic(path, render.legend_png(*style(layer)))
    return path.read_bytes()


# --------------------------------------------------------------------------- rendering


def check_size(width: Any, height: Any, names: tuple[str, str] = ("width", "height")) -> tuple[int, int]:
    """Parse pixel sizes (1..:data:`portal.maps.render.MAX_PIXELS`). Raises :class:`MapError` naming the field."""
    out = []
    for name, value in zip(names, (width, height), strict=True):
        text = str(value).strip() if value is not None else ""
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= render.MAX_PIXELS:
            raise MapError(name, f"expected a whole number of pixels from 1 to {render.MAX_PIXELS}, got {text[:20]!r}")
        out.append(int(text))
    return out[0], out[1]


def check_bbox(text: Any, field: str = "bbox", *, lat_first: bool = False) -> tuple[float, float, float, float]:
    """Parse ``west,south,east,north`` (``south,west,north,east`` when ``lat_first``) in degrees.

    ``east`` may be up to 540 (a map across the antimeridian); latitudes within -90..90.
    Raises :class:`MapError` naming ``field``.
    """
    parts = str(text or "").split(",")
    try:
        if len(parts) != 4 or not all(p.strip().isascii() for p in parts):
            raise ValueError
        values = [float(p) for p in parts]
    except ValueError:
        order = "min_lat,min_lon,max_lat,max_lon" if lat_first else "min_lon,min_lat,max_lon,max_lat"
        raise MapError(field, f"expected four numbers {order}, got {str(text)[:80]!r}") from None
    west, south, east, north = (values[1], values[0], values[3], values[2]) if lat_first else values
    if not all(np.isfinite(values)) or not (-90 <= south < north <= 90) or not (-540 <= west < east <= 540):
        raise MapError(field, f"expected a box with min < max, latitudes in -90..90, got {str(text)[:80]!r}")
    if east - west > 720:
        raise MapError(field, "the box spans more than two turns of longitude")
    return west, south, east, north


def default_bbox(layer: Layer) -> tuple[float, float, float, float]:
    """The grid's cell-edge extent (east beyond 180 across the antimeridian)."""
    west, south, east, north = layer.info.bbox
    return (west, south, east + 360 if east <= west else east, north)


def _key(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def read_window(layer: Layer, t: int, bbox, width: int, height: int) -> np.ndarray:
    """The ``(height, width)`` field under the pixels of ``bbox`` at time step ``t`` (nearest cell; NaN off the grid).

    Reads only the rows and columns under the pixels from the map-chunked store.
    """
    meta = subsets.planning_view(layer.file)
    lat, lon = np.asarray(meta["lat"].values, float), np.asarray(meta["lon"].values, float)
    rows, cols = render.resample_plan(lat, lon, bbox, width, height)
    used_rows, used_cols = np.unique(rows[rows >= 0]), np.unique(cols[cols >= 0])
    if used_rows.size == 0 or used_cols.size == 0:
        return np.full((height, width), np.nan)
    with subsets.open_cube(layer.file, layout="map") as ds:
        da = ds[layer.variable].isel(time=t)
        r = slice(used_rows[0], used_rows[-1] + 1) if used_rows.size == used_rows[-1] - used_rows[0] + 1 else used_rows
        c = slice(used_cols[0], used_cols[-1] + 1) if used_cols.size == used_cols[-1] - used_cols[0] + 1 else used_cols
        block = np.asarray(da.isel(lat=r, lon=c).values, dtype=float)
    return render.gather(block, rows, cols, used_rows, used_cols)


def _image_path(layer: Layer, t: int, bbox, width: int, height: int) -> Path:
    bbox = tuple(round(float(v), 6) for v in bbox)
    return cache_dir(layer) / f"{t}" / f"{_key(bbox, width, height)}.png"


def render_png(layer: Layer, t: int, bbox, width: int, height: int) -> bytes:
    """PNG of time step ``t`` of ``layer`` over ``bbox`` (CRS84, west,south,east,north) at ``width`` x ``height``.

    Cached as a file per (variable, step, bbox, size) of the version's file: a second call reads it back.
    """
    path = _image_path(layer, t, bbox, width, height)
    if path.exists():
        return path.read_bytes()
    st, vmin, vmax = style(layer)
    data = render.encode_png(render.colourise(read_window(layer, t, bbox, width, height), st, vmin, vmax))
    _write_atomic(path, data)
    return data


def map_png(dataset: Dataset, params: Mapping[str, str]) -> bytes:
    """The map image a ``GET /api/datasets/<id>/map.png`` asks for (the one call of its view).

    Parameters
    ----------
    dataset : Dataset
    params : mapping of str to str
        ``variable``, ``time`` (ISO date or instant; default the last step), ``bbox``
        (min_lon,min_lat,max_lon,max_lat; default the grid's extent), ``width``, ``height`` (pixels, default
        720 x 360), ``version`` (default the latest), ``file`` (the NetCDF, when the version holds several).

    Returns
    -------
    bytes
        A PNG (:func:`render_png`).

    Raises
    ------
    MapError
        Naming the parameter (:func:`find_layer`, :func:`check_bbox`, :func:`check_size`, :func:`time_index`).
    """
    layer = find_layer(dataset, params.get("variable"), params.get("version"), params.get("file"))
    bbox = check_bbox(params["bbox"]) if params.get("bbox") else default_bbox(layer)
    width, height = check_size(params.get("width", "720"), params.get("height", "360"))
    return render_png(layer, time_index(layer, params.get("time")), bbox, width, height)


def value_at(layer: Layer, t: int, lon: float, lat: float) -> dict[str, Any]:
    """The value of the cell nearest to (``lon``, ``lat``) at step ``t``, with the cell's centre.

    Returns
    -------
    dict
        ``{"layer", "variable", "time", "lon", "lat", "value", "units"}``; ``value`` None off the grid or
        where missing; for flags also ``"meaning"``.
    """
    meta = subsets.planning_view(layer.file)
    lats, lons = np.asarray(meta["lat"].values, float), np.asarray(meta["lon"].values, float)
    r = int(render.nearest_indices(lats, np.array([lat]))[0])
    c = int(render.nearest_indices(lons, np.array([lon]), periodic=True)[0])
    when = time_steps(layer)[t]
    answer: dict[str, Any] = {
        "layer": layer.name,
        "variable": layer.variable,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "units": str(layer.attrs.get("units", "")),
        "lon": None,
        "lat": None,
        "value": None,
    }
    if r < 0 or c < 0:
        return answer
    with subsets.open_cube(layer.file, layout="map") as ds:
        value = float(ds[layer.variable].isel(time=t, lat=r, lon=c).values)
    answer.update(lon=float(lons[c]), lat=float(lats[r]), value=value if np.isfinite(value) else None)
    flags = dict(render.parse_flags(layer.attrs))
    if flags and answer["value"] is not None:
        answer["meaning"] = next((m for v, m in flags.items() if np.isclose(v, value)), None)
    return answer


QUICKLOOK_SIZE = (360, 180)


def quicklook_layer(version: DatasetVersion, file: str | None = None) -> Layer | None:
    """The layer a version's quicklook shows (the first estimate, not an uncertainty, of its first grid, or of
    the grid ``file``), or None without a grid."""
    layers = [la for la in version_layers(version) if not file or la.file.name == file]
    layers.sort(key=lambda la: render.uncertainty_kind(la.variable, la.attrs) is not None)  # an estimate first
    return layers[0] if layers else None


def quicklook_paths(datasets) -> dict[str, str]:
    """``{dataset id: path of its latest version's quicklook}`` for those of ``datasets`` whose latest version
    holds a grid (one query: the files of their versions; grids recognised by :func:`grid_info`, cached)."""
    ids = [d.id for d in datasets]
    if not ids:
        return {}
    latest: dict[str, tuple[int, list[DatasetFile]]] = {}
    for f in DatasetFile.objects.filter(version__dataset_id__in=ids).select_related("version"):
        number, current = f.version.number, latest.get(f.version.dataset_id)
        if current is None or number > current[0]:
            latest[f.version.dataset_id] = current = (number, [])
        if number == current[0] and f.name.endswith(".nc"):
            current[1].append(f)
    return {
        dataset_id: reverse("maps:quicklook", args=[dataset_id, number])
        for dataset_id, (number, files) in latest.items()
        if any(grid_info(f) is not None for f in files)
    }


def quicklook(version: DatasetVersion, file: str | None = None) -> bytes | None:
    """A quicklook PNG of a published grid version (360 x 180 for a global grid): its first variable's
    (of grid ``file`` when given) last time step over the grid's extent; None without such a grid."""
    layer = quicklook_layer(version, file)
    if layer is None:
        return None
    return render_png(layer, layer.info.steps - 1, default_bbox(layer), *QUICKLOOK_SIZE)


def chosen_page_config(versions, chosen: Any = None) -> dict[str, Any] | None:
    """:func:`page_config` of the version numbered ``chosen`` among ``versions`` (a dataset's published
    versions; the latest when ``chosen`` is empty or names none of them), with ``latest`` (the latest number),
    ``choices`` (the numbers of the versions with a grid, newest first) and ``record`` (the dataset, for the
    caller's access check); None without versions or without a grid."""
    versions = sorted(versions or [], key=lambda v: v.number, reverse=True)
    if not versions:
        return None
    version = next((v for v in versions if str(v.number) == str(chosen or "").strip()), versions[0])
    config = page_config(version)
    if config is not None:
        choices = [v.number for v in versions if v is version or version_layers(v)]
        config.update(latest=versions[0].number, choices=choices, record=version.dataset)
    return config


def page_config(version: DatasetVersion) -> dict[str, Any] | None:
    """What the dataset page's map needs (JSON): the layers with their time steps and extent; None without a grid."""
    layers = version_layers(version)
    if not layers:
        return None
    out = []
    for layer in layers:
        steps = time_steps(layer)
        out.append(
            {
                "name": layer.name,
                "variable": layer.variable,
                "file": layer.file.name,
                "label": str(layer.attrs.get("long_name") or layer.variable),
                "units": str(layer.attrs.get("units", "")),
                "bbox": list(default_bbox(layer)),
                "times": [s.strftime("%Y-%m-%d") if s == s.normalize() else s.isoformat() for s in steps],
            }
        )
    return {"dataset": version.dataset_id, "version": version.number, "layers": out}
