"""Freeze/thaw generator: metrics, spatial-block split, synthetic twin, state grid, and the pipeline end to end.

The generator tests need no database; the pipeline test runs ``products.services.execute_run`` on the
real GLDAS sample day (proxy experiment, Tibetan Plateau box only, few trees) and a small twin.
"""

import netCDF4
import numpy as np
import pytest
import xarray as xr
from sklearn.metrics import cohen_kappa_score

from products.data_kind import DataKind
from products.generators import freeze_thaw as ft
from products.generators.twins import freeze_thaw as ft_twin


@pytest.fixture(scope="module")
def twin():
    return ft_twin.make_twin(n_lat=48, n_lon=96, n_days=2, seed=3)


@pytest.fixture(scope="module")
def fitted(twin):
    data = ft.samples(twin.predictors, twin.truth, twin.features)
    split = ft.block_split(data.lat, data.lon, 2.0, seed=1)
    return data, split, ft.fit_select(data, split, n_estimators=40, min_samples_leaf=(1, 10), seed=1)


def test_metrics_match_the_confusion_matrix_and_scikit_learns_kappa():
    t = np.array([0, 0, 0, 0, 1, 1, 1, 0, 1, 0])
    p = np.array([0, 0, 1, 0, 1, 0, 1, 0, 1, 1])
    m = ft.classification_metrics(t, p)
    assert m["confusion_matrix"] == [[4, 2], [1, 3]]
    assert m["overall_accuracy"] == pytest.approx(0.7)
    assert m["recall_thawed"] == pytest.approx(4 / 6) and m["recall_frozen"] == pytest.approx(3 / 4)
    # kappa by hand (Cohen 1960): p_o = 0.7, p_e = 0.6*0.5 + 0.4*0.5 = 0.5
    assert m["kappa"] == pytest.approx((0.7 - 0.5) / (1 - 0.5))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(t, p))


def test_kappa_is_undefined_for_one_agreed_class_and_labels_are_checked():
    m = ft.classification_metrics([1, 1, 1], [1, 1, 1])
    assert m["kappa"] is None and m["recall_thawed"] is None and m["overall_accuracy"] == 1.0
    with pytest.raises(ValueError, match="labels 0"):
        ft.classification_metrics([0, 2], [0, 1])
    with pytest.raises(ValueError, match="one length"):
        ft.classification_metrics([0, 1], [0])


def test_reference_is_frozen_below_the_freezing_point_with_fill_for_missing():
    ref = ft.reference_state(np.array([[250.0, 273.15, 273.14, np.nan]]))
    assert ref.tolist() == [[1, 0, 1, 255]] and ref.dtype == np.uint8
    with pytest.raises(ValueError, match="kelvin"):
        ft.reference_state(np.array([-5.0, 3.0]))


def test_the_split_keeps_blocks_whole_and_near_70_15_15(twin):
    data = ft.samples(twin.predictors, twin.truth, twin.features)
    split = ft.block_split(data.lat, data.lon, 1.0, seed=0)
    share = np.bincount(split, minlength=3) / split.size
    assert share == pytest.approx([0.70, 0.15, 0.15], abs=0.04)
    blocks = ft.block_ids(data.lat, data.lon, 1.0)
    for b in np.unique(blocks):
        assert np.unique(split[blocks == b]).size == 1  # a block (hence a pixel, and all its days) in one set
    pixel = data.lat * 1000 + data.lon
    for px in np.unique(pixel)[:50]:
        assert np.unique(split[pixel == px]).size == 1
    with pytest.raises(ValueError, match="at least 3"):
        ft.block_split(data.lat, data.lon, 60.0)


