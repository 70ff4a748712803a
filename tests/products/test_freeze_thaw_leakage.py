"""Leakage test of the freeze/thaw splits: change the reference labels of the held-out (test) blocks, and
nothing fitted may change (the block edge and the variogram ranges that sized it, the split, the selected leaf
size and its validation scores, the trees, the predictions for every pixel, the training and validation scores).

Run on the synthetic twin (products.generators.twins.freeze_thaw), not the GLDAS day: it needs only the
splitting and fitting, and takes seconds. The blocks are sized from the predictors' variograms without the
labels (issue 16); a block size taken from the reference over every pixel would fail here. A control flips
training labels and checks that the comparison does see a change in the trees.
"""

from __future__ import annotations

import numpy as np
import pytest

from products.generators import freeze_thaw as ft
from products.generators.twins import freeze_thaw as ft_twin

FIT = {"n_estimators": 15, "min_samples_leaf": (1, 10), "seed": 1}
FIELDS = ["tb_like", "elevation", "noise"]


@pytest.fixture(scope="module")
def twin_samples():
    twin = ft_twin.make_twin(n_lat=48, n_lon=96, n_days=2, seed=3)
    return ft.samples(twin.predictors, twin.truth, twin.features)


def relabelled(data: ft.Samples, rows: np.ndarray, how: str) -> ft.Samples:
    """A copy of ``data`` with the labels of ``rows`` flipped, shuffled or all set frozen (predictors untouched)."""
    y = data.y.copy()
    if how == "flip":
        y[rows] = 1 - y[rows]
    elif how == "shuffle":
        y[rows] = np.random.default_rng(0).permutation(y[rows])
    else:
        y[rows] = ft.FROZEN
    return ft.Samples(data.X.copy(), y, data.lat, data.lon, data.flat, list(data.features))


def trees(model) -> list[tuple]:
    """Every tree's split features, thresholds and leaf values (what a fit decides)."""
    return [(e.tree_.feature.copy(), e.tree_.threshold.copy(), e.tree_.value.copy()) for e in model.estimators_]


def assert_same_trees(a, b) -> None:
    assert len(a) == len(b)
    for (fa, ta, va), (fb, tb, vb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa, fb)
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(va, vb)


@pytest.fixture(scope="module")
def unchanged(twin_samples):
    split, info = ft.variogram_block_split(twin_samples, FIELDS, seed=1)
    return split, info, ft.fit_select(twin_samples, split, **FIT)


@pytest.mark.parametrize("how", ["flip", "shuffle", "all_frozen"])
def test_changing_the_test_blocks_labels_changes_nothing_fitted(twin_samples, unchanged, how):
    split, info, before = unchanged
    changed = relabelled(twin_samples, np.flatnonzero(split == 2), how)
    split2, info2 = ft.variogram_block_split(changed, FIELDS, seed=1)
    after = ft.fit_select(changed, split2, **FIT)
    # the blocks: sized without the labels, the same edge, ranges and split
    assert info2 == info and info["block_deg"] >= info["range_deg"] > 2.0  # wider than the former 2 degree blocks
    np.testing.assert_array_equal(split, split2)
    # the selection on the validation blocks, and the model
    assert after.params == before.params and after.selection == before.selection
    assert after.n_train_fitted == before.n_train_fitted
    assert_same_trees(trees(before.model), trees(after.model))
    np.testing.assert_array_equal(before.model.predict(twin_samples.X), after.model.predict(changed.X))
    for s in ("train", "validation"):
        assert after.metrics[s] == before.metrics[s]
    # the change did reach the held-out scores (the test would prove nothing otherwise)
    assert after.metrics["test"]["confusion_matrix"] != before.metrics["test"]["confusion_matrix"]


def test_changing_a_held_out_fold_of_the_block_cv_changes_nothing_fitted_for_that_fold(twin_samples, unchanged):
    block = unchanged[1]["block_deg"]
    before = ft.block_cv(twin_samples, block, n_folds=3, **FIT)
    k = 1
    changed = relabelled(twin_samples, np.flatnonzero(before.fold == k), "flip")
    after = ft.block_cv(changed, block, n_folds=3, **FIT)
    np.testing.assert_array_equal(before.fold, after.fold)
    a, b = before.folds[k], after.folds[k]
    assert a.params == b.params and a.selection == b.selection
    assert_same_trees(trees(a.model), trees(b.model))
    held = before.fold == k
    np.testing.assert_array_equal(before.predicted[held], after.predicted[held])
    assert before.metrics != after.metrics  # the pooled score saw the change


def test_control_changing_training_labels_does_change_the_trees(twin_samples, unchanged):
    split, _, before = unchanged
    train = np.flatnonzero(split == 0)
    changed = relabelled(twin_samples, train[: train.size // 5], "flip")
    after = ft.fit_select(changed, split, **FIT)
    with pytest.raises(AssertionError):
        assert_same_trees(trees(before.model), trees(after.model))
