"""The validation browser's query parameters and confusion-matrix scores (pure: no database)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from portal.validation import filters as flt


def _rows():
    return [
        {"split": "validation", "network": "FLUXNET2015", "land_cover": "ENF", "variable": "et", "label": "B",
         "n": 10, "kge": 0.5, "r": 0.8, "ubrmse": 0.3, "bias": -0.1, "rmse": 0.4, "nse": 0.6},
        {"split": "validation", "network": "FLUXNET2015", "land_cover": "GRA", "variable": "et", "label": "A",
         "n": 20, "kge": None, "r": 0.6, "ubrmse": 0.5, "bias": 0.2, "rmse": 0.6, "nse": 0.3},
        {"split": "cv", "network": "AmeriFlux", "land_cover": "", "variable": "et", "label": "C",
         "n": 5, "kge": -0.2, "r": 0.9, "ubrmse": 0.1, "bias": 0.0, "rmse": 0.2, "nse": 0.8},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"metric": "kgee"}, "metric"),
        ({"min": "abc"}, "min"),
        ({"max": "nan"}, "max"),
        ({"min": "2", "max": "1"}, "min"),
        ({"sort": "-colour"}, "sort"),
        ({"split": "nope"}, "split"),
        ({"network": "X" * 200}, "network"),
        ({"bbox": "1,2,3,4"}, "bbox"),
        ({"split": ["validation", "cv"]}, "split"),
    ],
)
def test_a_bad_parameter_is_named(query, field):
    with pytest.raises(flt.FilterError) as info:
        flt.parse(query, splits=["validation", "cv"])
    assert info.value.field == field and str(info.value)


def test_filters_keep_what_they_name_and_sort_with_missing_values_last():
    rows = _rows()
    f = flt.parse({"split": "validation", "sort": "-kge"}, splits=["validation", "cv"])
    assert [r["label"] for r in flt.apply(rows, f)] == ["B", "A"]  # A's KGE is no number: last
    f = flt.parse({"metric": "r", "min": "0.7"})
    assert [r["label"] for r in flt.apply(rows, f)] == ["B", "C"]
    f = flt.parse({"metric": "kge", "max": "1"})  # a range leaves out rows without a number
    assert [r["label"] for r in flt.apply(rows, f)] == ["B", "C"]
    f = flt.parse({"network": "AmeriFlux"})
    assert [r["label"] for r in flt.apply(rows, f)] == ["C"]
    f = flt.parse({"land_cover": "GRA", "sort": "n"})
    assert [r["label"] for r in flt.apply(rows, f)] == ["A"]
    assert [r["label"] for r in flt.apply(rows, flt.parse({"sort": "n"}))] == ["C", "B", "A"]
    assert flt.parse({"metric": "bias", "min": "-1"}).as_query() == {"metric": "bias", "min": "-1"}


def test_matrix_scores_agree_with_scikit_learn():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 500)
    pred = np.where(rng.random(500) < 0.8, truth, 1 - truth)
    cm = confusion_matrix(truth, pred, labels=[0, 1]).tolist()
    s = flt.matrix_scores(cm)
    assert s["n"] == 500
    assert s["overall_accuracy"] == pytest.approx((truth == pred).mean())
    assert s["kappa"] == pytest.approx(cohen_kappa_score(truth, pred))
    assert s["recall_frozen"] == pytest.approx(((pred == 1) & (truth == 1)).sum() / (truth == 1).sum())
    assert s["recall_thawed"] == pytest.approx(((pred == 0) & (truth == 0)).sum() / (truth == 0).sum())


def test_matrix_scores_of_one_class_and_bad_input():
    s = flt.matrix_scores([[10, 0], [0, 0]])
    assert s["kappa"] is None and s["recall_frozen"] is None and s["overall_accuracy"] == 1.0
    for bad in ([[1, 2]], [[1, -1], [0, 1]], [[0, 0], [0, 0]], [[1.5, 0], [0, 1]], None):
        with pytest.raises(ValueError):
            flt.matrix_scores(bad)