def test_the_empirical_variogram_is_half_the_mean_squared_difference_of_the_pairs_in_each_bin():
    lat = np.array([0.0, 0.0, 0.0, 3.0])
    lon = np.array([0.0, 1.0, 2.0, 0.0])
    z = np.array([1.0, 2.0, 4.0, 0.0])
    vg = ft.empirical_variogram(lat, lon, {"z": z}, n_bins=2, max_lag=4.0)
    # pairs: d=1 (0-1: 1, 1-2: 4); d=2 (0-2: 9); d=3 (0-3: 1); d=sqrt(10) (1-3: 4); d=sqrt(13) (2-3: 16)
    assert vg.pairs.tolist() == [2, 4] and vg.lags.tolist() == [1.0, 3.0]
    var = z.var()
    assert vg.variance["z"] == pytest.approx(var)
    assert vg.gamma["z"] == pytest.approx([0.5 * (1 + 4) / 2 / var, 0.5 * (9 + 1 + 4 + 16) / 4 / var])
    lon_wrap = ft.empirical_variogram(
        [0.0, 0.0, 0.0], [179.0, -179.0, 0.0], {"z": [0.0, 1.0, 5.0]}, n_bins=1, max_lag=3
    )
    assert lon_wrap.pairs.tolist() == [1]  # 179 E and 179 W are 2 degrees apart, not 358
    with pytest.raises(ValueError, match="finite"):
        ft.empirical_variogram(lat, lon, {"z": [1.0, np.nan, 0.0, 1.0]})


def test_the_practical_range_is_where_the_semivariance_reaches_95_percent_of_the_sill():
    assert ft.variogram_range([1.0, 2.0, 3.0], [0.5, 0.9, 1.0]) == pytest.approx(2.5)
    assert ft.variogram_range([1.0, 2.0], [0.5, 0.6]) is None  # longer than the largest lag
    assert ft.variogram_range([1.0, 2.0, 3.0], [np.nan, 0.5, 1.0], fraction=0.75) == pytest.approx(
        2.5
    )  # empty bin skipped
    assert ft.variogram_range([1.0], None) is None
    with pytest.raises(ValueError, match="fraction"):
        ft.variogram_range([1.0], [1.0], fraction=1.5)


def test_blocks_sized_from_the_twins_variograms_are_at_least_the_range_and_ignore_noise(twin):
    data = ft.samples(twin.predictors, twin.truth, twin.features)
    split, info = ft.variogram_block_split(data, ["tb_like", "elevation", "noise"], seed=0)
    ranges = info["variogram_range_deg"]
    assert ranges["noise"] < 1.0 < ranges["tb_like"]  # white noise: no range; the smooth fields: degrees
    assert info["range_deg"] == pytest.approx(max(ranges.values()))
    assert info["block_deg"] >= info["range_deg"] and not info["block_below_range"]
    assert info["block_deg"] % 0.5 == 0 and info["target_range_train_deg"] is not None
    blocks = ft.block_ids(data.lat, data.lon, info["block_deg"])
    for b in np.unique(blocks):
        assert np.unique(split[blocks == b]).size == 1
    assert sum(info["n_blocks"].values()) == np.unique(blocks).size and min(info["n_blocks"].values()) >= 1
    with pytest.raises(ValueError, match="lat/lon"):
        ft.variogram_block_split(data, ["lat"])


def test_block_cv_holds_every_block_out_once_and_pools_the_held_out_predictions(twin):
    data = ft.samples(twin.predictors, twin.truth, twin.features)
    cv = ft.block_cv(data, 4.0, n_folds=3, n_estimators=10, min_samples_leaf=(5,), seed=0)
    blocks = ft.block_ids(data.lat, data.lon, 4.0)
    for b in np.unique(blocks):
        assert np.unique(cv.fold[blocks == b]).size == 1
    assert sorted(np.unique(cv.fold)) == [0, 1, 2] and len(cv.folds) == 3
    for k, split in enumerate(cv.splits):
        assert ((split == 2) == (cv.fold == k)).all() and ((split == 1) == (cv.fold == (k + 1) % 3)).all()
    assert cv.metrics == ft.classification_metrics(data.y, cv.predicted)
    assert sum(f["n"] for f in cv.fold_metrics) == data.y.size
    with pytest.raises(ValueError, match="n_folds"):
        ft.block_cv(data, 4.0, n_folds=2)


