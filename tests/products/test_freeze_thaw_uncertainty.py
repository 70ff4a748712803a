"""Freeze/thaw uncertainty (issue 17): ``probability_frozen`` beside ``ft_state`` and its calibration.

* The probability is of the class the state variable's flags code as ``frozen`` (not a fixed column), and
  agrees with the state (frozen where above 0.5).
* The block cross-validation's probabilities are out-of-fold: each sample's comes from the fold model that
  never saw its block, and the labels of a held-out fold cannot change them; in-sample probabilities score
  differently, so a calibration from them would not match.
* The grid carries the variable with its CF attributes (no ``flag_values``), written window by window,
  linked from ``ft_state``'s ``ancillary_variables``.
* The pipeline's ``summary["uncertainty"]`` has one entry per grid, the headline reliability computed from
  the block CV's out-of-fold probabilities (recomputed here for the twin), the file's comment states it,
  and the published model's test-block figures are recomputed from the published file itself.

The generator tests need no database; the pipeline tests reuse (or run once) the version of
``tests.products.test_freeze_thaw.PIPELINE_PARAMS`` (real GLDAS day, Tibetan Plateau, and a small twin).
"""

from __future__ import annotations

import functools
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from products.data_kind import DataKind
from products.generators import freeze_thaw as ft
from products.generators.twins import freeze_thaw as ft_twin
from products.methods import chunked
from products.methods import uncertainty as unc
from tests.products.test_freeze_thaw import PIPELINE_PARAMS

FIT = {"n_estimators": 15, "min_samples_leaf": (1, 10), "seed": 1}


@pytest.fixture(scope="module")
def twin():
    return ft_twin.make_twin(n_lat=48, n_lon=96, n_days=2, seed=3)


@pytest.fixture(scope="module")
def data(twin):
    return ft.samples(twin.predictors, twin.truth, twin.features)


@pytest.fixture(scope="module")
def fitted(data):
    split = ft.block_split(data.lat, data.lon, 2.0, seed=1)
    return split, ft.fit_select(data, split, **FIT)


@pytest.fixture(scope="module")
def cv(data):
    return ft.block_cv(data, 4.0, n_folds=3, **FIT)


def raw(path, name: str) -> np.ndarray:
    """The stored values of ``name`` (``_Unsigned`` bytes as uint8), fill not masked."""
    with netCDF4.Dataset(path) as nc:
        var = nc[name]
        var.set_auto_mask(False)
        return var[:]


# --- the class and its probability ---------------------------------------------------------------


def test_the_frozen_class_is_found_through_the_flags_not_a_fixed_column(data, fitted):
    _, res = fitted
    assert ft.class_code("frozen") == ft.FROZEN == 1 and ft.class_code("thawed") == ft.THAWED
    assert ft.class_code("frozen", {"flag_values": np.array([3, 7]), "flag_meanings": "thawed frozen"}) == 7
    p = ft.class_probability(res.model, data.X)
    column = list(res.model.classes_).index(ft.FROZEN)
    np.testing.assert_array_equal(p, res.model.predict_proba(data.X)[:, column])
    # a coding where 0 means frozen picks the other column
    swapped = {"flag_values": np.array([1, 0], "u1"), "flag_meanings": "thawed frozen"}
    np.testing.assert_allclose(ft.class_probability(res.model, data.X, attrs=swapped), 1.0 - p, atol=1e-12)
    with pytest.raises(ValueError, match="flag meanings"):
        ft.class_code("melting")
    with pytest.raises(ValueError, match="without the class"):
        ft.class_probability(res.model, data.X, attrs={"flag_values": [0, 5], "flag_meanings": "thawed frozen"})
    assert ft.class_probability(res.model, data.X[:0]).shape == (0,)


def test_the_probability_agrees_with_the_predicted_state(data, fitted):
    _, res = fitted
    p = ft.class_probability(res.model, data.X)
    state = res.model.predict(data.X)
    assert ((p >= 0) & (p <= 1)).all() and 0 < p.mean() < 1
    decided = p != 0.5  # a tie goes to the first class (thawed)
    np.testing.assert_array_equal(state[decided] == ft.FROZEN, p[decided] > 0.5)
    assert (state[~decided] == ft.THAWED).all()


# --- out-of-fold probabilities and their reliability ----------------------------------------------


def test_block_cv_probabilities_come_from_the_fold_that_held_the_block_out(data, cv):
    assert cv.probability.shape == data.y.shape and np.isfinite(cv.probability).all()
    for k, res in enumerate(cv.folds):
        held = cv.fold == k
        np.testing.assert_array_equal(cv.probability[held], ft.class_probability(res.model, data.X[held]))
        np.testing.assert_array_equal(cv.predicted[held], res.model.predict(data.X[held]))


