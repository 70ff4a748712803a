"""The pipelines' toolkit (products.lineage) and the task names products.services enqueues."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from celery import current_app

from products import services
from products.data_kind import DataKind
from products.lineage import ProductOutput, Stages, ValidationRow, json_safe, metric_values
from products.models import GenerationRun, ValidationResult
from products.pipelines import PIPELINES

# --- json_safe and metric_values (no database) -----------------------------------------------------------


def test_json_safe_keeps_strings_that_hold_nan_as_they_are():
    summary = {"note": "NaN in a label stays", "labels": ["NaN", "not NaN", "NaNa"], "kge": float("nan")}
    assert json_safe(summary) == {"note": "NaN in a label stays", "labels": ["NaN", "not NaN", "NaNa"], "kge": None}


def test_json_safe_gives_plain_json_types():
    value = {
        1: np.float32(0.5),
        "i": np.int64(3),
        "b": np.bool_(True),
        "t": (1, np.float64(np.inf)),
        "a": np.array([[1.0, np.nan], [-np.inf, 2.0]]),
        "s": np.str_("x"),
        "kind": DataKind.SYNTHETIC,
        "when": pd.Timestamp("2020-01-02T03:04:05"),
        "day": dt.date(2020, 1, 2),
        "nat": pd.NaT,
        "d64": np.datetime64("2020-01-02T00:00:00.000000000"),
        "p": Path("a/b.nc"),
        "none": None,
        "nested": [{"x": np.nan}],
    }
    out = json_safe(value)
    assert out == {
        "1": 0.5,
        "i": 3,
        "b": True,
        "t": [1, None],
        "a": [[1.0, None], [None, 2.0]],
        "s": "x",
        "kind": "synthetic twin",
        "when": "2020-01-02T03:04:05",
        "day": "2020-01-02",
        "nat": None,
        "d64": "2020-01-02T00:00:00",
        "p": "a/b.nc",
        "none": None,
        "nested": [{"x": None}],
    }
    assert type(out["i"]) is int and type(out["b"]) is bool and type(out["s"]) is str and type(out["kind"]) is str
    assert type(out["1"]) is float and json_safe(np.array(2.5)) == 2.5


def test_metric_values_are_the_stored_columns_types():
    out = metric_values({"n": np.float64(12.0), "kge": np.float32(0.25), "r": np.nan, "rmse": None, "bias": 1})
    assert out == {"n": 12, "kge": 0.25, "r": None, "rmse": None, "bias": 1.0, "not_meaningful": ""}
    assert type(out["n"]) is int and type(out["bias"]) is float
    reason = metric_values({"n": 3, "kge": np.nan, "not_meaningful": "zero-mean anomaly"})
    assert reason == {"n": 3, "kge": None, "not_meaningful": "zero-mean anomaly"}
    assert math.isinf(metric_values({"beta": np.inf})["beta"])  # a float column holds it, as before


def test_a_validation_row_coerces_its_metrics_and_gives_its_columns():
    row = ValidationRow(
        "et", "mm d-1", "validation", "site", "US-Ha1", {"n": np.int64(5), "kge": np.nan}, network="FLUXNET2015"
    )
    assert row.metrics == {"n": 5, "kge": None, "not_meaningful": ""}
    assert row.fields() == {
        "variable": "et",
        "units": "mm d-1",
        "split": "validation",
        "scope": "site",
        "label": "US-Ha1",
        "n": 5,
        "kge": None,
        "not_meaningful": "",
    }
    with pytest.raises(AttributeError):
        row.label = "other"  # frozen


# --- the task names the services enqueue ---------------------------------------------------------------


def _enqueued_names(module) -> set[str]:
    """The first argument of every ``enqueue_on_commit(...)`` call in ``module``, resolved to its value."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "enqueue_on_commit"
        ):
            first = node.args[0]
            names.add(first.value if isinstance(first, ast.Constant) else getattr(module, first.id))
    return names


def test_every_task_name_the_services_enqueue_is_registered_in_the_celery_app():
    names = _enqueued_names(services)
    assert names == {"products.generate"}
    assert names <= set(current_app.tasks)
    assert current_app.tasks["products.generate"].name == services.GENERATE_TASK


def test_every_periodic_task_is_registered_with_time_limits(settings):
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        task = current_app.tasks[entry["task"]]
        assert task.soft_time_limit and task.time_limit and task.soft_time_limit < task.time_limit


# --- Stages and publish on the database ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_stage_records_its_seconds_and_a_log_line_and_a_failed_one_nothing(django_db_setup):
    run = services.create_run("et_fusion")
    stages = Stages(run)
    with stages("load_inputs"):
        pass
    with pytest.raises(RuntimeError), stages("broken"):
        raise RuntimeError("simulated")
    run.refresh_from_db()
    assert list(run.timings) == ["load_inputs"] == list(stages.timings) and run.timings["load_inputs"] >= 0
    assert "load_inputs done in" in run.log and "broken" not in run.log


@pytest.mark.django_db
def test_publish_stores_typed_rows_and_a_json_safe_summary(et_run, monkeypatch):
    def pipeline(run, workdir: Path) -> ProductOutput:
        (workdir / "table.csv").write_text("a,b\n1,2\n")
        return ProductOutput(
            files={"table.csv": "a small table"},
            validation=[
                ValidationRow("et", "mm d-1", "validation", "pooled", "all", {"n": np.int64(4), "kge": np.nan}),
                ValidationRow(
                    "et", "mm d-1", "validation", "site", "US-Ha1", {"n": 2, "kge": 0.5}, network="FLUXNET2015"
                ),
            ],
            summary={"text": "a string with NaN in it", "value": np.float64("nan"), "count": np.int64(2)},
        )

    monkeypatch.setitem(PIPELINES, "et_fusion", pipeline)
    run = services.execute_run(services.create_run("et_fusion").id)
    assert run.status == GenerationRun.Status.SUCCEEDED, run.error
    assert run.summary == {"text": "a string with NaN in it", "value": None, "count": 2}
    assert run.version.lineage["summary"] == run.summary
    rows = {r.scope: r for r in ValidationResult.objects.filter(run=run)}
    assert (rows["pooled"].n, rows["pooled"].kge, rows["pooled"].station) == (4, None, None)
    assert rows["site"].station.code == "US-Ha1" and rows["site"].station.network == "FLUXNET2015"
