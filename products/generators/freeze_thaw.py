"""Freeze/thaw state classification with Extremely Randomized Trees, split by spatial blocks (no Django).

The seed dataset (TPDC f52826e1-..., Tibetan Plateau surface freeze/thaw 2011-2020) learns the SMOS
soil freeze/thaw state from AMSR-E/MWRI brightness temperatures, terrain, soil properties and GLDAS
with scikit-learn-style Extremely Randomized Trees (Geurts et al. 2006), splits its samples
70 % / 15 % / 15 % into training, validation and test sets and reports "> 86 % overall accuracy"
in each set. This module is that chain on whatever predictors and reference it is given:

1. :func:`reference_state` -- the frozen (1) / thawed (0) reference from a temperature field
   (below 273.15 K = frozen), or a reference read from a FT product
   (:mod:`ingestion.readers.freeze_thaw`);
2. :func:`block_split` -- 70/15/15 split of the *pixels* by spatial blocks
   (:func:`products.methods.cv.block_ids`): every pixel of a block, and all its days, lands in one
   set, so the test pixels have no training pixel in their block (never a random pixel-day split);
   :func:`variogram_block_split` sizes the blocks from the data: the block edge is the largest
   practical range of the empirical variograms of the predictors (:func:`empirical_variogram`,
   :func:`variogram_range`), computed without the reference labels, so a block is at least as
   wide as the distance over which the predictors are correlated;
3. :func:`fit_select` -- :class:`sklearn.ensemble.ExtraTreesClassifier` fitted on the training set,
   its leaf size chosen on the validation set (Cohen's kappa), scored on all three sets with
   :func:`classification_metrics` (confusion matrix, overall accuracy, Cohen's kappa, per-class
   recall);
4. :func:`write_state_grid` -- the daily state grid (uint8: 0 thawed, 1 frozen, 255 fill; CF
   ``flag_values``/``flag_meanings``; stored as a CF-1.8 byte with ``_Unsigned = "true"``, read back
   as uint8), with the ``crs`` grid mapping and cell bounds, predicted window by window with
   :func:`products.methods.chunked.predict_window` and written atomically; beside it
   ``probability_frozen`` (float32, [0, 1]), the selected model's probability of the class frozen
   (:func:`class_probability`), linked through ``ancillary_variables`` (issue 17); how well such
   probabilities are calibrated is measured out-of-fold in the block cross-validation
   (:func:`block_cv_reliability`);
5. :func:`products.generators.twins.freeze_thaw.make_twin` -- a synthetic twin with a known answer
   (frozen where a synthetic temperature field is below 0 degC, noisy predictors) to show that the
   classifier and the split work.

Every output carries ``data_kind`` (a :class:`products.data_kind.DataKind`: ``proxy experiment``,
``synthetic twin`` or ``real``), because the
real sample data hold no brightness temperature and no SMOS/SMAP FT file: the real chain is a
*proxy experiment* (GLDAS soil temperature as reference, other GLDAS fields and latitude as
predictors), see :mod:`products.pipelines.freeze_thaw`.

References
----------
Hu, H. (2025): Surface freeze/thaw state dataset of the Tibetan Plateau (2011-2020), National Tibetan
Plateau Data Center, record f52826e1-c61c-4b79-a43c-4ece3a8eca18 (the seed; "> 86 %" overall accuracy).
Geurts, P., Ernst, D., Wehenkel, L. (2006): Extremely randomized trees. Machine Learning 63, 3-42,
doi:10.1007/s10994-006-6226-1.
Cohen, J. (1960): A coefficient of agreement for nominal scales. Educational and Psychological
Measurement 20, 37-46, doi:10.1177/001316446002000104.
Pedregosa, F., et al. (2011): Scikit-learn: machine learning in Python. JMLR 12, 2825-2830
(``ExtraTreesClassifier``, ``confusion_matrix``, ``cohen_kappa_score``, ``recall_score``).
Roberts, D. R., et al. (2017): Cross-validation strategies for data with temporal, spatial,
hierarchical, or phylogenetic structure. Ecography 40, 913-929, doi:10.1111/ecog.02881.
Matheron, G. (1963): Principles of geostatistics. Economic Geology 58, 1246-1266,
doi:10.2113/gsecongeo.58.8.1246 (the semivariogram).
Webster, R., Oliver, M. A. (2007): Geostatistics for Environmental Scientists, 2nd ed., Wiley,
doi:10.1002/9780470517277 (empirical variogram, sill, practical range).
CF Conventions 1.8, section 3.5 (flags: ``flag_values``, ``flag_meanings``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sklearn
import xarray as xr
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.metrics import cohen_kappa_score, confusion_matrix
from sklearn.model_selection import GroupKFold

from products.data_kind import DataKind
from products.methods import cf, chunked
from products.methods import uncertainty as unc
from products.methods.cv import block_ids
from products.methods.files import atomic_path
from products.registry import PRODUCTS as REGISTRY

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

DATA_KINDS = (DataKind.PROXY.value, DataKind.SYNTHETIC.value, DataKind.REAL.value)
"""The data kinds a freeze/thaw file may carry (:class:`products.data_kind.DataKind` values)."""

THAWED, FROZEN = 0, 1
STATE_FILL = np.uint8(255)
SPLIT_FILL = np.int8(-1)
SETS = ("train", "validation", "test")
FREEZING_POINT_K = 273.15
DAY_DEFINITION = (
    "UTC calendar days: a daily value is the mean of the time steps stamped 00:00 to 23:59 UTC of that "
    "date (not local solar days; at 90 E local solar noon is near 06 UTC)"
)
"""What a "day" of a daily freeze/thaw value is (files' ``day_definition`` attribute and the summary)."""
ACCURACY_MEASURES = (
    "This accuracy measures the pipeline, not a freeze/thaw skill: the reference (GLDAS 0-10 cm soil "
    "temperature below 273.15 K) and the predictors (the same model's deeper soil temperatures) come from one "
    "land-surface model run, so the classifier learns that model's vertical coupling, not a retrieval of the "
    "state from observations; not comparable with the seed's published accuracy."
)
"""What the proxy experiment's accuracy measures (files' ``accuracy_measures`` attribute and the summary)."""
SEED_FIGURES = {
    "overall_accuracy": f"{REGISTRY['freeze_thaw'].published['overall_accuracy']} in each of the training, "
    "validation and test sets",
    "split": "70 % / 15 % / 15 % of the samples (random, per the record)",
    "reference": "SMOS soil freeze/thaw; validated with independent SMAP samples",
    "predictors": "AMSR-E/MWRI multi-channel brightness temperatures, terrain, soil properties, GLDAS",
    "record": f"TPDC {REGISTRY['freeze_thaw'].dataset_id}",
}
"""The seed's figures and set-up as its record states them (the figures from :data:`products.registry.PRODUCTS`)."""
STATE_ATTRS = {
    "long_name": "surface soil freeze/thaw state",
    "flag_values": np.array([THAWED, FROZEN], "u1"),
    "flag_meanings": "thawed frozen",
    "valid_range": np.array([THAWED, FROZEN], "u1"),
    "units": "1",
}
STATE_NAME = "ft_state"
"""The freeze/thaw state variable of the grids."""
PROBABILITY_NAME = "probability_frozen"
"""The variable holding the probability of the class ``frozen`` beside ``ft_state`` (issue 17)."""
SPLIT_ATTRS = {
    "long_name": "sample set of the pixel (spatial blocks)",
    "flag_values": np.array([0, 1, 2], "i1"),
    "flag_meanings": "train validation test",
    "units": "1",
}
REFERENCES = (
    "Geurts et al. (2006) doi:10.1007/s10994-006-6226-1; Cohen (1960) doi:10.1177/001316446002000104; "
    "TPDC record f52826e1-c61c-4b79-a43c-4ece3a8eca18 (seed); scikit-learn ExtraTreesClassifier"
)


# --- reference and features ---------------------------------------------------------------------


def reference_state(temperature, threshold: float = FREEZING_POINT_K) -> np.ndarray:
    """Frozen/thawed reference from a temperature field.

    Parameters
    ----------
    temperature : array_like or xarray.DataArray
        Any shape, float, K (e.g. GLDAS ``SoilTMP0_10cm_inst``, daily mean); NaN where missing.
    threshold : float, default 273.15
        Frozen where ``temperature < threshold`` (K).

    Returns
    -------
    numpy.ndarray
        uint8, same shape: 1 frozen, 0 thawed, :data:`STATE_FILL` (255) where the temperature is
        not finite.

    Raises
    ------
    ValueError
        A non-finite threshold, or a field whose finite values are outside 150-350 K (not kelvin).
    """
    t = np.asarray(temperature, dtype="float64")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, found {threshold}")
    ok = np.isfinite(t)
    if ok.any() and (t[ok].min() < 150.0 or t[ok].max() > 350.0):
        raise ValueError(f"temperatures from {t[ok].min():g} to {t[ok].max():g}: expected kelvin (150-350 K)")
    out = np.full(t.shape, STATE_FILL, dtype="u1")
    out[ok] = (t[ok] < threshold).astype("u1")
    return out


def daily_mean(ds: xr.Dataset, names: Sequence[str]) -> xr.Dataset:
    """Daily means (UTC calendar day of the time stamps, :data:`DAY_DEFINITION`) of some variables of a sub-daily cube.

    The days are UTC calendar days, not local solar days: over the Tibetan Plateau (about 90 E) the
    UTC day runs from 06:00 to 06:00 local solar time. Files and summaries say so
    (``day_definition``).

    Parameters
    ----------
    ds : xarray.Dataset
        ``(time, lat, lon)`` variables (e.g. several GLDAS files concatenated along ``time``).
    names : sequence of str
        Variables to average.

    Returns
    -------
    xarray.Dataset
        ``(time, lat, lon)`` with one step per day (00:00 UTC), float32, attributes kept, plus
        ``n_steps`` (int, steps averaged per day) in each variable's attributes. A cell missing at
        any step of a day is NaN that day.

    Raises
    ------
    KeyError
        A name not in ``ds``.
    """
    missing = [n for n in names if n not in ds]
    if missing:
        raise KeyError(f"variables {missing} not in the cube; found {sorted(map(str, ds.data_vars))}")
    sub = ds[list(names)]
    days = sub["time"].dt.floor("D")
    out = sub.groupby(days.rename("day")).mean(skipna=False).rename(day="time").astype("float32")
    counts = pd.Series(days.values).value_counts()
    for n in names:
        out[n].attrs = {**ds[n].attrs, "cell_methods": "time: mean", "n_steps": int(counts.min())}
    return out


@dataclass
class Samples:
    """Valid samples of a (time, lat, lon) predictor/reference cube, in C order of the grid.

    Attributes
    ----------
    X : numpy.ndarray
        float32 (n, n_features), predictor values.
    y : numpy.ndarray
        uint8 (n,), reference state (0 thawed, 1 frozen).
    lat, lon : numpy.ndarray
        float64 (n,), degrees of each sample's pixel.
    flat : numpy.ndarray
        int64 (n,), positions in the flattened (time, lat, lon) grid.
    features : list of str
        Column names of ``X``.
    """

    X: np.ndarray
    y: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    flat: np.ndarray
    features: list[str]


def tb_predictors(datasets: Sequence[xr.Dataset]) -> xr.Dataset:
    """Brightness-temperature predictors from AMSR2 L3 files of one grid (several frequencies/passes).

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
        As :func:`ingestion.readers.amsr2.open_grid` returns them (``tb_h``, ``tb_v`` in K,
        ``attrs`` ``frequency_ghz`` and ``orbit_direction``), all on one grid and day(s).

    Returns
    -------
    xarray.Dataset
        ``(time, lat, lon)`` float32: ``tb<ff><h|v>_<a|d>`` (K; ``ff`` the two-digit channel, ``a``
        ascending / ``d`` descending), ``npr<ff>_<a|d>`` = (V - H) / (V + H) (1), and, when 36 and
        18 GHz are both there, the spectral gradient ``sg_36v_18v_<a|d>`` = (TB36V - TB18V) /
        (36.5 - 18.7) (K GHz-1), the classic frozen-soil discriminant (negative over frozen soil).

    Raises
    ------
    ValueError
        The same channel and pass twice, or no dataset.

    References
    ----------
    Zuerndorfer, B. W., et al. (1990): Mapping freeze/thaw boundaries with SMMR data. Agricultural and
    Forest Meteorology 52, 199-225, doi:10.1016/0168-1923(90)90106-E; JAXA AMSR2 L3 format description.
    """
    if not datasets:
        raise ValueError("expected at least one AMSR2 dataset")
    channels = {36.5: "36", 18.7: "18", 23.8: "23", 10.65: "10", 6.925: "06", 7.3: "07", 89.0: "89"}
    out, freqs = {}, {}
    for ds in datasets:
        ghz = float(ds.attrs["frequency_ghz"])
        ff = channels.get(ghz, f"{ghz:g}".replace(".", "p"))
        orbit = str(ds.attrs.get("orbit_direction", "descending"))[0]
        for pol in ("h", "v"):
            name = f"tb{ff}{pol}_{orbit}"
            if name in out:
                raise ValueError(f"channel {ghz} GHz {pol.upper()} ({orbit}) given twice")
            out[name] = ds[f"tb_{pol}"].astype("float32")
        v, h = out[f"tb{ff}v_{orbit}"], out[f"tb{ff}h_{orbit}"]
        out[f"npr{ff}_{orbit}"] = (
            ((v - h) / (v + h))
            .astype("float32")
            .assign_attrs(units="1", long_name=f"normalised polarisation ratio at {ghz} GHz")
        )
        freqs[(ff, orbit)] = ghz
    for orbit in ("a", "d"):
        if ("36", orbit) in freqs and ("18", orbit) in freqs:
            out[f"sg_36v_18v_{orbit}"] = (
                ((out[f"tb36v_{orbit}"] - out[f"tb18v_{orbit}"]) / (36.5 - 18.7))
                .astype("float32")
                .assign_attrs(units="K GHz-1", long_name="spectral gradient of TB between 18.7 and 36.5 GHz V")
            )
    return xr.Dataset(out)


def check_no_leakage(features: Sequence[str], reference_source: str | None) -> None:
    """Refuse a predictor that is the reference's own field.

    Parameters
    ----------
    features : sequence of str
        Predictor names.
    reference_source : str or None
        Name of the field the reference was derived from (e.g. ``"SoilTMP0_10cm_inst"``).

    Raises
    ------
    ValueError
        ``reference_source`` is among ``features`` (target leakage).
    """
    if reference_source and reference_source in features:
        raise ValueError(
            f"target leakage: the reference is derived from {reference_source!r}, which is also a "
            "predictor; drop it from the features"
        )


def feature_matrix(
    predictors: xr.Dataset,
    features: Sequence[str],
    window: chunked.Window | None = None,
    reference: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix of the cells of a (window of a) predictor cube where every predictor is finite.

    Parameters
    ----------
    predictors : xarray.Dataset
        ``(time, lat, lon)`` variables (float); ``"lat"``/``"lon"`` as feature names use the
        coordinates (degrees).
    features : sequence of str
        Predictor names, in column order.
    window : chunked.Window, optional
        Only this window (default: the whole grid).
    reference : numpy.ndarray, optional
        uint8 reference of the same (window) shape: cells where it is fill are also invalid.

    Returns
    -------
    matrix : numpy.ndarray
        float32 (valid.sum(), n_features), rows in C order of ``valid``.
    valid : numpy.ndarray
        bool (n_time, n_lat, n_lon).

    Raises
    ------
    KeyError
        A feature neither a variable nor ``lat``/``lon``.
    """
    sub = predictors if window is None else predictors.isel(time=window.time, lat=window.lat, lon=window.lon)
    shape = (sub.sizes["time"], sub.sizes["lat"], sub.sizes["lon"])
    cols = []
    for name in features:
        if name == "lat":
            cols.append(np.broadcast_to(sub["lat"].values[None, :, None], shape))
        elif name == "lon":
            cols.append(np.broadcast_to(sub["lon"].values[None, None, :], shape))
        elif name in sub:
            cols.append(np.asarray(sub[name].transpose("time", "lat", "lon").values))
        else:
            raise KeyError(f"feature {name!r} is not a variable of the predictor cube ({sorted(map(str, sub))})")
    valid = np.ones(shape, dtype=bool)
    for c in cols:
        valid &= np.isfinite(c)
    if reference is not None:
        valid &= reference != STATE_FILL
    matrix = np.stack([c[valid] for c in cols], axis=1).astype("float32") if cols else np.empty((0, 0), "float32")
    return matrix, valid


def samples(
    predictors: xr.Dataset, reference: np.ndarray, features: Sequence[str], *, reference_source: str | None = None
) -> Samples:
    """All valid samples (finite predictors and a reference) of a cube.

    Parameters
    ----------
    predictors : xarray.Dataset
        ``(time, lat, lon)``, see :func:`feature_matrix`.
    reference : numpy.ndarray
        uint8 (time, lat, lon), :func:`reference_state`.
    features : sequence of str
        Predictor names.
    reference_source : str, optional
        Field the reference comes from, checked by :func:`check_no_leakage`.

    Returns
    -------
    Samples

    Raises
    ------
    ValueError
        Leakage, a reference of another shape, or no valid sample.
    """
    check_no_leakage(features, reference_source)
    shape = (predictors.sizes["time"], predictors.sizes["lat"], predictors.sizes["lon"])
    if reference.shape != shape:
        raise ValueError(f"reference of shape {reference.shape}; expected the predictors' {shape}")
    X, valid = feature_matrix(predictors, features, reference=reference)
    if not valid.any():
        raise ValueError("no cell with every predictor finite and a reference state")
    flat = np.flatnonzero(valid)
    _, i, j = np.unravel_index(flat, shape)
    return Samples(
        X,
        reference.reshape(-1)[flat].astype("u1"),
        predictors["lat"].values[i].astype("float64"),
        predictors["lon"].values[j].astype("float64"),
        flat,
        list(features),
    )


# --- split ------------------------------------------------------------------------------------


def block_split(
    lat, lon, block_deg: float, fractions: Sequence[float] = (0.70, 0.15, 0.15), seed: int = 0
) -> np.ndarray:
    """Assign samples to training / validation / test sets by spatial blocks.

    The ``block_deg`` blocks of :func:`products.methods.cv.block_ids` are shuffled (seeded) and
    cut where the cumulative number of samples passes 70 % and 85 % (``fractions``), so the sets
    hold about those shares of the samples and never share a block (hence never a pixel, and never
    two days of one pixel). With one day of data, a split by year is impossible.

    Parameters
    ----------
    lat, lon : array_like
        (n,), float degrees of each sample.
    block_deg : float
        Block edge in degrees (> 0); larger than the spatial autocorrelation range ideally.
    fractions : sequence of 3 float
        Shares of train, validation, test (positive, summing to 1).
    seed : int
        Shuffle seed.

    Returns
    -------
    numpy.ndarray
        int8 (n,): 0 train, 1 validation, 2 test.

    Raises
    ------
    ValueError
        Bad fractions, fewer than three blocks, or an empty set.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881.
    """
    f = np.asarray(fractions, dtype="float64")
    if f.shape != (3,) or (f <= 0).any() or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be three positive shares summing to 1, found {tuple(fractions)}")
    ids = block_ids(lat, lon, block_deg)
    blocks, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if blocks.size < 3:
        raise ValueError(f"{blocks.size} spatial block(s) of {block_deg} degrees; expected at least 3 (smaller blocks)")
    order = np.random.default_rng(seed).permutation(blocks.size)
    mid = (np.cumsum(counts[order]) - counts[order] / 2.0) / counts.sum()  # share reached at each block's middle
    edges = np.cumsum(f)[:2]
    block_set = np.empty(blocks.size, dtype="i1")
    block_set[order] = np.searchsorted(edges, mid, side="right").astype("i1")
    out = block_set[inverse]
    empty = [SETS[k] for k in range(3) if not (out == k).any()]
    if empty:
        raise ValueError(
            f"empty {', '.join(empty)} set with {blocks.size} blocks of {block_deg} degrees; "
            "use smaller blocks or a larger region"
        )
    return out


@dataclass
class Variogram:
    """An isotropic empirical semivariogram of one or more fields sampled at the same points.

    Attributes
    ----------
    lags : numpy.ndarray
        float64 (n_bins,), centre of each distance bin (degrees, see :func:`empirical_variogram`).
    gamma : dict of str to numpy.ndarray or None
        Field name -> float64 (n_bins,), semivariance of the bin divided by the field's variance over
        the sampled points (1 = no more alike than two points drawn at random); NaN in an empty bin;
        None for a field constant over the sampled points (no variance to divide by).
    pairs : numpy.ndarray
        int64 (n_bins,), pairs of points in each bin.
    variance : dict of str to float
        Field name -> variance of the sampled values (its unit squared).
    max_lag : float
        Largest distance binned (degrees).
    n_points : int
        Points sampled.
    """

    lags: np.ndarray
    gamma: dict[str, np.ndarray | None]
    pairs: np.ndarray
    variance: dict[str, float]
    max_lag: float
    n_points: int


def empirical_variogram(
    lat,
    lon,
    values: Mapping[str, np.ndarray],
    *,
    n_bins: int = 20,
    max_lag: float | None = None,
    max_points: int = 3000,
    seed: int = 0,
) -> Variogram:
    """Empirical semivariogram gamma(h) = mean of (z_i - z_j)^2 / 2 over the pairs i, j at distance ~ h.

    Distances are in degrees on the latitude/longitude plane (longitude differences wrapped to at
    most 180), the unit of the spatial blocks (:func:`products.methods.cv.block_ids`) the variogram
    sizes. At most ``max_points`` points are drawn at random (seeded) and every pair of them is
    used; pairs at distance zero (two days of one pixel) are left out.

    Parameters
    ----------
    lat, lon : array_like
        (n,), float degrees of each point.
    values : mapping of str to array_like
        Field name -> (n,) float values at the points (finite).
    n_bins : int, default 20
        Equal-width distance bins from 0 to ``max_lag``.
    max_lag : float, optional
        Largest distance binned (degrees); default half the largest distance between the sampled
        points (the usual limit of a reliable empirical variogram).
    max_points : int, default 3000
        Points drawn (about 4.5 million pairs).
    seed : int, default 0
        Seed of the draw.

    Returns
    -------
    Variogram

    Raises
    ------
    ValueError
        Fewer than 3 points, arrays of different lengths, a non-finite value, ``n_bins`` < 1 or a
        non-positive ``max_lag``.

    References
    ----------
    Matheron (1963), doi:10.2113/gsecongeo.58.8.1246; Webster and Oliver (2007), doi:10.1002/9780470517277.
    """
    la, lo = np.asarray(lat, dtype="float64"), np.asarray(lon, dtype="float64")
    cols = {str(k): np.asarray(v, dtype="float64") for k, v in values.items()}
    if la.size < 3 or lo.size != la.size or any(v.shape != la.shape for v in cols.values()):
        raise ValueError(f"expected at least 3 points and fields of their length, found {la.size} points")
    if not all(np.isfinite(v).all() for v in cols.values()) or not (np.isfinite(la).all() and np.isfinite(lo).all()):
        raise ValueError("coordinates and values must be finite")
    if n_bins < 1 or (max_lag is not None and not max_lag > 0):
        raise ValueError(f"n_bins must be >= 1 and max_lag > 0, found {n_bins}, {max_lag}")
    pick = np.random.default_rng(seed).choice(la.size, min(int(max_points), la.size), replace=False)
    a, b = np.triu_indices(pick.size, 1)
    a, b = pick[a], pick[b]
    dlon = np.abs(lo[a] - lo[b]) % 360.0
    dist = np.hypot(la[a] - la[b], np.minimum(dlon, 360.0 - dlon))
    keep = dist > 0
    a, b, dist = a[keep], b[keep], dist[keep]
    if not dist.size:
        raise ValueError("all sampled points are at one place")
    top = float(max_lag) if max_lag is not None else float(dist.max()) / 2.0
    edges = np.linspace(0.0, top, int(n_bins) + 1)
    k = np.digitize(dist, edges) - 1
    ok = (k >= 0) & (k < n_bins)
    pairs = np.bincount(k[ok], minlength=n_bins).astype("int64")
    gamma, variance = {}, {}
    for name, v in cols.items():
        var = float(v[pick].var())
        sums = np.bincount(k[ok], 0.5 * (v[a[ok]] - v[b[ok]]) ** 2, minlength=n_bins)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma[name] = np.where(pairs > 0, sums / np.maximum(pairs, 1) / var, np.nan) if var > 0 else None
        variance[name] = var
    return Variogram((edges[:-1] + edges[1:]) / 2.0, gamma, pairs, variance, top, int(pick.size))


def variogram_range(lags, gamma, fraction: float = 0.95) -> float | None:
    """Practical range: the distance at which the normalised semivariance first reaches ``fraction`` of the sill.

    The sill is taken as the field's variance (``gamma`` normalised by it, as in :class:`Variogram`):
    beyond the range two points are no more alike than two points drawn at random. Linear
    interpolation between the bin centres (from gamma 0 at distance 0). A field with a trend (e.g.
    soil temperature against latitude) rises past its variance; the range is where it first gets
    there.

    Parameters
    ----------
    lags : array_like
        (n_bins,), increasing bin centres (degrees).
    gamma : array_like or None
        (n_bins,), semivariance / variance (NaN in empty bins); None for a constant field.
    fraction : float, default 0.95
        Share of the sill that defines the practical range (0.95: the usual definition).

    Returns
    -------
    float or None
        The range (degrees), or None when ``gamma`` never reaches ``fraction`` within the lags (the
        range is longer than the largest lag) or the field is constant.

    Raises
    ------
    ValueError
        ``fraction`` outside (0, 1].
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], found {fraction}")
    if gamma is None:
        return None
    h, g = np.asarray(lags, dtype="float64"), np.asarray(gamma, dtype="float64")
    ok = np.isfinite(g)
    h, g = np.r_[0.0, h[ok]], np.r_[0.0, g[ok]]
    above = np.flatnonzero(g >= fraction)
    if not above.size:
        return None
    i = int(above[0])
    return float(h[i - 1] + (fraction - g[i - 1]) / (g[i] - g[i - 1]) * (h[i] - h[i - 1]))


def variogram_block_split(
    data: Samples,
    fields: Sequence[str],
    *,
    fraction: float = 0.95,
    step: float = 0.5,
    seed: int = 0,
    max_points: int = 3000,
    n_bins: int = 20,
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
) -> tuple[np.ndarray, dict]:
    """70/15/15 spatial-block split with the block edge sized from the predictors' variograms.

    1. The empirical variogram (:func:`empirical_variogram`) of each predictor in ``fields`` over
       every sample (predictor values and coordinates only: the reference labels play no part, so the
       labels of the held-out blocks cannot change the blocks);
    2. the block edge is the largest practical range (:func:`variogram_range`) rounded up to a
       multiple of ``step``; a predictor whose range exceeds the largest lag gives the largest lag;
    3. :func:`block_split` with that edge; where it cannot make three non-empty sets (a region not
       much larger than the range), the edge shrinks by ``step`` until it can, and the result says
       ``block_below_range``;
    4. diagnostic only, after the split: the practical range of the reference state's (indicator)
       variogram over the *training* samples.

    Parameters
    ----------
    data : Samples
        Features, reference and coordinates.
    fields : sequence of str
        Predictors whose variograms size the blocks (columns of ``data.X``; coordinates excluded).
    fraction : float, default 0.95
        Share of the sill defining the practical range.
    step : float, default 0.5
        Rounding of the block edge (degrees).
    seed : int, default 0
        Seed of the variogram's point draw and of :func:`block_split`.
    max_points, n_bins : int
        See :func:`empirical_variogram`.
    fractions : sequence of 3 float
        Shares of train, validation, test.

    Returns
    -------
    split : numpy.ndarray
        int8 (n,): 0 train, 1 validation, 2 test (:func:`block_split`).
    info : dict
        ``block_deg`` (the edge used), ``variogram_range_deg`` (predictor -> range in degrees, None
        when longer than ``max_lag_deg``), ``range_deg`` (the largest, or ``max_lag_deg``),
        ``block_below_range`` (bool), ``target_range_train_deg`` (reference indicator on the training
        samples; None when longer than the largest lag), ``max_lag_deg``, ``n_points``,
        ``sill_fraction``, ``n_blocks`` (set -> blocks), ``basis`` (a sentence).

    Raises
    ------
    ValueError
        A field not among ``data.features`` or a coordinate among them; no edge of at least ``step``
        gives three non-empty sets.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881 (blocks at least the range of spatial
    autocorrelation); Webster and Oliver (2007), doi:10.1002/9780470517277.
    """
    bad = [f for f in fields if f not in data.features or f in ("lat", "lon")]
    if bad or not fields:
        raise ValueError(f"fields {bad or list(fields)}: expected predictors of the samples other than lat/lon")
    cols = {f: data.X[:, data.features.index(f)] for f in fields}
    vg = empirical_variogram(data.lat, data.lon, cols, n_bins=n_bins, max_points=max_points, seed=seed)
    ranges = {f: variogram_range(vg.lags, vg.gamma[f], fraction) for f in fields}
    finite = [r for f, r in ranges.items() if r is not None]
    unreached = [f for f, r in ranges.items() if r is None and vg.gamma[f] is not None]
    longest = vg.max_lag if unreached else (max(finite) if finite else vg.max_lag)
    wanted = max(step, float(np.ceil(longest / step) * step))
    block, split = wanted, None
    while block >= step and split is None:
        try:
            split = block_split(data.lat, data.lon, block, fractions, seed=seed)
        except ValueError:
            block -= step
    if split is None:
        raise ValueError(f"no block edge of at least {step} degrees gives three non-empty sets")
    train = split == 0
    tvg = empirical_variogram(
        data.lat[train],
        data.lon[train],
        {"reference": data.y[train].astype("float64")},
        n_bins=n_bins,
        max_points=max_points,
        seed=seed,
    )
    ids = block_ids(data.lat, data.lon, block)
    info = {
        "block_deg": float(block),
        "range_deg": float(longest),
        "variogram_range_deg": ranges,
        "block_below_range": bool(block < longest),
        "target_range_train_deg": variogram_range(tvg.lags, tvg.gamma["reference"], fraction),
        "max_lag_deg": float(vg.max_lag),
        "n_points": vg.n_points,
        "sill_fraction": float(fraction),
        "n_blocks": {name: int(np.unique(ids[split == k]).size) for k, name in enumerate(SETS)},
        "basis": "block edge = largest practical range (semivariance reaching "
        f"{fraction:g} of the variance) of the empirical variograms of {', '.join(fields)} over every "
        f"pixel, rounded up to {step:g} degree; distances in degrees on the lat/lon plane; reference "
        "labels not used (target_range_train_deg is a diagnostic on the training blocks)",
    }
    return split, info


# --- metrics ----------------------------------------------------------------------------------


def classification_metrics(y_true, y_pred) -> dict:
    """Confusion matrix, overall accuracy, Cohen's kappa and per-class recall of a binary FT map.

    Parameters
    ----------
    y_true, y_pred : array_like
        (n,), int: 0 thawed, 1 frozen (reference and prediction).

    Returns
    -------
    dict
        ``n``; ``confusion_matrix`` [[TN, FP], [FN, TP]] (rows reference thawed/frozen, columns
        predicted thawed/frozen; lists of int); ``overall_accuracy`` (fraction); ``kappa``
        (Cohen 1960, scikit-learn ``cohen_kappa_score``; None when reference and prediction hold
        one and the same class, where kappa is undefined); ``recall_thawed``, ``recall_frozen``
        (None where the class is absent from the reference); ``precision_frozen``;
        ``frozen_fraction_reference``, ``frozen_fraction_predicted``.

    Raises
    ------
    ValueError
        Empty input, different lengths, or labels other than 0/1.

    References
    ----------
    Cohen (1960), doi:10.1177/001316446002000104; scikit-learn ``confusion_matrix``,
    ``cohen_kappa_score``.
    """
    t, p = np.asarray(y_true).astype("int64").ravel(), np.asarray(y_pred).astype("int64").ravel()
    if t.size == 0 or t.size != p.size:
        raise ValueError(f"expected two non-empty arrays of one length, found {t.size} and {p.size}")
    if not (np.isin(t, (0, 1)).all() and np.isin(p, (0, 1)).all()):
        raise ValueError("expected labels 0 (thawed) and 1 (frozen) only")
    cm = confusion_matrix(t, p, labels=[THAWED, FROZEN])
    (tn, fp), (fn, tp) = cm
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = float(cohen_kappa_score(t, p, labels=[THAWED, FROZEN])) if len(np.unique(np.r_[t, p])) > 1 else None

    def ratio(a, b):
        return float(a / b) if b else None

    return {
        "n": int(t.size),
        "confusion_matrix": cm.astype(int).tolist(),
        "overall_accuracy": float((tn + tp) / t.size),
        "kappa": kappa,
        "recall_thawed": ratio(tn, tn + fp),
        "recall_frozen": ratio(tp, tp + fn),
        "precision_frozen": ratio(tp, tp + fp),
        "frozen_fraction_reference": float(t.mean()),
        "frozen_fraction_predicted": float(p.mean()),
    }


def class_code(meaning: str, attrs: Mapping = STATE_ATTRS) -> int:
    """The stored value of a class as a flag variable codes it (CF ``flag_values`` / ``flag_meanings``).

    Parameters
    ----------
    meaning : str
        A word of ``attrs["flag_meanings"]`` (``"frozen"``).
    attrs : mapping, default :data:`STATE_ATTRS`
        The flag variable's attributes.

    Returns
    -------
    int
        The ``flag_values`` entry at the position of ``meaning`` in ``flag_meanings`` (1 for
        ``"frozen"`` in :data:`STATE_ATTRS`).

    Raises
    ------
    ValueError
        ``meaning`` is not a flag meaning, or the two attributes differ in length.
    """
    meanings = str(attrs["flag_meanings"]).split()
    values = np.asarray(attrs["flag_values"]).reshape(-1).tolist()
    if len(meanings) != len(values):
        raise ValueError(f"flag_meanings {meanings} and flag_values {values} differ in length")
    if meaning not in meanings:
        raise ValueError(f"class {meaning!r} is not one of the flag meanings {meanings}")
    return int(values[meanings.index(meaning)])


def class_probability(model, X, meaning: str = "frozen", attrs: Mapping = STATE_ATTRS) -> np.ndarray:
    """Probability of one class from a fitted classifier's ``predict_proba``.

    The column is the one whose ``model.classes_`` entry equals the class's code in the state
    variable's flags (:func:`class_code`), not a fixed position. For
    :class:`sklearn.ensemble.ExtraTreesClassifier` the probability is the trees' mean class
    fraction in the leaf each row falls into (Geurts et al. 2006; scikit-learn ``predict_proba``);
    ``predict`` is the class of the largest probability (ties: the first class, thawed), so a
    cell predicted frozen has a probability of at least 0.5.

    Parameters
    ----------
    model : fitted classifier
        With ``classes_`` and ``predict_proba``.
    X : numpy.ndarray
        float (n, n_features), the model's feature columns.
    meaning, attrs
        The class and the flag attributes that code it (default ``"frozen"``, :data:`STATE_ATTRS`).

    Returns
    -------
    numpy.ndarray
        float64 (n,), in [0, 1] (unit 1).

    Raises
    ------
    ValueError
        The model never saw the class (it cannot give its probability).
    """
    code = class_code(meaning, attrs)
    classes = np.asarray(model.classes_).tolist()
    if code not in classes:
        raise ValueError(f"the model was fitted without the class {meaning!r} (code {code}); its classes: {classes}")
    X = np.asarray(X)
    if not len(X):
        return np.empty(0, dtype="float64")
    return np.asarray(model.predict_proba(X), dtype="float64")[:, classes.index(code)]


# --- model ------------------------------------------------------------------------------------


@dataclass
class FitResult:
    """A fitted classifier and its scores.

    Attributes
    ----------
    model : sklearn.ensemble.ExtraTreesClassifier
        Fitted on the training set with the selected parameters.
    params : dict
        Its parameters (those searched and the fixed ones).
    metrics : dict
        ``{"train"|"validation"|"test": classification_metrics(...)}``.
    selection : list of dict
        Each candidate's parameters and validation kappa / overall accuracy.
    importances : dict
        Impurity-based feature importances of the selected model.
    n_train_fitted : int
        Training rows actually used (after ``max_train_samples``).
    """

    model: ExtraTreesClassifier
    params: dict
    metrics: dict
    selection: list[dict]
    importances: dict
    n_train_fitted: int
    features: list[str] = field(default_factory=list)


def fit_select(
    data: Samples,
    split: np.ndarray,
    *,
    n_estimators: int = 100,
    min_samples_leaf: Sequence[int] = (1, 5, 20),
    max_features="sqrt",
    seed: int = 0,
    n_jobs: int = 1,
    max_train_samples: int | None = None,
) -> FitResult:
    """Fit Extremely Randomized Trees on the training set, choose the leaf size on the validation set.

    Parameters
    ----------
    data : Samples
        Features and reference.
    split : numpy.ndarray
        int8 (n,), 0/1/2 from :func:`block_split`.
    n_estimators : int
        Trees per forest.
    min_samples_leaf : sequence of int
        Candidates; the one with the highest validation kappa (then overall accuracy) wins.
    max_features : str, int, float or None
        Features drawn at each split (scikit-learn); Geurts et al. (2006) use sqrt(p) for
        classification.
    seed : int
        ``random_state`` of the forests and of the training subsample.
    n_jobs : int
        Parallel jobs of scikit-learn.
    max_train_samples : int, optional
        Random subsample of the training rows (memory and time on global grids); validation and
        test are always complete.

    Returns
    -------
    FitResult
        The test set is scored once, with the selected model; it plays no part in the selection.

    Raises
    ------
    ValueError
        A split of another length, or a set without samples; a training set with one class only.

    References
    ----------
    Geurts et al. (2006), doi:10.1007/s10994-006-6226-1; scikit-learn ``ExtraTreesClassifier``.
    """
    split = np.asarray(split)
    if split.shape != data.y.shape:
        raise ValueError(f"split of {split.size} samples for {data.y.size}")
    idx = {name: np.flatnonzero(split == k) for k, name in enumerate(SETS)}
    empty = [k for k, v in idx.items() if v.size == 0]
    if empty:
        raise ValueError(f"no sample in the {', '.join(empty)} set")
    train = idx["train"]
    if max_train_samples is not None and train.size > max_train_samples:
        train = np.sort(np.random.default_rng(seed).choice(train, int(max_train_samples), replace=False))
    if np.unique(data.y[train]).size < 2:
        raise ValueError("the training set holds one class only; a classifier cannot be fitted")
    fixed = {
        "n_estimators": int(n_estimators),
        "max_features": max_features,
        "random_state": int(seed),
        "n_jobs": int(n_jobs),
        "bootstrap": False,
    }
    best, selection = None, []
    for leaf in min_samples_leaf:
        model = ExtraTreesClassifier(min_samples_leaf=int(leaf), **fixed).fit(data.X[train], data.y[train])
        m = classification_metrics(data.y[idx["validation"]], model.predict(data.X[idx["validation"]]))
        key = (m["kappa"] if m["kappa"] is not None else -1.0, m["overall_accuracy"])
        selection.append(
            {
                "min_samples_leaf": int(leaf),
                "validation_kappa": m["kappa"],
                "validation_overall_accuracy": m["overall_accuracy"],
            }
        )
        if best is None or key > best[0]:
            best = (key, int(leaf), model)
    if best is None:
        raise ValueError("min_samples_leaf: give at least one candidate leaf size")
    _, leaf, model = best
    metrics = {name: classification_metrics(data.y[rows], model.predict(data.X[rows])) for name, rows in idx.items()}
    return FitResult(
        model,
        {**fixed, "min_samples_leaf": leaf},
        metrics,
        selection,
        {f: float(v) for f, v in zip(data.features, model.feature_importances_, strict=True)},
        int(train.size),
        list(data.features),
    )


@dataclass
class BlockCV:
    """Spatial-block cross-validation: every block held out once, with its leaf size chosen on other blocks.

    Attributes
    ----------
    folds : list of FitResult
        One per fold (its ``metrics["test"]`` are the fold's held-out blocks).
    splits : list of numpy.ndarray
        int8 (n,) per fold: 0 train, 1 validation, 2 test.
    fold : numpy.ndarray
        int8 (n,), the fold whose test set holds each sample.
    predicted : numpy.ndarray
        uint8 (n,), each sample's prediction by the model of the fold that held it out.
    probability : numpy.ndarray
        float64 (n,), in [0, 1]: each sample's probability of the class frozen
        (:func:`class_probability`) by the model of the fold that held it out (out-of-fold; what
        :func:`block_cv_reliability` scores).
    metrics : dict
        :func:`classification_metrics` of ``predicted`` against the reference over every sample (the
        pooled held-out score).
    fold_metrics : list of dict
        Each fold's test ``n``, ``overall_accuracy``, ``kappa``, ``min_samples_leaf`` and ``blocks``.
    """

    folds: list
    splits: list
    fold: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    metrics: dict
    fold_metrics: list


def block_cv(data: Samples, block_deg: float, *, n_folds: int = 5, seed: int = 0, **fit_kw) -> BlockCV:
    """K-fold cross-validation over spatial blocks, the leaf size chosen inside each fold's training blocks.

    The ``block_deg`` blocks (:func:`products.methods.cv.block_ids`) are dealt to ``n_folds`` folds
    by scikit-learn's ``GroupKFold`` (shuffled, seeded). In fold k the blocks of fold k are the test
    set, those of fold k+1 (mod K) the validation set on which :func:`fit_select` chooses the leaf
    size, and the rest the training set; each sample is predicted once, by the model that never saw
    its block. With blocks as large as the variogram range, a single 70/15/15 split leaves one or two
    blocks to test; pooling the folds scores every block.

    Parameters
    ----------
    data : Samples
    block_deg : float
        Block edge (degrees), e.g. ``variogram_block_split(...)[1]["block_deg"]``.
    n_folds : int, default 5
        Folds (>= 3: test, validation and at least one training fold; <= number of blocks).
    seed : int, default 0
        Seed of the deal and of the forests.
    **fit_kw
        Passed to :func:`fit_select` (``n_estimators``, ``min_samples_leaf``, ...).

    Returns
    -------
    BlockCV

    Raises
    ------
    ValueError
        ``n_folds`` < 3 or more folds than blocks; a fold :func:`fit_select` cannot fit.

    References
    ----------
    Roberts et al. (2017), doi:10.1111/ecog.02881; scikit-learn ``GroupKFold``.
    """
    ids = block_ids(data.lat, data.lon, block_deg)
    n_blocks = np.unique(ids).size
    if n_folds < 3 or n_folds > n_blocks:
        raise ValueError(f"n_folds must be 3..{n_blocks} (the blocks of {block_deg:g} degrees), found {n_folds}")
    fold = np.empty(data.y.size, dtype="i1")
    kf = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(kf.split(np.zeros((ids.size, 1)), groups=ids)):
        fold[test] = k
    folds, splits, rows = [], [], []
    predicted = np.empty(data.y.size, dtype="u1")
    probability = np.full(data.y.size, np.nan, dtype="float64")
    for k in range(n_folds):
        split = np.zeros(data.y.size, dtype="i1")
        split[fold == (k + 1) % n_folds] = 1
        split[fold == k] = 2
        res = fit_select(data, split, seed=seed, **fit_kw)
        test = split == 2
        predicted[test] = res.model.predict(data.X[test])
        probability[test] = class_probability(res.model, data.X[test])
        folds.append(res)
        splits.append(split)
        m = res.metrics["test"]
        rows.append(
            {
                "fold": k,
                "n": m["n"],
                "overall_accuracy": m["overall_accuracy"],
                "kappa": m["kappa"],
                "min_samples_leaf": res.params["min_samples_leaf"],
                "blocks": int(np.unique(ids[test]).size),
            }
        )
    return BlockCV(folds, splits, fold, predicted, probability, classification_metrics(data.y, predicted), rows)


def block_cv_reliability(data: Samples, cv: BlockCV, *, bins: int = 10, block_deg: float | None = None):
    """Reliability of the out-of-fold probability of the class frozen over every sample of a block CV.

    Each sample's probability is the one of the fold model that never saw its block
    (``cv.probability``), so the figures are held-out: :func:`products.methods.uncertainty.reliability`
    with ``split = "block_cv"``.

    Parameters
    ----------
    data : Samples
        The samples ``cv`` was run on (its ``y`` the reference).
    cv : BlockCV
    bins : int, default 10
        Equal-width probability bins of the expected calibration error.
    block_deg : float, optional
        The block edge, for the note.

    Returns
    -------
    products.methods.uncertainty.Reliability
        Brier score, expected calibration error, ``n`` = every sample, the bins.

    Raises
    ------
    ValueError
        ``cv`` holds another number of samples than ``data``.
    """
    if cv.probability.shape != data.y.shape:
        raise ValueError(f"block CV of {cv.probability.size} samples for {data.y.size}")
    edge = f" of {block_deg:g} degrees" if block_deg is not None else ""
    note = (
        f"out-of-fold: every sample's probability of frozen from the model of the {len(cv.folds)}-fold spatial-block "
        f"cross-validation (blocks{edge}) that held its block out, pooled over the folds; the published "
        "probability_frozen comes from the model fitted on the 70/15/15 training blocks with the same procedure"
    )
    return unc.reliability(cv.probability, data.y == class_code("frozen"), bins=int(bins), split="block_cv", note=note)


def metrics_table(
    results: Mapping[str, FitResult], *, data_kind: str, block_deg: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per experiment and set: the figures the version's CSV and summary carry.

    Parameters
    ----------
    results : mapping of str to FitResult
        Experiment name (e.g. ``"tibetan_plateau"``) to its result.
    data_kind : str
        One of :data:`DATA_KINDS`, stored in each row.
    block_deg : mapping of str to float, optional
        Experiment name -> the edge of the spatial blocks of its split (degrees); NaN where absent.

    Returns
    -------
    pandas.DataFrame
        Columns ``experiment``, ``data_kind``, ``block_deg``, ``set``, ``n``, ``overall_accuracy``, ``kappa``,
        ``recall_thawed``, ``recall_frozen``, ``precision_frozen``, ``tn``, ``fp``, ``fn``, ``tp``,
        ``frozen_fraction_reference``. The seed's published accuracy is not a column: it is not
        comparable with these rows (a proxy experiment and a synthetic twin) and is stated once, in the
        summary's and the JSON file's ``seed``.
    """
    rows = []
    for name, res in results.items():
        for s in SETS:
            m = res.metrics[s]
            (tn, fp), (fn, tp) = m["confusion_matrix"]
            rows.append(
                {
                    "experiment": name,
                    "data_kind": data_kind,
                    "block_deg": float((block_deg or {}).get(name, np.nan)),
                    "set": s,
                    "n": m["n"],
                    "overall_accuracy": m["overall_accuracy"],
                    "kappa": m["kappa"],
                    "recall_thawed": m["recall_thawed"],
                    "recall_frozen": m["recall_frozen"],
                    "precision_frozen": m["precision_frozen"],
                    "tn": tn,
                    "fp": fp,
                    "fn": fn,
                    "tp": tp,
                    "frozen_fraction_reference": m["frozen_fraction_reference"],
                }
            )
    return pd.DataFrame(rows)


# --- output -----------------------------------------------------------------------------------


def _netcdf_attrs(attrs: Mapping) -> dict:
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        out[k] = json.dumps(v) if isinstance(v, dict | list) else v
    return out


def write_state_grid(
    path: str | os.PathLike,
    *,
    predictors: xr.Dataset,
    features: Sequence[str],
    predict: Callable[[np.ndarray], np.ndarray],
    data_kind: str,
    extra: Mapping[str, tuple[np.ndarray, dict]] | None = None,
    attrs: Mapping | None = None,
    chunk: Sequence[int] = (1, 128, 256),
    probability: Callable[[np.ndarray], np.ndarray] | None = None,
    probability_comment: str = "",
    workers: int = 1,
    client: Client | str | None = None,
) -> dict:
    """Predict the daily freeze/thaw state window by window and write a CF NetCDF-4 grid atomically.

    Each window of the ``(time, lat, lon)`` grid (:func:`products.methods.chunked.windows`) reads
    its own predictors (:func:`feature_matrix`), is predicted with
    :func:`products.methods.chunked.predict_window` and written before the next one is read, so
    memory is bounded by the window. The file is written under a temporary name in the target
    folder and moved into place only when complete.

    With ``probability``, the same window's features also give :data:`PROBABILITY_NAME`
    (``probability_frozen``): float32, unit 1, ``valid_range`` [0, 1], ``_FillValue``
    :data:`products.methods.chunked.FILL_VALUE` where the state is fill, attributes from
    :func:`products.methods.uncertainty.probability_attributes` (no ``flag_values``: it is a
    continuous field, not a class), named in ``ft_state``'s ``ancillary_variables`` (appended to
    any link already there, :func:`products.methods.uncertainty.link_ancillary`).

    CF-1.8 has no unsigned types: uint8 grids are stored as ``byte`` with ``_Unsigned = "true"``
    (:func:`products.methods.cf.unsigned_byte`), ``_FillValue`` -1 and int8 ``flag_values``; netCDF4
    and xarray read them back as uint8 with fill 255. Coordinates, bounds, ``crs`` and the ACDD
    extent attributes come from :func:`products.methods.cf.grid_coordinates`.

    Parameters
    ----------
    path : str or os.PathLike
        Target ``.nc`` file (its folder must exist).
    predictors : xarray.Dataset
        ``(time, lat, lon)`` predictor cube with ``lat``/``lon``/``time`` coordinates.
    features : sequence of str
        Predictor names in the model's column order.
    predict : callable
        ``predict(matrix) -> labels`` (0/1), e.g. a fitted classifier's ``predict``.
    data_kind : str
        One of :data:`DATA_KINDS`: stored as the global ``data_kind`` attribute.
    extra : mapping, optional
        More full-grid variables to store, name -> (array (time, lat, lon) of dtype uint8 with fill
        255 or int8 with fill -1, attributes), e.g. the reference state and the split; written
        window by window too.
    attrs : mapping, optional
        Global attributes (dicts/lists stored as JSON strings).
    chunk : (int, int, int)
        Window and NetCDF chunk shape.
    probability : callable, optional
        ``probability(matrix) -> p`` (float in [0, 1], one per row): the probability of the class
        frozen from the model that ``predict`` uses, e.g. ``functools.partial(class_probability,
        model)``. None: no probability variable.
    probability_comment : str
        Appended to the probability's ``comment`` (how well it is calibrated, measured at held-out
        samples: :func:`products.methods.uncertainty.calibration_comment`).
    workers, client
        Where the windows are computed (:func:`products.methods.chunked.run_windows`): in this process
        (default; the next window's predictors are read and the previous window written on an I/O
        thread while the current one is predicted), in ``workers`` local processes, or on a Dask
        cluster (``client``: ``"local"``, a scheduler address or a ``distributed.Client``;
        ``predictors``, ``predict`` and ``probability`` must then pickle). This process writes the
        file; the output does not depend on where windows were computed.

    Returns
    -------
    dict
        ``path``, ``windows``, ``cells``, ``predicted`` (cells with a state), ``frozen`` (cells
        predicted frozen), ``probability`` (cells with a probability; 0 without ``probability``).

    Raises
    ------
    ValueError
        Unknown ``data_kind``, predictions other than 0/1, probabilities outside [0, 1], extra
        arrays of the wrong shape or dtype.
    """
    if data_kind not in DATA_KINDS:
        raise ValueError(f"data_kind must be one of {DATA_KINDS}, found {data_kind!r}")
    path = Path(path)
    shape = (predictors.sizes["time"], predictors.sizes["lat"], predictors.sizes["lon"])
    extra = dict(extra or {})
    fills = {}
    for name, (arr, _) in extra.items():
        if arr.shape != shape or arr.dtype not in (np.dtype("u1"), np.dtype("i1")):
            raise ValueError(
                f"extra variable {name!r}: expected uint8/int8 of shape {shape}, found {arr.dtype} {arr.shape}"
            )
        fills[name] = STATE_FILL if arr.dtype == np.dtype("u1") else SPLIT_FILL
    todo = chunked.windows(shape, chunk)
    chunks = tuple(max(1, min(int(c), n)) for c, n in zip(chunk, shape, strict=True))
    counts = {"predicted": 0, "frozen": 0, "probability": 0}

    global_attrs = _netcdf_attrs(
        {
            "Conventions": cf.CONVENTIONS,
            "data_kind": data_kind,
            "references": REFERENCES,
            "source": f"Extremely Randomized Trees (scikit-learn {sklearn.__version__} "
            f"ExtraTreesClassifier) on {', '.join(features)}",
            "history": cf.history_line(__name__),
            **(attrs or {}),
            "features": ", ".join(features),
        }
    )
    global_attrs["data_kind"] = data_kind  # the caller's attrs never relabel the data
    coords = cf.grid_coordinates(
        predictors["time"].values,
        predictors["lat"].values,
        predictors["lon"].values,
        time_step="1D",
        attrs=global_attrs,
    )
    with atomic_path(path) as tmp:
        with cf.create_grid_netcdf(tmp, coords) as nc:
            state = nc.createVariable(
                STATE_NAME,
                "i1",
                ("time", "lat", "lon"),
                zlib=True,
                complevel=4,
                chunksizes=chunks,
                fill_value=cf.unsigned_byte_fill(STATE_FILL),
            )
            state_attrs = cf.grid_variable_attributes(
                cf.unsigned_byte(
                    {
                        **STATE_ATTRS,
                        "long_name": f"surface soil freeze/thaw state (Extremely Randomized Trees; {data_kind})",
                    }
                ),
                coverage_content_type="thematicClassification",
            )
            prob = None
            if probability is not None:
                prob = chunked.float_grid_variable(nc, PROBABILITY_NAME, chunks)
                prob.setncatts(
                    cf.grid_variable_attributes(
                        unc.probability_attributes(
                            "frozen",
                            extra=f"Probability of the ft_state class coded {class_code('frozen')} (flag meaning frozen). "
                            f"{probability_comment}",
                        ),
                        coverage_content_type="qualityInformation",
                    )
                )
                prob.set_auto_mask(False)
                state_attrs = unc.ancillary_attributes(state_attrs, PROBABILITY_NAME)
            state.setncatts(state_attrs)
            state.set_auto_maskandscale(False)
            out_vars = {}
            for name, (arr, vattrs) in extra.items():
                unsigned = arr.dtype == np.dtype("u1")
                v = nc.createVariable(
                    name,
                    "i1",
                    ("time", "lat", "lon"),
                    zlib=True,
                    complevel=4,
                    chunksizes=chunks,
                    fill_value=cf.unsigned_byte_fill(fills[name]) if unsigned else fills[name],
                )
                kind = "thematicClassification" if unsigned else "auxiliaryInformation"
                v.setncatts(
                    cf.grid_variable_attributes(
                        cf.unsigned_byte(vattrs) if unsigned else dict(vattrs),
                        coverage_content_type=vattrs.get("coverage_content_type", kind),
                    )
                )
                v.set_auto_maskandscale(False)
                out_vars[name] = v

            def write(window: chunked.Window, result: tuple[np.ndarray, np.ndarray | None]) -> int:
                labels, p = result
                state[window.key] = labels.view("i1")
                n = int((labels != STATE_FILL).sum())
                counts["frozen"] += int((labels == FROZEN).sum())
                if prob is not None and p is not None:
                    prob[window.key] = p
                    counts["probability"] += int((p != chunked.FILL_VALUE).sum())
                for name, (arr, _) in extra.items():
                    out_vars[name][window.key] = arr[window.key].view("i1")
                return n

            counts["predicted"] = chunked.run_windows(
                todo,
                functools.partial(window_features, predictors=predictors, features=tuple(features)),
                functools.partial(window_state, predict=predict, probability=probability),
                write,
                workers=workers,
                client=client,
            )
    return {"path": str(path), "windows": len(todo), "cells": int(np.prod(shape)), **counts}


def window_features(
    window: chunked.Window, *, predictors: xr.Dataset, features: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`feature_matrix` of one window: the ``features`` of :func:`write_state_grid`."""
    return feature_matrix(predictors, features, window)