def test_the_twin_classifier_beats_the_known_single_channel_rule_and_ignores_noise(twin, fitted):
    data, split, res = fitted
    test = res.metrics["test"]
    mask = ft.grid_of(data, split == 2, twin.truth.shape, False, bool)
    assert test["overall_accuracy"] >= ft_twin.twin_baseline_accuracy(twin, mask) - 0.01
    assert test["overall_accuracy"] > 0.9 and test["kappa"] > 0.8
    assert res.importances["noise"] < 0.05 and res.importances["noise"] == min(res.importances.values())
    assert {s["min_samples_leaf"] for s in res.selection} == {1, 10}


def test_shuffled_labels_give_no_skill_on_held_out_blocks(twin):
    data = ft.samples(twin.predictors, twin.truth, twin.features)
    data.y = np.random.default_rng(0).permutation(data.y)
    split = ft.block_split(data.lat, data.lon, 2.0, seed=1)
    res = ft.fit_select(data, split, n_estimators=20, min_samples_leaf=(20,), seed=1)
    assert abs(res.metrics["test"]["kappa"]) < 0.1


def test_the_reference_field_can_never_be_a_predictor(twin):
    with pytest.raises(ValueError, match="leakage"):
        ft.samples(twin.predictors, twin.truth, twin.features, reference_source="tb_like")


def raw(path, name: str) -> np.ndarray:
    """The stored integers of ``name`` as netCDF4 reads them (``_Unsigned`` bytes as uint8), fill not masked."""
    with netCDF4.Dataset(path) as nc:
        var = nc[name]
        var.set_auto_mask(False)
        return var[:]


def test_the_state_grid_is_cf_flagged_uint8_written_window_by_window(twin, fitted, tmp_path):
    data, split, res = fitted
    shape = twin.truth.shape
    path = tmp_path / "ft.nc"
    grid = ft.write_state_grid(
        path,
        predictors=twin.predictors,
        features=twin.features,
        predict=res.model.predict,
        data_kind=DataKind.SYNTHETIC,
        chunk=(1, 20, 40),
        extra={
            "ft_reference": (twin.truth, ft.STATE_ATTRS),
            "split": (ft.grid_of(data, split, shape, ft.SPLIT_FILL, "i1"), ft.SPLIT_ATTRS),
        },
        attrs={"data_kind": "real"},
    )
    assert grid["windows"] == 2 * 3 * 3 and grid["predicted"] == twin.truth.size
    assert [p.name for p in tmp_path.iterdir()] == ["ft.nc"]  # no temporary left
    with netCDF4.Dataset(path) as nc:  # CF-1.8 byte with _Unsigned: stored int8, flags of the same type
        state = nc["ft_state"]
        assert state.dtype == np.int8 and state._Unsigned == "true" and state._FillValue == -1
        assert state.flag_values.dtype == np.int8 and list(state.flag_values) == [0, 1]
        assert state.flag_meanings == "thawed frozen" and state.grid_mapping == "crs"
    state = raw(path, "ft_state")
    assert state.dtype == np.uint8 and set(np.unique(state)) <= {0, 1, 255}  # read back as uint8, fill 255
    expected = res.model.predict(data.X)
    assert (state.reshape(-1)[data.flat] == expected).all()
    with xr.open_dataset(path) as ds:
        assert ds["ft_state"].encoding["dtype"] == np.int8 and ds["ft_state"].encoding["_Unsigned"] == "true"
        assert ds.attrs["data_kind"] == "synthetic twin"  # attrs cannot relabel the data
        assert ds["split"].encoding["dtype"] == np.int8 and set(np.unique(raw(path, "split"))) == {0, 1, 2}
    with pytest.raises(ValueError, match="data_kind"):
        ft.write_state_grid(
            path, predictors=twin.predictors, features=twin.features, predict=res.model.predict, data_kind="measured"
        )


