"""The synthetic twin of the freeze/thaw chain (:mod:`products.generators.freeze_thaw`), no Django.

A synthetic world with a known answer: frozen where a smooth synthetic surface temperature is below
0 degC, with noisy brightness-temperature-like, elevation and pure-noise predictors
(:func:`make_twin`), and the accuracy of the known single-channel rule on it
(:func:`twin_baseline_accuracy`), which the classifier should match. It shows that the classifier
and the spatial-block split work; every output of it is labelled
:attr:`products.data_kind.DataKind.SYNTHETIC`.

This module imports the generator it tests (downward); the generator never imports it.

References
----------
Geurts, P., Ernst, D., Wehenkel, L. (2006): Extremely randomized trees. Machine Learning 63, 3-42,
doi:10.1007/s10994-006-6226-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from products.generators.freeze_thaw import FREEZING_POINT_K

# --- synthetic twin ---------------------------------------------------------------------------


@dataclass
class Twin:
    """A synthetic freeze/thaw world with a known answer.

    Attributes
    ----------
    predictors : xarray.Dataset
        ``(time, lat, lon)``: ``tb_like`` (K, a brightness-temperature-like noisy reading of the
        surface temperature), ``elevation`` (m, with noise), ``noise`` (pure noise, must not
        matter), and the ``lat`` coordinate (also a feature).
    temperature : numpy.ndarray
        float64 (time, lat, lon), the synthetic surface temperature (degC) that decides the truth.
    truth : numpy.ndarray
        uint8 (time, lat, lon): 1 where ``temperature < 0``, else 0 (no fill).
    features : list of str
        ``["tb_like", "elevation", "lat", "noise"]``.
    tb_noise_k : float
        Standard deviation of the noise of ``tb_like`` (K).
    """

    predictors: xr.Dataset
    temperature: np.ndarray
    truth: np.ndarray
    features: list[str]
    tb_noise_k: float


def make_twin(
    *,
    n_lat: int = 60,
    n_lon: int = 128,
    n_days: int = 2,
    res: float = 0.25,
    origin: tuple[float, float] = (73.0, 25.0),
    tb_noise_k: float = 3.0,
    seed: int = 0,
) -> Twin:
    """Build a synthetic twin: frozen where a smooth synthetic temperature field is below 0 degC.

    Temperature (degC) = 22 - 0.6 (lat - 25) - 6.5 K km-1 x elevation + a day offset + smooth
    anomalies (std ~2 K); elevation = smooth random relief, 0-5500 m. Predictors: ``tb_like`` =
    0.9 x (T + 273.15) + 20 + N(0, ``tb_noise_k``) (a brightness temperature with emissivity 0.9,
    plus noise), ``elevation`` + N(0, 100 m), ``lat``, and ``noise`` ~ N(0, 1).

    Parameters
    ----------
    n_lat, n_lon, n_days : int
        Grid shape (time, lat, lon).
    res : float
        Cell size (degrees).
    origin : (float, float)
        (lon, lat) of the south-west cell edge.
    tb_noise_k : float
        Noise of ``tb_like`` (K).
    seed : int
        Random seed.

    Returns
    -------
    Twin

    Raises
    ------
    ValueError
        A non-positive size or resolution.
    """
    if min(n_lat, n_lon, n_days) < 1 or res <= 0:
        raise ValueError("n_lat, n_lon, n_days must be >= 1 and res > 0")
    rng = np.random.default_rng(seed)
    lat = origin[1] + (np.arange(n_lat) + 0.5) * res
    lon = origin[0] + (np.arange(n_lon) + 0.5) * res
    yy, xx = np.meshgrid(np.arange(n_lat), np.arange(n_lon), indexing="ij")

    def smooth_field(n_bumps, scale):
        f = np.zeros((n_lat, n_lon))
        for _ in range(n_bumps):
            cy, cx = rng.uniform(0, n_lat), rng.uniform(0, n_lon)
            w = rng.uniform(0.08, 0.25) * max(n_lat, n_lon)
            f += rng.uniform(-1, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
        return scale * (f - f.mean()) / (f.std() or 1.0)

    elev = smooth_field(12, 1.0)
    elev = 5500.0 * (elev - elev.min()) / ((elev.max() - elev.min()) or 1.0)
    temps = []
    for d in range(n_days):
        t = 22.0 - 0.6 * (lat[:, None] - 25.0) - 6.5e-3 * elev + (d - (n_days - 1) / 2) * 1.5 + smooth_field(8, 2.0)
        temps.append(t)
    temperature = np.stack(temps)
    truth = (temperature < 0.0).astype("u1")
    shape = temperature.shape
    tb = 0.9 * (temperature + FREEZING_POINT_K) + 20.0 + rng.normal(0.0, tb_noise_k, shape)
    elev_obs = np.broadcast_to(elev, shape) + rng.normal(0.0, 100.0, shape)
    noise = rng.normal(0.0, 1.0, shape)
    time = pd.date_range("2015-01-01", periods=n_days, freq="D").values.astype("datetime64[ns]")
    dims = ("time", "lat", "lon")
    predictors = xr.Dataset(
        {
            "tb_like": (
                dims,
                tb.astype("float32"),
                {
                    "units": "K",
                    "long_name": "synthetic brightness-temperature-like reading: 0.9 (T + 273.15) + 20 + noise",
                },
            ),
            "elevation": (dims, elev_obs.astype("float32"), {"units": "m", "long_name": "synthetic elevation + noise"}),
            "noise": (dims, noise.astype("float32"), {"units": "1", "long_name": "pure noise (must not matter)"}),
        },
        coords={"time": ("time", time), "lat": ("lat", lat), "lon": ("lon", lon)},
    )
    return Twin(predictors, temperature, truth, ["tb_like", "elevation", "lat", "noise"], float(tb_noise_k))


def twin_baseline_accuracy(twin: Twin, mask: np.ndarray | None = None) -> float:
    """Overall accuracy of the known single-channel rule ``tb_like < 0.9 x 273.15 + 20`` (frozen).

    The answer the twin makes known: thresholding the noisy brightness-like channel at the value a
    0 degC surface gives. A classifier that also uses elevation and latitude should do at least
    about as well.

    Parameters
    ----------
    twin : Twin
    mask : numpy.ndarray, optional
        bool (time, lat, lon): cells to score (e.g. the test pixels).

    Returns
    -------
    float
        Fraction of cells where the rule equals the truth.
    """
    rule = (twin.predictors["tb_like"].values < 0.9 * FREEZING_POINT_K + 20.0).astype("u1")
    m = np.ones(twin.truth.shape, bool) if mask is None else mask
    return float((rule[m] == twin.truth[m]).mean())
