"""Leakage tests of the ET product: nothing fitted for a fold changes when its held-out targets change.

For the tower model's leave-site-out cross-validation (:func:`products.generators.et_fusion.run`) and
for the stage-2 fusion's outer leave-tower-out folds (:func:`products.generators.et_fusion.fuse_at_towers`),
the targets of the stations a fold holds out are shuffled and offset; everything fitted for that fold
(the LightGBM booster dump, FLAML's chosen hyper-parameters and learner, the fold model's predictions on
its training rows and on the held-out rows) must be identical. The validation months of every tower
must shape no model at all, the final one included. The last tests show that the check fails on a fold
splitter that lets the held-out stations into training, so a pass means something.

Small synthetic tables (SYNTHETIC data, made here) so that the module runs in seconds; no database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from products.generators import et_fusion
from products.methods import cv

SMALL = {"n_estimators": 25, "n_jobs": 1}
FUSION = {"n_splits": 4, "inner_splits": 2, "max_iter": 3, "seed": 3}


def tower_table(n_stations: int = 8, n_months: int = 36, seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC table shaped as :func:`et_fusion.build_training_table`'s: ET from the drivers plus noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_stations):
        time = pd.date_range("2005-01-01", periods=n_months, freq="MS")
        lat = rng.uniform(-40, 60)
        season = np.cos(2 * np.pi * (time.month.to_numpy() - 7) / 12) * np.sign(lat)
        tmax = 15 + 10 * season + rng.normal(0, 2, n_months)
        ssrd = 15 + 8 * season + rng.normal(0, 1, n_months)
        frame = pd.DataFrame(
            {
                "station": f"S{s}",
                "time": time,
                "lat": lat,
                "lon": rng.uniform(-180, 180),
                "tmin": tmax - 8 + rng.normal(0, 1, n_months),
                "tmax": tmax,
                "ssrd": ssrd,
                "vpd": np.clip(5 + 0.4 * tmax + rng.normal(0, 1, n_months), 0, None),
                "precip": rng.gamma(2.0, 1.5, n_months),
                "is_validation": rng.random(n_months) < 0.3,
            }
        )
        frame["et"] = np.clip(0.1 * ssrd + 0.05 * tmax + rng.normal(0, 0.3, n_months), 0, None)
        rows.append(frame)
    return et_fusion.add_calendar_features(pd.concat(rows, ignore_index=True))


def perturb(values: np.ndarray, seed: int = 99) -> np.ndarray:
    """Shuffled and offset: no longer the held-out targets, same dtype and length."""
    return np.random.default_rng(seed).permutation(values) + 3.0


def dump(model) -> str:
    """A LightGBM model's trees and parameters as text (equal text = equal fitted model)."""
    return model.booster_.model_to_string()


def leaky_splitter(groups, n_splits):
    """A splitter that lets the held-out stations into training: what the tests must catch."""
    for train, test in cv.leave_station_out(groups, n_splits):
        yield np.sort(np.concatenate([train, test])), test


# --- tower model: leave-site-out cross-validation -----------------------------------------------------
@pytest.fixture(scope="module")
def table():
    return tower_table()


@pytest.fixture(scope="module")
def tower(table):
    return et_fusion.run(table, n_splits=4, seed=5, params=SMALL)


def held_out_fold(result, k: int = 1) -> set:
    return set(result.predictions.loc[result.predictions["fold"] == k, "station"])


def test_tower_fold_fits_nothing_from_its_held_out_stations(table, tower):
    k = 1
    stations = held_out_fold(tower, k)
    rows = table["station"].isin(stations).to_numpy()
    changed = table.copy()
    changed.loc[rows, "et"] = perturb(table.loc[rows, "et"].to_numpy())
    again = et_fusion.run(changed, n_splits=4, seed=5, params=SMALL)

    assert held_out_fold(again, k) == stations and again.fold_train_stations[k] == tower.fold_train_stations[k]
    assert dump(again.fold_models[k]) == dump(tower.fold_models[k])
    train = ~rows & ~table["is_validation"].to_numpy()
    features = table.loc[train, list(et_fusion.FEATURES)]
    np.testing.assert_array_equal(again.fold_models[k].predict(features), tower.fold_models[k].predict(features))
    fold_rows = (tower.predictions["fold"] == k).to_numpy()
    np.testing.assert_array_equal(again.predictions["et_pred"][fold_rows], tower.predictions["et_pred"][fold_rows])
    # the other folds trained on these stations: they must see the change (the perturbation is real)
    assert any(dump(again.fold_models[j]) != dump(tower.fold_models[j]) for j in range(4) if j != k)


def test_validation_months_shape_no_model_not_even_the_final_one(table, tower):
    val = table["is_validation"].to_numpy()
    changed = table.copy()
    changed.loc[val, "et"] = perturb(table.loc[val, "et"].to_numpy())
    again = et_fusion.run(changed, n_splits=4, seed=5, params=SMALL)

    assert [dump(m) for m in again.fold_models] == [dump(m) for m in tower.fold_models]
    assert dump(again.final_model) == dump(tower.final_model)
    np.testing.assert_array_equal(again.predictions["et_pred"], tower.predictions["et_pred"])
    assert again.params == tower.params


