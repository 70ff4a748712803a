"""Leakage test of the 1 km soil-moisture held-out splits: change the in-situ values of the stations one fold
holds out, and nothing fitted for that fold may change (the split itself, the blocks and buffer sized from the
residual's variogram, the seamless coarse field, the model's trees and parameters, its predictions for the
training rows and for the held-out rows).

Run on a small synthetic twin (4 x 4 coarse cells, 8 days, 60 stations, 20 trees): only the splitting and the
fitting, no 1 km grid written; seconds. Covers every split the pipeline publishes: the spatial-block hold-out
(``twin_block_validation``) and its buffered leave-one-block-out CV (``twin_block_cv``), the random hold-out
(``twin_validation``) and its station-grouped CV (``twin_cv``).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from products.generators import sm_1km
from products.generators.twins import sm_1km as sm_1km_twin

KWARGS = {"seed": 4, "params": {"n_estimators": 20}}  # few trees: the trees are compared, not scored


@pytest.fixture(scope="module")
def twin():
    return sm_1km_twin.Twin(4, 4, 8, 60, seed=4)


@pytest.fixture(scope="module")
def unchanged(twin):
    return sm_1km_twin.twin_held_out(twin, **KWARGS)


def perturbed(twin: sm_1km_twin.Twin, stations, seed: int = 0) -> sm_1km_twin.Twin:
    """A copy of ``twin`` whose in-situ values at ``stations`` are shuffled and raised by 0.1 m3 m-3 (all else equal)."""
    out = copy.copy(twin)
    insitu = twin.insitu.copy()
    rows = insitu["station"].isin(list(stations)).to_numpy()
    values = insitu.loc[rows, "insitu"].to_numpy()
    insitu.loc[rows, "insitu"] = np.random.default_rng(seed).permutation(values) + 0.1
    out.insitu = insitu
    return out


def _folds(held: sm_1km.HeldOut) -> dict[str, sm_1km.FoldFit]:
    out = {f"{k}/validation": v for k, v in held.validation.items()}
    for kind, fits in held.cv.items():
        out |= {f"{kind}/cv/{i}": f for i, f in enumerate(fits)}
    return out


def _pick(held: sm_1km.HeldOut) -> list[str]:
    """Both hold-outs and two CV folds of each kind (the first and the largest test set)."""
    names = ["block/validation", "random/validation"]
    for kind, fits in held.cv.items():
        largest = int(np.argmax([len(f.test_stations) for f in fits]))
        names += sorted({f"{kind}/cv/0", f"{kind}/cv/{largest}"})
    return names


def test_the_pick_covers_every_published_split(unchanged):
    held = unchanged[-1]
    assert len(held.cv["block"]) >= 4 and len(held.cv["random"]) == 5
    assert {n.rsplit("/", 1)[0] if "/cv/" in n else n for n in _pick(held)} == {
        "block/validation",
        "random/validation",
        "block/cv",
        "random/cv",
    }


@pytest.mark.parametrize("which", range(6))
def test_changing_the_held_out_stations_changes_nothing_fitted_for_the_fold(twin, unchanged, which):
    seamless, coarse, table, range_km, variogram, held = unchanged
    names = _pick(held)
    if which >= len(names):  # two CV folds of a kind may be the same fold
        names = names + names
    name = names[which]
    before = _folds(held)[name]
    after_all = sm_1km_twin.twin_held_out(perturbed(twin, before.test_stations), **KWARGS)
    after = _folds(after_all[-1])[name]
    # what was chosen before any fitting: the coarse field, the residual's range, blocks, buffer and split
    np.testing.assert_array_equal(after_all[1], coarse)
    assert after_all[3] == range_km and after_all[-1].block_deg == held.block_deg
    pd.testing.assert_frame_equal(after_all[4], variogram)
    pd.testing.assert_series_equal(after_all[-1].labels, held.labels)
    assert (after.train_stations, after.test_stations, after.buffer_stations) == (
        before.train_stations,
        before.test_stations,
        before.buffer_stations,
    )
    # the model: same trees and parameters, same predictions for the training rows and the held-out rows
    assert after.model.booster_.model_to_string() == before.model.booster_.model_to_string()
    assert after.model.get_params() == before.model.get_params()
    np.testing.assert_array_equal(after.train_prediction, before.train_prediction)
    np.testing.assert_array_equal(after.test_prediction, before.test_prediction)
    # the change did reach the held-out targets (the test would prove nothing otherwise)
    rows = table["station"].isin(before.test_stations).to_numpy()
    new = after_all[2].loc[rows, "insitu"].to_numpy()
    assert rows.any() and not np.allclose(new, table.loc[rows, "insitu"].to_numpy())


def test_a_held_out_station_never_trains_a_model_that_scores_it(unchanged):
    held = unchanged[-1]
    for name, fit in _folds(held).items():
        assert not set(fit.train_stations) & set(fit.test_stations), name
        assert not set(fit.buffer_stations) & (set(fit.train_stations) | set(fit.test_stations)), name


def test_block_training_stations_lie_beyond_the_buffer_of_every_held_out_station(twin, unchanged):
    held = unchanged[-1]
    pos = twin.stations.set_index("station")
    assert held.buffer_km == unchanged[3] > 0
    for name, fit in _folds(held).items():
        if not name.startswith("block"):
            continue
        tr, te = pos.loc[fit.train_stations], pos.loc[fit.test_stations]
        d = sm_1km.great_circle_km(tr["lat"].to_numpy()[:, None], tr["lon"].to_numpy()[:, None], te["lat"], te["lon"])
        assert d.min() > held.buffer_km, name
    # the random split has neighbours (the reason it is inflated): some training station within the buffer
    fit = held.validation["random"]
    tr, te = pos.loc[fit.train_stations], pos.loc[fit.test_stations]
    d = sm_1km.great_circle_km(tr["lat"].to_numpy()[:, None], tr["lon"].to_numpy()[:, None], te["lat"], te["lon"])
    assert d.min() < held.buffer_km