def test_the_reliability_is_of_the_out_of_fold_probabilities_and_in_sample_ones_score_differently(data, cv):
    rel = ft.block_cv_reliability(data, cv, bins=10, block_deg=4.0)
    expected = unc.reliability(cv.probability, data.y == 1, bins=10, split="block_cv")
    assert rel.split == "block_cv" and rel.n == data.y.size and "out-of-fold" in rel.note
    assert rel.brier == pytest.approx(expected.brier) and rel.ece == pytest.approx(expected.ece)
    assert rel.brier == pytest.approx(np.mean((cv.probability - (data.y == 1)) ** 2))
    assert sum(b["n"] for b in rel.bins) == data.y.size
    # in-sample: every sample scored by a fold model that was trained on it
    in_sample = np.full(data.y.size, np.nan)
    for k, split in enumerate(cv.splits):
        trained = split == 0
        todo = trained & np.isnan(in_sample)
        in_sample[todo] = ft.class_probability(cv.folds[k].model, data.X[todo])
    assert np.isfinite(in_sample).all()
    inside = unc.reliability(in_sample, data.y == 1, bins=10, split="in_sample")
    assert inside.brier < rel.brier  # the held-out figure is the honest, worse one
    with pytest.raises(ValueError, match="samples"):
        ft.block_cv_reliability(ft.Samples(data.X[:10], data.y[:10], data.lat, data.lon, data.flat, data.features), cv)


def test_a_held_out_folds_labels_cannot_change_its_probabilities(data, cv):
    k = 1
    y = data.y.copy()
    y[cv.fold == k] = 1 - y[cv.fold == k]
    changed = ft.Samples(data.X, y, data.lat, data.lon, data.flat, list(data.features))
    after = ft.block_cv(changed, 4.0, n_folds=3, **FIT)
    held = cv.fold == k
    np.testing.assert_array_equal(after.probability[held], cv.probability[held])
    # the reliability did see the flipped outcomes
    assert ft.block_cv_reliability(changed, after).brier != ft.block_cv_reliability(data, cv).brier


# --- the grid ---------------------------------------------------------------------------------------


def test_the_grid_carries_probability_frozen_with_cf_attributes_and_the_ancillary_link(twin, data, fitted, tmp_path):
    split, res = fitted
    path = tmp_path / "ft.nc"
    grid = ft.write_state_grid(
        path,
        predictors=twin.predictors,
        features=twin.features,
        predict=res.model.predict,
        probability=functools.partial(ft.class_probability, res.model),
        probability_comment="Calibration sentence.",
        data_kind=DataKind.SYNTHETIC,
        chunk=(1, 20, 40),
        extra={"split": (ft.grid_of(data, split, twin.truth.shape, ft.SPLIT_FILL, "i1"), ft.SPLIT_ATTRS)},
    )
    assert grid["probability"] == grid["predicted"] == twin.truth.size
    with netCDF4.Dataset(path) as nc:
        var = nc[ft.PROBABILITY_NAME]
        assert var.dtype == np.float32 and var.dimensions == ("time", "lat", "lon")
        assert var.units == "1" and var.valid_range.dtype == np.float32 and list(var.valid_range) == [0.0, 1.0]
        assert var.long_name == "probability that the state is frozen" and var.grid_mapping == "crs"
        assert var.coverage_content_type == "qualityInformation" and var.uncertainty_method == "class_probability"
        assert "coded 1 (flag meaning frozen)" in var.comment and "Calibration sentence" in var.comment
        assert var._FillValue == chunked.FILL_VALUE and var.chunking() == [1, 20, 40]
        assert "flag_values" not in var.ncattrs() and "flag_meanings" not in var.ncattrs()
        assert nc[ft.STATE_NAME].ancillary_variables == ft.PROBABILITY_NAME
        assert "ancillary_variables" not in nc["split"].ncattrs()
    p, state = raw(path, ft.PROBABILITY_NAME), raw(path, ft.STATE_NAME)
    np.testing.assert_array_equal(p.reshape(-1)[data.flat], ft.class_probability(res.model, data.X).astype("float32"))
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_array_equal(state == ft.FROZEN, p > 0.5)
    with xr.open_dataset(path) as ds:  # CF decoding: valid range and fill understood
        assert float(ds[ft.PROBABILITY_NAME].min()) >= 0.0 and ds[ft.PROBABILITY_NAME].dtype == np.float32