def test_a_failing_window_leaves_no_file(twin, tmp_path):
    def bad(matrix):
        return np.full(len(matrix), 3)

    with pytest.raises(ValueError, match="other than 0"):
        ft.write_state_grid(
            tmp_path / "x.nc",
            predictors=twin.predictors,
            features=twin.features,
            predict=bad,
            data_kind=DataKind.SYNTHETIC,
        )
    assert list(tmp_path.iterdir()) == []


def test_missing_predictors_give_fill_in_the_grid(twin, fitted, tmp_path):
    _, _, res = fitted
    preds = twin.predictors.copy(deep=True)
    preds["tb_like"][0, :5, :5] = np.nan
    ft.write_state_grid(
        tmp_path / "m.nc",
        predictors=preds,
        features=twin.features,
        predict=res.model.predict,
        data_kind=DataKind.SYNTHETIC,
    )
    state = raw(tmp_path / "m.nc", "ft_state")
    assert (state[0, :5, :5] == 255).all() and (state[1] != 255).all()


PIPELINE_PARAMS = {
    "regions": ["tibetan_plateau"],
    "n_estimators": 20,
    "min_samples_leaf": [5],
    "twin_shape": [1, 40, 80],
    "seed": 7,
    "cv_folds": 3,
}


@pytest.mark.django_db
def test_the_pipeline_publishes_labelled_proxy_and_twin_grids_with_metrics(settings, client):
    import pandas as pd

    from products.services import create_run, execute_run

    run = execute_run(create_run("freeze_thaw", parameters=PIPELINE_PARAMS).id)
    assert run.status == "succeeded", run.error
    version = run.version
    names = set(version.files.values_list("name", flat=True))
    assert names == {
        "freeze_thaw_proxy_tibetan_plateau.nc",
        "freeze_thaw_twin.nc",
        "freeze_thaw_metrics.csv",
        "freeze_thaw_metrics.json",
    }
    root = settings.DATA_ROOT
    proxy = f"{root}/{version.files.get(name='freeze_thaw_proxy_tibetan_plateau.nc').path}"
    with xr.open_dataset(proxy) as ds:
        assert ds.attrs["data_kind"] == "proxy experiment" and "PROXY" in ds.attrs["comment"]
        assert ds.sizes["lat"] == 60 and ds.sizes["lon"] == 128  # 25-40 N, 73-105 E at 0.25 degree
        assert "SoilTMP0_10cm" not in ds.attrs["features"] and "t_soil_10_40cm" in ds.attrs["features"]
    ref, state = raw(proxy, "ft_reference"), raw(proxy, "ft_state")
    both = (ref != 255) & (state != 255)
    assert both.sum() > 5000 and (ref[both] == state[both]).mean() > 0.9
    with xr.open_dataset(f"{root}/{version.files.get(name='freeze_thaw_twin.nc').path}") as ds:
        assert ds.attrs["data_kind"] == "synthetic twin"
    table = pd.read_csv(f"{root}/{version.files.get(name='freeze_thaw_metrics.csv').path}")
    assert set(table["experiment"]) == {
        "tibetan_plateau:gldas_soil",
        "tibetan_plateau:deep_only",
        "twin",
        "tibetan_plateau:gldas_soil:fixed_blocks",
        "twin:fixed_blocks",
    }
    assert set(table["set"]) >= {"train", "validation", "test"}
    assert not any("seed" in c for c in table.columns)  # the seed's accuracy is not comparable: not in the rows
    tp = run.summary["proxy"]["tibetan_plateau:gldas_soil"]
    row = table[(table["experiment"] == "tibetan_plateau:gldas_soil") & (table["set"] == "test")].iloc[0]
    # blocks sized from the predictors' variogram range, recorded in the summary, the CSV and the file
    blocks = run.summary["proxy_setup"]["blocks"]["tibetan_plateau"]
    assert blocks["block_deg"] == run.summary["proxy_setup"]["block_deg"]["tibetan_plateau"] == row["block_deg"]
    assert blocks["block_deg"] >= blocks["range_deg"] > 2.0 and not blocks["block_below_range"]
    with xr.open_dataset(proxy) as ds:
        assert ds.attrs["block_deg"] == blocks["block_deg"] and "variogram_range_deg" in ds.attrs
        assert ds.attrs["day_definition"].startswith("UTC calendar days")
        assert ds.attrs["accuracy_measures"] == run.summary["accuracy_measures"]
        assert "seed_overall_accuracy" not in ds.attrs
    assert run.summary["accuracy_measures"].startswith("This accuracy measures the pipeline, not a freeze/thaw skill")
    assert run.summary["day_definition"] == ft.DAY_DEFINITION and run.summary["proxy_setup"]["days"] == ["2015-01-01"]
    assert run.summary["twin"]["block_deg"] == run.summary["twin"]["blocks"]["block_deg"] > 2.0
    fixed = run.summary["fixed_blocks"]["tibetan_plateau:gldas_soil"]
    assert fixed["block_deg"] == 2.0 and fixed["test"]["n"] > 0
    cv = run.summary["block_cv"]["tibetan_plateau:gldas_soil"]
    assert cv["test_pooled"]["n"] == sum(tp[s]["n"] for s in ("train", "validation", "test"))
    cv_row = table[(table["experiment"] == "tibetan_plateau:gldas_soil") & (table["set"] == "test_block_cv")]
    assert cv_row.iloc[0]["overall_accuracy"] == pytest.approx(cv["test_pooled"]["overall_accuracy"])
    # lineage: every parameter, defaults included, and where each fitted thing was fitted
    lineage = version.lineage
    assert lineage["parameters"]["n_estimators"] == 20 and lineage["parameters"]["block_deg"] == "variogram"
    assert set(lineage["parameters"]) >= {"cv_folds", "max_train_samples", "variogram_sill_fraction", "twin_tb_noise_k"}
    assert any("validation blocks" in v for v in lineage["statistics_fitted_on"].values())
    assert any(k.startswith("spatial block edge") for k in lineage["statistics_fitted_on"])
    assert row["overall_accuracy"] == pytest.approx(tp["test"]["overall_accuracy"])
    assert [[row["tn"], row["fp"]], [row["fn"], row["tp"]]] == tp["test"]["confusion_matrix"]
    assert run.summary["seed"]["overall_accuracy"].startswith("> 86 %")
    assert sum(tp[s]["n"] for s in ("train", "validation", "test")) == int(both.sum())
    assert any("GLDAS" in i["role"] and i["sha256"] for i in run.inputs)
    assert "proxy_tibetan_plateau" in run.timings and version.lineage["summary"]["data_kind"]["proxy"] == DataKind.PROXY
    html = client.get(f"/datasets/{run.dataset_id}/").content.decode()
    start = html.index('id="classification-table"')
    shown = html[start : html.index("</table>", start)]
    test = tp["test"]
    assert (
        f"<td>proxy: tibetan_plateau:gldas_soil</td><td>test</td><td>{test['n']}</td>"
        f"<td>{test['overall_accuracy']:.3f}</td><td>{test['kappa']:.3f}</td>"
    ) in shown
    assert "<td>synthetic twin</td><td>test</td>" in shown


@pytest.mark.django_db
def test_the_pipeline_rejects_unknown_parameters():
    from products.services import create_run, execute_run

    run = execute_run(create_run("freeze_thaw", parameters={"regions": ["mars"]}).id)
    assert run.status == "failed" and "mars" in run.error
