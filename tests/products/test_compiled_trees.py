"""Compiled LightGBM forests (lleaves) predict what LightGBM predicts, within float tolerance.

No database. SYNTHETIC rows: a made-up target of four inputs, one of them often missing; small forests
(40 trees) so compiling takes about a second. The tolerance is :data:`compiled_trees.RTOL` /
:data:`compiled_trees.ATOL` on float64 (the compiled forest sums the trees in its own order); the float32
values a product stores are compared too.
"""

from __future__ import annotations

import functools
import pickle
import sys

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from products.generators import et_grid
from products.methods import compiled_trees
from tests.products.test_chunked import small_land, synthetic_forcing
from tests.products.test_chunked import synthetic_model as et_model

pytestmark = pytest.mark.fast


def synthetic_rows(n: int, seed: int) -> np.ndarray:
    """SYNTHETIC float64 (n, 4) rows; a fifth of column 3 missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * [1.0, 10.0, 0.1, 3.0]
    x[rng.random(n) < 0.2, 3] = np.nan
    return x


@pytest.fixture(scope="module")
def model() -> lightgbm.LGBMRegressor:
    x = synthetic_rows(3000, 0)
    y = np.sin(x[:, 0]) + 0.05 * x[:, 1] ** 2 - 4 * x[:, 2] + np.nan_to_num(x[:, 3], nan=-2.0)
    return lightgbm.LGBMRegressor(n_estimators=40, num_leaves=15, n_jobs=1, verbose=-1, random_state=0).fit(x, y)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("trees")


@pytest.fixture(scope="module")
def compiled(model, cache):
    return compiled_trees.compile_lightgbm(model, cache_dir=cache, n_jobs=2)


def test_the_compiled_forest_predicts_as_lightgbm_within_tolerance(model, compiled):
    rows = synthetic_rows(20_000, 1)
    expected, got = model.booster_.predict(rows), compiled.predict(rows)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=compiled_trees.RTOL, atol=compiled_trees.ATOL)
    assert np.isnan(rows).any() and np.ptp(expected) > 1.0  # missing values and a real spread were predicted
    # stored as float32, at most a last-bit rounding apart on a handful of rows
    differ = got.astype("float32") != expected.astype("float32")
    assert differ.mean() < 1e-3
    np.testing.assert_allclose(got.astype("float32"), expected.astype("float32"), rtol=2e-7)
    assert compiled.max_difference <= 1e-9 and compiled.predict(rows[:0]).shape == (0,)


def test_the_cache_and_a_pickle_give_the_same_compiled_forest(model, compiled, cache):
    rows = synthetic_rows(2000, 2)
    assert [p.name for p in cache.iterdir()] == [f"lleaves-{compiled.key}.o"]
    again = compiled_trees.compile_lightgbm(model, cache_dir=cache, n_jobs=1)  # loaded, not compiled
    assert again.key == compiled.key
    np.testing.assert_array_equal(again.predict(rows), compiled.predict(rows))
    shipped = pickle.loads(pickle.dumps(compiled))  # how Dask sends it to a worker
    np.testing.assert_array_equal(shipped.predict(rows), compiled.predict(rows))
    with pytest.raises(ValueError, match=r"\(n_rows, 4\)"):
        compiled.predict(rows[:, :3])


def test_without_lleaves_the_caller_keeps_lightgbm_and_learns_why(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "lleaves", None)  # as if it were not installed
    trees, why = compiled_trees.compiled_or_none(model)
    assert trees is None and why.startswith("ModuleNotFoundError") and "lleaves" in why


def test_a_forest_that_does_not_match_is_refused(model):
    class Off:  # a stand-in booster whose LightGBM answer is shifted: the check must notice
        def __init__(self, booster):
            self.booster = booster

        def __getattr__(self, name):
            return getattr(self.booster, name)

        def predict(self, rows):
            return self.booster.predict(rows) + 1e-6

    with pytest.raises(compiled_trees.CompiledMismatch, match="differs from LightGBM"):
        compiled_trees.compile_lightgbm(Off(model.booster_))


def test_the_et_grid_with_compiled_trees_matches_lightgbm_and_says_so(tmp_path):
    lat, lon = np.arange(-40.5, -25.5, 1.0), np.arange(110.5, 130.5, 1.0)
    forcing = synthetic_forcing(lat, lon, pd.date_range("2016-01-31", periods=16, freq="3h"), small_land((15, 20)))
    run = functools.partial(et_grid.predict_et_grid, et_model(), forcing, chunk=(8, 8))
    run(tmp_path / "lightgbm.nc")
    run(tmp_path / "compiled.nc", compiled_trees=True, trees_cache=tmp_path / "cache")
    with xr.open_dataset(tmp_path / "lightgbm.nc") as a, xr.open_dataset(tmp_path / "compiled.nc") as b:
        assert "prediction_engine" not in a.attrs and b.attrs["prediction_engine"].startswith("lleaves")
        assert np.isfinite(a["et"].values).sum() > 100
        np.testing.assert_allclose(b["et"].values, a["et"].values, rtol=2e-7, equal_nan=True)
    assert len(list((tmp_path / "cache").glob("lleaves-*.o"))) == 1
