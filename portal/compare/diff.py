"""What differs between two versions of a dataset: lineage, validation metrics, grids (pure, no Django).

Used by :mod:`portal.compare.services`. Every function takes plain values (dicts of a version's
lineage, validation rows as dicts, NumPy arrays of two grids) and returns JSON-ready values.

Conventions: version ``a`` is the reference, ``b`` the one compared with it; every delta is
``b - a``. A metric is *better* when it moves towards its ideal value: up for KGE, r and NSE
(ideal 1), down for RMSE and ubRMSE (ideal 0), towards 0 in absolute value for the bias and
towards 1 for the variability ratio alpha and the bias ratio beta (Gupta et al. 2009).

References
----------
* Gupta, H. V., Kling, H., Yilmaz, K. K. and Martinez, G. F. (2009), Decomposition of the mean
  squared error and NSE performance criteria, J. Hydrol. 377, 80-91 (KGE, alpha, beta).
* Entekhabi, D., Reichle, R. H., Koster, R. D. and Crow, W. T. (2010), Performance metrics for soil
  moisture retrievals and application requirements, J. Hydrometeorol. 11, 832-840 (ubRMSE).
* The difference map is drawn with the map previews' colouring and PNG encoder
  (:func:`portal.maps.render.colourise`, :func:`portal.maps.render.encode_png`; Matplotlib's RdBu_r).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from portal.maps import render
from products.methods.metrics import MEAN_RATIO_SCORES

METRICS = ("kge", "r", "nse", "rmse", "ubrmse", "bias", "alpha", "beta")
"""The metrics compared (columns of a validation row), in the order shown."""

IDEAL = {"kge": 1.0, "r": 1.0, "nse": 1.0, "rmse": 0.0, "ubrmse": 0.0, "bias": 0.0, "alpha": 1.0, "beta": 1.0}
"""The ideal value of each metric: *better* is closer to it."""

VERDICT_METRICS = ("r", "kge", "ubrmse")
"""The metrics a station's verdict (better / worse / mixed / unchanged) is taken from."""

REASON_METRICS = MEAN_RATIO_SCORES
"""The metrics that a row's ``not_meaningful`` reason replaces (no number for a zero-mean reference)."""

TOLERANCE = 1e-9
"""Changes smaller than this (absolute, in the metric's units) count as unchanged (float round-off)."""


# --------------------------------------------------------------------------- lineage


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