def checked_labels(matrix: np.ndarray, *, predict: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``predict(matrix)``, raising ValueError on a label other than 0 (thawed) or 1 (frozen)."""
    labels = np.asarray(predict(matrix))
    if labels.size and not np.isin(labels, (THAWED, FROZEN)).all():
        raise ValueError("predictions other than 0 (thawed) and 1 (frozen)")
    return labels


def checked_probability(matrix: np.ndarray, *, probability: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``probability(matrix)`` as float64, raising ValueError on a value outside [0, 1]."""
    p = np.asarray(probability(matrix), dtype="float64")
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("probabilities outside [0, 1]")
    return p


def window_state(
    window: chunked.Window,
    matrix: np.ndarray,
    valid: np.ndarray,
    *,
    predict: Callable[[np.ndarray], np.ndarray],
    probability: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``compute`` of :func:`write_state_grid`: one window's state and probability of frozen.

    Returns
    -------
    labels : numpy.ndarray
        uint8 ``window.shape``: 0 thawed, 1 frozen, :data:`STATE_FILL` where no prediction.
    p : numpy.ndarray or None
        float32 ``window.shape``, probability of frozen, :data:`products.methods.chunked.FILL_VALUE`
        where the state is fill; None without ``probability``.

    Raises
    ------
    ValueError
        Labels other than 0/1, probabilities outside [0, 1] (and see
        :func:`products.methods.chunked.predict_window`).
    """
    values = chunked.predict_given(window, matrix, valid, predict=functools.partial(checked_labels, predict=predict))
    labels = np.where(values == chunked.FILL_VALUE, STATE_FILL, values).astype("u1")
    if probability is None:
        return labels, None
    p = chunked.predict_given(
        window, matrix, valid, predict=functools.partial(checked_probability, probability=probability)
    )
    return labels, p


def grid_of(data: Samples, values: np.ndarray, shape: tuple[int, int, int], fill, dtype) -> np.ndarray:
    """Scatter per-sample values back onto the (time, lat, lon) grid (``fill`` elsewhere)."""
    out = np.full(int(np.prod(shape)), fill, dtype=dtype)
    out[data.flat] = values
    return out.reshape(shape)