def test_the_tower_check_catches_a_splitter_that_leaks(table, monkeypatch):
    monkeypatch.setattr(et_fusion, "leave_station_out", leaky_splitter)
    before = et_fusion.run(table, n_splits=4, seed=5, params=SMALL)
    k = 1
    rows = table["station"].isin(held_out_fold(before, k)).to_numpy()
    changed = table.copy()
    changed.loc[rows, "et"] = perturb(table.loc[rows, "et"].to_numpy())
    after = et_fusion.run(changed, n_splits=4, seed=5, params=SMALL)
    assert dump(after.fold_models[k]) != dump(before.fold_models[k])


# --- stage-2 fusion: outer leave-tower-out folds, FLAML tuned inside -----------------------------------
def fusion_observations(n_towers: int = 8, n_times: int = 30, seed: int = 1) -> pd.DataFrame:
    """SYNTHETIC long table like the ECOSTRESS towers': tower ET, five products, satellite and tower inputs."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(n_towers):
        time = pd.date_range("2019-01-01 18:00", periods=n_times, freq="5D")
        ndvi = rng.uniform(0.1, 0.9, n_times)
        netrad = rng.uniform(100, 700, n_times)
        et = 0.0012 * netrad * ndvi + rng.normal(0, 0.03, n_times)
        values = {
            "et": et,
            "ndvi": ndvi,
            "lst": 290 + 0.03 * netrad + rng.normal(0, 2, n_times),
            "albedo": rng.uniform(0.1, 0.25, n_times),
            "netrad": netrad,
            "ta": rng.uniform(5, 30, n_times),
            **{
                p: et * (1 + 0.1 * i) + rng.normal(0, 0.05, n_times) for i, p in enumerate(et_fusion.ECOSTRESS_PRODUCTS)
            },
        }
        frames += [
            pd.DataFrame({"station": f"T{t}", "variable": name, "time": time, "value": v}) for name, v in values.items()
        ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def observations():
    return fusion_observations()


@pytest.fixture(scope="module")
def fused(observations):
    return et_fusion.fuse_at_towers(observations, **FUSION)


def fusion_changed(observations, fused, k: int) -> pd.DataFrame:
    towers = set(fused.predictions.loc[fused.predictions["fold"] == k, "station"])
    target = (observations["variable"] == "et") & observations["station"].isin(towers)
    changed = observations.copy()
    changed.loc[target, "value"] = perturb(observations.loc[target, "value"].to_numpy())
    return changed


def fold_state(result, k: int, features: pd.DataFrame) -> dict:
    """What fold k fitted: learner, hyper-parameters, predictions on given feature rows."""
    return {
        "learner": result.best_estimators[k],
        "config": result.best_configs[k],
        "predictions": result.fold_models[k].predict(features),
    }


def test_the_headline_fusion_uses_only_inputs_available_off_tower(fused):
    assert set(fused.features) == {*et_fusion.ECOSTRESS_PRODUCTS, *et_fusion.SATELLITE_INPUTS}
    assert not set(fused.features) & set(et_fusion.TOWER_MET)


def test_fusion_fold_fits_nothing_from_its_held_out_towers(observations, fused):
    k = 2
    again = et_fusion.fuse_at_towers(fusion_changed(observations, fused, k), **FUSION)
    pred = fused.predictions
    train = pred[pred["fold"] != k]
    wide = observations.pivot_table(index=["station", "time"], columns="variable", values="value")
    features = wide.loc[list(zip(train["station"], train["time"], strict=True)), fused.features]

    before, after = fold_state(fused, k, features), fold_state(again, k, features)
    assert after["learner"] == before["learner"] and after["config"] == before["config"]
    np.testing.assert_array_equal(after["predictions"], before["predictions"])
    rows = (pred["fold"] == k).to_numpy()
    np.testing.assert_array_equal(again.predictions["et_fused"][rows], pred["et_fused"][rows])
    np.testing.assert_array_equal(again.predictions["fold"], pred["fold"])
    # the held-out towers' targets did change, and folds that trained on them see it
    assert not np.array_equal(again.predictions["et"][rows], pred["et"][rows])
    assert any(
        not np.array_equal(
            again.predictions["et_fused"][(pred["fold"] == j).to_numpy()], pred["et_fused"][pred["fold"] == j]
        )
        for j in range(FUSION["n_splits"])
        if j != k
    )


def test_the_fusion_check_catches_a_splitter_that_leaks(observations, monkeypatch):
    monkeypatch.setattr(et_fusion, "leave_station_out", leaky_splitter)
    before = et_fusion.fuse_at_towers(observations, **FUSION)
    k = 2
    after = et_fusion.fuse_at_towers(fusion_changed(observations, before, k), **FUSION)
    rows = (before.predictions["fold"] == k).to_numpy()
    assert not np.array_equal(after.predictions["et_fused"][rows], before.predictions["et_fused"][rows])