def test_the_probability_is_fill_where_the_state_is_and_absent_without_a_probability(twin, fitted, tmp_path):
    _, res = fitted
    preds = twin.predictors.copy(deep=True)
    preds["tb_like"][0, :5, :5] = np.nan
    ft.write_state_grid(
        tmp_path / "m.nc",
        predictors=preds,
        features=twin.features,
        predict=res.model.predict,
        probability=functools.partial(ft.class_probability, res.model),
        data_kind=DataKind.SYNTHETIC,
    )
    p, state = raw(tmp_path / "m.nc", ft.PROBABILITY_NAME), raw(tmp_path / "m.nc", ft.STATE_NAME)
    np.testing.assert_array_equal(p == chunked.FILL_VALUE, state == ft.STATE_FILL)
    assert (p[0, :5, :5] == chunked.FILL_VALUE).all() and ((p[1] >= 0) & (p[1] <= 1)).all()
    ft.write_state_grid(
        tmp_path / "n.nc",
        predictors=twin.predictors,
        features=twin.features,
        predict=res.model.predict,
        data_kind=DataKind.SYNTHETIC,
    )
    with netCDF4.Dataset(tmp_path / "n.nc") as nc:
        assert ft.PROBABILITY_NAME not in nc.variables and "ancillary_variables" not in nc[ft.STATE_NAME].ncattrs()


def test_probabilities_outside_0_1_leave_no_file(twin, fitted, tmp_path):
    _, res = fitted
    with pytest.raises(ValueError, match="outside"):
        ft.write_state_grid(
            tmp_path / "x.nc",
            predictors=twin.predictors,
            features=twin.features,
            predict=res.model.predict,
            probability=lambda m: np.full(len(m), 1.5),
            data_kind=DataKind.SYNTHETIC,
        )
    assert list(tmp_path.iterdir()) == []


# --- the pipeline -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ft_run(django_db_setup, django_db_blocker):
    """The succeeded freeze/thaw run of PIPELINE_PARAMS of this session (run once if none)."""
    from products.models import GenerationRun
    from products.services import create_run, execute_run

    with django_db_blocker.unblock():
        run = (
            GenerationRun.objects.filter(product="freeze_thaw", status="succeeded", parameters=PIPELINE_PARAMS)
            .order_by("-created_at")
            .first()
        )
        if run is None:
            run = execute_run(create_run("freeze_thaw", parameters=PIPELINE_PARAMS).id)
        assert run.status == "succeeded", run.error
        files = {f.name: Path(f.path) for f in run.version.files.all()}
        return run, files


def _path(settings, rel: Path) -> Path:
    return Path(settings.DATA_ROOT) / rel


@pytest.mark.django_db
def test_every_published_grid_has_its_probability_and_one_summary_entry(ft_run, settings):
    run, files = ft_run
    grids = sorted(n for n in files if n.endswith(".nc"))
    assert grids == ["freeze_thaw_proxy_tibetan_plateau.nc", "freeze_thaw_twin.nc"]
    entries = run.summary["uncertainty"]
    assert sorted(e["file"] for e in entries) == grids
    experiment = {"freeze_thaw_proxy_tibetan_plateau.nc": "tibetan_plateau:gldas_soil", "freeze_thaw_twin.nc": "twin"}
    for entry in entries:
        assert entry["variable"] == ft.PROBABILITY_NAME and entry["estimate"] == ft.STATE_NAME
        assert entry["kind"] == unc.PROBABILITY and entry["method"] == "class_probability"
        cal = entry["calibration"]
        assert cal["kind"] == "reliability" and cal["split"] == "block_cv" and not entry["not_calibrated_reason"]
        pooled = run.summary["block_cv"][experiment[entry["file"]]]["test_pooled"]
        assert cal["n"] == pooled["n"] == sum(b["n"] for b in cal["bins"])  # every sample, each held out once
        assert 0 <= cal["ece"] <= 1 and 0 <= cal["brier"] <= 1
        assert cal["calibrated"] == (cal["ece"] <= cal["tolerance"])
        path = _path(settings, files[entry["file"]])
        with netCDF4.Dataset(path) as nc:
            var = nc[ft.PROBABILITY_NAME]
            assert var.units == "1" and list(var.valid_range) == [0.0, 1.0] and "flag_values" not in var.ncattrs()
            assert ft.PROBABILITY_NAME in nc[ft.STATE_NAME].ancillary_variables.split()
            stated = f"expected calibration error {cal['ece']:.3f}, Brier score {cal['brier']:.3f}, n = {cal['n']}"
            assert stated in var.comment and "(block_cv)" in var.comment
            assert stated in nc.comment and ft.PROBABILITY_NAME in nc.comment
        p, state = raw(path, ft.PROBABILITY_NAME), raw(path, ft.STATE_NAME)
        has_state = state != ft.STATE_FILL
        assert has_state.sum() > 1000
        assert np.isfinite(p[has_state]).all() and ((p[has_state] >= 0) & (p[has_state] <= 1)).all()
        assert (p[~has_state] == chunked.FILL_VALUE).all()
        np.testing.assert_array_equal(state[has_state] == ft.FROZEN, p[has_state] > 0.5)
    lineage = run.version.lineage
    assert lineage["parameters"]["reliability_bins"] == 10
    assert any("out-of-fold" in v for v in lineage["statistics_fitted_on"].values())