def parameters_diff(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The parameters that differ between two versions' lineages.

    Parameters
    ----------
    a, b : mapping of str to JSON value, or None
        ``lineage["parameters"]`` of the two versions (None: no parameters recorded).

    Returns
    -------
    list of dict
        One ``{"name", "a", "b", "change"}`` per differing name, sorted by name; ``change`` is
        ``"changed"``, ``"added"`` (only in ``b``; ``a`` is None) or ``"removed"`` (only in ``a``).
    """
    a, b = dict(a or {}), dict(b or {})
    out = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            out.append({"name": name, "a": a[name], "b": None, "change": "removed"})
        elif name not in a:
            out.append({"name": name, "a": None, "b": b[name], "change": "added"})
        elif not _same(a[name], b[name]):
            out.append({"name": name, "a": a[name], "b": b[name], "change": "changed"})
    return out


def _input_key(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(item.get("role", "")), str(item.get("path", ""))


def inputs_diff(a: Iterable[Mapping[str, Any]] | None, b: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """The inputs two versions read, matched by (role, path), with their SHA-256 checksums.

    Parameters
    ----------
    a, b : iterable of mapping, or None
        ``lineage["inputs"]``: ``{"role", "path", "sha256", "size", ...}`` per input read.

    Returns
    -------
    dict
        ``changed`` (same role and path, another checksum: ``{"role", "path", "a_sha256",
        "b_sha256", "a_size", "b_size"}``), ``added`` (only in ``b``), ``removed`` (only in ``a``),
        each a list sorted by (role, path), and ``unchanged`` (the count of inputs with the same
        checksum in both).
    """
    by_a = {_input_key(i): i for i in (a or [])}
    by_b = {_input_key(i): i for i in (b or [])}
    changed, unchanged = [], 0
    for key in sorted(set(by_a) & set(by_b)):
        x, y = by_a[key], by_b[key]
        if x.get("sha256") == y.get("sha256"):
            unchanged += 1
            continue
        changed.append(
            {
                "role": key[0],
                "path": key[1],
                "a_sha256": x.get("sha256"),
                "b_sha256": y.get("sha256"),
                "a_size": x.get("size"),
                "b_size": y.get("size"),
            }
        )

    def brief(item: Mapping[str, Any]) -> dict[str, Any]:
        return {"role": item.get("role", ""), "path": item.get("path", ""), "sha256": item.get("sha256")}

    return {
        "changed": changed,
        "added": [brief(by_b[k]) for k in sorted(set(by_b) - set(by_a))],
        "removed": [brief(by_a[k]) for k in sorted(set(by_a) - set(by_b))],
        "unchanged": unchanged,
    }


# --------------------------------------------------------------------------- validation metrics


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def movement(metric: str, a: float | None, b: float | None) -> str | None:
    """Whether ``metric`` got ``"better"``, ``"worse"`` or stayed ``"unchanged"`` from ``a`` to ``b``.

    Better is closer to :data:`IDEAL` (in absolute distance). None when either value is missing.
    """
    if a is None or b is None:
        return None
    ideal = IDEAL[metric]
    da, db = abs(a - ideal), abs(b - ideal)
    if abs(da - db) <= TOLERANCE:
        return "unchanged"
    return "better" if db < da else "worse"


def _verdict(moves: Mapping[str, str | None]) -> str | None:
    counted = [moves.get(m) for m in VERDICT_METRICS if moves.get(m) is not None]
    if not counted:
        return None
    better, worse = counted.count("better"), counted.count("worse")
    if better and not worse:
        return "better"
    if worse and not better:
        return "worse"
    return "mixed" if better else "unchanged"


RowKey = tuple[str, str, str, str]


def row_key(row: Mapping[str, Any]) -> RowKey:
    """The key two versions' validation rows are matched by: (variable, split, scope, label)."""
    return str(row["variable"]), str(row["split"]), str(row["scope"]), str(row.get("label") or "")


def metric_deltas(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Metric deltas of two versions' validation rows matched by :func:`row_key`.

    Parameters
    ----------
    rows_a, rows_b : sequence of mapping
        Validation rows (:class:`products.models.ValidationResult` as dicts): ``variable``, ``units``,
        ``split``, ``scope`` (pooled / site / class), ``label``, ``n``, the :data:`METRICS` (float or
        None) and ``not_meaningful`` (why KGE and beta are no numbers for this reference; "" when
        they are).

    Returns
    -------
    list of dict
        One entry per key in either version, sorted by (split, scope, variable, label):
        ``variable``, ``units``, ``split``, ``scope``, ``label``, ``in_a``, ``in_b``, ``n_a``, ``n_b``,
        ``metrics`` (per metric: ``{"a", "b", "delta", "move"}``; for KGE and beta of a row whose
        reference makes them meaningless, ``{"reason"}`` in place of numbers), ``not_meaningful``
        (the reason, from whichever version gives one) and ``verdict``: ``better`` / ``worse`` when
        r, KGE and ubRMSE that moved all moved that way, ``mixed``, ``unchanged``, or None when the
        row is in one version only or has none of them.
    """
    by_a = {row_key(r): r for r in rows_a}
    by_b = {row_key(r): r for r in rows_b}
    out = []
    for key in sorted(set(by_a) | set(by_b), key=lambda k: (k[1], k[2], k[0], k[3])):
        ra, rb = by_a.get(key), by_b.get(key)
        reason = ((ra or {}).get("not_meaningful") or "") or ((rb or {}).get("not_meaningful") or "")
        metrics: dict[str, dict[str, Any]] = {}
        moves: dict[str, str | None] = {}
        for m in METRICS:
            if reason and m in REASON_METRICS:
                metrics[m] = {"reason": reason}
                continue
            va = _number(ra.get(m)) if ra else None
            vb = _number(rb.get(m)) if rb else None
            moves[m] = movement(m, va, vb)
            delta = vb - va if va is not None and vb is not None else None
            metrics[m] = {"a": va, "b": vb, "delta": delta, "move": moves[m]}
        any_row = rb or ra or {}
        out.append(
            {
                "variable": key[0],
                "units": any_row.get("units", ""),
                "split": key[1],
                "scope": key[2],
                "label": key[3],
                "in_a": ra is not None,
                "in_b": rb is not None,
                "n_a": ra.get("n") if ra else None,
                "n_b": rb.get("n") if rb else None,
                "metrics": metrics,
                "not_meaningful": reason,
                "verdict": _verdict(moves) if ra is not None and rb is not None else None,
            }
        )
    return out


def verdict_counts(deltas: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """How many stations (``site`` rows) and classes got better or worse, per (variable, split, scope).

    Returns
    -------
    list of dict
        ``{"variable", "split", "scope", "better", "worse", "mixed", "unchanged", "only_a",
        "only_b"}`` for each (variable, split, scope) of ``site`` and ``class`` rows, sorted.
    """
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for d in deltas:
        if d["scope"] == "pooled":
            continue
        key = (d["variable"], d["split"], d["scope"])
        c = counts.setdefault(key, dict.fromkeys(("better", "worse", "mixed", "unchanged", "only_a", "only_b"), 0))
        if not d["in_b"]:
            c["only_a"] += 1
        elif not d["in_a"]:
            c["only_b"] += 1
        elif d["verdict"] is not None:
            c[d["verdict"]] += 1
    return [{"variable": k[0], "split": k[1], "scope": k[2], **v} for k, v in sorted(counts.items())]


# --------------------------------------------------------------------------- grids


def same_grid(lat_a: np.ndarray, lon_a: np.ndarray, lat_b: np.ndarray, lon_b: np.ndarray) -> str:
    """Why two grids cannot be differenced cell by cell ("" when they can: same cell centres).

    Parameters
    ----------
    lat_a, lon_a, lat_b, lon_b : numpy.ndarray, shape (ny,), (nx,)
        Cell-centre coordinates in degrees.
    """
    if lat_a.shape != lat_b.shape or lon_a.shape != lon_b.shape:
        return f"the grids differ: {lat_a.size}x{lon_a.size} cells against {lat_b.size}x{lon_b.size}"
    if not (np.allclose(lat_a, lat_b, atol=1e-6) and np.allclose(lon_a, lon_b, atol=1e-6)):
        return "the grids have the same size but other cell centres"
    return ""


def time_steps(n: int, cells: int, max_values: int) -> np.ndarray:
    """Indices of at most ``max_values // cells`` evenly spaced steps out of ``n`` (all when they fit).

    Returns
    -------
    numpy.ndarray of int, shape (k,)
        Increasing indices in ``[0, n)``, the first and last always included (k >= 1 when n >= 1).
    """
    if n <= 0:
        return np.zeros(0, dtype=int)
    k = max(1, min(n, max_values // max(cells, 1)))
    if k >= n:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def domain_mean_difference(a: np.ndarray, b: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted domain means of ``b - a`` per time step, over the cells valid in both.

    Parameters
    ----------
    a, b : numpy.ndarray, shape (time, lat, lon), float
        The same variable of two versions on the same grid and time steps (NaN: no value).
    lat : numpy.ndarray, shape (lat,)
        Cell-centre latitudes in degrees: cells are weighted by cos(latitude) (equal-angle grid).

    Returns
    -------
    mean, rms : numpy.ndarray, shape (time,), float64
        Weighted mean and root-mean-square of ``b - a`` (NaN where no cell is valid in both).
    cells : numpy.ndarray, shape (time,), int
        Cells valid in both versions per step.
    """
    diff = b.astype("float64") - a.astype("float64")
    valid = np.isfinite(diff)
    w = np.broadcast_to(np.cos(np.deg2rad(lat))[None, :, None], diff.shape) * valid
    total = w.sum(axis=(1, 2))
    d = np.where(valid, diff, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * d).sum(axis=(1, 2)) / total
        rms = np.sqrt((w * d * d).sum(axis=(1, 2)) / total)
    empty = total == 0
    mean[empty], rms[empty] = np.nan, np.nan
    return mean, rms, valid.sum(axis=(1, 2))


def coarsen_factor(ny: int, nx: int, max_cells: int) -> int:
    """The smallest integer block size ``f`` such that ``ceil(ny/f) * ceil(nx/f) <= max_cells``."""
    f = 1
    while math.ceil(ny / f) * math.ceil(nx / f) > max_cells:
        f += 1
    return f


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor x factor`` blocks of a 2-D field, ignoring NaN (NaN where a block has no value).

    Parameters
    ----------
    values : numpy.ndarray, shape (ny, nx), float
    factor : int >= 1
        Blocks at the far edges may be smaller.

    Returns
    -------
    numpy.ndarray, shape (ceil(ny/factor), ceil(nx/factor)), float64
    """
    if factor <= 1:
        return values.astype("float64")
    ny, nx = values.shape
    py, px = (-ny) % factor, (-nx) % factor
    padded = np.pad(values.astype("float64"), ((0, py), (0, px)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    valid = np.isfinite(blocks)
    count = valid.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(valid, blocks, 0.0).sum(axis=(1, 3)) / count
    out[count == 0] = np.nan
    return out


def block_centres(coord: np.ndarray, factor: int) -> np.ndarray:
    """The centres of :func:`block_mean`'s blocks along one axis (mean of the member cells' centres)."""
    if factor <= 1:
        return coord.astype("float64")
    n = coord.size
    return np.array([coord[i : i + factor].mean() for i in range(0, n, factor)], dtype="float64")


def symmetric_limit(values: np.ndarray, percentile: float = 98.0) -> float:
    """The colour range ``[-L, L]`` of a difference map: the ``percentile`` of ``|values|`` (0 when all
    are 0 or NaN), so that a few extreme cells do not wash the map out."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 0.0
    return float(np.percentile(finite, percentile))


DIFFERENCE_STYLE = render.Style("diverging", "RdBu_r", "", "difference (b - a)")
"""Blue below zero, white at zero, red above (Matplotlib's RdBu reversed)."""


def difference_png(values: np.ndarray, limit: float, scale: int = 1) -> bytes:
    """A difference field as a PNG: blue below 0, white at 0, red above, transparent for NaN.

    Parameters
    ----------
    values : numpy.ndarray, shape (ny, nx), float
        Rows from south to north (as the grid's latitudes increase); the image is flipped so that
        north is up.
    limit : float
        Values at or beyond ``+-limit`` take the end colours (0: every valid cell is white).
    scale : int >= 1
        Each cell becomes ``scale`` x ``scale`` pixels.

    Returns
    -------
    bytes
        A PNG file (:func:`portal.maps.render.encode_png`).
    """
    bound = limit if limit > 0 else 1.0
    rgba = render.colourise(np.asarray(values, dtype=float)[::-1], DIFFERENCE_STYLE, -bound, bound)
    if scale > 1:
        rgba = rgba.repeat(scale, axis=0).repeat(scale, axis=1)
    return render.encode_png(rgba)


def ramp_css(steps: int = 7) -> str:
    """The difference map's colours as a CSS ``linear-gradient`` (the page's legend), left = negative."""
    colours = render.colourise(np.linspace(-1.0, 1.0, steps)[None, :], DIFFERENCE_STYLE, -1.0, 1.0)[0]
    stops = ", ".join(f"rgb({r},{g},{b})" for r, g, b, _ in colours)
    return f"linear-gradient(to right, {stops})"