@pytest.mark.django_db
def test_the_test_block_figures_are_recomputed_from_the_published_file(ft_run, settings):
    run, files = ft_run
    for key, name in (("tibetan_plateau", "freeze_thaw_proxy_tibetan_plateau.nc"), ("twin", "freeze_thaw_twin.nc")):
        figures = run.summary["probability_calibration"][key]
        assert figures["headline"] == "block_cv"
        entry = next(e for e in run.summary["uncertainty"] if e["file"] == name)
        assert figures["block_cv"] == entry["calibration"]
        path = _path(settings, files[name])
        p, ref, split = raw(path, ft.PROBABILITY_NAME), raw(path, "ft_reference"), raw(path, "split")
        test = split == 2
        again = unc.reliability(p[test], ref[test] == ft.class_code("frozen"), bins=10, split="test")
        stored = figures["test"]
        assert stored["split"] == "test" and stored["n"] == again.n == int(test.sum()) > 0
        assert stored["brier"] == pytest.approx(again.brier, rel=1e-6, abs=1e-9)
        assert stored["ece"] == pytest.approx(again.ece, rel=1e-6, abs=1e-9)


@pytest.mark.django_db
def test_the_twins_headline_is_recomputed_from_out_of_fold_probabilities_not_in_sample_ones(ft_run, settings):
    run, files = ft_run
    params = {**run.version.lineage["parameters"]}
    n_days, n_lat, n_lon = params["twin_shape"]
    twin = ft_twin.make_twin(
        n_lat=n_lat, n_lon=n_lon, n_days=n_days, tb_noise_k=params["twin_tb_noise_k"], seed=params["seed"]
    )
    data = ft.samples(twin.predictors, twin.truth, twin.features)
    block = run.summary["block_cv"]["twin"]["block_deg"]
    cv = ft.block_cv(
        data,
        block,
        n_folds=params["cv_folds"],
        n_estimators=params["n_estimators"],
        min_samples_leaf=params["min_samples_leaf"],
        seed=params["seed"],
        n_jobs=params["n_jobs"],
        max_train_samples=params["max_train_samples"],
    )
    again = ft.block_cv_reliability(data, cv, bins=params["reliability_bins"], block_deg=block)
    stored = next(e for e in run.summary["uncertainty"] if e["file"] == "freeze_thaw_twin.nc")["calibration"]
    assert stored == again.as_dict()
    # the published (in-sample for the training blocks) probabilities over every sample score otherwise
    p = raw(_path(settings, files["freeze_thaw_twin.nc"]), ft.PROBABILITY_NAME).reshape(-1)[data.flat]
    published = unc.reliability(p, data.y == 1, bins=params["reliability_bins"])
    assert published.brier != pytest.approx(stored["brier"], rel=1e-3)


@pytest.mark.django_db
def test_without_a_block_cv_the_entry_says_why_and_bad_bins_are_refused(settings):
    from products.services import create_run, execute_run

    params = {"regions": [], "cv_folds": 0, "twin_shape": [1, 24, 48], "n_estimators": 5, "min_samples_leaf": [5]}
    run = execute_run(create_run("freeze_thaw", parameters=params).id)
    assert run.status == "succeeded", run.error
    (entry,) = run.summary["uncertainty"]
    assert entry["file"] == "freeze_thaw_twin.nc" and entry["calibration"] is None
    assert "cv_folds = 0" in entry["not_calibrated_reason"]
    assert run.summary["probability_calibration"]["twin"]["block_cv"] is None
    assert run.summary["probability_calibration"]["twin"]["test"]["n"] > 0
    path = Path(settings.DATA_ROOT) / run.version.files.get(name="freeze_thaw_twin.nc").path
    with netCDF4.Dataset(path) as nc:
        assert "Calibration not measured" in nc[ft.PROBABILITY_NAME].comment
    bad = execute_run(create_run("freeze_thaw", parameters={"reliability_bins": 0}).id)
    assert bad.status == "failed" and "reliability_bins" in bad.error
